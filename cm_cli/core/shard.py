"""``--shard I/N`` parsing, defaulting to the SLURM array task when one is running.

I counts from 0; under a SLURM array I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN
and N = SLURM_ARRAY_TASK_COUNT, so one job script serves every array size.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Sequence, TypeVar

from cm_cli.core.errors import UsageError

__all__ = ["Shard", "parse_shard", "resolve_shard"]

T = TypeVar("T")
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @property
    def is_whole(self) -> bool:
        return self.count == 1

    def select(self, items: Sequence[T]) -> list[T]:
        """Contiguous, balanced slice: shard i of n gets items[start:stop]."""
        n = len(items)
        start = (n * self.index) // self.count
        stop = (n * (self.index + 1)) // self.count
        return list(items[start:stop])

    def bounds(self, n: int) -> tuple[int, int]:
        return (n * self.index) // self.count, (n * (self.index + 1)) // self.count

    def part_name(self, stem: str = "part", ext: str = "parquet") -> str:
        return f"{stem}-{self.index:05d}-of-{self.count:05d}.{ext}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    match = _SHARD.match(text or "")
    if not match:
        raise UsageError(f"--shard {text!r} is not of the form I/N", "e.g. --shard 0/4 (I counts from 0)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise UsageError(f"--shard {text}: N must be at least 1")
    if index >= count:
        raise UsageError(f"--shard {text}: I must be below N (I counts from 0, so 0..{count - 1})")
    return Shard(index, count)


def resolve_shard(text: str | None, environ: Mapping[str, str] | None = None) -> Shard:
    """Explicit ``--shard`` wins; else the SLURM array task; else the whole job."""
    if text:
        return parse_shard(text)
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        try:
            task = int(env["SLURM_ARRAY_TASK_ID"])
            low = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            count = int(env["SLURM_ARRAY_TASK_COUNT"])
        except ValueError:
            raise UsageError("SLURM_ARRAY_TASK_* variables are not integers") from None
        return parse_shard(f"{task - low}/{count}")
    return Shard()
