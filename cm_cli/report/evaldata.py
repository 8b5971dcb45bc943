"""Numbers behind the evaluation sections, read from metrics.json or recomputed from scores.

Recomputation always goes through ``cm_cli.metrics`` (the official sweep), so a
number the report derives from ``scores.parquet`` equals what ``cm eval`` would
write. Rates are fractions here; the sections show them in percent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from cm_cli.core.errors import CmError
from cm_cli.report.collect import EvalInfo

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "CLEAN_VALUES",
    "Curve",
    "metric_ci",
    "overall_metrics",
    "breakdown",
    "breakdown_columns",
    "load_scores",
    "bona_mask",
    "curve",
    "per_attack",
    "ood_from_scores",
    "ci_unit",
    "normalise_sweep",
]

CLEAN_VALUES = {"none", "clean", "", "nan", "null"}
_METRIC_NAMES = {
    "eer",
    "eer_threshold",
    "eer_rocch",
    "min_dcf",
    "act_dcf",
    "cllr",
    "min_cllr",
    "auc",
    "n_bonafide",
    "n_spoof",
}


def metric_ci(metrics: Mapping[str, Any] | None, key: str) -> tuple[float, float] | None:
    """The bootstrap interval of ``key`` from a metrics.json ``ci`` block, whatever its exact shape."""
    block = (metrics or {}).get("ci")
    if not isinstance(block, Mapping):
        return None
    value = block.get(key)
    if value is None and isinstance(block.get("overall"), Mapping):
        value = block["overall"].get(key)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]), float(value[1])
    if isinstance(value, Mapping):
        for lo, hi in (("low", "high"), ("ci_low", "ci_high"), ("lower", "upper"), ("lo", "hi")):
            if lo in value and hi in value:
                return float(value[lo]), float(value[hi])
    return None


def load_scores(e: EvalInfo, columns: Iterable[str] = ()) -> "pd.DataFrame":
    """``score`` and ``label`` plus whichever of ``columns`` the scores table has."""
    import pyarrow.parquet as pq

    from cm_cli.core.artifacts import find_parts, read_table

    if e.scores is None:
        raise CmError(f"{e.path}: no scores.parquet")
    first = e.scores if e.scores.is_file() else find_parts(e.scores)[0]
    names = pq.read_schema(first).names
    missing = [c for c in ("score", "label") if c not in names]
    if missing:
        raise CmError(f"{first}: no column(s) {', '.join(missing)}", f"columns found: {', '.join(names)}")
    wanted = ["score", "label"] + [c for c in dict.fromkeys(columns) if c in names and c not in ("score", "label")]
    return read_table(e.scores, name="scores", columns=wanted)


def bona_mask(labels: "pd.Series") -> "np.ndarray":
    """True where the label means bona fide (``cm_cli.core.labels``: an unknown label is an error, never spoof)."""
    from cm_cli.core.labels import is_bonafide

    return is_bonafide(labels, source="scores")


def _metrics_from(bona: "np.ndarray", spoof: "np.ndarray") -> dict:
    from cm_cli.metrics.summary import compute_metrics

    return compute_metrics(bona, spoof).to_dict()


def overall_metrics(e: EvalInfo) -> dict | None:
    """metrics.json's ``overall``, or the same record recomputed from scores; None when neither exists."""
    if e.metrics and isinstance(e.metrics.get("overall"), Mapping):
        return dict(e.metrics["overall"])
    if e.scores is None:
        return None
    frame = load_scores(e)
    mask = bona_mask(frame["label"])
    return _metrics_from(frame["score"].to_numpy()[mask], frame["score"].to_numpy()[~mask])


def breakdown(e: EvalInfo, column: str) -> "pd.DataFrame | None":
    """Per-group metrics (``value`` plus metric columns) from metrics.json ``by`` or metrics_by_<column>.parquet."""
    import pandas as pd

    by = (e.metrics or {}).get("by") or {}
    groups = by.get(column)
    if isinstance(groups, Mapping) and groups:
        rows = [
            {"value": str(k), **{m: v for m, v in dict(v).items() if m in _METRIC_NAMES}}
            for k, v in groups.items()
            if isinstance(v, Mapping)
        ]
        return pd.DataFrame(rows) if rows else None
    path = e.breakdowns.get(column)
    if path is None:
        return None
    from cm_cli.core.artifacts import read_table

    frame = read_table(path)
    key = next((c for c in (column, "value", "group") if c in frame.columns), frame.columns[0])
    frame = frame.rename(columns={key: "value"})
    frame["value"] = frame["value"].astype(str).where(frame["value"].notna(), "none")
    return frame


def breakdown_columns(e: EvalInfo) -> list[str]:
    by = (e.metrics or {}).get("by") or {}
    return list(dict.fromkeys([*by.keys(), *e.breakdowns.keys()]))


