"""Bootstrap percentile intervals of overall EER and minDCF, fast enough for 1,000 resamples.

Scores: higher = more bona fide. Trials are sorted once; each resample only draws
counts (``np.bincount`` of random ranks), so a resampled DET curve is a weighted
cumulative sum over the fixed order, never a new sort. Without clusters, bona fide
and spoof trials are resampled separately (class sizes fixed); with clusters
(speaker, codec seed, ...), whole clusters are drawn with replacement and every
trial of a drawn cluster counts once per draw. Each resample's EER and minDCF equal
those of the official DET curve of the expanded resample (every copy a trial).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.metrics.dcf import CostParams
from cm_cli.metrics.trials import SortedTrials

__all__ = ["BootstrapResult", "bootstrap_ci"]


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile intervals and the resampled values (eer, min_dcf: (n_resamples,))."""

    eer: np.ndarray
    min_dcf: np.ndarray
    level: float
    n_resamples: int
    seed: int
    cluster_by: str | None
    n_clusters: int
    unit: str = "trial"

    def interval(self, values: np.ndarray) -> list[float]:
        alpha = (1.0 - self.level) / 2.0
        low, high = np.quantile(values, [alpha, 1.0 - alpha])
        return [float(low), float(high)]

    def to_dict(self) -> dict:
        return {
            "eer": self.interval(self.eer),
            "min_dcf": self.interval(self.min_dcf),
            "eer_std": float(np.std(self.eer, ddof=1)) if self.n_resamples > 1 else None,
            "min_dcf_std": float(np.std(self.min_dcf, ddof=1)) if self.n_resamples > 1 else None,
            "level": self.level,
            "method": "percentile",
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "cluster_by": self.cluster_by,
            "unit": self.unit,
            "n_clusters": self.n_clusters,
        }


@dataclass(frozen=True)
class _Runs:
    """Maximal runs of one class in the sorted order: at each run's end, how many bona
    fide and spoof trials lie at or below it (the start point (0, 0) included)."""

    bona_upto: np.ndarray
    spoof_upto: np.ndarray
    is_bona_run: np.ndarray  # for each run end after the start point

    @classmethod
    def of(cls, is_bona: np.ndarray) -> "_Runs":
        ends = np.concatenate([np.flatnonzero(is_bona[1:] != is_bona[:-1]) + 1, [is_bona.size]])
        bona_cum = np.concatenate([[0], np.cumsum(is_bona, dtype=np.int64)])
        bona_upto = bona_cum[np.concatenate([[0], ends])]
        spoof_upto = np.concatenate([[0], ends]) - bona_upto
        return cls(bona_upto, spoof_upto, is_bona[ends - 1])


def _weighted_point(bona_cum: np.ndarray, spoof_cum: np.ndarray, runs: _Runs,
                    params: CostParams) -> tuple[float, float]:
    """EER and normalised minDCF of one weighted DET curve.

    ``bona_cum``/``spoof_cum``: cumulative resampled counts per class in sorted order,
    with a leading 0. Within a run of one class FRR - FAR only grows, and the cost only
    grows (bona fide) or falls (spoof), so run ends locate the minimum cost and the run
    in which FRR - FAR crosses zero; only that run is expanded point by point.
    """
    n_bona = bona_cum[-1]
    n_spoof = spoof_cum[-1]
    if n_bona == 0 or n_spoof == 0:
        return np.nan, np.nan
    frr = bona_cum[runs.bona_upto] / n_bona
    far = (n_spoof - spoof_cum[runs.spoof_upto]) / n_spoof
    p_bona = 1 - params.p_spoof
    cost = params.c_miss * frr * p_bona + params.c_fa * far * (1 - p_bona)
    min_dcf = cost.min() / params.normaliser
    diff = frr - far
    q = int(np.argmax(diff >= 0))  # first run end at or past the crossing (the last one always is)
    # expand that run copy by copy: every resampled copy is its own point, as in the
    # DET curve of the expanded resample
    if runs.is_bona_run[q - 1]:
        low, high = bona_cum[runs.bona_upto[q - 1]], bona_cum[runs.bona_upto[q]]
        inner_frr = np.arange(low + 1, high + 1) / n_bona
        inner_far = np.full(inner_frr.size, far[q - 1])
    else:
        low, high = spoof_cum[runs.spoof_upto[q - 1]], spoof_cum[runs.spoof_upto[q]]
        inner_far = (n_spoof - np.arange(low + 1, high + 1)) / n_spoof
        inner_frr = np.full(inner_far.size, frr[q - 1])
    cand_frr = np.concatenate([[frr[q - 1]], inner_frr])
    cand_far = np.concatenate([[far[q - 1]], inner_far])
    i = int(np.argmin(np.abs(cand_frr - cand_far)))
    return float(0.5 * (cand_frr[i] + cand_far[i])), float(min_dcf)


def bootstrap_ci(trials: SortedTrials, *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
                 clusters: np.ndarray | None = None, cluster_by: str | None = None,
                 params: CostParams = CostParams(), unit: str | None = None) -> BootstrapResult:
    """Percentile bootstrap of EER and minDCF; ``clusters`` is aligned with the original trials
    (None: bona fide and spoof trials resampled separately, the unit is the trial)."""
    if n_resamples < 1:
        raise CmError(f"--bootstrap needs at least 1 resample, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise CmError(f"confidence level must be in (0, 1), got {level}")
    trials.require_both_classes()
    rng = np.random.default_rng(seed)
    is_bona = trials.is_bona
    runs = _Runs.of(is_bona)
    eers = np.empty(n_resamples)
    dcfs = np.empty(n_resamples)
    n_clusters = trials.n_bonafide + trials.n_spoof
    n_bona, n_spoof = trials.n_bonafide, trials.n_spoof
    zero = np.zeros(1, dtype=np.int64)
    if clusters is None:
        for r in range(n_resamples):
            bona_counts = np.bincount(rng.integers(0, n_bona, n_bona), minlength=n_bona)
            spoof_counts = np.bincount(rng.integers(0, n_spoof, n_spoof), minlength=n_spoof)
            eers[r], dcfs[r] = _weighted_point(np.concatenate([zero, np.cumsum(bona_counts)]),
                                               np.concatenate([zero, np.cumsum(spoof_counts)]), runs, params)
    else:
        keys = np.asarray(clusters, dtype=object)[trials.order].astype(str)
        _, codes = np.unique(keys, return_inverse=True)
        n_clusters = int(codes.max()) + 1
        if n_clusters < 2:
            raise CmError(f"--cluster-by {cluster_by}: only one cluster; a clustered bootstrap needs several")
        bona_codes, spoof_codes = codes[is_bona], codes[~is_bona]
        for r in range(n_resamples):
            draws = np.bincount(rng.integers(0, n_clusters, n_clusters), minlength=n_clusters)
            eers[r], dcfs[r] = _weighted_point(np.concatenate([zero, np.cumsum(draws[bona_codes])]),
                                               np.concatenate([zero, np.cumsum(draws[spoof_codes])]), runs, params)
    valid = np.isfinite(eers)
    if not valid.all():
        if not valid.any():
            raise CmError("every bootstrap resample lost one class", "use more clusters or no --cluster-by")
        eers, dcfs = eers[valid], dcfs[valid]
    unit = unit or ("trial" if clusters is None else (cluster_by or "cluster"))
    return BootstrapResult(eers, dcfs, level, int(eers.size), seed, cluster_by if clusters is not None else None,
                           n_clusters, unit)
