"""Step-indexed schedules: the learning rate (cosine with linear warm-up) and the GRL coefficient.

Both are pure functions of the optimiser step, so a resumed run recomputes them
from the saved step and nothing else. The GRL coefficient uses
``cm_cli.models.grl.LambdaSchedule`` (constant, linear, ganin) and adds a warm-up:
``lambda = 0`` for the first ``warmup`` steps, then the schedule runs over the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["cosine_with_warmup", "GrlSchedule"]


def cosine_with_warmup(step: int, *, warmup_steps: int, total_steps: int, floor: float = 0.0) -> float:
    """Multiplier of the base learning rate at ``step``: linear 0 -> 1 over warm-up, then cosine to ``floor``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class GrlSchedule:
    """GRL coefficient at a step: 0 during ``warmup``, then ``kind`` from 0 (or ``lambda_max`` if constant)."""

    kind: str = "ganin"
    lambda_max: float = 1.0
    total_steps: int = 1000
    warmup: int = 0

    def __call__(self, step: int) -> float:
        from cm_cli.models.grl import LambdaSchedule

        if step < self.warmup:
            return 0.0
        span = max(1, self.total_steps - self.warmup)
        return LambdaSchedule(kind=self.kind, hi=self.lambda_max, lo=0.0, total_steps=span)(step - self.warmup)
