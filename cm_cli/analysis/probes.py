"""Linear probes: how linearly decodable a manifest column (codec, domain, attack…) is at each layer.

A probe's accuracy only means something next to its chance levels, a control task
and an interval, with folds that never put one speaker (or one source utterance
and its coded copy) on both sides. Everything here is cross-validated out of fold
with folds fixed per group, so every layer and both embedding sets of a
comparison are scored on exactly the same splits (paired differences).

The control task (Hewitt & Liang, 2019) gives every control unit (a speaker by
default) one random label; it measures the probe's capacity to memorise, which
needs the unit to recur between training and test. When the task folds keep each
unit on one side (speaker-grouped folds with speaker units), the control is
cross-validated on its own folds that spread each unit's rows over every fold.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.kinds import register_kind

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "PROBE_COLUMNS",
    "CLASS_COLUMNS",
    "PROBE_CLASSES_FILE",
    "ProbeConfig",
    "ProbeData",
    "LayerProbe",
    "prepare_probe_data",
    "assign_folds",
    "control_labels",
    "recurrent_folds",
    "unit_recurrence",
    "control_measures",
    "probe_layer",
    "compute_probes",
    "run_probes",
    "load_class_selectivity",
    "set_name",
]

PROBE_COLUMNS = [
    "tag",
    "layer",
    "target",
    "accuracy",
    "balanced_accuracy",
    "control_accuracy",
    "selectivity",
    "chance_majority",
    "chance_uniform",
    "n",
    "folds",
    "ci_low",
    "ci_high",
    "control_unit",
    "control_folds",
    "control_recurrence",
]
CLASS_COLUMNS = ["tag", "layer", "target", "class", "n", "recall", "control_recall", "selectivity"]
PROBE_CLASSES_FILE = "probe_classes.parquet"
NULL_CLASS = "none"

# the artifact kind this module makes, with its report section (cm_cli.core.kinds)
register_kind(
    "probes",
    title="Linear probes",
    command="`cm probe EMB --manifest M --target codec --out DIR`",
    marker="probes.parquet",
    tables=("probes", "probe_classes"),
    missing="probes",
    section="cm_cli.report.sections_analysis:probes_blocks",
    order=20,
)


@dataclass
class ProbeConfig:
    """Settings of a probing run; ``group_by``/``control_by`` may be ``None`` (each row its own group)."""

    target: str = "codec"
    layers: str | None = None
    group_by: str | None = "speaker"
    control_by: str | None = "speaker"
    folds: int = 5
    split: str | None = None
    c: float = 1.0
    c_sweep: tuple[float, ...] = ()
    max_iter: int = 1000
    n_boot: int = 1000
    seed: int = 0
    drop_null_target: bool = False  # else null target values form the class "none"
    min_class_size: int = 0  # classes with fewer rows are dropped (0: never; too-small classes are an error)
    control_repeats: int = 3  # independent control assignments, averaged (less variance than one)

    def options(self) -> dict:
        data = asdict(self)
        data["c_sweep"] = list(self.c_sweep)
        return data


@dataclass
class ProbeData:
    """Manifest rows (in order) with their target, groups, folds and control labels."""

    rows: "pd.DataFrame"
    classes: list[str]
    y: "np.ndarray"  # class codes
    groups: "np.ndarray"
    fold: "np.ndarray"
    control: "np.ndarray"  # control-task class codes, (repeats, N)
    notes: list[str] = field(default_factory=list)
    control_by: str = "utt_id"  # the column the control labels were assigned by (utt_id: per row)
    control_fold: "np.ndarray | None" = None  # folds of the control task (None: the task folds)
    control_groups: "np.ndarray | None" = None  # groups of the control folds (inner C sweep)
    control_folds: str = "task"  # "task" (same folds as the task) or "recurrent" (units spread over folds)
    control_recurrence: float = float("nan")  # share of test rows whose control unit has training rows


@dataclass
class LayerProbe:
    """Out-of-fold results of one layer: predictions for the task and the control task."""

    layer: str
    row_index: "np.ndarray"  # positions into ProbeData rows
    predicted: "np.ndarray"
    control_predicted: "np.ndarray"  # (repeats, n)
    chosen_c: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- data and folds


def _column(rows: "pd.DataFrame", name: str, source: str) -> "np.ndarray":
    if name not in rows.columns:
        raise CmError(f"{source}: no column {name!r}", f"columns found: {', '.join(map(str, rows.columns))}")
    return rows[name].astype("string").fillna(NULL_CLASS).astype(str).to_numpy(dtype=object)


def assign_folds(y: "np.ndarray", groups: "np.ndarray", *, folds: int, seed: int) -> "np.ndarray":
    """Fold number per row from stratified group k-fold: a group never spans two folds."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    fold = np.full(len(y), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members": checked by us
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
            fold[test] = k
    return fold


