"""Everything the training loop carries from step to step, and how it goes into and out of ``last.pt``.

``TrainState`` is the loop's only mutable state; the ``training`` entry of a
checkpoint is ``TrainState.to_payload`` and a resumed run starts from
``TrainState.from_payload``, so nothing the loop needs can be left out of a save.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cm_cli.core.errors import CmError
from cm_cli.training.data import AugmentationLog

__all__ = ["TrainState", "check_world_size"]

_NO_BEST = {"eer": float("inf"), "min_dcf": float("inf"), "step": None}


@dataclass
class TrainState:
    """Step counters, model-selection bookkeeping, history and what the data side reported."""

    total_steps: int
    world_size: int = 1
    step: int = 0  # optimiser steps done
    epoch: int = 0
    offset: int = 0  # batches of ``epoch`` already consumed (this rank's share)
    best: dict = field(default_factory=lambda: dict(_NO_BEST))
    bad_validations: int = 0
    history: list = field(default_factory=list)
    augment_log: AugmentationLog = field(default_factory=AugmentationLog)
    n_failed: int = 0
    failed_examples: list = field(default_factory=list)
    adversary: dict = field(default_factory=dict)
    status: str = "complete"  # complete | early_stopped | interrupted

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps or self.status != "complete"

    def add_failures(self, failures) -> None:
        self.n_failed += len(failures)
        self.failed_examples.extend(m for _, m in failures[: max(0, 10 - len(self.failed_examples))])

    def select(self, result: dict) -> bool:
        """Compare a validation with the best so far; True (and remembered) when it improves."""
        improved = (result["dev_eer"], result["dev_min_dcf"]) < (self.best["eer"], self.best["min_dcf"])
        if improved:
            self.best = {
                "eer": result["dev_eer"],
                "min_dcf": result["dev_min_dcf"],
                "eer_threshold": result.get("dev_eer_threshold"),
                "step": self.step,
                "epoch": self.epoch,
            }
            self.bad_validations = 0
        else:
            self.bad_validations += 1
        return improved

    def out_of_patience(self, patience: int | None) -> bool:
        return bool(patience) and self.bad_validations >= int(patience)

    def best_summary(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in self.best.items()}

    def to_payload(self, batch_offset: int) -> dict:
        return {
            "batch_offset": int(batch_offset),
            "best": self.best,
            "bad_validations": self.bad_validations,
            "history": self.history,
            "augmentation": dict(self.augment_log.counts),
            "n_failed": self.n_failed,
            "failed_examples": self.failed_examples,
            "adversary": self.adversary,
            "total_steps": int(self.total_steps),
            "world_size": int(self.world_size),
        }

    @classmethod
    def from_payload(cls, resume: dict, *, total_steps: int, world_size: int) -> "TrainState":
        training = resume.get("training") or {}
        check_world_size(resume, training, world_size)
        state = cls(
            total_steps=total_steps,
            world_size=world_size,
            step=int(resume["step"]),
            epoch=int(resume["epoch"]),
            offset=int(training.get("batch_offset", 0)),
        )
        state.best = dict(training.get("best", state.best))
        state.bad_validations = int(training.get("bad_validations", 0))
        state.history = [dict(r) for r in training.get("history", [])]
        state.augment_log.counts.update(training.get("augmentation", {}))
        state.n_failed = int(training.get("n_failed", 0))
        state.failed_examples = list(training.get("failed_examples", []))
        state.adversary = dict(training.get("adversary", {}))
        return state


def check_world_size(resume: dict, training: dict, world_size: int) -> None:
    """Refuse to continue a run on another number of processes than it was saved with.

    The per-rank batch sampler sets the steps per epoch, hence ``total_steps``, the
    learning-rate and lambda schedules, and what the saved batch offset points at:
    changing the world size would silently change all of them.
    """
    saved = int(training.get("world_size", 1))
    if saved != int(world_size):
        total = training.get("total_steps")
        raise CmError(
            f"{resume.get('path', 'the checkpoint')}: the run was trained on {saved} process(es) and is being "
            f"resumed on {world_size}; the batches per rank, the schedules' total steps"
            f"{f' ({total})' if total is not None else ''} and the saved position in the epoch would all change",
            f"resume with the same number of processes (torchrun --nproc-per-node {saved}), or start a new run",
        )
