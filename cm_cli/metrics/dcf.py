"""Detection cost (minDCF, actDCF) with the ASVspoof 5 Track 1 prior and costs.

Scores: higher = more bona fide; for actDCF they must be natural-log likelihood
ratios (bona fide vs spoof). The arithmetic follows the evaluation package operation
for operation (minDCF weighs FRR by ``Cmiss (1 - p_spoof)`` and FAR by
``Cfa (1 - (1 - p_spoof))``, and both normalise by the minimum of those two
weights), so results on the shared fixtures are bit-identical, not merely close.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.metrics.det import DetCurve, det_curve
from cm_cli.metrics.trials import check_scores

__all__ = ["CostParams", "min_dcf", "min_dcf_from_curve", "act_dcf", "act_dcf_counts"]


@dataclass(frozen=True)
class CostParams:
    """Spoof prior and error costs (official defaults: 0.05, 1, 10)."""

    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.p_spoof < 1.0:
            raise CmError(f"p_spoof must be strictly between 0 and 1, got {self.p_spoof}")
        if self.c_miss <= 0 or self.c_fa <= 0:
            raise CmError(f"costs must be positive, got c_miss={self.c_miss}, c_fa={self.c_fa}")

    @property
    def weights(self) -> tuple[float, float]:
        """(weight of FRR, weight of FAR) in the unnormalised cost."""
        p_bona = 1 - self.p_spoof
        return self.c_miss * p_bona, self.c_fa * (1 - p_bona)

    @property
    def normaliser(self) -> float:
        """Cost of the best trivial system: min(Cmiss (1-P), Cfa P)."""
        return min(self.weights)

    @property
    def bayes_threshold(self) -> float:
        """-ln(Cmiss (1-P) / (Cfa P)): the Bayes decision threshold on LLR scores."""
        return -math.log(self.c_miss * (1 - self.p_spoof) / (self.c_fa * self.p_spoof))

    def to_dict(self) -> dict:
        return asdict(self)


def min_dcf_from_curve(curve: DetCurve, params: CostParams = CostParams()) -> tuple[float, float]:
    """(normalised minDCF, threshold where it is reached) over the curve's points."""
    p_bona = 1 - params.p_spoof
    cost = params.c_miss * curve.frr * p_bona + params.c_fa * curve.far * (1 - p_bona)
    i = int(np.argmin(cost))
    return float(cost[i] / params.normaliser), float(curve.thresholds[i])


def min_dcf(
    bonafide: np.ndarray, spoof: np.ndarray, *, p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0
) -> float:
    """Normalised minimum DCF of bona fide and spoof scores."""
    return min_dcf_from_curve(det_curve(bonafide, spoof), CostParams(p_spoof, c_miss, c_fa))[0]


def act_dcf_counts(
    n_bona_missed: int, n_spoof_accepted: int, n_bonafide: int, n_spoof: int, params: CostParams = CostParams()
) -> float:
    """Normalised DCF from error counts at the Bayes threshold."""
    cost = params.c_miss * (1 - params.p_spoof) * (n_bona_missed / n_bonafide) + params.c_fa * params.p_spoof * (
        n_spoof_accepted / n_spoof
    )
    return float(cost / params.normaliser)


def act_dcf(
    bonafide: np.ndarray, spoof: np.ndarray, *, p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0
) -> float:
    """Normalised actual DCF: bona fide missed if score < threshold, spoof accepted if score >= threshold."""
    params = CostParams(p_spoof, c_miss, c_fa)
    bona = check_scores(bonafide, what="bona fide scores")
    spf = check_scores(spoof, what="spoof scores")
    if bona.size == 0 or spf.size == 0:
        raise CmError(f"actDCF needs both classes ({bona.size} bona fide, {spf.size} spoof)")
    thr = params.bayes_threshold
    return act_dcf_counts(
        int(np.count_nonzero(bona < thr)), int(np.count_nonzero(spf >= thr)), bona.size, spf.size, params
    )
