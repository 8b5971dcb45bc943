"""All detection metrics of one set of trials from a single sort: the ``Metrics`` record.

Scores: higher = more bona fide; actDCF and Cllr read them as natural-log LLRs (see
``kinds.to_llr``). The DET curve, the tie groups and the PAV blocks are computed once
per set of trials and shared by every metric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from cm_cli.metrics.dcf import CostParams, act_dcf_counts, min_dcf_from_curve
from cm_cli.metrics.det import DetCurve, det_from_sorted
from cm_cli.metrics.hull import auc_from_groups, eer_from_blocks, min_cllr_from_blocks, pav_blocks
from cm_cli.metrics.trials import SortedTrials, from_pools

__all__ = [
    "Metrics",
    "METRIC_KEYS",
    "SHOWN_KEYS",
    "HEADLINE_KEYS",
    "format_metric",
    "metric_label",
    "metrics_from_sorted",
    "compute_metrics",
    "eer",
    "eer_from_curve",
    "eer_and_min_dcf",
    "eer_rocch",
    "cllr",
    "min_cllr",
    "auc",
]


@dataclass(frozen=True)
class Metrics:
    """The ``overall`` record of metrics.json (rates are fractions, Cllr in bits)."""

    eer: float
    eer_threshold: float
    eer_rocch: float
    min_dcf: float
    act_dcf: float
    cllr: float
    min_cllr: float
    auc: float
    n_bonafide: int
    n_spoof: int

    def to_dict(self) -> dict:
        return asdict(self)


METRIC_KEYS = tuple(f.name for f in fields(Metrics))
# what tables show: every rate/cost metric, and the headline four in compact tables;
# printers and summaries iterate over these, so a new metric is added here only
SHOWN_KEYS = tuple(k for k in METRIC_KEYS if k not in ("eer_threshold", "n_bonafide", "n_spoof"))
HEADLINE_KEYS = ("eer", "min_dcf", "act_dcf", "cllr")
_LABELS = {
    "eer": "EER %",
    "eer_rocch": "EER (ROCCH) %",
    "min_dcf": "minDCF",
    "act_dcf": "actDCF",
    "cllr": "Cllr",
    "min_cllr": "minCllr",
    "auc": "AUC",
}


def metric_label(name: str) -> str:
    """Column header of a metric in printed tables."""
    return _LABELS.get(name, name)


def format_metric(name: str, value: float | None) -> str:
    """A metric as printed: rates named ``eer*`` in percent (3 decimals), others to 4 decimals."""
    if value is None:
        return "-"
    return f"{100 * value:.3f}" if name.startswith("eer") else f"{value:.4f}"


def eer_from_curve(curve: DetCurve) -> tuple[float, float]:
    """(EER, threshold): mean of FRR and FAR at argmin |FRR - FAR| (first on ties)."""
    i = int(np.argmin(np.abs(curve.frr - curve.far)))
    return float(np.mean((curve.frr[i], curve.far[i]))), float(curve.thresholds[i])


def eer_and_min_dcf(bonafide: np.ndarray, spoof: np.ndarray, params: CostParams = CostParams()) -> tuple[float, float]:
    """(EER, normalised minDCF) from one DET curve: what model selection and the analyses need."""
    curve = det_from_sorted(from_pools(bonafide, spoof))
    return eer_from_curve(curve)[0], float(min_dcf_from_curve(curve, params)[0])


def _cllr_sorted(trials: SortedTrials) -> float:
    bona = trials.scores[trials.is_bona]
    spoof = trials.scores[~trials.is_bona]
    return _cllr(bona, spoof)


def _cllr(bona: np.ndarray, spoof: np.ndarray) -> float:
    ln2 = np.log(2.0)
    return float(0.5 * (np.mean(np.logaddexp(0.0, -bona)) + np.mean(np.logaddexp(0.0, spoof))) / ln2)


def metrics_from_sorted(trials: SortedTrials, params: CostParams = CostParams()) -> Metrics:
    """Every metric of already-sorted trials (both classes required)."""
    curve = det_from_sorted(trials)
    eer_value, eer_thr = eer_from_curve(curve)
    min_dcf_value, _ = min_dcf_from_curve(curve, params)
    thr = params.bayes_threshold
    below = trials.scores < thr
    missed = int(np.count_nonzero(below & trials.is_bona))
    accepted = int(np.count_nonzero(~below & ~trials.is_bona))
    _, bona_counts, spoof_counts = trials.tie_groups()
    blocks = pav_blocks(bona_counts, spoof_counts)
    return Metrics(
        eer=eer_value,
        eer_threshold=eer_thr,
        eer_rocch=eer_from_blocks(blocks),
        min_dcf=min_dcf_value,
        act_dcf=act_dcf_counts(missed, accepted, curve.n_bonafide, curve.n_spoof, params),
        cllr=_cllr_sorted(trials),
        min_cllr=min_cllr_from_blocks(blocks),
        auc=auc_from_groups(bona_counts, spoof_counts),
        n_bonafide=curve.n_bonafide,
        n_spoof=curve.n_spoof,
    )


def compute_metrics(
    bonafide: np.ndarray, spoof: np.ndarray, *, p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0
) -> Metrics:
    """Every metric from bona fide and spoof score arrays."""
    return metrics_from_sorted(from_pools(bonafide, spoof), CostParams(p_spoof, c_miss, c_fa))


def eer(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    """Official EER (fraction) of bona fide vs spoof scores."""
    return eer_from_curve(det_from_sorted(from_pools(bonafide, spoof)))[0]


def _blocks(bonafide: np.ndarray, spoof: np.ndarray):
    trials = from_pools(bonafide, spoof)
    trials.require_both_classes()
    return trials.tie_groups()


def eer_rocch(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    """EER of the ROC convex hull (fraction)."""
    _, b, s = _blocks(bonafide, spoof)
    return eer_from_blocks(pav_blocks(b, s))


def min_cllr(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    """Cllr (bits) after optimal monotone calibration (PAV)."""
    _, b, s = _blocks(bonafide, spoof)
    return min_cllr_from_blocks(pav_blocks(b, s))


def auc(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    """Area under the ROC curve: P(bona fide scores above spoof), ties counted half."""
    _, b, s = _blocks(bonafide, spoof)
    return auc_from_groups(b, s)


def cllr(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    """Cllr in bits, scores read as natural-log LLRs (bona fide vs spoof)."""
    trials = from_pools(bonafide, spoof)
    trials.require_both_classes()
    return _cllr(trials.scores[trials.is_bona], trials.scores[~trials.is_bona])
