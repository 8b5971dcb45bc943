"""Reverberation: convolution with a recorded room impulse response or a synthetic one at a given RT60.

The synthetic RIR is Gaussian noise under an exponential envelope that decays by
60 dB over RT60, after a unit direct-path impulse; convolution output is aligned to
the direct path and cut to the input length, and its level matched to the input.
"""

from __future__ import annotations

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.degrade.noise import _load_cached, list_audio_files
from cm_cli.degrade.registry import Degradation, Param, StepContext, register_degradation

__all__ = ["synthetic_rir", "rir_from_dir", "convolve_rir"]


def synthetic_rir(sr: int, rt60: float, rng: np.random.Generator, *, direct_ratio_db: float = 0.0) -> np.ndarray:
    if not 0 < rt60 <= 5:
        raise CmError(f"reverb: rt60={rt60} s must be in (0, 5]")
    n = int(rt60 * sr * 1.2) + 1
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # ln(1000) = 6.908: -60 dB at rt60
    tail[0] = 0.0
    tail *= 10 ** (-direct_ratio_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    rir = tail
    rir[0] = 1.0
    return rir.astype(np.float32)


def rir_from_dir(folder: str, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    files = list_audio_files(str(folder))
    path = files[int(rng.integers(len(files)))]
    rir = _load_cached(path, int(sr))
    if not np.any(rir):
        raise CmError(f"{path}: impulse response is silent")
    return rir, {"rir_file": path}


def convolve_rir(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve, start at the RIR's direct path (its peak), keep the input length and RMS."""
    from scipy.signal import fftconvolve

    x = np.asarray(samples, dtype=np.float64)
    rir = np.asarray(rir, dtype=np.float64)
    peak = int(np.argmax(np.abs(rir)))
    y = fftconvolve(x, rir)[peak : peak + len(x)]
    if len(y) < len(x):
        y = np.concatenate([y, np.zeros(len(x) - len(y))])
    rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
    if rms_out > 1e-12:
        y *= rms_in / rms_out
    return y.astype(np.float32)


# --------------------------------------------------------------------------- registry entry: the declaration a new
# degradation copies (a runner ``(samples, ctx, params) -> (samples, info)`` and one register_degradation call)


def _reverb(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
    rng = ctx.rng()
    if "dir" in params:
        rir, extra = rir_from_dir(params["dir"], ctx.sr, rng)
    else:
        rir, extra = synthetic_rir(ctx.sr, params["rt60"], rng), {"rt60": params["rt60"]}
    return convolve_rir(x, rir), extra


def _check_reverb(params: dict) -> None:
    if "dir" in params:  # an empty or missing folder fails when the spec is checked, before any audio is touched
        list_audio_files(params["dir"])


register_degradation(
    Degradation(
        "reverb",
        "reverb",
        "room reverberation: RIR files from dir, else synthetic at rt60",
        _reverb,
        (
            Param("rt60", float, 0.5, "synthetic reverberation time, s", minimum=0, exclusive_minimum=True, maximum=5),
            Param("dir", str, None, "folder of room impulse responses"),
        ),
        check=_check_reverb,
    ),
    order=80,
)
