"""Tandem metrics of one CM score set with one ASV system: the block ``cm eval`` adds to metrics.json.

Scores: higher = more bona fide (CM), more target (ASV). Pooled, the ASV operating point
(its EER threshold) and its error rates come from the whole ASV file. A breakdown by a
column recomputes them as the ASVspoof 2021 eval-package does (``main.py
--recompute-c012``, ``compute_tDCF_C012``): each ASV key class (target, nontarget,
spoof) is restricted to the group wherever that class has trials in the group. So a
channel factor that bona fide trials carry too (codec, transmission) gets its own ASV
threshold and C0, C1, C2 from that condition's ASV trials, and an attack (null for bona
fide) restricts only the spoof ASV trials. Without that column in the ASV table the
pooled rates are kept. On the CM side a group without bona fide trials is scored
against the whole bona fide pool, as the other breakdowns are. The t-DCF needs no
pairing of CM and ASV trials; the t-EER does, and is left out (with the reason) when the
ids do not pair.
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


def paired_trials(
    cm_ids: Sequence[str], cm_scores: np.ndarray, asv_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(index into ASV rows, CM score) for each ASV trial whose id has a CM score; CmError if none do."""
    lookup = dict(zip(map(str, cm_ids), np.asarray(cm_scores, dtype=np.float64)))
    asv_ids = [str(v) for v in asv_ids]
    rows = np.array([i for i, v in enumerate(asv_ids) if v in lookup], dtype=np.int64)
    if rows.size == 0:
        raise CmError(
            f"t-EER pairs CM and ASV scores by trial id, and the ids are disjoint ({len(set(asv_ids))} ASV "
            f"ids, {len(lookup)} CM ids; ASV e.g. {_examples(asv_ids)}; CM e.g. {_examples(lookup)})",
            "score the same trials, or name the id columns (of the scores, and an id column in the ASV file); "
            "the t-DCF needs no pairing",
            option="id_col",
        )
    return rows, np.array([lookup[asv_ids[i]] for i in rows], dtype=np.float64)


def _rates(asv_keys: np.ndarray, asv_scores: np.ndarray, group: np.ndarray | None = None) -> tuple[AsvRates, str]:
    """ASV rates, each key class restricted to ``group`` where it has trials there; which classes were."""
    masks = {}
    for key in ("target", "nontarget", "spoof"):
        mask = asv_keys == key
        masks[key] = mask & group if group is not None and np.any(mask & group) else mask
    restricted = [
        k
        for k in masks
        if group is not None
        and masks[k] is not None
        and np.any(masks[k])
        and not np.array_equal(masks[k], asv_keys == k)
    ]
    rates = asv_error_rates(asv_scores[masks["target"]], asv_scores[masks["nontarget"]], asv_scores[masks["spoof"]])
    scope = (
        "condition"
        if {"target", "nontarget"} <= set(restricted)
        else "spoof"
        if restricted == ["spoof"]
        else "pooled"
        if not restricted
        else "+".join(restricted)
    )
    return rates, scope


def _group_values(bona: np.ndarray, spoof: np.ndarray, rates: AsvRates, costs: Mapping) -> dict:
    return {
        name: min_tdcf(bona, spoof, rates, formulation=form, costs=costs.get(form)).min_tdcf
        for form, name in FORMULATIONS.items()
    }


def tandem_metrics(
    cm_scores,
    is_bonafide,
    asv_keys,
    asv_scores,
    *,
    cm_ids=None,
    asv_ids=None,
    groups: Mapping[str, tuple[np.ndarray, np.ndarray | None]] | None = None,
    costs: Mapping[str, Mapping] | None = None,
) -> dict:
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
        raise CmError(
            f"ASV scores: no {', '.join(missing)} trials; the t-DCF needs target, nontarget and spoof ASV trials",
            "use the ASV score file of the corpus with its keys",
        )
    rates, _ = _rates(keys, asv)
    out = {
        name: min_tdcf(cm[bona_mask], cm[~bona_mask], rates, formulation=form, costs=costs.get(form)).to_dict()
        for form, name in FORMULATIONS.items()
    }
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
        try:
            rows, paired = paired_trials(cm_ids, cm, asv_ids)
            result["t_eer"] = t_eer(paired, asv[rows], keys[rows])
            result["tdcf"]["t_eer_trials"] = int(rows.size)
            result["tdcf"]["t_eer_unpaired_asv_trials"] = int(asv.size - rows.size)
        except CmError as error:
            result["tdcf"]["t_eer_skipped"] = error.message
    by: dict = {}
    for column, (cm_values, asv_values) in (groups or {}).items():
        cm_values = np.asarray(cm_values, dtype=object).astype(str)
        table = {}
        for value in sorted(set(cm_values[~bona_mask])):
            in_group = cm_values == value
            bona = cm[in_group & bona_mask] if np.any(in_group & bona_mask) else cm[bona_mask]
            spoof = cm[in_group & ~bona_mask]
            group_rates, scope = rates, "pooled"
            if asv_values is not None:
                asv_group = np.asarray(asv_values, dtype=object).astype(str) == value
                try:
                    group_rates, scope = _rates(keys, asv, asv_group)
                except CmError:  # e.g. a condition whose ASV trials lack one class: its t-DCF is undefined
                    continue
            if np.unique(np.concatenate([bona, spoof])).size < 3:
                continue
            table[value] = {
                **_group_values(bona, spoof, group_rates, costs),
                "asv_spoof_rate": "group" if scope != "pooled" else "pooled",
                "asv_rates": scope,
                "asv_threshold": group_rates.threshold,
            }
        by[column] = table
    if by:
        result["by"] = by
    return result
