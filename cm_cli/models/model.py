"""The countermeasure model: backbone + layer weighting + pooling + projection + classifier.

``ModelConfig`` holds everything needed to rebuild a model (it is saved in every
checkpoint as ``model_config``); ``build_model`` turns it into a ``CountermeasureModel``.
SSL backbones get the full head stack; AASIST, SSL-AASIST and LFCC-LCNN keep their own
published heads (so pretrained checkpoints score unchanged), and their readout vector
is both ``pooled`` and ``pre_logit``.

``forward(wave [B, T], lengths [B]) -> ModelOutput``: ``logits [B, 2]`` (index 1 = bona
fide), ``score [B]`` = logit[1] - logit[0] (higher = more bona fide), ``pooled``,
``pre_logit``, and ``hidden_states`` (SSL: L+1 tensors ``[B, T', D]``; CNN/graph
backbones: pooled block outputs ``[B, D_i]``) with ``frame_lengths`` for SSL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from cm_cli.core.errors import CmError
from cm_cli.models._lazy import LazyClasses
from cm_cli.models.length import LengthPolicy
from cm_cli.models.pooling import POOLING_MODES
from cm_cli.models.registry import get_backbone

__all__ = ["ModelConfig", "ModelOutput", "CountermeasureModel", "build_model", "load_aasist_weights"]


@dataclass
class ModelConfig:
    """How to build a countermeasure model (saved as a checkpoint's ``model_config``).

    - ``backbone``: registry name (``aasist``, ``lcnn``, ``ssl_aasist``, ``wavlm``, ``w2v2``, ``xlsr``,
      ``hubert``) or an SSL hub id / local directory.
    - ``backbone_id``: SSL hub id or directory (default: the registry's), or for ``aasist`` an
      official-format state dict file to start from.
    - ``trainable``: SSL ``frozen | top:K | transformer | all``; other backbones ``all | frozen``
      (frozen keeps only their output layer trainable).
    - ``layer``: which SSL hidden state feeds the head: ``weighted`` (learned softmax over
      all), ``last``, or an index as a string (``"6"``).
    - ``length_policy`` / ``target_samples`` / ``crop_mode``: see ``cm_cli.models.length``
      (None = the backbone's default: AASIST repeat to 64,600 samples, others full).
    """

    backbone: str = "lcnn"
    backbone_id: str | None = None
    trainable: str | None = None
    layer: str = "weighted"
    pooling: str = "meanstd"
    head_dims: tuple = (256,)
    dropout: float = 0.1
    length_policy: str | None = None
    target_samples: int | None = None
    crop_mode: str = "random"
    gradient_checkpointing: bool = True
    backbone_options: dict = field(default_factory=dict)

    def __post_init__(self):
        spec = get_backbone(self.backbone)
        if self.backbone_id is None:
            self.backbone_id = spec.default_id
        if self.trainable is None:
            self.trainable = "frozen" if spec.family == "ssl" else "all"
        if self.length_policy is None:
            self.length_policy = spec.length_policy
            if self.target_samples is None:
                self.target_samples = spec.target_samples
        if self.pooling not in POOLING_MODES:
            raise CmError(f"unknown pooling {self.pooling!r}", hint="choose one of " + ", ".join(POOLING_MODES))
        self.head_dims = tuple(int(d) for d in self.head_dims)
        self.length = LengthPolicy(self.length_policy, self.target_samples, "centre" if self.crop_mode == "center" else self.crop_mode)

    @property
    def family(self) -> str:
        return get_backbone(self.backbone).family

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["head_dims"] = list(self.head_dims)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        if not isinstance(values, dict) or "backbone" not in values:
            raise CmError("model_config is missing or has no 'backbone'", hint="the checkpoint was not written by cm")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class ModelOutput(NamedTuple):
    logits: Any
    score: Any
    pooled: Any
    pre_logit: Any
    hidden_states: tuple
    frame_lengths: Any = None


def load_aasist_weights(model, path: str | os.PathLike) -> None:
    """Load an official-format AASIST state dict (e.g. the ASVspoof 5 baseline) strictly."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CmError(f"AASIST weights {path} not found", hint="give the path of the .pth state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CmError(f"cannot read AASIST weights {path}: {str(exc).splitlines()[0]}", hint="the file is corrupt or not a torch state dict") from exc
    if isinstance(state, dict) and "format" in state and "state_dict" in state:
        raise CmError(f"{path} is a cm checkpoint, not an AASIST state dict", hint="load it with `--checkpoint` of a cm run instead")
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CmError(f"{path} is not an AASIST checkpoint of this configuration: {str(exc).splitlines()[0]}", hint="check --backbone and the AASIST config") from exc


def _build_backbone(config: ModelConfig):
    from cm_cli.models import aasist, lcnn, ssl, ssl_aasist

    family = config.family
    opts = dict(config.backbone_options or {})
    if family == "aasist":
        net = aasist.build_aasist(aasist.AASISTConfig.from_dict(opts))
        if config.backbone_id:
            load_aasist_weights(net, config.backbone_id)
        return net
    if family == "lcnn":
        return lcnn.build_lcnn(lcnn.LCNNConfig.from_dict(opts))
    hf = ssl.load_ssl_model(config.backbone_id, cache_dir=opts.get("cache_dir"))
    backbone = ssl.SSLBackbone(hf, trainable=config.trainable, gradient_checkpointing=config.gradient_checkpointing)
    if family == "ssl_aasist":
        return ssl_aasist.build_ssl_aasist(backbone)
    return backbone


def _modules():
    import torch
    from torch import nn

    from cm_cli.models.heads import Classifier, ProjectionHead, score_from_logits
    from cm_cli.models.pooling import LayerWeighting, StatsPooling, frame_mask, masked_mean, masked_mean_std

    class CountermeasureModel(nn.Module):
        """Backbone + (SSL only) layer weighting, pooling, projection and classifier; see the module docstring."""

        def __init__(self, config: ModelConfig, backbone):
            super().__init__()
            self.config = config
            self.backbone = backbone
            self.family = config.family
            if self.family == "ssl":
                n_states, dim = backbone.n_hidden_states, backbone.hidden_size
                self.layer_weighting = LayerWeighting(n_states) if config.layer == "weighted" else None
                if config.layer not in ("weighted", "last"):
                    try:
                        index = int(config.layer)
                    except ValueError:
                        index = n_states
                    if not -n_states <= index < n_states:
                        raise CmError(f"layer {config.layer!r} out of range for {n_states} hidden states", hint="use weighted, last or 0..%d" % (n_states - 1))
                self.pooling = StatsPooling(config.pooling, dim)
                self.projection = ProjectionHead(self.pooling.out_dim, config.head_dims, dropout=config.dropout)
                self.classifier = Classifier(self.projection.out_dim)
            elif config.trainable == "frozen":
                for name, p in backbone.named_parameters():
                    p.requires_grad = name.startswith(("out_layer", "backend.out_layer"))
            elif config.trainable not in ("all", None):
                raise CmError(f"trainable {config.trainable!r} is not supported for {config.backbone}", hint="use all or frozen")

        @property
        def layer_names(self) -> list[str]:
            """Embedding layer names in order (``layer_00`` …)."""
            if self.family in ("ssl", "ssl_aasist"):
                ssl_part = self.backbone if self.family == "ssl" else self.backbone.ssl
                return [f"layer_{i:02d}" for i in range(ssl_part.n_hidden_states)]
            return [f"layer_{i:02d}" for i in range(len(self.backbone.layer_names))]

        def prepare_batch(self, waves: list, *, generator=None):
            """Apply the config's length policy to a list of 1-D waveforms -> (``[B, T]``, lengths)."""
            from cm_cli.models.length import apply_length_policy

            policy = self.config.length
            if policy.policy == "crop" and not self.training:
                policy = LengthPolicy("crop", policy.target, "centre")
            return apply_length_policy(waves, policy, generator=generator)

        def _select(self, hidden_states):
            if self.layer_weighting is not None:
                return self.layer_weighting(hidden_states)
            if self.config.layer == "last":
                return hidden_states[-1]
            return hidden_states[int(self.config.layer)]

        def forward(self, wave, lengths=None) -> ModelOutput:
            if self.family == "ssl":
                hidden_states, frames = self.backbone(wave, lengths)
                mask = frame_mask(frames, hidden_states[0].shape[1])
                pooled = self.pooling(self._select(hidden_states), mask)
                pre_logit = self.projection(pooled)
                logits = self.classifier(pre_logit)
                return ModelOutput(logits, score_from_logits(logits), pooled, pre_logit, hidden_states, frames)
            if self.family == "ssl_aasist":
                readout, logits, hidden_states, frames = self.backbone.forward_all(wave, lengths)
                return ModelOutput(logits, score_from_logits(logits), readout, readout, hidden_states, frames)
            if self.family == "aasist":
                readout, logits, layers = self.backbone.forward_all(wave)
            else:
                readout, logits, layers = self.backbone.forward_all(wave, lengths)
            states = tuple(layers[name] for name in self.backbone.layer_names)
            return ModelOutput(logits, score_from_logits(logits), readout, readout, states, None)

        def embed(self, wave, lengths=None, *, pooling: str = "mean", layers: list[int] | None = None) -> dict:
            """``{layer_XX: [B, D], pooled: [B, P], pre_logit: [B, Q]}`` in fp32 (SSL states pooled over real frames)."""
            out = self.forward(wave, lengths)
            wanted = range(len(out.hidden_states)) if layers is None else layers
            result = {}
            for i in wanted:
                state = out.hidden_states[i]
                if state.dim() == 3:
                    mask = frame_mask(out.frame_lengths, state.shape[1])
                    state = masked_mean(state.float(), mask) if pooling == "mean" else masked_mean_std(state.float(), mask)
                result[f"layer_{i:02d}"] = state.float()
            result["pooled"] = out.pooled.float()
            result["pre_logit"] = out.pre_logit.float()
            return result

    return {"CountermeasureModel": CountermeasureModel}


_LAZY = LazyClasses(_modules, ("CountermeasureModel",))
__getattr__ = _LAZY.module_getattr


def build_model(config: ModelConfig | dict):
    """A ``CountermeasureModel`` from its config (pretrained weights loaded as the config says)."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    return _LAZY.get()["CountermeasureModel"](config, _build_backbone(config))

