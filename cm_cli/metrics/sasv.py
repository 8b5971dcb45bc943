"""Spoofing-robust speaker verification (ASVspoof 5 Track 2): a-DCF and t-EER.

Scores: higher = more target (SASV, ASV) and more bona fide (CM). Keys: ``target``,
``nontarget``, ``spoof``.

- a-DCF (Shim et al., Odyssey 2024), as the ASVspoof 5 package computes it: over the
  thresholds of one sorted SASV score list (first point: everything accepted),
  ``a-DCF(t) = Cmiss Ptar Pmiss(t) + Cfa_asv Pnon Pfa_non(t) + Cfa_cm Pspf Pfa_spf(t)``,
  normalised by ``min(Cfa_asv Pnon + Cfa_cm Pspf, Cmiss Ptar)``; the minimum is reported.
- t-EER (Kinnunen et al., IEEE/ACM TASLP 2023, "t-EER: parameter-free tandem evaluation"),
  as the ASVspoof 5 package computes it: the concurrent t-EER, i.e. the tandem error rate at
  the pair of ASV and CM thresholds where the tandem false-alarm rates of non-target and
  spoof trials are equal, found over the ASV thresholds in the region where the ASV alone
  misses less often than it falsely accepts. The package loops over every ASV threshold and
  every CM threshold; here the CM threshold of each ASV threshold is found by binary search
  (the tandem miss-minus-false-alarm function is monotone in the CM miss rate), giving the
  same index, so the same value, in O(n log n).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.metrics.det import det_curve
from cm_cli.metrics.trials import check_scores

__all__ = ["ADcfCosts", "ADcfResult", "a_dcf", "sasv_curves", "t_eer"]


@dataclass(frozen=True)
class ADcfCosts:
    """The ASVspoof 5 package's a-DCF cost model (a_dcf.py ``CostModel`` defaults)."""

    p_tar: float = 0.9
    p_non: float = 0.05
    p_spf: float = 0.05
    c_miss: float = 1.0
    c_fa_non: float = 10.0
    c_fa_spf: float = 20.0


@dataclass(frozen=True)
class ADcfResult:
    min_a_dcf: float
    threshold: float
    costs: ADcfCosts

    def to_dict(self) -> dict:
        return {"min_a_dcf": self.min_a_dcf, "threshold": self.threshold, "costs": asdict(self.costs)}


def _three(target, nontarget, spoof, what: str):
    tar, non, spf = (
        check_scores(v, what=f"{what} {k} scores")
        for v, k in ((target, "target"), (nontarget, "non-target"), (spoof, "spoof"))
    )
    missing = [k for k, v in (("target", tar), ("nontarget", non), ("spoof", spf)) if v.size == 0]
    if missing:
        raise CmError(
            f"{what}: no {', '.join(missing)} trials ({tar.size} target, {non.size} non-target, {spf.size} spoof)",
            "the key column must hold target, nontarget and spoof",
        )
    return tar, non, spf


def sasv_curves(target, nontarget, spoof):
    """(Pmiss, Pfa_non, Pfa_spf, thresholds), each (n + 1,), over the sorted pooled scores."""
    tar, non, spf = _three(target, nontarget, spoof, "SASV")
    scores = np.concatenate([tar, non, spf])
    labels = np.concatenate([np.ones(tar.size), np.zeros(non.size), -np.ones(spf.size)])
    order = np.argsort(scores, kind="mergesort")
    labels = labels[order]
    p_miss = np.concatenate([[0.0], np.cumsum(labels == 1) / tar.size])
    p_fa_non = np.concatenate([[1.0], 1 - np.cumsum(labels == 0) / non.size])
    p_fa_spf = np.concatenate([[1.0], 1 - np.cumsum(labels == -1) / spf.size])
    thresholds = np.concatenate([[scores[order[0]] - 0.001], scores[order]])
    return p_miss, p_fa_non, p_fa_spf, thresholds


