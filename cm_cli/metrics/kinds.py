"""What the numbers in a score column are, and how to put them on the log-odds scale.

Scores: higher = more bona fide. ``raw`` uses them as given (as the official package
does, so actDCF and Cllr read them as natural-log LLRs); ``posterior`` maps a
classifier's P(bona fide) to log-odds ``log p - log(1 - p)`` after clipping p to
[1e-15, 1 - 1e-15]. Those are *posterior* log-odds: they still contain the class prior
of the training data, so they are not LLRs; only a calibration fitted on dev scores
(``--calibrate-on``) removes it. ``prob`` is the deprecated name of ``posterior``.
``logit`` marks scores that already are log-odds (used as given, recorded in ``params``).
"""

from __future__ import annotations

import enum

import numpy as np

from cm_cli.core.errors import CmError

__all__ = ["ScoreKind", "PROB_CLIP", "DEPRECATED_KINDS", "canonical_kind", "to_llr"]

PROB_CLIP = 1e-15


class ScoreKind(str, enum.Enum):
    raw = "raw"
    posterior = "posterior"
    prob = "prob"  # deprecated alias of posterior
    logit = "logit"


DEPRECATED_KINDS = {ScoreKind.prob: ScoreKind.posterior}


def canonical_kind(kind: ScoreKind | str) -> ScoreKind:
    """The kind a (possibly deprecated) name stands for."""
    kind = ScoreKind(kind)
    return DEPRECATED_KINDS.get(kind, kind)


def to_llr(scores: np.ndarray, kind: ScoreKind | str = ScoreKind.raw) -> np.ndarray:
    """Float64 scores on the log-odds scale the cost metrics read (posterior log-odds for
    ``posterior``: see the module docstring)."""
    kind = canonical_kind(kind)
    values = np.asarray(scores, dtype=np.float64)
    if kind is not ScoreKind.posterior:
        return values
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise CmError(
            f"posterior scores must be probabilities in [0, 1], found values in "
            f"[{finite.min():.6g}, {finite.max():.6g}]",
            "use the raw (or logit) score kind for scores that are not probabilities",
            option="score_kind",
        )
    p = np.clip(values, PROB_CLIP, 1.0 - PROB_CLIP)
    return np.log(p) - np.log1p(-p)
