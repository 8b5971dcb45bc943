"""What the numbers in a score column are, and how to turn them into LLR-like scores.

Scores: higher = more bona fide. ``raw`` uses them as given (as the official package
does, so actDCF and Cllr read them as natural-log LLRs); ``prob`` maps P(bona fide)
to log-odds ``log p - log(1 - p)`` after clipping p to [1e-15, 1 - 1e-15];
``logit`` marks scores that already are log-odds (used as given, like ``raw``, but
recorded as such in ``params``).
"""

from __future__ import annotations

import enum

import numpy as np

from cm_cli.core.errors import CmError

__all__ = ["ScoreKind", "PROB_CLIP", "to_llr"]

PROB_CLIP = 1e-15


class ScoreKind(str, enum.Enum):
    raw = "raw"
    prob = "prob"
    logit = "logit"


def to_llr(scores: np.ndarray, kind: ScoreKind | str = ScoreKind.raw) -> np.ndarray:
    """Float64 scores on the log-odds scale the cost metrics expect."""
    kind = ScoreKind(kind)
    values = np.asarray(scores, dtype=np.float64)
    if kind is not ScoreKind.prob:
        return values
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise CmError(f"--score-kind prob needs probabilities in [0, 1], found values in "
                      f"[{finite.min():.6g}, {finite.max():.6g}]",
                      "use --score-kind raw (or logit) for scores that are not probabilities")
    p = np.clip(values, PROB_CLIP, 1.0 - PROB_CLIP)
    return np.log(p) - np.log1p(-p)
