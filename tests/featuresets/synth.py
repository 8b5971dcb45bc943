"""Signals with known prosody (F0, jitter, shimmer, pauses, syllable rate) for the feature-set tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 16000


def harmonic_tone(f0: float, seconds: float = 1.0, *, harmonics: int = 5, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(level / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, harmonics + 1)).astype(np.float32)


def pulse_train(
    period: float, seconds: float = 2.0, *, jitter: float = 0.0, shimmer: float = 0.0, seed: int = 0, width: float = 4.0
) -> tuple[np.ndarray, float, float]:
    """Gaussian pulses with periods ``period (1 + U(-jitter, jitter))`` and amplitudes ``1 + U(-shimmer, shimmer)``.

    Returns the signal and the planted local jitter and shimmer (Praat's definitions, computed
    from the drawn periods and amplitudes).
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    positions, amplitudes, p = [], [], 50.0
    while p < n - 50:
        positions.append(p)
        amplitudes.append(1.0 + rng.uniform(-shimmer, shimmer))
        p += period * (1.0 + rng.uniform(-jitter, jitter))
    x = np.zeros(n)
    index = np.arange(n)
    for q, a in zip(positions, amplitudes):
        lo, hi = int(q - 5 * width), int(q + 5 * width) + 1
        x[lo:hi] += a * np.exp(-0.5 * ((index[lo:hi] - q) / width) ** 2)
    periods, amps = np.diff(positions), np.asarray(amplitudes)
    planted_jitter = float(np.abs(np.diff(periods)).mean() / periods.mean())
    planted_shimmer = float(np.abs(np.diff(amps)).mean() / amps.mean())
    return (0.5 * x).astype(np.float32), planted_jitter, planted_shimmer


def write_manifest(root: Path, rows: list[dict]) -> Path:
    """FLAC files for ``rows`` (each with ``wave``) and a normalised manifest pointing at them."""
    import pandas as pd
    import soundfile as sf

    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    root.mkdir(parents=True, exist_ok=True)
    out = []
    for row in rows:
        row = dict(row)
        wave = row.pop("wave")
        path = root / f"{row['utt_id']}.wav"
        sf.write(path, np.asarray(wave, dtype=np.float32), SR)
        out.append({"path": str(path), "split": "eval", "corpus": "toy", "domain": "clean", **row})
    manifest = root / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(out)), manifest)
    return manifest
