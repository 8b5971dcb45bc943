"""Neural codecs (EnCodec, DAC, Mimi) through transformers, batched, from local weights only.

Why local only: degrading a corpus must not start a download in the middle of a cluster job,
so the weights are looked up without network access: ``model=PATH`` or the codec's environment
variable (``CM_ENCODEC_MODEL``, ``CM_DAC_MODEL``, ``CM_MIMI_MODEL``: a folder or hub id), else
the default hub id in the Hugging Face cache or in cm's cache (where ``cm download --model NAME``
puts it). Without them a CmError names that command and the variable.

One loader for every user: ``load_codec(name, model=None, device="cpu")`` returns a
``LoadedCodec`` with ``.sample_rate`` and ``.reconstruct(wave, sr, level)`` (a 1-D array, a
2-D (batch, time) array or a list of 1-D arrays; the same shape, length and rate back). The
audio is resampled to the codec's rate and back. ``level`` is the bandwidth in kbit/s for
EnCodec (1.5 … 24) and the number of codebooks for DAC and Mimi. ``cm degrade`` runs the model
on its ``--device`` (``set_encodec_device``), several utterances per call in corpus mode
(``prefetch``: the chunk's neural steps are coded in one batch before the per-file jobs run).
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.data.audio import resample
from cm_cli.degrade.registry import Degradation, Param, StepContext, register_degradation

__all__ = [
    "ENCODEC_MODEL",
    "ENCODEC_KBPS",
    "ENCODEC_ENV",
    "CODECS",
    "NeuralCodec",
    "LoadedCodec",
    "load_codec",
    "find_weights",
    "check_local",
    "encodec_batch",
    "encodec_roundtrip",
    "encodec_available",
    "check_encodec_local",
    "find_encodec_weights",
    "set_encodec_device",
    "batching_pays",
    "default_device",
    "codec_device",
    "prefetch",
    "cached_output",
]

ENCODEC_MODEL = "facebook/encodec_24khz"
ENCODEC_KBPS = (1.5, 3.0, 6.0, 12.0, 24.0)
ENCODEC_ENV = "CM_ENCODEC_MODEL"
_DEVICE: list[str] = []


@dataclass(frozen=True)
class NeuralCodec:
    """One family of neural codecs: its transformers class, default weights, environment variable, level."""

    name: str
    model_class: str
    default_model: str
    env: str
    level: str  # what ``level`` means: "kbps" (EnCodec bandwidth) or "codebooks"
    models: tuple[tuple[str, str], ...] = ()  # (variant, hub id), e.g. DAC's 16/24/44 kHz models

    def hub_id(self, variant: str | None = None) -> str:
        return dict(self.models).get(str(variant), self.default_model) if variant else self.default_model


# hub ids: the authors' own releases as transformers hosts them (model cards of facebook/encodec_24khz,
# descript/dac_{16,24,44}khz and kyutai/mimi)
CODECS: dict[str, NeuralCodec] = {
    "encodec": NeuralCodec("encodec", "EncodecModel", ENCODEC_MODEL, ENCODEC_ENV, "kbps"),
    "dac": NeuralCodec(
        "dac",
        "DacModel",
        "descript/dac_16khz",
        "CM_DAC_MODEL",
        "codebooks",
        (("16", "descript/dac_16khz"), ("24", "descript/dac_24khz"), ("44", "descript/dac_44khz")),
    ),
    "mimi": NeuralCodec("mimi", "MimiModel", "kyutai/mimi", "CM_MIMI_MODEL", "codebooks"),
}


# `cm download --model NAME` short names (cm_cli/models/hub.py EXTRA_MODELS holds the same pairs)
DOWNLOAD_NAMES = {
    ENCODEC_MODEL: "encodec",
    "descript/dac_16khz": "dac",
    "descript/dac_24khz": "dac_24khz",
    "descript/dac_44khz": "dac_44khz",
    "kyutai/mimi": "mimi",
}


def set_encodec_device(device: str | None) -> None:
    """Run the neural codecs on this torch device ("cpu", "cuda", "cuda:1", "auto" = CUDA if present); None = CPU."""
    _DEVICE.clear()
    if device:
        _DEVICE.append(str(device))


def default_device() -> str:
    return _DEVICE[0] if _DEVICE else "cpu"


def codec_device(device: str | None = None) -> str:
    """The torch device a codec runs on: ``device`` (default: ``default_device()``), "auto" = CUDA if present."""
    device = str(device or default_device())
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _cm_cache_dir() -> Path:
    return Path(os.environ.get("CM_CACHE_DIR") or Path.home() / ".cache" / "cm")


def _codec(name: str) -> NeuralCodec:
    if name not in CODECS:
        raise CmError(f"unknown neural codec {name!r}", f"known: {', '.join(CODECS)}")
    return CODECS[name]


def _wanted(name: str, model: str | None, variant: str | None = None) -> str:
    codec = _codec(name)
    return model or os.environ.get(codec.env) or codec.hub_id(variant)


def find_weights(name: str, model: str | None = None, *, variant: str | None = None) -> Path | None:
    """The local folder holding a codec's weights, or None; never touches the network."""
    wanted = _wanted(name, model, variant)
    path = Path(wanted).expanduser()
    if path.is_dir():
        return path if (path / "config.json").is_file() else None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    for cache_dir in (None, str(_cm_cache_dir())):
        try:
            found = Path(
                snapshot_download(
                    wanted,
                    cache_dir=cache_dir,
                    local_files_only=True,
                    allow_patterns=["*.json", "*.safetensors", "*.bin"],
                )
            )
        except Exception:  # not cached there (LocalEntryNotFoundError and kin), or not a valid id
            continue
        if (found / "config.json").is_file():
            return found
    return None


