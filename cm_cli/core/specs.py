"""The degradation-spec grammar shared by ``--chain``, ``--degrade``, augmentation
policies and the ``degradation`` manifest column.

Grammar (DESIGN.md)::

    spec  = step ("+" step)*
    step  = name (":" key "=" value)*
    value = atom ("|" atom)*        # a sweep: expands to one spec per atom

The canonical form sorts keys within a step, lower-cases names and keys and
normalises numbers (``32.0`` -> ``32``, ``1e3`` -> ``1000``, ``0.50`` -> ``0.5``),
so one condition has exactly one spelling and one slug. Step order is kept:
``mp3+noise`` and ``noise+mp3`` are different conditions.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

from cm_cli.core.errors import CmError

__all__ = [
    "Step",
    "Spec",
    "parse_spec",
    "expand_sweep",
    "canonical_spec",
    "spec_slug",
    "normalise_value",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")

Value = "int | float | str"


def normalise_value(text: str) -> int | float | str:
    """Numbers become int when integral, float otherwise; other text is kept as is."""
    raw = text.strip()
    if raw == "":
        raise CmError("empty value in degradation spec", "write key=value, e.g. mp3:kbps=32")
    try:
        number = float(raw)
    except ValueError:
        return raw
    if not math.isfinite(number):
        raise CmError(f"value {raw!r} is not a finite number")
    if number.is_integer() and abs(number) < 2**53:
        return int(number)
    return float(repr(number))


def _format_value(value: int | float | str) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Step:
    """One degradation step: a registered name and its parameters (sorted by key)."""

    name: str
    params: tuple[tuple[str, int | float | str], ...] = ()

    @property
    def kwargs(self) -> dict[str, int | float | str]:
        return dict(self.params)

    def get(self, key: str, default=None):
        return self.kwargs.get(key, default)

    def canonical(self) -> str:
        parts = [self.name] + [f"{k}={_format_value(v)}" for k, v in self.params]
        return ":".join(parts)

    def slug(self) -> str:
        parts = [self.name] + [f"{k}-{_format_value(v)}" for k, v in self.params]
        return _SLUG_UNSAFE.sub("-", "_".join(parts))


@dataclass(frozen=True)
class Spec:
    """A chain of steps applied left to right."""

    steps: tuple[Step, ...] = field(default_factory=tuple)

    def canonical(self) -> str:
        return "+".join(step.canonical() for step in self.steps)

    def slug(self) -> str:
        text = "+".join(step.slug() for step in self.steps)
        if any(_SLUG_UNSAFE.search(_format_value(v)) for st in self.steps for _, v in st.params):
            # A value had characters a file name cannot carry (a path, say):
            # a short content hash keeps the slug unique per canonical spec.
            import hashlib

            text += "-h" + hashlib.sha1(self.canonical().encode()).hexdigest()[:8]
        return text

    def __str__(self) -> str:
        return self.canonical()


def _split_step(text: str, spec_text: str) -> tuple[str, list[tuple[str, list[str]]]]:
    pieces = text.strip().split(":")
    name = pieces[0].strip().lower()
    if not _NAME.match(name):
        raise CmError(
            f"bad step name {pieces[0]!r} in degradation spec {spec_text!r}",
            "a step is name(:key=value)*, e.g. mp3:kbps=32+noise:snr=10:type=pink",
        )
    params: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for piece in pieces[1:]:
        if "=" not in piece:
            raise CmError(
                f"parameter {piece!r} of step {name!r} has no '=' in {spec_text!r}",
                "write key=value, e.g. mp3:kbps=32",
            )
        key, _, value = piece.partition("=")
        key = key.strip().lower()
        if not _KEY.match(key):
            raise CmError(f"bad parameter name {key!r} in step {name!r} of {spec_text!r}")
        if key in seen:
            raise CmError(f"parameter {key!r} given twice in step {name!r} of {spec_text!r}")
        seen.add(key)
        atoms = value.split("|")
        if any(a.strip() == "" for a in atoms):
            raise CmError(f"empty value for {key!r} in step {name!r} of {spec_text!r}")
        params.append((key, [a.strip() for a in atoms]))
    return name, params


def _raw_steps(text: str) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    if not isinstance(text, str) or not text.strip():
        raise CmError("empty degradation spec", "e.g. mp3:kbps=32 or telephony+mulaw")
    return [_split_step(part, text) for part in text.split("+")]


def expand_sweep(text: str) -> list[Spec]:
    """All conditions of a spec: ``mp3:kbps=8|16`` gives two specs, in the order written.

    Several ``|`` values expand to their Cartesian product (first step varies slowest).
    Duplicates (after canonicalisation) are dropped, keeping first occurrence.
    """
    raw = _raw_steps(text)
    axes: list[list[str]] = []
    for _, params in raw:
        for _, atoms in params:
            axes.append(atoms)
    specs: list[Spec] = []
    seen: set[str] = set()
    for combo in itertools.product(*axes) if axes else [()]:
        it = iter(combo)
        steps = []
        for name, params in raw:
            values = [(key, normalise_value(next(it))) for key, _ in params]
            steps.append(Step(name, tuple(sorted(values))))
        spec = Spec(tuple(steps))
        if spec.canonical() not in seen:
            seen.add(spec.canonical())
            specs.append(spec)
    return specs


def parse_spec(text: str) -> Spec:
    """One condition; a sweep (``|``) is an error here."""
    specs = expand_sweep(text)
    if len(specs) != 1:
        raise CmError(
            f"{text!r} is a sweep of {len(specs)} conditions where one was expected",
            "drop the '|' alternatives, or use an option that accepts sweeps",
        )
    return specs[0]


def canonical_spec(text: str) -> str:
    return parse_spec(text).canonical()


def spec_slug(text: str) -> str:
    """File- and id-safe form of a spec, unique per canonical condition."""
    return parse_spec(text).slug()
