"""The manifest schema (DESIGN.md): one row per utterance, all splits, fixed column names.

Every later artifact (degraded manifests, scores, embeddings joins) carries these
columns through, so they are checked once here, naming the file and the column.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cm_cli.core.errors import CmError
from cm_cli.core.labels import LABELS
from cm_cli.data.corpora.registry import CORPORA as _REGISTERED_CORPORA

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "MANIFEST_COLUMNS",
    "REQUIRED_COLUMNS",
    "LABELS",
    "SPLITS",
    "CORPORA",
    "validate_manifest",
    "normalise_manifest",
    "manifest_counts",
    "resolve_audio_path",
]

# column -> pandas dtype the column is stored with
MANIFEST_COLUMNS: dict[str, str] = {
    "utt_id": "string",
    "path": "string",
    "label": "string",
    "attack": "string",
    "attack_family": "string",
    "speaker": "string",
    "split": "string",
    "corpus": "string",
    "codec": "string",
    "codec_q": "string",
    "domain": "string",
    "duration": "float32",
    "sample_rate": "Int32",
}
REQUIRED_COLUMNS = tuple(MANIFEST_COLUMNS)
SPLITS = ("train", "dev", "eval")
# the corpus names, from the corpus registry (one line per corpus; names only, no corpus module is imported)
CORPORA = _REGISTERED_CORPORA


def normalise_manifest(df: "pd.DataFrame") -> "pd.DataFrame":
    """Schema column order first, extra columns after, schema dtypes applied."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    for column in missing:
        df[column] = None
    extras = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    df = df[list(REQUIRED_COLUMNS) + extras].copy()
    for column, dtype in MANIFEST_COLUMNS.items():
        df[column] = df[column].astype(dtype)
    return df.reset_index(drop=True)


def validate_manifest(df: "pd.DataFrame", source: str | Path = "<manifest>") -> "pd.DataFrame":
    """Raise ``CmError`` naming the file and the problem; return the frame unchanged."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise CmError(
            f"{source}: manifest is missing column(s) {', '.join(missing)}",
            f"columns found: {', '.join(map(str, df.columns))}; rebuild it with `cm manifest`",
        )
    if df["utt_id"].isna().any():
        raise CmError(f"{source}: {int(df['utt_id'].isna().sum())} row(s) have no utt_id")
    duplicated = df["utt_id"][df["utt_id"].duplicated()]
    if len(duplicated):
        examples = ", ".join(map(str, duplicated.unique()[:5]))
        raise CmError(
            f"{source}: {len(duplicated)} duplicate utt_id value(s), e.g. {examples}",
            "each utterance must appear once; check for a protocol listed twice",
        )
    bad_labels = sorted(set(df["label"].dropna().astype(str)) - set(LABELS))
    if bad_labels or df["label"].isna().any():
        shown = bad_labels[:5] if bad_labels else ["<null>"]
        raise CmError(f"{source}: unknown label value(s) {shown}", "labels must be 'bonafide' or 'spoof'")
    bad_splits = sorted(set(df["split"].dropna().astype(str)) - set(SPLITS))
    if bad_splits:
        raise CmError(f"{source}: unknown split value(s) {bad_splits[:5]}", f"splits are {', '.join(SPLITS)}")
    return df


def manifest_counts(df: "pd.DataFrame") -> dict:
    """Counts per split, label and attack, the summary printed by ``cm manifest``."""
    counts: dict = {"n_utterances": int(len(df)), "splits": {}}
    for split, part in df.groupby("split", sort=True, observed=True):
        attacks = part.loc[part["label"] == "spoof", "attack"].fillna("none").value_counts().sort_index()
        codecs = part["codec"].fillna("none").value_counts().sort_index()
        counts["splits"][str(split)] = {
            "n": int(len(part)),
            "bonafide": int((part["label"] == "bonafide").sum()),
            "spoof": int((part["label"] == "spoof").sum()),
            "speakers": int(part["speaker"].nunique()),
            "attacks": {str(k): int(v) for k, v in attacks.items()},
            "codecs": {str(k): int(v) for k, v in codecs.items()},
        }
    return counts


def resolve_audio_path(path: str, data_root: str | Path | None) -> Path:
    """Manifest paths are absolute or relative to the data root."""
    p = Path(path)
    if p.is_absolute() or data_root is None:
        return p
    return Path(data_root) / p
