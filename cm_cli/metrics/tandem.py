"""Tandem metrics of one CM score set with one ASV system: the block ``cm eval`` adds to metrics.json.

Scores: higher = more bona fide (CM), more target (ASV). The ASV operating point (its EER
threshold) is fixed from the whole ASV file, as in the 2019 and 2021 packages; breakdowns
by a column keep the pooled target/non-target rates and take the spoof false-alarm rate
from the ASV spoof trials of the same group when the ASV table has that column (the 2019
package's per-attack t-DCF), else the pooled one. A group without bona fide CM trials is
scored against the whole bona fide pool, as the other breakdowns are.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Mapping, Sequence

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.metrics.sasv import t_eer
from cm_cli.metrics.tdcf import AsvRates, asv_error_rates, min_tdcf

__all__ = ["tandem_metrics", "paired_trials"]

FORMULATIONS = {"revised": "min_tdcf", "legacy": "min_tdcf_legacy"}


def _examples(values: Sequence[str], k: int = 3) -> str:
    return ", ".join(map(str, list(values)[:k]))


def paired_trials(cm_ids: Sequence[str], cm_scores: np.ndarray, asv_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(index into ASV rows, CM score) for each ASV trial whose id has a CM score; CmError if none do."""
    lookup = dict(zip(map(str, cm_ids), np.asarray(cm_scores, dtype=np.float64)))
    asv_ids = [str(v) for v in asv_ids]
    rows = np.array([i for i, v in enumerate(asv_ids) if v in lookup], dtype=np.int64)
    if rows.size == 0:
        raise CmError(f"ASV and CM trial ids are disjoint ({len(set(asv_ids))} ASV ids, {len(lookup)} CM ids; "
                      f"ASV e.g. {_examples(asv_ids)}; CM e.g. {_examples(lookup)})",
                      "score the same trials, or name the id columns (--id-col, and an id column in the ASV file)")
    return rows, np.array([lookup[asv_ids[i]] for i in rows], dtype=np.float64)


def _rates(asv_keys: np.ndarray, asv_scores: np.ndarray, spoof_mask: np.ndarray | None = None) -> AsvRates:
    spoof = asv_keys == "spoof" if spoof_mask is None else (asv_keys == "spoof") & spoof_mask
    return asv_error_rates(asv_scores[asv_keys == "target"], asv_scores[asv_keys == "nontarget"], asv_scores[spoof])


def _group_values(bona: np.ndarray, spoof: np.ndarray, rates: AsvRates, costs: Mapping) -> dict:
    return {name: min_tdcf(bona, spoof, rates, formulation=form, costs=costs.get(form)).min_tdcf
            for form, name in FORMULATIONS.items()}


def tandem_metrics(cm_scores, is_bonafide, asv_keys, asv_scores, *, cm_ids=None, asv_ids=None,
                   groups: Mapping[str, tuple[np.ndarray, np.ndarray | None]] | None = None,
                   costs: Mapping[str, Mapping] | None = None) -> dict:
    """min t-DCF (revised and legacy) with the ASV operating point, t-EER when trials pair up, and breakdowns.

    ``groups``: column -> (CM values aligned with ``cm_scores``, ASV values aligned with
    ``asv_scores`` or None).
    """
    cm = np.asarray(cm_scores, dtype=np.float64)
    bona_mask = np.asarray(is_bonafide, dtype=bool)
    keys = np.asarray(asv_keys).astype(str)
    asv = np.asarray(asv_scores, dtype=np.float64)
    costs = dict(costs or {})
    missing = [k for k in ("target", "nontarget", "spoof") if not np.any(keys == k)]
    if missing:
        raise CmError(f"ASV scores: no {', '.join(missing)} trials; the t-DCF needs target, nontarget and spoof ASV trials",
                      "use the ASV score file of the corpus with its keys")
    rates = _rates(keys, asv)
    out = {name: min_tdcf(cm[bona_mask], cm[~bona_mask], rates, formulation=form, costs=costs.get(form)).to_dict()
           for form, name in FORMULATIONS.items()}
    result: dict = {
        "min_tdcf": out["min_tdcf"]["min_tdcf"],
        "min_tdcf_legacy": out["min_tdcf_legacy"]["min_tdcf"],
        "tdcf": {
            "asv": asdict(rates),
            "revised": {"formulation": "ASVspoof 2021 (Kinnunen et al., TASLP 2020)", **out["min_tdcf"]},
            "legacy": {"formulation": "ASVspoof 2019 evaluation plan", **out["min_tdcf_legacy"]},
        },
    }
    if cm_ids is not None and asv_ids is not None:
        rows, paired = paired_trials(cm_ids, cm, asv_ids)
        result["t_eer"] = t_eer(paired, asv[rows], keys[rows])
        result["tdcf"]["t_eer_trials"] = int(rows.size)
        result["tdcf"]["t_eer_unpaired_asv_trials"] = int(asv.size - rows.size)
    by: dict = {}
    for column, (cm_values, asv_values) in (groups or {}).items():
        cm_values = np.asarray(cm_values, dtype=object).astype(str)
        table = {}
        for value in sorted(set(cm_values[~bona_mask])):
            in_group = cm_values == value
            bona = cm[in_group & bona_mask] if np.any(in_group & bona_mask) else cm[bona_mask]
            spoof = cm[in_group & ~bona_mask]
            group_rates = rates
            if asv_values is not None:
                asv_group = np.asarray(asv_values, dtype=object).astype(str) == value
                if np.any(asv_group & (keys == "spoof")):
                    group_rates = _rates(keys, asv, asv_group)
            if np.unique(np.concatenate([bona, spoof])).size < 3:
                continue
            table[value] = {**_group_values(bona, spoof, group_rates, costs),
                            "asv_spoof_rate": "group" if group_rates is not rates else "pooled"}
        by[column] = table
    if by:
        result["by"] = by
    return result
