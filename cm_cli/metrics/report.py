"""The metrics.json of one score table: overall, breakdowns, OOD gap, intervals, calibration.

Scores: higher = more bona fide. ``evaluate_scores`` is the one entry point shared by
``cm eval --scores`` (external score files) and model scoring (``scores.parquet``):
it takes a table with a ``score`` column and a ``label`` column (``bonafide`` /
``spoof``) plus any grouping columns, and returns the metrics.json document as a dict.
``breakdown_tables`` turns its ``by`` section into one table per column for
``metrics_by_<column>.parquet``. No I/O happens here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.core.labels import LABELS, is_bonafide
from cm_cli.metrics.breakdown import breakdown, key_strings, summarise_groups
from cm_cli.metrics.calibration import Calibration
from cm_cli.metrics.clusters import AUTO, cluster_keys
from cm_cli.metrics.collapse import collapse_warnings
from cm_cli.metrics.dcf import CostParams
from cm_cli.metrics.kinds import ScoreKind, canonical_kind, to_llr
from cm_cli.metrics.ood import gap_reduction, ood_gap
from cm_cli.metrics.stats import bootstrap_ci
from cm_cli.metrics.summary import METRIC_KEYS, metrics_from_sorted
from cm_cli.metrics.trials import sort_trials

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["LABELS", "evaluate_scores", "breakdown_tables", "require_columns", "finite_scores"]


def require_columns(df: "pd.DataFrame", columns: Sequence[str], *, source: str = "scores") -> None:
    """CmError naming the missing column(s) and listing the columns found."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise CmError(
            f"{source}: no column {', '.join(repr(c) for c in missing)}",
            f"columns found: {', '.join(map(str, df.columns))}",
        )


def finite_scores(
    df: "pd.DataFrame", *, drop_invalid: bool = False, source: str = "scores"
) -> tuple["pd.DataFrame", int]:
    """Rows with finite scores; CmError with the count and first bad row unless ``drop_invalid``."""
    import pandas as pd

    values = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if not bad.any():
        return df, 0
    if drop_invalid:
        return df.loc[~bad].reset_index(drop=True), int(bad.sum())
    first = int(np.flatnonzero(bad)[0])
    who = f" ({df['utt_id'].iloc[first]})" if "utt_id" in df.columns else ""
    raise CmError(
        f"{source}: {int(bad.sum())} of {len(df)} scores are NaN, infinite or not numbers "
        f"(first at row {first}{who}: {df['score'].iloc[first]!r})",
        "fix the scores or drop invalid trials to leave them out",
        option="drop_invalid",
    )


def _labels(df: "pd.DataFrame", source: str) -> np.ndarray:
    """Bona fide mask; labels already normalised by the readers (``bonafide``/``spoof``) skip the text rules."""
    import pandas as pd

    codes, uniques = pd.factorize(df["label"].astype(object), use_na_sentinel=True)
    if (codes >= 0).all():
        return is_bonafide(pd.Series(uniques, dtype=object), source=source)[codes]
    return is_bonafide(df["label"], source=source)


def _domain_column(df: "pd.DataFrame", domain_col: str | None, source: str) -> str:
    column = domain_col or next((c for c in ("domain", "codec") if c in df.columns), None)
    if column is None:
        raise CmError(
            f"{source}: in-domain values need a domain column ('domain' or 'codec')",
            f"name one; columns found: {', '.join(map(str, df.columns))}",
            option="domain_col",
        )
    require_columns(df, [column], source=source)
    return column


