"""Self-supervised speech front ends (WavLM, wav2vec 2.0, XLS-R, HuBERT) through transformers.

One wrapper, ``SSLBackbone``, turns a zero-padded waveform batch and its sample
lengths into every hidden state (the embedding output plus each transformer layer)
and the number of real frames per utterance. Frame counts come from the
convolutional front end (``model._get_feat_extract_output_lengths``), and padding
never leaks into an utterance's frames: the transformer gets a frame-level attention
mask, and for checkpoints whose first convolution is followed by a per-channel group
norm over time (wav2vec 2.0 Base, HuBERT Base, WavLM Base+) that norm is computed over
each utterance's real frames only. So an utterance padded inside a batch gives the
same hidden states as on its own.

Weights come from a local directory, or from the Hugging Face cache (``HF_HOME``)
without touching the network; a model missing from the cache is a ``CmError`` telling
the user to run ``cm download --model NAME`` on a machine with network access.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cm_cli.core.errors import CmError
from cm_cli.models._lazy import LazyClasses

__all__ = [
    "SSL_MODELS",
    "SSLLoadOptions",
    "resolve_ssl_id",
    "is_ssl_name",
    "load_ssl_model",
    "SSLBackbone",
    "set_trainable",
    "tiny_ssl_config",
    "save_tiny_ssl",
    "TRAINABLE_SPECS",
]

SSL_MODELS: dict[str, str] = {
    "wavlm": "microsoft/wavlm-base-plus",
    "w2v2": "facebook/wav2vec2-base",
    "xlsr": "facebook/wav2vec2-xls-r-300m",
    "hubert": "facebook/hubert-base-ls960",
}

TRAINABLE_SPECS = "frozen | top:K | transformer | all"


def is_ssl_name(name: str) -> bool:
    return name in SSL_MODELS


def resolve_ssl_id(name_or_id: str) -> str:
    """Registry name -> hub id; a hub id or local path passes through unchanged."""
    return SSL_MODELS.get(name_or_id, name_or_id)


@dataclass(frozen=True)
class SSLLoadOptions:
    """Where to find weights: HF cache directory (None = HF default) and whether the network may be used."""

    cache_dir: str | None = None
    allow_download: bool = False


def _download_hint(name_or_id: str) -> str:
    return f"run `cm download --model {name_or_id}` on a machine with network access (it fills the Hugging Face cache, HF_HOME)"


def load_ssl_model(name_or_id: str, *, cache_dir: str | os.PathLike | None = None, allow_download: bool = False):
    """Load a transformers SSL model (``AutoModel``) from a local directory or the HF cache.

    ``name_or_id`` is a registry name (``wavlm``, ``w2v2``, ``xlsr``, ``hubert``), a hub id or
    a directory holding ``config.json`` and weights. The network is used only with
    ``allow_download=True``.
    """
    transformers = import_transformers_quiet()
    target = resolve_ssl_id(str(name_or_id))
    local = Path(target).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise CmError(f"{local} is not a transformers model directory (no config.json)", hint="point at a directory made by save_pretrained or `cm download --model`")
        source, kwargs = str(local), {"local_files_only": True}
    elif target.startswith((".", "/", "~")) or target.count("/") > 1:
        raise CmError(f"SSL model directory {target} does not exist", hint="check the path, or give a registry name: " + ", ".join(SSL_MODELS))
    else:
        source = target
        kwargs = {"local_files_only": not allow_download, "cache_dir": str(cache_dir) if cache_dir else None}
    try:
        config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        model = transformers.AutoModel.from_pretrained(source, config=config, **kwargs)
    except (OSError, ValueError) as exc:
        if "local_files_only" in kwargs and kwargs["local_files_only"] and not local.is_dir():
            raise CmError(f"SSL model {target!r} is not in the Hugging Face cache ({cache_dir or 'HF_HOME'})", hint=_download_hint(name_or_id)) from exc
        raise CmError(f"cannot load SSL model {target!r}: {str(exc).splitlines()[0]}", hint=_download_hint(name_or_id)) from exc
    try:  # waveform normalisation the checkpoint expects (preprocessor_config.json)
        extractor = transformers.AutoFeatureExtractor.from_pretrained(source, **kwargs)
        model.cm_do_normalize = bool(getattr(extractor, "do_normalize", False))
    except (OSError, ValueError):
        model.cm_do_normalize = False
    if not hasattr(model, "_get_feat_extract_output_lengths") or not hasattr(model, "feature_extractor"):
        raise CmError(f"{target!r} is a {type(model).__name__}, not a wav2vec2-style speech model", hint="use a WavLM, wav2vec 2.0, XLS-R or HuBERT checkpoint")
    return model


def import_transformers_quiet():
    from cm_cli.core.heavy import import_transformers

    transformers = import_transformers()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # library code stays silent
    return transformers


def _uses_instance_group_norm(model) -> bool:
    return getattr(model.config, "feat_extract_norm", "layer") == "group"


def _masked_group_norm_class():
    from torch import nn

    class MaskedGroupNorm(nn.GroupNorm):
        """Per-channel group norm over time that ignores frames past ``frame_lengths`` (same parameters)."""

        frame_lengths = None

        def forward(self, x):
            lengths = self.frame_lengths
            if lengths is None or self.num_groups != self.num_channels:
                return super().forward(x)
            import torch

            mask = (torch.arange(x.shape[-1], device=x.device).unsqueeze(0) < lengths.to(x.device).unsqueeze(1)).unsqueeze(1)
            m = mask.to(x.dtype)
            count = m.sum(dim=-1, keepdim=True).clamp_min(1.0)
            mean = (x * m).sum(dim=-1, keepdim=True) / count
            var = ((x - mean).pow(2) * m).sum(dim=-1, keepdim=True) / count
            y = (x - mean) / torch.sqrt(var + self.eps)
            if self.affine:
                y = y * self.weight.view(1, -1, 1) + self.bias.view(1, -1, 1)
            return y * m

    return MaskedGroupNorm


def _conv_geometry(config) -> list[tuple[int, int]]:
    return list(zip(config.conv_kernel, config.conv_stride))


def set_trainable(model, spec: str) -> None:
    """Freeze/unfreeze an SSL model: ``frozen``, ``top:K`` (last K transformer layers), ``transformer``, ``all``."""
    spec = (spec or "frozen").strip()
    for p in model.parameters():
        p.requires_grad = False
    layers = model.encoder.layers
    if spec == "frozen":
        return
    if spec == "all":
        for p in model.parameters():
            p.requires_grad = True
        return
    if spec == "transformer":
        for p in model.parameters():
            p.requires_grad = True
        for p in model.feature_extractor.parameters():
            p.requires_grad = False
        return
    if spec.startswith("top:"):
        try:
            k = int(spec[4:])
        except ValueError:
            k = -1
        if not 0 <= k <= len(layers):
            raise CmError(f"bad trainable spec {spec!r}: K must be between 0 and {len(layers)}", hint=f"use {TRAINABLE_SPECS}")
        for layer in list(layers)[len(layers) - k :]:
            for p in layer.parameters():
                p.requires_grad = True
        if k and getattr(model.config, "do_stable_layer_norm", False):
            for p in model.encoder.layer_norm.parameters():  # applied after the last layer
                p.requires_grad = True
        return
    raise CmError(f"bad trainable spec {spec!r}", hint=f"use {TRAINABLE_SPECS}")


def _modules():
    import torch
    from torch import nn

    class SSLBackbone(nn.Module):
        """``forward(wave [B, T], lengths [B]) -> (hidden_states: tuple of L+1 [B, T', D], frame_lengths [B])``."""

        kind = "ssl"

        def __init__(self, model, *, trainable: str = "frozen", normalize: bool | None = None, gradient_checkpointing: bool = True):
            super().__init__()
            self.model = model
            self.trainable = trainable
            set_trainable(model, trainable)
            self.normalize = bool(getattr(model, "cm_do_normalize", False)) if normalize is None else bool(normalize)
            self._norms = []  # a plain list: the norm stays registered once, under model
            if _uses_instance_group_norm(model):
                norm = model.feature_extractor.conv_layers[0].layer_norm
                norm.__class__ = _masked_group_norm_class()
                self._norms.append(norm)
            if gradient_checkpointing and trainable != "frozen" and hasattr(model, "gradient_checkpointing_enable"):
                model.gradient_checkpointing_enable()

        @property
        def n_hidden_states(self) -> int:
            return int(self.model.config.num_hidden_layers) + 1

        @property
        def hidden_size(self) -> int:
            return int(self.model.config.hidden_size)

        @property
        def is_frozen(self) -> bool:
            return not any(p.requires_grad for p in self.model.parameters())

        @property
        def receptive_field(self) -> int:
            """Fewest samples that give one frame."""
            n = 1
            for kernel, stride in reversed(_conv_geometry(self.model.config)):
                n = (n - 1) * stride + kernel
            return n

        def frame_lengths(self, lengths):
            return self.model._get_feat_extract_output_lengths(lengths).to(torch.long).clamp_min(0)

        def train(self, mode: bool = True):
            super().train(mode)
            if self.is_frozen:
                self.model.eval()  # no dropout or time masking in a frozen feature extractor
            return self

        def _normalize(self, wave, sample_mask):
            m = sample_mask.to(wave.dtype)
            count = m.sum(dim=1, keepdim=True).clamp_min(1.0)
            mean = (wave * m).sum(dim=1, keepdim=True) / count
            var = ((wave - mean).pow(2) * m).sum(dim=1, keepdim=True) / count
            return (wave - mean) / torch.sqrt(var + 1e-7) * m

        def forward(self, wave, lengths=None):
            batch, n_samples = wave.shape
            if lengths is None:
                lengths = torch.full((batch,), n_samples, dtype=torch.long, device=wave.device)
            lengths = lengths.to(wave.device)
            sample_mask = torch.arange(n_samples, device=wave.device).unsqueeze(0) < lengths.unsqueeze(1)
            if self.normalize:
                wave = self._normalize(wave, sample_mask)
            for norm in self._norms:
                kernel, stride = _conv_geometry(self.model.config)[0]
                norm.frame_lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
            out = self.model(wave, attention_mask=sample_mask.to(torch.long), output_hidden_states=True)
            frames = self.frame_lengths(lengths)
            return tuple(out.hidden_states), frames

    return {"SSLBackbone": SSLBackbone}


_LAZY = LazyClasses(_modules, ("SSLBackbone",))
__getattr__ = _LAZY.module_getattr


_TINY_TYPES = {"wavlm": "WavLMConfig", "w2v2": "Wav2Vec2Config", "xlsr": "Wav2Vec2Config", "hubert": "HubertConfig"}


def tiny_ssl_config(kind: str = "w2v2", *, hidden_size: int = 32, num_hidden_layers: int = 2, feat_extract_norm: str | None = None):
    """A very small random-init config of one SSL family (for tests and benchmarks)."""
    transformers = import_transformers_quiet()
    if kind not in _TINY_TYPES:
        raise CmError(f"no tiny config for {kind!r}", hint="choose one of " + ", ".join(_TINY_TYPES))
    cls = getattr(transformers, _TINY_TYPES[kind])
    stable = kind == "xlsr"
    return cls(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 3, 2),
        conv_stride=(5, 2, 2),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=feat_extract_norm or ("layer" if stable else "group"),
        do_stable_layer_norm=stable,
        conv_bias=stable,
        num_buckets=16,
        max_bucket_distance=64,
        vocab_size=8,
    )


def save_tiny_ssl(kind: str, directory: str | os.PathLike, *, seed: int = 0, **config_overrides) -> Path:
    """Random-init tiny SSL model saved with ``save_pretrained`` into ``directory``; returns it."""
    import torch

    transformers = import_transformers_quiet()
    config = tiny_ssl_config(kind, **config_overrides)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config)
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory
