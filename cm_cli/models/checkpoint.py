"""Checkpoint formats of DESIGN.md: ``cm-checkpoint/1`` (atomic save, checked read) and the files that hold them.

Models are built from them in ``models.loading``; this module sits below both that and training.

A checkpoint is a plain dict readable with ``torch.load(weights_only=True)``:
``format``, ``model_config`` (``ModelConfig.to_dict()``), ``state_dict`` (trainable
weights and buffers always; frozen pretrained weights only with ``save_frozen``, they
are otherwise reloaded from the backbone id), ``optimizer``, ``scheduler``, ``rng``,
``step``, ``epoch``, ``metrics``. Saving writes a temporary file in the same directory
and renames it, so a preempted job never leaves half a checkpoint.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from cm_cli.core.errors import CmError

__all__ = [
    "CHECKPOINT_FORMAT",
    "FEATURE_HEAD_FORMAT",
    "RUN_CHECKPOINTS",
    "capture_rng",
    "restore_rng",
    "trainable_state_dict",
    "save_checkpoint",
    "check_payload",
    "find_run_checkpoint",
    "read_torch_file",
    "read_checkpoint",
    "load_weights",
]

CHECKPOINT_FORMAT = "cm-checkpoint/1"
# a `cm train --features` head over `cm embed` statistics (written by cm_cli.training.features); it lives here,
# below training and loading, so that models.loading can refuse it without importing training
FEATURE_HEAD_FORMAT = "cm-feature-head/1"
# where a run directory keeps its weights, in order of preference
RUN_CHECKPOINTS = ("checkpoints/best.pt", "checkpoints/last.pt", "best.pt", "last.pt")


def capture_rng() -> dict:
    """Python, numpy and torch RNG states as lists and tensors (safe for ``weights_only``)."""
    import numpy as np
    import torch

    py_version, py_state, py_gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict) -> None:
    """Undo ``capture_rng``."""
    import numpy as np
    import torch

    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state_dict(model, *, save_frozen: bool = False) -> dict:
    """The model's state dict without frozen parameters (unless ``save_frozen``), tensors on CPU."""
    frozen = set() if save_frozen else {name for name, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k not in frozen}


def save_checkpoint(
    path: str | os.PathLike,
    model,
    *,
    optimizer=None,
    scheduler=None,
    step: int = 0,
    epoch: int = 0,
    metrics: dict | None = None,
    save_frozen: bool = False,
    rng: dict | None = None,
) -> Path:
    """Write a ``cm-checkpoint/1`` file atomically; returns its path."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": model.config.to_dict(),
        "state_dict": trainable_state_dict(model, save_frozen=save_frozen),
        "save_frozen": bool(save_frozen),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng if rng is not None else capture_rng(),
        "step": int(step),
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
    }
    from cm_cli.core.artifacts import atomic_path

    with atomic_path(path) as tmp:  # umask-respecting mode; disk full -> CmError naming the file
        torch.save(payload, tmp)
    return path


def check_payload(payload, path: Path) -> None:
    """A loaded object must be a ``cm-checkpoint/1`` dict with a model config and weights."""
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CmError(
            f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (format: {found!r})",
            hint="the official AASIST weights (.pth) load as backbone 'aasist' from that file",
            option=("backbone", "checkpoint"),
        )
    for key in ("model_config", "state_dict"):
        if key not in payload:
            raise CmError(f"checkpoint {path} has no {key!r}", hint="the file was not written by cm")


def find_run_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint a run directory is scored with (best, else last); a file is returned as is."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in RUN_CHECKPOINTS:
            if (path / name).is_file():
                return path / name
        raise CmError(
            f"{path} holds no checkpoints/best.pt or last.pt",
            "give a `cm train` run directory, a cm checkpoint file or an AASIST .pth",
        )
    if not path.is_file():
        raise CmError(
            f"{path} not found: no such run directory or checkpoint",
            "give a `cm train` run directory or a checkpoint file (.pt / .pth)",
        )
    return path


def read_torch_file(path: str | os.PathLike, *, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` on CPU; an unreadable file -> one-line ``CmError``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CmError(f"{what} {path} not found", "give a checkpoint file or a `cm train` run directory")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise CmError(
            f"cannot read {what} {path}: {first}",
            "the file is corrupt, truncated or not a torch checkpoint; use another one (last.pt / best.pt)",
        ) from None


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load and check a checkpoint dict (file or run directory); bad or missing file -> ``CmError``."""
    path = Path(path)
    if path.is_dir():
        path = find_run_checkpoint(path)
    payload = read_torch_file(path)
    check_payload(payload, path)
    payload["path"] = str(path)
    return payload


def load_weights(model, payload: dict) -> None:
    """Put a checkpoint's ``state_dict`` into ``model``; another architecture -> ``CmError``."""
    source = payload.get("path", "checkpoint")
    saved = payload["model_config"].get("backbone")
    if saved != model.config.backbone:
        raise CmError(
            f"{source} holds a {saved!r} model, not {model.config.backbone!r}",
            hint=f"build a {saved!r} model (or let the checkpoint's own config build it)",
            option="backbone",
        )
    state = payload["state_dict"]
    own = model.state_dict()
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    missing = [k for k in own if k not in state and not (k in frozen and not payload.get("save_frozen"))]
    if unexpected or mismatched or missing:
        raise CmError(
            f"{source} does not fit this {saved} model: "
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} with other shapes "
            f"(e.g. {(missing + unexpected + mismatched)[:3]})",
            hint="the checkpoint was made with another architecture or configuration",
        )
    model.load_state_dict(state, strict=False)
