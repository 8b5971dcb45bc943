"""Device and channel effects for ASVspoof 5's C11: microphone and loudspeaker responses, analogue line.

The corpus names these effects without publishing their responses, so each model
here is a small, documented parametric response (Butterworth band edges, one
RBJ peaking resonance, and for loudspeakers a soft saturation), filtered causally
as a real device is. The parameter values of each named model are in ``MIC_MODELS``
and ``SPEAKER_MODELS`` and in docs/degrade.md. Bluetooth (SBC/mSBC) runs through
ffmpeg's ``sbc`` encoder in codecs.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.degrade.registry import Degradation, Param, StepContext, register_degradation

__all__ = ["DeviceResponse", "MIC_MODELS", "SPEAKER_MODELS", "device_response", "loudspeaker", "mains_hum", "cable"]


@dataclass(frozen=True)
class DeviceResponse:
    highpass_hz: float
    lowpass_hz: float
    peak_hz: float
    peak_db: float
    peak_q: float
    order: int = 2
    drive: float = 0.0  # soft-saturation drive (0 = linear)


MIC_MODELS: dict[str, DeviceResponse] = {
    "smartphone": DeviceResponse(100.0, 7500.0, 3000.0, 3.0, 1.0),
    "headset": DeviceResponse(150.0, 6000.0, 2000.0, 4.0, 1.0),
    "laptop": DeviceResponse(300.0, 5000.0, 4000.0, 6.0, 2.0),
}
SPEAKER_MODELS: dict[str, DeviceResponse] = {
    "small": DeviceResponse(400.0, 6500.0, 1000.0, 6.0, 1.5, order=4, drive=3.0),
    "tablet": DeviceResponse(250.0, 7000.0, 1500.0, 4.0, 1.0, order=4, drive=1.5),
}


def _peaking_sos(sr: int, f0: float, gain_db: float, q: float) -> np.ndarray:
    """RBJ audio-EQ-cookbook peaking filter as one second-order section."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def _response_sos(sr: int, response: DeviceResponse) -> np.ndarray:
    from scipy.signal import butter

    nyquist = sr / 2.0
    sections = []
    if 0 < response.highpass_hz < 0.95 * nyquist:
        sections.append(butter(response.order, response.highpass_hz, btype="highpass", fs=sr, output="sos"))
    if response.lowpass_hz < 0.95 * nyquist:
        sections.append(butter(response.order, response.lowpass_hz, btype="lowpass", fs=sr, output="sos"))
    if response.peak_db and response.peak_hz < 0.95 * nyquist:
        sections.append(_peaking_sos(sr, response.peak_hz, response.peak_db, response.peak_q))
    return np.concatenate(sections) if sections else np.zeros((0, 6))


def device_response(samples: np.ndarray, sr: int, response: DeviceResponse) -> np.ndarray:
    """Filter through the response (causal, as a device is), then saturate softly if it has drive."""
    from scipy.signal import sosfilt

    x = np.asarray(samples, dtype=np.float64)
    sos = _response_sos(int(sr), response)
    y = sosfilt(sos, x) if len(sos) else x.copy()
    if response.drive > 0:
        y = np.tanh(response.drive * y) / response.drive  # unity gain for small signals
    return y.astype(np.float32)


def _model(table: dict, kind: str, name: str) -> DeviceResponse:
    if name not in table:
        raise CmError(f"{kind}: unknown model {name!r}", f"models: {', '.join(table)}")
    return table[name]


def loudspeaker(samples: np.ndarray, sr: int, model: str) -> np.ndarray:
    return device_response(samples, sr, _model(SPEAKER_MODELS, "speaker", model))


