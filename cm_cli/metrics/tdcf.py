"""Tandem detection cost function (t-DCF): a countermeasure scored together with a fixed ASV system.

Scores: higher = more bona fide (CM) and more target (ASV), as in the ASVspoof packages.
Three formulations, each as the official package of its corpus computes it (docs/metrics.md
cites the sources):

- ``legacy``: ASVspoof 2019 evaluation plan (Kinnunen et al., Odyssey 2018).
  ``C1 = Ptar (Cmiss_cm - Cmiss_asv Pmiss_asv) - Pnon Cfa_asv Pfa_asv``,
  ``C2 = Cfa_cm Pspoof (1 - Pmiss_spoof_asv)``,
  ``t-DCF(s) = (C1 Pmiss_cm(s) + C2 Pfa_cm(s)) / min(C1, C2)``.
- ``revised``: ASVspoof 2021 (Kinnunen et al., IEEE/ACM TASLP 2020).
  ``C0 = Ptar Cmiss Pmiss_asv + Pnon Cfa Pfa_asv``, ``C1 = Ptar Cmiss - C0``,
  ``C2 = Pspoof Cfa_spoof Pfa_spoof_asv``,
  ``t-DCF(s) = (C0 + C1 Pmiss_cm(s) + C2 Pfa_cm(s)) / (C0 + min(C1, C2))``.
- ``asvspoof5``: the ASVspoof 5 package's min t-DCF: the legacy form with the organisers'
  fixed ASV error rates, so a CM score file alone suffices.

The ASV operating point is the ASV EER threshold (target vs non-target) of the official
DET curve; the CM curve is the official DET curve (cm_cli.metrics.det).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.metrics.det import det_curve
from cm_cli.metrics.summary import eer_from_curve
from cm_cli.metrics.trials import check_scores

__all__ = [
    "AsvRates",
    "LegacyCosts",
    "RevisedCosts",
    "TdcfResult",
    "ASVSPOOF5_ASV_RATES",
    "asv_error_rates",
    "tdcf_curve",
    "min_tdcf",
]

P_SPOOF = 0.05  # all three plans: prior of a spoofing attack


@dataclass(frozen=True)
class LegacyCosts:
    """Cost model of the ASVspoof 2019 evaluation plan (also the ASVspoof 5 package's t-DCF)."""

    p_spoof: float = P_SPOOF
    p_tar: float = (1 - P_SPOOF) * 0.99
    p_non: float = (1 - P_SPOOF) * 0.01
    c_miss_asv: float = 1.0
    c_fa_asv: float = 10.0
    c_miss_cm: float = 1.0
    c_fa_cm: float = 10.0


@dataclass(frozen=True)
class RevisedCosts:
    """Cost model of the ASVspoof 2021 evaluation plan (revised t-DCF)."""

    p_spoof: float = P_SPOOF
    p_tar: float = (1 - P_SPOOF) * 0.99
    p_non: float = (1 - P_SPOOF) * 0.01
    c_miss: float = 1.0
    c_fa: float = 10.0
    c_fa_spoof: float = 10.0


@dataclass(frozen=True)
class AsvRates:
    """ASV error rates at one threshold: fractions, not percentages."""

    p_fa: float
    p_miss: float
    p_miss_spoof: float
    p_fa_spoof: float
    threshold: float | None = None
    eer: float | None = None
    n_target: int = 0
    n_nontarget: int = 0
    n_spoof: int = 0


# The ASVspoof 5 evaluation package's "default ASV from organizers" (calculate_metrics.py,
# calculate_aDCF_tdcf_tEER): Pfa_non, Pmiss, Pfa_spoof of the organisers' ASV system.
ASVSPOOF5_ASV_RATES = AsvRates(
    p_fa=0.01881016557566423,
    p_miss=0.01880141010575793,
    p_miss_spoof=1 - 0.4607082907604729,
    p_fa_spoof=0.4607082907604729,
)


@dataclass(frozen=True)
class TdcfResult:
    """Minimum normalised t-DCF, the CM threshold reaching it, and the model behind it."""

    min_tdcf: float
    threshold: float
    formulation: str
    c0: float
    c1: float
    c2: float
    asv: AsvRates
    costs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "min_tdcf": self.min_tdcf,
            "threshold": self.threshold,
            "formulation": self.formulation,
            "c0": self.c0,
            "c1": self.c1,
            "c2": self.c2,
            "asv": asdict(self.asv),
            "costs": dict(self.costs),
        }