def control_labels(types: "np.ndarray", y: "np.ndarray", *, seed: int, repeats: int = 1) -> "np.ndarray":
    """Hewitt & Liang control task: every type (e.g. speaker) gets one class drawn from the label
    distribution; ``repeats`` independent assignments, shape (repeats, N)."""
    import numpy as np

    rng = np.random.default_rng(seed + 7919)
    unique, inverse = np.unique(types.astype(str), return_inverse=True)
    frequencies = np.bincount(y) / len(y)
    per_type = rng.choice(len(frequencies), size=(max(1, repeats), len(unique)), p=frequencies)
    return per_type[:, inverse]


def unit_recurrence(types: "np.ndarray", fold: "np.ndarray") -> float:
    """Share of rows whose unit also has rows outside their fold (i.e. in that fold's training part)."""
    import numpy as np

    if not len(types):
        return float("nan")
    _, unit = np.unique(types.astype(str), return_inverse=True)
    folds_of_unit = np.zeros((unit.max() + 1, int(fold.max()) + 1), dtype=np.int64)
    np.add.at(folds_of_unit, (unit, fold), 1)
    outside = folds_of_unit.sum(axis=1)[unit] - folds_of_unit[unit, fold]
    return float((outside > 0).mean())


def recurrent_folds(types: "np.ndarray", keys: "np.ndarray", *, folds: int, seed: int) -> "np.ndarray":
    """Folds in which every unit with rows under 2+ keys recurs: each unit's keys (rows, or source
    utterances so a coded copy stays with its source) are dealt round-robin over the folds."""
    import numpy as np

    rng = np.random.default_rng(seed + 104729)
    key_values, first, key_index = np.unique(keys.astype(str), return_index=True, return_inverse=True)
    _, unit_of_key = np.unique(types.astype(str)[first], return_inverse=True)
    order = np.lexsort((rng.random(len(key_values)), unit_of_key))  # keys grouped by unit, shuffled within
    sorted_units = unit_of_key[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_units)) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    offset = rng.integers(0, folds, size=int(unit_of_key.max()) + 1)
    fold_of_key = np.empty(len(key_values), dtype=np.int64)
    fold_of_key[order] = (rank + offset[sorted_units]) % folds
    return fold_of_key[key_index]


def _source_keys(rows: "pd.DataFrame") -> "np.ndarray":
    """The source utterance of each row (source_utt_id / codec_seed where present, else its own utt_id)."""
    import numpy as np

    keys = np.array([str(u) for u in rows["utt_id"]], dtype=object)
    for column in ("source_utt_id", "codec_seed"):
        if column in rows.columns:
            text = rows[column].astype("string").fillna("")  # nulls (uncoded rows) stay their own source
            present = (text.str.len() > 0).to_numpy()
            keys = np.where(present, np.array(["src:" + v for v in text.to_numpy(dtype=object)], dtype=object), keys)
            break
    return keys


