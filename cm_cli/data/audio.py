"""The one audio intake: decode to float32 at a chosen rate, refusing what no result should be computed from.

Decoding: soundfile (libsndfile) first, for WAV/FLAC/OGG; every other container and
codec PyAV reads (m4a/AAC in MP4, webm, mp4 audio, amr, mp3, ...) decodes in-process
through PyAV's bundled FFmpeg, so a pip-only install needs no system ffmpeg; pydub
and a system ffmpeg are a last fallback, tried only where PyAV is missing or fails and
an ``ffprobe`` is on PATH.

Checks (a ``CmError`` naming the file, which folder and corpus modes turn into a
``failures`` entry): samples must be finite (NaN/Inf never reach a model, a metric or a
codec: LAME aborts the process on NaN); a WAV whose data chunk declares more bytes
than the file holds is truncated and refused rather than read as shorter audio; an
empty or headerless file is "not audio". The minimum duration depends on the model
(its receptive field) and is checked by the caller with ``require_min_samples``.
Resampling uses scipy's polyphase filter, which is exact for the rational rate
changes speech corpora need and avoids importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from cm_cli.core.errors import CmError

__all__ = [
    "AudioInfo",
    "probe_audio",
    "load_audio",
    "load_audio_window",
    "native_frames",
    "resample",
    "to_mono",
    "save_audio",
    "looks_like_audio",
    "check_finite",
    "wav_truncation",
    "require_min_samples",
    "audio_duration",
    "iter_audio_windows",
]

# leading bytes of the containers cm reads through ffmpeg (soundfile reads WAV/FLAC/OGG itself)
_MAGIC = (
    b"RIFF",
    b"RIFX",
    b"RF64",
    b"fLaC",
    b"OggS",
    b"ID3",
    b"FORM",
    b".snd",
    b"caff",
    b"wvpk",
    b"MAC ",
    b"\x1aE\xdf\xa3",
    b"#!AMR",
    b"0&\xb2u",
)


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


def check_finite(samples: np.ndarray, path: str | Path) -> np.ndarray:
    """``samples`` unchanged if every value is finite, else a one-line refusal naming ``path``."""
    finite = np.isfinite(samples)
    if not finite.all():
        bad = int(samples.size - np.count_nonzero(finite))
        raise CmError(
            f"{path}: audio has {bad} non-finite sample(s) (NaN/Inf); refusing to use it (re-export the file)"
        )
    return samples


def wav_truncation(path: str | Path) -> str | None:
    """Why a RIFF/WAVE file is truncated (its data chunk declares more bytes than the file holds), else None.

    Reads the chunk headers only. A data size of 0 or 0xFFFFFFFF (a streamed WAV whose
    writer could not seek back) and RF64 files declare nothing checkable and pass."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        order = "little" if head[:4] == b"RIFF" else "big"
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            declared = int.from_bytes(chunk[4:8], order)
            if chunk[:4] == b"data":
                if declared in (0, 0xFFFFFFFF):
                    return None
                held = size - offset - 8
                if declared > held:
                    return f"truncated: its data chunk declares {declared} bytes, the file holds {held}"
                return None
            offset += 8 + declared + (declared & 1)
    return None


def require_min_samples(n_samples: int, minimum: int, rate: int, path: str | Path) -> None:
    """Refuse audio shorter than ``minimum`` samples (a model's receptive field): it would be scored on padding."""
    if int(n_samples) < int(minimum):
        raise CmError(
            f"{path}: too short to score ({n_samples / rate * 1000:.1f} ms; the model needs at least "
            f"{minimum / rate * 1000:.1f} ms = {minimum} samples, its receptive field)",
            "a score on so little audio would mostly measure padding",
        )


