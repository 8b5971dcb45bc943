"""Transmission codecs through ffmpeg, aligned sample-for-sample with their input.

Each codec encodes at its native rate (ffmpeg resamples in and out) and is decoded
back to the input rate, by an ffmpeg binary or in-process by PyAV (ffmpeg.find_encoder
picks the provider). Encoders and decoders add delay (priming, filter
latency); it is measured once per provider, codec, parameters and rate by
cross-correlating a probe signal with its coded copy, cached, and removed, then the
output is trimmed or zero-padded to exactly the input length.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.degrade.ffmpeg import FfmpegBinary, find_encoder, run_codec_pipe
from cm_cli.degrade.registry import Degradation, Param, StepContext, register_degradation

__all__ = [
    "CodecDef",
    "CODECS",
    "codec_available",
    "codec_provider",
    "encode_decode",
    "codec_delay",
    "probe_signal",
    "encoded_kbps",
    "MSBC_KBPS",
]

MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
AMR_NB_KBPS = (4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2)
AMR_WB_KBPS = (6.6, 8.85, 12.65, 14.25, 15.85, 18.25, 19.85, 23.05, 23.85)
MAX_DELAY_S = 0.25
# mSBC (Bluetooth HFP 1.6 wideband speech): one 57-byte frame per 120 samples at 16 kHz
MSBC_KBPS = 57 * 8 * 16000 / 120 / 1000


@dataclass(frozen=True)
class CodecDef:
    """How to run one codec: encoders in preference order, muxer, native rate, bitrate range."""

    name: str
    encoders: tuple[str, ...]
    muxer: str
    description: str
    rate: Callable[[int, dict], int]
    default_kbps: float | None = None
    kbps_range: tuple[float, float] | None = None
    extra: Callable[[dict], list[str]] = field(default=lambda params: [])
    decode_args: Callable[[int], list[str]] = field(default=lambda rate: [])
    bands: tuple[str, ...] = ()

    @property
    def encoder_hint(self) -> str:
        return " or ".join(self.encoders)


def _fixed(rate: int) -> Callable[[int, dict], int]:
    return lambda sr, params: rate


def _mp3_rate(sr: int, params: dict) -> int:
    kbps = float(params.get("kbps", 64))
    # MPEG-2 layer III (rates below 32 kHz) stops at 160 kbps; higher bitrates need MPEG-1 rates
    if kbps > 160:
        return sr if sr in (32000, 44100, 48000) else 44100
    return sr if sr in MP3_RATES else 16000


AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def _aac_ceiling_kbps(rate: int) -> float:
    """Most an AAC-LC mono frame may carry (6144 bits per 1024 samples), less a quarter encoders keep in reserve."""
    return 0.75 * 6144 * rate / 1024 / 1000


def _aac_rate(sr: int, params: dict) -> int:
    # at 16 kHz AAC-LC mono cannot carry more than 96 kbps (ffmpeg's encoder stops near 78): a bitrate the
    # input rate cannot carry is coded at the lowest standard rate that can, so the file has the bitrate asked for
    rate = sr if sr in AAC_RATES else 16000
    kbps = float(params.get("kbps", 64))
    if kbps > _aac_ceiling_kbps(rate):
        rate = next((r for r in AAC_RATES if r > rate and kbps <= _aac_ceiling_kbps(r)), AAC_RATES[-1])
    return rate


def _band_rate(params: dict) -> int:
    return 8000 if params.get("band", "wb") == "nb" else 16000


def _opus_extra(params: dict) -> list[str]:
    return ["-cutoff", "4000" if params.get("band", "wb") == "nb" else "8000", "-application", "voip"]


def _sbc_extra(params: dict) -> list[str]:
    return ["-msbc", "1"] if params.get("mode", "msbc") == "msbc" else []


def _speex_extra(params: dict) -> list[str]:
    if "kbps" in params:
        return []
    return ["-cbr_quality", str(int(params.get("quality", 8)))]


CODECS: dict[str, CodecDef] = {
    c.name: c
    for c in (
        CodecDef("mp3", ("libmp3lame", "libshine"), "mp3", "MPEG-1/2 Layer III (LAME), CBR", _mp3_rate, 64, (8, 320)),
        CodecDef("aac", ("aac", "libfdk_aac"), "adts", "AAC-LC in an ADTS stream", _aac_rate, 64, (8, 320)),
        CodecDef(
            "m4a",
            ("aac", "libfdk_aac"),
            "mp4",
            "AAC-LC in an MPEG-4 (.m4a) container",
            _aac_rate,
            64,
            (8, 320),
            extra=lambda params: ["-movflags", "frag_keyframe+empty_moov"],
        ),
        CodecDef(
            "opus",
            ("libopus",),
            "ogg",
            "Opus (VoIP mode), band=wb (16 kHz) or nb (8 kHz)",
            lambda sr, p: _band_rate(p),
            24,
            (4, 256),
            extra=_opus_extra,
            bands=("wb", "nb"),
        ),
        CodecDef("vorbis", ("libvorbis",), "ogg", "Ogg Vorbis, ABR", _fixed(16000), 32, (16, 256)),
        CodecDef(
            "speex",
            ("libspeex",),
            "ogg",
            "Speex CELP, band=wb (16 kHz) or nb (8 kHz); kbps or quality 0-10",
            lambda sr, p: _band_rate(p),
            None,
            (2, 45),
            extra=_speex_extra,
            bands=("wb", "nb"),
        ),
        CodecDef(
            "amr-nb",
            ("libopencore_amrnb",),
            "amr",
            "AMR narrowband (8 kHz), modes 4.75-12.2 kbps",
            _fixed(8000),
            12.2,
            (4.75, 12.2),
        ),
        CodecDef(
            "amr-wb",
            ("libvo_amrwbenc",),
            "amr",
            "AMR wideband (16 kHz), modes 6.6-23.85 kbps",
            _fixed(16000),
            23.85,
            (6.6, 23.85),
        ),
        CodecDef(
            "sbc",
            ("sbc",),
            "sbc",
            "Bluetooth SBC at 16 kHz mono: mode=msbc (HFP wideband speech, 60.8 kbps) or sbc (A2DP, kbps)",
            _fixed(16000),
            None,
            (16, 512),
            extra=_sbc_extra,
            decode_args=lambda rate: ["-f", "sbc"],
        ),
        CodecDef(
            "g722",
            ("g722",),
            "g722",
            "G.722 sub-band ADPCM, 64 kbps (16 kHz)",
            _fixed(16000),
            decode_args=lambda rate: ["-f", "g722"],
        ),
        CodecDef(
            "gsm",
            ("libgsm",),
            "gsm",
            "GSM 06.10 full rate, 13 kbps (8 kHz)",
            _fixed(8000),
            decode_args=lambda rate: ["-f", "gsm", "-ar", "8000", "-ac", "1"],
        ),
        # narrowband speech codecs that PyAV's bundled FFmpeg encodes natively (no system ffmpeg needed)
        CodecDef(
            "g723_1",
            ("g723_1",),
            "g723_1",
            "G.723.1 MP-MLQ, 6.3 kbps (8 kHz)",
            _fixed(8000),
            extra=lambda params: ["-b:a", "6300"],
            decode_args=lambda rate: ["-f", "g723_1"],
        ),
        CodecDef("g726", ("g726",), "wav", "G.726 ADPCM, 16/24/32/40 kbps (8 kHz, in WAV)", _fixed(8000), 32, (16, 40)),
        CodecDef("ra144", ("real_144",), "rm", "RealAudio 1.0 (14.4K, LPC/CELP), 8 kbps (8 kHz)", _fixed(8000)),
        CodecDef(
            "mulaw-ffmpeg",
            ("pcm_mulaw",),
            "mulaw",
            "G.711 mu-law through ffmpeg (8 kHz)",
            _fixed(8000),
            decode_args=lambda rate: ["-f", "mulaw", "-ar", "8000", "-ac", "1"],
        ),
        CodecDef(
            "alaw-ffmpeg",
            ("pcm_alaw",),
            "alaw",
            "G.711 A-law through ffmpeg (8 kHz)",
            _fixed(8000),
            decode_args=lambda rate: ["-f", "alaw", "-ar", "8000", "-ac", "1"],
        ),
    )
}


def codec_provider(name: str) -> tuple[FfmpegBinary, str] | None:
    """(provider, encoder) serving a codec, or None; the provider is a binary or PyAV (``provider.in_process``)."""
    return find_encoder(CODECS[name].encoders)


def codec_available(name: str) -> bool:
    return codec_provider(name) is not None


def _require(name: str):
    codec = CODECS[name]
    found = find_encoder(codec.encoders)
    if found is None:
        from cm_cli.degrade.ffmpeg import providers

        binaries = ", ".join(p.path for p in providers()) or "none found"
        raise CmError(
            f"codec {name!r} needs the ffmpeg encoder {codec.encoder_hint}, which no ffmpeg here has "
            f"(checked: {binaries})",
            "point CM_FFMPEG (or the ffmpeg setting) at an ffmpeg built with it; `cm doctor` shows what this install "
            "can encode",
            option="ffmpeg",
        )
    return codec, found


def _check_params(codec: CodecDef, params: dict) -> dict:
    params = dict(params)
    if "kbps" in params:
        kbps = params["kbps"]
        if isinstance(kbps, bool) or not isinstance(kbps, (int, float)):
            raise CmError(f"{codec.name}: bitrate kbps={kbps!r} is not a number", "e.g. kbps=32")
        if codec.kbps_range is None:
            raise CmError(f"{codec.name} has a fixed bitrate; drop kbps={kbps}")
        low, high = codec.kbps_range
        if not low <= float(kbps) <= high:
            raise CmError(
                f"{codec.name}: kbps={kbps} is outside {low:g}-{high:g}", f"choose a bitrate in {low:g}-{high:g} kbps"
            )
    if codec.bands and params.get("band", codec.bands[0]) not in codec.bands:
        raise CmError(f"{codec.name}: band={params['band']!r} is not one of {', '.join(codec.bands)}")
    return params


def _encode_args(codec: CodecDef, encoder: str, params: dict, rate: int) -> list[str]:
    args = ["-ar", str(rate), "-ac", "1", "-c:a", encoder]
    kbps = params.get("kbps", codec.default_kbps)
    if kbps is not None and codec.kbps_range is not None:
        args += ["-b:a", f"{int(round(float(kbps) * 1000))}"]
    args += codec.extra(params)
    args += ["-f", codec.muxer]
    return args


def probe_signal(sample_rate: int, seconds: float = 1.5, seed: int = 1234) -> np.ndarray:
    """Speech-like probe: band-limited noise bursts with a syllabic (4 Hz) envelope and random onsets."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    noise = rng.standard_normal(n)
    # band-limit to 300-3400 Hz in the frequency domain so even narrowband codecs keep it
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    noise = np.fft.irfft(spectrum, n)
    envelope = np.clip(
        np.sin(2 * np.pi * 4 * t + rng.uniform(0, np.pi)) + 0.3 * rng.standard_normal(n).cumsum() / np.sqrt(n), 0, None
    )
    signal = noise * envelope
    # a voiced glide on top, so CELP codecs (tuned to speech) reproduce the waveform well
    f0 = 120 + 80 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12) if k * 200 < min(3400, sample_rate / 2))
    signal = signal / (np.abs(signal).max() + 1e-9) + 0.6 * voiced / np.abs(voiced).max() * envelope
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


