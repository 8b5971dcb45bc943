"""Self-supervised speech front ends (WavLM, wav2vec 2.0, XLS-R, HuBERT) through transformers.

One wrapper, ``SSLBackbone``, turns a zero-padded waveform batch and its sample
lengths into every hidden state (the embedding output plus each transformer layer)
and the number of real frames per utterance. Frame counts come from the
convolutional front end (``model._get_feat_extract_output_lengths``), and padding
never leaks into an utterance's frames: the transformer gets a frame-level attention
mask, and for checkpoints whose first convolution is followed by a per-channel group
norm over time (wav2vec 2.0 Base, HuBERT Base, WavLM Base+) that norm is computed over
each utterance's real frames only (``MaskedGroupNorm``: the native op when the batch
has no padding). So an utterance padded inside a batch gives the same hidden states
as on its own.

Layerdrop (Fan et al., 2019) is off by default: ``load_ssl_model`` sets the config's
``layerdrop`` to 0 whatever the checkpoint ships (WavLM Base+ ships 0.05, ``WavLMConfig()``
0.1), because a skipped layer would shift every later hidden state's index under the
layer weighting and the per-layer embeddings. It can be turned on (``layerdrop=p``,
``ModelConfig.backbone_options["layerdrop"]``); then a layer skipped in a training step
keeps its slot, holding its input (what the skipped layer passes on), so there are always
``L + 1`` hidden states.

Freezing follows transformers: the CNN feature encoder is frozen with its own
``_freeze_parameters`` (otherwise, in training mode, it marks the waveform as needing
gradients and backward runs through the whole network), so with ``top:K`` autograd
records only the top K layers. Gradient checkpointing of the transformer layers is an
option (``gradient_checkpointing``, off by default), applied only when something trains.

Weights come from a local directory, or from the Hugging Face cache (``HF_HOME``)
without touching the network; a model missing from the cache is a ``CmError`` telling
the user to run ``cm download --model NAME`` on a machine with network access.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cm_cli.core.errors import CmError
from cm_cli.models.registry import SSL_MODELS, SSL_TRAINABLE_SPECS, LayerStates, resolve_ssl_id

__all__ = [
    "SSL_MODELS",
    "SSLLoadOptions",
    "resolve_ssl_id",
    "is_ssl_name",
    "load_ssl_model",
    "SSLBackbone",
    "MaskedGroupNorm",
    "masked_group_norm",
    "set_trainable",
    "build_backbone",
    "tiny_ssl_config",
    "save_tiny_ssl",
    "TRAINABLE_SPECS",
]

TRAINABLE_SPECS = SSL_TRAINABLE_SPECS


def is_ssl_name(name: str) -> bool:
    return name in SSL_MODELS


@dataclass(frozen=True)
class SSLLoadOptions:
    """Where to find weights: HF cache directory (None = HF default) and whether the network may be used."""

    cache_dir: str | None = None
    allow_download: bool = False


def _download_hint(name_or_id: str) -> str:
    return f"run `cm download --model {name_or_id}` on a machine with network access, sharing CM_CACHE_DIR or HF_HOME"


def _cm_cache() -> str:
    from cm_cli.models.hub import cm_cache_dir

    return str(cm_cache_dir())


def load_ssl_model(
    name_or_id: str, *, cache_dir: str | os.PathLike | None = None, allow_download: bool = False, layerdrop: float = 0.0
):
    """Load a transformers SSL model (``AutoModel``) from a local directory or the HF cache.

    ``name_or_id`` is a registry name (``wavlm``, ``w2v2``, ``xlsr``, ``hubert``), a hub id or
    a directory holding ``config.json`` and weights. The network is used only with
    ``allow_download=True``. ``layerdrop`` replaces the checkpoint's value (0 = off, the
    default; see the module docstring).
    """
    layerdrop = float(layerdrop)
    if not 0.0 <= layerdrop < 1.0:
        raise CmError(
            f"layerdrop must be in [0, 1), got {layerdrop}",
            hint="set backbone_options.layerdrop to 0 (off) or e.g. 0.1",
        )
    transformers = import_transformers_quiet()
    target = resolve_ssl_id(str(name_or_id))
    local = Path(target).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise CmError(
                f"{local} is not a transformers model directory (no config.json)",
                hint="point at a directory made by save_pretrained or `cm download --model`",
            )
        source, kwargs = str(local), {"local_files_only": True}
    elif target.startswith((".", "/", "~")) or target.count("/") > 1:
        raise CmError(
            f"SSL model directory {target} does not exist",
            hint="check the path, or give a registry name: " + ", ".join(SSL_MODELS),
        )
    else:
        from cm_cli.models.hub import cached_model_path

        source = target
        kwargs = {"local_files_only": not allow_download, "cache_dir": str(cache_dir) if cache_dir else None}
        try:  # the one lookup: HF cache, then cm's cache where `cm download --model` puts models
            hit = cached_model_path(target, cache_dir=cache_dir)
        except CmError:
            hit = None
        if hit is not None:
            source, kwargs = str(hit), {"local_files_only": True}
    import pickle

    try:
        config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        model = transformers.AutoModel.from_pretrained(source, config=config, **kwargs)
    except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) met a pickled object, not only tensors
        blocked = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "global" in line), "")
        raise CmError(
            f"refusing the weights of SSL model {target!r}: its pytorch_model.bin holds pickled Python "
            f"objects, not only tensors{f' ({blocked})' if blocked else ''}",
            "loading it could run arbitrary code; use a safetensors copy of the model from a trusted source",
        ) from None
    except (OSError, ValueError) as exc:
        if "local_files_only" in kwargs and kwargs["local_files_only"] and not local.is_dir():
            where = cache_dir or f"HF_HOME, nor {_cm_cache()}"
            raise CmError(
                f"SSL model {target!r} is not in the model cache ({where})", hint=_download_hint(name_or_id)
            ) from exc
        raise CmError(
            f"cannot load SSL model {target!r}: {str(exc).splitlines()[0]}", hint=_download_hint(name_or_id)
        ) from exc
    try:  # waveform normalisation the checkpoint expects (preprocessor_config.json)
        extractor = transformers.AutoFeatureExtractor.from_pretrained(source, **kwargs)
        model.cm_do_normalize = bool(getattr(extractor, "do_normalize", False))
    except (OSError, ValueError):
        model.cm_do_normalize = False
    if not hasattr(model, "_get_feat_extract_output_lengths") or not hasattr(model, "feature_extractor"):
        raise CmError(
            f"{target!r} is a {type(model).__name__}, not a wav2vec2-style speech model",
            hint="use a WavLM, wav2vec 2.0, XLS-R or HuBERT checkpoint",
        )
    model.config.layerdrop = layerdrop
    return model


def import_transformers_quiet():
    from cm_cli.core.heavy import import_transformers

    transformers = import_transformers()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # library code stays silent
    return transformers


def _uses_instance_group_norm(model) -> bool:
    return getattr(model.config, "feat_extract_norm", "layer") == "group"


def masked_group_norm(x, frame_lengths, weight=None, bias=None, eps: float = 1e-5):
    """Per-channel norm over each utterance's real frames: ``x [B, C, T]``, ``frame_lengths [B]`` -> ``[B, C, T]``.

    Frames past ``frame_lengths`` do not enter the statistics and come out as zeros.
    Two passes (mean, then the centred sum of squares) in float32 whatever ``x``'s dtype.
    """
    dtype, x = x.dtype, x.float()
    n_frames = x.shape[-1]
    pad = (torch.arange(n_frames, device=x.device) >= frame_lengths.to(x.device).unsqueeze(1)).unsqueeze(1)  # [B, 1, T]
    count = (n_frames - pad.sum(dim=-1, keepdim=True)).clamp_min(1).to(x.dtype)
    mean = x.masked_fill(pad, 0.0).sum(dim=-1, keepdim=True) / count
    centred = (x - mean).masked_fill_(pad, 0.0)
    rstd = torch.rsqrt(torch.linalg.vector_norm(centred, dim=-1, keepdim=True).square() / count + eps)
    if weight is None:
        return (centred * rstd).to(dtype)
    y = torch.addcmul(bias.float().view(1, -1, 1), centred, rstd * weight.float().view(1, -1, 1))
    return y.masked_fill_(pad, 0.0).to(dtype)


class MaskedGroupNorm(nn.GroupNorm):
    """Per-channel group norm over time that ignores frames past ``frame_lengths`` (same parameters).

    ``frame_lengths = None`` (a batch without padding) runs the native ``group_norm``.
    """

    frame_lengths = None

    def forward(self, x):
        lengths = self.frame_lengths
        if lengths is None or self.num_groups != self.num_channels:
            return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        return masked_group_norm(
            x, lengths, self.weight if self.affine else None, self.bias if self.affine else None, self.eps
        )


def _conv_geometry(config) -> list[tuple[int, int]]:
    return list(zip(config.conv_kernel, config.conv_stride))


def _parse_top(spec: str, n_layers: int) -> int:
    try:
        k = int(spec[4:])
    except ValueError:
        k = -1
    if not 0 <= k <= n_layers:
        raise CmError(f"bad trainable spec {spec!r}: K must be between 0 and {n_layers}", hint=f"use {TRAINABLE_SPECS}")
    return k


def set_trainable(model, spec: str) -> None:
    """Freeze/unfreeze an SSL model: ``frozen``, ``top:K`` (last K transformer layers), ``transformer``, ``all``.

    Below ``all`` the CNN feature encoder is frozen the way transformers expects
    (``_freeze_parameters``), so the waveform is never put on the autograd tape.
    """
    spec = (spec or "frozen").strip()
    layers = list(model.encoder.layers)
    k = _parse_top(spec, len(layers)) if spec.startswith("top:") else None
    if k is None and spec not in ("frozen", "transformer", "all"):
        raise CmError(f"bad trainable spec {spec!r}", hint=f"use {TRAINABLE_SPECS}")
    for p in model.parameters():
        p.requires_grad = spec in ("all", "transformer")
    if k:
        for layer in layers[len(layers) - k :]:
            for p in layer.parameters():
                p.requires_grad = True
        if getattr(model.config, "do_stable_layer_norm", False):
            for p in model.encoder.layer_norm.parameters():  # applied after the last layer
                p.requires_grad = True
    if spec == "all":
        model.feature_extractor._requires_grad = True
    else:
        model.feature_extractor._freeze_parameters()


def _set_checkpointing(model, enabled: bool) -> None:
    """Gradient checkpointing of the transformer layers on or off (non-reentrant, so frozen inputs are fine)."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        return
    if enabled:
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable({"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif any(getattr(m, "gradient_checkpointing", False) for m in model.modules()):
        if hasattr(model, "activation_checkpointing_disable"):
            model.activation_checkpointing_disable()
        else:
            model.gradient_checkpointing_disable()


class SSLBackbone(nn.Module):
    """``forward(wave [B, T], lengths [B]) -> (hidden_states: tuple of L+1 [B, T', D], frame_lengths [B])``."""

    kind = "ssl"

    def __init__(
        self, model, *, trainable: str = "frozen", normalize: bool | None = None, gradient_checkpointing: bool = False
    ):
        super().__init__()
        self.model = model
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.normalize = bool(getattr(model, "cm_do_normalize", False)) if normalize is None else bool(normalize)
        self._norms = []  # a plain list: the norm stays registered once, under model
        if _uses_instance_group_norm(model):
            norm = model.feature_extractor.conv_layers[0].layer_norm
            norm.__class__ = MaskedGroupNorm
            self._norms.append(norm)
        self.set_trainable(trainable)

    def set_trainable(self, spec: str) -> None:
        """``frozen | top:K | transformer | all`` (see ``set_trainable``); checkpointing only when something trains."""
        set_trainable(self.model, spec)
        self.trainable = spec
        _set_checkpointing(self.model, self.gradient_checkpointing and not self.is_frozen)

    @property
    def n_hidden_states(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    n_layers = n_hidden_states

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

    def layer_modules(self) -> list:
        """The module whose output is each hidden state: the encoder's input dropout, then each layer."""
        return [self.model.encoder.dropout, *self.model.encoder.layers]

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

    def _hidden_states(self, wave, attention_mask) -> tuple:
        """Run the model once, reading each layer's output through hooks added for this call only.

        Hooks added now run after any added earlier (activation patching replaces outputs
        that way), so the states read are the ones the next layer sees. A layer skipped by
        layerdrop leaves its slot holding its input.
        """
        outputs: dict = {}

        def keeper(index):
            def keep(module, args, output):
                outputs[index] = output[0] if isinstance(output, tuple) else output

            return keep

        modules = self.layer_modules()
        handles = [m.register_forward_hook(keeper(i)) for i, m in enumerate(modules)]
        try:
            self.model(wave, attention_mask=attention_mask)
        finally:
            for handle in handles:
                handle.remove()
        states = [outputs[0]]
        for i in range(1, len(modules)):
            states.append(outputs.get(i, states[-1]))
        return tuple(states)

    def forward_layers(self, wave, lengths=None) -> LayerStates:
        batch, n_samples = wave.shape
        if lengths is None:
            lengths = torch.full((batch,), n_samples, dtype=torch.long)
        padded = bool((lengths < n_samples).any())
        lengths = lengths.to(wave.device)
        sample_mask = torch.arange(n_samples, device=wave.device).unsqueeze(0) < lengths.unsqueeze(1)
        if self.normalize:
            wave = self._normalize(wave, sample_mask)
        kernel, stride = _conv_geometry(self.model.config)[0]
        for norm in self._norms:
            norm.frame_lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1 if padded else None
        states = self._hidden_states(wave, sample_mask.to(torch.long))
        return LayerStates(states, self.frame_lengths(lengths))

    def forward(self, wave, lengths=None):
        states = self.forward_layers(wave, lengths)
        return states.hidden_states, states.frame_lengths


def build_backbone(config) -> SSLBackbone:
    """The SSL front end of a ``ModelConfig`` (``backbone_options``: ``cache_dir``, ``layerdrop``)."""
    opts = dict(config.backbone_options or {})
    hf = load_ssl_model(config.backbone_id, cache_dir=opts.get("cache_dir"), layerdrop=opts.get("layerdrop", 0.0))
    return SSLBackbone(hf, gradient_checkpointing=config.gradient_checkpointing)


_TINY_TYPES = {"wavlm": "WavLMConfig", "w2v2": "Wav2Vec2Config", "xlsr": "Wav2Vec2Config", "hubert": "HubertConfig"}


def tiny_ssl_config(
    kind: str = "w2v2",
    *,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    feat_extract_norm: str | None = None,
    **overrides,
):
    """A very small random-init config of one SSL family (for tests and benchmarks); ``overrides`` go to the config."""
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
        **overrides,
    )


def save_tiny_ssl(kind: str, directory: str | os.PathLike, *, seed: int = 0, **config_overrides) -> Path:
    """Random-init tiny SSL model saved with ``save_pretrained`` into ``directory``; returns it."""
    transformers = import_transformers_quiet()
    config = tiny_ssl_config(kind, **config_overrides)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config)
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory
