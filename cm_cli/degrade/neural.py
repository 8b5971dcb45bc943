"""Neural codec: EnCodec (24 kHz) through transformers' ``EncodecModel``, batched, from local weights only.

Degrading a corpus must not start a download in the middle of a cluster job, so the
weights are looked up without network access: ``model=PATH`` or ``$CM_ENCODEC_MODEL``
(a folder or hub id), else ``facebook/encodec_24khz`` in the default Hugging Face
cache or in cm's cache (where ``cm download --model encodec`` puts it). Without them
a CmError names that command. The model runs on the device set by
``set_encodec_device`` (the command's ``--device``), several utterances per call.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.data.audio import resample

__all__ = ["ENCODEC_MODEL", "ENCODEC_KBPS", "ENCODEC_ENV", "encodec_batch", "encodec_roundtrip", "encodec_available",
           "check_encodec_local", "find_encodec_weights", "set_encodec_device"]

ENCODEC_MODEL = "facebook/encodec_24khz"
ENCODEC_KBPS = (1.5, 3.0, 6.0, 12.0, 24.0)
ENCODEC_ENV = "CM_ENCODEC_MODEL"
_DEVICE: list[str] = []


def set_encodec_device(device: str | None) -> None:
    """Run EnCodec on this torch device ("cpu", "cuda", "cuda:1", "auto" = CUDA if present); None = CPU."""
    _DEVICE.clear()
    if device:
        _DEVICE.append(str(device))


def _cm_cache_dir() -> Path:
    return Path(os.environ.get("CM_CACHE_DIR") or Path.home() / ".cache" / "cm")


def find_encodec_weights(model: str | None = None) -> Path | None:
    """The local folder holding the EnCodec weights, or None; never touches the network."""
    name = model or os.environ.get(ENCODEC_ENV) or ENCODEC_MODEL
    path = Path(name).expanduser()
    if path.is_dir():
        return path if (path / "config.json").is_file() else None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    for cache_dir in (None, str(_cm_cache_dir())):
        try:
            found = Path(snapshot_download(name, cache_dir=cache_dir, local_files_only=True,
                                           allow_patterns=["*.json", "*.safetensors", "*.bin"]))
        except Exception:  # not cached there (LocalEntryNotFoundError and kin), or not a valid id
            continue
        if (found / "config.json").is_file():
            return found
    return None


def _missing(name: str) -> CmError:
    return CmError(
        f"encodec: weights of {name!r} are not available locally (no folder, Hugging Face cache or cm cache has them)",
        "fetch them once with `cm download --model encodec` (or set CM_ENCODEC_MODEL / encodec:model= to a folder)",
    )


def check_encodec_local(model: str | None = None) -> Path:
    """Cheap check (no transformers import) that the weights exist locally; CmError naming the fix if not."""
    found = find_encodec_weights(model)
    if found is None:
        raise _missing(model or os.environ.get(ENCODEC_ENV) or ENCODEC_MODEL)
    return found


def encodec_available(model: str | None = None) -> bool:
    return find_encodec_weights(model) is not None


@functools.lru_cache(maxsize=4)
def _load(folder: str, device: str):
    from cm_cli.core.heavy import import_transformers

    transformers = import_transformers()
    try:
        transformers.utils.logging.disable_progress_bar()  # no weight-loading bar in the middle of cm's progress
    except AttributeError:
        pass
    try:
        net = transformers.EncodecModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CmError(f"encodec: cannot load the model in {folder} ({str(exc).splitlines()[0][:160]})",
                      "fetch it again with `cm download --model encodec`") from None
    return net.to(device).eval()


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), np.float32)])


def encodec_batch(signals: list[np.ndarray], sr: int, *, kbps: float = 6.0, model: str | None = None,
                  device: str | None = None) -> tuple[list[np.ndarray], dict]:
    """Encode and decode several utterances at ``kbps`` in one padded batch; each comes back at its length and rate.

    The utterances are resampled to the model's rate, right-padded to the longest with a
    padding mask, coded with exactly the codebooks the bandwidth allows, decoded, cut back
    to their own lengths and resampled to ``sr``. Returns (outputs, info) where info holds
    the model folder, device and the number of codebooks used.
    """
    if float(kbps) not in ENCODEC_KBPS:
        raise CmError(f"encodec: kbps={kbps:g} is not one of {', '.join(f'{k:g}' for k in ENCODEC_KBPS)}")
    import torch

    folder = check_encodec_local(model)
    target = device or (_DEVICE[0] if _DEVICE else "cpu")
    if target == "auto":
        target = "cuda" if torch.cuda.is_available() else "cpu"
    net = _load(str(folder), target)
    rate = int(net.config.sampling_rate)
    if float(kbps) not in [float(b) for b in net.config.target_bandwidths]:
        raise CmError(f"encodec: the model in {folder} has no bandwidth {kbps:g} kbps",
                      f"its bandwidths: {', '.join(f'{b:g}' for b in net.config.target_bandwidths)}")
    xs = [resample(np.asarray(x, dtype=np.float32), sr, rate) for x in signals]
    longest = max((len(x) for x in xs), default=0)
    if longest == 0:
        return [np.zeros(len(x), np.float32) for x in signals], {"model": str(folder), "device": target}
    wav = np.zeros((len(xs), 1, longest), np.float32)
    mask = np.zeros((len(xs), longest), np.int64)
    for i, x in enumerate(xs):
        wav[i, 0, : len(x)] = x
        mask[i, : len(x)] = 1
    with torch.inference_mode():
        batch = torch.from_numpy(wav).to(target)
        padding = torch.from_numpy(mask).to(target)
        encoded = net.encode(batch, padding_mask=padding, bandwidth=float(kbps))
        decoded = net.decode(encoded.audio_codes, encoded.audio_scales, padding_mask=padding)[0]
    decoded = decoded.float().cpu().numpy()
    outputs = []
    for i, (x, original) in enumerate(zip(xs, signals)):
        y = _fit(decoded[i, 0, : len(x)], len(x))
        outputs.append(_fit(resample(y, rate, sr), len(original)).astype(np.float32))
    codebooks = int(encoded.audio_codes.shape[-2])
    return outputs, {"model": str(folder), "device": target, "kbps": float(kbps), "codebooks": codebooks,
                     "model_rate": rate}


def encodec_roundtrip(samples: np.ndarray, sr: int, *, kbps: float = 6.0, model: str | None = None) -> np.ndarray:
    """One utterance through ``encodec_batch``; same length and rate out."""
    (y,), _ = encodec_batch([samples], sr, kbps=kbps, model=model)
    return y
