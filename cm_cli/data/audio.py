"""Reading audio as mono float32 at a chosen rate, and probing duration/rate cheaply.

soundfile reads WAV/FLAC/OGG directly; anything else (mp3, m4a, …) goes through
pydub and ffmpeg. Resampling uses scipy's polyphase filter, which is exact for
the rational rate changes speech corpora need and avoids importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from cm_cli.core.errors import CmError

__all__ = ["AudioInfo", "probe_audio", "load_audio", "load_audio_window", "native_frames", "resample", "to_mono", "save_audio",
           "looks_like_audio"]

# leading bytes of the containers cm reads through ffmpeg (soundfile reads WAV/FLAC/OGG itself)
_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM", b".snd", b"caff", b"wvpk", b"MAC ",
          b"\x1aE\xdf\xa3", b"#!AMR", b"0&\xb2u")


def looks_like_audio(path: str | Path) -> bool:
    """True if the file starts like an audio container or an MPEG/AAC frame (a cheap sniff, not a decode)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(_MAGIC) or head[4:8] == b"ftyp":
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG audio / ADTS frame sync


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    sample_rate: int
    channels: int
    frames: int


def probe_audio(path: str | Path) -> AudioInfo:
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise CmError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except Exception:
        samples, rate = load_audio(path, mono=False)
        return AudioInfo(samples.shape[-1] / rate, rate, 1 if samples.ndim == 1 else samples.shape[0], samples.shape[-1])
    return AudioInfo(info.frames / info.samplerate, int(info.samplerate), int(info.channels), int(info.frames))


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(channels, frames) or (frames,) -> (frames,) by averaging channels."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=0)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(samples, target // g, rate // g, axis=-1).astype(np.float32)


def _read_with_pydub(path: Path) -> tuple[np.ndarray, int]:
    if not looks_like_audio(path):
        raise CmError(f"{path}: not audio (no known audio format; the file may be damaged or something else)")
    try:
        from pydub import AudioSegment
    except ImportError:  # pragma: no cover - pydub is a dependency
        raise CmError(f"{path}: soundfile cannot read it and pydub is not installed") from None
    try:
        segment = AudioSegment.from_file(str(path))
    except FileNotFoundError as exc:  # pydub could not start ffprobe / ffmpeg
        raise CmError(f"{path}: decoding {path.suffix or 'this format'} needs ffmpeg ({exc.filename or exc})",
                      "install ffmpeg, or convert the file to WAV or FLAC") from None
    except Exception as exc:
        raise CmError(f"{path}: cannot decode audio ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
    data = np.array(segment.get_array_of_samples(), dtype=np.float32)
    scale = float(1 << (8 * segment.sample_width - 1))
    data = data.reshape(-1, segment.channels).T / scale
    return (data[0] if segment.channels == 1 else data), int(segment.frame_rate)


def load_audio(path: str | Path, *, sample_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 in [-1, 1]: (frames,) when mono, else (channels, frames)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise CmError(f"{path}: audio file not found")
    if path.stat().st_size == 0:
        raise CmError(f"{path}: audio file is empty")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        samples = data.T
    except Exception:
        samples, rate = _read_with_pydub(path)
        samples = samples if samples.ndim == 2 else samples[None, :]
    if samples.shape[-1] == 0:
        raise CmError(f"{path}: audio file has no samples")
    if mono:
        samples = to_mono(samples)
    if sample_rate is not None:
        samples = resample(samples, int(rate), int(sample_rate))
        rate = sample_rate
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def native_frames(path: str | Path, sample_rate: int) -> int | None:
    """Frames in ``path`` if soundfile reads it at ``sample_rate`` natively (so a window can be seeked), else None."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:
        return None
    return int(info.frames) if int(info.samplerate) == int(sample_rate) and info.frames > 0 else None


def load_audio_window(path: str | Path, start: int, frames: int, *, sample_rate: int) -> np.ndarray:
    """``load_audio(path, sample_rate=...)[0][start:start + frames]``, reading only that window when it can.

    FLAC and WAV at the target rate are seeked (soundfile ``start``/``frames``), which
    gives the same samples as decoding everything and slicing; anything else is
    decoded whole and sliced.
    """
    import soundfile as sf

    path = Path(path)
    try:  # one open, no separate header probe: a window at another rate is discarded below
        data, rate = sf.read(str(path), start=int(start), frames=int(frames), dtype="float32", always_2d=True)
    except Exception:
        data, rate = None, None
    if data is not None and len(data) > 0 and int(rate) == int(sample_rate):
        return np.ascontiguousarray(to_mono(data.T), dtype=np.float32)
    wave, _ = load_audio(path, sample_rate=sample_rate)
    return wave[int(start):int(start) + int(frames)]


def pcm16(samples: np.ndarray) -> np.ndarray:
    """``samples`` as the 16-bit integers ``save_audio`` writes to FLAC/WAV (clipped, scaled by 2**15, rounded).

    Reading those back with soundfile gives ``pcm16(x) / 32768``, so audio rounded
    this way in memory is bit-identical to audio written and read again.
    """
    scaled = np.rint(np.asarray(samples, dtype=np.float32) * np.float32(32768.0))
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def save_audio(path: str | Path, samples: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> int:
    """Write atomically in the format implied by the suffix; returns the number of clipped samples."""
    import soundfile as sf

    from cm_cli.core.artifacts import atomic_path

    path = Path(path)
    clipped = int(np.count_nonzero(np.abs(samples) > 1.0))
    data = np.clip(samples, -1.0, 1.0)
    fmt = (path.suffix.lstrip(".") or "wav").upper()
    if fmt not in sf.available_formats():
        raise CmError(f"{path}: cannot write {fmt!r} files", "use .wav or .flac")
    with atomic_path(path, suffix="." + path.suffix.lstrip(".")) as tmp:
        sf.write(str(tmp), data.T if data.ndim == 2 else data, int(sample_rate), format=fmt,
                 subtype=subtype or ("PCM_16" if fmt in ("WAV", "FLAC") else None))
    return clipped
