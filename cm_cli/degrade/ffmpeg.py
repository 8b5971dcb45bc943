"""Finding codec providers (ffmpeg binaries, or PyAV in-process), their encoders, and running encode|decode pipes.

Two ffmpeg builds usually coexist (the system one and the one bundled by
imageio-ffmpeg) and neither has every speech codec, so a codec is served by the
first provider whose encoder list names its encoder: a binary the user pinned
(``--ffmpeg``, ``CM_FFMPEG``), then PyAV's bundled libavcodec (no process start-up),
then the binaries on PATH and imageio-ffmpeg's. Audio crosses the pipes as raw
little-endian float32, so no temporary files are written.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from cm_cli.core.errors import CmError

__all__ = [
    "FfmpegBinary",
    "candidate_binaries",
    "encoders_of",
    "find_encoder",
    "pyav_provider",
    "providers",
    "set_preferred_ffmpeg",
    "run_codec_pipe",
]

_PREFERRED: list[str] = []


PINNED_ORIGINS = ("--ffmpeg", "CM_FFMPEG")


@dataclass(frozen=True)
class FfmpegBinary:
    """One provider of ffmpeg codecs; for PyAV ``path`` is its label, e.g. 'pyav 18.1.0 (FFmpeg 8.1.2)'."""

    path: str
    origin: str  # "--ffmpeg", "CM_FFMPEG", "pyav", "PATH", "imageio-ffmpeg"

    @property
    def in_process(self) -> bool:
        return self.origin == "pyav"


def set_preferred_ffmpeg(path: str | os.PathLike | None) -> None:
    """Put an explicit binary (``--ffmpeg``) ahead of every other; None clears it."""
    _PREFERRED.clear()
    if path:
        resolved = shutil.which(str(path)) or str(path)
        if not Path(resolved).is_file():
            raise CmError(f"ffmpeg {path}: no such executable", "give the path of an ffmpeg binary", option="ffmpeg")
        _PREFERRED.append(resolved)


def candidate_binaries() -> list[FfmpegBinary]:
    """Every ffmpeg we can use, in order of preference, without duplicates."""
    found: list[FfmpegBinary] = []
    for path in _PREFERRED:
        found.append(FfmpegBinary(path, "--ffmpeg"))
    env = os.environ.get("CM_FFMPEG")
    if env:
        resolved = shutil.which(env) or env
        if Path(resolved).is_file():
            found.append(FfmpegBinary(resolved, "CM_FFMPEG"))
    on_path = shutil.which("ffmpeg")
    if on_path:
        found.append(FfmpegBinary(on_path, "PATH"))
    try:
        import imageio_ffmpeg

        bundled = imageio_ffmpeg.get_ffmpeg_exe()
        if bundled and Path(bundled).is_file():
            found.append(FfmpegBinary(bundled, "imageio-ffmpeg"))
    except Exception:  # not installed, or its binary is missing
        pass
    unique: list[FfmpegBinary] = []
    seen: set[str] = set()
    for binary in found:
        key = os.path.realpath(binary.path)
        if key not in seen:
            seen.add(key)
            unique.append(binary)
    return unique


@functools.lru_cache(maxsize=None)
def encoders_of(path: str) -> frozenset[str]:
    """Audio encoder names listed by ``ffmpeg -hide_banner -encoders`` (probed once per binary)."""
    try:
        out = subprocess.run([path, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    started = False
    for line in out.stdout.splitlines():
        if line.strip().startswith("------"):
            started = True
            continue
        fields = line.split()
        if started and len(fields) >= 2 and fields[0].startswith("A"):
            names.add(fields[1])
    return frozenset(names)


def pyav_provider() -> FfmpegBinary | None:
    """PyAV as a provider when ``av`` imports (its label names the FFmpeg it bundles)."""
    from cm_cli.degrade.pyav import PYAV_ORIGIN, pyav_label

    label = pyav_label()
    return FfmpegBinary(label, PYAV_ORIGIN) if label else None


def providers() -> list[FfmpegBinary]:
    """Every codec provider in order of preference: pinned binaries, PyAV, then the other binaries."""
    binaries = candidate_binaries()
    in_process = pyav_provider()
    return [
        *(b for b in binaries if b.origin in PINNED_ORIGINS),
        *([in_process] if in_process else []),
        *(b for b in binaries if b.origin not in PINNED_ORIGINS),
    ]


def find_encoder(encoders: Sequence[str]) -> tuple[FfmpegBinary, str] | None:
    """The first provider that has any of ``encoders`` (in the codec's order of preference).

    A pinned binary (``--ffmpeg``, ``CM_FFMPEG``) is asked first: an explicit choice wins over
    PyAV; PyAV comes before the binaries found on PATH or bundled by imageio-ffmpeg.
    """
    for provider in providers():
        if provider.in_process:
            from cm_cli.degrade.pyav import pyav_encoders

            available = pyav_encoders()
        else:
            available = encoders_of(provider.path)
        for encoder in encoders:
            if encoder in available:
                return provider, encoder
    return None


def _first_error_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"


def run_codec_pipe(
    binary: str,
    samples: np.ndarray,
    sample_rate: int,
    *,
    encode_args: Sequence[str],
    decode_input_args: Sequence[str],
    timeout: float = 600.0,
) -> np.ndarray:
    """Encode ``samples`` (mono float32) with one ffmpeg and decode the stream with another.

    ``encode_args`` go after the raw-float input and must end with the muxer (``-f fmt``);
    ``decode_input_args`` describe the stream for the decoder (e.g. ``-f mulaw -ar 8000``).
    The decoded audio comes back as mono float32 at ``sample_rate``.
    """
    common = [binary, "-hide_banner", "-nostats", "-loglevel", "error"]
    enc_cmd = [*common, "-f", "f32le", "-ar", str(int(sample_rate)), "-ac", "1", "-i", "pipe:0", *encode_args, "pipe:1"]
    dec_cmd = [
        *common,
        *decode_input_args,
        "-i",
        "pipe:0",
        "-f",
        "f32le",
        "-ac",
        "1",
        "-ar",
        str(int(sample_rate)),
        "pipe:1",
    ]
    payload = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    try:
        enc = subprocess.Popen(enc_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        dec = subprocess.Popen(dec_cmd, stdin=enc.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise CmError(f"cannot run {binary}: {exc.strerror or exc}") from None
    enc.stdout.close()  # the decoder owns the read end now
    enc_err: list[bytes] = []

    def feed() -> None:
        try:
            enc.stdin.write(payload)
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                enc.stdin.close()
            except OSError:
                pass
        enc_err.append(enc.stderr.read())

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        decoded, dec_err = dec.communicate(timeout=timeout)
        feeder.join(timeout)
        enc.wait(timeout)
    except subprocess.TimeoutExpired:
        enc.kill()
        dec.kill()
        raise CmError(f"ffmpeg did not finish within {timeout:.0f} s") from None
    if enc.returncode != 0:
        raise CmError(f"ffmpeg encoding failed ({' '.join(encode_args)}): {_first_error_line(b''.join(enc_err))}")
    if dec.returncode != 0:
        raise CmError(f"ffmpeg decoding failed ({' '.join(decode_input_args)}): {_first_error_line(dec_err)}")
    usable = len(decoded) - len(decoded) % 4
    return np.frombuffer(decoded[:usable], dtype="<f4").astype(np.float32)
