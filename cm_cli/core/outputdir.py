"""An output directory owned by one step: its ``cm.json`` record, skip-if-done, and its lease lock.

One class decides for every command whether existing results are reused, redone
(inputs changed) or refused (options changed), so reruns behave the same everywhere.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from cm_cli.core.atomic import ensure_writable_dir, read_json, write_json
from cm_cli.core.errors import CmError
from cm_cli.core.hashing import (
    content_key,
    file_fingerprint,
    inputs_digest,
    normalised,
    options_digest,
    record_inputs_digest,
    same_options,
)
from cm_cli.core.lease import Lease, lease_seconds
from cm_cli.core.provenance import RECORD, provenance_record
from cm_cli.core.shard import Shard

__all__ = ["OutputDir"]


@dataclass
class OutputDir:
    """An output directory owned by one step, used as a context manager.

    On entry it creates the directory, takes the lock (a lease, see ``Lease``), and
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
    _lock: Lease | None = field(default=None, init=False)

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
                self.record = provenance_record(
                    self.kind, options=self.options, device=self.device, argv=self.argv, fingerprints=self.fingerprints
                )
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
            raise CmError(
                f"{self.path} already holds {what}; a directory holds either one result or its parts",
                "replace it (forced), or write to another output directory",
                option=("force", "out"),
            )
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
                "write to another output directory, or overwrite it (forced)",
                option=("out", "force"),
            )
        old = previous.get("options") or {}
        if previous.get("options_digest") == options_digest(self.options) or same_options(old, self.options):
            if previous.get("status") != "complete":
                return
            before = record_inputs_digest(previous)
            if before is not None and before != self.inputs_digest:
                pairs = zip(self.inputs, previous.get("inputs") or [], self.fingerprints)
                changed = [str(Path(p).name) for p, a, b in pairs if content_key(a) != content_key(b)] or [
                    "the list of inputs"
                ]
                self.stale = f"input(s) changed since the last run: {', '.join(changed)}"
                return
            self.done = True
            return
        changed = sorted(
            k for k in set(old) | set(self.options) if normalised(old.get(k)) != normalised(self.options.get(k))
        )
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {self.options.get(k)!r}" for k in changed[:6])
        raise CmError(
            f"{self.path} was made with different options ({shown})",
            "redo it with the new options (forced), or write to another output directory",
            option=("force", "out"),
        )

    def _acquire(self) -> None:
        lease = Lease(self.lock_path, self.lease or lease_seconds())
        lease.acquire(self.path)
        self._lock = lease

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
