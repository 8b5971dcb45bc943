"""Neural codec: EnCodec (24 kHz) through transformers, from locally available weights only.

Degrading a corpus must not start a download in the middle of a cluster job, so
the model loads with ``local_files_only``; when its weights are not in the
Hugging Face cache (or at ``model=PATH``), a clear error says how to fetch them.
"""

from __future__ import annotations

import functools

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.data.audio import resample

__all__ = ["ENCODEC_MODEL", "ENCODEC_KBPS", "encodec_roundtrip", "encodec_available", "check_encodec_local"]

ENCODEC_MODEL = "facebook/encodec_24khz"
ENCODEC_KBPS = (1.5, 3.0, 6.0, 12.0, 24.0)


@functools.lru_cache(maxsize=2)
def _load(model: str):
    from cm_cli.core.heavy import import_transformers

    transformers = import_transformers()
    try:
        net = transformers.EncodecModel.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CmError(
            f"encodec: weights of {model!r} are not available locally ({str(exc).splitlines()[0][:160]})",
            f"download them once with `huggingface-cli download {model}` (or set HF_HOME), or pass encodec:model=PATH",
        ) from None
    net.eval()
    return net


def check_encodec_local(model: str = ENCODEC_MODEL) -> None:
    """Cheap check (no transformers import) that the weights exist locally; CmError if not."""
    from pathlib import Path

    if Path(model).is_dir():
        return
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:
        cached = None
    if not isinstance(cached, str):
        raise CmError(
            f"encodec: weights of {model!r} are not available locally (the Hugging Face cache has no copy)",
            f"download them once with `huggingface-cli download {model}` (or set HF_HOME), or pass encodec:model=PATH",
        )


def encodec_available(model: str = ENCODEC_MODEL) -> bool:
    try:
        _load(model)
    except CmError:
        return False
    return True


def encodec_roundtrip(samples: np.ndarray, sr: int, *, kbps: float = 6.0, model: str = ENCODEC_MODEL) -> np.ndarray:
    """Encode and decode at ``kbps`` (one of 1.5, 3, 6, 12, 24); same length and rate out."""
    if float(kbps) not in ENCODEC_KBPS:
        raise CmError(f"encodec: kbps={kbps} is not one of {', '.join(f'{k:g}' for k in ENCODEC_KBPS)}")
    import torch

    net = _load(str(model))
    rate = int(net.config.sampling_rate)
    x = resample(np.asarray(samples, dtype=np.float32), sr, rate)
    with torch.inference_mode():
        wav = torch.from_numpy(np.ascontiguousarray(x))[None, None, :]
        encoded = net.encode(wav, bandwidth=float(kbps))
        decoded = net.decode(encoded.audio_codes, encoded.audio_scales)[0]
    y = decoded[0, 0, : len(x)].float().numpy()
    y = resample(y, rate, sr)
    n = len(samples)
    return (y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), np.float32)])).astype(np.float32)
