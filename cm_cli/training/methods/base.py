"""What a training method is: the small interface every ``cm train --method`` implements.

A method says which extra modules it trains beside the model (``build``), how the
task loss of a batch is reduced (``task_loss``), which loss terms it adds given the
batch's representation and domain labels (``terms``), whether the optimiser step
takes two passes (``sharpness``: SAM/ASAM), which history columns it writes
(``columns``) and which options it takes (``options``, with defaults and bounds).
The ``Stepper`` (``cm_cli.training.step``) drives every method, for audio models and
for ``--features`` heads alike. Shapes: logits ``[B, 2]`` (index 1 bona fide),
representation ``[B, D]``, labels ``[B]`` (1 = bona fide), domain targets
``{column: [B]}`` long with ``UNKNOWN`` (-100) for rows of unknown domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from cm_cli.core.errors import UsageError

__all__ = ["Option", "Terms", "Method", "resolve_options", "parse_method_options", "group_onehot"]


@dataclass(frozen=True)
class Option:
    """One method option (``--method-option name=value``; config.json records the resolved value)."""

    name: str
    default: float | str
    minimum: float = 0.0
    help: str = ""
    choices: tuple[str, ...] = ()  # a named choice (e.g. MMD's estimator) instead of a number


@dataclass
class Terms:
    """A batch's extra loss (already weighted; a tensor, or 0.0 for none) and what goes into history."""

    total: Any = 0.0
    stats: dict = field(default_factory=dict)  # history column -> float
    dom: Any = None  # cm_cli.training.dann.DomainLosses for the adversarial columns
    adv: float | None = None  # adv_grad_norm


def resolve_options(method_cls, given: dict) -> dict:
    """``given`` checked against the method's options, defaults filled in; one-line errors name the option."""
    known = {o.name: o for o in method_cls.options}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(known) or "none"
        raise UsageError(
            f"method option {unknown[0]!r} is not an option of method {method_cls.name}",
            f"its options: {names}",
            option=("method_option", "method"),
        )
    out = {}
    for name, option in known.items():
        value = given.get(name, option.default)
        if option.choices:
            if str(value) not in option.choices:
                raise UsageError(
                    f"method option {name}: expected one of {', '.join(option.choices)}, got {value!r}",
                    option="method_option",
                )
            out[name] = str(value)
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UsageError(
                f"method option {name}: expected a number, got {value!r}", option="method_option"
            ) from None
        if not value >= option.minimum:
            raise UsageError(f"method option {name} must be >= {option.minimum}, got {value}", option="method_option")
        out[name] = value
    return out


def parse_method_options(items) -> dict:
    """``NAME=VALUE`` texts (``--method-option``, a preset's ``method_option`` list) or a table, as a dict."""
    if isinstance(items, dict):
        return dict(items)
    out = {}
    for item in [items] if isinstance(items, str) else (items or []):
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise UsageError(
                f"method option: expected NAME=VALUE, got {item!r}", "e.g. weight=0.5", option="method_option"
            )
        out[name.strip()] = value.strip()
    return out


def group_onehot(target, n_groups: int):
    """``[B, G]`` float one-hot of ``target`` (``UNKNOWN`` rows all zero) and the per-group counts ``[G]``."""
    import torch

    known = target >= 0
    onehot = torch.zeros(target.shape[0], n_groups, device=target.device)
    onehot[known, target[known]] = 1.0
    return onehot, onehot.sum(0)


class Method:
    """ERM's behaviour; a method overrides what it changes (see the module docstring)."""

    name: ClassVar[str] = ""
    uses_domains: ClassVar[bool] = False  # needs --domain-column (preset key domain_column)
    adversarial: ClassVar[bool] = False  # records which parameter groups the reversed gradient reaches
    sharpness: ClassVar[str | None] = None  # "sam" | "asam": two-pass optimiser step
    options: ClassVar[tuple[Option, ...]] = ()
    replaying: bool = False  # True during SAM's second pass (a method with state must not update it twice)

    def __init__(self, config, domains: dict[str, list[str]], *, total_steps: int = 1):
        self.config, self.domains, self.total_steps = config, dict(domains), total_steps
        self.opts = resolve_options(type(self), dict(getattr(config, "method_options", {}) or {}))

    def build(self, rep_dim: int):
        """Extra trainable modules (an ``nn.Module``, trained at ``--domain-lr-mult``), or None."""
        return None

    def columns(self) -> list[str]:
        """History columns this method adds (after ``adv_grad_norm``)."""
        return []

    def lam(self, step: int) -> float:
        """The ``lambda`` history value (the GRL coefficient; NaN for methods without one)."""
        return float("nan")

    def task_loss(self, criterion, logits, labels, targets: dict, weight, modules):
        """The task loss to optimise; ERM: ``criterion``'s (class-weighted) mean."""
        return criterion(logits, labels, weight)

    def terms(self, rep, targets: dict, step: int, modules, tap=None) -> Terms:
        """Extra loss terms on the representation; ERM adds none."""
        return Terms()