def check_local(name: str, model: str | None = None, *, variant: str | None = None) -> Path:
    """Cheap check (no transformers import) that the weights exist locally; one-line CmError naming the fix."""
    found = find_weights(name, model, variant=variant)
    if found is None:
        codec = _codec(name)
        wanted = _wanted(name, model, variant)
        fetch = DOWNLOAD_NAMES.get(wanted) or (name if os.sep in wanted or wanted.startswith(".") else wanted)
        raise CmError(
            f"{name}: weights of {wanted!r} are not available locally "
            "(no folder, Hugging Face cache or cm cache has them)",
            f"fetch them once with `cm download --model {fetch}` (or set {codec.env} / {name}:model= to a folder)",
        )
    return found


def find_encodec_weights(model: str | None = None) -> Path | None:
    return find_weights("encodec", model)


def check_encodec_local(model: str | None = None) -> Path:
    return check_local("encodec", model)


def encodec_available(model: str | None = None) -> bool:
    return find_encodec_weights(model) is not None


@functools.lru_cache(maxsize=6)
def _load(name: str, folder: str, device: str):
    from cm_cli.core.heavy import import_transformers

    transformers = import_transformers()
    try:
        transformers.utils.logging.disable_progress_bar()  # no weight-loading bar in the middle of cm's progress
    except AttributeError:
        pass
    try:
        net = getattr(transformers, CODECS[name].model_class).from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CmError(
            f"{name}: cannot load the model in {folder} ({str(exc).splitlines()[0][:160]})",
            f"fetch it again with `cm download --model {name}`",
        ) from None
    return net.to(device).eval()


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), np.float32)])


def batching_pays(device: str) -> bool:
    """Whether a padded batch beats one utterance per call on ``device``: on a GPU; not on the CPU, where
    full-size EnCodec, DAC and Mimi coded a batch of 8 in 1.4-1.8x the time of its utterances one by one
    (2-core CPU, 2 s and 4 s utterances; benchmarks/bench_codecs.py --neural, docs/degrade.md), and where
    DAC, which has no padding mask, would let a longer batch-mate's zero tail reach the last frames of a
    shorter utterance."""
    return str(device).split(":")[0] != "cpu"


