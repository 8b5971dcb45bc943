"""Shared reading helpers for whitespace-separated ASVspoof protocol and key files.

Every parser needs the same things: gzipped or plain text, any line ending, a
``file:line`` error for a malformed row, and manifest paths relative to the data
root when the audio lives inside it.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

from cm_cli.core.errors import CmError
from cm_cli.core.labels import ASVSPOOF_KEYS, label_class

__all__ = ["iter_rows", "audio_prefix", "none_if", "check_key"]

KEYS = tuple(ASVSPOOF_KEYS)


def iter_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` for every non-empty line; ``.gz`` files are read transparently."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline=None) as handle:
            for number, line in enumerate(handle, 1):
                fields = line.split()
                if fields:
                    yield number, fields
    except FileNotFoundError:
        raise CmError(f"{path}: protocol file not found") from None
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError):
        raise CmError(f"{path}: not a readable text protocol file") from None


def check_key(path: Path, number: int, key: str) -> str:
    if label_class(key, ASVSPOOF_KEYS, exact=True) is None:
        raise CmError(f"{path}:{number}: unknown key {key!r}", "the key column must be 'bonafide' or 'spoof'")
    return key


def none_if(value: str, *nulls: str) -> str | None:
    return None if value in ("-", *nulls) else value


def audio_prefix(audio_dir: Path, data_root: str | Path | None) -> str:
    """``audio_dir`` relative to the data root when inside it, else absolute (manifest ``path`` rule)."""
    audio_dir = Path(audio_dir).resolve()
    if data_root is not None:
        try:
            return str(audio_dir.relative_to(Path(data_root).resolve()))
        except ValueError:
            pass
    return str(audio_dir)
