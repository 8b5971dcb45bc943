"""The registry of named, parameterised degradations and ``apply_spec``, which runs a spec chain.

Every degradation takes mono float32 and returns the same length at the same rate
(``trim`` alone shortens, by design). Parameters are declared with types, defaults
and ranges, so a spec is checked completely (names, parameters, encoders) before
any audio is touched: a corpus job fails in its first second, not its tenth hour.

Each degradation is declared by the module that implements it, at module level:
``register_degradation(Degradation(name, kind, description, runner, (Param(...), ...)), order=N)`` (copy
``reverb.py``). ``REGISTRY`` discovers the declaring modules on first use (a text scan of this package for lines
starting ``register_degradation(``, plus the ``cm.degradations`` entry points of installed plugins), so importing
this module stays cheap and ``cm --help`` never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.core.specs import Spec, Step, parse_spec

__all__ = [
    "Param",
    "Degradation",
    "REGISTRY",
    "register_degradation",
    "discover",
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
    # hooks for what a step's parameters decide, so the registry never branches on a name:
    check: Callable[[dict], None] | None = None  # more checks of the resolved parameters (a folder exists, ...)
    codec_for: Callable[[dict], str | None] | None = None  # the codecs.CODECS entry used, when not always ``codec``
    bitrate: Callable[[dict], float | None] | None = None  # the delivered kbit/s, when not a parameter or fixed

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_ENTRIES: dict[str, tuple[int, int, Degradation]] = {}  # name -> (order, sequence, entry)
_DECLARES = re.compile(r"^register_degradation\(", re.MULTILINE)
_DISCOVERED = False


def register_degradation(deg: Degradation, *, order: int = 100) -> Degradation:
    """Declare one degradation; ``order`` places it in ``cm degrade --list`` (ties keep declaration order).

    Built-in sections: 0 identity, 10 ffmpeg codecs, 20 G.711, 30 neural codecs, 40 devices, 50 channel filters,
    60 noise, 70 RawBoost, 80 reverb; a new module picks its own (the default puts it last).
    """
    existing = _ENTRIES.get(deg.name)
    if existing is not None and existing[2].run.__module__ != deg.run.__module__:
        raise CmError(
            f"degradation {deg.name!r} is declared twice ({existing[2].run.__module__} and {deg.run.__module__})",
            "give the new degradation another name",
        )
    sequence = existing[1] if existing is not None else len(_ENTRIES)
    _ENTRIES[deg.name] = (int(order), sequence, deg)
    return deg


def discover() -> None:
    """Import every module of this package that declares a degradation, and the ``cm.degradations`` entry points."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    import importlib
    from importlib import metadata

    here = Path(__file__).resolve()
    for path in sorted(here.parent.glob("*.py")):
        if path == here:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if _DECLARES.search(text):
            importlib.import_module(f"{__package__}.{path.stem}")
    for entry in metadata.entry_points(group="cm.degradations"):
        entry.load()


class _Registry(Mapping):
    """Name -> ``Degradation`` in ``--list`` order, discovering the declaring modules on first use."""

    def _entries(self) -> dict[str, Degradation]:
        discover()
        ranked = sorted(_ENTRIES.values(), key=lambda entry: (entry[0], entry[1]))
        return {deg.name: deg for _, _, deg in ranked}

    def __getitem__(self, name: str) -> Degradation:
        if name not in _ENTRIES:
            discover()
        return _ENTRIES[name][2]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        discover()
        return len(_ENTRIES)

    def __contains__(self, name: object) -> bool:
        if name not in _ENTRIES:
            discover()
        return name in _ENTRIES


REGISTRY: Mapping[str, Degradation] = _Registry()


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
        if deg.check is not None:
            deg.check(params)
    return spec


def _codec_for(deg: Degradation, params: dict) -> str | None:
    return deg.codec_for(params) if deg.codec_for is not None else deg.codec


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
    if deg.bitrate is not None:
        return deg.bitrate(params)
    if deg.bitrate_param and params.get(deg.bitrate_param) is not None:
        return float(params[deg.bitrate_param])
    fixed = deg.extra.get("kbps")
    return None if fixed is None else float(fixed)


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


# --------------------------------------------------------------------------- the identity


def _identity(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
    return x.copy(), {}


register_degradation(
    Degradation("clean", "identity", "no degradation (the identity; labels clean samples in policies)", _identity),
    order=0,
)
