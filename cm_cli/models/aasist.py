"""AASIST (Jung et al., ICASSP 2022): sinc front end, residual encoder, graph attention back end.

Written for cm from the published architecture so that the official ASVspoof 5
baseline checkpoint loads with ``strict=True`` (the parameter names below follow
that checkpoint) and computes the same logits. The graph back end is shared with
SSL-AASIST (``cm_cli.models.ssl_aasist``), which feeds it projected SSL features
instead of the sinc filterbank output.

Shapes: waveform ``[B, T]`` at 16 kHz -> sinc filterbank ``[B, 70, T - 128]`` ->
max-pool (3, 3) -> feature map ``[B, 1, 23, T']`` -> encoder ``[B, 64, 23, T'']``
-> spectral graph (23 nodes) and temporal graph (T'' nodes) -> two heterogeneous
stacks (HS-GAL) -> max graph operation -> readout ``[B, 160]`` -> logits ``[B, 2]``
with index 1 = bona fide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cm_cli.core.errors import CmError
from cm_cli.models.registry import LayerStates

__all__ = [
    "AASISTConfig",
    "AASIST",
    "GraphBackEnd",
    "build_aasist",
    "build_backbone",
    "load_aasist_weights",
    "freeze_but_output_layer",
    "AASIST_LAYER_NAMES",
    "aasist_layer_names",
]


@dataclass(frozen=True)
class AASISTConfig:
    """Hyper-parameters of AASIST; the defaults are the official ASVspoof 5 baseline."""

    nb_samp: int = 64600
    first_conv: int = 128
    filts: tuple = (70, (1, 32), (32, 32), (32, 64), (64, 64))
    gat_dims: tuple = (64, 32)
    pool_ratios: tuple = (0.5, 0.7, 0.5, 0.5)
    temperatures: tuple = (2.0, 2.0, 100.0, 100.0)
    sample_rate: int = 16000

    @classmethod
    def from_dict(cls, values: dict) -> "AASISTConfig":
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in values.items() if k in known}
        if "filts" in kwargs:
            kwargs["filts"] = tuple(tuple(f) if isinstance(f, (list, tuple)) else f for f in kwargs["filts"])
        for key in ("gat_dims", "pool_ratios", "temperatures"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return {
            "nb_samp": self.nb_samp,
            "first_conv": self.first_conv,
            "filts": [list(f) if isinstance(f, tuple) else f for f in self.filts],
            "gat_dims": list(self.gat_dims),
            "pool_ratios": list(self.pool_ratios),
            "temperatures": list(self.temperatures),
            "sample_rate": self.sample_rate,
        }


def aasist_layer_names(n_encoder_blocks: int = 6) -> list[str]:
    """Names of the pooled block outputs, in order (``layer_00`` is the first)."""
    return ["front_end", *[f"encoder_{i}" for i in range(n_encoder_blocks)], "gat_spectral", "gat_temporal", "readout"]


AASIST_LAYER_NAMES = aasist_layer_names()


def _mel_band_edges(n_filters: int, sample_rate: int, nfft: int = 512):
    """Band edges in Hz, equally spaced on the mel scale between 0 and Nyquist."""
    import numpy as np

    hz = (sample_rate // 2) * np.linspace(0.0, 1.0, nfft // 2 + 1)
    mel = 2595.0 * np.log10(1.0 + hz / 700.0)
    edges_mel = np.linspace(mel.min(), mel.max(), n_filters + 1)
    return 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)


def _sinc_filterbank(n_filters: int, kernel_size: int, sample_rate: int):
    """Fixed Hamming-windowed band-pass sinc filters, ``[n_filters, kernel_size]`` float32."""
    import numpy as np
    import torch

    edges = _mel_band_edges(n_filters, sample_rate)
    half = (kernel_size - 1) / 2
    t = np.arange(-half, half + 1).astype(np.float32).astype(np.float64)
    window = np.hamming(kernel_size)
    bank = np.zeros((n_filters, kernel_size), dtype=np.float64)
    for i in range(n_filters):
        low, high = edges[i], edges[i + 1]
        ideal = (2 * high / sample_rate) * np.sinc(2 * high * t / sample_rate) - (2 * low / sample_rate) * np.sinc(
            2 * low * t / sample_rate
        )
        bank[i] = window * ideal
    return torch.from_numpy(bank.astype(np.float32))


class SincFilterbank(nn.Module):
    """Fixed mel-spaced sinc band-pass filters (no trainable weights), with optional band masking."""

    def __init__(self, n_filters: int, kernel_size: int, sample_rate: int = 16000):
        super().__init__()
        if kernel_size % 2 == 0:
            kernel_size += 1
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.register_buffer("band_pass", _sinc_filterbank(n_filters, kernel_size, sample_rate), persistent=False)

    def forward(self, wave, *, mask_bands: bool = False):
        filters = self.band_pass
        if mask_bands:
            # frequency augmentation: zero a random run of up to 19 adjacent bands
            width = int(torch.randint(0, 20, (1,)).item())
            start = int(torch.randint(0, max(self.n_filters - width, 0) + 1, (1,)).item())
            filters = filters.clone()
            filters[start : start + width] = 0
        return F.conv1d(wave, filters.to(wave.dtype).unsqueeze(1))


class ResidualBlock(nn.Module):
    """Two (2, 3) convolutions with a (1, 3) max-pool over time (no pool in SSL-AASIST).

    As in the official implementation, ``bn1`` is kept (the checkpoint holds it) but
    the first convolution reads the block input directly, so ``bn1`` does not take
    part in the output.
    """

    def __init__(self, channels: tuple, *, first: bool = False, pool: bool = True):
        super().__init__()
        c_in, c_out = channels
        self.first = first
        if not first:
            self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=(2, 3), padding=(0, 1))
        self.conv_downsample = nn.Conv2d(c_in, c_out, kernel_size=(1, 3), padding=(0, 1)) if c_in != c_out else None
        self.pool = nn.MaxPool2d((1, 3)) if pool else nn.Identity()

    def forward(self, x):
        if not self.first and self.training:
            self.bn1(x)  # keeps running statistics updated like the reference model
        out = F.selu(self.bn2(self.conv1(x)))
        out = self.conv2(out)
        skip = self.conv_downsample(x) if self.conv_downsample is not None else x
        return self.pool(out + skip)


def _batch_norm_nodes(bn, x):
    shape = x.shape
    return bn(x.reshape(-1, shape[-1])).reshape(shape)


class GraphAttention(nn.Module):
    """Graph attention over a fully connected graph of nodes ``[B, N, D_in] -> [B, N, D_out]``."""

    def __init__(self, in_dim: int, out_dim: int, *, temperature: float = 1.0):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(torch.empty(out_dim, 1))
        nn.init.xavier_normal_(self.att_weight)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temperature = float(temperature)

    def forward(self, x):
        x = self.input_drop(x)
        pair = x.unsqueeze(2) * x.unsqueeze(1)  # [B, N, N, D]
        scores = torch.tanh(self.att_proj(pair)) @ self.att_weight  # [B, N, N, 1]
        attention = torch.softmax(scores / self.temperature, dim=-2).squeeze(-1)
        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        return F.selu(_batch_norm_nodes(self.bn, out))


class HeteroGraphAttention(nn.Module):
    """HS-GAL: attention over the union of temporal and spectral nodes plus a stack (master) node."""

    def __init__(self, in_dim: int, out_dim: int, *, temperature: float = 1.0):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        for name in ("att_weight11", "att_weight22", "att_weight12", "att_weightM"):
            weight = nn.Parameter(torch.empty(out_dim, 1))
            nn.init.xavier_normal_(weight)
            setattr(self, name, weight)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temperature = float(temperature)

    def forward(self, nodes1, nodes2, master=None):
        n1, n2 = nodes1.shape[1], nodes2.shape[1]
        x = torch.cat([self.proj_type1(nodes1), self.proj_type2(nodes2)], dim=1)
        if master is None:
            master = x.mean(dim=1, keepdim=True)
        x = self.input_drop(x)

        hidden = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # [B, N, N, D_out]
        s11 = hidden[:, :n1, :n1] @ self.att_weight11
        s22 = hidden[:, n1:, n1:] @ self.att_weight22
        s12 = hidden[:, :n1, n1:] @ self.att_weight12
        s21 = hidden[:, n1:, :n1] @ self.att_weight12
        scores = torch.cat([torch.cat([s11, s12], dim=2), torch.cat([s21, s22], dim=2)], dim=1)
        attention = torch.softmax(scores / self.temperature, dim=-2).squeeze(-1)

        m_scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # [B, N, 1]
        m_attention = torch.softmax(m_scores / self.temperature, dim=-2).squeeze(-1).unsqueeze(1)
        new_master = self.proj_with_attM(m_attention @ x) + self.proj_without_attM(master)

        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        out = F.selu(_batch_norm_nodes(self.bn, out))
        return out[:, :n1], out[:, n1 : n1 + n2], new_master


class GraphPool(nn.Module):
    """Keep the top ``ratio`` share of nodes by a learned sigmoid score (node order: best first)."""

    def __init__(self, ratio: float, in_dim: int, dropout: float = 0.3):
        super().__init__()
        self.ratio = float(ratio)
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, h):
        scores = torch.sigmoid(self.proj(self.drop(h)))  # [B, N, 1]
        keep = max(int(h.shape[1] * self.ratio), 1)
        _, index = torch.topk(scores, keep, dim=1)
        return torch.gather(h * scores, 1, index.expand(-1, -1, h.shape[2]))


class GraphBackEnd(nn.Module):
    """Encoder + spectral/temporal GAT + two HS-GAL stacks + readout, on a ``[B, 1, F, T]`` map."""

    def __init__(self, config: AASISTConfig, n_spectral_nodes: int, *, block_pool: bool = True):
        super().__init__()
        filts, gat_dims = config.filts, config.gat_dims
        pool_ratios, temperatures = config.pool_ratios, config.temperatures
        self.first_bn = nn.BatchNorm2d(1)
        block_channels = [filts[1], filts[2], filts[3], filts[4], filts[4], filts[4]]
        self.encoder = nn.Sequential(
            *[
                nn.Sequential(ResidualBlock(tuple(c), first=(i == 0), pool=block_pool))
                for i, c in enumerate(block_channels)
            ]
        )
        channels = filts[-1][-1]
        self.pos_S = nn.Parameter(torch.randn(1, n_spectral_nodes, channels))
        self.master1 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.GAT_layer_S = GraphAttention(channels, gat_dims[0], temperature=temperatures[0])
        self.GAT_layer_T = GraphAttention(channels, gat_dims[0], temperature=temperatures[1])
        self.HtrgGAT_layer_ST11 = HeteroGraphAttention(gat_dims[0], gat_dims[1], temperature=temperatures[2])
        self.HtrgGAT_layer_ST12 = HeteroGraphAttention(gat_dims[1], gat_dims[1], temperature=temperatures[2])
        self.HtrgGAT_layer_ST21 = HeteroGraphAttention(gat_dims[0], gat_dims[1], temperature=temperatures[2])
        self.HtrgGAT_layer_ST22 = HeteroGraphAttention(gat_dims[1], gat_dims[1], temperature=temperatures[2])
        self.pool_S = GraphPool(pool_ratios[0], gat_dims[0])
        self.pool_T = GraphPool(pool_ratios[1], gat_dims[0])
        self.pool_hS1 = GraphPool(pool_ratios[2], gat_dims[1])
        self.pool_hT1 = GraphPool(pool_ratios[2], gat_dims[1])
        self.pool_hS2 = GraphPool(pool_ratios[2], gat_dims[1])
        self.pool_hT2 = GraphPool(pool_ratios[2], gat_dims[1])
        self.drop_way = nn.Dropout(0.2)
        self.drop = nn.Dropout(0.5)
        self.readout = nn.Identity()  # no parameters: the readout's patch site
        self.out_layer = nn.Linear(5 * gat_dims[1], 2)
        self.embedding_dim = 5 * gat_dims[1]

    def _branch(self, out_t, out_s, master, first, second, pool_s, pool_t):
        t1, s1, m1 = first(out_t, out_s, master=master)
        s1, t1 = pool_s(s1), pool_t(t1)
        t_aug, s_aug, m_aug = second(t1, s1, master=m1)
        return t1 + t_aug, s1 + s_aug, m1 + m_aug

    def node_inputs(self, x):
        """Encoder output ``[B, C, F, T]`` -> spectral ``[B, F, C]`` and temporal ``[B, T, C]`` nodes (max of |x|)."""
        magnitude = x.abs()
        return magnitude.max(dim=3).values.transpose(1, 2), magnitude.max(dim=2).values.transpose(1, 2)

    def graph_forward(self, feature_map, layers: dict | None = None):
        """``[B, 1, F, T]`` map -> (readout ``[B, 160]``, logits ``[B, 2]``); fills ``layers`` if given."""
        x = F.selu(self.first_bn(feature_map))
        for i, block in enumerate(self.encoder):
            x = block(x)
            if layers is not None:
                layers[f"encoder_{i}"] = x.mean(dim=(2, 3))
        e_s, e_t = self.node_inputs(x)
        gat_s = self.GAT_layer_S(e_s + self.pos_S)
        gat_t = self.GAT_layer_T(e_t)
        if layers is not None:
            layers["gat_spectral"] = gat_s.mean(dim=1)
            layers["gat_temporal"] = gat_t.mean(dim=1)
        out_s, out_t = self.pool_S(gat_s), self.pool_T(gat_t)

        t1, s1, m1 = self._branch(
            out_t, out_s, self.master1, self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12, self.pool_hS1, self.pool_hT1
        )
        t2, s2, m2 = self._branch(
            out_t, out_s, self.master2, self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22, self.pool_hS2, self.pool_hT2
        )
        t1, s1, m1, t2, s2, m2 = (self.drop_way(v) for v in (t1, s1, m1, t2, s2, m2))
        nodes_t, nodes_s, master = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        readout = self.readout(
            torch.cat(
                [
                    nodes_t.abs().max(dim=1).values,
                    nodes_t.mean(dim=1),
                    nodes_s.abs().max(dim=1).values,
                    nodes_s.mean(dim=1),
                    master.squeeze(1),
                ],
                dim=1,
            )
        )
        if layers is not None:
            layers["readout"] = readout
        return readout, self.out_layer(self.drop(readout))


class AASIST(GraphBackEnd):
    """Raw-waveform AASIST; ``forward(wave [B, T]) -> logits [B, 2]`` (index 1 = bona fide)."""

    kind = "aasist"

    def __init__(self, config: AASISTConfig = AASISTConfig()):
        n_bands = config.filts[0]
        super().__init__(config, n_spectral_nodes=n_bands // 3)
        self.config = config
        self.conv_time = SincFilterbank(n_bands, config.first_conv, config.sample_rate)
        self.freq_aug = False
        self.layer_names = aasist_layer_names(len(self.encoder))

    @property
    def receptive_field(self) -> int:
        """Shortest input (samples) that leaves at least one frame after the encoder."""
        return self.conv_time.kernel_size - 1 + 3 * 3 ** len(self.encoder)

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    def layer_modules(self) -> list:
        """The module whose output carries each layer: sinc filterbank, encoder blocks, the two GATs, the readout."""
        return [self.conv_time, *self.encoder, self.GAT_layer_S, self.GAT_layer_T, self.readout]

    def set_trainable(self, spec: str) -> None:
        """``all``, or ``frozen``: only the output layer trains."""
        freeze_but_output_layer(self, spec, ("out_layer",))

    def _feature_map(self, wave):
        x = self.conv_time(wave.unsqueeze(1), mask_bands=self.freq_aug and self.training)
        return F.max_pool2d(x.abs().unsqueeze(1), (3, 3))

    def forward_all(self, wave, lengths=None):
        """(readout, logits, layers) where layers maps each of ``layer_names`` to ``[B, D]``.

        ``lengths`` is ignored: AASIST sees every sample of its fixed-length input.
        """
        layers: dict = {}
        feature_map = self._feature_map(wave)
        layers["front_end"] = feature_map.squeeze(1).mean(dim=2)
        readout, logits = self.graph_forward(feature_map, layers)
        return readout, logits, {name: layers[name] for name in self.layer_names}

    def forward_layers(self, wave, lengths=None) -> LayerStates:
        readout, logits, layers = self.forward_all(wave, lengths)
        return LayerStates(tuple(layers[name] for name in self.layer_names), None, readout, logits)

    def forward(self, wave):
        _, logits = self.graph_forward(self._feature_map(wave))
        return logits

    def extract(self, wave) -> dict:
        """Pooled block outputs ``{layer_00: [B, D0], ...}`` in block order."""
        _, _, layers = self.forward_all(wave)
        return {f"layer_{i:02d}": layers[name] for i, name in enumerate(self.layer_names)}


def freeze_but_output_layer(net, spec: str, output_layers: tuple) -> None:
    """``all``: every parameter trains; ``frozen``: only parameters under ``output_layers`` do."""
    if spec not in ("all", "frozen"):
        raise CmError(f"trainable {spec!r} is not supported for {net.kind}", hint="use all or frozen")
    for name, p in net.named_parameters():
        p.requires_grad = spec == "all" or name.startswith(output_layers)


def build_aasist(config: AASISTConfig | None = None) -> AASIST:
    """A fresh AASIST with random weights (``config`` defaults to the ASVspoof 5 baseline)."""
    return AASIST(config or AASISTConfig())


def load_aasist_weights(model, path: str | os.PathLike) -> None:
    """Load an official-format AASIST state dict (e.g. the ASVspoof 5 baseline) strictly."""
    path = Path(path)
    if not path.is_file():
        raise CmError(f"AASIST weights {path} not found", hint="give the path of the .pth state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CmError(
            f"cannot read AASIST weights {path}: {str(exc).splitlines()[0]}",
            hint="the file is corrupt or not a torch state dict",
        ) from exc
    if isinstance(state, dict) and "format" in state and "state_dict" in state:
        raise CmError(
            f"{path} is a cm checkpoint, not an AASIST state dict",
            hint="load it as a cm checkpoint (cm_cli.models.loading.load_model) instead",
            option="checkpoint",
        )
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CmError(
            f"{path} is not an AASIST checkpoint of this configuration: {str(exc).splitlines()[0]}",
            hint="check the backbone and its AASIST configuration",
            option="backbone",
        ) from exc


def build_backbone(config) -> AASIST:
    """AASIST for a ``ModelConfig``: ``backbone_options`` are ``AASISTConfig`` fields.

    ``backbone_id`` is a state dict to start from."""
    net = build_aasist(AASISTConfig.from_dict(dict(config.backbone_options or {})))
    if config.backbone_id:
        load_aasist_weights(net, config.backbone_id)
    return net
