"""ASVspoof 5's transmission conditions C01-C11, each with the quality levels its protocol uses.

The ASVspoof 5 evaluation protocol codes an utterance under one condition at one
ordinal quality level (``CODEC_Q``): five levels for C01-C10, eight for C11 (counted
in the real protocol, see tests). A condition here is that list of levels, each one
concrete spec; ``pick_level`` draws a level uniformly per utterance from a stable
hash of (seed, utterance id, condition), as the protocol's roughly uniform level
counts suggest. Codec, bandwidth and sample rate per condition follow the ASVspoof 5
database paper (arXiv 2502.08857) and the corpus's ``codec.config.csv``; where the
sources give only a range, the five levels are spaced evenly over it (snapped to the
codec's valid modes). docs/degrade.md records the source of every number.
"""

from __future__ import annotations

from dataclasses import dataclass

from cm_cli.core.errors import CmError
from cm_cli.core.specs import Spec, parse_spec
from cm_cli.degrade.codecs import MSBC_KBPS

__all__ = [
    "Level",
    "Condition",
    "CONDITIONS",
    "get_condition",
    "pick_condition",
    "pick_level",
    "is_condition",
    "spec_bitrate_kbps",
    "condition_fields",
]

_PAPER = "ASVspoof 5 database paper (arXiv 2502.08857), codec table"
_CONFIG = "ASVspoof5 protocols, codec.config.csv"
_CHOICE = "cm (levels spaced evenly over the source's range; see docs/degrade.md)"


@dataclass(frozen=True)
class Level:
    """One ordinal quality level: ``q`` as the corpus writes CODEC_Q, the spec that renders it."""

    q: int
    spec: str
    kbps: float | None  # bitrate of the delivered stream (last coding step), None for uncoded channels
    note: str = ""

    def parsed(self) -> Spec:
        return parse_spec(self.spec)


@dataclass(frozen=True)
class Condition:
    id: str
    description: str
    codec: str  # the corpus's codec name (codec.config.csv)
    bandwidth: str  # "wb" (16 kHz audio), "nb" (8 kHz), or "mixed"
    codec_rate: str  # rate the codec runs at, as text (C05 switches inside the condition)
    kbps_range: str  # the source's range, as published
    levels: tuple[Level, ...]
    source: str  # where the codec, bandwidth and range come from
    level_source: str  # where the per-level values come from
    provider: tuple[str, ...]  # degradations (registry names) the levels use

    def specs(self) -> list[Spec]:
        return [level.parsed() for level in self.levels]

    def level(self, q: int | str) -> Level:
        for level in self.levels:
            if str(level.q) == str(q).strip():
                return level
        raise CmError(f"{self.id} has no level {q!r}", f"levels: {', '.join(str(level.q) for level in self.levels)}")


def _levels(template: str, values: tuple, *, kbps: tuple | None = None, notes: tuple = ()) -> tuple[Level, ...]:
    out = []
    for i, value in enumerate(values):
        spec = template.format(*value) if isinstance(value, tuple) else template.format(value)
        rate = kbps[i] if kbps is not None else value
        out.append(Level(i + 1, spec, None if rate is None else float(rate), notes[i] if i < len(notes) else ""))
    return tuple(out)


_ENCODEC = (1.5, 3, 6, 12, 24)
# MP3: the paper's range 45-256 kbps spaced evenly (45, 98, 150, 203, 256) and snapped to valid
# Layer III bitrates; 45 is not one, LAME itself rounds it to 48. Up to 160 kbps the encoder runs
# MPEG-2 at 16 kHz, above it MPEG-1 at 44.1 kHz (MPEG-2 Layer III stops at 160 kbps).
_MP3 = (48, 96, 144, 192, 256)
_MP3_NOTES = ("MPEG-2, 16 kHz", "MPEG-2, 16 kHz", "MPEG-2, 16 kHz", "MPEG-1, 44.1 kHz", "MPEG-1, 44.1 kHz")

# C11: device and channel. The sources name the effects (microphone/speaker/transmission,
# Bluetooth, cable) but not the eight levels; these eight are cm's, documented in docs/degrade.md.
_C11 = (
    ("mic:model=smartphone", None, "smartphone microphone"),
    ("mic:model=headset", None, "headset microphone"),
    ("mic:model=laptop", None, "laptop microphone"),
    ("mic:model=smartphone+speaker:model=small", None, "loudspeaker playback re-recorded by a smartphone (MST)"),
    ("bluetooth:mode=msbc", MSBC_KBPS, "Bluetooth HFP wideband speech (mSBC, 16 kHz)"),
    ("mic:model=headset+bluetooth:mode=msbc", MSBC_KBPS, "Bluetooth headset: headset microphone, then mSBC"),
    ("cable:hum_db=-30:hum_hz=50", None, "analogue line: 50 Hz mains hum at -30 dB"),
    ("cable:cutoff=4000:hum_db=-24:hum_hz=60", None, "long analogue line: 4 kHz roll-off, 60 Hz hum at -24 dB"),
)

