"""The registry of named, parameterised degradations and ``apply_spec``, which runs a spec chain.

Every degradation takes mono float32 and returns the same length at the same rate
(``trim`` alone shortens, by design). Parameters are declared with types, defaults
and ranges, so a spec is checked completely (names, parameters, encoders) before
any audio is touched: a corpus job fails in its first second, not its tenth hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.core.specs import Spec, Step, parse_spec

__all__ = [
    "Param",
    "Degradation",
    "REGISTRY",
    "get_degradation",
    "resolve_params",
    "validate_spec",
    "apply_spec",
    "codec_fields",
    "step_bitrate_kbps",
    "describe_provider",
    "spec_providers",
    "as_spec",
]


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # float, int or str
    default: Any
    help: str
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False


@dataclass(frozen=True)
class StepContext:
    """What a step may need beyond its parameters: rate, ids for seeding, position in the chain."""

    sr: int
    seed: int
    utt_id: str
    index: int
    canonical: str

    def rng(self) -> np.random.Generator:
        from cm_cli.degrade.noise import stable_rng

        return stable_rng(self.seed, self.utt_id, self.index, self.canonical)


@dataclass(frozen=True)
class Degradation:
    name: str
    kind: str  # codec, neural, channel, noise, reverb, identity
    description: str
    run: Callable[[np.ndarray, StepContext, dict], tuple[np.ndarray, dict]]
    params: tuple[Param, ...] = ()
    codec: str | None = None  # entry of codecs.CODECS that must have an encoder
    changes_length: bool = False
    bitrate_param: str | None = None
    extra: dict = field(default_factory=dict)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


REGISTRY: dict[str, Degradation] = {}


def _register(deg: Degradation) -> None:
    REGISTRY[deg.name] = deg


def get_degradation(name: str) -> Degradation:
    if name not in REGISTRY:
        raise CmError(f"unknown degradation {name!r}", f"valid degradations: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def resolve_params(step: Step) -> dict:
    """Typed parameters of a step with defaults filled in; unknown or ill-typed ones are errors."""
    deg = get_degradation(step.name)
    given = step.kwargs
    unknown = sorted(set(given) - {p.name for p in deg.params})
    if unknown:
        valid = ", ".join(f"{p.name} (default {p.default})" for p in deg.params) or "none"
        raise CmError(f"{step.name}: unknown parameter(s) {', '.join(unknown)}", f"parameters of {step.name}: {valid}")
    params: dict = {}
    for p in deg.params:
        value = given.get(p.name, p.default)
        if value is None:
            continue
        if p.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CmError(f"{step.name}: {p.name}={value!r} is not a number", f"{p.name}: {p.help}")
            if p.kind is int and float(value) != int(value):
                raise CmError(f"{step.name}: {p.name}={value!r} must be an integer")
            value = p.kind(value)
            if p.minimum is not None and (value < p.minimum or (p.exclusive_minimum and value <= p.minimum)):
                bound = f"> {p.minimum:g}" if p.exclusive_minimum else f">= {p.minimum:g}"
                raise CmError(f"{step.name}: {p.name}={value:g} must be {bound}", f"{p.name}: {p.help}")
            if p.maximum is not None and value > p.maximum:
                raise CmError(f"{step.name}: {p.name}={value:g} must be <= {p.maximum:g}", f"{p.name}: {p.help}")
        else:
            value = str(value)
        if p.choices and value not in p.choices:
            raise CmError(f"{step.name}: {p.name}={value!r} is not one of {', '.join(map(str, p.choices))}")
        params[p.name] = value
    return params


def as_spec(spec: "Spec | str") -> Spec:
    return parse_spec(spec) if isinstance(spec, str) else spec


def validate_spec(spec: "Spec | str", *, check_available: bool = True) -> Spec:
    """Check every step's name and parameters (and that its encoder exists); return the parsed spec."""
    from cm_cli.degrade.codecs import CODECS, _check_params, _require

    spec = as_spec(spec)
    for step in spec.steps:
        deg = get_degradation(step.name)
        params = resolve_params(step)
        codec_name = _codec_for(deg, params)
        if codec_name is not None:
            _check_params(CODECS[codec_name], {k: v for k, v in params.items() if k in ("kbps", "band")})
            if check_available:
                _require(codec_name)
        if deg.kind == "neural" and check_available:
            from cm_cli.degrade.neural import check_local

            check_local(deg.name, params.get("model"), variant=None if "rate" not in params else str(params["rate"]))
        if deg.name == "noise" and params.get("type") == "file" and "dir" not in params:
            raise CmError("noise: type=file needs dir=FOLDER", "or give a noise directory", option="noise_dir")
        if deg.name in ("noise", "reverb") and "dir" in params:
            from cm_cli.degrade.noise import list_audio_files

            list_audio_files(params["dir"])
    return spec


