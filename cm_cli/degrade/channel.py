"""Channel degradations: band-limiting filters, telephone band, rate reduction, G.711, gain, clipping, VAD trimming.

All take mono float32 and return the same length and rate, except ``trim_silence``
(which by design shortens the signal). Filters are Butterworth second-order sections;
``zero_phase`` (the default) runs them forwards and backwards so band-mask
interventions do not also shift the waveform in time.
"""

from __future__ import annotations

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.data.audio import resample
from cm_cli.degrade import g711
from cm_cli.degrade.registry import Degradation, Param, StepContext, register_degradation

__all__ = [
    "butter_filter",
    "telephony",
    "resample_roundtrip",
    "g711_numpy",
    "apply_gain",
    "hard_clip",
    "active_mask",
    "trim_silence",
]


def butter_filter(
    samples: np.ndarray,
    sr: int,
    *,
    kind: str,
    low: float | None = None,
    high: float | None = None,
    order: int = 8,
    zero_phase: bool = True,
) -> np.ndarray:
    """Butterworth lowpass (``high``), highpass (``low``), bandpass or bandstop (both)."""
    from scipy.signal import butter, sosfilt, sosfiltfilt

    nyquist = sr / 2
    for name, value in (("low", low), ("high", high)):
        if value is not None and not 0 < value < nyquist:
            raise CmError(f"{kind}: {name}={value:g} Hz must lie between 0 and the Nyquist frequency {nyquist:g} Hz")
    if kind in ("bandpass", "bandstop"):
        if low is None or high is None or low >= high:
            raise CmError(f"{kind}: needs low < high (got low={low}, high={high})")
        wn: float | list[float] = [low, high]
    elif kind == "lowpass":
        if high is None:
            raise CmError("lowpass: needs a cutoff, e.g. lowpass:cutoff=3400")
        wn = high
    elif kind == "highpass":
        if low is None:
            raise CmError("highpass: needs a cutoff, e.g. highpass:cutoff=300")
        wn = low
    else:
        raise CmError(f"unknown filter kind {kind!r}")
    if order < 1 or order > 20:
        raise CmError(f"{kind}: order={order} must be 1-20")
    sos = butter(int(order), wn, btype=kind, fs=sr, output="sos")
    x = np.asarray(samples, dtype=np.float64)
    if zero_phase:
        padlen = min(len(x) - 1, 3 * (2 * len(sos) + 1))
        y = sosfiltfilt(sos, x, padlen=max(padlen, 0)) if len(x) > 1 else x
    else:
        y = sosfilt(sos, x)
    return y.astype(np.float32)


def telephony(
    samples: np.ndarray, sr: int, *, low: float = 300.0, high: float = 3400.0, order: int = 4, zero_phase: bool = True
) -> np.ndarray:
    """Telephone band (300-3400 Hz) at the input rate."""
    high = min(high, 0.99 * sr / 2)
    return butter_filter(samples, sr, kind="bandpass", low=low, high=high, order=order, zero_phase=zero_phase)


def resample_roundtrip(samples: np.ndarray, sr: int, *, rate: int = 8000) -> np.ndarray:
    """Down to ``rate`` and back up (anti-aliased polyphase), trimmed/padded to the input length."""
    if rate <= 0:
        raise CmError(f"resample: rate={rate} must be positive")
    if rate >= sr:
        return np.asarray(samples, dtype=np.float32).copy()
    y = resample(resample(np.asarray(samples, dtype=np.float32), sr, rate), rate, sr)
    return _fit(y, len(samples))


def g711_numpy(samples: np.ndarray, sr: int, *, law: str, rate: int = 8000) -> np.ndarray:
    """G.711 companding at ``rate`` (resampled there and back; rate=0 keeps the input rate)."""
    roundtrip = g711.mulaw_roundtrip if law == "mulaw" else g711.alaw_roundtrip
    if rate and rate != sr:
        low = resample(np.asarray(samples, dtype=np.float32), sr, rate)
        return _fit(resample(roundtrip(low), rate, sr), len(samples))
    return roundtrip(samples)


def apply_gain(samples: np.ndarray, *, db: float) -> np.ndarray:
    """Scale by ``db`` decibels (no clipping here: the writer counts and reports clipping)."""
    return (np.asarray(samples, dtype=np.float32) * np.float32(10.0 ** (db / 20.0))).astype(np.float32)


def hard_clip(samples: np.ndarray, *, level: float = 0.5) -> np.ndarray:
    """Saturate at +-``level`` (full scale is 1.0)."""
    if not 0 < level <= 1:
        raise CmError(f"clip: level={level} must be in (0, 1]")
    return np.clip(samples, -level, level).astype(np.float32)


def active_mask(
    samples: np.ndarray, sr: int, *, frame_ms: float = 25.0, threshold_db: float = 40.0, floor_db: float = -60.0
) -> np.ndarray:
    """Energy VAD per sample: frames within ``threshold_db`` of the loudest frame and above ``floor_db`` dBFS."""
    x = np.asarray(samples, dtype=np.float64)
    frame = max(1, int(sr * frame_ms / 1000))
    n_frames = max(1, int(np.ceil(len(x) / frame)))
    padded = np.zeros(n_frames * frame)
    padded[: len(x)] = x
    energy = 10 * np.log10(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1) + 1e-12)
    active = (energy > energy.max() - threshold_db) & (energy > floor_db)
    return np.repeat(active, frame)[: len(x)]


