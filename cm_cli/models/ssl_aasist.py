"""SSL-AASIST (Tak et al., Odyssey 2022): the AASIST graph back end on wav2vec 2.0 / XLS-R features.

The SSL model's last hidden state is projected to 128 dimensions (``LL``), read as a
one-channel ``[128 x frames]`` map, max-pooled (3, 3) and passed through six residual
blocks without time pooling; spectral and temporal nodes come from softmax-attention
weighted sums over the encoder map (``attention``) instead of AASIST's max of |x|.

``load_ssl_aasist_checkpoint`` reads the state dict published with SSL_Anti-spoofing
(XLS-R 300M + AASIST, fairseq names under ``ssl_model.model.``), renames the fairseq
wav2vec 2.0 keys to transformers' ``Wav2Vec2Model`` names (``fairseq_to_hf_key``) and
loads the back-end keys unchanged (this module's names follow that checkpoint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cm_cli.core.errors import CmError
from cm_cli.models.aasist import AASISTConfig, GraphBackEnd, freeze_but_output_layer
from cm_cli.models.registry import LayerStates
from cm_cli.models.ssl import SSLBackbone, load_ssl_model

__all__ = [
    "SSL_AASIST_CONFIG",
    "fairseq_to_hf_key",
    "remap_fairseq_state_dict",
    "SSLAASIST",
    "SSLAASISTBackEnd",
    "build_ssl_aasist",
    "build_backbone",
    "load_ssl_aasist_checkpoint",
]

SSL_AASIST_CONFIG = AASISTConfig(
    nb_samp=64600,
    first_conv=128,
    filts=(128, (1, 32), (32, 32), (32, 64), (64, 64)),
    gat_dims=(64, 32),
    pool_ratios=(0.5, 0.5, 0.5, 0.5),
    temperatures=(2.0, 2.0, 100.0, 100.0),
)
SSL_PREFIX = "ssl_model.model."

# fairseq wav2vec 2.0 parameters with no counterpart in transformers' Wav2Vec2Model
_FAIRSEQ_ONLY = re.compile(r"^(quantizer\.|project_q\.|final_proj\.|label_embs_concat|target_glu\.)")

_RULES: list[tuple[re.Pattern, str]] = [
    (
        re.compile(r"^feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)$"),
        r"feature_extractor.conv_layers.\1.conv.\2",
    ),
    # "layer_norm" extractor mode: Sequential(conv, dropout, Sequential(transpose, LayerNorm, transpose), GELU)
    (
        re.compile(r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)$"),
        r"feature_extractor.conv_layers.\1.layer_norm.\2",
    ),
    # "default" mode: Sequential(conv, dropout, GroupNorm, GELU) on the first layer only
    (
        re.compile(r"^feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)$"),
        r"feature_extractor.conv_layers.\1.layer_norm.\2",
    ),
    (re.compile(r"^layer_norm\.(weight|bias)$"), r"feature_projection.layer_norm.\1"),
    (re.compile(r"^post_extract_proj\.(weight|bias)$"), r"feature_projection.projection.\1"),
    (re.compile(r"^mask_emb$"), "masked_spec_embed"),
    (re.compile(r"^encoder\.pos_conv\.0\.bias$"), "encoder.pos_conv_embed.conv.bias"),
    (
        re.compile(r"^encoder\.pos_conv\.0\.(weight_g|parametrizations\.weight\.original0)$"),
        "encoder.pos_conv_embed.conv.parametrizations.weight.original0",
    ),
    (
        re.compile(r"^encoder\.pos_conv\.0\.(weight_v|parametrizations\.weight\.original1)$"),
        "encoder.pos_conv_embed.conv.parametrizations.weight.original1",
    ),
    (re.compile(r"^encoder\.layer_norm\.(weight|bias)$"), r"encoder.layer_norm.\1"),
    (
        re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.(k_proj|q_proj|v_proj|out_proj)\.(weight|bias)$"),
        r"encoder.layers.\1.attention.\2.\3",
    ),
    (re.compile(r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)$"), r"encoder.layers.\1.layer_norm.\2"),
    (
        re.compile(r"^encoder\.layers\.(\d+)\.fc1\.(weight|bias)$"),
        r"encoder.layers.\1.feed_forward.intermediate_dense.\2",
    ),
    (re.compile(r"^encoder\.layers\.(\d+)\.fc2\.(weight|bias)$"), r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (
        re.compile(r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$"),
        r"encoder.layers.\1.final_layer_norm.\2",
    ),
]


def fairseq_to_hf_key(key: str) -> str | None:
    """A fairseq wav2vec 2.0 parameter name -> the transformers Wav2Vec2Model name (None: no counterpart)."""
    if _FAIRSEQ_ONLY.match(key):
        return None
    for pattern, replacement in _RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    raise CmError(f"unknown fairseq wav2vec 2.0 parameter {key!r}", hint="is this a wav2vec 2.0 / XLS-R checkpoint?")


def remap_fairseq_state_dict(state_dict: dict, *, prefix: str = "") -> tuple[dict, list[str]]:
    """Rename the fairseq keys under ``prefix`` to transformers names; returns (renamed, dropped keys)."""
    renamed, dropped = {}, []
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        new = fairseq_to_hf_key(key[len(prefix) :])
        if new is None:
            dropped.append(key)
        else:
            renamed[new] = value
    return renamed, dropped


class SSLAASISTBackEnd(GraphBackEnd):
    """SSL features ``[B, T, D]`` -> (readout ``[B, 160]``, logits ``[B, 2]``)."""

    def __init__(self, ssl_dim: int, config: AASISTConfig = SSL_AASIST_CONFIG):
        proj_dim = config.filts[0]
        super().__init__(config, n_spectral_nodes=proj_dim // 3, block_pool=False)
        channels = config.filts[-1][-1]
        self.LL = nn.Linear(ssl_dim, proj_dim)
        self.first_bn1 = nn.BatchNorm2d(channels)
        self.attention = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, kernel_size=1),
            nn.SELU(),
            nn.BatchNorm2d(2 * channels),
            nn.Conv2d(2 * channels, channels, kernel_size=1),
        )

    def node_inputs(self, x):
        x = F.selu(self.first_bn1(x))
        w = self.attention(x)
        spectral = (x * torch.softmax(w, dim=-1)).sum(dim=-1).transpose(1, 2)
        temporal = (x * torch.softmax(w, dim=-2)).sum(dim=-2).transpose(1, 2)
        return spectral, temporal

    def forward(self, features, layers: dict | None = None):
        x = self.LL(features).transpose(1, 2).unsqueeze(1)  # [B, 1, proj_dim, T]
        return self.graph_forward(F.max_pool2d(x, (3, 3)), layers)


class SSLAASIST(nn.Module):
    """SSL front end (``SSLBackbone``) + ``SSLAASISTBackEnd`` on its last hidden state."""

    kind = "ssl_aasist"

    def __init__(self, ssl_backbone, config: AASISTConfig = SSL_AASIST_CONFIG):
        super().__init__()
        self.ssl = ssl_backbone
        self.backend = SSLAASISTBackEnd(ssl_backbone.hidden_size, config)
        self.embedding_dim = self.backend.embedding_dim

    @property
    def receptive_field(self) -> int:
        # the back end needs at least 3 frames for its (3, 3) pool
        return self.ssl.receptive_field + 2 * 320

    @property
    def n_layers(self) -> int:
        return self.ssl.n_layers

    def layer_modules(self) -> list:
        """The SSL front end's hidden states are this backbone's layers."""
        return self.ssl.layer_modules()

    def set_trainable(self, spec: str) -> None:
        """``all``; ``frozen`` (only the back end's output layer trains); ``top:K`` / ``transformer`` (SSL part,
        back end trains)."""
        if spec in ("all", "frozen"):
            self.ssl.set_trainable(spec)
            freeze_but_output_layer(self, spec, ("backend.out_layer",))
            return
        self.ssl.set_trainable(spec)
        for p in self.backend.parameters():
            p.requires_grad = True

    def forward_all(self, wave, lengths=None):
        hidden_states, frames = self.ssl(wave, lengths)
        layers: dict = {}
        readout, logits = self.backend(hidden_states[-1], layers)
        return readout, logits, hidden_states, frames

    def forward_layers(self, wave, lengths=None) -> LayerStates:
        readout, logits, hidden_states, frames = self.forward_all(wave, lengths)
        return LayerStates(hidden_states, frames, readout, logits)

    def forward(self, wave, lengths=None):
        return self.forward_all(wave, lengths)[1]


def build_ssl_aasist(ssl_backbone, config: AASISTConfig | None = None) -> SSLAASIST:
    """SSL-AASIST around an ``SSLBackbone`` (random back-end weights)."""
    return SSLAASIST(ssl_backbone, config or SSL_AASIST_CONFIG)


def build_backbone(config) -> SSLAASIST:
    """SSL-AASIST for a ``ModelConfig``: the SSL model from ``backbone_id``.

    ``backbone_options``: ``cache_dir``, ``layerdrop``.
    """
    opts = dict(config.backbone_options or {})
    hf = load_ssl_model(config.backbone_id, cache_dir=opts.get("cache_dir"), layerdrop=opts.get("layerdrop", 0.0))
    return build_ssl_aasist(SSLBackbone(hf, gradient_checkpointing=config.gradient_checkpointing))


@dataclass(frozen=True)
class LoadReport:
    """What ``load_ssl_aasist_checkpoint`` did: fairseq keys with no transformers counterpart."""

    dropped: tuple


def load_ssl_aasist_checkpoint(model, state_dict: dict) -> LoadReport:
    """Load SSL_Anti-spoofing's XLS-R + AASIST state dict into ``model`` (an ``SSLAASIST``), strictly.

    ``state_dict`` holds fairseq names under ``ssl_model.model.`` and back-end names
    (``LL``, ``first_bn``, ``encoder``, ``GAT_layer_S``, …) at the top level; a
    ``module.`` prefix from DataParallel is removed first.
    """
    if any(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    if not any(k.startswith(SSL_PREFIX) for k in state_dict):
        raise CmError(
            "not an SSL_Anti-spoofing checkpoint: no 'ssl_model.model.' parameters",
            hint="this loader is for the published XLS-R + AASIST checkpoint",
        )
    ssl_sd, dropped = remap_fairseq_state_dict(state_dict, prefix=SSL_PREFIX)
    backend_sd = {k: v for k, v in state_dict.items() if not k.startswith("ssl_model.")}
    hf_model = model.ssl.model
    if "masked_spec_embed" in ssl_sd and "masked_spec_embed" not in hf_model.state_dict():
        ssl_sd.pop("masked_spec_embed")
        dropped.append(SSL_PREFIX + "mask_emb")
    for target, sd, label in ((hf_model, ssl_sd, "SSL front end"), (model.backend, backend_sd, "AASIST back end")):
        try:
            result = target.load_state_dict(sd, strict=False)
        except RuntimeError as exc:
            raise CmError(
                f"checkpoint does not match the {label}: {str(exc).splitlines()[-1].strip()}",
                hint="the SSL config must match the checkpoint (XLS-R 300M for the published model)",
            ) from exc
        problems = list(result.missing_keys) + list(result.unexpected_keys)
        if problems:
            raise CmError(
                f"checkpoint does not match the {label}: missing {list(result.missing_keys)[:5]}, "
                f"unexpected {list(result.unexpected_keys)[:5]}",
                hint="the SSL config must match the checkpoint (XLS-R 300M for the published model)",
            )
    return LoadReport(dropped=tuple(dropped))