class LoadedCodec:
    """A neural codec model on a device: ``reconstruct`` codes audio at a level and decodes it back."""

    def __init__(self, name: str, folder: Path, device: str) -> None:
        device = codec_device(device)
        self.name, self.folder, self.device = name, Path(folder), device
        self.net = _load(name, str(folder), device)
        config = self.net.config
        self.sample_rate = int(config.sampling_rate)
        if name == "encodec":
            self.levels: tuple[float, ...] = tuple(float(b) for b in config.target_bandwidths)
        else:
            most = int(config.n_codebooks if name == "dac" else config.num_quantizers)
            self.levels = tuple(float(k) for k in range(1, most + 1))
        # DAC's decoder returns whole frames only: its input is padded to a multiple of the hop, then cut back
        self.hop = int(np.prod(config.downsampling_ratios)) if name == "dac" else 1

    def default_level(self) -> float:
        """EnCodec 6 kbps (C04's middle level); DAC all codebooks; Mimi 8 codebooks (Moshi's setting) if it has 8."""
        if self.name == "encodec":
            return 6.0
        if self.name == "mimi":
            return min(8.0, self.levels[-1])
        return self.levels[-1]

    def check_level(self, level: float | None) -> float:
        level = self.default_level() if level is None else float(level)
        if level not in self.levels:
            unit = "kbps" if self.name == "encodec" else "codebooks"
            shown = ", ".join(f"{v:g}" for v in self.levels) if self.name == "encodec" else f"1-{self.levels[-1]:g}"
            raise CmError(
                f"{self.name}: the model in {self.folder} has no level {level:g} ({unit})", f"its levels: {shown}"
            )
        return level

    def code_batch(
        self, signals: list[np.ndarray], sr: int, level: float | None = None, *, per_call: int | None = None
    ) -> tuple[list[np.ndarray], dict]:
        """Code several utterances, ``per_call`` to a padded model call; each comes back at its length and ``sr``.

        ``per_call`` None: all in one call on a GPU, one by one on the CPU (``batching_pays``).
        """
        level = self.check_level(level)
        signals = list(signals)
        if per_call is None:
            per_call = max(1, len(signals)) if batching_pays(self.device) else 1
        if per_call < 1:
            raise CmError(f"{self.name}: utterances per call must be at least 1, got {per_call}")
        if len(signals) <= per_call:
            return self._code_padded(signals, sr, level)
        outputs: list[np.ndarray] = []
        for start in range(0, len(signals), per_call):
            coded, info = self._code_padded(signals[start : start + per_call], sr, level)
            outputs.extend(coded)
        return outputs, info

    def _code_padded(self, signals: list[np.ndarray], sr: int, level: float) -> tuple[list[np.ndarray], dict]:
        import torch

        rate = self.sample_rate
        xs = [resample(np.asarray(x, dtype=np.float32), sr, rate) for x in signals]
        longest = max((len(x) for x in xs), default=0)
        info = {
            "model": str(self.folder),
            "device": self.device,
            "model_rate": rate,
            ("kbps" if self.name == "encodec" else "codebooks"): level,
        }
        if longest == 0:
            return [np.zeros(len(x), np.float32) for x in signals], info
        padded = int(np.ceil(longest / self.hop) * self.hop)
        wav = np.zeros((len(xs), 1, padded), np.float32)
        mask = np.zeros((len(xs), padded), np.int64)
        for i, x in enumerate(xs):
            wav[i, 0, : len(x)] = x
            mask[i, : len(x)] = 1
        with torch.inference_mode():
            batch = torch.from_numpy(wav).to(self.device)
            padding = torch.from_numpy(mask).to(self.device)
            if self.name == "encodec":
                encoded = self.net.encode(batch, padding_mask=padding, bandwidth=level)
                decoded = self.net.decode(encoded.audio_codes, encoded.audio_scales, padding_mask=padding)[0]
                info["codebooks"] = int(encoded.audio_codes.shape[-2])
            elif self.name == "dac":  # convolutional: no padding mask; the zero tail is cut off again
                encoded = self.net.encode(batch, n_quantizers=int(level))
                decoded = self.net.decode(audio_codes=encoded.audio_codes).audio_values
            else:
                encoded = self.net.encode(batch, padding_mask=padding, num_quantizers=int(level))
                decoded = self.net.decode(encoded.audio_codes, padding_mask=padding).audio_values
        decoded = decoded.float().cpu().numpy().reshape(len(xs), -1)
        outputs = [
            _fit(resample(_fit(decoded[i], len(x)), rate, sr), len(original)).astype(np.float32)
            for i, (x, original) in enumerate(zip(xs, signals))
        ]
        return outputs, info

    def reconstruct(self, wave, sr: int, level: float | None = None):
        """``wave`` (1-D, 2-D (batch, time) or a list of 1-D arrays) coded at ``level`` and decoded, same shape back."""
        if isinstance(wave, (list, tuple)):
            return self.code_batch(list(wave), sr, level)[0]
        array = np.asarray(wave, dtype=np.float32)
        if array.ndim == 1:
            return self.code_batch([array], sr, level)[0][0]
        if array.ndim == 2:
            return np.stack(self.code_batch(list(array), sr, level)[0]) if len(array) else array.copy()
        raise CmError(f"{self.name}: reconstruct needs 1-D or (batch, time) audio, got shape {array.shape}")


