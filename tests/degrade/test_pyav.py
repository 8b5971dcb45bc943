"""PyAV in-process codecs: the argument translator, agreement with ffmpeg binaries, provider choice, keys."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.degrade import codecs, ffmpeg, pyav
from cm_cli.degrade.codecs import (
    CODECS,
    codec_delay,
    codec_provider,
    encode_decode,
    encoded_kbps,
    probe_signal,
    xcorr_lag,
)
from cm_cli.degrade.corpus import item_key
from cm_cli.degrade.registry import describe_provider, get_degradation, spec_providers

from .conftest import speechlike

SR = 16000
needs_pyav = pytest.mark.skipif(pyav.pyav_label() is None, reason="PyAV (av>=18.1) is not installed here")


def _clear_caches() -> None:
    for cached in (pyav._av, pyav.pyav_label, pyav.pyav_encoders):
        cached.cache_clear()


@pytest.fixture
def without_av(monkeypatch):
    """`import av` fails, as on a machine without the wheel."""
    monkeypatch.setitem(sys.modules, "av", None)
    _clear_caches()
    yield
    _clear_caches()


def _binary_has(name: str, monkeypatch) -> bool:
    with monkeypatch.context() as m:
        m.setattr(ffmpeg, "pyav_provider", lambda: None)
        return codec_provider(name) is not None


# ------------------------------------------------------------------ translator


def test_translator_maps_every_codec_argument_list():
    plan = pyav.translate_encode(codecs._encode_args(CODECS["opus"], "libopus", {"kbps": 8, "band": "nb"}, 8000))
    assert plan == pyav.EncodePlan("libopus", 8000, 1, "ogg", {"b": "8000", "cutoff": "4000", "application": "voip"})
    plan = pyav.translate_encode(codecs._encode_args(CODECS["m4a"], "aac", {"kbps": 48}, 16000))
    assert plan.muxer == "mp4" and plan.options == {"b": "48000", "movflags": "frag_keyframe+empty_moov"}
    plan = pyav.translate_encode(codecs._encode_args(CODECS["sbc"], "sbc", {}, 16000))
    assert plan.options == {"msbc": "1"} and plan.muxer == "sbc"
    for codec in CODECS.values():  # every codec's command line translates
        params = {"band": codec.bands[0]} if codec.bands else {}
        rate = codec.rate(SR, params)
        assert pyav.translate_encode(codecs._encode_args(codec, codec.encoders[0], params, rate)).rate == rate
        pyav.translate_decode(codec.decode_args(rate))
    assert pyav.translate_decode(["-f", "alaw", "-ar", "8000", "-ac", "1"]) == pyav.DecodePlan(
        "alaw", {"sample_rate": "8000", "ch_layout": "1C"}
    )
    assert pyav.translate_decode([]) == pyav.DecodePlan(None, {})
    with pytest.raises(CmError, match="in-process"):
        pyav.translate_encode(["-ar", "8000", "stray"])


@needs_pyav
def test_muxer_options_reach_the_muxer():
    """-movflags is no codec option: it must fragment the MP4 (moof boxes), as the binary does."""
    x = speechlike(SR, seconds=1.0, seed=2)
    args = codecs._encode_args(CODECS["m4a"], "aac", {"kbps": 48}, SR)
    fragmented = pyav.encode_inprocess(x, SR, pyav.translate_encode(args))
    plain = pyav.encode_inprocess(
        x, SR, pyav.translate_encode([a for a in args if a not in ("-movflags", "frag_keyframe+empty_moov")])
    )
    assert b"moof" in fragmented and b"moof" not in plain


# ------------------------------------------------------------------ provider agreement

AGREE = [
    ("mp3", {"kbps": 32}),
    ("aac", {"kbps": 48}),
    ("m4a", {"kbps": 48}),
    ("opus", {"kbps": 16, "band": "wb"}),
    ("opus", {"kbps": 8, "band": "nb"}),
    ("amr-nb", {"kbps": 12.2}),
    ("sbc", {}),
    ("g722", {}),
    ("mulaw-ffmpeg", {}),
    ("alaw-ffmpeg", {}),
]


def _both(name, params, monkeypatch, fn):
    """fn() under PyAV, then under the ffmpeg binaries; skips when either lacks the encoder."""
    if codec_provider(name) is None or not codec_provider(name)[0].in_process:
        pytest.skip(f"PyAV has no encoder for {name} here")
    if not _binary_has(name, monkeypatch):
        pytest.skip(f"no ffmpeg binary here has an encoder for {name}")
    in_process = fn()
    with monkeypatch.context() as m:
        m.setattr(ffmpeg, "pyav_provider", lambda: None)
        assert not codec_provider(name)[0].in_process
        return in_process, fn()


@needs_pyav
@pytest.mark.parametrize("name,params", AGREE, ids=[f"{n}-{'-'.join(map(str, p.values()))}" for n, p in AGREE])
def test_providers_agree_on_length_and_alignment(name, params, monkeypatch):
    x = probe_signal(SR)

    def run():
        y, info = encode_decode(x, SR, name, params)
        return y, info

    (a, info_a), (b, info_b) = _both(name, params, monkeypatch, run)
    assert info_a["provider"] == "pyav" and info_a["binary"].startswith("pyav ")
    assert info_b["provider"] != "pyav"
    for y in (a, b):
        assert y.dtype == np.float32 and len(y) == len(x)
        assert abs(xcorr_lag(x, y, 800)) <= 1.0
    # the same libraries up to version: the two outputs match closely after alignment
    assert np.corrcoef(a, b)[0, 1] > 0.9


@needs_pyav
@pytest.mark.parametrize("name,params", [("opus", {"kbps": 12, "band": "nb"}), ("amr-nb", {"kbps": 12.2})])
def test_providers_agree_on_the_narrowband_limit(name, params, monkeypatch):
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(SR)).astype(np.float32)  # white: half its energy lies above 4 kHz
    freqs = np.fft.rfftfreq(len(x), 1 / SR)

    def high_share():
        y, _ = encode_decode(x, SR, name, params)
        spectrum = np.abs(np.fft.rfft(y)) ** 2
        return spectrum[freqs > 4200].sum() / spectrum.sum()

    for share in _both(name, params, monkeypatch, high_share):
        assert share < 0.02


@needs_pyav
@pytest.mark.parametrize("name,kbps", [("mp3", 32), ("mp3", 64), ("mp3", 128), ("opus", 12), ("opus", 24)])
def test_providers_agree_on_produced_bitrate(name, kbps, monkeypatch):
    x = speechlike(SR, seconds=3.0, seed=7)
    in_process, binary = _both(name, {"kbps": kbps}, monkeypatch, lambda: encoded_kbps(x, SR, name, {"kbps": kbps}))
    assert abs(in_process - binary) <= 0.05 * binary
    for produced in (in_process, binary):
        if name == "mp3":  # CBR: the nominal rate plus container (Xing/ID3) bytes
            assert kbps * 0.98 <= produced <= kbps * 1.1
        else:  # Opus VoIP is VBR: never above the target by more than its Ogg pages
            assert produced <= kbps * 1.1


# ------------------------------------------------------------------ choice of provider


@needs_pyav
def test_pinned_binary_wins_over_pyav(monkeypatch):
    system = shutil.which("ffmpeg")
    if system is None or "libmp3lame" not in ffmpeg.encoders_of(system):
        pytest.skip("no ffmpeg with libmp3lame on PATH")
    assert codec_provider("mp3")[0].origin == "pyav"
    monkeypatch.setenv("CM_FFMPEG", system)
    assert codec_provider("mp3")[0] == ffmpeg.FfmpegBinary(system, "CM_FFMPEG")
    assert [p.origin for p in ffmpeg.providers()][:2] == ["CM_FFMPEG", "pyav"]  # what `cm degrade --list` prints
    _, info = encode_decode(speechlike(SR, seconds=0.5, seed=1), SR, "mp3", {"kbps": 32})
    assert info["binary"] == system and info["provider"] == "CM_FFMPEG"
    monkeypatch.delenv("CM_FFMPEG")
    ffmpeg.set_preferred_ffmpeg(system)
    try:
        assert codec_provider("mp3")[0].origin == "--ffmpeg"
    finally:
        ffmpeg.set_preferred_ffmpeg(None)
    assert codec_provider("mp3")[0].origin == "pyav"


@needs_pyav
def test_delay_and_reuse_keys_name_the_provider(monkeypatch):
    """PyAV writes mp3 into a seekable buffer, so its Xing header removes the encoder delay; through a pipe
    the 1105-sample LAME delay stays. Each provider's delay is its own, and so is every reuse key."""
    if not _binary_has("mp3", monkeypatch):
        pytest.skip("no ffmpeg binary here has libmp3lame")
    in_process_delay = codec_delay("mp3", SR, {"kbps": 32})
    in_process_key = spec_providers("mp3:kbps=32")
    with monkeypatch.context() as m:
        m.setattr(ffmpeg, "pyav_provider", lambda: None)
        binary_delay = codec_delay("mp3", SR, {"kbps": 32})
        binary_key = spec_providers("mp3:kbps=32")
    assert abs(in_process_delay) <= 1 and binary_delay >= 1105
    assert in_process_key.startswith("mp3=pyav:pyav ") and binary_key != in_process_key
    common = dict(spec="mp3:kbps=32", seed=0, sample_rate=None, source_utt_id="u", source_sha256="0" * 64)
    assert item_key(**common, providers=in_process_key) != item_key(**common, providers=binary_key)
    assert spec_providers("noise:snr=10") == ""  # no codec step: the key is unchanged
    assert item_key(**common) == item_key(**common, providers="")


