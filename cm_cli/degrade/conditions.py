"""Named codec conditions approximating ASVspoof 5's C01-C10, each a set of specs over a bitrate range.

ASVspoof 5 codes each utterance at a bitrate drawn from the condition's range, so
a condition here is a list of candidate specs; ``pick_condition`` chooses one per
utterance from a stable hash of (seed, utterance id, condition). The bitrate
ranges follow the ASVspoof 5 database description (codec table); the discrete
levels inside each range are this toolkit's choice (valid encoder modes where the
codec has modes, e.g. AMR). See docs/degrade.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from cm_cli.core.errors import CmError
from cm_cli.core.specs import Spec, expand_sweep

__all__ = ["Condition", "CONDITIONS", "get_condition", "pick_condition", "is_condition"]


@dataclass(frozen=True)
class Condition:
    id: str
    description: str
    sweep: str  # a spec with '|' alternatives
    kbps_range: str

    def specs(self) -> list[Spec]:
        return expand_sweep(self.sweep)


_MP3 = "48|64|96|128|192|256"
_ENCODEC = "1.5|3|6|12|24"

CONDITIONS: dict[str, Condition] = {
    c.id: c
    for c in (
        Condition("C01", "Opus wideband (16 kHz)", "opus:band=wb:kbps=6|8|12|16|24|30", "6-30"),
        Condition("C02", "AMR wideband (16 kHz)", "amr-wb:kbps=6.6|8.85|12.65|14.25|15.85|18.25|19.85|23.05", "6.6-23.05"),
        Condition("C03", "Speex wideband (16 kHz)", "speex:band=wb:kbps=5.75|7.75|9.8|12.8|16.8|20.6|23.8|27.8|34.2", "5.75-34.2"),
        Condition("C04", "EnCodec neural codec (24 kHz model)", f"encodec:kbps={_ENCODEC}", "1.5-24"),
        Condition("C05", "MP3", f"mp3:kbps={_MP3}", "45-256"),
        Condition("C06", "AAC in M4A", "m4a:kbps=16|32|64|96|128", "16-128"),
        Condition("C07", "MP3 then EnCodec", f"mp3:kbps={_MP3}+encodec:kbps={_ENCODEC}", "45-256 / 1.5-24"),
        Condition("C08", "Opus narrowband (8 kHz)", "opus:band=nb:kbps=4|6|8|12|16|20", "4-20"),
        Condition("C09", "AMR narrowband (8 kHz)", "amr-nb:kbps=4.75|5.15|5.9|6.7|7.4|7.95|10.2|12.2", "4.75-12.2"),
        Condition("C10", "Speex narrowband (8 kHz)", "speex:band=nb:kbps=3.95|5.95|8|11|15|18.2|24.6", "3.95-24.6"),
    )
}


def is_condition(name: str) -> bool:
    return name.strip().upper() in CONDITIONS


def get_condition(name: str) -> Condition:
    key = name.strip().upper()
    if key not in CONDITIONS:
        raise CmError(f"unknown condition {name!r}", f"conditions: {', '.join(CONDITIONS)}")
    return CONDITIONS[key]


def pick_condition(name: str, *, seed: int, utt_id: str) -> Spec:
    """The spec (one bitrate) condition ``name`` uses for this utterance; reproducible."""
    from cm_cli.degrade.noise import stable_rng

    condition = get_condition(name)
    specs = condition.specs()
    return specs[int(stable_rng(seed, utt_id, "condition", condition.id).integers(len(specs)))]
