"""Which trials a clustered bootstrap must resample together, from a score table's columns.

Scores: higher = more bona fide. Trials that share a source utterance (a coded copy and
its uncoded original) or a speaker are not independent; resampling them one by one
understates the interval; ``auto`` takes the coarsest unit the table has (a speaker's
trials include every copy of its utterances). Null keys never merge: a trial without a key is its own
cluster (in ASVspoof 5 ``codec_seed`` is null for uncoded rows, whose own id is the
``codec_seed`` of their coded copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["AUTO", "NO_CLUSTERS", "SOURCE_COLUMNS", "SPEAKER_COLUMNS", "ClusterSpec", "cluster_codes", "cluster_keys"]

AUTO = "auto"
NO_CLUSTERS = ("none", "trial")
SOURCE_COLUMNS = ("codec_seed", "source_utt_id")
SPEAKER_COLUMNS = ("speaker", "speaker_id")
NULL_TEXT = ("", "-")


@dataclass(frozen=True)
class ClusterSpec:
    """``keys`` aligned with the table's rows (None: per-trial resampling), the option value
    recorded as ``ci.cluster_by`` (None for per-trial) and the unit in words."""

    keys: np.ndarray | None
    cluster_by: str | None
    unit: str


def _nulls(series: "pd.Series") -> np.ndarray:
    text = series.astype("string").str.strip()
    return (series.isna() | text.isin(NULL_TEXT).fillna(True)).to_numpy(dtype=bool)


def _own_ids(df: "pd.DataFrame") -> np.ndarray:
    if "utt_id" in df.columns:
        return df["utt_id"].astype(str).to_numpy(dtype=object)
    return np.array([f"\0row{i}" for i in range(len(df))], dtype=object)


def _keys_from(df: "pd.DataFrame", columns: tuple[str, ...], fallback: np.ndarray) -> np.ndarray:
    """First non-null value among ``columns``, else ``fallback`` (one distinct value per row)."""
    keys = np.array(fallback, dtype=object)
    filled = np.zeros(len(df), dtype=bool)
    for column in columns:
        if column not in df.columns:
            continue
        use = ~_nulls(df[column]) & ~filled
        keys[use] = df[column].astype(str).to_numpy(dtype=object)[use]
        filled |= use
    return keys


def cluster_codes(keys) -> tuple[np.ndarray, int]:
    """The one definition of a cluster, used by every resampler: (code per row, number of clusters).

    Rows with the same key (compared as text, stripped) form one cluster, codes in sorted
    key order; a null key (None, NaN, "", "-") is a cluster of its own, numbered after the
    others. The rows are hashed once; the text rules apply to the distinct keys only.
    """
    import pandas as pd

    values = np.asarray(keys, dtype=object).ravel()
    first, uniques = pd.factorize(values, use_na_sentinel=True)
    text = pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str).str.strip()
    null_unique = text.isin(NULL_TEXT).to_numpy(dtype=bool)
    named, named_code = np.unique(text[~null_unique].to_numpy(dtype=str), return_inverse=True)
    code_of_unique = np.full(len(uniques), -1, dtype=np.int64)
    code_of_unique[~null_unique] = named_code.ravel()
    codes = np.where(first >= 0, code_of_unique[np.maximum(first, 0)], -1)
    null = codes < 0
    codes[null] = len(named) + np.arange(int(null.sum()))
    return codes.astype(np.int64), int(len(named) + null.sum())


def _has_values(df: "pd.DataFrame", columns: tuple[str, ...]) -> bool:
    return any(c in df.columns and not _nulls(df[c]).all() for c in columns)


def cluster_keys(df: "pd.DataFrame", cluster_by: str | None) -> ClusterSpec:
    """Cluster keys for ``--cluster-by``: ``auto`` (speaker where a speaker column has values, else
    source utterance where a source column has values, else per trial), ``source``, ``speaker``,
    ``none``/``trial``, or any column name."""
    value = AUTO if cluster_by is None else str(cluster_by)
    if value == AUTO:
        value = (
            "speaker" if _has_values(df, SPEAKER_COLUMNS) else "source" if _has_values(df, SOURCE_COLUMNS) else "none"
        )
    if value in NO_CLUSTERS:
        return ClusterSpec(None, None, "trial")
    if value == "source":
        return ClusterSpec(_keys_from(df, SOURCE_COLUMNS, _own_ids(df)), "source", "source utterance")
    unique = np.array([f"\0null{i}" for i in range(len(df))], dtype=object)
    if value == "speaker":
        found = [c for c in SPEAKER_COLUMNS if c in df.columns]
        if not found:
            raise CmError(
                f"bootstrap clusters by speaker: no speaker column (looked for {', '.join(SPEAKER_COLUMNS)})",
                f"columns found: {', '.join(map(str, df.columns))}",
                option="cluster_by",
            )
        return ClusterSpec(_keys_from(df, (found[0],), unique), "speaker", "speaker")
    if value not in df.columns:
        raise CmError(
            f"bootstrap clusters by {value!r}: no such column",
            f"use source, speaker, none or a column; columns found: {', '.join(map(str, df.columns))}",
            option="cluster_by",
        )
    return ClusterSpec(_keys_from(df, (value,), unique), value, value)
