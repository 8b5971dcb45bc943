"""Atomic artifact I/O, directories of shard parts, and output directories with provenance.

Every write goes to a temporary file in the target's directory and is moved into
place with ``os.replace``, so a killed job never leaves a half-written artifact
that a later step could mistake for a finished one. ``OutputDir`` adds the
``cm.json`` provenance record, skip-if-done keyed on the resolved options, and a
lock against two writers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from cm_cli import __version__
from cm_cli.core.errors import CmError
from cm_cli.core.shard import Shard

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ARTIFACT_KINDS",
    "HASH_LIMIT_BYTES",
    "atomic_path",
    "write_json",
    "read_json",
    "write_parquet",
    "read_table",
    "read_arrow",
    "find_parts",
    "file_fingerprint",
    "options_digest",
    "provenance_record",
    "OutputDir",
    "ensure_writable_dir",
    "sha256_file",
    "pid_alive",
]

ARTIFACT_KINDS = (
    "manifest", "degraded", "embeddings", "run", "scores", "metrics",
    "loao", "probes", "cka", "patching", "report",
)
HASH_LIMIT_BYTES = 64 * 1024 * 1024
PART_RE = re.compile(r"^part-(\d{5})-of-(\d{5})\.parquet$")
RECORD = "cm.json"


# --------------------------------------------------------------------------- atomic writes


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` (and parents); a clear error if that or writing there is impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CmError(f"cannot create output directory {path}: {exc.strerror or exc}",
                      "choose a writable location with --out") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CmError(f"output directory {path} is not writable", "choose a writable location with --out")
    return path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it into place, else remove it."""
    target = Path(target)
    ensure_writable_dir(target.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    except OSError as exc:
        raise CmError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _json_default(value: Any) -> Any:
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
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=True)
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


def write_parquet(table: "pd.DataFrame | pa.Table", path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None) -> Path:
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


# --------------------------------------------------------------------------- reading tables


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
        raise CmError(f"{directory}: parts of different shard counts are mixed ({counts})",
                      "remove the parts of the stale sharding and rerun the missing shards")
    (count, found), = parts.items()
    missing = [i for i in range(count) if i not in found]
    if missing:
        names = ", ".join(f"part-{i:05d}-of-{count:05d}" for i in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise CmError(f"{directory}: incomplete set of parts, missing {names}{more}",
                      f"run the missing shard(s) with --shard I/{count}")
    return [found[i] for i in range(count)]


def _table_files(path: Path, name: str | None) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.exists():
        raise CmError(f"{path}: no such file or directory")
    if name and (path / f"{name}.parquet").is_file():
        return [path / f"{name}.parquet"]
    parts = find_parts(path)
    if parts:
        return parts
    candidates = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
    if name is None and len(candidates) == 1:
        return candidates
    wanted = f"{name}.parquet or " if name else ""
    raise CmError(f"{path}: found no {wanted}part-*-of-*.parquet files",
                  "point at the Parquet file itself or at the output directory of the step that made it")


def read_arrow(path: str | os.PathLike, *, name: str | None = None, columns: Sequence[str] | None = None) -> "pa.Table":
    """Read a Parquet file or a complete directory of parts as one Arrow table (only ``columns``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = _table_files(Path(path), name)
    tables = []
    for file in files:
        try:
            schema_names = pq.read_schema(file).names
        except (OSError, pa.ArrowInvalid) as exc:
            raise CmError(f"{file}: not a readable Parquet file ({exc})") from None
        if columns is not None:
            missing = [c for c in columns if c not in schema_names]
            if missing:
                raise CmError(f"{file}: no column(s) {', '.join(missing)}",
                              f"columns found: {', '.join(schema_names)}")
        tables.append(pq.read_table(file, columns=list(columns) if columns is not None else None))
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowInvalid as exc:
        raise CmError(f"{path}: parts have incompatible schemas ({exc})") from None


def read_table(path: str | os.PathLike, *, name: str | None = None, columns: Sequence[str] | None = None) -> "pd.DataFrame":
    """``read_arrow`` as a pandas DataFrame."""
    return read_arrow(path, name=name, columns=columns).to_pandas()


# --------------------------------------------------------------------------- provenance


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(path: str | os.PathLike, *, hash_limit: int = HASH_LIMIT_BYTES) -> dict:
    """Path, size, mtime and (for files under 64 MB) a content hash; directories list their files."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        return {
            "path": str(path.resolve()),
            "kind": "directory",
            "n_files": len(files),
            "size": sum(p.stat().st_size for p in files),
            "files": [file_fingerprint(p, hash_limit=hash_limit) for p in files if p.suffix in {".parquet", ".json", ".pt"}][:64],
        }
    if not path.exists():
        return {"path": str(path), "missing": True}
    stat = path.stat()
    info = {"path": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime}
    if stat.st_size < hash_limit:
        info["sha256"] = sha256_file(path)
    return info