def mains_hum(n: int, sr: int, hz: float, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: the fundamental and its 2nd and 3rd harmonics (1, 1/2, 1/4), unit RMS, random phases."""
    t = np.arange(n) / float(sr)
    hum = sum(
        (0.5**k) * np.sin(2 * np.pi * (k + 1) * hz * t + rng.uniform(0, 2 * np.pi))
        for k in range(3)
        if (k + 1) * hz < sr / 2
    )
    hum = np.asarray(hum, dtype=np.float64)
    return (hum / (np.sqrt(np.mean(hum**2)) + 1e-12)).astype(np.float32)


def cable(
    samples: np.ndarray, sr: int, *, hum_hz: float, hum_db: float, cutoff: float | None, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Analogue line: mains hum ``hum_db`` below active speech, then a first-order RC roll-off at ``cutoff``."""
    from scipy.signal import butter, sosfilt

    from cm_cli.degrade.noise import mix_at_snr

    x = np.asarray(samples, dtype=np.float32)
    y, info = mix_at_snr(x, sr, mains_hum(len(x), sr, hum_hz, rng), -float(hum_db))
    if cutoff and cutoff < 0.95 * sr / 2:
        y = sosfilt(butter(1, cutoff, btype="lowpass", fs=sr, output="sos"), y.astype(np.float64))
    return np.asarray(y, dtype=np.float32), {**info, "hum_hz": hum_hz, "hum_db": hum_db}


# --------------------------------------------------------------------------- registry entries (devices, C11)


def _mic(x, ctx: StepContext, params: dict):
    return device_response(x, ctx.sr, MIC_MODELS[params["model"]]), {"model": params["model"]}


def _speaker(x, ctx: StepContext, params: dict):
    return loudspeaker(x, ctx.sr, params["model"]), {"model": params["model"]}


def _bluetooth(x, ctx: StepContext, params: dict):
    from cm_cli.degrade.codecs import encode_decode

    sbc = {"mode": params["mode"]}
    if params["mode"] == "sbc":
        sbc["kbps"] = params["kbps"]
    return encode_decode(x, ctx.sr, "sbc", sbc)


def _bluetooth_kbps(params: dict) -> float:
    from cm_cli.degrade.codecs import MSBC_KBPS

    return MSBC_KBPS if params["mode"] == "msbc" else float(params["kbps"])


def _cable(x, ctx: StepContext, params: dict):
    return cable(
        x, ctx.sr, hum_hz=params["hum_hz"], hum_db=params["hum_db"], cutoff=params.get("cutoff"), rng=ctx.rng()
    )


register_degradation(
    Degradation(
        "mic",
        "channel",
        "microphone response (band edges + resonance, causal); C11",
        _mic,
        (Param("model", str, "smartphone", "device model", tuple(MIC_MODELS)),),
    ),
    order=40,
)
register_degradation(
    Degradation(
        "speaker",
        "channel",
        "loudspeaker playback (band edges, resonance, soft saturation); C11",
        _speaker,
        (Param("model", str, "small", "loudspeaker model", tuple(SPEAKER_MODELS)),),
    ),
    order=40,
)
register_degradation(
    Degradation(
        "bluetooth",
        "codec",
        "Bluetooth SBC through ffmpeg: mode=msbc (HFP wideband speech) or sbc (A2DP); C11",
        _bluetooth,
        (
            Param("mode", str, "msbc", "msbc (60.8 kbps, 16 kHz mono) or sbc (kbps)", ("msbc", "sbc")),
            Param("kbps", float, 128.0, "bitrate for mode=sbc, kbit/s", minimum=16, maximum=512),
        ),
        codec="sbc",
        bitrate=_bluetooth_kbps,
    ),
    order=40,
)
register_degradation(
    Degradation(
        "cable",
        "channel",
        "analogue line: mains hum below speech and an RC roll-off; C11",
        _cable,
        (
            Param("hum_hz", float, 50.0, "mains frequency, Hz", minimum=0, exclusive_minimum=True),
            Param("hum_db", float, -30.0, "hum level relative to active speech, dB"),
            Param(
                "cutoff",
                float,
                None,
                "first-order roll-off, Hz (none by default)",
                minimum=0,
                exclusive_minimum=True,
            ),
        ),
    ),
    order=40,
)
