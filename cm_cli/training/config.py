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
from cm_cli.models.registry import DEFAULT_BACKBONE

__all__ = ["LAMBDA_SCHEDULES", "SCHEDULE_ALIASES", "TrainConfig", "config_diff", "RUNTIME_KEYS", "parse_bool"]

LAMBDA_SCHEDULES = ("constant", "linear", "ganin")
SCHEDULE_ALIASES = {"exponential": "ganin"}
# settings that may differ between a run and its resumption without changing the result
RUNTIME_KEYS = frozenset({"workers", "bf16", "log_every", "log_to"})
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_bool(value: Any, name: str) -> bool:
    """A boolean from a bool, 0/1 or a word (true/false, yes/no, on/off); anything else is an error."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UsageError(
        f"{_option(name)}: expected true or false, got {value!r}",
        "check the value in the preset or cm.toml (true/false, yes/no, on/off)",
    )


def _number(value: Any, name: str, kind: type):
    """An int or float from a number or its text; booleans and words are errors naming the option."""
    if isinstance(value, bool):
        raise UsageError(f"{_option(name)}: expected a number, got {value!r}")
    try:
        number = float(value) if isinstance(value, str) else value
        if not isinstance(number, (int, float)):
            raise TypeError
        if kind is int:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        return float(number)
    except (TypeError, ValueError, OverflowError):
        what = "an integer" if kind is int else "a number"
        hint = "0 turns gradient clipping off" if name == "clip_grad" else "check the preset or cm.toml"
        raise UsageError(f"{_option(name)}: expected {what}, got {value!r}", hint) from None


def _coerce(name: str, value: Any, annotation: str) -> Any:
    """``value`` as the field's declared type (``int``, ``float | None``, ``bool``, ``str | None``, …)."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        if "None" in kinds:
            return None
        raise UsageError(f"{_option(name)} needs a value")
    kind = kinds[0]
    if kind == "bool":
        return parse_bool(value, name)
    if kind in ("int", "float"):
        return _number(value, name, int if kind == "int" else float)
    if kind == "str":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UsageError(f"{_option(name)}: expected text, got {value!r}")
        return str(value)
    if kind == "list":
        if isinstance(value, str):
            return [value]
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{_option(name)}: expected a list, got {value!r}")
        return list(value)
    if kind == "dict" and not isinstance(value, dict):
        raise UsageError(f"{_option(name)}: expected a table, got {value!r}")
    return value


