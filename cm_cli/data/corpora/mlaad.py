"""MLAAD (Müller et al., 2024) spoofs with M-AILABS bona fide speech, as MLAAD's authors pair them -> manifest rows.

MLAAD holds TTS output in ``fake/<language>/<model>/`` with one ``meta.csv`` per model
folder, ``|``-separated with a header that includes ``path``, ``language``,
``model_name`` and ``architecture``. The bona fide side is M-AILABS:
``<ll_CC>/by_book/<gender>/<speaker>/<book>/wavs/*.wav``. Spoof rows take the TTS model
as ``attack`` and its architecture as ``attack_family``; every row is an ``eval`` trial and
keeps its ``language``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from cm_cli.core.errors import CmError
from cm_cli.data.corpora._protocol import audio_prefix
from cm_cli.data.corpora.registry import CorpusSpec
from cm_cli.data.corpora.remote import CorpusSource, RemoteFile

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["CORPUS", "read_model_meta", "mailabs_rows", "prepare_mlaad"]

CORPUS = "mlaad"
REQUIRED = ("path", "language", "model_name", "architecture")


def _find_mlaad(root: Path) -> Path:
    """The MLAAD root: the folder holding ``fake/`` (``MLAAD/``, ``mlaad_v5/`` … or the corpus root)."""
    for candidate in (root, *sorted(p for p in root.iterdir() if p.is_dir())) if root.is_dir() else ():
        if (candidate / "fake").is_dir():
            return candidate
    raise CmError(
        f"{root}: no MLAAD folder (one holding fake/<language>/<model>/)",
        "run `cm download mlaad`, or give the MLAAD root as the protocol",
        option="protocol",
    )


def _find_mailabs(root: Path) -> Path:
    """The M-AILABS root: the folder holding ``<ll_CC>/by_book/``."""
    for candidate in (root, *sorted(p for p in root.iterdir() if p.is_dir())) if root.is_dir() else ():
        if any(candidate.glob("*/by_book")):
            return candidate
    raise CmError(
        f"{root}: no M-AILABS folder (one holding <ll_CC>/by_book/)",
        "MLAAD is paired with M-AILABS bona fide speech: give the M-AILABS root as the audio directory, "
        "or run `cm download mlaad`",
        option="audio_dir",
    )


def read_model_meta(path: Path) -> list[dict]:
    """Rows of one MLAAD ``meta.csv``; ``file:line`` errors for bad rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="|")
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise CmError(
                f"{path}:1: MLAAD meta.csv lacks column(s) {', '.join(missing)}",
                f"expected a '|'-separated header with {', '.join(REQUIRED)}",
            )
        rows = []
        for number, fields in enumerate(reader, start=2):
            if not fields:
                continue
            if len(fields) != len(header):
                raise CmError(f"{path}:{number}: expected {len(header)} fields, found {len(fields)}")
            rows.append(dict(zip(header, (f.strip() for f in fields))))
    return rows


def _spoof_rows(mlaad: Path, prefix: str) -> list[dict]:
    metas = sorted((mlaad / "fake").glob("*/*/meta.csv"))
    if not metas:
        raise CmError(
            f"{mlaad}: no fake/<language>/<model>/meta.csv",
            "run `cm download mlaad` or give the MLAAD root as the protocol",
            option="protocol",
        )
    records = []
    for meta in metas:
        for row in read_model_meta(meta):
            rel = Path(row["path"].lstrip("./")) if row["path"].startswith("./") else Path(row["path"])
            if not rel.parts or rel.parts[0] != "fake":
                rel = meta.parent.relative_to(mlaad) / Path(row["path"]).name
            model = row["model_name"]
            records.append(
                {
                    "utt_id": f"MLAAD_{model.replace('/', '_')}_{rel.stem}",
                    "path": f"{prefix}/{rel.as_posix()}",
                    "label": "spoof",
                    "attack": model,
                    "attack_family": row["architecture"] or None,
                    "speaker": f"tts:{model}",
                    "language": row["language"],
                }
            )
    return records