def load_codec(name: str, model: str | None = None, device: str = "cpu", *, variant: str | None = None) -> LoadedCodec:
    """The one loader of neural codecs (degradations, features): local weights only, cached per device."""
    return LoadedCodec(name, check_local(name, model, variant=variant), device)


# --------------------------------------------------------------------------- corpus mode: one batch per chunk
_MEMO: dict[tuple, np.ndarray] = {}


def _memo_key(name: str, model: str | None, variant: str | None, level, sr: int, x: np.ndarray) -> tuple:
    digest = hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()
    return name, model, variant, None if level is None else float(level), int(sr), len(x), digest


def cached_output(name: str, x: np.ndarray, sr: int, *, level=None, model=None, variant=None) -> np.ndarray | None:
    """The output ``prefetch`` already computed for exactly this input, if any (popped: used once)."""
    return _MEMO.pop(_memo_key(name, model, variant, level, sr, x), None)


def prefetch(items: list[tuple[str, np.ndarray, int, dict]], *, device: str | None = None) -> int:
    """Code ``(name, audio, sr, params)`` items in one batch per (codec, model, level, rate) for ``cached_output``.

    Why: a neural codec on a GPU (or many CPU threads) costs about the same for a batch as for one
    utterance, so corpus mode codes a chunk at once and the per-file jobs then find their result.
    """
    _MEMO.clear()
    groups: dict[tuple, list[np.ndarray]] = {}
    for name, x, sr, params in items:
        key = (name, params.get("model"), params.get("rate"), params.get("kbps", params.get("codebooks")), int(sr))
        groups.setdefault(key, []).append(np.asarray(x, dtype=np.float32))
    for (name, model, variant, level, sr), signals in groups.items():
        codec = load_codec(name, model, device or default_device(), variant=None if variant is None else str(variant))
        outputs, _ = codec.code_batch(signals, sr, level, per_call=len(signals))  # the chunk is the batch
        for x, y in zip(signals, outputs):
            _MEMO[_memo_key(name, model, None if variant is None else str(variant), level, sr, x)] = y
    return sum(len(s) for s in groups.values())


