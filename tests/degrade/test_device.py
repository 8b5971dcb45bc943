"""C11 device and channel degradations: each does what its parameters say, at the same length and rate."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.degrade.codecs import codec_available, encoded_kbps
from cm_cli.degrade.device import MIC_MODELS, SPEAKER_MODELS, mains_hum
from cm_cli.degrade.registry import apply_spec


def _band_gain_db(x: np.ndarray, y: np.ndarray, sr: int, low: float, high: float) -> float:
    f = np.fft.rfftfreq(len(x), 1 / sr)
    band = (f >= low) & (f < high)
    return 10 * np.log10((np.abs(np.fft.rfft(y))[band] ** 2).sum() / (np.abs(np.fft.rfft(x))[band] ** 2).sum())


def _white(n: int = 32000, seed: int = 0) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("model", sorted(MIC_MODELS))
def test_mic_response_cuts_below_its_highpass_and_passes_midband(model):
    x = _white()
    y, _ = apply_spec(x, 16000, f"mic:model={model}")
    edge = MIC_MODELS[model].highpass_hz
    assert len(y) == len(x)
    assert _band_gain_db(x, y, 16000, 10, edge / 3) < -15  # two octaves-ish below the edge: second order, >15 dB
    assert abs(_band_gain_db(x, y, 16000, 800, 1200)) < 3


def test_laptop_mic_has_its_resonance():
    x = _white()
    y, _ = apply_spec(x, 16000, "mic:model=laptop")
    response = MIC_MODELS["laptop"]
    assert _band_gain_db(x, y, 16000, response.peak_hz - 200, response.peak_hz + 200) > 3


def test_speaker_saturates_loud_input_but_not_quiet():
    from cm_cli.degrade.device import loudspeaker

    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    quiet = loudspeaker(0.01 * tone, 16000, "small")
    loud = loudspeaker(0.9 * tone, 16000, "small")
    # at 0.9 the tanh drive compresses: output/input gain well below the small-signal gain
    assert np.abs(loud[4000:]).max() / 0.9 < 0.7 * np.abs(quiet[4000:]).max() / 0.01
    assert SPEAKER_MODELS["small"].highpass_hz > MIC_MODELS["smartphone"].highpass_hz


def test_cable_hum_at_its_level_and_frequency():
    from cm_cli.degrade.codecs import probe_signal

    x = probe_signal(16000, 2.0)
    y, info = apply_spec(x, 16000, "cable:hum_db=-20:hum_hz=50", seed=1, utt_id="u")
    hum = y - x
    spectrum = np.abs(np.fft.rfft(hum))
    f = np.fft.rfftfreq(len(hum), 1 / 16000)
    assert abs(f[np.argmax(spectrum)] - 50) < 1
    from cm_cli.degrade.noise import speech_power

    ratio_db = 10 * np.log10(np.mean(hum.astype(np.float64) ** 2) / speech_power(x, 16000)[0])
    assert abs(ratio_db + 20) < 0.5
    again, _ = apply_spec(x, 16000, "cable:hum_db=-20:hum_hz=50", seed=1, utt_id="u")
    assert np.array_equal(y, again)
    assert abs(np.sqrt(np.mean(mains_hum(16000, 16000, 60, np.random.default_rng(0)) ** 2)) - 1) < 1e-3


def test_cable_rolloff_attenuates_above_cutoff():
    x = _white()
    y, _ = apply_spec(x, 16000, "cable:cutoff=1000:hum_db=-80", seed=0, utt_id="u")
    assert _band_gain_db(x, y, 16000, 6000, 7900) < -12


@pytest.mark.skipif(not codec_available("sbc"), reason="no ffmpeg here has the sbc encoder")
def test_bluetooth_msbc_rate_and_alignment():
    from cm_cli.degrade.codecs import probe_signal

    x = probe_signal(16000, 3.0)
    assert abs(encoded_kbps(x, 16000, "sbc", {"mode": "msbc"}) - 60.8) < 1.5  # 57-byte frames every 7.5 ms
    assert abs(encoded_kbps(x, 16000, "sbc", {"mode": "sbc", "kbps": 96}) - 96) < 96 * 0.1
    y, info = apply_spec(x, 16000, "bluetooth:mode=msbc")
    assert len(y) == len(x)
    corr = np.corrcoef(x[1000:-1000], y[1000:-1000])[0, 1]
    assert corr > 0.9, corr  # delay removed: the decoded speech lines up with its input
