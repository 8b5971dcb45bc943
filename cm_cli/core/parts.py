"""Reading tables: one Parquet file, or a complete and consistent directory of shard parts as one table.

Readers refuse an incomplete or mixed set of parts, parts whose records disagree, and a
directory holding both a whole-run table and parts, so a half-finished sharded job is
never read as if it were whole.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.hashing import normalised, record_inputs_digest, same_options

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = ["PART_RE", "find_parts", "check_parts_agree", "table_files", "read_arrow", "read_table"]

PART_RE = re.compile(r"^part-(\d{5})-of-(\d{5})\.parquet$")


def find_parts(directory: str | os.PathLike) -> list[Path]:
    """The complete, consistent set of ``part-IIIII-of-NNNNN.parquet`` files in a directory.

    Refuses a set that mixes different N or misses parts, naming the missing ones.
    Returns an empty list when the directory holds no parts at all.
    """
    directory = Path(directory)
    parts: dict[int, dict[int, Path]] = {}
    for entry in directory.iterdir() if directory.is_dir() else []:
        match = PART_RE.match(entry.name)
        if match:
            parts.setdefault(int(match.group(2)), {})[int(match.group(1))] = entry
    if not parts:
        return []
    if len(parts) > 1:
        counts = ", ".join(f"of-{n:05d}" for n in sorted(parts))
        raise CmError(
            f"{directory}: parts of different shard counts are mixed ({counts})",
            "remove the parts of the stale sharding and rerun the missing shards",
        )
    ((count, found),) = parts.items()
    missing = [i for i in range(count) if i not in found]
    if missing:
        names = ", ".join(f"part-{i:05d}-of-{count:05d}" for i in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise CmError(
            f"{directory}: incomplete set of parts, missing {names}{more}",
            f"run the missing shard(s) I/{count}",
            option="shard",
        )
    check_parts_agree(directory, count)
    return [found[i] for i in range(count)]


# options that legitimately differ between the shards of one run
_PER_SHARD_OPTIONS = ("shard", "workers")


def check_parts_agree(directory: Path, count: int) -> None:
    """Refuse parts whose records show different resolved options or inputs, or an unfinished part.

    Parts written without a record (by hand, by an older cm) are not checked.
    """
    records = {}
    for index in range(count):
        path = directory / f"cm.part-{index}-of-{count}.json"
        if path.is_file():
            try:
                records[index] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise CmError(
                    f"{path}: unreadable record of part {index}/{count}", f"rerun shard {index}/{count}", option="shard"
                ) from None
    if not records:
        return
    for index, record in records.items():
        if record.get("status") != "complete":
            raise CmError(
                f"{directory}: part {index}/{count} is not complete (status {record.get('status')!r})",
                f"rerun shard {index}/{count}",
                option="shard",
            )
    first_index, first = next(iter(records.items()))
    base = {k: v for k, v in (first.get("options") or {}).items() if k not in _PER_SHARD_OPTIONS}
    for index, record in records.items():
        options = {k: v for k, v in (record.get("options") or {}).items() if k not in _PER_SHARD_OPTIONS}
        if not same_options(base, options):
            changed = sorted(
                k for k in set(base) | set(options) if normalised(base.get(k)) != normalised(options.get(k))
            )
            shown = "; ".join(f"{k}: {base.get(k)!r} vs {options.get(k)!r}" for k in changed[:6])
            raise CmError(
                f"{directory}: parts {first_index}/{count} and {index}/{count} were made with "
                f"different options ({shown})",
                "rerun the odd shard(s) with the same options, each forced",
                option="force",
            )
        digests = (record_inputs_digest(first), record_inputs_digest(record))
        if None not in digests and digests[0] != digests[1]:
            raise CmError(
                f"{directory}: parts {first_index}/{count} and {index}/{count} were made from "
                "different inputs (their content hashes differ)",
                "rerun the shards made from the old input, each forced",
                option="force",
            )


def table_files(path: str | os.PathLike, name: str | None = None) -> list[Path]:
    """The Parquet file(s) ``read_arrow`` reads: the file itself, ``{name}.parquet`` in a directory, or its parts."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise CmError(f"{path}: no such file or directory")
    whole = path / f"{name}.parquet" if name else None
    has_parts = any(PART_RE.match(p.name) for p in path.iterdir())
    if whole is not None and whole.is_file() and has_parts:
        raise CmError(
            f"{path}: holds both a whole-run {whole.name} and part-*-of-*.parquet files",
            "one of them is stale: delete it (or redo the step, forced) so only one layout remains",
            option="force",
        )
    if whole is not None and whole.is_file():
        return [whole]
    parts = find_parts(path)
    if parts:
        return parts
    candidates = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
    if name is None and len(candidates) == 1:
        return candidates
    wanted = f"{name}.parquet or " if name else ""
    raise CmError(
        f"{path}: found no {wanted}part-*-of-*.parquet files",
        "point at the Parquet file itself or at the output directory of the step that made it",
    )


def read_arrow(path: str | os.PathLike, *, name: str | None = None, columns: Sequence[str] | None = None) -> "pa.Table":
    """Read a Parquet file or a complete directory of parts as one Arrow table (only ``columns``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = table_files(path, name)
    tables = []
    for file in files:
        try:
            schema_names = pq.read_schema(file).names
        except (OSError, pa.ArrowInvalid) as exc:
            raise CmError(f"{file}: not a readable Parquet file ({exc})") from None
        if columns is not None:
            missing = [c for c in columns if c not in schema_names]
            if missing:
                raise CmError(f"{file}: no column(s) {', '.join(missing)}", f"columns found: {', '.join(schema_names)}")
        tables.append(pq.read_table(file, columns=list(columns) if columns is not None else None))
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowInvalid as exc:
        raise CmError(f"{path}: parts have incompatible schemas ({exc})") from None


def read_table(
    path: str | os.PathLike, *, name: str | None = None, columns: Sequence[str] | None = None
) -> "pd.DataFrame":
    """``read_arrow`` as a pandas DataFrame."""
    return read_arrow(path, name=name, columns=columns).to_pandas()
