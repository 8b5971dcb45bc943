"""Additive noise at a target SNR (measured on active speech), coloured or from a folder of recordings.

Every random choice is drawn from a generator seeded by a stable hash of the
global seed, the utterance id and the step, so one utterance always gets the same
noise segment across runs, processes and machines, and different utterances get
different ones.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.degrade.channel import active_mask
from cm_cli.degrade.registry import Degradation, Param, StepContext, register_degradation

__all__ = [
    "stable_rng",
    "stable_seed",
    "coloured_noise",
    "speech_power",
    "mix_at_snr",
    "list_audio_files",
    "noise_from_dir",
    "AUDIO_SUFFIXES",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".sph", ".aif", ".aiff")


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from its parts via SHA-256 (unlike ``hash()``, identical in every process)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def stable_rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_seed(*parts))


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white, pink (1/f power) or brown (1/f^2 power) noise."""
    white = rng.standard_normal(n)
    if colour == "white":
        noise = white
    elif colour in ("pink", "brown"):
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n)
        freqs[0] = freqs[1] if n > 1 else 1.0
        spectrum /= np.sqrt(freqs) if colour == "pink" else freqs
        noise = np.fft.irfft(spectrum, n)
    else:
        raise CmError(f"noise: type={colour!r} is not one of white, pink, brown, file")
    noise = noise - noise.mean()
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def speech_power(samples: np.ndarray, sr: int) -> tuple[float, bool]:
    """Mean power over active frames; (power, True) or whole-file power and False when nothing is active."""
    x = np.asarray(samples, dtype=np.float64)
    mask = active_mask(x, sr)
    if mask.any() and np.mean(x[mask] ** 2) > 1e-10:
        return float(np.mean(x[mask] ** 2)), True
    return float(np.mean(x**2)), False


def mix_at_snr(samples: np.ndarray, sr: int, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, dict]:
    """Add ``noise`` (same length) scaled so that speech power / noise power = ``snr_db``."""
    power, on_speech = speech_power(samples, sr)
    info: dict = {"snr_db": float(snr_db), "snr_reference": "active speech" if on_speech else "whole file"}
    if not on_speech:
        info["warning"] = "no active speech found: SNR computed on whole-file power"
    noise = np.asarray(noise, dtype=np.float64)
    noise_power = float(np.mean(noise**2))
    if power <= 1e-12 or noise_power <= 1e-12:
        if power <= 1e-12:
            info["warning"] = "input is silent: SNR undefined, noise added at -60 dBFS"
            scale = 10 ** (-60 / 20) / np.sqrt(max(noise_power, 1e-12))
        else:
            scale = 0.0
    else:
        scale = np.sqrt(power / (noise_power * 10 ** (snr_db / 10)))
    return (np.asarray(samples, dtype=np.float64) + scale * noise).astype(np.float32), info


@functools.lru_cache(maxsize=64)
def list_audio_files(folder: str) -> tuple[str, ...]:
    """Audio files under ``folder`` (recursive, MUSAN layout), sorted for reproducibility."""
    root = Path(folder)
    if not root.is_dir():
        raise CmError(
            f"{root}: no such folder", "point dir= at a folder of noise or RIR recordings (e.g. MUSAN's noise/)"
        )
    files = tuple(sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES))
    if not files:
        raise CmError(f"{root}: holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, sr: int) -> np.ndarray:
    from cm_cli.data.audio import load_audio

    samples, _ = load_audio(path, sample_rate=sr)
    return samples


def noise_from_dir(folder: str, n: int, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A random file and a random segment of ``n`` samples from it (looped when shorter)."""
    files = list_audio_files(str(folder))
    path = files[int(rng.integers(len(files)))]
    source = _load_cached(path, int(sr))
    if len(source) == 0 or not np.any(source):
        raise CmError(f"{path}: noise file is silent or empty")
    if len(source) < n:
        source = np.tile(source, int(np.ceil(n / len(source))) + 1)
    start = int(rng.integers(0, len(source) - n + 1))
    return source[start : start + n].astype(np.float32), {"noise_file": path, "noise_offset": start}


# --------------------------------------------------------------------------- registry entry (additive noise)


def _noise(x, ctx: StepContext, params: dict):
    rng = ctx.rng()
    colour = params.get("type") or ("file" if "dir" in params else "white")
    extra: dict = {}
    if colour == "file":
        if "dir" not in params:
            raise CmError("noise: type=file needs dir=FOLDER", "or give a noise directory", option="noise_dir")
        noise, extra = noise_from_dir(params["dir"], len(x), ctx.sr, rng)
    else:
        noise = coloured_noise(len(x), colour, rng)
    y, info = mix_at_snr(x, ctx.sr, noise, params["snr"])
    return y, {**info, **extra, "type": colour}


def _check_noise(params: dict) -> None:
    if params.get("type") == "file" and "dir" not in params:
        raise CmError("noise: type=file needs dir=FOLDER", "or give a noise directory", option="noise_dir")
    if "dir" in params:
        list_audio_files(params["dir"])


register_degradation(
    Degradation(
        "noise",
        "noise",
        "additive noise at an SNR on active speech (white, pink, brown, or files)",
        _noise,
        (
            Param("snr", float, 10.0, "signal-to-noise ratio, dB"),
            Param(
                "type",
                str,
                None,
                "white (default), pink, brown, or file (default when dir is given)",
                ("white", "pink", "brown", "file"),
            ),
            Param("dir", str, None, "folder of noise recordings (MUSAN layout, recursive)"),
        ),
        check=_check_noise,
    ),
    order=60,
)
