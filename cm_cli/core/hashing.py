"""Content hashes and fingerprints of inputs and options: the keys of skip-if-done and of part agreement.

A rerun is skipped only when options *and input contents* match, never by path, so
these digests decide when work is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from cm_cli.core.atomic import json_default

__all__ = [
    "HASH_LIMIT_BYTES",
    "sha256_file",
    "file_fingerprint",
    "content_key",
    "inputs_digest",
    "options_digest",
    "record_inputs_digest",
    "normalised",
    "same_options",
]

HASH_LIMIT_BYTES = 64 * 1024 * 1024


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
            "files": [
                file_fingerprint(p, hash_limit=hash_limit) for p in files if p.suffix in {".parquet", ".json", ".pt"}
            ][:64],
        }
    if not path.exists():
        return {"path": str(path), "missing": True}
    stat = path.stat()
    info = {"path": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime}
    if stat.st_size < hash_limit:
        info["sha256"] = sha256_file(path)
    return info


def content_key(fingerprint: Mapping[str, Any]) -> Any:
    """What of a fingerprint identifies the content: the hash, else size and mtime; never the path."""
    if fingerprint.get("missing"):
        return None
    if fingerprint.get("kind") == "directory":
        return [
            fingerprint.get("n_files"),
            fingerprint.get("size"),
            [content_key(f) for f in fingerprint.get("files", [])],
        ]
    return fingerprint.get("sha256") or [fingerprint.get("size"), fingerprint.get("mtime")]


def inputs_digest(fingerprints: Sequence[Mapping[str, Any]]) -> str:
    """Digest of the inputs' contents (``file_fingerprint`` records), the key of skip-if-done."""
    text = json.dumps([content_key(f) for f in fingerprints], sort_keys=True, default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def options_digest(options: Mapping[str, Any]) -> str:
    text = json.dumps(options, sort_keys=True, default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_inputs_digest(record: Mapping[str, Any]) -> str | None:
    if record.get("inputs_digest"):
        return str(record["inputs_digest"])
    if isinstance(record.get("inputs"), list):
        return inputs_digest(record["inputs"])
    return None


def normalised(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=json_default))


def same_options(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return normalised(dict(a)) == normalised(dict(b))
