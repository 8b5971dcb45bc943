"""Channel degradations: filters, telephone band, resampling, G.711 path, gain/clip, VAD trimming."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.degrade.registry import REGISTRY, apply_spec, codec_fields

from .conftest import speechlike

SR = 16000


def tone(freq: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


@pytest.mark.parametrize("phase", ["zero", "causal"])
def test_telephony_passes_voice_band_and_cuts_outside(phase):
    spec = f"telephony:phase={phase}"
    assert rms(apply_spec(tone(1000), SR, spec)[0][2000:-2000]) / rms(tone(1000)) > 0.9
    assert rms(apply_spec(tone(100), SR, spec)[0][2000:-2000]) / rms(tone(100)) < 0.1
    assert rms(apply_spec(tone(6000), SR, spec)[0][2000:-2000]) / rms(tone(6000)) < 0.05


def test_zero_phase_filter_does_not_shift_the_waveform():
    from cm_cli.degrade.codecs import xcorr_lag

    x = speechlike(SR, 2.0, seed=4)
    y, _ = apply_spec(x, SR, "lowpass:cutoff=3000:phase=zero")
    assert abs(xcorr_lag(x, y, 200)) < 0.5


def test_bandstop_removes_the_band_only():
    y_in = apply_spec(tone(1500), SR, "bandstop:low=1000:high=2000")[0]
    y_out = apply_spec(tone(400), SR, "bandstop:low=1000:high=2000")[0]
    assert rms(y_in[2000:-2000]) < 0.05 * rms(tone(1500))
    assert rms(y_out[2000:-2000]) > 0.9 * rms(tone(400))


def test_highpass_and_lowpass():
    assert rms(apply_spec(tone(200), SR, "highpass:cutoff=1000")[0][2000:-2000]) < 0.05
    assert rms(apply_spec(tone(5000), SR, "lowpass:cutoff=2000")[0][2000:-2000]) < 0.05


def test_filter_cutoff_beyond_nyquist_is_an_error():
    with pytest.raises(CmError, match="Nyquist"):
        apply_spec(tone(100), SR, "lowpass:cutoff=9000")
    with pytest.raises(CmError, match="needs a cutoff"):
        apply_spec(tone(100), SR, "lowpass")


def test_resample_to_8k_removes_upper_band_keeps_length():
    x = tone(1000) + tone(6000)
    y, _ = apply_spec(x, SR, "resample:rate=8000")
    assert len(y) == len(x)
    spectrum = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    assert spectrum[np.argmin(np.abs(freqs - 6000))] < 0.01 * spectrum[np.argmin(np.abs(freqs - 1000))]


def test_g711_numpy_and_ffmpeg_agree_closely():
    x = speechlike(SR, 1.0, seed=8)
    a, _ = apply_spec(x, SR, "mulaw")
    b, _ = apply_spec(x, SR, "mulaw:impl=ffmpeg")
    assert len(a) == len(b) == len(x)
    assert np.corrcoef(a, b)[0, 1] > 0.98
    c, _ = apply_spec(x, SR, "alaw:rate=0")  # at the input rate: pure companding
    assert np.max(np.abs(c - x)) < 0.02


def test_gain_and_clip():
    x = tone(440)
    y, _ = apply_spec(x, SR, "gain:db=6")
    assert rms(y) / rms(x) == pytest.approx(10 ** (6 / 20), rel=1e-4)
    y, info = apply_spec(x, SR, "clip:level=0.25")
    assert np.max(np.abs(y)) <= 0.25 + 1e-7 and info["steps"][0]["clipped_samples"] > 0


def test_trim_removes_silence_and_is_the_only_length_changer():
    x = speechlike(SR, 1.0, seed=2, silence=0.5)
    y, info = apply_spec(x, SR, "trim:margin_ms=20")
    assert len(x) - len(y) > int(0.8 * SR)
    assert [n for n, d in REGISTRY.items() if d.changes_length] == ["trim"]


def test_every_length_preserving_degradation_keeps_length_and_rate():
    x = speechlike(SR, 1.0, seed=1)
    for spec in (
        "clean",
        "telephony",
        "resample",
        "mulaw",
        "alaw",
        "gain:db=-3",
        "noise:snr=10",
        "reverb:rt60=0.3",
        "highpass:cutoff=300",
        "bandpass:low=300:high=3400",
        "mp3:kbps=32+telephony+noise:snr=20:type=pink",
    ):
        y, _ = apply_spec(x, SR, spec, seed=0, utt_id="u")
        assert len(y) == len(x) and y.dtype == np.float32, spec


def test_codec_fields_take_the_first_codec_step():
    assert codec_fields("telephony+mp3:kbps=32+opus:kbps=12") == ("mp3", "32")
    assert codec_fields("noise:snr=5") == (None, None)
    assert codec_fields("alaw") == ("alaw", None)
