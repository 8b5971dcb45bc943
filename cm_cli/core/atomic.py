"""Atomic writes: a temporary file beside the target, moved into place with ``os.replace``.

A killed job never leaves a half-written artifact that a later step could mistake for
a finished one, and files get the mode the umask allows so colleagues can read them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ensure_writable_dir",
    "file_mode",
    "write_error",
    "atomic_path",
    "json_default",
    "write_json",
    "read_json",
    "write_parquet",
]


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` (and parents); a clear error if that or writing there is impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CmError(
            f"cannot create output directory {path}: {exc.strerror or exc}",
            "choose a writable output directory",
            option="out",
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CmError(f"output directory {path} is not writable", "choose a writable output directory", option="out")
    return path


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file under the current umask (0666 & ~umask)."""
    mask = _umask()
    return 0o666 & ~mask


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it (and put it back at once)
    os.umask(mask)
    return mask


def write_error(target: Path, exc: OSError) -> CmError:
    """One line for a failed write (disk full, quota, permissions), naming the file."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return CmError(
            f"cannot write {target}: {reason}",
            "free space (or quota) on that filesystem, or write to "
            "another output directory, then rerun: finished items are kept",
            option="out",
        )
    return CmError(f"cannot write {target}: {reason}")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it into place, else remove it.

    The file gets the mode the umask allows (not mkstemp's 0600), so colleagues on a
    shared project space can read it. An ``OSError`` while writing (disk full, quota)
    becomes a ``CmError`` naming ``target``, and nothing is left under either name.
    """
    target = Path(target)
    ensure_writable_dir(target.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    except OSError as exc:
        raise write_error(target, exc) from None
    tmp = Path(tmp_name)
    try:
        try:
            os.fchmod(fd, file_mode())
        finally:
            os.close(fd)
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_error(target, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=json_default, allow_nan=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CmError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise CmError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def write_parquet(
    table: "pd.DataFrame | pa.Table", path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None
) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): str(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp)
    return Path(path)