def options_digest(options: Mapping[str, Any]) -> str:
    text = json.dumps(options, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _git_revision() -> str | None:
    source = Path(__file__).resolve().parents[2]
    if not (source / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {"python": sys.version.split()[0], "cm": __version__}
    for package in ("torch", "transformers", "numpy", "pandas", "pyarrow", "torchaudio"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def provenance_record(kind: str, *, options: Mapping[str, Any], inputs: Iterable[str | os.PathLike] = (),
                      device: str | None = None, argv: Sequence[str] | None = None) -> dict:
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    return {
        "kind": kind,
        "cm_version": __version__,
        "git_revision": _git_revision(),
        "argv": list(sys.argv if argv is None else argv),
        "options": dict(options),
        "options_digest": options_digest(options),
        "inputs": [file_fingerprint(p) for p in inputs],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished": None,
        "status": "running",
        "host": socket.gethostname(),
        "device": device,
        "versions": _versions(),
    }


# --------------------------------------------------------------------------- output directories


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still exists (stale locks and temp dirs are those of dead ones)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class OutputDir:
    """An output directory owned by one step, used as a context manager.

    On entry it creates the directory, takes the lock, and compares any existing
    record: ``done`` is True when a complete record with the same options exists
    (the caller then skips its work); different options raise ``CmError`` unless
    ``force``. ``finish(...)`` marks the record complete. With a ``shard`` of
    several parts, the record is ``cm.part-I-of-N.json`` and the lock is per shard.
    """

    path: Path
    kind: str
    options: Mapping[str, Any]
    inputs: Sequence[str | os.PathLike] = ()
    force: bool = False
    shard: Shard | None = None
    device: str | None = None
    argv: Sequence[str] | None = None
    done: bool = field(default=False, init=False)
    record: dict = field(default_factory=dict, init=False)
    previous: dict | None = field(default=None, init=False)
    _lock: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def record_path(self) -> Path:
        if self.shard is not None and not self.shard.is_whole:
            return self.path / f"cm.part-{self.shard.index}-of-{self.shard.count}.json"
        return self.path / RECORD

    @property
    def lock_path(self) -> Path:
        return self.path / ("." + self.record_path.stem + ".lock")

    def __enter__(self) -> "OutputDir":
        ensure_writable_dir(self.path)
        self._acquire()
        try:
            self._check_previous()
            if not self.done:
                self.record = provenance_record(self.kind, options=self.options, inputs=self.inputs,
                                                device=self.device, argv=self.argv)
                if self.shard is not None:
                    self.record["shard"] = str(self.shard)
                write_json(self.record, self.record_path)
            else:
                self.record = dict(self.previous or {})
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is not None and not self.done and self.record.get("status") == "running":
                self.record["status"] = "failed"
                self.record["error"] = str(exc)[:2000]
                self.record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                with contextlib.suppress(Exception):
                    write_json(self.record, self.record_path)
        finally:
            self._release()

    def finish(self, *, outputs: Mapping[str, Any] | None = None, summary: Mapping[str, Any] | None = None) -> dict:
        if self.done:
            return self.record
        self.record["status"] = "complete"
        self.record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if outputs:
            self.record["outputs"] = dict(outputs)
        if summary is not None:
            self.record["summary"] = dict(summary)
        write_json(self.record, self.record_path)
        return self.record

    # ---- internals

    def _check_previous(self) -> None:
        if not self.record_path.exists():
            return
        try:
            previous = read_json(self.record_path)
        except CmError:
            previous = {}
        self.previous = previous
        if self.force:
            return
        if previous.get("kind") not in (None, self.kind):
            raise CmError(
                f"{self.path} already holds a '{previous.get('kind')}' artifact, not '{self.kind}'",
                "choose another --out, or pass --force to overwrite",
            )
        old = previous.get("options") or {}
        if previous.get("options_digest") == options_digest(self.options) or _same(old, self.options):
            self.done = previous.get("status") == "complete"
            return
        changed = sorted(k for k in set(old) | set(self.options) if _norm(old.get(k)) != _norm(self.options.get(k)))
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {self.options.get(k)!r}" for k in changed[:6])
        raise CmError(
            f"{self.path} was made with different options ({shown})",
            "pass --force to redo it with the new options, or choose another --out",
        )

    def _acquire(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = {}
                with contextlib.suppress(Exception):
                    holder = json.loads(self.lock_path.read_text())
                stale = holder.get("host") == info["host"] and not pid_alive(int(holder.get("pid", -1)))
                if stale:
                    with contextlib.suppress(FileNotFoundError):
                        self.lock_path.unlink()
                    continue
                raise CmError(
                    f"{self.path} is being written by another cm process "
                    f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')})",
                    f"wait for it to finish, or delete {self.lock_path} if that process is gone",
                ) from None
            except OSError as exc:
                raise CmError(f"cannot write in {self.path}: {exc.strerror or exc}") from None
            with os.fdopen(fd, "w") as handle:
                json.dump(info, handle)
            self._lock = self.lock_path
            return
        raise CmError(f"could not take the lock {self.lock_path}")

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(FileNotFoundError):
                self._lock.unlink()
            self._lock = None


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=_json_default))


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _norm(dict(a)) == _norm(dict(b))