def _codec_for(deg: Degradation, params: dict) -> str | None:
    if deg.name in ("mulaw", "alaw") and params.get("impl") == "ffmpeg":
        return f"{deg.name}-ffmpeg"
    return deg.codec


def apply_spec(
    samples: np.ndarray, sr: int, spec: "Spec | str", *, seed: int = 0, utt_id: str = ""
) -> tuple[np.ndarray, dict]:
    """Run the chain left to right. Returns (audio, info) with per-step details and warnings."""
    spec = as_spec(spec)
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise CmError(f"apply_spec needs mono audio, got shape {x.shape}")
    if not np.all(np.isfinite(x)):  # input check before the chain: LAME aborts the process on NaN, mulaw hides it
        raise CmError(f"{spec.canonical()}: the input audio has non-finite samples (NaN/Inf); refusing to code it")
    info: dict = {"spec": spec.canonical(), "steps": [], "warnings": []}
    for index, step in enumerate(spec.steps):
        deg = get_degradation(step.name)
        params = resolve_params(step)
        ctx = StepContext(int(sr), int(seed), str(utt_id), index, step.canonical())
        n = len(x)
        x, step_info = deg.run(x, ctx, params)
        x = np.asarray(x, dtype=np.float32)
        if not deg.changes_length and len(x) != n:  # defensive: the contract is same length out
            raise CmError(f"{step.name} returned {len(x)} samples for {n} (internal error)")
        if not np.all(np.isfinite(x)):  # checked per step, so no later step (a codec) is fed NaN
            raise CmError(f"{spec.canonical()}: step {step.canonical()} produced non-finite samples")
        if step_info.get("warning"):
            info["warnings"].append(f"{step.name}: {step_info.pop('warning')}")
        info["steps"].append({"step": step.canonical(), **step_info})
    return x, info


def codec_fields(spec: "Spec | str") -> tuple[str | None, str | None]:
    """(codec, codec_q) of a spec: the first codec step's name and bitrate (DESIGN.md)."""
    spec = as_spec(spec)
    for step in spec.steps:
        deg = REGISTRY.get(step.name)
        if deg is not None and deg.kind in ("codec", "neural"):
            params = resolve_params(step)
            kbps = params.get(deg.bitrate_param) if deg.bitrate_param else None
            return step.name, (None if kbps is None else f"{kbps:g}")
    return None, None


def step_bitrate_kbps(step) -> float | None:
    """Bitrate (kbit/s) of the stream one step delivers: its bitrate parameter, a fixed codec rate, or None."""
    deg = REGISTRY.get(step.name)
    if deg is None:
        return None
    params = resolve_params(step)
    if deg.name == "bluetooth":
        from cm_cli.degrade.codecs import MSBC_KBPS

        return MSBC_KBPS if params["mode"] == "msbc" else float(params["kbps"])
    if deg.bitrate_param and params.get(deg.bitrate_param) is not None:
        return float(params[deg.bitrate_param])
    fixed = deg.extra.get("kbps")
    if fixed is not None and not (deg.name in ("mulaw", "alaw") and params.get("rate") not in (8000, None)):
        return float(fixed)
    return None


