"""The one writer of a metrics directory: metrics.json and one table per breakdown.

``cm eval --scores`` and each condition of ``cm eval --run`` write through
``write_metrics_dir``, so the files and their columns never differ between modes;
the tables iterate over the metric records' own keys, so a new metric needs no
change here. ``add_block`` is how a further analysis (t-DCF, SASV) joins the document.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["METRICS_FILE", "add_block", "corpus_values", "headline", "write_metrics_dir"]

METRICS_FILE = "metrics.json"


def add_block(result: dict, name: str, block: Mapping[str, Any]) -> dict:
    """Add one block to a metrics document; ``overall`` merges its keys (e.g. ``min_tdcf``)
    into the overall record, any other name must be new."""
    if name == "overall":
        clash = sorted(set(block) & set(result.get("overall", {})))
        if clash:
            raise CmError(f"metrics block would overwrite overall {', '.join(clash)}")
        result.setdefault("overall", {}).update(block)
    elif name in result:
        raise CmError(f"metrics.json already has a {name!r} block")
    else:
        result[name] = dict(block)
    return result


def corpus_values(df: "pd.DataFrame") -> list[str]:
    """The corpus values of the scored trials (the manifest's ``corpus`` column), sorted."""
    if "corpus" not in df.columns:
        return []
    return sorted({str(v) for v in df["corpus"].dropna().unique()})


def headline(result: Mapping[str, Any]) -> dict:
    """The overall record without counts and thresholds: what summaries show."""
    from cm_cli.metrics.summary import SHOWN_KEYS

    overall = result.get("overall", {})
    return {k: overall.get(k) for k in SHOWN_KEYS}


def write_metrics_dir(result: Mapping[str, Any], out_dir: str | Path) -> dict[str, str]:
    """Write ``metrics.json`` and ``metrics_by_<column>.parquet``; return name -> file written."""
    from cm_cli.core.artifacts import write_json, write_parquet
    from cm_cli.metrics.report import breakdown_tables

    out_dir = Path(out_dir)
    written = {"metrics": METRICS_FILE}
    for column, table in breakdown_tables(result).items():
        name = f"metrics_by_{column}.parquet"
        write_parquet(table, out_dir / name)
        written[f"by_{column}"] = name
    write_json(dict(result), out_dir / METRICS_FILE)
    return written
