"""ASVspoof 2021 LA and DF: full keys (``trial_metadata.txt``) -> manifest rows.

LA key lines: ``SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET`` (bona
fide rows carry ``bonafide`` in the attack column). DF key lines: ``SPEAKER TRIAL
COMPRESSION SOURCE ATTACK KEY TRIM SUBSET VOCODER`` followed by further columns
(``-`` in the published file), kept as ``df_col10``... when any is filled.
SUBSET is the evaluation phase: ``eval`` (the official results), ``progress`` or
``hidden``; every row is split ``eval``. The codec column becomes ``codec`` and
``domain`` (``none``/``nocodec`` -> no codec, domain ``clean``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.labels import ASVSPOOF_KEYS
from cm_cli.data.corpora._protocol import audio_prefix, check_key, iter_rows, none_if
from cm_cli.data.corpora.registry import CorpusSpec
from cm_cli.data.corpora.remote import ODC_BY, CorpusSource, RemoteFile, zenodo_file_url

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PHASES", "TRACKS", "read_keys", "find_keys", "find_audio", "prepare_asvspoof2021"]

PHASES = ("eval", "progress", "hidden")
TRACKS = {"asvspoof2021_la": "LA", "asvspoof2021_df": "DF"}
_NO_CODEC = ("none", "nocodec")
_NO_ATTACK = ("bonafide",)


def read_keys(path: str | Path, track: str) -> list[dict]:
    """Rows of an LA or DF key file as dicts; ``file:line`` errors for malformed rows."""
    path = Path(path)
    rows = []
    for number, f in iter_rows(path):
        if track == "LA":
            if len(f) != 8:
                raise CmError(
                    f"{path}:{number}: expected 8 columns, found {len(f)}",
                    "ASVspoof 2021 LA key columns: SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET",
                )
            row = {
                "speaker": f[0],
                "utt_id": f[1],
                "codec": f[2],
                "transmission": none_if(f[3]),
                "attack": f[4],
                "key": f[5],
                "trim": none_if(f[6]),
                "phase": f[7],
            }
        else:
            if len(f) < 8:
                raise CmError(
                    f"{path}:{number}: expected at least 8 columns, found {len(f)}",
                    "ASVspoof 2021 DF key columns: SPEAKER TRIAL COMPRESSION SOURCE ATTACK KEY TRIM SUBSET VOCODER ...",
                )
            row = {
                "speaker": f[0],
                "utt_id": f[1],
                "codec": f[2],
                "source": none_if(f[3]),
                "attack": f[4],
                "key": f[5],
                "trim": none_if(f[6]),
                "phase": f[7],
                "vocoder": none_if(f[8]) if len(f) > 8 else None,
            }
            for i, value in enumerate(f[9:], start=10):
                row[f"df_col{i}"] = none_if(value)
        check_key(path, number, row["key"])
        if row["phase"] not in PHASES:
            raise CmError(f"{path}:{number}: unknown subset {row['phase']!r}", f"subsets are {', '.join(PHASES)}")
        rows.append(row)
    return rows


def find_keys(corpus_root: str | Path, track: str) -> Path:
    """``keys/<track>/CM/trial_metadata.txt`` (or .gz) under the corpus root, where the key archive unpacks."""
    root = Path(corpus_root)
    for base in (root / "keys" / track / "CM", root / track / "CM", root / "keys" / track, root):
        for name in ("trial_metadata.txt", "trial_metadata.txt.gz"):
            if (base / name).is_file():
                return base / name
    raise CmError(
        f"{root}: no keys/{track}/CM/trial_metadata.txt",
        f"run `cm download asvspoof2021_{track.lower()} --subset protocols`, or give the key file",
        option="protocol",
    )


def find_audio(corpus_root: str | Path, track: str) -> Path:
    root = Path(corpus_root)
    for candidate in (root / f"ASVspoof2021_{track}_eval" / "flac", root / "flac"):
        if candidate.is_dir():
            return candidate
    return root / f"ASVspoof2021_{track}_eval" / "flac"


def _flac_dir(audio_dir: Path, track: str) -> Path:
    for candidate in (audio_dir / f"ASVspoof2021_{track}_eval" / "flac", audio_dir / "flac"):
        if candidate.is_dir():
            return candidate
    return audio_dir


def prepare_asvspoof2021(
    corpus_root: str | Path,
    *,
    corpus: str = "asvspoof2021_la",
    data_root: str | Path | None = None,
    protocol: Sequence[str | Path] | None = None,
    audio_dir: str | Path | None = None,
    phase: str = "eval",
    attack_families: dict[str, str] | None = None,
    **_: object,
) -> "pd.DataFrame":
    """Manifest rows of the chosen phase (``eval``, ``progress``, ``hidden`` or ``all``)."""
    import pandas as pd

    if corpus not in TRACKS:
        raise CmError(f"not an ASVspoof 2021 corpus: {corpus!r}", f"use one of {', '.join(TRACKS)}")
    if phase not in (*PHASES, "all"):
        raise CmError(f"unknown phase {phase!r}", "use eval, progress, hidden or all")
    track = TRACKS[corpus]
    keys = [Path(p) for p in protocol] if protocol else [find_keys(corpus_root, track)]
    folder = _flac_dir(Path(audio_dir), track) if audio_dir else find_audio(corpus_root, track)
    prefix = audio_prefix(folder, data_root)
    records = []
    phases_seen: set[str] = set()
    for path in keys:
        for row in read_keys(path, track):
            phases_seen.add(row["phase"])
            if phase != "all" and row["phase"] != phase:
                continue
            spoof = row.pop("key") == "spoof"
            codec = none_if(row.pop("codec"), *_NO_CODEC)
            attack = none_if(row.pop("attack"), *_NO_ATTACK)
            utt = row.pop("utt_id")
            records.append(
                {
                    "utt_id": utt,
                    "path": f"{prefix}/{utt}.flac",
                    "label": "spoof" if spoof else "bonafide",
                    "attack": attack if spoof else None,
                    "attack_family": None,
                    "speaker": row.pop("speaker"),
                    "split": "eval",
                    "corpus": corpus,
                    "codec": codec,
                    "codec_q": None,
                    "domain": codec or "clean",
                    "duration": None,
                    "sample_rate": None,
                    **row,
                }
            )
    df = pd.DataFrame.from_records(records)
    if df.empty:
        seen = ", ".join(sorted(phases_seen)) or "none"
        raise CmError(
            f"{', '.join(map(str, keys))}: no rows in phase {phase!r} (phases present: {seen})",
            "choose another phase, or phase all",
            option="phase",
        )
    extra = [c for c in df.columns if c.startswith("df_col")]
    empty = [c for c in extra if df[c].isna().all()]
    if empty:
        df = df.drop(columns=empty)
    if attack_families:
        df["attack_family"] = df["attack"].map(attack_families)
    return df


# ---------------------------------------------------------------------------- ASVspoof 2021
# Key archives and their md5 sums: asvspoof-challenge/2021 eval-package README.
_LA21_RECORD = "4837263"
_DF21_RECORD = "4835108"


def _asvspoof2021(
    track: str, record: str, keys_md5: str, audio: tuple[str, ...], *, title: str, layout: str, dev_note: str
) -> CorpusSource:
    """One ASVspoof 2021 track: its key archive (asvspoof.org) and audio parts (Zenodo); the first part is ``dev``."""
    keys = RemoteFile(
        f"{track}-keys-full.tar.gz",
        f"https://www.asvspoof.org/asvspoof2021/{track}-keys-full.tar.gz",
        "protocols",
        md5=keys_md5,
    )
    parts = tuple(
        RemoteFile(name, zenodo_file_url(record, name), "dev" if i == 0 else "full", zenodo_record=record)
        for i, name in enumerate(audio)
    )
    return CorpusSource(
        name=f"asvspoof2021_{track.lower()}",
        title=title,
        licence=ODC_BY,
        homepage=f"https://zenodo.org/records/{record}",
        files=(keys, *parts),
        layout=layout,
        subset_notes={"dev": dev_note},
    )


ASVSPOOF2021_LA = _asvspoof2021(
    "LA",
    _LA21_RECORD,
    "037592a0515971bbd0fa3bff2bad4abc",
    ("ASVspoof2021_LA_eval.tar.gz",),
    title="ASVspoof 2021 logical access (evaluation data + full keys)",
    layout="keys/LA/CM/trial_metadata.txt, keys/LA/ASV/ (ASV keys and ASVTorch_Kaldi scores for min t-DCF), "
    "ASVspoof2021_LA_eval/flac/",
    dev_note="no dev split exists: keys + the one audio archive (same as full)",
)

ASVSPOOF2021_DF = _asvspoof2021(
    "DF",
    _DF21_RECORD,
    "dabbc5628de4fcef53036c99ac7ab93a",
    tuple(f"ASVspoof2021_DF_eval_part0{i}.tar.gz" for i in range(4)),
    title="ASVspoof 2021 speech deepfake (evaluation data + full keys)",
    layout="keys/DF/CM/trial_metadata.txt, ASVspoof2021_DF_eval/flac/",
    dev_note="no dev split exists: keys + the first audio part (part00) to try a pipeline on real audio",
)


def find_asv_scores(corpus_root: Path, split: str) -> Path | None:
    """The ASV score folder the LA keys ship (``keys/LA/ASV``: trial metadata and ASVTorch_Kaldi scores)."""
    root = Path(corpus_root)
    if split != "eval":
        return None
    for hit in (
        root / "keys" / "LA" / "ASV",
        root / "LA-keys-full" / "keys" / "LA" / "ASV",
        root / "LA-keys-stage-1" / "keys" / "ASV",
    ):
        if (hit / "trial_metadata.txt").is_file() and any(hit.glob("*/score.txt")):
            return hit
    return None


def _spec(corpus: str, source: CorpusSource, asv_scores=None) -> CorpusSpec:
    track = TRACKS[corpus]

    def prepare(
        corpus_root: Path, *, data_root: Path, protocol=None, audio_dir=None, phase=None, **_: object
    ) -> "pd.DataFrame":
        from cm_cli.data.taxonomy import attack_families

        return prepare_asvspoof2021(
            corpus_root,
            corpus=corpus,
            data_root=data_root,
            protocol=protocol,
            audio_dir=audio_dir,
            phase=phase or "eval",
            attack_families=attack_families(corpus),
        )

    def families() -> dict[str, str]:
        from cm_cli.data.taxonomy import attack_families

        return attack_families(corpus)

    return CorpusSpec(
        name=corpus,
        title=source.title,
        prepare=prepare,
        protocol_files=lambda root: [find_keys(root, track)],
        source=source,
        labels=ASVSPOOF_KEYS,
        attack_families=families,
        splits=("eval",),
        asv_scores=asv_scores,
        accepts_protocol=True,
        phases=PHASES,
        layout=source.layout,
    )


LA_SPEC = _spec("asvspoof2021_la", ASVSPOOF2021_LA, asv_scores=find_asv_scores)
DF_SPEC = _spec("asvspoof2021_df", ASVSPOOF2021_DF)