def trim_silence(samples: np.ndarray, sr: int, *, threshold_db: float = 40.0, margin_ms: float = 50.0) -> np.ndarray:
    """Cut leading and trailing non-speech (energy VAD), keeping ``margin_ms``; CHANGES THE LENGTH."""
    mask = active_mask(samples, sr, threshold_db=threshold_db)
    if not mask.any():
        return np.asarray(samples, dtype=np.float32).copy()
    idx = np.flatnonzero(mask)
    margin = int(sr * margin_ms / 1000)
    start, stop = max(0, idx[0] - margin), min(len(samples), idx[-1] + 1 + margin)
    return np.asarray(samples[start:stop], dtype=np.float32).copy()


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if len(y) >= n:
        return y[:n].copy()
    return np.concatenate([y, np.zeros(n - len(y), np.float32)])


# --------------------------------------------------------------------------- registry entries (channel filters)


def _zero_phase(params: dict) -> bool:
    return params.get("phase", "zero") == "zero"


def _telephony(x, ctx: StepContext, params: dict):
    return telephony(
        x, ctx.sr, low=params["low"], high=params["high"], order=params["order"], zero_phase=_zero_phase(params)
    ), {}


def _filter(kind: str):
    def run(x, ctx: StepContext, params: dict):
        low = params.get("low", params.get("cutoff") if kind == "highpass" else None)
        high = params.get("high", params.get("cutoff") if kind == "lowpass" else None)
        return butter_filter(
            x, ctx.sr, kind=kind, low=low, high=high, order=params["order"], zero_phase=_zero_phase(params)
        ), {}

    return run


def _resample(x, ctx: StepContext, params: dict):
    return resample_roundtrip(x, ctx.sr, rate=params["rate"]), {}


def _gain(x, ctx: StepContext, params: dict):
    return apply_gain(x, db=params["db"]), {}


def _clip(x, ctx: StepContext, params: dict):
    y = hard_clip(x, level=params["level"])
    return y, {"clipped_samples": int(np.count_nonzero(np.abs(x) > params["level"]))}


def _trim(x, ctx: StepContext, params: dict):
    y = trim_silence(x, ctx.sr, threshold_db=params["threshold_db"], margin_ms=params["margin_ms"])
    return y, {"trimmed_samples": int(len(x) - len(y))}


_PHASE = Param("phase", str, "zero", "zero (forward-backward, no delay) or causal", ("zero", "causal"))
_ORDER = Param("order", int, 8, "Butterworth order", minimum=1, maximum=20)
_CUTOFF = Param("cutoff", float, None, "cut-off frequency, Hz", minimum=0, exclusive_minimum=True)
_BAND = (
    Param("low", float, None, "lower edge, Hz", minimum=0, exclusive_minimum=True),
    Param("high", float, None, "upper edge, Hz", minimum=0, exclusive_minimum=True),
    _ORDER,
    _PHASE,
)
register_degradation(
    Degradation(
        "telephony",
        "channel",
        "telephone band-pass (Butterworth)",
        _telephony,
        (
            Param("low", float, 300.0, "lower edge, Hz", minimum=0, exclusive_minimum=True),
            Param("high", float, 3400.0, "upper edge, Hz", minimum=0, exclusive_minimum=True),
            Param("order", int, 4, "Butterworth order", minimum=1, maximum=20),
            _PHASE,
        ),
    ),
    order=50,
)
register_degradation(
    Degradation("lowpass", "channel", "low-pass filter (Butterworth)", _filter("lowpass"), (_CUTOFF, _ORDER, _PHASE)),
    order=50,
)
register_degradation(
    Degradation(
        "highpass", "channel", "high-pass filter (Butterworth)", _filter("highpass"), (_CUTOFF, _ORDER, _PHASE)
    ),
    order=50,
)
register_degradation(
    Degradation("bandpass", "channel", "band-pass filter (Butterworth)", _filter("bandpass"), _BAND), order=50
)
register_degradation(
    Degradation(
        "bandstop", "channel", "band-stop filter (Butterworth), for band-mask interventions", _filter("bandstop"), _BAND
    ),
    order=50,
)
register_degradation(
    Degradation(
        "resample",
        "channel",
        "down-sample to rate and back (anti-aliased)",
        _resample,
        (Param("rate", int, 8000, "intermediate rate, Hz", minimum=1000),),
    ),
    order=50,
)
register_degradation(
    Degradation(
        "gain",
        "channel",
        "gain in dB (clipping is counted when written)",
        _gain,
        (Param("db", float, 0.0, "gain, dB"),),
    ),
    order=50,
)
register_degradation(
    Degradation(
        "clip",
        "channel",
        "hard clipping at +-level (full scale 1.0)",
        _clip,
        (Param("level", float, 0.5, "clip level", minimum=0, exclusive_minimum=True, maximum=1),),
    ),
    order=50,
)
register_degradation(
    Degradation(
        "trim",
        "channel",
        "cut leading/trailing silence (energy VAD); CHANGES LENGTH",
        _trim,
        (
            Param("threshold_db", float, 40.0, "frames this far below the loudest are silence", minimum=0),
            Param("margin_ms", float, 50.0, "speech margin kept, ms", minimum=0),
        ),
        changes_length=True,
    ),
    order=50,
)
