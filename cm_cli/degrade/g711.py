"""ITU-T G.711 mu-law and A-law companding in numpy, bit-exact to the standard's tables.

Implemented from the segment (chord/step) description of G.711: a sign bit, a
3-bit segment number and a 4-bit step within the segment, with the standard's
bit inversions (all bits for mu-law, even bits for A-law). Encoders take 16-bit
linear PCM, as the common reference implementations do (mu-law uses the top 14
bits, A-law the top 13).
"""

from __future__ import annotations

import numpy as np

from cm_cli.degrade.registry import Degradation, Param, StepContext, register_degradation

__all__ = ["lin2ulaw", "ulaw2lin", "lin2alaw", "alaw2lin", "mulaw_roundtrip", "alaw_roundtrip", "float_to_pcm16"]

_ULAW_BIAS = 0x21  # 33, in 14-bit units (132 in 16-bit units)
_ULAW_CLIP = 8159  # largest 14-bit magnitude before the bias


def _segment(magnitude: np.ndarray, first_end: int) -> np.ndarray:
    """Segment number 0..7 (8 = beyond the last) whose end ``(first_end + 1) * 2**k - 1`` bounds it."""
    ends = ((first_end + 1) << np.arange(8)) - 1
    return np.searchsorted(ends, magnitude, side="left")


def lin2ulaw(pcm: np.ndarray) -> np.ndarray:
    """16-bit linear PCM (int16) -> 8-bit mu-law codes (uint8)."""
    x = np.asarray(pcm, dtype=np.int32) >> 2  # 14-bit
    negative = x < 0
    magnitude = np.where(negative, -x, x)
    magnitude = np.minimum(magnitude, _ULAW_CLIP) + _ULAW_BIAS
    seg = _segment(magnitude, 0x3F)
    step = (magnitude >> np.minimum(seg + 1, 8)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | step)
    code = np.where(negative, code | 0x80, code)
    return (~code & 0xFF).astype(np.uint8)


def ulaw2lin(codes: np.ndarray) -> np.ndarray:
    """8-bit mu-law codes -> 16-bit linear PCM (int16)."""
    c = ~np.asarray(codes, dtype=np.int32) & 0xFF
    seg = (c >> 4) & 0x07
    magnitude = ((((c & 0x0F) << 3) + 0x84) << seg) - 0x84  # 16-bit units
    return np.where(c & 0x80, -magnitude, magnitude).astype(np.int16)


def lin2alaw(pcm: np.ndarray) -> np.ndarray:
    """16-bit linear PCM (int16) -> 8-bit A-law codes (uint8)."""
    x = np.asarray(pcm, dtype=np.int32) >> 3  # 13-bit
    negative = x < 0
    sign_mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -x - 1, x)
    seg = _segment(magnitude, 0x1F)
    step = np.where(seg < 2, (magnitude >> 1) & 0x0F, (magnitude >> np.maximum(seg, 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | step)
    return ((code ^ sign_mask) & 0xFF).astype(np.uint8)


def alaw2lin(codes: np.ndarray) -> np.ndarray:
    """8-bit A-law codes -> 16-bit linear PCM (int16)."""
    c = np.asarray(codes, dtype=np.int32) ^ 0x55
    step = (c & 0x0F) << 4
    seg = (c & 0x70) >> 4
    magnitude = np.where(seg == 0, step + 8, np.where(seg == 1, step + 0x108, (step + 0x108) << np.maximum(seg - 1, 0)))
    return np.where(c & 0x80, magnitude, -magnitude).astype(np.int16)


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def mulaw_roundtrip(samples: np.ndarray) -> np.ndarray:
    """Float audio through mu-law encode and decode (no resampling)."""
    return (ulaw2lin(lin2ulaw(float_to_pcm16(samples))).astype(np.float32) / 32768.0).astype(np.float32)


def alaw_roundtrip(samples: np.ndarray) -> np.ndarray:
    """Float audio through A-law encode and decode (no resampling)."""
    return (alaw2lin(lin2alaw(float_to_pcm16(samples))).astype(np.float32) / 32768.0).astype(np.float32)


# --------------------------------------------------------------------------- registry entries (mulaw, alaw)


def _g711_runner(law: str):
    def run(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
        if params["impl"] == "ffmpeg":
            from cm_cli.degrade.codecs import encode_decode

            return encode_decode(x, ctx.sr, f"{law}-ffmpeg", {})
        from cm_cli.degrade.channel import g711_numpy

        return g711_numpy(x, ctx.sr, law=law, rate=int(params["rate"])), {"impl": "numpy", "rate": params["rate"]}

    return run


for _law, _label in (("mulaw", "mu-law"), ("alaw", "A-law")):
    register_degradation(
        Degradation(
            _law,
            "codec",
            f"G.711 {_label} at 8 kHz (numpy, bit-exact; impl=ffmpeg uses pcm_{_law})",
            _g711_runner(_law),
            (
                Param("impl", str, "numpy", "numpy or ffmpeg", ("numpy", "ffmpeg")),
                Param("rate", int, 8000, "companding rate in Hz (0 = input rate; numpy only)", minimum=0),
            ),
            extra={"kbps": 64.0},
            codec_for=lambda params, law=_law: f"{law}-ffmpeg" if params.get("impl") == "ffmpeg" else None,
            bitrate=lambda params: 64.0 if params.get("rate") in (8000, None) else None,  # 8 bits at 8 kHz
        ),
        order=20,
    )