def probe_audio(path: str | Path) -> AudioInfo:
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise CmError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except Exception:
        samples, rate = load_audio(path, mono=False)
        return AudioInfo(
            samples.shape[-1] / rate, rate, 1 if samples.ndim == 1 else samples.shape[0], samples.shape[-1]
        )
    problem = wav_truncation(path)
    if problem:
        raise CmError(f"{path}: {problem}", "the copy or download was cut short; fetch the file again")
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _read_with_pyav(path: Path) -> tuple[np.ndarray, int]:
    """(channels, frames) float32 and the rate, decoded in-process by PyAV's FFmpeg; ImportError without av."""
    import av

    chunks: list[np.ndarray] = []
    with av.open(str(path), mode="r") as container:
        if not container.streams.audio:
            raise CmError(f"{path}: no audio stream in this file")
        stream = container.streams.audio[0]
        channels = int(stream.codec_context.channels or 1)
        rate = int(stream.codec_context.sample_rate or 0)
        layout = "mono" if channels == 1 else ("stereo" if channels == 2 else None)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate or None)
        for frame in container.decode(stream):
            frame.pts = None  # samples as decoded, no timestamp gap filling
            chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    if not chunks:
        return np.zeros((max(channels, 1), 0), np.float32), rate
    data = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    return data, rate


def _read_with_pydub(path: Path) -> tuple[np.ndarray, int]:
    from pydub import AudioSegment

    segment = AudioSegment.from_file(str(path))
    data = np.array(segment.get_array_of_samples(), dtype=np.float32)
    scale = float(1 << (8 * segment.sample_width - 1))
    data = data.reshape(-1, segment.channels).T / scale
    return data, int(segment.frame_rate)


def _decode_other(path: Path, sf_error: BaseException) -> tuple[np.ndarray, int]:
    """Whatever soundfile cannot read: PyAV, then pydub + a system ffmpeg; else one line saying it is not audio."""
    import shutil

    reasons = [f"soundfile: {_first_line(sf_error)}"]
    try:
        return _read_with_pyav(path)
    except CmError:
        raise
    except ImportError:
        reasons.append("PyAV: not installed")
    except Exception as exc:  # noqa: BLE001 - av raises InvalidDataError, EOFError, ... on damaged input
        reasons.append(f"PyAV: {_first_line(exc)}")
    if shutil.which("ffprobe") and shutil.which("ffmpeg"):
        try:
            return _read_with_pydub(path)
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"ffmpeg: {_first_line(exc)}")
    what = "not audio, or a damaged audio file" if looks_like_audio(path) else "not audio (no known audio format)"
    raise CmError(
        f"{path}: {what} ({'; '.join(reasons)})", "check the file plays; convert it to WAV or FLAC if it does"
    ) from None


