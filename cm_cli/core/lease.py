"""Lock files that are leases, valid across the hosts of a shared filesystem.

A job killed on another node blocks its requeued copy for at most one lease, and
clock skew between nodes does not matter (ages are measured on the file server's clock).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from cm_cli.core.atomic import file_mode, write_error
from cm_cli.core.errors import CmError

__all__ = ["LEASE_SECONDS", "Lease", "lease_seconds", "pid_alive"]


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


def lease_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("CM_LOCK_LEASE", LEASE_SECONDS)))
    except ValueError:
        return LEASE_SECONDS


class Lease:
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
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": now,
            "refreshed": now,
            "lease_seconds": self.lease,
            "token": self.token,
        }

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
