"""Out-of-domain gap: how much worse a detector does outside its training conditions.

Scores: higher = more bona fide. In-domain trials are those whose domain value is in
the given set (e.g. ``none`` or ``clean``), out-of-domain trials all others; a side
without bona fide trials is scored against the whole bona fide pool. Definitions
(also in docs/metrics.md): ``gap_abs_points = 100 (EER_out - EER_in)``,
``gap_rel = EER_out / EER_in - 1``; against a baseline's metrics.json,
``gap_reduction = 1 - gap_abs / gap_abs_baseline`` and
``gap_reduction_points = gap_abs_baseline - gap_abs``.

With ``seen`` (the domains the run trained on, augmentation included), the
out-of-domain trials are split into ``seen`` (coded/degraded like some training data)
and ``unseen``, each measured against the same in-domain side, so that a gap
"reduction" from augmenting with a codec is not mistaken for generalisation.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.metrics.dcf import CostParams
from cm_cli.metrics.summary import metrics_from_sorted
from cm_cli.metrics.trials import SortedTrials

__all__ = ["ood_gap", "gap_reduction", "split_gap"]


def _side(trials: SortedTrials, mask: np.ndarray, params: CostParams):
    has_bona = bool(np.any(mask & trials.is_bona))
    chosen = mask if has_bona else (mask | trials.is_bona)
    return metrics_from_sorted(trials.take(chosen), params), "group" if has_bona else "all"


def split_gap(
    trials: SortedTrials, keys: np.ndarray, mask: np.ndarray, eer_in: float, params: CostParams = CostParams()
) -> dict:
    """One side of the split (``mask`` over sorted trials) measured against the in-domain EER;
    null metrics when the side has no spoof trials."""
    values = sorted(set(keys[mask].tolist()))
    n_spoof = int(np.count_nonzero(mask & ~trials.is_bona))
    if n_spoof == 0:
        return {
            "eer": None,
            "min_dcf": None,
            "gap_abs_points": None,
            "gap_rel": None,
            "n_bonafide": int(np.count_nonzero(mask & trials.is_bona)),
            "n_spoof": 0,
            "bonafide_pool": None,
            "values": values,
        }
    m, pool = _side(trials, mask, params)
    return {
        "eer": m.eer,
        "min_dcf": m.min_dcf,
        "gap_abs_points": 100.0 * (m.eer - eer_in),
        "gap_rel": (m.eer / eer_in - 1.0) if eer_in > 0 else None,
        "n_bonafide": m.n_bonafide,
        "n_spoof": m.n_spoof,
        "bonafide_pool": pool,
        "values": values,
    }


def ood_gap(
    trials: SortedTrials,
    domains: np.ndarray,
    in_domain: Sequence[str],
    *,
    column: str,
    params: CostParams = CostParams(),
    seen: Sequence[str] | None = None,
) -> dict:
    """In/out-of-domain EER and minDCF and the gap; ``domains`` aligned with the original trials.
    ``seen``: training domains; adds ``seen_domains`` and the ``split`` into seen and unseen."""
    wanted = {str(v) for v in in_domain}
    keys = np.asarray(domains, dtype=object)[trials.order].astype(str)
    mask_in = np.isin(keys, list(wanted))
    found = sorted(set(np.unique(keys).tolist()))
    for name, mask in (("in-domain", mask_in), ("out-of-domain", ~mask_in)):
        if not np.any(mask & ~trials.is_bona):
            raise CmError(
                f"in-domain {','.join(sorted(wanted))}: no {name} spoof trials in column {column!r}",
                f"values found: {', '.join(found[:20])}",
                option="in_domain",
            )
    m_in, pool_in = _side(trials, mask_in, params)
    m_out, pool_out = _side(trials, ~mask_in, params)
    gap = {
        "column": column,
        "in_domain": sorted(wanted),
        "eer_in": m_in.eer,
        "eer_out": m_out.eer,
        "gap_abs_points": 100.0 * (m_out.eer - m_in.eer),
        "gap_rel": (m_out.eer / m_in.eer - 1.0) if m_in.eer > 0 else None,
        "min_dcf_in": m_in.min_dcf,
        "min_dcf_out": m_out.min_dcf,
        "n_bonafide_in": m_in.n_bonafide,
        "n_spoof_in": m_in.n_spoof,
        "bonafide_pool_in": pool_in,
        "n_bonafide_out": m_out.n_bonafide,
        "n_spoof_out": m_out.n_spoof,
        "bonafide_pool_out": pool_out,
    }
    if seen is not None:
        seen_set = {str(v) for v in seen} - wanted
        mask_seen = ~mask_in & np.isin(keys, list(seen_set))
        gap["seen_domains"] = sorted({str(v) for v in seen})
        gap["split"] = {
            "seen": split_gap(trials, keys, mask_seen, m_in.eer, params),
            "unseen": split_gap(trials, keys, ~mask_in & ~mask_seen, m_in.eer, params),
        }
    return gap


def gap_reduction(gap: Mapping, baseline: Mapping, *, baseline_source: str = "baseline") -> dict:
    """How much of the baseline's absolute gap this system removes (see module docstring)."""
    base = baseline.get("ood_gap") if "ood_gap" in baseline else baseline
    if not base or "gap_abs_points" not in base:
        raise CmError(
            f"{baseline_source}: no ood_gap to compare with",
            "evaluate the baseline with the same in-domain values first",
            option="in_domain",
        )
    if sorted(base.get("in_domain", [])) != sorted(gap["in_domain"]) or base.get("column") != gap["column"]:
        raise CmError(
            f"{baseline_source}: its ood_gap uses {base.get('column')}={base.get('in_domain')}, "
            f"this one {gap['column']}={gap['in_domain']}",
            "compare gaps defined the same way",
        )
    base_gap = float(base["gap_abs_points"])
    return {
        "baseline": baseline_source,
        "baseline_gap_abs_points": base_gap,
        "gap_reduction_points": base_gap - gap["gap_abs_points"],
        "gap_reduction": (1.0 - gap["gap_abs_points"] / base_gap) if base_gap != 0 else None,
        "baseline_eer_in": base.get("eer_in"),
        "baseline_eer_out": base.get("eer_out"),
    }
