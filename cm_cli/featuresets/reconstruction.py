"""Codec reconstruction error (``cm embed --backbone reconstruction --backbone-id CODEC_DIR``).

Why: the audio analogue of AeroBlade (Ricker et al., CVPR 2024), which flags generated
images by how well an autoencoder reconstructs them. Speech made by a neural vocoder or
codec may sit closer to what a neural codec can represent than recorded speech does, so
how much a codec changes an utterance is a cue that owes nothing to a trained detector.

Each utterance goes through the codec (a transformers DacModel, EncodecModel or
MimiModel saved in a local directory, its family read from config.json's ``model_type`` and
loaded by the shared ``cm_cli.degrade.neural.load_codec``) at one or more bitrates; each bitrate is one layer
(``layer_00`` lowest first) of the same named measures, computed at 16 kHz between the
input and its reconstruction:

- ``logmel_band_NN``: mean absolute log-mel difference (dB) per band (``N_MELS`` HTK mel
  bands, 25 ms Hann windows every 10 ms, 0-8 kHz), the per-band error profile;
- ``logmel_mean/sd/p90``: frame statistics of the band-averaged log-mel distance (dB);
- ``mcd_mean/sd/p90``: mel-cepstral distortion per frame (Kubichek 1993: (10/ln 10)
  sqrt(2 sum_{d=1}^{12} (c_d - c'_d)^2) in dB), on cepstra of the natural-log mel power
  spectra (orthonormal DCT-II, c0 excluded);
- ``snr_db``: waveform SNR; ``segsnr_mean/sd``: segmental SNR over 25 ms frames, each frame
  clipped to [-10, 35] dB (Hansen & Pellom 1998) and silent input frames skipped.

Bitrates are codebook counts: kbps = codebooks x log2(codebook size) x frame rate / 1000
(EnCodec: its configured bandwidths). Silent or sub-frame clips get zeros and a flag.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.featuresets.registry import FeatureBatch, get_feature_set

__all__ = [
    "N_MELS",
    "MEASURES",
    "codec_family",
    "open_codec",
    "Codec",
    "reconstruction_measures",
    "ReconstructionExtractor",
    "build_extractor",
    "save_tiny_dac",
]

SAMPLE_RATE = 16000
N_MELS = 20
N_FFT, WIN, HOP = 512, 400, 160
N_CEPS = 12
SEG_SNR_RANGE = (-10.0, 35.0)
MEASURES = [f"logmel_band_{i:02d}" for i in range(N_MELS)] + [
    "logmel_mean",
    "logmel_sd",
    "logmel_p90",
    "mcd_mean",
    "mcd_sd",
    "mcd_p90",
    "snr_db",
    "segsnr_mean",
    "segsnr_sd",
]
FLAGS = ("flag_short", "flag_silent")
_FAMILIES = {"dac": "DacModel", "encodec": "EncodecModel", "mimi": "MimiModel"}  # model_type -> class


def _missing(directory: str, why: str) -> CmError:
    spec = get_feature_set("reconstruction")
    return CmError(
        f"codec directory {directory}: {why}", f"download a codec first, e.g. `{spec.download}`", option="backbone_id"
    )


def codec_family(directory: str) -> str:
    """The codec family (``dac``, ``encodec``, ``mimi``: ``degrade.neural.CODECS`` names) of a saved
    transformers codec directory, from its config.json ``model_type``; one-line errors otherwise."""
    path = Path(directory).expanduser()
    config_file = path / "config.json"
    if not config_file.is_file():
        raise _missing(directory, "no saved codec there (no config.json)")
    try:
        model_type = str(json.loads(config_file.read_text()).get("model_type", ""))
    except (OSError, ValueError) as exc:
        raise _missing(directory, f"unreadable config.json ({exc})") from None
    if model_type not in _FAMILIES:
        raise CmError(
            f"codec directory {directory}: a {model_type or 'unknown'!r} model, not a neural codec",
            f"give a saved transformers {', '.join(_FAMILIES.values())} directory",
            option="backbone_id",
        )
    return model_type


def open_codec(directory: str, device: str = "cpu") -> "Codec":
    """The codec saved in ``directory`` through the project's one codec loader (local weights, never a download)."""
    from cm_cli.degrade.neural import load_codec

    path = str(Path(directory).expanduser().resolve())
    return Codec(load_codec(codec_family(path), model=path, device=str(device)))


