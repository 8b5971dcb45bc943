"""Domain-adversarial heads: domain classifiers behind a gradient reversal layer on the shared representation.

The shared representation is the model's ``pre_logit`` (the vector the bona fide /
spoof classifier reads). Each domain column gets its own small classifier; the
representation reaches every head through ``grad_reverse(·, lambda)``, so the heads
learn to predict the domain (from step 0, whatever lambda is) while the layers that
produce the representation receive the reversed gradient. A tap between the
representation and the GRL measures that reversed gradient (``adv_grad_norm``).

Shapes: representation ``[B, D]``; per column logits ``[B, n_values]``; targets ``[B]``
long with ``UNKNOWN`` (-100) for rows whose value is unknown (masked from that loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cm_cli.core.errors import CmError

__all__ = [
    "DomainLosses",
    "build_domain_heads",
    "model_domain_heads",
    "upstream_groups",
    "group_grad_norms",
    "domain_losses",
    "GradTap",
]


@dataclass
class DomainLosses:
    """Per-column losses and accuracies of one batch, and their sum (a tensor)."""

    total: object
    losses: dict[str, float] = field(default_factory=dict)
    accuracies: dict[str, float] = field(default_factory=dict)


def build_domain_heads(in_dim: int, domains: dict[str, list[str]], *, hidden: int = 128):
    """``nn.ModuleDict`` column -> MLP classifier ``[B, in_dim] -> [B, len(values)]``."""
    from torch import nn

    heads = nn.ModuleDict()
    for column, values in domains.items():
        layers = (
            [nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, len(values))]
            if hidden
            else [nn.Linear(in_dim, len(values))]
        )
        heads[_key(column)] = nn.Sequential(*layers)
    return heads


def model_domain_heads(model, data, config, device):
    """The domain heads ``cm train --method dann`` puts on ``model``: sized by its representation, on ``device``.

    Public so that whatever measures or reuses a DANN step (``benchmarks/bench_gpu.py``)
    builds the very heads the training loop builds. The representation width is read
    from one forward pass of a 1 s zero signal (``pre_logit``, else ``pooled``), the
    vocabularies from ``data.domains`` and the hidden width from ``config.domain_hidden``.
    """
    from cm_cli.training.step import representation_dim

    return build_domain_heads(representation_dim(model, device), data.domains, hidden=config.domain_hidden).to(device)


def _key(column: str) -> str:
    return column.replace(".", "_")


class GradTap:
    """Identity on the forward pass that records the L2 norm of the gradient flowing back through it."""

    def __init__(self) -> None:
        self.norm = float("nan")

    def __call__(self, x):
        import torch

        tap = self

        class _Tap(torch.autograd.Function):
            @staticmethod
            def forward(ctx, value):
                return value.view_as(value)

            @staticmethod
            def backward(ctx, grad):
                tap.norm = float(grad.detach().float().norm())
                return grad

        self.norm = 0.0
        return _Tap.apply(x)


def domain_losses(representation, heads, targets: dict, coeff: float, *, tap: GradTap | None = None) -> DomainLosses:
    """Cross-entropy of each head on the reversed representation; unknown targets masked."""
    import torch
    import torch.nn.functional as F

    from cm_cli.models.grl import grad_reverse
    from cm_cli.training.data import UNKNOWN

    rep = tap(representation) if tap is not None else representation
    reversed_rep = grad_reverse(rep.float(), coeff)
    total = representation.new_zeros((), dtype=torch.float32)
    result = DomainLosses(total)
    for column, target in targets.items():
        logits = heads[_key(column)](reversed_rep)
        known = target != UNKNOWN
        if bool(known.any()):
            loss = F.cross_entropy(logits, target, ignore_index=UNKNOWN)
            total = total + loss
            result.losses[column] = float(loss.detach())
            result.accuracies[column] = float((logits.argmax(-1)[known] == target[known]).float().mean())
        else:  # keeps the graph connected (DDP) without changing the loss
            total = total + logits.sum() * 0.0
            result.losses[column] = float("nan")
            result.accuracies[column] = float("nan")
    result.total = total
    return result


def upstream_groups(model, representation) -> dict[str, object]:
    """Trainable parameter groups the representation depends on: ``{group name: [params]}``.

    A group is a parameter name up to its second dotted component (``backbone.stages``,
    ``projection.net``). Empty -> the adversary would act on nothing: ``CmError``.
    """
    import torch

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise CmError(
            "no trainable parameters in the model", "unfreeze layers (trainable top:K or all)", option="trainable"
        )
    if representation.requires_grad:
        grads = torch.autograd.grad(
            representation.float().sum(), [p for _, p in named], retain_graph=True, allow_unused=True
        )
    else:
        grads = [None] * len(named)
    groups: dict[str, list] = {}
    for (name, param), grad in zip(named, grads):
        if grad is None:
            continue
        group = ".".join(name.split(".")[:2])
        groups.setdefault(group, []).append(param)
    if not groups:
        raise CmError(
            "DANN: nothing trainable lies upstream of the gradient reversal layer, so the adversary "
            "cannot change the representation",
            "fine-tune backbone layers (trainable top:K) or use a backbone with a trainable "
            "projection between the frozen features and both heads",
            option="trainable",
        )
    return groups


def group_grad_norms(groups: dict[str, list], loss) -> dict[str, float]:
    """L2 norm of d(loss)/d(params) per group (one extra backward; used once, for the record)."""
    import torch

    params = [p for ps in groups.values() for p in ps]
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    out, i = {}, 0
    for name, ps in groups.items():
        chunk = [g for g in grads[i : i + len(ps)] if g is not None]
        i += len(ps)
        out[name] = float(torch.sqrt(sum((g.float() ** 2).sum() for g in chunk))) if chunk else 0.0
    return out
