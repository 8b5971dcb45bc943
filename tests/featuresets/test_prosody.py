"""Prosody features on signals with known answers: F0, jitter, shimmer, pauses, rate, and bad clips."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.featuresets.prosody import (
    FEATURES,
    FLAGS,
    ProsodyExtractor,
    prosody_features,
)
from tests.featuresets.synth import SR, harmonic_tone, pulse_train


def named(x):
    values, flags = prosody_features(x)
    return dict(zip(FEATURES, values.tolist())), flags


@pytest.mark.parametrize("f0", [90.0, 150.0, 233.0, 410.0])
def test_f0_of_a_harmonic_tone(f0):
    values, flags = named(harmonic_tone(f0))
    assert abs(values["f0_mean_hz"] - f0) < 2.0
    assert values["f0_sd_hz"] < 1.0 and values["voicing_ratio"] > 0.95 and not flags["flag_unvoiced"]


def test_f0_slope_of_a_glide():
    t = np.arange(2 * SR) / SR
    f0 = 120 + 40 * t  # +40 Hz/s
    x = (0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SR)).astype(np.float32)
    values, _ = named(x)
    assert abs(values["f0_slope_hz_s"] - 40) < 3 and abs(values["f0_mean_hz"] - 160) < 3
    assert 60 < values["f0_range_hz"] < 80  # 5th-95th percentile of a 120-200 Hz ramp: 72 Hz


@pytest.mark.parametrize("jitter", [0.01, 0.03])
def test_jitter_of_a_perturbed_pulse_train(jitter):
    x, planted, _ = pulse_train(100.0, jitter=jitter)
    values, _ = named(x)
    assert values["jitter_local"] == pytest.approx(planted, rel=0.1)
    assert abs(values["f0_mean_hz"] - 160) < 3


def test_no_jitter_no_shimmer_on_a_regular_train():
    x, planted_j, _ = pulse_train(100.0)
    values, _ = named(x)
    assert planted_j == 0 and values["jitter_local"] < 1e-3 and values["shimmer_local"] < 1e-3


def test_shimmer_of_a_perturbed_pulse_train():
    x, _, planted = pulse_train(100.0, shimmer=0.1, seed=3)
    values, _ = named(x)
    assert values["shimmer_local"] == pytest.approx(planted, rel=0.1)


def test_pause_and_silence_ratio():
    tone = harmonic_tone(150.0, 0.8)
    x = np.concatenate([tone, np.zeros(int(0.3 * SR), np.float32), tone])  # one 300 ms interior pause
    values, _ = named(x)
    assert values["pauses_per_s"] == pytest.approx(1 / 1.9, rel=0.02)
    assert values["pause_mean_s"] == pytest.approx(0.3, abs=0.04)
    assert values["pause_ratio"] == pytest.approx(0.3 / 1.9, abs=0.03)


def test_speaking_rate_counts_planted_syllables():
    t = np.arange(3 * SR) / SR
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 2  # 4 bursts (syllables) per second
    x = (harmonic_tone(140.0, 3.0) * (0.05 + envelope)).astype(np.float32)
    values, _ = named(x)
    assert values["nuclei_per_s"] * 3.0 == pytest.approx(12, abs=1.5)  # per non-silent second ~ per second here


@pytest.mark.parametrize("case", ["empty", "subframe", "silent", "noise", "clipped"])
def test_bad_clips_are_finite_and_flagged(case):
    rng = np.random.default_rng(0)
    x = {
        "empty": np.zeros(0, np.float32),
        "subframe": 0.1 * rng.standard_normal(300).astype(np.float32),
        "silent": np.zeros(SR, np.float32),
        "noise": 0.1 * rng.standard_normal(SR).astype(np.float32),
        "clipped": np.clip(4 * harmonic_tone(150.0), -1, 1),
    }[case]
    values, flags = prosody_features(x)
    assert np.isfinite(values).all() and values.shape == (len(FEATURES),)
    expected = {
        "empty": {"flag_short", "flag_silent", "flag_unvoiced"},
        "subframe": {"flag_short", "flag_unvoiced"},
        "silent": {"flag_silent", "flag_unvoiced"},
        "noise": {"flag_unvoiced"},
        "clipped": {"flag_clipped"},
    }
    assert {k for k in FLAGS if flags[k]} == expected[case]
    if case == "clipped":
        assert abs(dict(zip(FEATURES, values))["f0_mean_hz"] - 150) < 2


def test_extractor_batch_layout():
    extractor = ProsodyExtractor()
    batch = extractor.extract([harmonic_tone(150.0), np.zeros(0, np.float32)])
    assert batch.vectors["layer_00"].shape == (2, len(FEATURES)) and batch.vectors["layer_00"].dtype == np.float32
    assert batch.flags["flag_short"].tolist() == [False, True]
    assert batch.extra["duration_s"].tolist() == [1.0, 0.0]