class Codec:
    """A ``LoadedCodec`` and its bitrate ladder: ``levels`` = [(kbps, codebooks)], ``roundtrip`` at one level."""

    def __init__(self, loaded):
        self.loaded, self.family, self.device = loaded, loaded.name, loaded.device
        config = loaded.net.config
        self.rate = int(loaded.sample_rate)
        if self.family == "encodec":
            frame_rate = self.rate / math.prod(config.upsampling_ratios)
            per_book = frame_rate * math.log2(config.codebook_size)  # as EncodecResidualVectorQuantizer counts
            self.levels = [(float(b), max(1, int(math.floor(b * 1000 / per_book)))) for b in config.target_bandwidths]
        else:
            if self.family == "dac":
                frame_rate, books = self.rate / math.prod(config.downsampling_ratios), int(config.n_codebooks)
            else:  # mimi
                frame_rate, books = float(config.frame_rate), int(config.num_quantizers)
            per_book = frame_rate * math.log2(config.codebook_size) / 1000
            self.levels = [(round(k * per_book, 3), k) for k in range(1, books + 1)]

    def choose(self, bitrates: list[float] | None) -> list[tuple[float, int]]:
        """The levels nearest the asked kbps (default: the lowest and the highest), lowest first."""
        if not bitrates:
            picked = [self.levels[0], self.levels[-1]]
        else:
            picked = [min(self.levels, key=lambda lv: abs(lv[0] - b)) for b in bitrates]
        return sorted(set(picked))

    def roundtrip(self, waves: list, codebooks: int, kbps: float) -> list:
        """16 kHz waves coded at one level and decoded, each back at 16 kHz and its own length (one padded batch
        on a GPU, one by one on the CPU, where that is faster and independent of the batch: ``code_batch``)."""
        level = kbps if self.family == "encodec" else codebooks  # the shared loader's level: kbps or codebooks
        return self.loaded.code_batch(waves, SAMPLE_RATE, level)[0]


@functools.lru_cache(maxsize=1)
def _analysis():
    from scipy.fft import dct

    from cm_cli.data.synth.dsp import mel_filterbank

    fb = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS).astype(np.float32)
    basis = dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)[1 : N_CEPS + 1]  # c1..c12 from N_MELS log energies
    return fb, basis.astype(np.float64)


def _log_mel(x: np.ndarray) -> np.ndarray:
    """Natural-log mel power (frames, N_MELS), 25 ms Hann windows every 10 ms, floored at 1e-10."""
    fb, _ = _analysis()
    if len(x) < WIN:
        x = np.pad(x, (0, WIN - len(x)))
    n = 1 + (len(x) - WIN) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN)[::HOP][:n] * np.hanning(WIN).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, N_FFT, axis=1)) ** 2
    return np.log(np.maximum(power @ fb.T, 1e-10))