def xcorr_lag(reference: np.ndarray, delayed: np.ndarray, max_lag: int) -> float:
    """Lag d in [-max_lag, max_lag] maximising sum reference[t] * delayed[t + d], refined to a
    fraction of a sample by a parabola through the peak (resampling makes delays fractional)."""
    n = len(reference) + len(delayed)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(delayed, size) * np.conj(np.fft.rfft(reference, size)), size)
    values = np.concatenate([corr[size - max_lag :], corr[: max_lag + 1]])
    k = int(np.argmax(values))
    offset = 0.0
    if 0 < k < len(values) - 1:
        a, b, c = values[k - 1], values[k], values[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            offset = float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))
    return k - max_lag + offset


def _raw_pipe(
    codec: CodecDef, provider: FfmpegBinary, encoder: str, samples: np.ndarray, sr: int, params: dict
) -> np.ndarray:
    rate = codec.rate(sr, params)
    args = {"encode_args": _encode_args(codec, encoder, params, rate), "decode_input_args": codec.decode_args(rate)}
    if provider.in_process:
        from cm_cli.degrade.pyav import run_codec_inprocess

        return run_codec_inprocess(samples, sr, **args)
    return run_codec_pipe(provider.path, samples, sr, **args)


@functools.lru_cache(maxsize=256)
def _delay_cached(name: str, provider: FfmpegBinary, encoder: str, params_key: tuple, sr: int) -> int:
    """Delay of one provider's coding path: builds differ (PyAV's in-memory mp3 is gapless, a pipe's is not)."""
    codec = CODECS[name]
    probe = probe_signal(sr)
    pad = int(MAX_DELAY_S * sr)
    decoded = _raw_pipe(
        codec, provider, encoder, np.concatenate([probe, np.zeros(pad, np.float32)]), sr, dict(params_key)
    )
    if len(decoded) == 0:
        raise CmError(f"{name}: {provider.path} returned no audio for the alignment probe")
    return int(round(xcorr_lag(probe, decoded[: len(probe) + pad], pad)))


