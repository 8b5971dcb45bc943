"""Experiment trackers for `cm train --log-to`: TensorBoard, Weights & Biases, MLflow.

Each is optional (``pip install 'cm-cli[tensorboard]'`` etc.) and never needed for
training: the run directory's ``history.parquet`` stays the record. A tracker gets
every history column at every optimiser step, the dev metrics at every validation,
the resolved configuration and the git revision at the start, and the run summary at
the end. Everything is written locally by default (TensorBoard event files and the
MLflow file store under the run directory; W&B in offline mode unless the W&B
server is reachable or ``WANDB_MODE`` says otherwise).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
from pathlib import Path
from typing import Iterable, Mapping

from cm_cli.core.errors import CmError

__all__ = ["TRACKERS", "check_trackers", "open_trackers", "Trackers"]

# tracker -> (module that must be importable, extra to install)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}


def check_trackers(names: Iterable[str]) -> list[str]:
    """Validate tracker names and that each is installed; one-line ``CmError`` naming the extra otherwise."""
    out = []
    for name in names:
        name = str(name).strip().lower()
        if name not in TRACKERS:
            raise CmError(f"unknown tracker {name!r}", f"choose from {', '.join(TRACKERS)}", option="log_to")
        module, extra = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise CmError(f"tracker {name}: the {module} package is not installed", f"pip install 'cm-cli[{extra}]'")
        if name not in out:
            out.append(name)
    return out


def _numbers(values: Mapping) -> dict[str, float]:
    """The finite numeric entries of a row (NaN columns are simply not logged at that step)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out[str(key)] = float(value)
    return out


class _TensorBoard:
    def __init__(self, run_dir: Path, config: dict, revision: str | None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, sort_keys=True) + "\n```", 0)
        self.writer.add_text("git_revision", revision or "unknown", 0)

    def log(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self, summary: dict) -> None:
        self.writer.add_text("summary", json.dumps(summary, default=str), 0)
        self.writer.close()


def _reachable(host: str, port: int = 443, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _WandB:
    def __init__(self, run_dir: Path, config: dict, revision: str | None):
        import wandb

        mode = os.environ.get("WANDB_MODE") or ("online" if _reachable("api.wandb.ai") else "offline")
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "cm"),
            name=run_dir.name,
            dir=str(run_dir),
            config={**config, "git_revision": revision},
            mode=mode,
            reinit=True,
        )

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def close(self, summary: dict) -> None:
        self.run.summary.update(_numbers(summary))
        self.run.finish()


class _MLflow:
    def __init__(self, run_dir: Path, config: dict, revision: str | None):
        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri((run_dir / "mlruns").resolve().as_uri())
        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=run_dir.name)
        flat = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in config.items()}
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
        mlflow.set_tag("git_revision", revision or "unknown")

    def log(self, values: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics(values, step=step)

    def close(self, summary: dict) -> None:
        self.mlflow.log_metrics({f"final_{k}": v for k, v in _numbers(summary).items()})
        self.mlflow.end_run()


_CLASSES = {"tensorboard": _TensorBoard, "wandb": _WandB, "mlflow": _MLflow}


class Trackers:
    """The open trackers of one run: ``step(row)``, ``dev(step, result)``, ``close(summary)``."""

    def __init__(self, trackers: list) -> None:
        self.trackers = trackers

    def step(self, row: Mapping) -> None:
        values = _numbers({k: v for k, v in row.items() if k not in ("step",) and not k.startswith("dev_")})
        for tracker in self.trackers:
            tracker.log(values, int(row["step"]))

    def dev(self, step: int, result: Mapping) -> None:
        values = _numbers({k: v for k, v in result.items() if k.startswith("dev_")})
        for tracker in self.trackers:
            tracker.log(values, int(step))

    def close(self, summary: dict) -> None:
        for tracker in self.trackers:
            tracker.close(summary)


def open_trackers(names: Iterable[str], run_dir: str | Path, *, config: dict, revision: str | None) -> Trackers:
    """Start each named tracker for ``run_dir`` and log the configuration and git revision."""
    run_dir = Path(run_dir)
    return Trackers([_CLASSES[name](run_dir, config, revision) for name in check_trackers(names)])
