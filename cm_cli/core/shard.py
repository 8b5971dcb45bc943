"""``--shard I/N`` parsing, defaulting to the SLURM array task when one is running.

I counts from 0; under a SLURM array I = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN)
/ SLURM_ARRAY_TASK_STEP and N = SLURM_ARRAY_TASK_COUNT, so one job script serves every
array size, stepped ones (``--array=0-4:2``) included. An irregular list
(``--array=1,3,8``) has no arithmetic index and needs an explicit ``--shard``.
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
        raise UsageError(f"shard {text!r} is not of the form I/N", "e.g. 0/4 (I counts from 0)", option="shard")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise UsageError(f"shard {text}: N must be at least 1", option="shard")
    if index >= count:
        raise UsageError(f"shard {text}: I must be below N (I counts from 0, so 0..{count - 1})", option="shard")
    return Shard(index, count)


def resolve_shard(text: str | None, environ: Mapping[str, str] | None = None) -> Shard:
    """Explicit ``--shard`` wins; else the SLURM array task; else the whole job."""
    if text:
        return parse_shard(text)
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        return _slurm_shard(env)
    return Shard()


def _slurm_shard(env: Mapping[str, str]) -> Shard:
    hint = "give the shard I/N explicitly in the job script"
    try:
        task = int(env["SLURM_ARRAY_TASK_ID"])
        count = int(env["SLURM_ARRAY_TASK_COUNT"])
        low = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        step = int(env.get("SLURM_ARRAY_TASK_STEP") or "1")
        high = int(env["SLURM_ARRAY_TASK_MAX"]) if env.get("SLURM_ARRAY_TASK_MAX") else low + step * (count - 1)
    except ValueError:
        raise UsageError("SLURM_ARRAY_TASK_* variables are not integers", hint, option="shard") from None
    if step < 1 or (task - low) % step or (high - low) % step or (high - low) // step + 1 != count:
        raise UsageError(
            f"SLURM array task {task} (min {low}, max {high}, step {step}, count {count}) is not an evenly "
            "stepped range, so no shard index follows from it",
            hint,
            option="shard",
        )
    return parse_shard(f"{(task - low) // step}/{count}")
