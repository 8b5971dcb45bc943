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

from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from torch import nn

from cm_cli.core.errors import CmError
from cm_cli.models.aasist import load_aasist_weights  # re-exported: it lives with AASIST
from cm_cli.models.heads import Classifier, ProjectionHead, build_score_head, score_from_logits
from cm_cli.models.length import LengthPolicy
from cm_cli.models.pooling import POOLING_MODES, LayerWeighting, StatsPooling, frame_mask, masked_mean, masked_mean_std
from cm_cli.models.registry import DEFAULT_BACKBONE, get_backbone

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
    - ``gradient_checkpointing``: recompute SSL transformer layers in backward instead of
      keeping their activations (less memory, ~10-30% slower steps); only when something trains.
    - ``backbone_options``: passed to the backbone's builder (AASIST/LCNN config fields;
      SSL ``cache_dir`` and ``layerdrop``, 0 = off by default).
    """

    backbone: str = DEFAULT_BACKBONE
    backbone_id: str | None = None
    trainable: str | None = None
    layer: str = "weighted"
    pooling: str = "meanstd"
    head_dims: tuple = (256,)
    dropout: float = 0.1
    length_policy: str | None = None
    target_samples: int | None = None
    crop_mode: str = "random"
    gradient_checkpointing: bool = False
    backbone_options: dict = field(default_factory=dict)
    score_head: str = "linear"  # "cosine": OC-Softmax's cosine to a bona fide direction (models.heads.CosineScore)

    def __post_init__(self):
        spec = get_backbone(self.backbone)
        if self.backbone_id is None:
            self.backbone_id = spec.default_id
        if self.trainable is None:
            self.trainable = spec.default_trainable
        if self.length_policy is None:
            self.length_policy = spec.length_policy
            if self.target_samples is None:
                self.target_samples = spec.target_samples
        if self.pooling not in POOLING_MODES:
            raise CmError(f"unknown pooling {self.pooling!r}", hint="choose one of " + ", ".join(POOLING_MODES))
        self.head_dims = tuple(int(d) for d in self.head_dims)
        self.length = LengthPolicy(
            self.length_policy, self.target_samples, "centre" if self.crop_mode == "center" else self.crop_mode
        )

    @property
    def family(self) -> str:
        """The backbone's family label (metadata only)."""
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


class CountermeasureModel(nn.Module):
    """Backbone + (where the bundle says ``cm_head``) layer weighting, pooling, projection and classifier.

    The backbone's bundle (``cm_cli.models.registry``) runs it and freezes it; this class
    never looks at which backbone it holds.
    """

    def __init__(self, config: ModelConfig, backbone, *, bundle=None):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.bundle = bundle or get_backbone(config.backbone)
        self.family = self.bundle.family  # a label for metadata
        self.bundle.set_trainable(self, config.trainable)
        self.layer_weighting = None
        if self.bundle.cm_head:
            n_states, dim = backbone.n_layers, backbone.hidden_size
            self.layer_weighting = LayerWeighting(n_states) if config.layer == "weighted" else None
            if config.layer not in ("weighted", "last"):
                try:
                    index = int(config.layer)
                except ValueError:
                    index = n_states
                if not -n_states <= index < n_states:
                    raise CmError(
                        f"layer {config.layer!r} out of range for {n_states} hidden states",
                        hint="use weighted, last or 0..%d" % (n_states - 1),
                    )
            self.pooling = StatsPooling(config.pooling, dim)
            self.projection = ProjectionHead(self.pooling.out_dim, config.head_dims, dropout=config.dropout)
            self.classifier = Classifier(self.projection.out_dim)
        self.score_head = None
        self.score_head = build_score_head(self, config.score_head)

    @property
    def layer_names(self) -> list[str]:
        """Embedding layer names in order (``layer_00`` …)."""
        return self.bundle.layer_names(self)

    @property
    def receptive_field(self) -> int:
        """Fewest input samples that give the backbone one output frame."""
        return self.bundle.receptive_field(self)

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
        states = self.bundle.forward_layers(self, wave, lengths)
        if states.logits is not None:  # the backbone's own published head
            logits = states.logits if self.score_head is None else self.score_head(states.readout)
            return ModelOutput(
                logits,
                score_from_logits(logits),
                states.readout,
                states.readout,
                tuple(states.hidden_states),
                states.frame_lengths,
            )
        hidden_states, frames = states.hidden_states, states.frame_lengths
        mask = frame_mask(frames, hidden_states[0].shape[1])
        pooled = self.pooling(self._select(hidden_states), mask)
        pre_logit = self.projection(pooled)
        logits = self.classifier(pre_logit) if self.score_head is None else self.score_head(pre_logit)
        return ModelOutput(logits, score_from_logits(logits), pooled, pre_logit, tuple(hidden_states), frames)

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


def build_model(config: ModelConfig | dict) -> CountermeasureModel:
    """A ``CountermeasureModel`` from its config (pretrained weights loaded as the config says)."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    bundle = get_backbone(config.backbone)
    return CountermeasureModel(config, bundle.build_backbone(config), bundle=bundle)
