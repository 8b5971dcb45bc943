"""Atomic artifact I/O, directories of shard parts, and output directories with provenance.

Every write goes to a temporary file in the target's directory and is moved into
place with ``os.replace``, so a killed job never leaves a half-written artifact
that a later step could mistake for a finished one. ``OutputDir`` adds the
``cm.json`` provenance record, skip-if-done keyed on the resolved options, and a
lock against two writers.
"""

from __future__ import annotations

import contextlib
import errno
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
    "table_files",
    "file_fingerprint",
    "options_digest",
    "provenance_record",
    "OutputDir",
    "ensure_writable_dir",
    "sha256_file",
    "pid_alive",
    "file_mode",
    "write_error",
    "inputs_digest",
    "LEASE_SECONDS",
]

ARTIFACT_KINDS = (
    "manifest", "degraded", "embeddings", "run", "scores", "metrics",
    "loao", "probes", "cka", "patching", "report", "profile",
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
    hint = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free space (or quota) on that filesystem, or choose another --out, then rerun: finished items are kept"
    return CmError(f"cannot write {target}: {reason}", hint)


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
                raise CmError(f"{path}: unreadable record of part {index}/{count}",
                              f"rerun that shard with --shard {index}/{count}") from None
    if not records:
        return
    for index, record in records.items():
        if record.get("status") != "complete":
            raise CmError(f"{directory}: part {index}/{count} is not complete (status {record.get('status')!r})",
                          f"rerun it with --shard {index}/{count}")
    first_index, first = next(iter(records.items()))
    base = {k: v for k, v in (first.get("options") or {}).items() if k not in _PER_SHARD_OPTIONS}
    for index, record in records.items():
        options = {k: v for k, v in (record.get("options") or {}).items() if k not in _PER_SHARD_OPTIONS}
        if not _same(base, options):
            changed = sorted(k for k in set(base) | set(options) if _norm(base.get(k)) != _norm(options.get(k)))
            shown = "; ".join(f"{k}: {base.get(k)!r} vs {options.get(k)!r}" for k in changed[:6])
            raise CmError(f"{directory}: parts {first_index}/{count} and {index}/{count} were made with "
                          f"different options ({shown})",
                          "rerun the odd shard(s) with the same options, each with --force")
        digests = (_record_inputs_digest(first), _record_inputs_digest(record))
        if None not in digests and digests[0] != digests[1]:
            raise CmError(f"{directory}: parts {first_index}/{count} and {index}/{count} were made from "
                          "different inputs (their content hashes differ)",
                          "rerun the shards made from the old input, each with --force")


def _record_inputs_digest(record: Mapping[str, Any]) -> str | None:
    if record.get("inputs_digest"):
        return str(record["inputs_digest"])
    if isinstance(record.get("inputs"), list):
        return inputs_digest(record["inputs"])
    return None


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
        raise CmError(f"{path}: holds both a whole-run {whole.name} and part-*-of-*.parquet files",
                      "one of them is stale: delete it (or rerun the step with --force) so only one layout remains")
    if whole is not None and whole.is_file():
        return [whole]
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


def _content_key(fingerprint: Mapping[str, Any]) -> Any:
    """What of a fingerprint identifies the content: the hash, else size and mtime; never the path."""
    if fingerprint.get("missing"):
        return None
    if fingerprint.get("kind") == "directory":
        return [fingerprint.get("n_files"), fingerprint.get("size"),
                [_content_key(f) for f in fingerprint.get("files", [])]]
    return fingerprint.get("sha256") or [fingerprint.get("size"), fingerprint.get("mtime")]


def inputs_digest(fingerprints: Sequence[Mapping[str, Any]]) -> str:
    """Digest of the inputs' contents (``file_fingerprint`` records), the key of skip-if-done."""
    text = json.dumps([_content_key(f) for f in fingerprints], sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
                      device: str | None = None, argv: Sequence[str] | None = None,
                      fingerprints: Sequence[Mapping[str, Any]] | None = None) -> dict:
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    if fingerprints is None:
        fingerprints = [file_fingerprint(p) for p in inputs]
    return {
        "kind": kind,
        "cm_version": __version__,
        "git_revision": _git_revision(),
        "argv": list(sys.argv if argv is None else argv),
        "options": dict(options),
        "options_digest": options_digest(options),
        "inputs": list(fingerprints),
        "inputs_digest": inputs_digest(fingerprints),
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


LEASE_SECONDS = 300.0  # a lock not refreshed for this long belongs to a dead job (env CM_LOCK_LEASE)


def _lease_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("CM_LOCK_LEASE", LEASE_SECONDS)))
    except ValueError:
        return LEASE_SECONDS


