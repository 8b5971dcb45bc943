"""Logistic-regression calibration: raw scores -> natural-log LLRs (bona fide vs spoof).

Scores: higher = more bona fide. An affine map ``a * s + b`` is fitted on held-out
(dev) scores by unregularised logistic regression; its output is posterior log-odds
under the dev set's class ratio, so that ratio's log-odds ``ln(N_bona / N_spoof)`` is
subtracted to leave an LLR. actDCF and Cllr are meaningful on the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cm_cli.core.errors import CmError

__all__ = ["Calibration", "fit_calibration"]


@dataclass(frozen=True)
class Calibration:
    """``llr = slope * score + offset - prior_log_odds``."""

    slope: float
    offset: float
    prior_log_odds: float
    n_bonafide: int
    n_spoof: int

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return self.slope * np.asarray(scores, dtype=np.float64) + self.offset - self.prior_log_odds

    def to_dict(self) -> dict:
        return asdict(self)


def fit_calibration(scores: np.ndarray, is_bona: np.ndarray) -> Calibration:
    """Fit the affine score-to-LLR map on dev scores (both classes required)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(is_bona, dtype=bool).ravel()
    n_bona = int(y.sum())
    n_spoof = int(y.size - n_bona)
    if n_bona == 0 or n_spoof == 0:
        raise CmError(f"calibration scores have {n_bona} bona fide and {n_spoof} spoof trials; need both")
    if not np.isfinite(x).all():
        raise CmError("calibration scores contain NaN or infinite values")
    # centre and scale for a well-conditioned fit, then fold the scaling back
    centre, scale = float(x.mean()), float(x.std()) or 1.0
    model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000, tol=1e-10)
    model.fit((x - centre) / scale, y.astype(int))
    slope = float(model.coef_[0, 0] / scale)
    offset = float(model.intercept_[0] - model.coef_[0, 0] * centre / scale)
    return Calibration(slope, offset, float(np.log(n_bona) - np.log(n_spoof)), n_bona, n_spoof)
