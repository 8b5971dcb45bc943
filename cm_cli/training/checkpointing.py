"""Writing ``last.pt`` / ``best.pt`` and restoring a run's weights, heads, optimiser and RNG from one.

Every save is atomic; ``best.pt`` is a copy of the ``last.pt`` written right after
an improving validation, so both carry the same payload shape.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig
from cm_cli.training.state import TrainState

__all__ = ["save_state", "promote_best", "restore"]


def save_state(
    path: Path, model, heads, optimizer, state: TrainState, *, config: TrainConfig, batch_offset: int, epoch: int
) -> None:
    """``last.pt``: weights, heads, optimiser, RNG, counters and the last history row as ``metrics``."""
    import torch

    from cm_cli.core.artifacts import atomic_path
    from cm_cli.models.checkpoint import CHECKPOINT_FORMAT, capture_rng, trainable_state_dict

    training = state.to_payload(batch_offset)
    training["heads"] = None if heads is None else {k: v.detach().cpu() for k, v in heads.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": model.config.to_dict(),
        "state_dict": trainable_state_dict(model, save_frozen=config.save_frozen),
        "save_frozen": bool(config.save_frozen),
        "optimizer": optimizer.state_dict(),
        "scheduler": {
            "kind": "cosine_warmup",
            "step": int(state.step),
            "warmup_steps": config.warmup_steps,
            "total_steps": int(state.total_steps),
        },
        "rng": capture_rng(),
        "step": int(state.step),
        "epoch": int(epoch),
        "metrics": dict(state.history[-1]) if state.history else {},
        "train_config": config.to_dict(),
        "training": training,
    }
    with atomic_path(path, suffix=".pt.tmp") as tmp:
        torch.save(payload, tmp)


def promote_best(ckpt_dir: Path) -> None:
    """Make the ``last.pt`` just written the ``best.pt`` (atomically)."""
    shutil.copyfile(ckpt_dir / "last.pt", ckpt_dir / ".best.pt.tmp")
    (ckpt_dir / ".best.pt.tmp").replace(ckpt_dir / "best.pt")


def restore(resume: dict, model, heads, optimizer, *, total_steps: int, world_size: int) -> TrainState:
    """Load a ``last.pt`` payload into the model parts and return the state to continue from."""
    from cm_cli.models.checkpoint import load_weights, restore_rng

    state = TrainState.from_payload(resume, total_steps=total_steps, world_size=world_size)
    load_weights(model, resume)
    training = resume.get("training") or {}
    if heads is not None:
        if not training.get("heads"):
            raise CmError(
                f"{resume.get('path')}: the run being resumed has no domain heads",
                "resume with the method it was trained with, or start a new run",
            )
        heads.load_state_dict(training["heads"])
    try:
        optimizer.load_state_dict(resume["optimizer"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CmError(
            f"{resume.get('path')}: optimiser state does not fit this model ({exc})",
            "resume with the configuration the run was made with, or start a new run",
        ) from None
    restore_rng(resume["rng"])
    return state