@needs_pyav
def test_list_names_pyav_in_process():
    available, text = describe_provider(get_degradation("mp3"))
    assert available and text.startswith("pyav ") and "in-process" in text and "libmp3lame" in text


def test_without_av_the_binaries_serve(without_av, monkeypatch):
    assert pyav.pyav_label() is None and pyav.pyav_encoders() == frozenset()
    assert ffmpeg.pyav_provider() is None
    found = codec_provider("mulaw-ffmpeg")
    assert found is not None and not found[0].in_process
    x = speechlike(SR, seconds=0.5, seed=4)
    y, info = encode_decode(x, SR, "mulaw-ffmpeg", {})
    assert len(y) == len(x) and info["provider"] != "pyav" and not info["binary"].startswith("pyav")
    with pytest.raises(CmError, match="not importable"):
        pyav.encode_inprocess(x, SR, pyav.EncodePlan("pcm_mulaw", 8000, 1, "mulaw"))


@needs_pyav
def test_a_corpus_begun_with_one_provider_is_not_completed_with_another(tmp_path, monkeypatch):
    """cm.json records the providers; a rerun under another FFmpeg build is refused (or redone with --force)."""
    from cm_cli.core.artifacts import read_json
    from cm_cli.degrade.corpus import degrade_manifest

    from .test_corpus import make_manifest

    if not _binary_has("mp3", monkeypatch):
        pytest.skip("no ffmpeg binary here has libmp3lame")
    manifest = make_manifest(tmp_path / "src", n=2, bad=False)
    out = tmp_path / "deg"
    degrade_manifest(manifest, out, specs=["mp3:kbps=32", "telephony"], seed=0)
    recorded = read_json(out / "cm.json")["options"]["codec_providers"]
    assert recorded == [spec_providers("mp3:kbps=32")] and recorded[0].startswith("mp3=pyav:")
    assert degrade_manifest(manifest, out, specs=["mp3:kbps=32", "telephony"], seed=0).already_done
    monkeypatch.setattr(ffmpeg, "pyav_provider", lambda: None)
    with pytest.raises(CmError, match="codec_providers"):
        degrade_manifest(manifest, out, specs=["mp3:kbps=32", "telephony"], seed=0)
    redone = degrade_manifest(manifest, out, specs=["mp3:kbps=32", "telephony"], seed=0, force=True)
    assert redone.n_written == 4
    assert not read_json(out / "cm.json")["options"]["codec_providers"][0].startswith("mp3=pyav:")
