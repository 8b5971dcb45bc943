"""Projection head, two-class classifier and the score convention (higher = more bona fide).

Logit index 1 is bona fide and index 0 spoof, as in the official AASIST checkpoint,
and the detection score is the log-odds ``logit[1] - logit[0]``, so scores go into
the ASVspoof metrics unchanged.
"""

from __future__ import annotations

from torch import nn

__all__ = ["BONAFIDE_INDEX", "SPOOF_INDEX", "score_from_logits", "ProjectionHead", "Classifier"]

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


