"""ffmpeg codecs: discovery, alignment (cross-correlation peak at lag 0), length, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.degrade import codecs, ffmpeg
from cm_cli.degrade.codecs import CODECS, codec_available, encode_decode, xcorr_lag
from cm_cli.degrade.registry import apply_spec, validate_spec

from .conftest import speechlike

CASES = [
    ("mp3", {"kbps": 32}),
    ("aac", {"kbps": 48}),
    ("m4a", {"kbps": 48}),
    ("opus", {"kbps": 16, "band": "wb"}),
    ("opus", {"kbps": 8, "band": "nb"}),
    ("vorbis", {}),
    ("speex", {"band": "wb"}),
    ("speex", {"band": "nb", "kbps": 8}),
    ("amr-nb", {"kbps": 12.2}),
    ("amr-wb", {}),
    ("g722", {}),
    ("gsm", {}),
    ("mulaw-ffmpeg", {}),
    ("alaw-ffmpeg", {}),
    ("g723_1", {}),
    ("g726", {"kbps": 16}),
    ("g726", {"kbps": 40}),
    ("ra144", {}),
]
# what PyAV's bundled FFmpeg encodes, so every pip install has it (issue 31): these never skip
IN_EVERY_INSTALL = (
    "mp3",
    "aac",
    "m4a",
    "opus",
    "amr-nb",
    "g722",
    "mulaw-ffmpeg",
    "alaw-ffmpeg",
    "g723_1",
    "g726",
    "ra144",
)


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{'-'.join(map(str, p.values()))}" for n, p in CASES])
def test_codec_output_is_aligned_and_same_length(name, params):
    if not codec_available(name) and name not in IN_EVERY_INSTALL:
        pytest.skip(f"needs an ffmpeg with the {CODECS[name].encoder_hint} encoder (not in PyAV's wheel): cm doctor")
    x = speechlike(16000, seconds=2.5, seed=99)  # not the alignment probe's signal
    y, info = encode_decode(x, 16000, name, params)
    assert y.dtype == np.float32 and len(y) == len(x)
    lag = xcorr_lag(x, y, 800)
    # the codec path resamples, so delays are fractional; the residual must be below one sample
    assert abs(lag) < 1.0, f"{name}: residual lag {lag:.2f} samples (delay removed: {info['delay_samples']})"
    assert np.corrcoef(x, y)[0, 1] > 0.2


def test_alignment_holds_at_other_input_rates():
    x = speechlike(22050, seconds=2.0, seed=5)
    y, _ = encode_decode(x, 22050, "mp3", {"kbps": 64})
    assert len(y) == len(x) and abs(xcorr_lag(x, y, 800)) < 1.0


def test_amr_wb_without_encoder_names_the_missing_ffmpeg_encoder():
    if codec_available("amr-wb"):
        pytest.skip("an ffmpeg with libvo_amrwbenc is installed here")
    with pytest.raises(CmError, match="libvo_amrwbenc") as err:
        apply_spec(np.zeros(1600, np.float32), 16000, "amr-wb")
    assert "CM_FFMPEG" in err.value.hint


@pytest.mark.parametrize(
    "spec,match",
    [
        ("mp3:kbps=abc", "not a number"),
        ("mp3:kbps=-32", "must be > 0"),
        ("mp3:kbps=0", "must be > 0"),
        ("mp3:kbps=999", "outside"),
        ("mp3:rate=8000", "unknown parameter"),
        ("mp9", "unknown degradation"),
        ("g722:kbps=64", "unknown parameter"),
        ("opus:band=swb", "not one of"),
    ],
)
def test_bad_codec_specs_are_clear_errors(spec, match):
    with pytest.raises(CmError, match=match):
        validate_spec(spec)


def test_unknown_codec_error_lists_valid_names():
    with pytest.raises(CmError) as err:
        validate_spec("mp4:kbps=32")
    assert "mp3" in err.value.hint and "opus" in err.value.hint


def test_encoder_probe_and_preference(monkeypatch):
    binaries = ffmpeg.candidate_binaries()
    assert binaries, "no ffmpeg found at all"
    assert "pcm_mulaw" in ffmpeg.encoders_of(binaries[0].path)
    monkeypatch.setenv("CM_FFMPEG", binaries[-1].path)
    assert ffmpeg.candidate_binaries()[0].path == binaries[-1].path
    with pytest.raises(CmError, match="no such executable"):
        ffmpeg.set_preferred_ffmpeg("/nonexistent/ffmpeg")


def test_codec_actually_degrades():
    x = speechlike(16000, seconds=2.0, seed=3)
    y, _ = apply_spec(x, 16000, "amr-nb:kbps=4.75" if codec_available("amr-nb") else "g723_1")
    assert not np.allclose(x, y, atol=1e-3)
    # narrowband codecs remove energy above 4 kHz
    spec_x = np.abs(np.fft.rfft(x + 0.01 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)))
    spec_y = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(x), 1 / 16000)
    assert spec_y[freqs > 4500].sum() < 0.2 * spec_x[freqs > 4500].sum()


def test_delay_is_cached():
    codecs._delay_cached.cache_clear()
    codecs.codec_delay("mp3", 16000, {"kbps": 32})
    codecs.codec_delay("mp3", 16000, {"kbps": 32})
    assert codecs._delay_cached.cache_info().hits >= 1