def load_audio(path: str | Path, *, sample_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode ``path`` to finite float32 in [-1, 1]: (frames,) when mono, else (channels, frames) (module docstring)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise CmError(f"{path}: audio file not found")
    if path.stat().st_size == 0:
        raise CmError(f"{path}: audio file is empty")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        samples = data.T
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        samples, rate = _decode_other(path, exc)
        samples = samples if samples.ndim == 2 else samples[None, :]
    else:
        problem = wav_truncation(path)
        if problem:
            raise CmError(f"{path}: {problem}", "the copy or download was cut short; fetch the file again")
    if samples.shape[-1] == 0:
        raise CmError(f"{path}: audio file has no samples")
    check_finite(samples, path)
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
    decoded whole and sliced. The window's samples are checked to be finite (the
    header's truncation check is left to the probe, to keep one open per crop).
    """
    import soundfile as sf

    path = Path(path)
    try:  # one open, no separate header probe: a window at another rate is discarded below
        data, rate = sf.read(str(path), start=int(start), frames=int(frames), dtype="float32", always_2d=True)
    except Exception:
        data, rate = None, None
    if data is not None and len(data) > 0 and int(rate) == int(sample_rate):
        return np.ascontiguousarray(to_mono(check_finite(data.T, path)), dtype=np.float32)
    wave, _ = load_audio(path, sample_rate=sample_rate)
    return wave[int(start) : int(start) + int(frames)]


def audio_duration(path: str | Path) -> float | None:
    """Seconds in ``path`` from its header (soundfile, else PyAV's container), without decoding; None if unknown."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate if info.samplerate else None
    except Exception:  # noqa: BLE001
        pass
    try:
        import av

        with av.open(str(path), mode="r") as container:
            if container.duration is not None:
                return float(container.duration) / 1_000_000  # AV_TIME_BASE
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is not None and stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    except Exception:  # noqa: BLE001
        return None
    return None


def _stream_blocks(path: Path, sample_rate: int, block: int):
    """Mono float32 blocks at ``sample_rate``: soundfile when the file is at that rate (exact samples), else
    PyAV decoding and resampling as it goes (memory bounded by a block, whatever the duration)."""
    import soundfile as sf

    if not path.is_file():
        raise CmError(f"{path}: audio file not found")
    problem = wav_truncation(path)
    if problem:
        raise CmError(f"{path}: {problem}", "the copy or download was cut short; fetch the file again")
    try:
        handle = sf.SoundFile(str(path))
    except Exception:  # noqa: BLE001
        handle = None
    if handle is not None and int(handle.samplerate) != int(sample_rate):
        handle.close()
        handle = None
    if handle is not None:
        with handle:
            while True:
                data = handle.read(block, dtype="float32", always_2d=True)
                if not len(data):
                    return
                yield to_mono(check_finite(data.T, path))
    try:
        import av
    except ImportError:
        raise CmError(f"{path}: cannot stream this file (not {sample_rate} Hz WAV/FLAC and PyAV is missing)") from None
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.audio:
                raise CmError(f"{path}: no audio stream in this file")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=int(sample_rate))
            for frame in container.decode(container.streams.audio[0]):
                frame.pts = None
                for out in resampler.resample(frame):
                    yield check_finite(out.to_ndarray().reshape(-1), path)
            for out in resampler.resample(None):
                yield check_finite(out.to_ndarray().reshape(-1), path)
    except CmError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CmError(f"{path}: not audio, or a damaged audio file (PyAV: {_first_line(exc)})") from None


def iter_audio_windows(path: str | Path, *, sample_rate: int, window: int, hop: int, block: int = 1 << 16):
    """(start sample, window) pairs over a file decoded as a stream, memory independent of its duration.

    Windows follow ``cm_cli.scoring.window_starts``: ``window`` samples every ``hop``, one more
    ending at the last sample when the stride leaves a tail, a file shorter than a window
    being one window of its own length. Non-finite samples anywhere refuse the file.
    """
    if not 0 < hop <= window:
        raise CmError(f"window of {window} samples with hop {hop}: need 0 < hop <= window")
    path = Path(path)
    buffer = np.zeros(0, np.float32)
    offset = 0  # absolute position of buffer[0]
    next_start = 0
    last_end = 0
    for chunk in _stream_blocks(path, int(sample_rate), int(block)):
        buffer = np.concatenate([buffer, np.asarray(chunk, np.float32)])
        while next_start + window <= offset + len(buffer):
            i = next_start - offset
            yield next_start, buffer[i : i + window].copy()
            last_end = next_start + window
            next_start += hop
        keep_from = min(next_start - offset, max(0, len(buffer) - window))  # enough for the next or the tail window
        buffer, offset = buffer[keep_from:], offset + keep_from
    total = offset + len(buffer)
    if total == 0:
        raise CmError(f"{path}: audio file has no samples")
    if last_end == 0:
        yield 0, buffer.copy()  # shorter than one window: one window of its own length
    elif last_end < total:
        yield total - window, buffer[len(buffer) - window :].copy()


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
        sf.write(
            str(tmp),
            data.T if data.ndim == 2 else data,
            int(sample_rate),
            format=fmt,
            subtype=subtype or ("PCM_16" if fmt in ("WAV", "FLAC") else None),
        )
    return clipped
