"""Gradient reversal for domain-adversarial training (DANN, Ganin & Lempitsky 2015).

Three small pieces, kept apart: the autograd function (identity forward, gradient
times ``-coeff`` backward), a stateless layer that applies it with a coefficient given
at call time, and a schedule object that says what the coefficient is at a step. The
training loop owns the step counter and passes ``schedule(step)`` to the layer, so no
state hides in the layer.

Schedules (``p = min(step / total_steps, 1)``):
- ``constant``: ``lambda(p) = hi``
- ``linear``:   ``lambda(p) = lo + (hi - lo) * p``
- ``ganin``:    ``lambda(p) = lo + (hi - lo) * (2 / (1 + exp(-gamma * p)) - 1)`` with ``gamma = 10``
  by default (the DANN paper's warm start: 0 at the start, near ``hi`` by the end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cm_cli.core.errors import CmError

__all__ = ["GRL_SCHEDULES", "LambdaSchedule", "grad_reverse", "GradientReversal"]

GRL_SCHEDULES = ("constant", "linear", "ganin")


@dataclass(frozen=True)
class LambdaSchedule:
    """The reversal coefficient as a function of the training step (formulas in the module docstring)."""

    kind: str = "ganin"
    hi: float = 1.0
    lo: float = 0.0
    total_steps: int = 1000
    gamma: float = 10.0

    def __post_init__(self):
        if self.kind not in GRL_SCHEDULES:
            raise CmError(f"unknown lambda schedule {self.kind!r}", hint=f"choose one of {', '.join(GRL_SCHEDULES)}")
        if self.total_steps <= 0:
            raise CmError(f"lambda schedule needs total_steps > 0, got {self.total_steps}")

    def progress(self, step: int) -> float:
        return min(max(step, 0) / self.total_steps, 1.0)

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return float(self.hi)
        p = self.progress(step)
        if self.kind == "linear":
            return float(self.lo + (self.hi - self.lo) * p)
        return float(self.lo + (self.hi - self.lo) * (2.0 / (1.0 + math.exp(-self.gamma * p)) - 1.0))


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff: float):
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.neg() * ctx.coeff, None


def grad_reverse(x, coeff: float = 1.0):
    """Identity on the forward pass; multiplies the incoming gradient by ``-coeff`` on the way back."""
    return _GradReverse.apply(x, coeff)


class GradientReversal(nn.Module):
    """Stateless layer: ``forward(x, coeff=1.0)`` applies ``grad_reverse``."""

    def forward(self, x, coeff: float = 1.0):
        return grad_reverse(x, coeff)
