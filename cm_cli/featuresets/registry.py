"""The feature-set registry: one entry per ``cm embed --backbone NAME`` that is not a neural backbone.

A feature set (prosody, codec reconstruction error, transcript statistics) turns decoded
16 kHz audio into named per-utterance features. ``cm embed`` writes them in the embeddings
table layout (DESIGN.md): ``utt_id``, one float32 fixed-size-list column per "layer"
(``layer_00`` …; a set with several operating points, e.g. codec bitrates, has one layer
each, all of one width), then every component again as a plain named column, then boolean
``flag_*`` columns. ``cm.feature_names`` in the Parquet metadata maps each layer to its
component names. So ``cm probe``, ``cm loao``, ``cm cka`` and ``cm train --features`` read a
feature set exactly as they read pooled embeddings, and pandas users get named columns.

The implementing module (``FeatureSetSpec.module``) provides
``build_extractor(backbone_id, *, device, options) -> extractor`` with

- ``layers``: ``{column: [component names]}`` (names unique across columns);
- ``flags``: flag column names; ``info``: a dict recorded in the run summary;
- ``extract(waves: list[np.ndarray]) -> FeatureBatch`` for 16 kHz mono float32 waves.

This module stays free of numpy/torch at import time (``cm --help`` and completion read it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["FeatureBatch", "FeatureSetSpec", "FEATURE_SETS", "feature_set_names", "get_feature_set", "is_feature_set"]


@dataclass
class FeatureBatch:
    """Features of a list of waves, row ``i`` for wave ``i``; every value finite."""

    vectors: dict[str, "np.ndarray"]  # layer column -> (B, D) float32
    flags: dict[str, "np.ndarray"]  # flag column -> (B,) bool
    extra: dict[str, "np.ndarray"] = field(default_factory=dict)  # other plain columns (B,), e.g. duration_s
    records: list[dict] | None = None  # one sidecar JSONL record per wave (transcripts), or None


@dataclass(frozen=True)
class FeatureSetSpec:
    """A registry entry: what ``--backbone NAME`` computes and what ``--backbone-id`` must name."""

    name: str
    module: str
    summary: str
    weights: str | None = None  # what --backbone-id names (None: the set needs no weights)
    download: str | None = None  # the command that fetches usable weights, for the missing-weights error

    def build(self, backbone_id: str | None, *, device: Any = "cpu", options: dict | None = None):
        if self.weights and not backbone_id:
            raise CmError(
                f"feature set {self.name} needs weights: {self.weights}",
                f"e.g. {self.download}" if self.download else None,
                option="backbone_id",
            )
        if not self.weights and backbone_id:
            raise CmError(
                f"feature set {self.name} takes no weights, but weights {backbone_id} were given",
                "leave the weights out",
                option="backbone_id",
            )
        module = importlib.import_module(self.module)
        return module.build_extractor(backbone_id, device=device, options=dict(options or {}))


FEATURE_SETS: dict[str, FeatureSetSpec] = {
    spec.name: spec
    for spec in (
        FeatureSetSpec(
            "prosody",
            "cm_cli.featuresets.prosody",
            "F0 (YIN), jitter, shimmer, energy, voicing, pause and speaking-rate statistics",
        ),
        FeatureSetSpec(
            "reconstruction",
            "cm_cli.featuresets.reconstruction",
            "how well a neural codec (DAC, EnCodec, Mimi) reproduces the audio, per bitrate",
            weights="a saved transformers DacModel, EncodecModel or MimiModel directory",
            download="hf download descript/dac_16khz --local-dir models/dac_16khz",
        ),
        FeatureSetSpec(
            "transcript",
            "cm_cli.featuresets.transcript",
            "Whisper transcript statistics: token log-probability, entropy, no-speech, fluency, lexicon",
            weights="a saved transformers Whisper model directory (with its processor)",
            download="hf download openai/whisper-tiny --local-dir models/whisper-tiny",
        ),
    )
}


def feature_set_names() -> list[str]:
    return list(FEATURE_SETS)


def is_feature_set(name: str | None) -> bool:
    return name is not None and str(name) in FEATURE_SETS


def get_feature_set(name: str) -> FeatureSetSpec:
    try:
        return FEATURE_SETS[str(name)]
    except KeyError:
        raise CmError(f"unknown feature set {name!r}", f"feature sets: {', '.join(FEATURE_SETS)}") from None
