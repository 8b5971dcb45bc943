"""Artifact I/O under one import: atomic writes, tables and shard parts, hashes, provenance, leases, output dirs.

Why: callers (and other branches) import these names from here; each concern lives in
its own module below, so this module only re-exports them:

- ``cm_cli.core.atomic``: atomic writes of JSON and Parquet, file modes, write errors;
- ``cm_cli.core.parts``: reading a Parquet file or a complete directory of shard parts;
- ``cm_cli.core.hashing``: content hashes, input fingerprints, option digests;
- ``cm_cli.core.provenance``: the ``cm.json`` record (kinds are declared in ``cm_cli.core.kinds``);
- ``cm_cli.core.lease``: lock files that are leases across hosts;
- ``cm_cli.core.outputdir``: ``OutputDir``, skip-if-done and the lock of one step's directory.
"""

from __future__ import annotations

from cm_cli.core.atomic import (
    atomic_path,
    ensure_writable_dir,
    file_mode,
    read_json,
    write_error,
    write_json,
    write_parquet,
)
from cm_cli.core.hashing import HASH_LIMIT_BYTES, file_fingerprint, inputs_digest, options_digest, sha256_file
from cm_cli.core.lease import LEASE_SECONDS, pid_alive
from cm_cli.core.lease import Lease as _Lease
from cm_cli.core.outputdir import OutputDir
from cm_cli.core.parts import PART_RE, check_parts_agree, find_parts, read_arrow, read_table, table_files
from cm_cli.core.provenance import RECORD, provenance_record

__all__ = [
    "HASH_LIMIT_BYTES",
    "atomic_path",
    "write_json",
    "read_json",
    "write_parquet",
    "read_table",
    "read_arrow",
    "find_parts",
    "check_parts_agree",
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
    "PART_RE",
    "RECORD",
    "_Lease",
]


def __getattr__(name: str):
    if name == "ARTIFACT_KINDS":  # the former closed list, now the declared kinds (cm_cli.core.kinds.register_kind)
        from cm_cli.core.kinds import kinds

        return tuple(k.name for k in kinds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
