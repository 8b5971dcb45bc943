"""Warnings for collapsed score distributions, returned as text (never printed).

Scores: higher = more bona fide. A detector whose scores sit almost all on one side
of a decision threshold, or saturate at one value, gives metrics that hinge on ties
and on a handful of trials; the report should say so next to the numbers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["collapse_warnings"]


def _side_warning(scores: np.ndarray, threshold: float, name: str, share: float) -> str | None:
    above = float(np.mean(scores >= threshold))
    side, frac = ("at or above", above) if above >= 0.5 else ("below", 1.0 - above)
    if frac >= share:
        return f"{100 * frac:.1f}% of scores are {side} the {name} ({threshold:.6g})"
    return None


def collapse_warnings(
    scores: np.ndarray,
    *,
    eer_threshold: float,
    bayes_threshold: float,
    side_share: float = 0.99,
    value_share: float = 0.10,
) -> list[str]:
    """Collapse warnings: almost all scores on one side of the EER or actDCF threshold,
    or one score value repeated for at least ``value_share`` of the trials."""
    scores = np.asarray(scores, dtype=np.float64)
    warnings = []
    if scores.size == 0:
        return warnings
    bayes = _side_warning(scores, bayes_threshold, "actDCF (Bayes) threshold", side_share)
    if bayes:
        warnings.append(
            bayes + ": actDCF/Cllr read scores as LLRs; fit a calibration on dev scores with "
            "--calibrate-on DEV_SCORES to get LLRs (--score-kind posterior only gives posterior "
            "log-odds, which still contain the training prior)"
        )
    eer_side = _side_warning(scores, eer_threshold, "EER threshold", side_share)
    if eer_side:
        warnings.append(eer_side + ": the EER rests on a few extreme trials")
    values, counts = np.unique(scores, return_counts=True)
    top = int(np.argmax(counts))
    if counts[top] / scores.size >= value_share and counts[top] > 1:
        warnings.append(
            f"score {values[top]:.9g} is repeated for {counts[top]} of {scores.size} trials "
            f"({100 * counts[top] / scores.size:.1f}%): saturated scores make metrics depend on ties"
        )
    return warnings