def describe_provider(deg: Degradation) -> tuple[bool, str]:
    """(available, text) for ``cm degrade --list``."""
    from cm_cli.degrade.codecs import CODECS, codec_provider

    if deg.kind == "neural":
        from cm_cli.degrade.neural import CODECS, find_weights

        codec = CODECS[deg.name]
        found = find_weights(deg.name)
        return found is not None, (
            f"transformers {codec.model_class}, {codec.hub_id()} at {found}"
            if found
            else f"missing: weights of {codec.hub_id()} (run `cm download --model {deg.name}` or set {codec.env})"
        )
    if deg.codec is None:
        if deg.name in ("mulaw", "alaw"):
            found = codec_provider(f"{deg.name}-ffmpeg")
            extra = f"; impl=ffmpeg via {_provider_text(*found)}" if found else "; impl=ffmpeg unavailable"
            return True, "numpy (bit-exact G.711)" + extra
        return True, "numpy/scipy"
    found = codec_provider(deg.codec)
    if found is None:
        return False, f"missing: no ffmpeg has the encoder {CODECS[deg.codec].encoder_hint}"
    return True, _provider_text(*found)


def _provider_text(binary, encoder: str) -> str:
    if binary.in_process:
        return f"{binary.path}, in-process ({encoder})"
    return f"{binary.path} [{binary.origin}] ({encoder})"


def spec_providers(spec: "Spec | str") -> str:
    """Which provider and encoder code each ffmpeg step of ``spec`` ('' when none does): part of every
    reuse and cache key, so output coded by one FFmpeg build is never served for another's."""
    from cm_cli.degrade.codecs import codec_provider

    names = []
    for step in as_spec(spec).steps:
        codec_name = _codec_for(get_degradation(step.name), resolve_params(step))
        if codec_name is not None:
            found = codec_provider(codec_name)
            names.append(
                f"{codec_name}={found[0].origin}:{found[0].path}/{found[1]}" if found else f"{codec_name}=none"
            )
    return ";".join(names)


# --------------------------------------------------------------------------- implementations


