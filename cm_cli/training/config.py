"""The resolved configuration of one training run, checked once before any work starts.

``TrainConfig`` is what ``config.json`` holds and what ``--resume`` compares against:
every setting that changes the weights a run ends with is a field here. Paths
(manifest, output) and the device are not fields: they belong to the invocation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from cm_cli.core.errors import CmError, UsageError

__all__ = ["METHODS", "LAMBDA_SCHEDULES", "SCHEDULE_ALIASES", "TrainConfig", "config_diff", "RUNTIME_KEYS"]

METHODS = ("erm", "dann")
LAMBDA_SCHEDULES = ("constant", "linear", "ganin")
SCHEDULE_ALIASES = {"exponential": "ganin"}
# settings that may differ between a run and its resumption without changing the result
RUNTIME_KEYS = frozenset({"workers", "bf16", "log_every"})


@dataclass
class TrainConfig:
    """Every option of ``cm train`` that shapes the trained weights (see docs/training.md)."""

    method: str = "erm"
    backbone: str = "lcnn"
    backbone_id: str | None = None
    corpus: str = "asvspoof5"
    train_split: str = "train"
    dev_split: str = "dev"
    # model
    trainable: str | None = None  # SSL: frozen | top:K | transformer | all (backbone default when None)
    pooling: str | None = None
    head: str | None = None
    length_policy: str | None = None  # validation / inference policy (backbone default when None)
    max_len: float = 4.0  # seconds: training crop (random) and the target of fixed policies
    model_options: dict = field(default_factory=dict)
    # optimisation
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 1e-2
    warmup_steps: int = 0
    clip_grad: float | None = 1.0
    class_weighting: bool = False
    # augmentation
    augment: str | None = None  # on-the-fly policy (inline text, YAML file or degrade preset)
    augment_manifest: str | None = None  # pre-rendered variants from `cm degrade --variants`
    # domain-adversarial training
    domain_columns: list = field(default_factory=list)
    lambda_schedule: str = "ganin"
    lambda_max: float = 1.0
    lambda_warmup: int = 0  # steps at lambda 0 before the schedule starts
    domain_loss_weight: float = 1.0
    domain_hidden: int = 128  # 0: linear domain heads
    domain_lr_mult: float = 1.0  # domain heads learn this much faster than the model (keeps the adversary strong)
    # validation and stopping
    val_every: int = 0  # 0: once per epoch, N: every N optimiser steps
    patience: int | None = None
    coded_dev_manifest: str | None = None
    # run
    seed: int = 0
    save_frozen: bool = False
    bf16: bool = True  # autocast on CUDA only
    workers: int = 0
    log_every: int = 1

    def __post_init__(self) -> None:
        self.method = str(self.method).lower()
        self.lambda_schedule = SCHEDULE_ALIASES.get(str(self.lambda_schedule), str(self.lambda_schedule))
        self.domain_columns = [str(c) for c in (self.domain_columns or [])]
        self.model_options = dict(self.model_options or {})

    # ------------------------------------------------------------------ checks

    def validate(self) -> "TrainConfig":
        """Raise ``UsageError`` naming the first impossible setting."""
        if self.method not in METHODS:
            raise UsageError(f"unknown method {self.method!r}", f"choose one of {', '.join(METHODS)}")
        if self.lambda_schedule not in LAMBDA_SCHEDULES:
            names = ", ".join([*LAMBDA_SCHEDULES, *SCHEDULE_ALIASES])
            raise UsageError(f"unknown lambda schedule {self.lambda_schedule!r}", f"choose one of {names}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "log_every": self.log_every}
        for name, value in positive.items():
            if value is None or int(value) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.lr <= 0:
            raise UsageError(f"--lr must be positive, got {self.lr}")
        if self.max_len <= 0:
            raise UsageError(f"--max-len must be positive seconds, got {self.max_len}")
        for name in ("warmup_steps", "lambda_warmup", "val_every", "workers"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.patience is not None and self.patience < 1:
            raise UsageError(f"--patience must be at least 1, got {self.patience}")
        if self.lambda_max < 0 or self.domain_loss_weight < 0:
            raise UsageError("--lambda-max and --domain-loss-weight must be >= 0")
        if self.augment and self.augment_manifest:
            raise UsageError("--augment and --augment-manifest are exclusive",
                             "augment on the fly with a policy, or train on pre-rendered variants, not both")
        if self.method == "dann" and not self.domain_columns:
            raise UsageError("--method dann needs at least one --domain-column",
                             "e.g. --domain-column domain (the augmentation condition, `clean` included)")
        if self.method == "erm" and self.domain_columns:
            raise UsageError("--domain-column is only used with --method dann")
        if len(set(self.domain_columns)) != len(self.domain_columns):
            raise UsageError(f"--domain-column repeated: {', '.join(self.domain_columns)}")
        return self

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CmError(f"unknown training setting(s): {', '.join(unknown)}",
                          f"known settings: {', '.join(sorted(known))}")
        return cls(**dict(values))

    @property
    def max_samples(self) -> int:
        return int(round(self.max_len * 16000))


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], *, ignore=RUNTIME_KEYS) -> list[str]:
    """Human-readable ``key: old -> new`` lines for settings that differ (runtime-only keys ignored)."""
    keys = sorted((set(old) | set(new)) - set(ignore))
    norm = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if norm(old.get(k)) != norm(new.get(k))]