@dataclass
class Curve:
    """DET curve points (fractions), EER, its threshold, AUC and the class score pools."""

    frr: "np.ndarray"
    far: "np.ndarray"
    eer: float
    threshold: float
    auc: float
    bona: "np.ndarray"
    spoof: "np.ndarray"


def curve(e: EvalInfo) -> Curve:
    """The DET curve of an evaluation's scores (official sweep via ``cm_cli.metrics``)."""
    from cm_cli.metrics.det import det_curve
    from cm_cli.metrics.summary import auc, eer_from_curve

    frame = load_scores(e)
    mask = bona_mask(frame["label"])
    scores = frame["score"].to_numpy(dtype="float64")
    bona, spoof = scores[mask], scores[~mask]
    det = det_curve(bona, spoof)
    eer, threshold = eer_from_curve(det)
    return Curve(det.frr, det.far, eer, threshold, auc(bona, spoof), bona, spoof)


def _is_clean(values: "pd.Series") -> "np.ndarray":
    return (values.isna() | values.astype(str).str.lower().isin(CLEAN_VALUES)).to_numpy()


def _eer(bona: "np.ndarray", spoof: "np.ndarray") -> float:
    from cm_cli.metrics.summary import eer

    if bona.size == 0 or spoof.size == 0:
        return float("nan")
    return float(eer(bona, spoof))


def per_attack(e: EvalInfo) -> "pd.DataFrame | None":
    """Per attack: family, EER (that attack's spoofs against all bona fide) and, where the scores mix
    clean and degraded trials, the EER on the clean trials only and the change from clean.

    The EER is read from metrics.json ``by.attack`` when ``cm eval --by attack`` wrote it;
    only the clean-only EER (which metrics.json does not hold) is computed from the scores,
    through ``cm_cli.metrics``.
    """
    import numpy as np
    import pandas as pd

    stored = breakdown(e, "attack")
    if stored is not None and "eer" in stored:
        stored = stored.rename(columns={"value": "attack"})
        stored = stored[~stored["attack"].astype(str).str.lower().isin({"none", "bonafide", "nan", ""})]
        stored = stored[stored["eer"].notna()]
    else:
        stored = None
    frame = None
    if e.scores is not None:
        frame = load_scores(e, ["attack", "attack_family", "domain", "codec"])
        if "attack" not in frame:
            frame = None
    if frame is None:
        if stored is None or stored.empty:
            return None
        return stored.assign(attack_family="")[["attack", "attack_family", "eer"]].reset_index(drop=True)
    mask = bona_mask(frame["label"])
    scores = frame["score"].to_numpy(dtype="float64")
    condition = "domain" if "domain" in frame else ("codec" if "codec" in frame else None)
    clean = _is_clean(frame[condition]) if condition else np.ones(len(frame), bool)
    mixed = condition is not None and clean.any() and not clean.all()
    from_metrics = {} if stored is None else dict(zip(stored["attack"].astype(str), stored["eer"].astype(float)))
    rows = []
    spoof_rows = frame[~mask]
    for attack, part in spoof_rows.groupby(spoof_rows["attack"].astype(str), sort=True):
        index = part.index.to_numpy()
        row = {
            "attack": attack,
            "attack_family": str(part["attack_family"].iloc[0])
            if "attack_family" in part and part["attack_family"].notna().any()
            else "",
            "eer": from_metrics.get(attack, math.nan) if from_metrics else _eer(scores[mask], scores[index]),
            "source": "metrics.json" if from_metrics else "scores",
        }
        if mixed:
            row["eer_clean"] = _eer(scores[mask & clean], scores[index[clean[index]]])
            row["delta"] = row["eer"] - row["eer_clean"]
        rows.append(row)
    return pd.DataFrame(rows) if rows else None


def ood_from_scores(e: EvalInfo, column: str) -> dict | None:
    """The ``ood_gap`` record cm eval would write (same keys, same ``cm_cli.metrics.ood`` code), from the
    scores, with clean (``none``/``clean``/null) trials in-domain; split into seen and unseen when the run
    records its ``seen_domains``. None when the scores lack the column or a side."""
    import inspect

    if e.scores is None:
        return None
    frame = load_scores(e, [column])
    if column not in frame:
        return None
    clean = _is_clean(frame[column])
    if not clean.any() or clean.all():
        return None
    from cm_cli.metrics.breakdown import key_strings
    from cm_cli.metrics.ood import ood_gap
    from cm_cli.metrics.trials import sort_trials

    keys = key_strings(frame[column].to_numpy(dtype=object))
    in_domain = sorted({str(k) for k in keys[clean]})
    mask = bona_mask(frame["label"])
    trials = sort_trials(frame["score"].to_numpy(dtype="float64"), mask)
    seen = e.run.config.get("seen_domains") if e.run is not None else None
    extra = {"seen": seen} if seen is not None and "seen" in inspect.signature(ood_gap).parameters else {}
    try:
        return ood_gap(trials, keys, in_domain, column=column, **extra)
    except CmError:
        return None