def _identity(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
    return x.copy(), {}


def _rawboost(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
    from cm_cli.degrade.rawboost import rawboost

    return rawboost(x, ctx.sr, params["algo"], ctx.rng()), {"rawboost_algo": int(params["algo"])}


def _codec_runner(name: str) -> Callable:
    def run(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
        from cm_cli.degrade.codecs import encode_decode

        return encode_decode(x, ctx.sr, name, params)

    return run


def _g711_runner(law: str) -> Callable:
    def run(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
        if params["impl"] == "ffmpeg":
            from cm_cli.degrade.codecs import encode_decode

            return encode_decode(x, ctx.sr, f"{law}-ffmpeg", {})
        from cm_cli.degrade.channel import g711_numpy

        return g711_numpy(x, ctx.sr, law=law, rate=int(params["rate"])), {"impl": "numpy", "rate": params["rate"]}

    return run


def _encodec(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
    from cm_cli.degrade.neural import cached_output, encodec_batch

    y = cached_output("encodec", x, ctx.sr, level=params["kbps"], model=params.get("model"))
    if y is not None:  # coded in corpus mode's batch (neural.prefetch)
        return y, {"kbps": params["kbps"], "batched": True}
    (y,), info = encodec_batch([x], ctx.sr, kbps=params["kbps"], model=params.get("model"))
    return y, info


def _neural_runner(name: str) -> Callable:
    """DAC / Mimi: the number of codebooks as the level, resampled to the model's rate and back."""

    def run(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
        from cm_cli.degrade.neural import cached_output, default_device, load_codec

        variant = None if "rate" not in params else str(params["rate"])
        level = params.get("codebooks")
        y = cached_output(name, x, ctx.sr, level=level, model=params.get("model"), variant=variant)
        if y is not None:
            return y, {"codebooks": level, "batched": True}
        codec = load_codec(name, params.get("model"), default_device(), variant=variant)
        (y,), info = codec.code_batch([x], ctx.sr, level)
        return y, info

    return run


def _mic(x, ctx, params):
    from cm_cli.degrade.device import MIC_MODELS, device_response

    return device_response(x, ctx.sr, MIC_MODELS[params["model"]]), {"model": params["model"]}


def _speaker(x, ctx, params):
    from cm_cli.degrade.device import loudspeaker

    return loudspeaker(x, ctx.sr, params["model"]), {"model": params["model"]}


def _bluetooth(x, ctx, params):
    from cm_cli.degrade.codecs import encode_decode

    sbc = {"mode": params["mode"]}
    if params["mode"] == "sbc":
        sbc["kbps"] = params["kbps"]
    return encode_decode(x, ctx.sr, "sbc", sbc)


def _cable(x, ctx, params):
    from cm_cli.degrade.device import cable

    return cable(
        x, ctx.sr, hum_hz=params["hum_hz"], hum_db=params["hum_db"], cutoff=params.get("cutoff"), rng=ctx.rng()
    )


def _phase(params: dict) -> bool:
    return params.get("phase", "zero") == "zero"


def _telephony(x, ctx, params):
    from cm_cli.degrade.channel import telephony

    return telephony(
        x, ctx.sr, low=params["low"], high=params["high"], order=params["order"], zero_phase=_phase(params)
    ), {}


def _filter(kind: str) -> Callable:
    def run(x, ctx, params):
        from cm_cli.degrade.channel import butter_filter

        low = params.get("low", params.get("cutoff") if kind == "highpass" else None)
        high = params.get("high", params.get("cutoff") if kind == "lowpass" else None)
        return butter_filter(
            x, ctx.sr, kind=kind, low=low, high=high, order=params["order"], zero_phase=_phase(params)
        ), {}

    return run


def _resample(x, ctx, params):
    from cm_cli.degrade.channel import resample_roundtrip

    return resample_roundtrip(x, ctx.sr, rate=params["rate"]), {}


def _gain(x, ctx, params):
    from cm_cli.degrade.channel import apply_gain

    return apply_gain(x, db=params["db"]), {}


def _clip(x, ctx, params):
    from cm_cli.degrade.channel import hard_clip

    y = hard_clip(x, level=params["level"])
    return y, {"clipped_samples": int(np.count_nonzero(np.abs(x) > params["level"]))}


def _trim(x, ctx, params):
    from cm_cli.degrade.channel import trim_silence

    y = trim_silence(x, ctx.sr, threshold_db=params["threshold_db"], margin_ms=params["margin_ms"])
    return y, {"trimmed_samples": int(len(x) - len(y))}


def _noise(x, ctx, params):
    from cm_cli.degrade.noise import coloured_noise, mix_at_snr, noise_from_dir

    rng = ctx.rng()
    colour = params.get("type") or ("file" if "dir" in params else "white")
    extra: dict = {}
    if colour == "file":
        if "dir" not in params:
            raise CmError("noise: type=file needs dir=FOLDER", "or give a noise directory", option="noise_dir")
        noise, extra = noise_from_dir(params["dir"], len(x), ctx.sr, rng)
    else:
        noise = coloured_noise(len(x), colour, rng)
    y, info = mix_at_snr(x, ctx.sr, noise, params["snr"])
    return y, {**info, **extra, "type": colour}


def _reverb(x, ctx, params):
    from cm_cli.degrade.reverb import convolve_rir, rir_from_dir, synthetic_rir

    rng = ctx.rng()
    if "dir" in params:
        rir, extra = rir_from_dir(params["dir"], ctx.sr, rng)
    else:
        rir, extra = synthetic_rir(ctx.sr, params["rt60"], rng), {"rt60": params["rt60"]}
    return convolve_rir(x, rir), extra


def _populate() -> None:
    from cm_cli.degrade.codecs import CODECS

    kbps_help = "bitrate in kbit/s"
    phase = Param("phase", str, "zero", "zero (forward-backward, no delay) or causal", ("zero", "causal"))
    order = Param("order", int, 8, "Butterworth order", minimum=1, maximum=20)
    _register(
        Degradation("clean", "identity", "no degradation (the identity; labels clean samples in policies)", _identity)
    )
    for name in ("mp3", "aac", "m4a", "vorbis", "amr-nb", "amr-wb"):
        codec = CODECS[name]
        _register(
            Degradation(
                name,
                "codec",
                codec.description,
                _codec_runner(name),
                (Param("kbps", float, codec.default_kbps, kbps_help, minimum=0, exclusive_minimum=True),),
                codec=name,
                bitrate_param="kbps",
            )
        )
    _register(
        Degradation(
            "opus",
            "codec",
            CODECS["opus"].description,
            _codec_runner("opus"),
            (
                Param("kbps", float, 24, kbps_help, minimum=0, exclusive_minimum=True),
                Param("band", str, "wb", "wb (16 kHz) or nb (8 kHz)", ("wb", "nb")),
            ),
            codec="opus",
            bitrate_param="kbps",
        )
    )
    _register(
        Degradation(
            "speex",
            "codec",
            CODECS["speex"].description,
            _codec_runner("speex"),
            (
                Param("kbps", float, None, kbps_help + " (overrides quality)", minimum=0, exclusive_minimum=True),
                Param("quality", int, 8, "CBR quality 0-10", minimum=0, maximum=10),
                Param("band", str, "wb", "wb (16 kHz) or nb (8 kHz)", ("wb", "nb")),
            ),
            codec="speex",
            bitrate_param="kbps",
        )
    )
    _register(
        Degradation(
            "g726",
            "codec",
            CODECS["g726"].description,
            _codec_runner("g726"),
            (Param("kbps", float, 32.0, "16, 24, 32 or 40", (16.0, 24.0, 32.0, 40.0)),),
            codec="g726",
            bitrate_param="kbps",
        )
    )
    for name, fixed in (("g722", 64.0), ("gsm", 13.0), ("g723_1", 6.3), ("ra144", 8.0)):
        _register(
            Degradation(
                name, "codec", CODECS[name].description, _codec_runner(name), (), codec=name, extra={"kbps": fixed}
            )
        )
    for law, label in (("mulaw", "mu-law"), ("alaw", "A-law")):
        _register(
            Degradation(
                law,
                "codec",
                f"G.711 {label} at 8 kHz (numpy, bit-exact; impl=ffmpeg uses pcm_{law})",
                _g711_runner(law),
                (
                    Param("impl", str, "numpy", "numpy or ffmpeg", ("numpy", "ffmpeg")),
                    Param("rate", int, 8000, "companding rate in Hz (0 = input rate; numpy only)", minimum=0),
                ),
                extra={"kbps": 64.0},
            )
        )
    _register(
        Degradation(
            "encodec",
            "neural",
            "EnCodec 24 kHz neural codec (transformers; local weights only)",
            _encodec,
            (
                Param("kbps", float, 6.0, "1.5, 3, 6, 12 or 24", (1.5, 3.0, 6.0, 12.0, 24.0)),
                Param(
                    "model",
                    str,
                    None,
                    "model id or local path (default: $CM_ENCODEC_MODEL, else facebook/encodec_24khz)",
                ),
            ),
            bitrate_param="kbps",
        )
    )
    _register(
        Degradation(
            "dac",
            "neural",
            "DAC neural codec, 16/24/44 kHz models (transformers DacModel; local weights only)",
            _neural_runner("dac"),
            (
                Param("codebooks", int, None, "codebooks used (default: all the model has)", minimum=1),
                Param("rate", int, 16, "model: 16, 24 or 44 kHz (descript/dac_<rate>khz)", (16, 24, 44)),
                Param("model", str, None, "model id or local path (default: $CM_DAC_MODEL, else by rate)"),
            ),
        )
    )
    _register(
        Degradation(
            "mimi",
            "neural",
            "Mimi neural codec, 24 kHz, 12.5 Hz frames (transformers MimiModel; local weights only)",
            _neural_runner("mimi"),
            (
                Param("codebooks", int, None, "codebooks used (default 8, as Moshi)", minimum=1),
                Param("model", str, None, "model id or local path (default: $CM_MIMI_MODEL, else kyutai/mimi)"),
            ),
        )
    )
    from cm_cli.degrade.device import MIC_MODELS, SPEAKER_MODELS

    _register(
        Degradation(
            "mic",
            "channel",
            "microphone response (band edges + resonance, causal); C11",
            _mic,
            (Param("model", str, "smartphone", "device model", tuple(MIC_MODELS)),),
        )
    )
    _register(
        Degradation(
            "speaker",
            "channel",
            "loudspeaker playback (band edges, resonance, soft saturation); C11",
            _speaker,
            (Param("model", str, "small", "loudspeaker model", tuple(SPEAKER_MODELS)),),
        )
    )
    _register(
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
        )
    )
    _register(
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
        )
    )
    _register(
        Degradation(
            "telephony",
            "channel",
            "telephone band-pass (Butterworth)",
            _telephony,
            (
                Param("low", float, 300.0, "lower edge, Hz", minimum=0, exclusive_minimum=True),
                Param("high", float, 3400.0, "upper edge, Hz", minimum=0, exclusive_minimum=True),
                Param("order", int, 4, "Butterworth order", minimum=1, maximum=20),
                phase,
            ),
        )
    )
    cutoff = Param("cutoff", float, None, "cut-off frequency, Hz", minimum=0, exclusive_minimum=True)
    _register(
        Degradation("lowpass", "channel", "low-pass filter (Butterworth)", _filter("lowpass"), (cutoff, order, phase))
    )
    _register(
        Degradation(
            "highpass", "channel", "high-pass filter (Butterworth)", _filter("highpass"), (cutoff, order, phase)
        )
    )
    band = (
        Param("low", float, None, "lower edge, Hz", minimum=0, exclusive_minimum=True),
        Param("high", float, None, "upper edge, Hz", minimum=0, exclusive_minimum=True),
        order,
        phase,
    )
    _register(Degradation("bandpass", "channel", "band-pass filter (Butterworth)", _filter("bandpass"), band))
    _register(
        Degradation(
            "bandstop",
            "channel",
            "band-stop filter (Butterworth), for band-mask interventions",
            _filter("bandstop"),
            band,
        )
    )
    _register(
        Degradation(
            "resample",
            "channel",
            "down-sample to rate and back (anti-aliased)",
            _resample,
            (Param("rate", int, 8000, "intermediate rate, Hz", minimum=1000),),
        )
    )
    _register(
        Degradation(
            "gain",
            "channel",
            "gain in dB (clipping is counted when written)",
            _gain,
            (Param("db", float, 0.0, "gain, dB"),),
        )
    )
    _register(
        Degradation(
            "clip",
            "channel",
            "hard clipping at +-level (full scale 1.0)",
            _clip,
            (Param("level", float, 0.5, "clip level", minimum=0, exclusive_minimum=True, maximum=1),),
        )
    )
    _register(
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
        )
    )
    _register(
        Degradation(
            "noise",
            "noise",
            "additive noise at an SNR on active speech (white, pink, brown, or files)",
            _noise,
            (
                Param("snr", float, 10.0, "signal-to-noise ratio, dB"),
                Param(
                    "type",
                    str,
                    None,
                    "white (default), pink, brown, or file (default when dir is given)",
                    ("white", "pink", "brown", "file"),
                ),
                Param("dir", str, None, "folder of noise recordings (MUSAN layout, recursive)"),
            ),
        )
    )
    _register(
        Degradation(
            "rawboost",
            "noise",
            "RawBoost (Tak et al. 2022): 1 LnL convolutive, 2 ISD impulsive, "
            "3 SSI coloured additive, 4=1+2+3, 5=1+2, 6=1+3, 7=2+3, 8=1||2",
            _rawboost,
            (Param("algo", int, 4, "RawBoost algorithm 1-8", minimum=1, maximum=8),),
        )
    )
    _register(
        Degradation(
            "reverb",
            "reverb",
            "room reverberation: RIR files from dir, else synthetic at rt60",
            _reverb,
            (
                Param(
                    "rt60", float, 0.5, "synthetic reverberation time, s", minimum=0, exclusive_minimum=True, maximum=5
                ),
                Param("dir", str, None, "folder of room impulse responses"),
            ),
        )
    )


_populate()