class _Lease:
    """A lock file that is a lease: created whole (link of a written file), refreshed, taken over when stale.

    Valid across hosts on a shared filesystem: the holder rewrites the file every lease/4
    seconds from a daemon thread; another host takes the lock over once it has not been
    refreshed for a whole lease. The lock's age is measured on the filesystem's own
    clock, never a compute node's: the lock file's mtime against the mtime of a probe
    file written in the same directory just now (both stamped by the file server), so
    clock skew between nodes neither frees a live lock nor keeps a dead one. The
    ``refreshed`` time inside the file is for people reading it. On the holder's own host
    a dead pid frees it at once. A lock file that is empty or unreadable (an older cm
    killed between create and write) is stale.
    """

    def __init__(self, path: Path, lease: float):
        self.path = path
        self.lease = lease
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self._stop = None
        self._thread = None

    def _info(self) -> dict:
        now = time.time()
        return {"pid": os.getpid(), "host": socket.gethostname(), "since": now, "refreshed": now,
                "lease_seconds": self.lease, "token": self.token}

    def _write_tmp(self) -> Path:
        fd, name = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".new", dir=self.path.parent)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), file_mode())  # colleagues can see who holds it
            json.dump(self._info(), handle)
        return Path(name)

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"missing": True}
        except (OSError, ValueError):
            return {}

    def stale_reason(self, holder: Mapping[str, Any]) -> str | None:
        if not holder.get("token") and not holder.get("pid"):
            return "empty or unreadable lock file"
        host = socket.gethostname()
        if holder.get("host") == host:
            try:
                alive = pid_alive(int(holder.get("pid", -1)))
            except (TypeError, ValueError):
                alive = False
            if not alive:
                return f"pid {holder.get('pid')} on this host is gone"
        lease = self._holder_lease(holder)
        age = self.age()
        if age is None:
            return None  # gone meanwhile: the caller retries the link
        if age > lease:
            return f"not refreshed for {age:.0f} s of filesystem time (lease {lease:.0f} s)"
        return None

    def _holder_lease(self, holder: Mapping[str, Any]) -> float:
        try:
            return float(holder.get("lease_seconds") or self.lease)
        except (TypeError, ValueError):
            return self.lease

    def filesystem_now(self) -> float:
        """The file server's current time: the mtime of a probe file written in the lock's directory."""
        fd, name = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".clock", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write("t")
            return os.stat(name).st_mtime
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    def age(self) -> float | None:
        """Seconds since the lock file was last written, on the filesystem's clock (``None``: no lock file)."""
        try:
            written = self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        return self.filesystem_now() - written

    def acquire(self, owner: Path) -> None:
        for _ in range(5):
            tmp = self._write_tmp()
            try:
                os.link(tmp, self.path)  # atomic, also on NFS: the lock never exists half-written
                linked = True
            except FileExistsError:
                linked = False
            except OSError as exc:  # a filesystem without hard links: exclusive create, then write
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise write_error(self.path, exc) from None
                linked = self._create_exclusive()
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            if linked:
                self._start_refresh()
                return
            holder = self.holder()
            if holder.get("missing"):
                continue
            if self.stale_reason(holder) is None:
                expires = time.time() + self._holder_lease(holder) - (self.age() or 0.0)  # on this host's clock
                raise CmError(
                    f"{owner} is being written by another cm process "
                    f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, lease until "
                    f"{time.strftime('%H:%M:%S', time.localtime(expires))})",
                    "wait for it to finish; a lock of a killed job is taken over once its lease expires",
                )
            # take over: move the stale file aside under a unique name, then retry the link
            aside = self.path.with_name(f"{self.path.name}.stale.{self.token.replace(':', '_')}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path, aside)
                with contextlib.suppress(OSError):
                    aside.unlink()
        raise CmError(f"could not take the lock {self.path}", "another process keeps taking it; retry")

    def _create_exclusive(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode())
        except FileExistsError:
            return False
        except OSError as exc:
            raise write_error(self.path, exc) from None
        with os.fdopen(fd, "w") as handle:
            json.dump(self._info(), handle)
        return True

    def _start_refresh(self) -> None:
        import threading

        self._stop = threading.Event()

        def refresh() -> None:
            while not self._stop.wait(self.lease / 4):
                holder = self.holder()
                if holder.get("token") != self.token:
                    return  # taken over (this process stalled for a whole lease); do not steal it back
                info = {**holder, "refreshed": time.time()}
                with contextlib.suppress(OSError):
                    fd, name = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".new", dir=self.path.parent)
                    with os.fdopen(fd, "w") as handle:
                        os.fchmod(handle.fileno(), file_mode())
                        json.dump(info, handle)
                    os.replace(name, self.path)

        self._thread = threading.Thread(target=refresh, name="cm-lock-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        if self._stop is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
        if self.holder().get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


@dataclass
class OutputDir:
    """An output directory owned by one step, used as a context manager.

    On entry it creates the directory, takes the lock (a lease, see ``_Lease``), and
    compares any existing record: ``done`` is True when a complete record with the same
    resolved options *and the same input contents* (sha256 of each input, as the
    provenance records them) exists, so the caller skips its work. Different inputs
    (a manifest rewritten at the same path) make it redo the work and ``stale`` says
    why; different options raise ``CmError`` unless ``force``. ``finish(...)`` marks the
    record complete. With a ``shard`` of several parts, the record is
    ``cm.part-I-of-N.json`` and the lock is per shard; a directory never holds both a
    whole-run record and part records (``force`` removes the other layout).
    """

    path: Path
    kind: str
    options: Mapping[str, Any]
    inputs: Sequence[str | os.PathLike] = ()
    force: bool = False
    shard: Shard | None = None
    device: str | None = None
    argv: Sequence[str] | None = None
    lease: float | None = None
    done: bool = field(default=False, init=False)
    stale: str | None = field(default=None, init=False)
    record: dict = field(default_factory=dict, init=False)
    previous: dict | None = field(default=None, init=False)
    fingerprints: list = field(default_factory=list, init=False)
    _lock: _Lease | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def sharded(self) -> bool:
        return self.shard is not None and not self.shard.is_whole

    @property
    def record_path(self) -> Path:
        if self.sharded:
            return self.path / f"cm.part-{self.shard.index}-of-{self.shard.count}.json"
        return self.path / RECORD

    @property
    def lock_path(self) -> Path:
        return self.path / ("." + self.record_path.stem + ".lock")

    @property
    def inputs_digest(self) -> str:
        return inputs_digest(self.fingerprints)

    def __enter__(self) -> "OutputDir":
        ensure_writable_dir(self.path)
        self._acquire()
        try:
            self.fingerprints = [file_fingerprint(p) for p in self.inputs]
            self._check_layout()
            self._check_previous()
            if not self.done:
                self.record = provenance_record(self.kind, options=self.options, device=self.device,
                                                argv=self.argv, fingerprints=self.fingerprints)
                if self.shard is not None:
                    self.record["shard"] = str(self.shard)
                if self.stale:
                    self.record["redone_because"] = self.stale
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
                self.record["error"] = str(exc)[:2000] or type(exc).__name__
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

    def _check_layout(self) -> None:
        """A whole-run record and part records never share a directory (readers could not tell which holds)."""
        if self.sharded:
            others = [self.path / RECORD] if (self.path / RECORD).is_file() else []
            what = "a whole-run result (cm.json)"
        else:
            others = sorted(self.path.glob("cm.part-*-of-*.json"))
            what = f"sharded results ({len(others)} part record(s))"
        if not others:
            return
        kinds = set()
        for other in others:
            with contextlib.suppress(CmError):
                kinds.add(read_json(other).get("kind"))
        if kinds and self.kind not in kinds:
            return  # another kind of artifact: _check_previous-style refusal happens on the same record name only
        if not self.force:
            raise CmError(f"{self.path} already holds {what}; a directory holds either one result or its parts",
                          "pass --force to replace it, or choose another --out")
        for other in others:
            with contextlib.suppress(CmError):
                for value in (read_json(other).get("outputs") or {}).values():
                    if isinstance(value, str) and Path(value).parent == self.path:
                        with contextlib.suppress(FileNotFoundError):
                            Path(value).unlink()
            with contextlib.suppress(FileNotFoundError):
                other.unlink()
        if not self.sharded:
            for part in self.path.glob("*-?????-of-?????.parquet"):
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()

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
            if previous.get("status") != "complete":
                return
            before = _record_inputs_digest(previous)
            if before is not None and before != self.inputs_digest:
                changed = [str(Path(p).name) for p, a, b in zip(self.inputs, previous.get("inputs") or [], self.fingerprints)
                           if _content_key(a) != _content_key(b)] or ["the list of inputs"]
                self.stale = f"input(s) changed since the last run: {', '.join(changed)}"
                return
            self.done = True
            return
        changed = sorted(k for k in set(old) | set(self.options) if _norm(old.get(k)) != _norm(self.options.get(k)))
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {self.options.get(k)!r}" for k in changed[:6])
        raise CmError(
            f"{self.path} was made with different options ({shown})",
            "pass --force to redo it with the new options, or choose another --out",
        )

    def _acquire(self) -> None:
        lease = _Lease(self.lock_path, self.lease or _lease_seconds())
        lease.acquire(self.path)
        self._lock = lease

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=_json_default))


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _norm(dict(a)) == _norm(dict(b))
