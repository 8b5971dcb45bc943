"""Dev-set metrics used for model selection: EER and minDCF with the official definitions.

Both come from ``cm_cli.metrics`` (one DET curve, sorted once); scores are
higher = more bona fide. A split without both classes cannot select a model:
``usable_dev`` says why, and the loop then trains without early stopping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DevMetrics", "dev_metrics", "usable_dev"]


@dataclass(frozen=True)
class DevMetrics:
    eer: float
    min_dcf: float
    n_bonafide: int
    n_spoof: int


def _eer_from_curve(curve) -> float:
    gap = np.abs(curve.frr - curve.far)
    i = int(np.argmin(gap))
    return float((curve.frr[i] + curve.far[i]) / 2.0)


def dev_metrics(scores: np.ndarray, is_bonafide: np.ndarray) -> DevMetrics:
    """EER and minDCF (p_spoof 0.05, c_miss 1, c_fa 10) of scores against bona fide flags."""
    from cm_cli.metrics.dcf import CostParams, min_dcf_from_curve
    from cm_cli.metrics.det import det_curve

    scores = np.asarray(scores, dtype=np.float64)
    is_bonafide = np.asarray(is_bonafide, dtype=bool)
    curve = det_curve(scores[is_bonafide], scores[~is_bonafide])
    dcf, _ = min_dcf_from_curve(curve, CostParams(0.05, 1.0, 10.0))
    return DevMetrics(_eer_from_curve(curve), float(dcf), int(is_bonafide.sum()), int((~is_bonafide).sum()))


def usable_dev(labels) -> str | None:
    """None if a dev split with these labels can select a model, else the reason it cannot."""
    values = set(labels)
    if not values:
        return "no dev split"
    if len(values & {"bonafide", "spoof"}) < 2:
        return f"the dev split has only {', '.join(sorted(values))} utterances"
    return None