def prepare_probe_data(manifest: "pd.DataFrame", *, config: ProbeConfig, source: str = "manifest") -> ProbeData:
    """Target codes, groups, folds and control labels for manifest rows; checks classes against the folds."""
    import numpy as np

    if config.folds < 2:
        raise CmError(f"folds must be at least 2, got {config.folds}", option="folds")
    notes: list[str] = []
    rows = manifest.reset_index(drop=True)
    if config.target not in rows.columns:
        raise CmError(
            f"{source}: no column {config.target!r} to probe", f"columns found: {', '.join(map(str, rows.columns))}"
        )
    if config.drop_null_target and rows[config.target].isna().any():
        notes.append(f"{int(rows[config.target].isna().sum())} row(s) with a null {config.target} dropped")
        rows = rows.loc[rows[config.target].notna()].reset_index(drop=True)
    target = _column(rows, config.target, source)
    if config.min_class_size:
        values, counts = np.unique(target, return_counts=True)
        rare = values[counts < config.min_class_size]
        if len(rare):
            notes.append(
                f"{len(rare)} class(es) with fewer than {config.min_class_size} rows dropped: "
                + ", ".join(map(str, rare[:10]))
            )
            keep = ~np.isin(target, rare)
            rows, target = rows.loc[keep].reset_index(drop=True), target[keep]
    groups = (
        _column(rows, config.group_by, source)
        if config.group_by
        else np.array([str(u) for u in rows["utt_id"]], dtype=object)
    )
    classes, y = np.unique(target.astype(str), return_inverse=True)
    counts = {str(c): int((y == i).sum()) for i, c in enumerate(classes)}
    if len(classes) < 2:
        raise CmError(
            f"{source}: target {config.target!r} has a single class ({_show(counts)}); nothing to probe",
            "probe another column, or another split",
            option=("target", "split"),
        )
    group_counts = {str(c): int(len(set(groups[y == i].tolist()))) for i, c in enumerate(classes)}
    too_small = {c: (counts[c], group_counts[c]) for c in counts if counts[c] < config.folds or group_counts[c] < 2}
    if too_small:
        shown = ", ".join(
            f"{c}: {n} rows in {g} {config.group_by or 'row'} group(s)" for c, (n, g) in list(too_small.items())[:10]
        )
        raise CmError(
            f"{source}: class(es) of {config.target!r} too small for {config.folds}-fold cross-validation "
            f"grouped by {config.group_by or 'row'} ({shown}); each class needs at least {config.folds} rows "
            "in at least 2 groups",
            "use fewer folds, drop rare classes with a minimum class size, or group by another column",
            option=("folds", "min_class_size", "group_by"),
        )
    n_groups = len(set(groups.tolist()))
    if n_groups < config.folds:
        raise CmError(
            f"{source}: only {n_groups} distinct {config.group_by} value(s) for {config.folds} folds",
            "use fewer folds or group by another column",
            option=("folds", "group_by"),
        )
    fold = assign_folds(y, groups, folds=config.folds, seed=config.seed)
    control_by = config.control_by
    types = (
        _column(rows, control_by, source) if control_by else np.array([str(u) for u in rows["utt_id"]], dtype=object)
    )
    control = control_labels(types, y, seed=config.seed, repeats=config.control_repeats)
    control_fold, control_groups, scheme = None, None, "task"
    recurrence = unit_recurrence(types, fold)
    if control_by and recurrence < 0.9:
        keys = _source_keys(rows)
        control_fold = recurrent_folds(types, keys, folds=config.folds, seed=config.seed)
        control_groups, scheme = keys, "recurrent"
        notes.append(
            f"control units ({control_by}) recur in only {recurrence:.0%} of the task folds' test rows "
            f"(folds grouped by {config.group_by or 'row'}), so the control task is cross-validated on its "
            f"own folds that spread each {control_by}'s utterances over every fold (a source utterance and "
            "its coded copies stay together): control accuracy measures memorisation of one random label "
            f"per {control_by} (Hewitt & Liang 2019)"
        )
        recurrence = unit_recurrence(types, control_fold)
    elif not control_by:
        notes.append(
            "control labels per row never recur between training and test: control accuracy is chance "
            "by construction and selectivity is accuracy minus chance, not a capacity control"
        )
    return ProbeData(
        rows=rows,
        classes=[str(c) for c in classes],
        y=y,
        groups=groups,
        fold=fold,
        control=control,
        notes=notes,
        control_by=control_by or "utt_id",
        control_fold=control_fold,
        control_groups=control_groups,
        control_folds=scheme,
        control_recurrence=recurrence,
    )