@dataclass
class TrainConfig:
    """Every option of ``cm train`` that shapes the trained weights (see docs/training.md)."""

    method: str = "erm"
    backbone: str = DEFAULT_BACKBONE
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
    features: str | None = None  # train a head on `cm embed --pooling meanstd` cache(s) (paths joined by ",")
    feature_norm: str = "auto"  # --features inputs: auto (standardise feature-set tables only) | standardize | none
    # method (cm_cli.training.methods: the registry) and task loss
    loss: str = "ce"  # ce | ocsoftmax (cm_cli.training.methods.losses)
    method_options: dict = field(default_factory=dict)  # the method's options, defaults filled in by validate
    sam_rho: float | None = None  # SAM/ASAM radius; given with another method, wraps it in SAM
    sam_adaptive: bool = False  # with --sam-rho: ASAM instead of SAM
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
    log_to: list = field(default_factory=list)  # experiment trackers: tensorboard, wandb, mlflow

    def __post_init__(self) -> None:
        self.method = str(self.method).lower()
        self.lambda_schedule = SCHEDULE_ALIASES.get(str(self.lambda_schedule), str(self.lambda_schedule))
        if isinstance(self.domain_columns, (list, tuple)) or self.domain_columns is None:
            self.domain_columns = [str(c) for c in (self.domain_columns or [])]
        if isinstance(self.log_to, (list, tuple)) or self.log_to is None:
            self.log_to = [str(t).lower() for t in (self.log_to or [])]
        if isinstance(self.model_options, dict) or self.model_options is None:
            self.model_options = dict(self.model_options or {})
        if isinstance(self.method_options, dict) or self.method_options is None:
            self.method_options = dict(self.method_options or {})
        self.loss = str(self.loss).lower()

    # ------------------------------------------------------------------ checks

    def check_types(self) -> "TrainConfig":
        """Coerce every field to its declared type (text from presets and cm.toml); wrong types are errors."""
        for f in fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), str(f.type)))
        if self.clip_grad == 0:
            self.clip_grad = None
        self.__post_init__()
        return self

    def validate(self) -> "TrainConfig":
        """Raise ``UsageError`` naming the first impossible setting (wrong types included)."""
        self.check_types()
        self._check_method()
        if self.lambda_schedule not in LAMBDA_SCHEDULES:
            names = ", ".join([*LAMBDA_SCHEDULES, *SCHEDULE_ALIASES])
            raise UsageError(f"unknown lambda schedule {self.lambda_schedule!r}", f"choose one of {names}")
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "log_every": self.log_every,
        }
        for name, value in positive.items():
            if value is None or int(value) < 1:
                raise UsageError(f"{name} must be at least 1, got {value}", option=name)
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"max_steps must be at least 1, got {self.max_steps}", option="max_steps")
        if self.lr <= 0:
            raise UsageError(f"lr must be positive, got {self.lr}", option="lr")
        if self.max_len <= 0:
            raise UsageError(f"max_len must be positive seconds, got {self.max_len}", option="max_len")
        for name in ("warmup_steps", "lambda_warmup", "val_every", "workers"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}", option=name)
        if self.patience is not None and self.patience < 1:
            raise UsageError(f"patience must be at least 1, got {self.patience}", option="patience")
        if self.lambda_max < 0 or self.domain_loss_weight < 0:
            raise UsageError(
                "lambda_max and domain_loss_weight must be >= 0", option=("lambda_max", "domain_loss_weight")
            )
        if self.augment and self.augment_manifest:
            raise UsageError(
                "augment and augment_manifest are exclusive",
                "augment on the fly with a policy, or train on pre-rendered variants, not both",
                option=("augment", "augment_manifest"),
            )
        if self.features and self.augment:
            raise UsageError(
                "training on cached embeddings (features), an augmentation policy cannot change the audio",
                "pre-render variants (`cm degrade --policy P --variants K`), embed them with "
                "`cm embed --pooling meanstd`, and give them as the augmentation manifest",
                option=("augment", "augment_manifest"),
            )
        if self.feature_norm not in ("auto", "standardize", "none"):
            raise UsageError(
                f"feature normalisation {self.feature_norm!r} is unknown",
                "choose auto, standardize or none",
                option="feature_norm",
            )
        from cm_cli.training.tracking import TRACKERS

        unknown = [t for t in self.log_to if str(t).lower() not in TRACKERS]
        if unknown:
            raise UsageError(f"unknown tracker {unknown[0]!r}", f"choose from {', '.join(TRACKERS)}", option="log_to")
        if len(set(self.domain_columns)) != len(self.domain_columns):
            raise UsageError(f"domain column repeated: {', '.join(self.domain_columns)}", option="domain_column")
        return self

    def _check_method(self) -> None:
        """The method and loss exist, the method's options resolve, and domain columns fit the method."""
        from cm_cli.training.methods import get_method
        from cm_cli.training.methods.base import resolve_options
        from cm_cli.training.methods.losses import criterion

        method = get_method(self.method)
        criterion(self.loss)
        self.method_options = resolve_options(method, self.method_options)
        if self.sam_rho is not None and not self.sam_rho > 0:
            raise UsageError(f"sam_rho must be positive, got {self.sam_rho}", option="sam_rho")
        if method.uses_domains and not self.domain_columns:
            raise UsageError(
                f"method {self.method} needs a domain column (preset key domain_column)",
                "e.g. domain (the augmentation condition, `clean` included)",
                option="domain_column",
            )
        if not method.uses_domains and self.domain_columns:
            self.notes.append(
                f"--method {self.method} uses no domains: domain column(s) {', '.join(self.domain_columns)} ignored"
            )
            self.domain_columns = []

    @property
    def notes(self) -> list[str]:
        """What ``validate`` decided that the user should hear about (not a setting; not saved)."""
        if "_notes" not in self.__dict__:
            self.__dict__["_notes"] = []
        return self.__dict__["_notes"]

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CmError(
                f"unknown training setting(s): {', '.join(unknown)}", f"known settings: {', '.join(sorted(known))}"
            )
        return cls(**dict(values))

    @property
    def max_samples(self) -> int:
        return int(round(self.max_len * 16000))


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], *, ignore=RUNTIME_KEYS) -> list[str]:
    """Human-readable ``key: old -> new`` lines for settings that differ (runtime-only keys ignored)."""
    keys = sorted((set(old) | set(new)) - set(ignore))
    norm = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    defaults = TrainConfig().to_dict()
    # a setting added after the run was saved, at its default, is no difference
    keys = [k for k in keys if k in old or k not in defaults or norm(new.get(k)) != norm(defaults[k])]
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if norm(old.get(k)) != norm(new.get(k))]