def ci_unit(metrics: Mapping[str, Any] | None) -> str:
    """What the bootstrap interval resampled (contract 4 ``ci.unit`` / ``ci.cluster_by``)."""
    block = (metrics or {}).get("ci")
    if not isinstance(block, Mapping):
        return "–"
    unit = block.get("unit")
    cluster_by = block.get("cluster_by")
    if unit and cluster_by:
        return f"{unit} ({cluster_by})"
    if unit:
        return str(unit)
    if "cluster_by" in block:
        return "trial" if cluster_by is None else str(cluster_by)
    return "not recorded"


_PARAM_COLUMNS = ("parameter", "param", "severity_param", "severity_name", "severity_key")
_SEVERITY_COLUMNS = ("severity", "value", "severity_value", "level")
_DIRECT_PARAMS = ("kbps", "bitrate_kbps", "bitrate", "snr", "snr_db", "chunk_ms", "chunk_s", "rt60")
_ATTACK_EER = re.compile(r"^(?:eer_attack_|attack_eer_|eer_)(.+)$")
_NOT_ATTACKS = {"threshold", "rocch", "mean", "sd", "std", "low", "high", "ci_low", "ci_high", "in", "out"}
_KEY_VALUE = re.compile(r"([A-Za-z_]+)=(-?\d+(?:\.\d+)?)")


def _parse_condition(condition: str) -> tuple[str | None, float]:
    match = _KEY_VALUE.search(str(condition))
    if not match:
        return None, float("nan")
    return match.group(1), float(match.group(2))


def normalise_sweep(frame: "pd.DataFrame") -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(overall: condition, parameter, severity, eer, min_dcf; per_attack: condition, attack, eer).

    Accepts a severity given as parameter/severity columns, as a named column (kbps, snr,
    chunk_ms), or only inside the condition spec (``mp3:kbps=32``); per-attack EERs as a
    long ``attack`` column or wide ``eer_<attack>`` columns. The clean condition has no
    parameter and a NaN severity.
    """
    import numpy as np
    import pandas as pd

    if "condition" not in frame.columns:
        raise CmError("sweep.parquet has no 'condition' column", f"columns found: {', '.join(frame.columns)}")
    frame = frame.copy()
    frame["condition"] = frame["condition"].astype(str).where(frame["condition"].notna(), "clean")
    long_attacks = None
    if "attack" in frame.columns:
        pooled = frame["attack"].isna() | frame["attack"].astype(str).str.lower().isin(
            {"all", "overall", "pooled", "none"}
        )
        long_attacks = frame.loc[~pooled, ["condition", "attack", "eer"]].copy()
        frame = frame[pooled]
    param_col = next((c for c in _PARAM_COLUMNS if c in frame.columns), None)
    severity_col = next((c for c in _SEVERITY_COLUMNS if c in frame.columns), None)
    direct = next((c for c in _DIRECT_PARAMS if c in frame.columns), None)
    parameters, severities = [], []
    for _, row in frame.iterrows():
        parameter, severity = None, float("nan")
        if param_col and severity_col and pd.notna(row[param_col]):
            parameter, severity = str(row[param_col]), pd.to_numeric(row[severity_col], errors="coerce")
        elif direct and pd.notna(row[direct]):
            parameter, severity = direct, float(row[direct])
        else:
            parameter, severity = _parse_condition(row["condition"])
        if str(row["condition"]).lower() in CLEAN_VALUES:
            parameter, severity = None, float("nan")
        parameters.append(parameter)
        severities.append(float(severity) if severity is not None else float("nan"))
    overall = pd.DataFrame(
        {
            "condition": frame["condition"].to_numpy(),
            "parameter": parameters,
            "severity": np.array(severities, dtype=float),
            "eer": frame["eer"].astype(float).to_numpy() if "eer" in frame else np.nan,
            "min_dcf": frame["min_dcf"].astype(float).to_numpy() if "min_dcf" in frame else np.nan,
        }
    )
    if long_attacks is not None:
        per_attack_frame = long_attacks.assign(
            attack=long_attacks["attack"].astype(str), eer=long_attacks["eer"].astype(float)
        )
    else:
        wide = {
            c: m.group(1)
            for c in frame.columns
            if (m := _ATTACK_EER.match(c)) and m.group(1).lower() not in _NOT_ATTACKS
        }
        per_attack_frame = frame[["condition", *wide]].melt(id_vars="condition", var_name="attack", value_name="eer")
        per_attack_frame["attack"] = per_attack_frame["attack"].map(wide)
        per_attack_frame["eer"] = per_attack_frame["eer"].astype(float)
    return overall.reset_index(drop=True), per_attack_frame.reset_index(drop=True)