def control_measures(unit: str, recurrence: float) -> str:
    """A plain sentence on what control accuracy measures, for summaries and the report."""
    if recurrence > 0:
        return (
            f"memorisation capacity: accuracy of the same probe on one random label per {unit}, each {unit} "
            f"recurring between training and test ({recurrence:.0%} of test rows)"
        )
    return (
        f"nothing learnable: control units ({unit}) never recur between training and test, so control accuracy "
        "is chance by construction"
    )


def _show(counts: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in list(counts.items())[:10])


# --------------------------------------------------------------------------- fitting


def _fit_predict(X_train, y_train, X_test, *, c: float, max_iter: int, seed: int) -> "np.ndarray":
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    present = np.unique(y_train)
    if len(present) == 1:  # a training fold holding one class predicts it
        return np.full(len(X_test), present[0])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    return model.predict(X_test)


def _choose_c(X, y, groups, *, config: ProbeConfig) -> float:
    """Inner grouped CV on the training part only, so the sweep never sees the test fold."""
    from sklearn.model_selection import GroupKFold

    n_inner = min(3, len(set(groups.tolist())))
    if n_inner < 2:
        return config.c
    best, best_acc = config.c, -1.0
    for c in config.c_sweep:
        correct = 0
        for train, test in GroupKFold(n_splits=n_inner).split(X, y, groups):
            correct += int(
                (
                    _fit_predict(X[train], y[train], X[test], c=c, max_iter=config.max_iter, seed=config.seed)
                    == y[test]
                ).sum()
            )
        accuracy = correct / len(y)
        if accuracy > best_acc + 1e-12:
            best, best_acc = c, accuracy
    return float(best)


def _cross_validate(X, y, fold, groups, *, config: ProbeConfig) -> tuple["np.ndarray", list[float]]:
    import numpy as np

    predicted = np.empty(len(y), dtype=y.dtype)
    chosen: list[float] = []
    for k in np.unique(fold):
        test = fold == k
        train = ~test
        c = _choose_c(X[train], y[train], groups[train], config=config) if config.c_sweep else config.c
        chosen.append(c)
        predicted[test] = _fit_predict(X[train], y[train], X[test], c=c, max_iter=config.max_iter, seed=config.seed)
    return predicted, chosen


def probe_layer(
    X: "np.ndarray", data: ProbeData, row_index: "np.ndarray", *, layer: str, config: ProbeConfig
) -> LayerProbe:
    """Out-of-fold predictions of the probe and of the control probes for one layer's rows."""
    import numpy as np

    y, fold, groups = data.y[row_index], data.fold[row_index], data.groups[row_index]
    predicted, chosen = _cross_validate(X, y, fold, groups, config=config)
    control_fold = fold if data.control_fold is None else data.control_fold[row_index]
    control_groups = groups if data.control_groups is None else data.control_groups[row_index]
    control_predicted = np.stack(
        [
            _cross_validate(X, labels[row_index], control_fold, control_groups, config=config)[0]
            for labels in data.control
        ]
    )
    return LayerProbe(
        layer=layer, row_index=row_index, predicted=predicted, control_predicted=control_predicted, chosen_c=chosen
    )


def layer_rows(result: LayerProbe, data: ProbeData, *, tag: str, config: ProbeConfig) -> tuple[dict, list[dict]]:
    """The probes.parquet row and the per-class rows of one layer's result."""
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score

    from cm_cli.metrics.stats import cluster_bootstrap_mean

    y = data.y[result.row_index]
    control = data.control[:, result.row_index]
    correct = (result.predicted == y).astype(float)
    control_correct = (result.control_predicted == control).astype(float)  # (repeats, n)
    frequencies = np.bincount(y, minlength=len(data.classes)) / len(y)
    low, high, _ = cluster_bootstrap_mean(
        correct, data.groups[result.row_index], n_boot=config.n_boot, seed=config.seed
    )
    accuracy, control_accuracy = float(correct.mean()), float(control_correct.mean())
    row = {
        "tag": tag,
        "layer": result.layer,
        "target": config.target,
        "accuracy": accuracy,
        "balanced_accuracy": float(balanced_accuracy_score(y, result.predicted)),
        "control_accuracy": control_accuracy,
        "selectivity": accuracy - control_accuracy,
        "chance_majority": float(frequencies.max()),
        "chance_uniform": 1.0 / int((frequencies > 0).sum()),
        "n": int(len(y)),
        "folds": int(config.folds),
        "ci_low": low,
        "ci_high": high,
        "control_unit": data.control_by,
        "control_folds": data.control_folds,
        "control_recurrence": float(data.control_recurrence),
    }
    per_class = []
    for i, name in enumerate(data.classes):
        mask, control_mask = y == i, control == i
        recall = float(correct[mask].mean()) if mask.any() else math.nan
        control_recall = (
            float(np.mean([row[m].mean() for row, m in zip(control_correct, control_mask) if m.any()]))
            if control_mask.any()
            else math.nan
        )
        per_class.append(
            {
                "tag": tag,
                "layer": result.layer,
                "target": config.target,
                "class": name,
                "n": int(mask.sum()),
                "recall": recall,
                "control_recall": control_recall,
                "selectivity": recall - control_recall,
            }
        )
    return row, per_class


