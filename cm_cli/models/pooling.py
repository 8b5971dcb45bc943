"""Layer weighting and utterance pooling over frame sequences with correct padding masks.

Frames past an utterance's true length are padding: every pooling here ignores them,
so an utterance padded inside a batch pools to the same vector as on its own. Masks
come from frame counts (``frame_mask``), which for SSL models are computed from the
convolutional front end's output lengths, not from sample counts.

Shapes: hidden states ``[L, B, T, D]`` (or a list of L ``[B, T, D]``), frames ``[B, T, D]``,
mask ``[B, T]`` (True = real frame), pooled ``[B, D]`` (mean) or ``[B, 2D]`` (meanstd, attentive).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "POOLING_MODES",
    "frame_mask",
    "pooled_dim",
    "masked_mean",
    "masked_mean_std",
    "LayerWeighting",
    "StatsPooling",
]

POOLING_MODES = ("mean", "meanstd", "attentive")
_EPS = 1e-5


def pooled_dim(mode: str, dim: int) -> int:
    """Size of the pooled vector for ``mode`` on ``dim``-dimensional frames."""
    return dim if mode == "mean" else 2 * dim


def frame_mask(frame_lengths, n_frames: int):
    """``[B]`` frame counts -> ``[B, n_frames]`` bool mask (True = real frame)."""
    import torch

    positions = torch.arange(n_frames, device=frame_lengths.device)
    return positions.unsqueeze(0) < frame_lengths.to(positions.device).unsqueeze(1)


def _weights(mask, like):
    if mask is None:
        return like.new_full(like.shape[:2], 1.0 / like.shape[1]).unsqueeze(-1)
    w = mask.to(like.dtype)
    return (w / w.sum(dim=1, keepdim=True).clamp_min(1.0)).unsqueeze(-1)


def masked_mean(frames, mask=None):
    """Mean over real frames: ``[B, T, D] -> [B, D]``."""
    return (frames * _weights(mask, frames)).sum(dim=1)


def _weighted_mean_std(frames, weights):
    mean = (frames * weights).sum(dim=1)
    var = (frames.pow(2) * weights).sum(dim=1) - mean.pow(2)
    return mean, var.clamp_min(_EPS).sqrt()


def masked_mean_std(frames, mask=None):
    """Mean and standard deviation over real frames, concatenated: ``[B, T, D] -> [B, 2D]``."""
    import torch

    mean, std = _weighted_mean_std(frames, _weights(mask, frames))
    return torch.cat([mean, std], dim=-1)


class LayerWeighting(nn.Module):
    """Learned softmax weights over L hidden states: ``[L, B, T, D] -> [B, T, D]`` (SUPERB-style)."""

    def __init__(self, n_layers: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_layers))

    @property
    def weights(self):
        return torch.softmax(self.logits, dim=0)

    def forward(self, hidden_states):
        stacked = torch.stack(list(hidden_states)) if not torch.is_tensor(hidden_states) else hidden_states
        if stacked.shape[0] != self.logits.shape[0]:
            raise ValueError(f"expected {self.logits.shape[0]} hidden states, got {stacked.shape[0]}")
        w = self.weights.to(stacked.dtype).view(-1, *([1] * (stacked.dim() - 1)))
        return (stacked * w).sum(dim=0)


class StatsPooling(nn.Module):
    """Masked pooling over frames: ``mean``, ``meanstd`` or ``attentive`` statistics.

    Attentive statistics pooling (Okabe et al., 2018): a small MLP scores each frame,
    softmax over real frames only, then the attention-weighted mean and std.
    """

    def __init__(self, mode: str, dim: int, *, attention_hidden: int = 128):
        super().__init__()
        if mode not in POOLING_MODES:
            raise ValueError(f"unknown pooling {mode!r}; choose one of {POOLING_MODES}")
        self.mode = mode
        self.dim = dim
        self.out_dim = pooled_dim(mode, dim)
        if mode == "attentive":
            self.attention = nn.Sequential(nn.Linear(dim, attention_hidden), nn.Tanh(), nn.Linear(attention_hidden, 1))

    def forward(self, frames, mask=None):
        if self.mode == "mean":
            return masked_mean(frames, mask)
        if self.mode == "meanstd":
            return masked_mean_std(frames, mask)
        scores = self.attention(frames).squeeze(-1).float()
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).to(frames.dtype).unsqueeze(-1)
        mean, std = _weighted_mean_std(frames, weights)
        return torch.cat([mean, std], dim=-1)
