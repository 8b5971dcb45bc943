"""In-process encode|decode through PyAV, so a coded utterance costs no process start-up.

Two ffmpeg processes per utterance cost ~0.1 CPU-second before any audio is coded, which
dominates on-the-fly augmentation. PyAV's wheel bundles libavcodec/libavformat with the
common speech encoders; this module runs the same ffmpeg command lines (the codec's
``-ar/-ac/-c:a/-b:a/extra/-f`` arguments) through that library: ``translate_encode``
and ``translate_decode`` map the argument lists generically, and ``run_codec_inprocess``
keeps the exact contract of ``ffmpeg.run_codec_pipe`` (mono float32 in and out at the
input rate, resampled by libswresample with its defaults as ``-ar`` does).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np

from cm_cli.core.errors import CmError

__all__ = [
    "PYAV_ORIGIN",
    "EncodePlan",
    "DecodePlan",
    "pyav_label",
    "pyav_encoders",
    "translate_encode",
    "translate_decode",
    "encode_inprocess",
    "run_codec_inprocess",
]

PYAV_ORIGIN = "pyav"
# encoder sample formats in the order libavfilter's negotiation prefers them for float32 input
_FORMAT_PREFERENCE = ("flt", "fltp", "dbl", "dblp", "s32", "s32p", "s16", "s16p")


@dataclass(frozen=True)
class EncodePlan:
    """An ffmpeg output argument list as library calls: encoder, rate, channels, muxer and their options."""

    encoder: str
    rate: int
    channels: int
    muxer: str
    options: dict = field(default_factory=dict)  # AVOptions, routed to the codec or the muxer when opening


@dataclass(frozen=True)
class DecodePlan:
    """An ffmpeg input argument list (``-f fmt -ar R -ac N``) as a demuxer name and its options."""

    demuxer: str | None
    options: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _av():
    """The av module, or None where it is missing, broken or older than 18.1 (cm then uses ffmpeg binaries)."""
    try:
        import av
        from av.codec.context import CodecContext
    except Exception:  # noqa: BLE001 - not installed, or a wheel whose libraries fail to load
        return None
    # PyAV 18.1 added supported_options, which routes each AVOption to the codec or the muxer as ffmpeg does
    return av if hasattr(CodecContext, "supported_options") else None


@functools.lru_cache(maxsize=1)
def pyav_label() -> str | None:
    """'pyav 18.1.0 (FFmpeg 8.1.2)': names the provider in provenance and in cache keys; None without av."""
    av = _av()
    if av is None:
        return None
    return f"pyav {av.__version__} (FFmpeg {getattr(av, 'ffmpeg_version_info', 'unknown')})"


@functools.lru_cache(maxsize=1)
def pyav_encoders() -> frozenset[str]:
    """Audio encoders PyAV's libavcodec has (empty without av)."""
    av = _av()
    if av is None:
        return frozenset()
    found = set()
    for name in av.codecs_available:
        try:
            codec = av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - a decoder-only name
            continue
        if codec.type == "audio":
            found.add(codec.name)
    return frozenset(found)


def _pairs(args: Sequence[str], what: str) -> list[tuple[str, str]]:
    args = [str(a) for a in args]
    if len(args) % 2 or any(not a.startswith("-") for a in args[::2]):
        raise CmError(f"cannot run ffmpeg {what} arguments in-process: {' '.join(args)}")
    return [(flag[1:].split(":")[0], value) for flag, value in zip(args[::2], args[1::2])]


def translate_encode(args: Sequence[str]) -> EncodePlan:
    """Map ffmpeg output arguments (as codecs._encode_args builds them) to an EncodePlan.

    ``-ar``, ``-ac``, ``-c:a`` and ``-f`` are ffmpeg's own; every other ``-name value`` is an
    AVOption (``-b:a`` is the codec's ``b``), as ffmpeg treats it.
    """
    encoder = muxer = None
    rate = channels = None
    options: dict = {}
    for name, value in _pairs(args, "output"):
        if name == "ar":
            rate = int(value)
        elif name == "ac":
            channels = int(value)
        elif name in ("c", "codec", "acodec"):
            encoder = value
        elif name == "f":
            muxer = value
        else:
            options[name] = value
    if encoder is None or muxer is None or rate is None:
        raise CmError(f"ffmpeg output arguments lack an encoder, rate or muxer: {' '.join(map(str, args))}")
    return EncodePlan(encoder, rate, channels or 1, muxer, options)