# --------------------------------------------------------------------------- one or two embedding sets


def set_name(path: str | Path) -> str:
    """A readable tag for an embedding set: its directory's name (or the file stem)."""
    path = Path(path)
    if path.is_file() or path.suffix == ".parquet":
        return path.parent.name if path.stem == "embeddings" and path.parent.name else path.stem
    return path.name or str(path)


def _finite_positions(utt_ids: "np.ndarray", position: dict[str, int]) -> tuple["np.ndarray", "np.ndarray"]:
    """Data rows present among a layer's (finite) ``utt_ids``, sorted, and their rows in that layer's matrix."""
    import numpy as np

    pairs = sorted((position[u], j) for j, u in enumerate(utt_ids.tolist()) if u in position)
    rows = np.array([p[0] for p in pairs], dtype=np.int64)
    matrix_rows = np.array([p[1] for p in pairs], dtype=np.int64)
    return rows, matrix_rows


def _set_tags(sets: list[Path], tags: Sequence[str] | None) -> list[str]:
    """One distinct tag per embedding set: the given ones, or the sets' names."""
    if not 1 <= len(sets) <= 2:
        raise CmError(f"probe takes one or two embedding sets, got {len(sets)}")
    names = list(tags) if tags else [set_name(p) for p in sets]
    if len(names) != len(sets):
        raise CmError(
            f"{len(names)} tag(s) given for {len(sets)} embedding set(s)", "give one tag per set", option="tags"
        )
    if len(names) == 2 and names[0] == names[1]:
        names = [f"{names[0]}_a", f"{names[1]}_b"]
    return names


def _embedded_rows(
    sets: list[Path], names: list[str], manifest: "pd.DataFrame", *, source: str, notes: list[str]
) -> "pd.DataFrame":
    """Manifest rows embedded in every set (checked on the first layer), so both sets share rows and folds."""
    from cm_cli.analysis._layers import align_rows, read_utt_ids

    ids = [read_utt_ids(s) for s in sets]
    aligned = align_rows(ids[0], manifest, source=str(sets[0]), manifest_source=source)
    rows = aligned.manifest
    if len(sets) == 2:
        rows = align_rows(ids[1], rows, source=str(sets[1]), manifest_source=source).manifest
        if len(rows) < len(aligned.manifest):
            notes.append(f"{len(aligned.manifest) - len(rows)} row(s) embedded in {names[0]} only (ignored)")
    notes.extend(aligned.notes)
    return rows


