"""Hostile audio made by the tests themselves: NaN/Inf WAVs, cut files, tiny clips, containers written by PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def write_nonfinite(path: Path, value: float = np.nan, seconds: float = 1.0, at: int = 100) -> Path:
    """A float WAV holding one non-finite sample (NaN or +-Inf) in otherwise clean audio."""
    samples = tone(seconds)
    samples[at] = value
    sf.write(path, samples, 16000, subtype="FLOAT")
    return path


def write_cut(path: Path, keep: float = 0.5, seconds: float = 1.0) -> Path:
    """A PCM WAV whose data chunk declares ``seconds`` of audio but whose file was cut to ``keep`` of it."""
    sf.write(path, tone(seconds), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: 44 + int((len(data) - 44) * keep)])
    return path


def write_header_only(path: Path) -> Path:
    """A WAV cut inside its header (30 bytes)."""
    sf.write(path, tone(0.1), 16000)
    path.write_bytes(path.read_bytes()[:30])
    return path


def write_with_pyav(path: Path, samples: np.ndarray, rate: int, codec: str, container: str | None = None) -> Path:
    """Encode mono float ``samples`` with PyAV's FFmpeg (e.g. ``aac`` in ``mp4`` for an .m4a); no system ffmpeg."""
    import av

    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        x = np.asarray(samples, np.float32)
        for i in range(0, len(x), size):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, i : i + size]), format="flt", layout="mono")
            frame.sample_rate = rate
            for piece in resampler.resample(frame):
                for packet in stream.encode(piece):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
