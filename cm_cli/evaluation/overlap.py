"""Train/test overlap: how many scored rows share a speaker, a source utterance or the utterance itself
with the training rows of the run that scored them.

Why: a detector scored on speakers or source utterances it was trained on looks better than it is (a leak
that has inflated published numbers); `cm eval --run` records the counts in metrics.json (``overlap``)
and warns when any is above zero. The training rows are the ``train_split`` rows of the manifest the
run's ``config.json`` records. The source utterance of a row is ``source_utt_id`` (degraded copies),
else ``codec_seed`` (ASVspoof 5 coded copies name their uncoded source), else the row's own ``utt_id``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["OVERLAP_KEYS", "source_ids", "overlap_counts", "run_training_rows", "run_overlap", "overlap_warning"]

OVERLAP_KEYS = ("speakers", "sources", "utterances")


def source_ids(df: "pd.DataFrame") -> "pd.Series":
    """The source utterance of each row (see the module docstring)."""
    ids = df["utt_id"].astype("string")
    for column in ("codec_seed", "source_utt_id"):  # later columns win
        if column in df.columns:
            ids = df[column].astype("string").fillna(ids)
    return ids


def overlap_counts(scored: "pd.DataFrame", train: "pd.DataFrame") -> dict:
    """Scored rows whose speaker / source utterance / utterance also occurs among the training rows."""

    def present(column_values: "pd.Series", reference: "pd.Series") -> int:
        known = set(reference.dropna().astype(str))
        return int(column_values.dropna().astype(str).isin(known).sum())

    speakers = present(scored["speaker"], train["speaker"]) if "speaker" in scored and "speaker" in train else 0
    return {
        "speakers": speakers,
        "sources": present(source_ids(scored), source_ids(train)),
        "utterances": present(scored["utt_id"], train["utt_id"]),
        "n_scored": int(len(scored)),
        "n_train": int(len(train)),
    }


@functools.lru_cache(maxsize=4)
def _training_rows(manifest: str, split: str, mtime: float):
    from cm_cli.data.manifests import load_manifest

    return load_manifest(manifest, split=split)


def run_training_rows(run_dir: str | Path) -> "pd.DataFrame | None":
    """The run's training rows, or None when the run records no manifest that still exists."""
    from cm_cli.core.artifacts import read_json

    config_path = Path(run_dir) / "config.json"
    if not config_path.is_file():
        return None
    try:
        config = read_json(config_path)
    except CmError:
        return None
    manifest = config.get("manifest")
    split = (config.get("train") or {}).get("train_split") or "train"
    if not isinstance(manifest, str) or not Path(manifest).is_file():
        return None
    try:
        return _training_rows(manifest, split, Path(manifest).stat().st_mtime)
    except CmError:
        return None


def run_overlap(run_dir: str | Path, scored: "pd.DataFrame") -> dict | None:
    train = run_training_rows(run_dir)
    return None if train is None else overlap_counts(scored, train)


def overlap_warning(overlap: dict) -> str | None:
    if not any(overlap.get(k, 0) for k in OVERLAP_KEYS):
        return None
    return (
        f"train/test overlap: of {overlap['n_scored']} scored rows, {overlap['speakers']} share a speaker, "
        f"{overlap['sources']} a source utterance and {overlap['utterances']} the utterance itself with the "
        "run's training rows"
    )