def _probe_all_layers(
    sets: list[Path], names: list[str], layers: list[str], data: ProbeData, *, config: ProbeConfig, notes: list[str]
) -> tuple[dict, list[dict], list[dict], dict]:
    """Probe each (set, layer) on its finite rows: results, table rows, per-class rows and the chosen C."""
    from cm_cli.analysis._layers import embedding_layers, read_layer
    from cm_cli.core.progress import track

    position = {str(u): i for i, u in enumerate(data.rows["utt_id"].astype(str))}
    probe_rows: list[dict] = []
    class_rows: list[dict] = []
    results: dict[tuple[int, str], LayerProbe] = {}
    chosen: dict[str, dict[str, list[float]]] = {}
    jobs = [(i, layer) for layer in layers for i in range(len(sets)) if i == 0 or layer in embedding_layers(sets[i])]
    for i, layer in track(jobs, description="probe layers"):
        layer_data = read_layer(sets[i], layer)
        if layer_data.n_nonfinite:
            notes.append(f"{names[i]} {layer}: {layer_data.n_nonfinite} row(s) with NaN/inf dropped")
        row_index, matrix_rows = _finite_positions(layer_data.utt_ids.astype(str), position)
        result = probe_layer(layer_data.X[matrix_rows], data, row_index, layer=layer, config=config)
        results[(i, layer)] = result
        row, per_class = layer_rows(result, data, tag=names[i], config=config)
        probe_rows.append(row)
        class_rows.extend(per_class)
        if config.c_sweep:
            chosen.setdefault(names[i], {})[layer] = result.chosen_c
    return results, probe_rows, class_rows, chosen


def _compare_layer(a: LayerProbe, b: LayerProbe, data: ProbeData, *, config: ProbeConfig) -> dict:
    """Accuracy(B) - accuracy(A) on the rows both probed, with a paired cluster-bootstrap CI."""
    import numpy as np

    from cm_cli.metrics.stats import cluster_bootstrap_mean

    common = np.intersect1d(a.row_index, b.row_index)
    pa_ = {r: k for k, r in enumerate(a.row_index)}
    pb_ = {r: k for k, r in enumerate(b.row_index)}
    ia = np.array([pa_[r] for r in common], dtype=np.int64)
    ib = np.array([pb_[r] for r in common], dtype=np.int64)
    y = data.y[common]
    correct_a = (a.predicted[ia] == y).astype(float)
    correct_b = (b.predicted[ib] == y).astype(float)
    sel_a = correct_a.mean() - (a.control_predicted[:, ia] == data.control[:, common]).mean()
    sel_b = correct_b.mean() - (b.control_predicted[:, ib] == data.control[:, common]).mean()
    low, high, _ = cluster_bootstrap_mean(
        correct_a, data.groups[common], other=correct_b, n_boot=config.n_boot, seed=config.seed
    )
    return {
        "layer": b.layer,
        "accuracy_a": float(correct_a.mean()),
        "accuracy_b": float(correct_b.mean()),
        "difference": float(correct_b.mean() - correct_a.mean()),
        "ci_low": low,
        "ci_high": high,
        "selectivity_difference": float(sel_b - sel_a),
        "n": int(len(common)),
    }


def _probe_summary(
    table: "pd.DataFrame", data: ProbeData, sets: list[Path], names: list[str], *, config: ProbeConfig, notes: list[str]
) -> dict[str, Any]:
    """What was probed, its chance levels and control, and each set's most selective layer."""
    import numpy as np

    summary: dict[str, Any] = {
        "target": config.target,
        "group_by": config.group_by,
        "control_by": data.control_by,
        "control_unit": data.control_by,
        "control_folds": data.control_folds,
        "control_recurrence": float(data.control_recurrence),
        "control_measures": control_measures(data.control_by, data.control_recurrence),
        "control_repeats": int(data.control.shape[0]),
        "folds": config.folds,
        "tags": names,
        "embeddings": [str(s) for s in sets],
        "n_rows": int(len(data.rows)),
        "class_counts": {c: int((data.y == k).sum()) for k, c in enumerate(data.classes)},
        "chance_majority": float(np.bincount(data.y).max() / len(data.y)),
        "chance_uniform": 1.0 / len(data.classes),
        "best_layer": {},
        "notes": list(dict.fromkeys(notes)),
    }
    for tag, part in table.groupby("tag", sort=False):
        best = part.loc[part["selectivity"].idxmax()]
        summary["best_layer"][tag] = {
            "layer": best["layer"],
            "accuracy": float(best["accuracy"]),
            "selectivity": float(best["selectivity"]),
        }
    return summary