def reconstruction_measures(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``MEASURES`` between an utterance ``x`` and its reconstruction ``y`` (same length, 16 kHz), finite."""
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)[: len(x)]
    _, basis = _analysis()
    lx, ly = _log_mel(x), _log_mel(y)
    db = 10.0 / math.log(10.0)  # natural log power -> dB
    band = np.abs(lx - ly) * db  # (frames, bands)
    per_frame = band.mean(axis=1)
    cx, cy = lx @ basis.T, ly @ basis.T
    mcd = db * np.sqrt(2.0 * ((cx - cy) ** 2).sum(axis=1))
    error = x.astype(np.float64) - y
    signal = float((x.astype(np.float64) ** 2).sum())
    snr = 10 * math.log10(max(signal, 1e-12) / max(float((error**2).sum()), 1e-12))
    n = 1 + max(0, len(x) - WIN) // HOP
    xs = np.lib.stride_tricks.sliding_window_view(np.pad(x, (0, max(0, WIN - len(x)))), WIN)[::HOP][:n]
    es = np.lib.stride_tricks.sliding_window_view(np.pad(error, (0, max(0, WIN - len(x)))), WIN)[::HOP][:n]
    frame_signal, frame_error = (xs.astype(np.float64) ** 2).sum(axis=1), (es**2).sum(axis=1)
    active = frame_signal > 1e-8 * WIN
    seg = np.clip(10 * np.log10(np.maximum(frame_signal, 1e-12) / np.maximum(frame_error, 1e-12)), *SEG_SNR_RANGE)
    seg = seg[active] if active.any() else np.zeros(1)
    values = np.concatenate(
        [
            band.mean(axis=0),
            [
                per_frame.mean(),
                per_frame.std(),
                np.percentile(per_frame, 90),
                mcd.mean(),
                mcd.std(),
                np.percentile(mcd, 90),
                snr,
                seg.mean(),
                seg.std(),
            ],
        ]
    )
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _layer_prefix(kbps: float) -> str:
    return f"at{kbps:g}kbps_"


class ReconstructionExtractor:
    """One layer per bitrate (lowest first) of ``MEASURES``, each named ``at<kbps>kbps_<measure>``."""

    name = "reconstruction"

    def __init__(self, codec: Codec, levels: list[tuple[float, int]], directory: str):
        self.codec, self.levels = codec, levels
        self.layers = {f"layer_{i:02d}": [_layer_prefix(k) + m for m in MEASURES] for i, (k, _) in enumerate(levels)}
        self.flags = list(FLAGS)
        self.info = {
            "codec": codec.family,
            "codec_dir": directory,
            "codec_rate": codec.rate,
            "bitrates_kbps": [k for k, _ in levels],
            "codebooks": [c for _, c in levels],
            "n_mels": N_MELS,
            "measures": list(MEASURES),
        }

    def extract(self, waves: list) -> FeatureBatch:
        waves = [np.nan_to_num(np.asarray(w, dtype=np.float32)) for w in waves]
        flags = {
            "flag_short": np.array([len(w) < WIN for w in waves]),
            "flag_silent": np.array([(np.abs(w).max() if len(w) else 0.0) < 1e-4 for w in waves]),
        }
        usable = [i for i, w in enumerate(waves) if not (flags["flag_short"][i] or flags["flag_silent"][i])]
        vectors = {c: np.zeros((len(waves), len(MEASURES)), dtype=np.float32) for c in self.layers}
        if usable:
            for column, (kbps, books) in zip(self.layers, self.levels):
                out = self.codec.roundtrip([waves[i] for i in usable], books, kbps)
                for i, y in zip(usable, out):
                    vectors[column][i] = reconstruction_measures(waves[i], y)
        return FeatureBatch(vectors=vectors, flags=flags)


def save_tiny_dac(path, *, dims: str = "test", seed: int = 0) -> Path:
    """A randomly initialised DacModel saved with ``save_pretrained`` (tests, benchmarks; never a download).

    ``dims``: ``test`` (a few thousand weights; 16 kHz, hops of 8 samples, 4 codebooks of 16) or
    ``16khz`` (descript/dac_16khz's architecture from its config.json: hops of 320, 12 codebooks of 1024).
    """
    import torch

    from cm_cli.core.heavy import import_transformers

    transformers = import_transformers()
    size = (
        dict(
            encoder_hidden_size=8,
            downsampling_ratios=[2, 4],
            decoder_hidden_size=32,
            n_codebooks=4,
            codebook_size=16,
            codebook_dim=4,
        )
        if dims == "test"
        else dict(
            encoder_hidden_size=64,
            downsampling_ratios=[2, 4, 5, 8],
            decoder_hidden_size=1536,
            n_codebooks=12,
            codebook_size=1024,
            codebook_dim=8,
        )
    )
    torch.manual_seed(seed)
    transformers.DacModel(transformers.DacConfig(**size, sampling_rate=16000)).save_pretrained(path)
    return Path(path)


def _bitrates(options: dict) -> list[float] | None:
    text = options.get("bitrates")
    if not text:
        return None
    try:
        values = [float(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise CmError(f"bitrates {text!r}: expected kbps numbers like 1.5,6", option="bitrates") from None
    if not values or any(v <= 0 for v in values):
        raise CmError(f"bitrates {text!r}: expected positive kbps numbers like 1.5,6", option="bitrates")
    return values


def build_extractor(backbone_id: str | None, *, device: Any = "cpu", options: dict | None = None):
    bitrates = _bitrates(options or {})
    codec = open_codec(str(backbone_id), str(device))
    return ReconstructionExtractor(codec, codec.choose(bitrates), str(backbone_id))