def evaluate_scores(
    df: "pd.DataFrame",
    *,
    by: Sequence[str] = (),
    in_domain: Sequence[str] = (),
    domain_col: str | None = None,
    seen_domains: Sequence[str] | None = None,
    params: CostParams = CostParams(),
    score_kind: ScoreKind | str = ScoreKind.raw,
    bootstrap: int = 0,
    cluster_by: str | None = AUTO,
    seed: int = 0,
    level: float = 0.95,
    calibration: Calibration | None = None,
    compare: Mapping | None = None,
    compare_source: str = "baseline",
    drop_invalid: bool = False,
    min_trials: int = 20,
    source: str = "scores",
) -> dict:
    """The metrics.json document of a score table (see module docstring for the columns).

    ``cluster_by``: see ``metrics.clusters.cluster_keys`` (default ``auto``: by speaker, else
    source utterance, else trial, whichever the table's columns allow). ``seen_domains``: the training
    domains, which split the OOD gap into seen and unseen."""
    require_columns(df, ["score", "label"], source=source)
    if len(df) == 0:
        raise CmError(f"{source}: no trials", "the score table is empty")
    given_kind = ScoreKind(score_kind)
    kind = canonical_kind(given_kind)
    require_columns(df, list(dict.fromkeys(by)), source=source)
    df, n_dropped = finite_scores(df, drop_invalid=drop_invalid, source=source)
    is_bona = _labels(df, source)
    llr = to_llr(df["score"].to_numpy(dtype=np.float64), kind)
    trials = sort_trials(llr, is_bona)
    trials.require_both_classes(source)
    overall = metrics_from_sorted(trials, params)

    result: dict = {"overall": overall.to_dict()}
    if by:
        result["by"] = {}
        result["by_summary"] = {}
        for column in dict.fromkeys(by):
            groups = breakdown(
                trials, key_strings(df[column].to_numpy(dtype=object)), params=params, min_trials=min_trials
            )
            result["by"][column] = {g.value: g.to_dict() for g in groups}
            result["by_summary"][column] = summarise_groups(groups, overall)
    if in_domain:
        column = _domain_column(df, domain_col, source)
        gap = ood_gap(
            trials,
            key_strings(df[column].to_numpy(dtype=object)),
            in_domain,
            column=column,
            params=params,
            seen=seen_domains,
        )
        if compare is not None:
            gap["compare"] = gap_reduction(gap, compare, baseline_source=compare_source)
        result["ood_gap"] = gap
    elif compare is not None:
        raise CmError(
            "a baseline comparison needs in-domain values: the gap reduction compares OOD gaps",
            option=("compare", "in_domain"),
        )
    result["params"] = {**params.to_dict(), "score_kind": kind.value, "min_trials": min_trials}
    if bootstrap:
        spec = cluster_keys(df, cluster_by)
        result["ci"] = bootstrap_ci(
            trials,
            n_resamples=bootstrap,
            seed=seed,
            level=level,
            clusters=spec.keys,
            cluster_by=spec.cluster_by,
            params=params,
            unit=spec.unit,
        ).to_dict()
    if calibration is not None:
        calibrated = sort_trials(calibration.apply(llr), is_bona)
        after = metrics_from_sorted(calibrated, params)
        result["calibration"] = {
            **calibration.to_dict(),
            "before": {"act_dcf": overall.act_dcf, "cllr": overall.cllr, "min_dcf": overall.min_dcf},
            "after": {"act_dcf": after.act_dcf, "cllr": after.cllr, "min_dcf": after.min_dcf},
        }
    warnings = collapse_warnings(llr, eer_threshold=overall.eer_threshold, bayes_threshold=params.bayes_threshold)
    if n_dropped:
        warnings.insert(0, f"dropped {n_dropped} trials with NaN or infinite scores (--drop-invalid)")
    if given_kind is not kind:
        warnings.insert(
            0, f"--score-kind {given_kind.value} is deprecated: it means {kind.value} (posterior log-odds, not LLRs)"
        )
    result["n_dropped"] = n_dropped
    result["warnings"] = warnings
    return result


def breakdown_tables(result: Mapping) -> dict[str, "pd.DataFrame"]:
    """One DataFrame per ``by`` column: the group value, then the metric keys and flags."""
    import pandas as pd

    tables = {}
    for column, groups in result.get("by", {}).items():
        rows = [{column: value, **record} for value, record in groups.items()]
        frame = pd.DataFrame(rows)
        for key in METRIC_KEYS:
            if key in frame.columns and key not in ("n_bonafide", "n_spoof"):
                frame[key] = frame[key].astype("float64")
        tables[column] = frame
    return tables
