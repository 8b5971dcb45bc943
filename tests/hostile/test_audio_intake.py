"""The one audio intake (issue 29 item 1, issue 31 item 3): what it decodes, what it refuses, in every mode."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cm_cli.core.errors import CmError
from cm_cli.data.audio import iter_audio_windows, load_audio, load_audio_window, probe_audio
from tests.hostile.media import tone, write_cut, write_header_only, write_nonfinite, write_with_pyav


@pytest.mark.parametrize(
    "name,codec,container,rate",
    [
        ("a.m4a", "aac", "mp4", 16000),
        ("a.mp3", "libmp3lame", None, 16000),
        ("a.webm", "libopus", "webm", 48000),
        ("a.mp4", "aac", "mp4", 22050),
    ],
)
def test_containers_pyav_reads_decode_in_process(tmp_path, monkeypatch, name, codec, container, rate):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)  # no system ffmpeg, as on a pip-only install
    source = tone(1.0, rate)
    path = write_with_pyav(tmp_path / name, source, rate, codec, container)
    wave, got_rate = load_audio(path, sample_rate=16000)
    assert got_rate == 16000 and abs(len(wave) - 16000) <= 2048  # codec priming/padding only
    # the 220 Hz tone survives: its spectrum peaks at 220 Hz
    spectrum = np.abs(np.fft.rfft(wave[2048 : 2048 + 8192]))
    assert abs(np.argmax(spectrum) * 16000 / 8192 - 220) < 4


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused_in_every_reading_mode(tmp_path, value):
    bad = write_nonfinite(tmp_path / "bad.wav", value)
    for read in (
        lambda: load_audio(bad),
        lambda: load_audio(bad, sample_rate=8000),
        lambda: load_audio_window(bad, 0, 4000, sample_rate=16000),
        lambda: list(iter_audio_windows(bad, sample_rate=16000, window=4000, hop=4000)),
        lambda: list(iter_audio_windows(bad, sample_rate=8000, window=4000, hop=4000)),
    ):
        with pytest.raises(CmError, match=r"non-finite sample\(s\) \(NaN/Inf\)"):
            read()


def test_a_cut_data_chunk_is_truncated_not_shorter_audio(tmp_path):
    cut = write_cut(tmp_path / "cut.wav", keep=0.5)
    for read in (
        lambda: load_audio(cut),
        lambda: probe_audio(cut),
        lambda: list(iter_audio_windows(cut, sample_rate=16000, window=4000, hop=4000)),
        lambda: list(iter_audio_windows(cut, sample_rate=8000, window=4000, hop=4000)),
    ):
        with pytest.raises(CmError, match="truncated: its data chunk declares 32000 bytes, the file holds 16000"):
            read()
    whole = tmp_path / "whole.wav"
    sf.write(whole, tone(1.0), 16000)
    assert len(load_audio(whole)[0]) == 16000 and probe_audio(whole).frames == 16000


def test_not_audio_is_said_plainly(tmp_path):
    header = write_header_only(tmp_path / "h.wav")
    text = tmp_path / "notes.wav"
    text.write_text("hello, not audio\n")
    for path, what in ((header, "not audio, or a damaged audio file"), (text, "not audio (no known audio format)")):
        with pytest.raises(CmError) as info:
            load_audio(path)
        assert what in info.value.message and "ffprobe" not in info.value.message