CONDITIONS: dict[str, Condition] = {
    c.id: c
    for c in (
        Condition(
            "C01",
            "Opus, wideband",
            "opus_wb",
            "wb",
            "16 kHz",
            "6-30",
            _levels("opus:band=wb:kbps={:g}", (6, 12, 18, 24, 30)),
            _PAPER,
            f"{_CONFIG} (levels 1-2: 6, 12 kbps); levels 3-5 {_CHOICE}",
            ("opus",),
        ),
        Condition(
            "C02",
            "AMR, wideband",
            "amr_wb",
            "wb",
            "16 kHz",
            "6.6-23.05",
            _levels("amr-wb:kbps={:g}", (6.6, 8.85, 14.25, 18.25, 23.05)),
            _PAPER,
            f"{_CHOICE}, snapped to AMR-WB modes",
            ("amr-wb",),
        ),
        Condition(
            "C03",
            "Speex, wideband",
            "speex_wb",
            "wb",
            "16 kHz",
            "5.75-34.2",
            _levels("speex:band=wb:kbps={:g}", (5.75, 12.8, 20.6, 27.8, 34.2)),
            _PAPER,
            f"{_CHOICE}, snapped to Speex wideband CBR rates",
            ("speex",),
        ),
        Condition(
            "C04",
            "EnCodec (24 kHz model), wideband",
            "encodec_wb",
            "wb",
            "24 kHz model, 16 kHz audio",
            "1.5-24",
            _levels("encodec:kbps={:g}", _ENCODEC),
            _PAPER,
            "the model's five target bandwidths (facebook/encodec_24khz)",
            ("encodec",),
        ),
        Condition(
            "C05",
            "MP3, wideband",
            "mp3_wb",
            "wb",
            "16 kHz (MPEG-2) up to 160 kbps, 44.1 kHz (MPEG-1) above",
            "45-256",
            _levels("mp3:kbps={:g}", _MP3, notes=_MP3_NOTES),
            _PAPER,
            f"{_CHOICE}, snapped to Layer III bitrates",
            ("mp3",),
        ),
        Condition(
            "C06",
            "AAC-LC in M4A, wideband",
            "m4a_wb",
            "wb",
            "16 kHz up to 72 kbps; 24 and 32 kHz for 100 and 128 kbps (16 kHz mono AAC-LC carries at most 96)",
            "16-128",
            _levels("m4a:kbps={:g}", (16, 44, 72, 100, 128)),
            _PAPER,
            _CHOICE,
            ("m4a",),
        ),
        Condition(
            "C07",
            "MP3 then EnCodec, wideband",
            "mp3_encodec_wb",
            "wb",
            "as C05, then as C04",
            "45-256 / 1.5-24",
            _levels("mp3:kbps={:g}+encodec:kbps={:g}", tuple(zip(_MP3, _ENCODEC)), kbps=_ENCODEC, notes=_MP3_NOTES),
            _PAPER,
            f"{_CHOICE}: level k pairs MP3 level k with EnCodec level k",
            ("mp3", "encodec"),
        ),
        Condition(
            "C08",
            "Opus, narrowband",
            "opus_nb",
            "nb",
            "8 kHz",
            "4-20",
            _levels("opus:band=nb:kbps={:g}", (4, 8, 12, 16, 20)),
            _PAPER,
            _CHOICE,
            ("opus",),
        ),
        Condition(
            "C09",
            "AMR, narrowband",
            "amr_nb",
            "nb",
            "8 kHz",
            "4.75-12.2",
            _levels("amr-nb:kbps={:g}", (4.75, 6.7, 7.95, 10.2, 12.2)),
            _PAPER,
            f"{_CHOICE}, snapped to AMR-NB modes",
            ("amr-nb",),
        ),
        Condition(
            "C10",
            "Speex, narrowband",
            "speex_nb",
            "nb",
            "8 kHz",
            "3.95-24.6",
            _levels("speex:band=nb:kbps={:g}", (3.95, 8, 15, 18.2, 24.6)),
            _PAPER,
            f"{_CHOICE}, snapped to Speex narrowband CBR rates",
            ("speex",),
        ),
        Condition(
            "C11",
            "Device and channel: microphone, loudspeaker, Bluetooth, cable",
            "device_channel",
            "mixed",
            "16 kHz (mSBC at 16 kHz)",
            "-",
            tuple(Level(i + 1, spec, kbps, note) for i, (spec, kbps, note) in enumerate(_C11)),
            _PAPER,
            "cm (the sources name the effects, not the eight levels; see docs/degrade.md)",
            ("mic", "speaker", "bluetooth", "cable"),
        ),
    )
}


def is_condition(name: str) -> bool:
    return name.strip().upper() in CONDITIONS


def get_condition(name: str) -> Condition:
    key = name.strip().upper()
    if key not in CONDITIONS:
        raise CmError(f"unknown condition {name!r}", f"conditions: {', '.join(CONDITIONS)}")
    return CONDITIONS[key]


def pick_level(name: str, *, seed: int, utt_id: str) -> Level:
    """The level condition ``name`` uses for this utterance: uniform over its levels, reproducible."""
    from cm_cli.degrade.noise import stable_rng

    condition = get_condition(name)
    index = int(stable_rng(seed, utt_id, "condition", condition.id).integers(len(condition.levels)))
    return condition.levels[index]


def pick_condition(name: str, *, seed: int, utt_id: str) -> Spec:
    """The spec condition ``name`` uses for this utterance (its drawn level's spec)."""
    return pick_level(name, seed=seed, utt_id=utt_id).parsed()


def spec_bitrate_kbps(spec: "Spec | str") -> float | None:
    """Bitrate of the stream a spec delivers: the last coding step's bitrate (None if none has one)."""
    from cm_cli.degrade.registry import step_bitrate_kbps

    spec = parse_spec(spec) if isinstance(spec, str) else spec
    rate = None
    for step in spec.steps:
        value = step_bitrate_kbps(step)
        if value is not None:
            rate = value
    return rate


def condition_fields(label: str, spec: "Spec | str") -> tuple[str, str | None] | None:
    """(CODEC, CODEC_Q) of a row rendered under condition ``label`` with ``spec``; None if ``label`` is no condition."""
    if not label or not is_condition(label):
        return None
    condition = get_condition(label)
    canonical = (parse_spec(spec) if isinstance(spec, str) else spec).canonical()
    q = next((str(level.q) for level in condition.levels if level.parsed().canonical() == canonical), None)
    return condition.id, q
