"""Projection head, two-class classifier and the score convention (higher = more bona fide).

Logit index 1 is bona fide and index 0 spoof, as in the official AASIST checkpoint,
and the detection score is the log-odds ``logit[1] - logit[0]``, so scores go into
the ASVspoof metrics unchanged.
"""

from __future__ import annotations

from torch import nn

__all__ = [
    "BONAFIDE_INDEX",
    "SPOOF_INDEX",
    "SCORE_HEADS",
    "score_from_logits",
    "ProjectionHead",
    "Classifier",
    "CosineScore",
    "build_score_head",
]

SCORE_HEADS = ("linear", "cosine")

BONAFIDE_INDEX = 1
SPOOF_INDEX = 0


def score_from_logits(logits):
    """``[B, 2]`` logits -> ``[B]`` score = logit[bona fide] - logit[spoof] (higher = more bona fide)."""
    return logits[..., BONAFIDE_INDEX] - logits[..., SPOOF_INDEX]


class ProjectionHead(nn.Module):
    """``[B, D_in] -> [B, D_out]``: linear layers with GELU and dropout; ``dims=()`` is the identity."""

    def __init__(self, in_dim: int, dims: tuple = (256,), *, dropout: float = 0.1):
        super().__init__()
        layers = []
        prev = in_dim
        for d in dims:
            layers += [nn.Linear(prev, d), nn.GELU(), nn.Dropout(dropout)]
            prev = d
        self.net = nn.Sequential(*layers) if layers else nn.Identity()
        self.out_dim = prev

    def forward(self, x):
        return self.net(x)


class Classifier(nn.Module):
    """``[B, D] -> [B, 2]`` logits (index 1 = bona fide)."""

    def __init__(self, in_dim: int, n_classes: int = 2):
        super().__init__()
        self.linear = nn.Linear(in_dim, n_classes)

    def forward(self, x):
        return self.linear(x)


class CosineScore(nn.Module):
    """``[B, D] -> [B, 2]`` logits ``[0, cos(x, w)]``: the score is the cosine to a learned bona fide direction.

    The one-class head of OC-Softmax (``cm_cli.training.methods.losses``); the direction is
    initialised as in the official AIR-ASVspoof code (``kaiming_uniform_(w, 0.25)``).
    """

    def __init__(self, in_dim: int):
        super().__init__()
        import torch

        self.direction = nn.Parameter(torch.empty(1, in_dim))
        nn.init.kaiming_uniform_(self.direction, 0.25)

    def forward(self, x):
        import torch
        import torch.nn.functional as F

        cos = (F.normalize(x.float(), dim=-1) * F.normalize(self.direction, dim=-1)).sum(-1)
        return torch.stack([torch.zeros_like(cos), cos], dim=-1)


def build_score_head(model, kind: str):
    """None for the model's own ``linear`` logits; a ``CosineScore`` sized by one probe forward for ``cosine``."""
    import torch

    from cm_cli.core.errors import CmError

    if kind in (None, "linear"):
        return None
    if kind != "cosine":
        raise CmError(f"unknown score head {kind!r}", f"choose one of {', '.join(SCORE_HEADS)}")
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 16000), torch.tensor([16000]))
    model.train(was)
    rep = out.pre_logit if out.pre_logit is not None else out.pooled
    return CosineScore(int(rep.shape[-1]))