def compute_probes(
    embeddings: Sequence[str | Path],
    manifest: "pd.DataFrame",
    *,
    config: ProbeConfig = ProbeConfig(),
    tags: Sequence[str] | None = None,
    source: str = "manifest",
) -> tuple["pd.DataFrame", "pd.DataFrame", dict]:
    """Probe every layer of one or two embedding sets on shared rows and folds.

    Returns (probes table, per-class table, summary). With two sets the summary
    holds, per shared layer, the paired cluster-bootstrap CI of accuracy(B) - accuracy(A).
    """
    import pandas as pd

    from cm_cli.analysis._layers import embedding_layers, resolve_layers

    sets = [Path(p) for p in embeddings]
    names = _set_tags(sets, tags)
    layers = resolve_layers(sets[0], config.layers)
    notes: list[str] = []
    if len(sets) == 2:
        other = set(embedding_layers(sets[1]))
        missing = [layer for layer in layers if layer not in other]
        if missing:
            notes.append(f"layer(s) {', '.join(missing)} absent from {sets[1]}: probed in {names[0]} only")
    rows = _embedded_rows(sets, names, manifest, source=source, notes=notes)
    data = prepare_probe_data(rows, config=config, source=f"{source} joined with the embeddings")
    notes.extend(data.notes)
    results, probe_rows, class_rows, chosen = _probe_all_layers(sets, names, layers, data, config=config, notes=notes)
    table = pd.DataFrame(probe_rows, columns=PROBE_COLUMNS)
    classes = pd.DataFrame(class_rows, columns=CLASS_COLUMNS)
    summary = _probe_summary(table, data, sets, names, config=config, notes=notes)
    if config.c_sweep:
        summary["c_sweep"] = {"values": list(config.c_sweep), "chosen_per_fold": chosen}
    if len(sets) == 2:
        comparison = [
            _compare_layer(results[(0, layer)], results[(1, layer)], data, config=config)
            for layer in layers
            if (1, layer) in results
        ]
        summary["comparison"] = {"a": names[0], "b": names[1], "difference": "b - a (accuracy)", "layers": comparison}
    return table, classes, summary


def run_probes(
    embeddings: Sequence[str | Path],
    *,
    manifest: str | Path,
    out: str | Path,
    config: ProbeConfig = ProbeConfig(),
    tags: Sequence[str] | None = None,
    force: bool = False,
    argv: Sequence[str] | None = None,
) -> dict:
    """Probe, then write probes.parquet, probe_classes.parquet and probes.json under ``out``."""
    from cm_cli.analysis._output import previous_summary, write_outputs
    from cm_cli.data.manifests import load_manifest

    options = {
        "embeddings": [str(p) for p in embeddings],
        "manifest": str(manifest),
        **config.options(),
        "tags": list(tags) if tags else None,
    }
    done = previous_summary(out, "probes", options, force=force)
    if done is not None:
        return done
    frame = load_manifest(manifest, split=config.split)
    table, classes, summary = compute_probes(embeddings, frame, config=config, tags=tags, source=str(manifest))
    return write_outputs(
        out,
        "probes",
        options,
        tables={"probes.parquet": table, PROBE_CLASSES_FILE: classes},
        summary=summary,
        summary_name="probes.json",
        inputs=[*embeddings, manifest],
        force=force,
        argv=argv,
    )


def load_class_selectivity(path: str | Path, *, target: str, tag: str | None = None) -> "pd.DataFrame":
    """Per-class selectivity (tag, layer, class, selectivity) of an earlier ``cm probe`` on ``target``."""
    from cm_cli.core.artifacts import read_table

    path = Path(path)
    if path.is_dir():
        file = path / PROBE_CLASSES_FILE
    elif path.name == PROBE_CLASSES_FILE:
        file = path
    else:
        file = path.parent / PROBE_CLASSES_FILE
    if not file.is_file():
        raise CmError(f"{file}: no per-class probe results", "give the output directory of `cm probe`")
    table = read_table(file)
    table = table[table["target"] == target]
    if table.empty:
        raise CmError(
            f"{file}: no probe with target {target!r}",
            f"probe target {target!r} on these embeddings first (`cm probe`)",
        )
    tags = list(dict.fromkeys(table["tag"]))
    chosen = tag or tags[0]
    if chosen not in tags:
        raise CmError(f"{file}: no probe results tagged {chosen!r}", f"tags found: {', '.join(tags)}")
    return table.loc[table["tag"] == chosen, ["tag", "layer", "class", "selectivity"]].reset_index(drop=True)
