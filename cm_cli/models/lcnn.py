"""LFCC-LCNN: the ASVspoof 2021 baseline family, small enough to train from scratch on a CPU.

LFCC front end (torchaudio, 20 linear-filter cepstra plus deltas and double deltas,
20 ms windows every 10 ms) feeding a light CNN whose convolutions are followed by
max-feature-map (MFM) activations (Wu et al., 2018; Lavrentyeva et al., 2019), then
masked mean+max pooling over time and a two-class head (index 1 = bona fide).

Shapes: waveform ``[B, T]`` -> LFCC ``[B, 1, 3 * n_lfcc, frames]`` -> four stages, each
halving frequency and time -> ``[B, C, F', T']`` -> frame vectors ``[B, T', C * F']`` ->
pooled ``[B, 2 * C * F']`` -> embedding ``[B, emb_dim]`` -> logits ``[B, 2]``.
Layers for embeddings: the pooled output of each stage (mean over frequency and real
frames), then the embedding (``layer_00`` … ``layer_04``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cm_cli.core.heavy import import_torchaudio
from cm_cli.models.aasist import freeze_but_output_layer
from cm_cli.models.pooling import frame_mask
from cm_cli.models.registry import LayerStates

__all__ = ["LCNNConfig", "LCNN", "MaxFeatureMap", "build_lcnn", "build_backbone"]


@dataclass(frozen=True)
class LCNNConfig:
    """LFCC-LCNN hyper-parameters (defaults: a narrow variant of the 2021 baseline)."""

    sample_rate: int = 16000
    n_lfcc: int = 20
    n_filter: int = 20
    win_length: int = 320
    hop_length: int = 160
    n_fft: int = 512
    with_deltas: bool = True
    channels: tuple = (16, 24, 32, 32)
    emb_dim: int = 64
    dropout: float = 0.5

    @classmethod
    def from_dict(cls, values: dict) -> "LCNNConfig":
        kwargs = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "channels" in kwargs:
            kwargs["channels"] = tuple(kwargs["channels"])
        return cls(**kwargs)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["channels"] = list(self.channels)
        return out


class MaxFeatureMap(nn.Module):
    """Split the channels in two halves and keep the element-wise maximum."""

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return torch.maximum(a, b)


def mfm_conv(c_in: int, c_out: int, kernel: int):
    return nn.Sequential(nn.Conv2d(c_in, 2 * c_out, kernel, padding=kernel // 2), MaxFeatureMap())


class Stage(nn.Module):
    """(1x1 MFM conv, BN,) kxk MFM conv, 2x2 max-pool, BN."""

    def __init__(self, c_in: int, c_out: int, *, first: bool):
        super().__init__()
        if first:
            self.pre = None
        else:
            self.pre = nn.Sequential(mfm_conv(c_in, c_in, 1), nn.BatchNorm2d(c_in))
        self.conv = mfm_conv(c_in, c_out, 5 if first else 3)
        self.pool = nn.MaxPool2d(2, 2)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x, mask=None):
        # ``mask`` [B, 1, 1, T] zeroes the padded frames wherever a BatchNorm shift would
        # otherwise leak into the next convolution: a padded utterance then scores as it
        # does alone (up to its last STFT frame)
        if self.pre is not None:
            x = self.pre(x)
            if mask is not None:
                x = x * mask
        return self.bn(self.pool(self.conv(x)))


class LFCCFrontEnd(nn.Module):
    """Waveform ``[B, T]`` -> LFCC (+ deltas) ``[B, 1, F, frames]``, mean-normalised per utterance."""

    def __init__(self, config: LCNNConfig):
        super().__init__()
        torchaudio = import_torchaudio()
        self.lfcc = torchaudio.transforms.LFCC(
            sample_rate=config.sample_rate,
            n_filter=config.n_filter,
            n_lfcc=config.n_lfcc,
            speckwargs={"n_fft": config.n_fft, "win_length": config.win_length, "hop_length": config.hop_length},
        )
        self._deltas = torchaudio.functional.compute_deltas if config.with_deltas else None
        self.hop_length = config.hop_length

    def frame_lengths(self, lengths):
        return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1

    def forward(self, wave, lengths):
        wave = wave.float()
        if bool((lengths < wave.shape[-1]).any()):
            # each padded row is analysed at its own length: the STFT's edge padding then
            # sees the utterance's own end rather than the batch's zeros
            n_frames = int(self.frame_lengths(lengths.max().view(1)).item())
            feats = wave.new_zeros(wave.shape[0], self.lfcc.n_lfcc, n_frames)
            for row in range(wave.shape[0]):
                own = self.lfcc(wave[row, : int(lengths[row])])
                feats[row, :, : own.shape[-1]] = own
        else:
            feats = self.lfcc(wave)  # [B, n_lfcc, frames]
        frames = self.frame_lengths(lengths).clamp(max=feats.shape[-1])
        index = torch.arange(feats.shape[-1], device=feats.device).view(1, 1, -1)
        inside = index < frames.view(-1, 1, 1)
        if self._deltas is not None:
            # deltas replicate the edge frame, so padded frames repeat the last real frame:
            # a padded utterance then gets the deltas it gets alone
            last = (frames - 1).clamp(min=0).view(-1, 1, 1).expand(-1, feats.shape[1], 1)
            feats = torch.where(inside, feats, feats.gather(-1, last).expand_as(feats))
            d1 = self._deltas(feats)
            feats = torch.cat([feats, d1, self._deltas(d1)], dim=1)
        mask = inside.to(feats.dtype)
        mean = (feats * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp_min(1.0)
        return ((feats - mean) * mask).unsqueeze(1), frames


class LCNN(nn.Module):
    """``forward(wave [B, T], lengths [B] | None) -> logits [B, 2]``; ``forward_all`` adds layers."""

    kind = "lcnn"

    def __init__(self, config: LCNNConfig = LCNNConfig()):
        super().__init__()
        self.config = config
        self.front_end = LFCCFrontEnd(config)
        chans = list(config.channels)
        self.stages = nn.ModuleList(
            [Stage(1 if i == 0 else chans[i - 1], c, first=(i == 0)) for i, c in enumerate(chans)]
        )
        n_freq = (3 if config.with_deltas else 1) * config.n_lfcc
        for _ in chans:
            n_freq //= 2
        if n_freq < 1:
            raise ValueError("too many LCNN stages for the number of LFCC coefficients")
        frame_dim = chans[-1] * n_freq
        self.embedding = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(2 * frame_dim, 2 * config.emb_dim), MaxFeatureMap()
        )
        self.out_layer = nn.Linear(config.emb_dim, 2)
        self.embedding_dim = config.emb_dim
        self.layer_names = [f"stage_{i}" for i in range(len(chans))] + ["embedding"]

    @property
    def receptive_field(self) -> int:
        """Fewest samples that leave one frame after all stages."""
        return self.config.hop_length * (2 ** len(self.stages))

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    def layer_modules(self) -> list:
        """The module whose output carries each layer: each stage, then the embedding."""
        return [*self.stages, self.embedding]

    def set_trainable(self, spec: str) -> None:
        """``all``, or ``frozen``: only the output layer trains."""
        freeze_but_output_layer(self, spec, ("out_layer",))

    def forward_all(self, wave, lengths=None):
        """(embedding ``[B, E]``, logits ``[B, 2]``, {layer name: ``[B, D]``})."""
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], dtype=torch.long, device=wave.device)
        x, frames = self.front_end(wave, lengths.to(wave.device))
        layers = {}
        for i, stage in enumerate(self.stages):
            x = stage(x, frame_mask(frames, x.shape[-1]).to(x.dtype)[:, None, None, :])
            frames = torch.div(frames, 2, rounding_mode="floor").clamp(min=1, max=x.shape[-1])
            mask = frame_mask(frames, x.shape[-1]).to(x.dtype)  # [B, T']
            x = x * mask[:, None, None, :]
            weights = (mask / mask.sum(1, keepdim=True)).unsqueeze(1)
            layers[f"stage_{i}"] = (x.mean(dim=2) * weights).sum(-1)
        seq = x.flatten(1, 2).transpose(1, 2)  # [B, T', C*F']
        valid = frame_mask(frames, seq.shape[1]).unsqueeze(-1)
        mean = (seq * valid).sum(1) / valid.sum(1).clamp_min(1)
        peak = seq.masked_fill(~valid, float("-inf")).max(dim=1).values
        emb = self.embedding(torch.cat([mean, peak], dim=-1))
        layers["embedding"] = emb
        return emb, self.out_layer(emb), layers

    def forward_layers(self, wave, lengths=None) -> LayerStates:
        emb, logits, layers = self.forward_all(wave, lengths)
        return LayerStates(tuple(layers[name] for name in self.layer_names), None, emb, logits)

    def forward(self, wave, lengths=None):
        return self.forward_all(wave, lengths)[1]

    def extract(self, wave, lengths=None) -> dict:
        _, _, layers = self.forward_all(wave, lengths)
        return {f"layer_{i:02d}": layers[name] for i, name in enumerate(self.layer_names)}


def build_lcnn(config: LCNNConfig | None = None) -> LCNN:
    """A fresh, randomly initialised LFCC-LCNN."""
    return LCNN(config or LCNNConfig())


def build_backbone(config) -> LCNN:
    """LFCC-LCNN for a ``ModelConfig`` (``backbone_options`` are ``LCNNConfig`` fields)."""
    return build_lcnn(LCNNConfig.from_dict(dict(config.backbone_options or {})))
