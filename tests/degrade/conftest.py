"""Synthetic speech-like audio for the degrade tests (made here, no corpus needed)."""

from __future__ import annotations

import numpy as np
import pytest


def speechlike(sr: int = 16000, seconds: float = 2.0, seed: int = 0, silence: float = 0.0) -> np.ndarray:
    """Voiced glide plus band-limited noise under a syllabic envelope, with optional leading/trailing silence."""
    from cm_cli.degrade.codecs import probe_signal

    x = probe_signal(sr, seconds=seconds, seed=seed)
    if silence:
        pad = np.zeros(int(silence * sr), np.float32)
        x = np.concatenate([pad, x, pad])
    return x


@pytest.fixture
def speech() -> np.ndarray:
    return speechlike(seed=11)
