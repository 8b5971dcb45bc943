"""ASVspoof 2019 logical access: CM protocols -> manifest rows.

CM protocol lines have five whitespace-separated fields,
``SPEAKER_ID AUDIO_FILE_NAME - SYSTEM_ID KEY`` (``SYSTEM_ID`` is ``-`` for bona
fide). ``LA.zip`` unpacks to ``LA/ASVspoof2019_LA_cm_protocols/`` and
``LA/ASVspoof2019_LA_{train,dev,eval}/flac/``. The split of a row follows its
file name prefix (``LA_T_``, ``LA_D_``, ``LA_E_``), so any protocol file can be
given on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.labels import ASVSPOOF_KEYS
from cm_cli.data.corpora._protocol import audio_prefix, check_key, iter_rows, none_if
from cm_cli.data.corpora.registry import CorpusSpec
from cm_cli.data.corpora.remote import ODC_BY, CorpusSource, RemoteFile

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PROTOCOL_FILES", "SPLIT_PREFIX", "read_protocol", "find_layout", "prepare_asvspoof2019_la"]

PROTOCOL_FILES = {
    "train": "ASVspoof2019.LA.cm.train.trn.txt",
    "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
    "eval": "ASVspoof2019.LA.cm.eval.trl.txt",
}
SPLIT_PREFIX = {"LA_T_": "train", "LA_D_": "dev", "LA_E_": "eval"}
CORPUS = "asvspoof2019_la"


def read_protocol(path: str | Path) -> list[dict]:
    """Rows as dicts (speaker, utt_id, system, key, split); ``file:line`` errors for bad rows."""
    path = Path(path)
    rows = []
    for number, fields in iter_rows(path):
        if len(fields) != 5:
            raise CmError(
                f"{path}:{number}: expected 5 columns, found {len(fields)}",
                "ASVspoof 2019 LA CM protocol columns: SPEAKER_ID AUDIO_FILE_NAME - SYSTEM_ID KEY",
            )
        speaker, utt, _, system, key = fields
        check_key(path, number, key)
        split = next((s for p, s in SPLIT_PREFIX.items() if utt.startswith(p)), None)
        if split is None:
            split = next((s for s in PROTOCOL_FILES if f".{s}." in path.name), None)
        if split is None:
            raise CmError(
                f"{path}:{number}: cannot tell the split of {utt!r}", "file names start with LA_T_, LA_D_ or LA_E_"
            )
        rows.append(
            {"speaker": speaker, "utt_id": utt, "system": none_if(system, "bonafide"), "key": key, "split": split}
        )
    return rows


def _la_dir(corpus_root: Path) -> Path:
    return corpus_root / "LA" if (corpus_root / "LA").is_dir() else corpus_root


def find_layout(corpus_root: str | Path) -> tuple[list[Path], dict[str, Path]]:
    """Default protocol files and per-split audio folders under the unpacked ``LA.zip``."""
    la = _la_dir(Path(corpus_root))
    folder = la / "ASVspoof2019_LA_cm_protocols"
    protocols = []
    for name in PROTOCOL_FILES.values():
        for candidate in (folder / name, folder / (name + ".gz"), la / name, la / (name + ".gz")):
            if candidate.is_file():
                protocols.append(candidate)
                break
    if not protocols:
        raise CmError(
            f"{corpus_root}: no ASVspoof 2019 LA CM protocols (looked in {folder})",
            "run `cm download asvspoof2019_la`, or give the protocol file and the audio directory",
            option=("protocol", "audio_dir"),
        )
    audio = {split: la / f"ASVspoof2019_LA_{split}" / "flac" for split in PROTOCOL_FILES}
    return protocols, audio


def _audio_dirs(audio_dir: Path) -> dict[str, Path]:
    """One given audio folder: the LA root, a split folder, or a flat folder of .flac files."""
    audio_dir = Path(audio_dir)
    la = _la_dir(audio_dir)
    if any((la / f"ASVspoof2019_LA_{s}").is_dir() for s in PROTOCOL_FILES):
        return {s: la / f"ASVspoof2019_LA_{s}" / "flac" for s in PROTOCOL_FILES}
    flat = audio_dir / "flac" if (audio_dir / "flac").is_dir() else audio_dir
    return {s: flat for s in PROTOCOL_FILES}


def prepare_asvspoof2019_la(
    corpus_root: str | Path,
    *,
    data_root: str | Path | None = None,
    protocol: Sequence[str | Path] | None = None,
    audio_dir: str | Path | None = None,
    attack_families: dict[str, str] | None = None,
    **_: object,
) -> "pd.DataFrame":
    """Manifest rows for every row of the given (or default) CM protocols."""
    import pandas as pd

    corpus_root = Path(corpus_root)
    if protocol:
        protocols = [Path(p) for p in protocol]
        audio = _audio_dirs(Path(audio_dir)) if audio_dir else find_layout(corpus_root)[1]
    else:
        protocols, audio = find_layout(corpus_root)
        if audio_dir:
            audio = _audio_dirs(Path(audio_dir))
    prefixes = {split: audio_prefix(folder, data_root) for split, folder in audio.items()}
    records = []
    for path in protocols:
        for row in read_protocol(path):
            spoof = row["key"] == "spoof"
            records.append(
                {
                    "utt_id": row["utt_id"],
                    "path": f"{prefixes[row['split']]}/{row['utt_id']}.flac",
                    "label": row["key"],
                    "attack": row["system"] if spoof else None,
                    "attack_family": None,
                    "speaker": row["speaker"],
                    "split": row["split"],
                    "corpus": CORPUS,
                    "codec": None,
                    "codec_q": None,
                    "domain": "clean",
                    "duration": None,
                    "sample_rate": None,
                }
            )
    df = pd.DataFrame.from_records(records)
    if df.empty:
        raise CmError(f"{', '.join(map(str, protocols))}: the protocols list no utterances")
    if attack_families:
        df["attack_family"] = df["attack"].map(attack_families)
    return df


# ---------------------------------------------------------------------------- ASVspoof 2019 LA
ASVSPOOF2019_LA = CorpusSource(
    name="asvspoof2019_la",
    title="ASVspoof 2019 logical access (train, dev, eval in one archive)",
    licence=ODC_BY,
    homepage="https://datashare.ed.ac.uk/handle/10283/3336",
    files=(
        RemoteFile(
            "LA.zip",
            "https://datashare.ed.ac.uk/bitstream/handle/10283/3336/LA.zip",
            "protocols",
            note="no checksum is published: verified by size only",
        ),
    ),
    layout=(
        "LA/ASVspoof2019_LA_cm_protocols/, LA/ASVspoof2019_LA_asv_scores/ (ASV scores for min t-DCF), "
        "LA/ASVspoof2019_LA_{train,dev,eval}/flac/"
    ),
    subset_notes={"protocols": "the corpus ships as one archive: every subset fetches LA.zip"},
)


def find_asv_scores(corpus_root: Path, split: str) -> Path | None:
    """``LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.<split>.gi.trl.scores.txt`` (min t-DCF's ASV system)."""
    root = Path(corpus_root)
    for base in (root / "LA", root):
        hit = base / "ASVspoof2019_LA_asv_scores" / f"ASVspoof2019.LA.asv.{split}.gi.trl.scores.txt"
        if hit.is_file():
            return hit
    return None


def _prepare(corpus_root: Path, *, data_root: Path, protocol=None, audio_dir=None, **_: object) -> "pd.DataFrame":
    from cm_cli.data.taxonomy import attack_families

    return prepare_asvspoof2019_la(
        corpus_root,
        data_root=data_root,
        protocol=protocol,
        audio_dir=audio_dir,
        attack_families=attack_families(CORPUS),
    )


def _families() -> dict[str, str]:
    from cm_cli.data.taxonomy import attack_families

    return attack_families(CORPUS)


SPEC = CorpusSpec(
    name=CORPUS,
    title=ASVSPOOF2019_LA.title,
    prepare=_prepare,
    protocol_files=lambda root: list(find_layout(root)[0]),
    source=ASVSPOOF2019_LA,
    labels=ASVSPOOF_KEYS,
    attack_families=_families,
    asv_scores=find_asv_scores,
    accepts_protocol=True,
    layout=ASVSPOOF2019_LA.layout,
)