def translate_decode(args: Sequence[str]) -> DecodePlan:
    """Map ffmpeg input arguments (``-f fmt``, ``-ar R``, ``-ac N``) to a demuxer and its options."""
    demuxer = None
    options: dict = {}
    for name, value in _pairs(args, "input"):
        if name == "f":
            demuxer = value
        elif name == "ar":
            options["sample_rate"] = value
        elif name == "ac":
            options["ch_layout"] = f"{int(value)}C"  # what ffmpeg's -ac sets on a demuxer
        else:
            options[name] = value
    return DecodePlan(demuxer, options)


def _sample_format(codec) -> str:
    names = [f.name for f in (codec.audio_formats or ())]
    return next((f for f in _FORMAT_PREFERENCE if f in names), names[0] if names else "flt")


def _resampler(av, fmt: str, layout: str, rate: int, frame_size: int | None):
    return av.AudioResampler(format=fmt, layout=layout, rate=rate, frame_size=frame_size or None)


def _input_frame(av, samples: np.ndarray, sr: int):
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1), format="flt", layout="mono"
    )
    frame.sample_rate = int(sr)
    frame.pts = 0
    frame.time_base = Fraction(1, int(sr))
    return frame


def encode_inprocess(samples: np.ndarray, sample_rate: int, plan: EncodePlan) -> bytes:
    """The muxed stream ffmpeg would write for ``-f f32le -ar sr -ac 1 -i - <plan> -``."""
    av = _av()
    if av is None:
        raise CmError("PyAV (package av) is not importable", "pip install av, or point CM_FFMPEG at an ffmpeg binary")
    layout = "mono" if plan.channels == 1 else f"{plan.channels}c"
    buffer = io.BytesIO()
    try:
        with av.open(buffer, mode="w", format=plan.muxer) as container:
            stream = container.add_stream(plan.encoder, rate=plan.rate)
            context = stream.codec_context
            known = {o.name for o in (*context.supported_options.generic, *context.supported_options.private)}
            context.options = {k: v for k, v in plan.options.items() if k in known}
            container.options.update({k: v for k, v in plan.options.items() if k not in known})
            context.layout = layout
            context.format = _sample_format(context.codec)
            context.time_base = Fraction(1, plan.rate)
            context.open()  # so frame_size is known before frames are cut
            resampler = _resampler(av, context.format.name, layout, plan.rate, context.frame_size)
            written = 0
            for source in (_input_frame(av, samples, sample_rate), None):
                for frame in resampler.resample(source):
                    frame.pts = written
                    frame.time_base = context.time_base
                    written += frame.samples
                    container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    except CmError:
        raise
    except Exception as exc:  # noqa: BLE001 - libav errors carry the reason in their message
        raise CmError(f"PyAV encoding failed ({plan.encoder}, {plan.muxer}, {plan.options}): {exc}") from None
    return buffer.getvalue()


def _decode(data: bytes, sample_rate: int, plan: DecodePlan, muxer: str) -> np.ndarray:
    av = _av()
    chunks: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(data), mode="r", format=plan.demuxer, options=dict(plan.options)) as container:
            if not container.streams.audio:
                return np.zeros(0, np.float32)
            resampler = _resampler(av, "flt", "mono", int(sample_rate), None)
            for frame in container.decode(audio=0):
                frame.pts = None  # ffmpeg -f f32le writes the samples as decoded, without timestamp gaps
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except Exception as exc:  # noqa: BLE001
        raise CmError(f"PyAV decoding failed ({plan.demuxer or muxer}): {exc}") from None
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def run_codec_inprocess(
    samples: np.ndarray, sample_rate: int, *, encode_args: Sequence[str], decode_input_args: Sequence[str]
) -> np.ndarray:
    """``ffmpeg.run_codec_pipe`` without processes: encode to an in-memory container, decode it back."""
    plan = translate_encode(encode_args)
    data = encode_inprocess(samples, sample_rate, plan)
    decode_plan = translate_decode(decode_input_args)
    if decode_plan.demuxer is None:
        decode_plan = DecodePlan(None, decode_plan.options)  # probed, as ffmpeg does for a muxed stream on a pipe
    return _decode(data, sample_rate, decode_plan, plan.muxer)
