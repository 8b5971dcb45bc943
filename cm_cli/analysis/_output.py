"""Check an analysis output directory before computing, and write its tables all at once.

Analyses compute everything in memory first and only then open the output
directory, so a failure (bad layer, no shared ids, a one-class target) leaves
nothing behind; a rerun with the same options is recognised before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from cm_cli.core.errors import CmError

__all__ = ["previous_summary", "write_outputs", "finite_json"]


def finite_json(value: Any) -> Any:
    """NaN and infinities become null, so summaries are strict JSON; numpy scalars become Python ones."""
    import math

    if isinstance(value, dict):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def previous_summary(out: str | Path, kind: str, options: Mapping[str, Any], *, force: bool = False) -> dict | None:
    """The summary of a complete earlier run with the same options, or None; refuses other options."""
    import json

    from cm_cli.core.artifacts import options_digest, read_json

    record_path = Path(out) / "cm.json"
    if force or not record_path.is_file():
        return None
    try:
        record = read_json(record_path)
    except CmError:
        return None
    if record.get("kind") not in (None, kind):
        raise CmError(
            f"{out} already holds a '{record.get('kind')}' artifact, not '{kind}'",
            "write to another output directory, or overwrite it",
            option=("out", "force"),
        )
    old = record.get("options") or {}
    new = json.loads(json.dumps(dict(options), default=str))
    if record.get("options_digest") != options_digest(options) and old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:6])
        raise CmError(
            f"{out} was made with different options ({shown})",
            "redo it with the new options, or write to another output directory",
            option=("force", "out"),
        )
    if record.get("status") == "complete" and isinstance(record.get("summary"), dict):
        return dict(record["summary"], skipped=True)
    return None


def write_outputs(
    out: str | Path,
    kind: str,
    options: Mapping[str, Any],
    *,
    tables: Mapping[str, Any],
    summary: Mapping[str, Any],
    summary_name: str,
    inputs: Sequence[str | Path] = (),
    force: bool = False,
    argv: Sequence[str] | None = None,
    metadata: Mapping[str, Mapping[str, str]] | None = None,
) -> dict:
    """Write ``tables`` (name -> DataFrame, with optional Parquet key-value ``metadata`` per name) and
    ``summary_name`` JSON under ``out`` with provenance."""
    from cm_cli.core.artifacts import OutputDir, write_json, write_parquet

    out = Path(out)
    summary = finite_json(dict(summary))
    with OutputDir(
        out, kind=kind, options=dict(options), inputs=[Path(p) for p in inputs], force=force, argv=argv
    ) as directory:
        outputs: dict[str, str] = {}
        for name, table in tables.items():
            outputs[name] = str(write_parquet(table, out / name, metadata=(metadata or {}).get(name)))
        outputs[summary_name] = str(write_json(dict(summary), out / summary_name))
        directory.finish(outputs=outputs, summary=summary)
    return dict(summary, outputs=outputs, skipped=False)
