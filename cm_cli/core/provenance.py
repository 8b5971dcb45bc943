"""The ``cm.json`` provenance record: what made an artifact (command, options, inputs, versions, host).

Every output directory carries one, so a result can be traced back and reproduced
and a rerun can tell whether the work is already done.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from cm_cli import __version__
from cm_cli.core.hashing import file_fingerprint, inputs_digest, options_digest
from cm_cli.core.kinds import is_kind

__all__ = ["RECORD", "provenance_record"]

RECORD = "cm.json"


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


def provenance_record(
    kind: str,
    *,
    options: Mapping[str, Any],
    inputs: Iterable[str | os.PathLike] = (),
    device: str | None = None,
    argv: Sequence[str] | None = None,
    fingerprints: Sequence[Mapping[str, Any]] | None = None,
) -> dict:
    if not is_kind(kind):
        raise ValueError(f"unknown artifact kind {kind!r}: declare it with cm_cli.core.kinds.register_kind")
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