def a_dcf(target, nontarget, spoof, costs: ADcfCosts = ADcfCosts()) -> ADcfResult:
    """Minimum normalised a-DCF of one SASV score list."""
    tar, non, spf = _three(target, nontarget, spoof, "SASV")
    scores = np.concatenate([tar, non, spf])
    labels = np.concatenate([np.ones(tar.size), np.zeros(non.size), np.full(spf.size, 2.0)])
    order = np.argsort(scores, kind="mergesort")
    labels = labels[order]
    # running counts as the package's loop keeps them (integers, then one division each)
    fa_non = np.concatenate([[non.size], non.size - np.cumsum(labels == 0)]) / non.size
    fa_spf = np.concatenate([[spf.size], spf.size - np.cumsum(labels == 2)]) / spf.size
    miss = np.concatenate([[0], np.cumsum(labels == 1)]) / tar.size
    thresholds = np.concatenate([[float(np.min(scores)) - 1e-8], scores[order]])
    values = (
        (costs.c_miss * costs.p_tar) * miss
        + (costs.c_fa_non * costs.p_non) * fa_non
        + (costs.c_fa_spf * costs.p_spf) * fa_spf
    )
    values = values / min(costs.c_fa_non * costs.p_non + costs.c_fa_spf * costs.p_spf, costs.c_miss * costs.p_tar)
    index = int(np.argmin(values))
    return ADcfResult(float(values[index]), float(thresholds[index]), costs)


def _cm_index(p_miss_cm: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each ASV point, the first CM index minimising |Pmiss_tdm - Pfa_tdm| (the package's argmin)."""
    # h(j) = Pmiss_cm[j] + (1 - Pmiss_cm[j]) a - (1 - Pmiss_cm[j]) b is non-decreasing in j when
    # a < b, so its smallest |h| sits at the crossing; compare the first index of the plateaus
    # around it exactly as the package evaluates h.
    starts = np.flatnonzero(np.concatenate([[True], p_miss_cm[1:] != p_miss_cm[:-1]]))
    values = p_miss_cm[starts]
    target = (b - a) / (1 - a + b)
    pos = np.searchsorted(values, target, side="left")
    best = np.zeros(a.size, dtype=np.int64)
    best_h = np.full(a.size, np.inf)
    for shift in (-2, -1, 0, 1):
        cand = np.clip(pos + shift, 0, values.size - 1)
        j = starts[cand]
        pm = p_miss_cm[j]
        h = np.abs((pm + (1 - pm) * a) - (1 - pm) * b)
        better = (h < best_h) | ((h == best_h) & (j < best))
        best = np.where(better, j, best)
        best_h = np.where(better, h, best_h)
    return best


def t_eer(cm_scores, asv_scores, keys) -> float:
    """Concurrent t-EER (a fraction) of a CM and an ASV system scored on the same trials."""
    cm = check_scores(cm_scores, what="CM scores")
    asv = check_scores(asv_scores, what="ASV scores")
    keys = np.asarray(keys).astype(str)
    if not (cm.size == asv.size == keys.size):
        raise CmError(
            f"t-EER needs one CM and one ASV score per trial ({cm.size} CM, {asv.size} ASV, {keys.size} keys)"
        )
    tar, non, spf = keys == "target", keys == "nontarget", keys == "spoof"
    p_miss_asv, p_fa_non, p_fa_spf, _ = sasv_curves(asv[tar], asv[non], asv[spf])
    cm_curve = det_curve(np.concatenate([cm[tar], cm[non]]), cm[spf])
    p_miss_cm, p_fa_cm = cm_curve.frr, cm_curve.far
    allowed = p_miss_asv < p_fa_non
    if not np.any(allowed):
        raise CmError("t-EER undefined: the ASV system never misses less often than it falsely accepts")
    a, b = p_miss_asv[allowed], p_fa_non[allowed]
    j = _cm_index(p_miss_cm, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        lhs = b / p_fa_spf[allowed]
        rhs = p_fa_cm[j] / (1 - p_miss_cm[j])
        crit = np.abs(lhs - rhs)
    crit = np.where(np.isnan(crit), np.inf, crit)
    if not np.any(np.isfinite(crit)):
        raise CmError("t-EER undefined: no ASV operating point has spoof false alarms and CM acceptances to balance")
    k = int(np.argmin(crit))
    return float(p_fa_spf[allowed][k] * p_fa_cm[j[k]])