def asv_error_rates(target, nontarget, spoof, *, threshold: float | None = None) -> AsvRates:
    """ASV rates at ``threshold`` (default: the ASV EER threshold), as the official packages compute them."""
    tar = check_scores(target, what="ASV target scores")
    non = check_scores(nontarget, what="ASV non-target scores")
    spf = check_scores(spoof, what="ASV spoof scores")
    if tar.size == 0 or non.size == 0:
        raise CmError(
            f"ASV scores: {tar.size} target and {non.size} non-target trials; the ASV operating point needs both",
            "check the ASV key column (target, nontarget, spoof)",
        )
    if spf.size == 0:
        raise CmError(
            "ASV scores have no spoof trials: t-DCF needs the ASV system's spoof false-alarm rate",
            "use the ASV score file of the corpus (it keys spoof trials as 'spoof')",
        )
    eer = None
    if threshold is None:
        eer, threshold = eer_from_curve(det_curve(tar, non))
    return AsvRates(
        p_fa=float(np.count_nonzero(non >= threshold) / non.size),
        p_miss=float(np.count_nonzero(tar < threshold) / tar.size),
        p_miss_spoof=float(np.count_nonzero(spf < threshold) / spf.size),
        p_fa_spoof=float(np.count_nonzero(spf >= threshold) / spf.size),
        threshold=float(threshold),
        eer=eer,
        n_target=int(tar.size),
        n_nontarget=int(non.size),
        n_spoof=int(spf.size),
    )


def _check_priors(p_tar: float, p_non: float, p_spoof: float) -> None:
    if min(p_tar, p_non, p_spoof) < 0 or abs(p_tar + p_non + p_spoof - 1) > 1e-10:
        raise CmError(
            f"t-DCF priors must be non-negative and sum to one (Ptar {p_tar}, Pnon {p_non}, Pspoof {p_spoof})"
        )


def _weights(asv: AsvRates, formulation: str, costs) -> tuple[float, float, float, float]:
    """(C0, C1, C2, normaliser) of one formulation."""
    if formulation in ("legacy", "asvspoof5"):
        c = costs if isinstance(costs, LegacyCosts) else LegacyCosts(**(costs or {}))
        _check_priors(c.p_tar, c.p_non, c.p_spoof)
        c1 = c.p_tar * (c.c_miss_cm - c.c_miss_asv * asv.p_miss) - c.p_non * c.c_fa_asv * asv.p_fa
        c2 = c.c_fa_cm * c.p_spoof * (1 - asv.p_miss_spoof)
        c0, norm = 0.0, min(c1, c2)
    elif formulation == "revised":
        c = costs if isinstance(costs, RevisedCosts) else RevisedCosts(**(costs or {}))
        _check_priors(c.p_tar, c.p_non, c.p_spoof)
        c0 = c.p_tar * c.c_miss * asv.p_miss + c.p_non * c.c_fa * asv.p_fa
        c1 = c.p_tar * c.c_miss - c0
        c2 = c.p_spoof * c.c_fa_spoof * asv.p_fa_spoof
        norm = c0 + min(c1, c2)
    else:
        raise CmError(f"unknown t-DCF formulation {formulation!r}", "use legacy, revised or asvspoof5")
    if c0 < 0 or c1 < 0 or c2 < 0 or norm <= 0:
        raise CmError(
            f"t-DCF weights are not positive (C0 {c0:.6g}, C1 {c1:.6g}, C2 {c2:.6g}) for ASV rates "
            f"Pfa {asv.p_fa:.4g}, Pmiss {asv.p_miss:.4g}, Pfa_spoof {asv.p_fa_spoof:.4g}",
            "the ASV system is worse than chance at its EER threshold, or its spoof trials are all rejected",
        )
    return c0, c1, c2, norm


def tdcf_curve(bonafide, spoof, asv: AsvRates, *, formulation: str = "revised", costs=None):
    """Normalised t-DCF at every CM threshold of the official DET curve: (curve, thresholds, (C0, C1, C2))."""
    bona = check_scores(bonafide, what="CM bona fide scores")
    spf = check_scores(spoof, what="CM spoof scores")
    if bona.size == 0 or spf.size == 0:
        raise CmError(f"t-DCF needs bona fide and spoof CM trials ({bona.size} bona fide, {spf.size} spoof)")
    if np.unique(np.concatenate([bona, spf])).size < 3:
        raise CmError("t-DCF needs soft CM scores, not hard decisions (fewer than 3 distinct values)")
    c0, c1, c2, norm = _weights(asv, formulation, costs)
    curve = det_curve(bona, spf)
    return (c0 + c1 * curve.frr + c2 * curve.far) / norm, curve.thresholds, (c0, c1, c2)


def _costs_dict(formulation: str, costs) -> dict:
    if isinstance(costs, (LegacyCosts, RevisedCosts)):
        return asdict(costs)
    default = RevisedCosts() if formulation == "revised" else LegacyCosts()
    return {**asdict(default), **(costs or {})}


def min_tdcf(
    bonafide, spoof, asv: AsvRates = ASVSPOOF5_ASV_RATES, *, formulation: str = "revised", costs=None
) -> TdcfResult:
    """Minimum normalised t-DCF over CM thresholds (first minimum, as ``np.argmin`` in the packages)."""
    values, thresholds, (c0, c1, c2) = tdcf_curve(bonafide, spoof, asv, formulation=formulation, costs=costs)
    index = int(np.argmin(values))
    return TdcfResult(
        float(values[index]), float(thresholds[index]), formulation, c0, c1, c2, asv, _costs_dict(formulation, costs)
    )
