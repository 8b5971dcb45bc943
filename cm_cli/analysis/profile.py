"""Attack profiling (source tracing): which attack made each spoof, and does an unseen one look unknown?

Binary detection asks "spoof or not"; source tracing asks which generator produced a
spoof and, for a generator never seen in training, whether it is flagged as none of
the known ones. From any feature table in the embeddings layout (a backbone's pooled
layers, prosody, codec reconstruction error, transcript statistics) this computes:

- **closed set**: a standardised multinomial logistic regression over the spoof rows,
  cross-validated out of fold with folds grouped by speaker (``probes.assign_folds``):
  confusion matrix, per-attack accuracy (recall), accuracy with a speaker-cluster
  bootstrap CI, balanced accuracy, chance levels;
- **open set**: each held-out attack (every attack in turn by default, or ``holdout``) is
  removed from training; the classifier of the remaining attacks scores every spoof of
  the test fold; unknown scores are one minus the maximum softmax probability (MSP,
  Hendrycks & Gimpel, ICLR 2017) and the distance to the nearest known centroid. AUROC of
  held-out (unknown) against known test rows for each, and the share of unknown rows the
  MSP flags at the threshold that keeps 95% of known rows;
- **bona fide proximity** per attack beside it (``geometry.attack_geometry``: centroid
  distance to bona fide and position on the seen-spoof -> bona fide axis), with the
  Spearman correlation of proximity and open-set AUROC across attacks (NOR's finding:
  bona-fide-like attacks are the ones leave-one-attack-out misses).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.kinds import register_kind

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "PROFILE_COLUMNS",
    "CONFUSION_COLUMNS",
    "PROFILE_FILE",
    "CONFUSION_FILE",
    "ProfileConfig",
    "compute_profile",
    "run_profile",
    "KNOWN_RECALL",
]

PROFILE_COLUMNS = [
    "attack",
    "n",
    "accuracy",
    "predicted_share",
    "auroc_unknown",
    "auroc_unknown_distance",
    "flagged_at_95",
    "n_known_test",
    "d_bona",
    "cos_bona",
    "d_near_spoof",
    "bona_axis_proj",
]
CONFUSION_COLUMNS = ["true", "predicted", "count", "share"]
PROFILE_FILE = "profile.parquet"
CONFUSION_FILE = "profile_confusion.parquet"
KNOWN_RECALL = 0.95  # unknown rows flagged when 95% of known rows are still accepted (the usual TPR95 point)
MAX_CONCAT_WIDTH = 2048  # default: every vector column concatenated up to this total width, else the last layer

register_kind(
    "profile",
    title="Attack profiling (source tracing)",
    command="`cm profile FEATURES --manifest M --target attack --out DIR`",
    marker=PROFILE_FILE,
    tables=("profile", "profile_confusion"),
    missing="attack profiles",
    section="cm_cli.report.sections_profile:profile_blocks",
    optional=True,
    order=60,
)


@dataclass
class ProfileConfig:
    """Settings of an attack-profiling run."""

    target: str = "attack"
    layers: str | None = None
    group_by: str | None = "speaker"
    folds: int = 5
    holdout: tuple[str, ...] = ()  # attacks held out as unknown; () = each attack in turn
    split: str | None = None
    c: float = 1.0
    max_iter: int = 1000
    n_boot: int = 1000
    seed: int = 0

    def options(self) -> dict:
        data = asdict(self)
        data["holdout"] = list(self.holdout)
        return data


def _classifier(config: ProfileConfig):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=config.c, max_iter=config.max_iter, random_state=config.seed)
    )


def _fit(X, y, config: ProfileConfig):
    from sklearn.exceptions import ConvergenceWarning

    model = _classifier(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model


def _layers_to_read(path: Path, layers: str | None) -> list[str]:
    """The vector columns to concatenate: the given ones, else all up to MAX_CONCAT_WIDTH, else the last layer."""
    from cm_cli.analysis._layers import embedding_layers, resolve_layers
    from cm_cli.embedding.store import _schema_width

    if layers is not None and str(layers).strip().lower() not in ("", "all"):
        return resolve_layers(path, layers)
    available = embedding_layers(path)
    if str(layers).strip().lower() == "all":
        return available
    widths = [_schema_width(path, name) or 0 for name in available]
    if sum(widths) <= MAX_CONCAT_WIDTH:
        return available
    numbered = [name for name in available if name.startswith("layer_")]
    return [numbered[-1] if numbered else available[-1]]


def _read_features(path: Path, layers: list[str]) -> tuple["np.ndarray", "np.ndarray", int]:
    """(utt_ids, X) with the layers side by side on the rows finite in every layer (dropped rows counted)."""
    import numpy as np

    from cm_cli.embedding.store import read_layer

    data = [read_layer(path, layer, drop_nonfinite=True) for layer in layers]
    positions = [{u: i for i, u in enumerate(d.utt_ids.tolist())} for d in data]
    ids = [u for u in data[0].utt_ids.tolist() if all(u in p for p in positions[1:])]
    X = np.concatenate([d.X[[p[u] for u in ids]] for d, p in zip(data, positions)], axis=1)
    dropped = max(len(d.utt_ids) for d in data) - len(ids) + max(d.n_nonfinite for d in data)
    return np.asarray(ids, dtype=str), X.astype(np.float64), dropped


def _closed_set(X, y, fold, config: ProfileConfig) -> "np.ndarray":
    """Out-of-fold predicted class codes of every spoof row."""
    import numpy as np

    predicted = np.empty(len(y), dtype=np.int64)
    for k in np.unique(fold):
        test = fold == k
        train_y = y[~test]
        if len(np.unique(train_y)) < 2:
            predicted[test] = train_y[0]
            continue
        predicted[test] = _fit(X[~test], train_y, config).predict(X[test])
    return predicted


def _unknown_scores(X, y, fold, held: int, config: ProfileConfig) -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    """Two unknown scores of every row from classifiers never trained on class ``held``.

    ``msp``: 1 - max softmax probability; ``distance``: Euclidean distance to the nearest known
    attack's centroid in the training fold's standardised space. MSP is confident far from all
    known classes (a linear softmax extrapolates), which the distance score is not; both are reported.
    """
    import numpy as np

    msp, distance = np.full(len(y), np.nan), np.full(len(y), np.nan)
    for k in np.unique(fold):
        test = fold == k
        train = (~test) & (y != held)
        known = np.unique(y[train])
        if len(known) < 2:
            continue  # one known class: a softmax over it says nothing
        model = _fit(X[train], y[train], config)
        msp[test] = 1.0 - model.predict_proba(X[test]).max(axis=1)
        scaler = model[0]
        Z_train, Z_test = scaler.transform(X[train]), scaler.transform(X[test])
        centroids = np.stack([Z_train[y[train] == c].mean(axis=0) for c in known])
        gaps = ((Z_test[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        distance[test] = np.sqrt(gaps.min(axis=1))
    return msp, distance, y == held


def _flagged_at(unknown: "np.ndarray", known: "np.ndarray", recall: float = KNOWN_RECALL) -> float:
    """Share of unknown scores above the threshold that keeps ``recall`` of known scores below it."""
    import numpy as np

    threshold = np.quantile(known, recall)
    return float((unknown > threshold).mean())


def _check(spoof: "pd.DataFrame", classes: Sequence[str], counts, config: ProfileConfig, source: str) -> None:
    if len(classes) < 2:
        raise CmError(
            f"{source}: the spoof rows have {len(classes)} value(s) of {config.target!r}; "
            "profiling needs at least 2 attacks",
            "profile another column (e.g. attack_family) or another split",
            option=("target", "split"),
        )
    small = [f"{c}: {n}" for c, n in zip(classes, counts) if n < config.folds]
    if small:
        raise CmError(
            f"{source}: attack(s) with fewer spoof rows than the {config.folds} folds ({', '.join(small[:8])})",
            "use fewer folds, or profile on a split with more rows per attack",
            option=("folds", "split"),
        )
    unknown = [h for h in config.holdout if h not in classes]
    if unknown:
        raise CmError(
            f"held-out attack(s) {', '.join(unknown)}: no spoof rows with that {config.target}",
            f"attacks found: {', '.join(classes)}",
            option="holdout",
        )


def compute_profile(
    features: str | Path, manifest: "pd.DataFrame", *, config: ProfileConfig = ProfileConfig(), source: str = "manifest"
) -> tuple["pd.DataFrame", "pd.DataFrame", dict]:
    """(per-attack table, confusion table, summary) of one feature table; see the module docstring."""
    import numpy as np
    import pandas as pd

    from cm_cli.analysis._layers import align_rows
    from cm_cli.analysis.geometry import attack_geometry
    from cm_cli.analysis.probes import assign_folds
    from cm_cli.core.labels import is_bonafide
    from cm_cli.metrics.stats import cluster_bootstrap_mean, spearman_test
    from cm_cli.metrics.summary import auc

    if config.folds < 2:
        raise CmError(f"folds must be at least 2, got {config.folds}", option="folds")
    path = Path(features)
    layers = _layers_to_read(path, config.layers)
    ids, X, dropped = _read_features(path, layers)
    aligned = align_rows(ids.astype(object), manifest, source=str(path), manifest_source=source)
    rows, X = aligned.manifest, X[aligned.index]
    for column in (config.target, "label"):
        if column not in rows.columns:
            raise CmError(f"{source}: no column {column!r}", f"columns found: {', '.join(map(str, rows.columns))}")
    is_bona = np.asarray(is_bonafide(rows["label"], source=source), dtype=bool)
    spoof_mask = (~is_bona) & rows[config.target].notna().to_numpy()
    spoof = rows.loc[spoof_mask].reset_index(drop=True)
    Xs = X[spoof_mask]
    classes, y = np.unique(spoof[config.target].astype(str).to_numpy(), return_inverse=True)
    classes = [str(c) for c in classes]
    counts = np.bincount(y, minlength=len(classes))
    _check(spoof, classes, counts, config, source)
    if config.group_by and config.group_by not in spoof.columns:
        raise CmError(
            f"{source}: no column {config.group_by!r} to group folds by",
            f"columns found: {', '.join(map(str, spoof.columns))}",
        )
    groups = (
        spoof[config.group_by].astype("string").fillna("none").astype(str).to_numpy(dtype=object)
        if config.group_by
        else spoof["utt_id"].astype(str).to_numpy(dtype=object)
    )
    if len(set(groups.tolist())) < config.folds:
        raise CmError(
            f"{source}: only {len(set(groups.tolist()))} {config.group_by} group(s) among the spoofs "
            f"for {config.folds} folds",
            "use fewer folds or group by another column",
            option=("folds", "group_by"),
        )
    fold = assign_folds(y, groups, folds=config.folds, seed=config.seed)
    predicted = _closed_set(Xs, y, fold, config)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    correct = (predicted == y).astype(float)
    low, high, _ = cluster_bootstrap_mean(correct, groups, n_boot=config.n_boot, seed=config.seed)
    recall = confusion.diagonal() / np.maximum(counts, 1)

    holdouts = list(config.holdout) or classes
    open_set: dict[str, dict[str, Any]] = {}
    for name in holdouts:
        held = classes.index(name)
        msp, distance, unknown = _unknown_scores(Xs, y, fold, held, config)
        ok = np.isfinite(msp)
        if len(classes) < 3 or not (ok & ~unknown).any() or not (ok & unknown).any():
            open_set[name] = {
                "auroc_unknown": float("nan"),
                "auroc_unknown_distance": float("nan"),
                "flagged_at_95": float("nan"),
                "n_known_test": 0,
            }
            continue
        known_rows, unknown_rows = ok & ~unknown, ok & unknown
        open_set[name] = {  # auc(a, b) = P(a scores above b): unknown rows above known rows
            "auroc_unknown": auc(msp[unknown_rows], msp[known_rows]),
            "auroc_unknown_distance": auc(distance[unknown_rows], distance[known_rows]),
            "flagged_at_95": _flagged_at(msp[unknown_rows], msp[known_rows]),
            "n_known_test": int(known_rows.sum()),
        }
    keep = is_bona | spoof_mask
    if is_bona.any():
        attack_all = rows[config.target].astype("string").fillna("").astype(str).to_numpy(dtype=object)
        geometry = attack_geometry(X[keep], is_bona[keep], attack_all[keep], layer="+".join(layers))
    else:
        geometry = pd.DataFrame(columns=["attack", "layer", "d_bona", "cos_bona", "d_near_spoof", "bona_axis_proj"])
    table = pd.DataFrame(
        {
            "attack": classes,
            "n": counts.astype(int),
            "accuracy": recall,
            "predicted_share": np.bincount(predicted, minlength=len(classes)) / len(y),
        }
    )
    for key in ("auroc_unknown", "auroc_unknown_distance", "flagged_at_95", "n_known_test"):
        table[key] = [open_set.get(c, {}).get(key, float("nan")) for c in classes]
    table = table.merge(geometry.drop(columns=["layer"]), on="attack", how="left")[PROFILE_COLUMNS]
    confusion_rows = [
        {
            "true": classes[i],
            "predicted": classes[j],
            "count": int(confusion[i, j]),
            "share": float(confusion[i, j] / max(counts[i], 1)),
        }
        for i in range(len(classes))
        for j in range(len(classes))
    ]
    aurocs = table["auroc_unknown"].to_numpy(dtype=float)
    summary: dict[str, Any] = {
        "target": config.target,
        "features": str(path),
        "layers": layers,
        "dims": int(X.shape[1]),
        "n_spoof": int(len(y)),
        "n_bonafide": int(is_bona.sum()),
        "classes": classes,
        "accuracy": float(correct.mean()),
        "ci_low": low,
        "ci_high": high,
        "balanced_accuracy": float(recall.mean()),
        "chance_majority": float(counts.max() / counts.sum()),
        "chance_uniform": 1.0 / len(classes),
        "folds": config.folds,
        "group_by": config.group_by,
        "holdout": holdouts,
        "unknown_score": "1 - max softmax probability (Hendrycks & Gimpel 2017)",
        "known_recall": KNOWN_RECALL,
        "mean_auroc_unknown": float(np.nanmean(aurocs)) if np.isfinite(aurocs).any() else float("nan"),
        "mean_auroc_unknown_distance": (
            float(np.nanmean(table["auroc_unknown_distance"].to_numpy(float)))
            if np.isfinite(aurocs).any()
            else float("nan")
        ),
        "notes": list(aligned.notes) + ([f"{dropped} row(s) with NaN/inf dropped"] if dropped else []),
    }
    if len(classes) < 3:
        summary["notes"].append("open-set AUROC needs 3+ attacks (2 known to train a classifier on): not computed")
    if is_bona.any() and np.isfinite(aurocs).sum() >= 3:
        for metric in ("d_bona", "bona_axis_proj"):
            summary[f"proximity_vs_auroc_{metric}"] = spearman_test(
                table[metric].to_numpy(float), aurocs, seed=config.seed
            ).to_dict()
    elif not is_bona.any():
        summary["notes"].append("no bona fide rows: bona fide proximity not computed")
    return table, pd.DataFrame(confusion_rows, columns=CONFUSION_COLUMNS), summary


def run_profile(
    features: str | Path,
    *,
    manifest: str | Path,
    out: str | Path,
    config: ProfileConfig = ProfileConfig(),
    force: bool = False,
    argv: Sequence[str] | None = None,
) -> dict:
    """Profile, then write profile.parquet, profile_confusion.parquet and profile.json under ``out``."""
    from cm_cli.analysis._output import previous_summary, write_outputs
    from cm_cli.data.manifests import load_manifest

    options = {"features": str(features), "manifest": str(manifest), **config.options()}
    done = previous_summary(out, "profile", options, force=force)
    if done is not None:
        return done
    frame = load_manifest(manifest, split=config.split)
    table, confusion, summary = compute_profile(features, frame, config=config, source=str(manifest))
    return write_outputs(
        out,
        "profile",
        options,
        tables={PROFILE_FILE: table, CONFUSION_FILE: confusion},
        summary=summary,
        summary_name="profile.json",
        inputs=[features, manifest],
        force=force,
        argv=argv,
    )
