"""Metrics per group of a column (codec, attack, domain, ...) from trials sorted once.

Scores: higher = more bona fide. A group with bona fide and spoof trials is scored on
its own trials; a group with spoof trials only (an attack) is scored against the
whole bona fide pool, so per-attack EER = that attack's spoofs vs all bona fide; a
group with bona fide trials only has counts but no metrics. Groups with fewer than
``min_trials`` bona fide or spoof trials are flagged ``small``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cm_cli.metrics.dcf import CostParams
from cm_cli.metrics.summary import METRIC_KEYS, Metrics, metrics_from_sorted
from cm_cli.metrics.trials import SortedTrials

__all__ = ["NULL_KEY", "GroupMetrics", "key_strings", "breakdown", "summarise_groups"]

NULL_KEY = "none"


@dataclass(frozen=True)
class GroupMetrics:
    """One group's metrics (None when it has no spoof trials) and how it was scored.

    In ``to_dict``, ``n_bonafide`` counts the bona fide trials the metrics used (the
    whole pool for ``bonafide_pool == "all"``); ``n_bonafide_group`` those of the group.
    """

    value: str
    metrics: Metrics | None
    n_bonafide: int
    n_spoof: int
    bonafide_pool: str  # "group" (its own bona fide), "all" (the whole pool) or "none" (not scored)
    small: bool

    def to_dict(self) -> dict:
        if self.metrics is not None:
            record = self.metrics.to_dict()
        else:
            record = {key: None for key in METRIC_KEYS}
            record["n_bonafide"], record["n_spoof"] = self.n_bonafide, self.n_spoof
        record["n_bonafide_group"] = self.n_bonafide
        record["bonafide_pool"] = self.bonafide_pool
        record["small"] = self.small
        return record


def key_strings(values) -> np.ndarray:
    """Group keys as strings; nulls (None, NaN, pandas NA) become ``"none"``."""
    import pandas as pd

    series = pd.Series(values, dtype=object)
    return np.where(series.isna().to_numpy(), NULL_KEY, series.astype(str).to_numpy()).astype(object)


def breakdown(
    trials: SortedTrials, keys: np.ndarray, *, params: CostParams = CostParams(), min_trials: int = 20
) -> list[GroupMetrics]:
    """Per-group metrics; ``keys`` is aligned with the *original* (unsorted) trials."""
    keys_sorted = np.asarray(keys, dtype=object)[trials.order]
    values, codes = np.unique(keys_sorted.astype(str), return_inverse=True)
    counts_total = np.bincount(codes, minlength=values.size)
    counts_bona = np.bincount(codes, weights=trials.is_bona, minlength=values.size).astype(np.int64)
    results = []
    for g, value in enumerate(values.tolist()):
        n_bona = int(counts_bona[g])
        n_spoof = int(counts_total[g] - n_bona)
        mask = codes == g
        if n_spoof == 0:
            metrics, pool = None, "none"
        elif n_bona == 0:
            metrics, pool = metrics_from_sorted(trials.take(mask | trials.is_bona), params), "all"
        else:
            metrics, pool = metrics_from_sorted(trials.take(mask), params), "group"
        small = min(n_bona if pool == "group" else trials.n_bonafide, n_spoof) < min_trials
        results.append(GroupMetrics(value, metrics, n_bona, n_spoof, pool, small))
    return results


def summarise_groups(groups: list[GroupMetrics], pooled: Metrics) -> dict:
    """Pooled (all trials together) and averaged (unweighted mean over scored groups) summaries."""
    scored = [g for g in groups if g.metrics is not None]
    summary: dict = {
        "n_groups": len(groups),
        "n_scored": len(scored),
        "n_small": sum(g.small for g in groups),
        "pooled": {"eer": pooled.eer, "min_dcf": pooled.min_dcf, "act_dcf": pooled.act_dcf, "cllr": pooled.cllr},
    }
    if scored:
        summary["averaged"] = {
            key: float(np.mean([getattr(g.metrics, key) for g in scored]))
            for key in ("eer", "min_dcf", "act_dcf", "cllr")
        }
        worst = max(scored, key=lambda g: g.metrics.eer)
        best = min(scored, key=lambda g: g.metrics.eer)
        summary["worst"] = {"value": worst.value, "eer": worst.metrics.eer}
        summary["best"] = {"value": best.value, "eer": best.metrics.eer}
    return summary