# --------------------------------------------------------------------------- EnCodec (kept names)
def encodec_batch(
    signals: list[np.ndarray],
    sr: int,
    *,
    kbps: float = 6.0,
    model: str | None = None,
    device: str | None = None,
    per_call: int | None = None,
) -> tuple[list[np.ndarray], dict]:
    """Encode and decode several utterances at ``kbps`` (``per_call`` as ``LoadedCodec.code_batch`` takes it);
    each comes back at its length and rate."""
    if float(kbps) not in ENCODEC_KBPS:
        raise CmError(f"encodec: kbps={kbps:g} is not one of {', '.join(f'{k:g}' for k in ENCODEC_KBPS)}")
    codec = load_codec("encodec", model, device or default_device())
    if float(kbps) not in codec.levels:
        raise CmError(
            f"encodec: the model in {codec.folder} has no bandwidth {kbps:g} kbps",
            f"its bandwidths: {', '.join(f'{b:g}' for b in codec.levels)}",
        )
    return codec.code_batch(signals, sr, float(kbps), per_call=per_call)


def encodec_roundtrip(samples: np.ndarray, sr: int, *, kbps: float = 6.0, model: str | None = None) -> np.ndarray:
    """One utterance through ``encodec_batch``; same length and rate out."""
    (y,), _ = encodec_batch([samples], sr, kbps=kbps, model=model)
    return y


# --------------------------------------------------------------------------- registry entries (neural codecs)


def _encodec(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
    y = cached_output("encodec", x, ctx.sr, level=params["kbps"], model=params.get("model"))
    if y is not None:  # coded in corpus mode's batch (neural.prefetch)
        return y, {"kbps": params["kbps"], "batched": True}
    (y,), info = encodec_batch([x], ctx.sr, kbps=params["kbps"], model=params.get("model"))
    return y, info


def _neural_runner(name: str):
    """DAC / Mimi: the number of codebooks as the level, resampled to the model's rate and back."""

    def run(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
        variant = None if "rate" not in params else str(params["rate"])
        level = params.get("codebooks")
        y = cached_output(name, x, ctx.sr, level=level, model=params.get("model"), variant=variant)
        if y is not None:
            return y, {"codebooks": level, "batched": True}
        codec = load_codec(name, params.get("model"), default_device(), variant=variant)
        (y,), info = codec.code_batch([x], ctx.sr, level)
        return y, info

    return run


register_degradation(
    Degradation(
        "encodec",
        "neural",
        "EnCodec 24 kHz neural codec (transformers; local weights only)",
        _encodec,
        (
            Param("kbps", float, 6.0, "1.5, 3, 6, 12 or 24", (1.5, 3.0, 6.0, 12.0, 24.0)),
            Param(
                "model",
                str,
                None,
                "model id or local path (default: $CM_ENCODEC_MODEL, else facebook/encodec_24khz)",
            ),
        ),
        bitrate_param="kbps",
    ),
    order=30,
)
register_degradation(
    Degradation(
        "dac",
        "neural",
        "DAC neural codec, 16/24/44 kHz models (transformers DacModel; local weights only)",
        _neural_runner("dac"),
        (
            Param("codebooks", int, None, "codebooks used (default: all the model has)", minimum=1),
            Param("rate", int, 16, "model: 16, 24 or 44 kHz (descript/dac_<rate>khz)", (16, 24, 44)),
            Param("model", str, None, "model id or local path (default: $CM_DAC_MODEL, else by rate)"),
        ),
    ),
    order=30,
)
register_degradation(
    Degradation(
        "mimi",
        "neural",
        "Mimi neural codec, 24 kHz, 12.5 Hz frames (transformers MimiModel; local weights only)",
        _neural_runner("mimi"),
        (
            Param("codebooks", int, None, "codebooks used (default 8, as Moshi)", minimum=1),
            Param("model", str, None, "model id or local path (default: $CM_MIMI_MODEL, else kyutai/mimi)"),
        ),
    ),
    order=30,
)