def codec_delay(name: str, sr: int, params: dict | None = None) -> int:
    """Samples (at ``sr``) by which the coded signal lags its input; measured once and cached."""
    codec, (binary, encoder) = _require(name)
    params = _check_params(codec, params or {})
    return _delay_cached(name, binary, encoder, tuple(sorted(params.items())), int(sr))


def encode_decode(samples: np.ndarray, sr: int, name: str, params: dict | None = None) -> tuple[np.ndarray, dict]:
    """Code ``samples`` with codec ``name``; same length and rate out. Returns (audio, info)."""
    codec, (binary, encoder) = _require(name)
    params = _check_params(codec, params or {})
    delay = _delay_cached(name, binary, encoder, tuple(sorted(params.items())), int(sr))
    n = len(samples)
    # pad the tail so the codec's look-ahead and final frame do not cut the end off
    tail = max(delay, 0) + int(0.05 * sr)
    decoded = _raw_pipe(codec, binary, encoder, np.concatenate([samples, np.zeros(tail, np.float32)]), sr, params)
    if delay >= 0:
        out = decoded[delay : delay + n]
    else:
        out = np.concatenate([np.zeros(-delay, np.float32), decoded[: n + delay]])
    if len(out) < n:
        out = np.concatenate([out, np.zeros(n - len(out), np.float32)])
    info = {
        "codec": name,
        "binary": binary.path,
        "provider": binary.origin,
        "encoder": encoder,
        "codec_rate": codec.rate(sr, params),
        "delay_samples": delay,
    }
    kbps = params.get("kbps", codec.default_kbps)
    if kbps is not None:
        info["kbps"] = kbps
    return out.astype(np.float32), info


