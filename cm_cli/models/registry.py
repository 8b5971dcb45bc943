"""Backbone bundles: one registry entry per ``--backbone`` name, so no caller branches on a family.

A bundle (in the spirit of torchaudio's pipeline bundles) is metadata plus the module
that implements the backbone. It builds the model and knows its layer names, receptive
field, freezing rules, patch sites and how to run all layers; training, scoring,
embedding and patching ask the bundle instead of testing ``family`` strings.

The implementing module (``Backbone.module``) provides ``build_backbone(config) -> net``;
the net is an ``nn.Module`` with this protocol (see docs/backbones.md):

- ``forward_layers(wave [B, T], lengths [B] | None) -> LayerStates``
- ``layer_modules() -> list[nn.Module]``: the module whose output is each layer (patch sites)
- ``set_trainable(spec: str)``: freeze/unfreeze; raises ``CmError`` on a spec it does not know
- ``receptive_field`` (samples) and ``n_layers`` (number of layer states)
- ``hidden_size`` (only where ``cm_head``: the width of the hidden states)

This module stays torch-free (shell completion and ``ModelConfig`` read it); torch is
imported by the implementing modules when a bundle builds or runs a model.

SSL names (``wavlm``, ``w2v2``, ``xlsr``, ``hubert``) map to their hub ids; any other hub
id (``org/name``) or local model directory is a generic SSL entry. An unknown name is a
``CmError`` that lists the registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cm_cli.core.errors import CmError

__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "LayerStates",
    "BACKBONES",
    "SSL_MODELS",
    "SSL_TRAINABLE_SPECS",
    "backbone_names",
    "get_backbone",
    "resolve_ssl_id",
]

SSL_TRAINABLE_SPECS = "frozen | top:K | transformer | all"
# the one default of `cm train --backbone` and ModelConfig/TrainConfig: LFCC-LCNN needs no download and trains on a
# CPU, so a default run works wherever cm installs (pip only, offline); SSL backbones are chosen by name or preset
DEFAULT_BACKBONE = "lcnn"


class LayerStates(NamedTuple):
    """What a backbone's ``forward_layers`` returns.

    ``hidden_states``: one tensor per layer (``[B, T', D]`` frame sequences for SSL, pooled
    ``[B, D_i]`` block outputs for CNN/graph backbones); ``frame_lengths`` ``[B]`` real frames
    (None for pooled layers); ``readout`` and ``logits`` where the backbone has its own
    published head (None where cm adds layer weighting, pooling, projection and classifier).
    """

    hidden_states: tuple
    frame_lengths: Any = None
    readout: Any = None
    logits: Any = None


def _net(model):
    """The backbone net of a ``CountermeasureModel`` (one that carries its ``bundle``), or the net itself.

    Told apart by attribute, not by class, so the registry never imports the model it describes.
    """
    return model.backbone if hasattr(model, "bundle") and hasattr(model, "backbone") else model


@dataclass(frozen=True)
class Backbone:
    """A registry entry: what ``--backbone NAME`` builds and how cm runs it.

    ``family`` is a label for metadata (embedding files, run summaries), never a switch;
    ``module`` implements the backbone (``build_backbone(config)``); ``cm_head`` says that
    the backbone returns hidden states only and cm adds its head stack; ``default_trainable``
    and ``trainable_specs`` document the freezing rules the net's ``set_trainable`` accepts.
    ``weights`` says where usable weights come from: ``hub`` (the SSL model named by
    ``backbone_id``, usable as is), ``file`` (a published state dict given as
    ``backbone_id``; its head is trained) or ``run`` (only a ``cm train`` run).
    ``frame_layers``: the layers are frame sequences ``[B, T', D]`` (pooled over real frames
    when embedded) rather than pooled block outputs ``[B, D]``.
    """

    name: str
    family: str
    module: str
    description: str
    default_id: str | None = None
    length_policy: str = "full"
    target_samples: int | None = None
    default_trainable: str = "all"
    trainable_specs: str = "all | frozen"
    cm_head: bool = False
    weights: str = "run"
    frame_layers: bool = False

    def same_architecture(self, other: "Backbone") -> bool:
        """Whether two entries build the same network (SSL entries: the same model id or directory)."""
        if self.module != other.module:
            return False
        if self.weights != "hub":
            return True
        a, b = str(self.default_id), str(other.default_id)
        return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()

    def _impl(self):
        return importlib.import_module(self.module)

    def build_backbone(self, config):
        """The bare backbone net for a ``ModelConfig`` (pretrained weights loaded as the config says)."""
        return self._impl().build_backbone(config)

    def layer_names(self, model) -> list[str]:
        """Layer names as in embedding files: ``layer_00`` … ``layer_NN``."""
        return [f"layer_{i:02d}" for i in range(int(_net(model).n_layers))]

    def receptive_field(self, model) -> int:
        """Fewest input samples that give the backbone one output frame."""
        return int(_net(model).receptive_field)

    def set_trainable(self, model, spec: str | None) -> None:
        """Freeze/unfreeze the backbone (``spec`` one of ``trainable_specs``); cm's head stays trainable."""
        _net(model).set_trainable(spec or self.default_trainable)

    def forward_layers(self, model, wave, lengths=None) -> LayerStates:
        """Run the backbone once: every layer's state (and its own readout/logits, if it has a head)."""
        return _net(model).forward_layers(wave, lengths)

    def patch_sites(self, model) -> dict:
        """Site name -> module whose forward output is that site (``layer_00`` …, then ``pooled``, ``projection``).

        With a ``CountermeasureModel`` whose head cm built, ``pooled`` is the pooling module
        and ``projection`` the projection head.
        """
        net = _net(model)
        sites = dict(zip(self.layer_names(net), net.layer_modules()))
        if net is not model and getattr(model, "pooling", None) is not None:
            sites["pooled"] = model.pooling
            sites["projection"] = model.projection
        return sites


def _ssl(name: str, hub_id: str, description: str | None = None) -> Backbone:
    return Backbone(
        name,
        "ssl",
        "cm_cli.models.ssl",
        description or f"{hub_id} hidden states",
        default_id=hub_id,
        default_trainable="frozen",
        trainable_specs=SSL_TRAINABLE_SPECS,
        cm_head=True,
        weights="hub",
        frame_layers=True,
    )


BACKBONES: dict[str, Backbone] = {
    "aasist": Backbone(
        "aasist",
        "aasist",
        "cm_cli.models.aasist",
        "AASIST on raw waveforms (use --checkpoint for the ASVspoof 5 baseline)",
        length_policy="repeat",
        target_samples=64600,
        weights="file",
    ),
    "lcnn": Backbone("lcnn", "lcnn", "cm_cli.models.lcnn", "LFCC-LCNN, trained from scratch, fast on CPU"),
    "ssl_aasist": Backbone(
        "ssl_aasist",
        "ssl_aasist",
        "cm_cli.models.ssl_aasist",
        "AASIST back end on XLS-R features (SSL_Anti-spoofing)",
        default_id="facebook/wav2vec2-xls-r-300m",
        length_policy="repeat",
        target_samples=64600,
        frame_layers=True,
        trainable_specs="all | frozen (back end's output layer only) | top:K | transformer (SSL part; back end trains)",
    ),
    "wavlm": _ssl("wavlm", "microsoft/wavlm-base-plus"),
    "w2v2": _ssl("w2v2", "facebook/wav2vec2-base"),
    "xlsr": _ssl("xlsr", "facebook/wav2vec2-xls-r-300m"),
    "hubert": _ssl("hubert", "facebook/hubert-base-ls960"),
}

SSL_MODELS: dict[str, str] = {name: b.default_id for name, b in BACKBONES.items() if b.module == "cm_cli.models.ssl"}


def resolve_ssl_id(name_or_id: str) -> str:
    """Registry name -> hub id; a hub id or local path passes through unchanged."""
    return SSL_MODELS.get(name_or_id, name_or_id)


def backbone_names() -> list[str]:
    return list(BACKBONES)


def get_backbone(name: str) -> Backbone:
    """The bundle for ``name``; a hub id or local model directory is a generic SSL bundle."""
    if name in BACKBONES:
        return BACKBONES[name]
    if name and ("/" in name or Path(name).expanduser().is_dir()):
        return _ssl(name, name)
    raise CmError(
        f"unknown backbone {name!r}",
        hint="choose one of " + ", ".join(BACKBONES) + ", a Hugging Face hub id (org/name) or a local model directory",
    )