def mailabs_rows(mailabs: Path, prefix: str) -> list[dict]:
    """Bona fide rows: every ``wavs/*.wav`` of M-AILABS with its speaker and language."""
    records = []
    for wav in sorted(mailabs.glob("*/by_book/*/*/*/wavs/*.wav")):
        rel = wav.relative_to(mailabs)
        lang_dir, _, _, speaker = rel.parts[:4]
        records.append(
            {
                "utt_id": f"MAILABS_{speaker}_{wav.stem}",
                "path": f"{prefix}/{rel.as_posix()}",
                "label": "bonafide",
                "attack": None,
                "attack_family": None,
                "speaker": speaker,
                "language": lang_dir.split("_")[0],
            }
        )
    if not records:
        raise CmError(
            f"{mailabs}: no <ll_CC>/by_book/<gender>/<speaker>/<book>/wavs/*.wav",
            "MLAAD is paired with M-AILABS for bona fide speech: `cm download mlaad` fetches both",
        )
    return records


def prepare_mlaad(
    corpus_root: str | Path,
    *,
    data_root: str | Path | None = None,
    protocol=None,
    audio_dir: str | Path | None = None,
    **_: object,
) -> "pd.DataFrame":
    """MLAAD spoofs (``protocol``: the MLAAD root) and M-AILABS bona fide (``audio_dir``: its root)."""
    import pandas as pd

    root = Path(corpus_root)
    given = protocol[0] if isinstance(protocol, (list, tuple)) and protocol else protocol
    mlaad = _find_mlaad(Path(given) if given else root)
    mailabs = _find_mailabs(Path(audio_dir) if audio_dir else root)
    records = _spoof_rows(mlaad, audio_prefix(mlaad, data_root)) + mailabs_rows(
        mailabs, audio_prefix(mailabs, data_root)
    )
    df = pd.DataFrame.from_records(records)
    for column, value in (
        ("split", "eval"),
        ("corpus", CORPUS),
        ("codec", None),
        ("codec_q", None),
        ("domain", "clean"),
        ("duration", None),
        ("sample_rate", None),
    ):
        df[column] = value
    duplicated = df["utt_id"].duplicated()
    if duplicated.any():
        raise CmError(
            f"{mlaad}: {int(duplicated.sum())} duplicate utterance ids (first: {df['utt_id'][duplicated].iloc[0]})"
        )
    return df


# The authors' Hugging Face dataset; bona fide speech from M-AILABS, as MLAAD's paper pairs them (one archive
# per language; English shown, others by --base-url or by adding files). No checksum is published.
MLAAD = CorpusSource(
    name="mlaad",
    title="MLAAD multi-language TTS spoofs (Müller et al., 2024) with M-AILABS bona fide speech",
    licence="as stated on the MLAAD dataset card and the M-AILABS page (read both before use)",
    homepage="https://deepfake-total.com/mlaad",
    files=(
        RemoteFile(
            "mlaad_v5.zip",
            "https://huggingface.co/datasets/mueller91/MLAAD/resolve/main/mlaad_v5.zip",
            "full",
            note="no checksum is published: verified by size only",
        ),
        RemoteFile(
            "en_US.tgz",
            "https://www.caito.de/data/Training/stt_tts/en_US.tgz",
            "full",
            note="M-AILABS English; other languages: same URL with their ll_CC code",
        ),
    ),
    layout="MLAAD/fake/<language>/<model>/meta.csv and *.wav; M-AILABS/<ll_CC>/by_book/<gender>/<speaker>/<book>/wavs/",
)

# no short list of protocol files: the spoofs are one meta.csv per TTS model, the bona fide side a folder scan
SPEC = CorpusSpec(
    name=CORPUS,
    title=MLAAD.title,
    prepare=prepare_mlaad,
    scanned=True,
    source=MLAAD,
    labels={"bonafide": "bonafide", "spoof": "spoof"},
    splits=("eval",),
    accepts_protocol=True,
    layout=MLAAD.layout,
)
