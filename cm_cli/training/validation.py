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


def dev_metrics(scores: np.ndarray, is_bonafide: np.ndarray) -> DevMetrics:
    """EER and minDCF (p_spoof 0.05, c_miss 1, c_fa 10) of scores against bona fide flags."""
    from cm_cli.metrics.dcf import CostParams
    from cm_cli.metrics.summary import eer_and_min_dcf

    scores = np.asarray(scores, dtype=np.float64)
    is_bonafide = np.asarray(is_bonafide, dtype=bool)
    eer, dcf = eer_and_min_dcf(scores[is_bonafide], scores[~is_bonafide], CostParams(0.05, 1.0, 10.0))
    return DevMetrics(eer, dcf, int(is_bonafide.sum()), int((~is_bonafide).sum()))


def usable_dev(labels) -> str | None:
    """None if a dev split with these labels can select a model, else the reason it cannot."""
    values = set(labels)
    if not values:
        return "no dev split"
    if len(values & {"bonafide", "spoof"}) < 2:
        return f"the dev split has only {', '.join(sorted(values))} utterances"
    return None