def encoded_kbps(samples: np.ndarray, sr: int, name: str, params: dict | None = None) -> float:
    """Bitrate actually produced: bytes of the encoded stream (container included) over the signal's duration,
    through the same provider as ``encode_decode``."""
    import subprocess

    codec, (binary, encoder) = _require(name)
    params = _check_params(codec, params or {})
    args = _encode_args(codec, encoder, params, codec.rate(sr, params))
    if binary.in_process:
        from cm_cli.degrade.pyav import encode_inprocess, translate_encode

        return len(encode_inprocess(samples, sr, translate_encode(args))) * 8 / (len(samples) / sr) / 1000.0
    cmd = [
        binary.path,
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-f",
        "f32le",
        "-ar",
        str(int(sr)),
        "-ac",
        "1",
        "-i",
        "pipe:0",
        *args,
        "pipe:1",
    ]
    done = subprocess.run(
        cmd, input=np.ascontiguousarray(samples, dtype="<f4").tobytes(), capture_output=True, timeout=120
    )
    if done.returncode != 0:
        raise CmError(f"{name}: encoding failed: {done.stderr.decode('utf-8', 'replace').strip()[-300:]}")
    return len(done.stdout) * 8 / (len(samples) / sr) / 1000.0


# --------------------------------------------------------------------------- registry entries (ffmpeg codecs)

KBPS_HELP = "bitrate in kbit/s"


def _codec_runner(name: str) -> Callable:
    def run(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
        return encode_decode(x, ctx.sr, name, params)

    return run


for _name in ("mp3", "aac", "m4a", "vorbis", "amr-nb", "amr-wb"):
    register_degradation(
        Degradation(
            _name,
            "codec",
            CODECS[_name].description,
            _codec_runner(_name),
            (Param("kbps", float, CODECS[_name].default_kbps, KBPS_HELP, minimum=0, exclusive_minimum=True),),
            codec=_name,
            bitrate_param="kbps",
        ),
        order=10,
    )
register_degradation(
    Degradation(
        "opus",
        "codec",
        CODECS["opus"].description,
        _codec_runner("opus"),
        (
            Param("kbps", float, 24, KBPS_HELP, minimum=0, exclusive_minimum=True),
            Param("band", str, "wb", "wb (16 kHz) or nb (8 kHz)", ("wb", "nb")),
        ),
        codec="opus",
        bitrate_param="kbps",
    ),
    order=10,
)
register_degradation(
    Degradation(
        "speex",
        "codec",
        CODECS["speex"].description,
        _codec_runner("speex"),
        (
            Param("kbps", float, None, KBPS_HELP + " (overrides quality)", minimum=0, exclusive_minimum=True),
            Param("quality", int, 8, "CBR quality 0-10", minimum=0, maximum=10),
            Param("band", str, "wb", "wb (16 kHz) or nb (8 kHz)", ("wb", "nb")),
        ),
        codec="speex",
        bitrate_param="kbps",
    ),
    order=10,
)
register_degradation(
    Degradation(
        "g726",
        "codec",
        CODECS["g726"].description,
        _codec_runner("g726"),
        (Param("kbps", float, 32.0, "16, 24, 32 or 40", (16.0, 24.0, 32.0, 40.0)),),
        codec="g726",
        bitrate_param="kbps",
    ),
    order=10,
)
for _name, _fixed_kbps in (("g722", 64.0), ("gsm", 13.0), ("g723_1", 6.3), ("ra144", 8.0)):
    register_degradation(
        Degradation(
            _name,
            "codec",
            CODECS[_name].description,
            _codec_runner(_name),
            (),
            codec=_name,
            extra={"kbps": _fixed_kbps},
        ),
        order=10,
    )
