"""The recording channel every toy utterance goes through, bona fide and spoofed alike.

A level change, a faint coloured noise floor and a gentle random tilt give every
file a slightly different "room and microphone", so that a detector has to find
the generator's traces rather than a trivial level or silence difference.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_channel", "to_pcm16"]


def apply_channel(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import lfilter

    x = x / (np.max(np.abs(x)) + 1e-12)
    tilt = rng.uniform(-0.25, 0.25)
    x = lfilter([1.0, -tilt], [1.0], x)
    x = x / (np.max(np.abs(x)) + 1e-12)
    active = np.abs(x) > 0.05
    speech_rms = np.sqrt(np.mean(x[active] ** 2)) if np.any(active) else np.std(x)
    noise = lfilter([1.0], [1.0, -rng.uniform(0.5, 0.95)], rng.standard_normal(len(x)))
    snr_db = rng.uniform(30.0, 50.0)
    noise *= speech_rms / (np.std(noise) + 1e-12) * 10 ** (-snr_db / 20)
    y = x + noise
    return y / (np.max(np.abs(y)) + 1e-12) * 10 ** (rng.uniform(-12.0, -2.0) / 20)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32767.0), -32768, 32767).astype(np.int16)
