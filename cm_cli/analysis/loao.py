"""Leave-one-attack-out: how much worse a linear detector does on an attack it never saw.

On frozen embeddings this measures linear separability of the held-out attack by a
probe that never saw it, while the encoder that made the embeddings saw every
attack; only the full-retraining recipe (``plan_loao``) holds the attack out of the
encoder too.

For each attack (or attack family) a scaler + logistic-regression detector is fit
on a speaker-disjoint training part twice: on bona fide + every attack ("seen")
and on bona fide + every other attack ("held out"). Both are scored on the test
part's bona fide and that attack's spoofs; the gap (held-out EER - seen EER, in
points) says how much of the detection of that attack relied on having seen it.
Geometry and probe selectivity are then correlated with the gaps.
"""

from __future__ import annotations

import math
import shlex
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
    "LOAO_COLUMNS",
    "LoaoConfig",
    "LoaoTables",
    "compute_loao",
    "per_attack_gaps",
    "summarise_loao",
    "probe_selectivity_correlations",
    "compare_loao",
    "plan_loao",
    "retrained_gaps",
    "run_loao",
    "speaker_test_split",
    "FROZEN_MEASURES",
    "RETRAIN_MEASURES",
    "measures_text",
    "PLAN_FILE",
]

LOAO_COLUMNS = ["attack", "seed", "layer", "eer_seen", "eer_held_out", "gap", "n_bonafide", "n_spoof"]
# what each protocol measures, written into loao.json, the Parquet metadata, the plan record and the report
FROZEN_MEASURES = (
    "linear separability of a held-out attack by a probe that never saw it; the encoder that "
    "made the embeddings saw every attack"
)
RETRAIN_MEASURES = (
    "detection of an attack the whole detector (encoder included) never saw: each run is "
    "retrained with that attack removed from train and dev"
)
GROUP_COLUMNS = ("attack", "attack_family", "codec", "codec_family")


def measures_text(protocol: str, group_by: str = "attack") -> str:
    """What a protocol measures, in the plan's own unit: a codec is held out with its rows of both classes (and,
    when retraining, its augmentation entries), an attack with its spoofs; ``attack`` keeps the constants above."""
    if group_by == "attack":
        return FROZEN_MEASURES if protocol == "frozen" else RETRAIN_MEASURES
    noun = group_by.replace("_", " ")
    article = "an" if noun[:1] in "aeiou" else "a"
    if protocol == "frozen":
        rows = f"the {noun}'s rows (bona fide and spoof)" if group_by in CODEC_GROUPS else f"the held-out {noun}"
        return (
            f"linear separability of {rows} by a probe that never saw that {noun}; the encoder that made the "
            f"embeddings saw every {noun}"
        )
    if group_by in CODEC_GROUPS:
        return (
            f"detection under {article} {noun} the whole detector (encoder included) never saw: each run is "
            f"retrained with that {noun}'s rows (bona fide and spoof) and augmentation removed"
        )
    return (
        f"detection of {article} {noun} the whole detector (encoder included) never saw: each run is "
        f"retrained with that {noun} removed from train and dev"
    )


# a codec is a property of every row (bona fide coded too): holding one out removes all of its rows
CODEC_GROUPS = ("codec", "codec_family")


def codec_family(value: object) -> str | None:
    """The codec behind a codec value: an ASVspoof 5 condition id -> its first coding step (C05 -> mp3), a
    registered degradation -> itself, anything else (Codecfake's soundstream, ...) -> unchanged."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in ("", "<NA>"):
        return None
    text = str(value)
    from cm_cli.degrade.conditions import CONDITIONS
    from cm_cli.degrade.registry import codec_fields

    if text in CONDITIONS:
        name, _ = codec_fields(CONDITIONS[text].specs()[0])
        return name or text
    return text


def with_codec_groups(manifest: "pd.DataFrame", group_by: str, source: str) -> "pd.DataFrame":
    """``codec_family`` filled from ``codec`` when absent; one line when the manifest has no codec values."""
    if group_by not in CODEC_GROUPS:
        return manifest
    if "codec" not in manifest.columns or manifest["codec"].isna().all():
        raise CmError(
            f"{source}: grouping by {group_by} needs codec values, and the manifest has none",
            "use a manifest with coded rows (e.g. the toy corpus's coded eval copies, `cm degrade` output)",
            option=("manifest", "group_by"),
        )
    if group_by == "codec_family" and "codec_family" not in manifest.columns:
        manifest = manifest.copy()
        manifest["codec_family"] = manifest["codec"].map(codec_family).astype("string")
    return manifest


# the artifact kinds this module makes, with their report sections (cm_cli.core.kinds)
register_kind(
    "loao",
    title="Leave one attack out",
    command="`cm loao EMBEDDINGS --manifest M --out DIR`",
    marker="loao.parquet",
    tables=("loao", "geometry"),
    looked_for="loao.parquet / geometry.parquet / loao.json",
    missing="LOAO results",
    section="cm_cli.report.sections_analysis:loao_blocks",
    order=10,
)
register_kind(
    "loao_retrain",
    title="Leave one attack out, full retraining",
    command="`cm loao --plan --train-preset P --manifest M --out DIR` then `sh DIR/plan.sh`",
    marker="loao_plan.json",
    looked_for="loao_plan.json (the full-retraining LOAO recipe of `cm loao --plan`)",
    section="cm_cli.report.sections_analysis:loao_retrain_blocks",
    optional=True,
    order=50,
)


@dataclass
class LoaoConfig:
    """Settings of a leave-one-attack-out analysis (EERs and gaps are in percent / points)."""

    layers: str | None = None  # None/"all", "6", "layer_06", "0,6,pooled"
    group_by: str = "attack"
    seeds: tuple[int, ...] = (0, 1, 2)
    split: str | None = None
    test_size: float = 0.3
    c: float = 1.0
    max_iter: int = 2000
    n_boot: int = 2000
    n_perm: int = 5000

    def options(self) -> dict:
        data = asdict(self)
        data["seeds"] = list(self.seeds)
        return data


@dataclass
class LoaoTables:
    loao: "pd.DataFrame"
    geometry: "pd.DataFrame"
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- data


def _check_config(config: LoaoConfig) -> None:
    if not config.seeds:
        raise CmError("no seeds given", "give at least one seed, e.g. 0,1,2", option="seeds")
    if not 0 < config.test_size < 1:
        raise CmError(f"test size must be between 0 and 1, got {config.test_size}")
    if config.c <= 0:
        raise CmError(f"C must be positive, got {config.c}")


def _prepare(manifest: "pd.DataFrame", group_by: str, source: str) -> tuple["pd.DataFrame", list[str]]:
    """Manifest rows usable for LOAO: bona fide plus spoofs with a known attack group."""
    notes: list[str] = []
    for column in (group_by, "label", "speaker", "utt_id"):
        if column not in manifest.columns:
            raise CmError(f"{source}: no column {column!r}", f"columns found: {', '.join(map(str, manifest.columns))}")
    is_spoof = manifest["label"].astype(str) == "spoof"
    unknown = is_spoof & manifest[group_by].isna() & (group_by not in CODEC_GROUPS)  # uncoded rows stay (clean)
    if unknown.any():
        notes.append(f"{int(unknown.sum())} spoof row(s) without {group_by} dropped")
        manifest = manifest.loc[~unknown].reset_index(drop=True)
    if manifest["speaker"].isna().any():
        n = int(manifest["speaker"].isna().sum())
        notes.append(f"{n} row(s) without a speaker dropped (the train/test split is by speaker)")
        manifest = manifest.loc[manifest["speaker"].notna()].reset_index(drop=True)
    return manifest, notes


def _check_classes(rows: "pd.DataFrame", group_by: str, source: str) -> None:
    labels = rows["label"].astype(str)
    n_bona = int((labels == "bonafide").sum())
    attacks = rows.loc[labels == "spoof", group_by].astype(str).value_counts().sort_index()
    if group_by in CODEC_GROUPS:
        attacks = rows[group_by].dropna().astype(str).value_counts().sort_index()
    if n_bona == 0 or len(attacks) < (1 if group_by in CODEC_GROUPS else 2):
        shown = ", ".join(f"{k}: {v}" for k, v in attacks.items()) or "none"
        raise CmError(
            f"{source}: leave-one-attack-out needs bona fide rows and at least 2 spoof {group_by} values "
            f"(bona fide: {n_bona}; {group_by}: {shown})",
            "use a split that holds several attacks, or group by attack instead of a family",
            option=("split", "group_by"),
        )
    speakers = rows["speaker"].astype(str).nunique()
    if speakers < 2:
        raise CmError(f"{source}: only {speakers} speaker(s); the train/test split is by speaker and needs at least 2")


def speaker_test_split(speakers: Sequence[str], *, seed: int, test_size: float) -> set[str]:
    """The speakers held out for testing: a seeded shuffle of the sorted speaker ids."""
    import numpy as np

    unique = sorted({str(s) for s in speakers})
    n_test = min(len(unique) - 1, max(1, int(round(test_size * len(unique)))))
    order = np.random.default_rng(seed).permutation(len(unique))
    return {unique[i] for i in order[:n_test]}


def _group_values(rows: "pd.DataFrame", group_by: str, is_bona: "np.ndarray") -> "np.ndarray":
    """The attack group of each row as plain strings ('' for bona fide)."""
    import numpy as np

    values = rows[group_by].astype("string").fillna("").astype(str).to_numpy(dtype=object)
    return np.where(is_bona, "", values).astype(object)


def _detector(c: float, max_iter: int, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, class_weight="balanced", random_state=seed)
    )


def _fit_scores(X_train, y_train, X_test, *, config: LoaoConfig, seed: int) -> "np.ndarray":
    from sklearn.exceptions import ConvergenceWarning

    model = _detector(config.c, config.max_iter, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    return model.decision_function(X_test)  # positive class 1 = bona fide: higher = more bona fide


def _layer_gaps(X: "np.ndarray", rows: "pd.DataFrame", *, layer: str, config: LoaoConfig) -> list[dict]:
    import numpy as np

    from cm_cli.metrics.summary import eer_and_min_dcf

    is_bona = (rows["label"].astype(str) == "bonafide").to_numpy()
    by_codec = config.group_by in CODEC_GROUPS
    group = _group_values(rows, config.group_by, np.zeros(len(rows), bool) if by_codec else is_bona)
    speakers = rows["speaker"].astype(str).to_numpy()
    attacks = sorted({str(a) for a in group[~is_bona]} - {""})
    y = is_bona.astype(int)
    out: list[dict] = []
    for seed in config.seeds:
        test_speakers = speaker_test_split(speakers, seed=seed, test_size=config.test_size)
        test = np.isin(speakers, list(test_speakers))
        train = ~test
        if not (y[train] == 1).any() or not (y[train] == 0).any():
            raise CmError(
                f"seed {seed}: the training speakers hold only one class",
                "use more speakers, or another test share",
                option="test_size",
            )
        test_bona = test & is_bona
        seen_scores = None
        for attack in attacks:
            if by_codec:  # the held-out codec's rows, both classes: trained without them, tested on them
                in_attack = group == attack
                target = test & in_attack
                if not (target & is_bona).any():  # codec-generated spoofs (Codecfake): uncoded bona fide opposite
                    target = target | (test_bona & (group == ""))
            else:
                in_attack = (~is_bona) & (group == attack)
                target = test_bona | (test & in_attack)
            n_bona, n_spoof = int((target & is_bona).sum()), int((target & ~is_bona).sum())
            row = {
                "attack": attack,
                "seed": int(seed),
                "layer": layer,
                "eer_seen": math.nan,
                "eer_held_out": math.nan,
                "gap": math.nan,
                "n_bonafide": n_bona,
                "n_spoof": n_spoof,
            }
            if n_bona and n_spoof:
                if seen_scores is None:
                    seen_scores = np.full(len(y), np.nan)
                    seen_scores[test] = _fit_scores(X[train], y[train], X[test], config=config, seed=seed)
                held_train = train & ~in_attack
                held = _fit_scores(X[held_train], y[held_train], X[target], config=config, seed=seed)
                bona_mask = is_bona[target]
                eer_seen, _ = eer_and_min_dcf(seen_scores[target][bona_mask], seen_scores[target][~bona_mask])
                eer_held, _ = eer_and_min_dcf(held[bona_mask], held[~bona_mask])
                row.update(eer_seen=100 * eer_seen, eer_held_out=100 * eer_held, gap=100 * (eer_held - eer_seen))
            out.append(row)
    return out


def compute_loao(
    embeddings: str | Path, manifest: "pd.DataFrame", *, config: LoaoConfig = LoaoConfig(), source: str = "manifest"
) -> LoaoTables:
    """LOAO gap rows (LOAO_COLUMNS) and per-attack geometry for every requested layer."""
    import pandas as pd

    from cm_cli.analysis._layers import align_rows, read_layer, resolve_layers
    from cm_cli.analysis.geometry import GEOMETRY_COLUMNS, attack_geometry
    from cm_cli.core.progress import track

    _check_config(config)
    if config.group_by not in GROUP_COLUMNS and config.group_by not in manifest.columns:
        raise CmError(
            f"cannot group by {config.group_by!r}: not a manifest column", f"use {' or '.join(GROUP_COLUMNS)}"
        )
    manifest = with_codec_groups(manifest, config.group_by, source)
    rows_all, notes = _prepare(manifest, config.group_by, source)
    layers = resolve_layers(embeddings, config.layers)
    gap_rows: list[dict] = []
    geometry: list[pd.DataFrame] = []
    counts: dict[str, Any] = {}
    for layer in track(layers, description=f"loao {Path(embeddings).name}"):
        data = read_layer(embeddings, layer)
        aligned = align_rows(data.utt_ids, rows_all, source=str(embeddings), manifest_source=source)
        if data.n_nonfinite:
            notes.append(f"{layer}: {data.n_nonfinite} row(s) with NaN/inf dropped")
        rows = aligned.manifest
        _check_classes(rows, config.group_by, f"{embeddings} joined with {source}")
        X = data.X[aligned.index]
        gap_rows.extend(_layer_gaps(X, rows, layer=layer, config=config))
        is_bona = (rows["label"].astype(str) == "bonafide").to_numpy()
        geometry.append(attack_geometry(X, is_bona, _group_values(rows, config.group_by, is_bona), layer=layer))
        if not counts:
            labels = rows["label"].astype(str)
            counts = {
                "n_rows": int(len(rows)),
                "n_bonafide": int((labels == "bonafide").sum()),
                "n_spoof": int((labels == "spoof").sum()),
                "n_speakers": int(rows["speaker"].nunique()),
                "attacks": {
                    str(k): int(v)
                    for k, v in rows.loc[labels == "spoof", config.group_by]
                    .astype(str)
                    .value_counts()
                    .sort_index()
                    .items()
                },
            }
            notes.extend(aligned.notes)
    loao = pd.DataFrame(gap_rows, columns=LOAO_COLUMNS)
    loao = loao.astype({"seed": "int64", "n_bonafide": "int64", "n_spoof": "int64"})
    missing = loao[loao["gap"].isna()]
    if len(missing):
        pairs = sorted({f"{a} (seed {s})" for a, s in zip(missing["attack"], missing["seed"])})
        notes.append(
            f"no test spoofs or bona fide for {', '.join(pairs[:8])}: gap is NaN there "
            "(attack held by too few speakers for the split)"
        )
    if loao["gap"].isna().all():
        raise CmError(
            "no attack had both bona fide and spoof test rows in any seed",
            "use more speakers or a larger test share",
            option="test_size",
        )
    geo = pd.concat(geometry, ignore_index=True) if geometry else pd.DataFrame(columns=GEOMETRY_COLUMNS)
    return LoaoTables(loao=loao, geometry=geo, counts=counts, notes=list(dict.fromkeys(notes)))


# --------------------------------------------------------------------------- summaries


def per_attack_gaps(loao: "pd.DataFrame") -> "pd.DataFrame":
    """Mean and sd (over seeds) of the gap and both EERs per layer and attack."""
    grouped = loao.groupby(["layer", "attack"], sort=True)
    table = grouped.agg(
        gap_mean=("gap", "mean"),
        gap_sd=("gap", "std"),
        n_seeds=("gap", "count"),
        eer_seen_mean=("eer_seen", "mean"),
        eer_held_out_mean=("eer_held_out", "mean"),
    )
    return table.reset_index()


def _correlate(frame: "pd.DataFrame", columns: Sequence[str], target: str, config: LoaoConfig) -> list[dict]:
    from cm_cli.metrics.stats import spearman_test

    out = []
    for layer, part in frame.groupby("layer", sort=True):
        for column in columns:
            result = spearman_test(
                part[column].to_numpy(float),
                part[target].to_numpy(float),
                n_boot=config.n_boot,
                n_perm=config.n_perm,
                seed=config.seeds[0],
            )
            out.append({"layer": layer, "metric": column, "against": target, **result.to_dict()})
    return out


def summarise_loao(tables: LoaoTables, *, config: LoaoConfig = LoaoConfig()) -> dict:
    """Per-attack gap mean/sd, the largest gap per layer, geometry-gap Spearman correlations."""
    from cm_cli.analysis.geometry import GEOMETRY_METRICS

    gaps = per_attack_gaps(tables.loao)
    joined = gaps.merge(tables.geometry, on=["layer", "attack"], how="inner")
    largest = {}
    for layer, part in gaps.dropna(subset=["gap_mean"]).groupby("layer", sort=True):
        best = part.loc[part["gap_mean"].idxmax()]
        largest[layer] = {"attack": best["attack"], "gap_mean": float(best["gap_mean"])}
    return {
        "protocol": "frozen embeddings",
        "measures": measures_text("frozen", config.group_by),
        "units": "EER and gap in percentage points; gap = eer_held_out - eer_seen",
        "group_by": config.group_by,
        "seeds": list(config.seeds),
        "layers": sorted(gaps["layer"].unique().tolist()),
        "counts": tables.counts,
        "per_attack": _records(gaps),
        "largest_gap": largest,
        "geometry_correlations": _correlate(joined, GEOMETRY_METRICS, "gap_mean", config),
        "notes": tables.notes,
    }


def _records(frame: "pd.DataFrame") -> list[dict]:
    import numpy as np

    records = frame.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()} for r in records]


def probe_selectivity_correlations(
    loao: "pd.DataFrame",
    probe_results: str | Path,
    *,
    group_by: str,
    config: LoaoConfig = LoaoConfig(),
    tag: str | None = None,
) -> dict:
    """Join per-class probe selectivity (target = the attack column) to gaps, per layer, and correlate."""
    from cm_cli.analysis.probes import load_class_selectivity

    classes = load_class_selectivity(probe_results, target=group_by, tag=tag)
    gaps = per_attack_gaps(loao)
    joined = gaps.merge(classes.rename(columns={"class": "attack"}), on=["layer", "attack"], how="inner")
    if joined.empty:
        raise CmError(
            f"{probe_results}: no (layer, {group_by}) pair in common with the LOAO results",
            f"probe target {group_by!r} on the same embeddings and layers (`cm probe`) first",
            option="probe_results",
        )
    return {
        "source": str(probe_results),
        "tag": str(classes["tag"].iloc[0]) if len(classes) else None,
        "hypothesis": "attacks whose generator identity is linearly decodable (high per-class selectivity) "
        "are detected without having been seen (gap vs selectivity)",
        "per_attack": _records(joined[["layer", "attack", "gap_mean", "selectivity"]]),
        "correlations": _correlate(joined, ["selectivity"], "gap_mean", config),
    }


def compare_loao(a: LoaoTables, b: LoaoTables, *, config: LoaoConfig = LoaoConfig()) -> tuple["pd.DataFrame", dict]:
    """Per-attack changes (B - A) of gap and geometry on shared layers, and how they co-vary."""
    from cm_cli.analysis.geometry import GEOMETRY_METRICS
    from cm_cli.metrics.stats import spearman_test

    def table(t: LoaoTables):
        return per_attack_gaps(t.loao)[["layer", "attack", "gap_mean"]].merge(t.geometry, on=["layer", "attack"])

    joined = table(a).merge(table(b), on=["layer", "attack"], suffixes=("_a", "_b"))
    if joined.empty:
        raise CmError(
            "the compared embedding sets share no (layer, attack) pair",
            "compare embeddings of the same manifest with the same layer names",
            option="layer",
        )
    joined["delta_gap"] = joined["gap_mean_b"] - joined["gap_mean_a"]
    for metric in GEOMETRY_METRICS:
        joined[f"delta_{metric}"] = joined[f"{metric}_b"] - joined[f"{metric}_a"]
    delta_columns = [f"delta_{m}" for m in GEOMETRY_METRICS]
    correlations = _correlate(joined, delta_columns, "delta_gap", config)
    consistency = []
    for layer, part in joined.groupby("layer", sort=True):
        r = spearman_test(
            part["gap_mean_a"].to_numpy(float),
            part["gap_mean_b"].to_numpy(float),
            n_boot=config.n_boot,
            n_perm=config.n_perm,
            seed=config.seeds[0],
        )
        consistency.append({"layer": layer, **r.to_dict()})
    summary = {
        "per_attack": _records(joined[["layer", "attack", "gap_mean_a", "gap_mean_b", "delta_gap", *delta_columns]]),
        "mean_delta_gap": {layer: float(p["delta_gap"].mean()) for layer, p in joined.groupby("layer", sort=True)},
        "delta_correlations": correlations,
        "gap_rank_consistency": consistency,
    }
    return joined, summary


# --------------------------------------------------------------------------- plan for full retraining

PLAN_FILE = "loao_plan.json"
TRAINING_SPLITS = ("train", "dev")


def _slug(group: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in group)


def _plan_groups(manifest: "pd.DataFrame", group_by: str, eval_split: str) -> tuple[list[str], dict[str, str], bool]:
    """Groups to hold out (spoofed in train/dev and present in the evaluated split), the skipped ones with
    the reason, and whether the manifest has train/dev splits at all."""
    spoof = manifest["label"].astype(str) == "spoof"
    split = manifest["split"].astype(str) if "split" in manifest.columns else None
    values = manifest[group_by].astype("string")
    everywhere = sorted(values[spoof].dropna().unique())
    has_splits = split is not None and split.isin(TRAINING_SPLITS).any()
    if not has_splits:
        return list(everywhere), {}, False
    trained = set(values[spoof & split.isin(TRAINING_SPLITS)].dropna())
    evaluated = set(values[spoof & (split == eval_split)].dropna())
    groups, skipped = [], {}
    for group in everywhere:
        if group not in trained:
            skipped[group] = f"never in {'/'.join(TRAINING_SPLITS)}: already unseen by every run"
        elif group not in evaluated:
            skipped[group] = f"no spoofs in the {eval_split!r} split to measure it on"
        else:
            groups.append(group)
    return groups, skipped, True


def _plan_codecs(manifest: "pd.DataFrame", group_by: str, eval_split: str) -> tuple[list[str], dict[str, str], bool]:
    """Codec groups to hold out: every codec value present in the evaluated split (seen in training through its
    rows or through augmentation; the plan removes both)."""
    split = manifest["split"].astype(str) if "split" in manifest.columns else None
    has_splits = split is not None and split.isin(TRAINING_SPLITS).any()
    values = manifest[group_by].astype("string")
    evaluated = values[split == eval_split] if has_splits else values
    return sorted(evaluated.dropna().unique()), {}, bool(has_splits)


def _seen_codecs(
    manifest: "pd.DataFrame",
    group_by: str,
    groups: list[str],
    skipped: dict[str, str],
    augment: str | None,
    has_splits: bool,
) -> tuple[list[str], dict[str, str]]:
    """Keep the codecs training sees, through train/dev rows or the augmentation policy; skip the rest."""
    if not has_splits:
        return groups, skipped
    split = manifest["split"].astype(str)
    in_rows = set(manifest.loc[split.isin(TRAINING_SPLITS), group_by].dropna().astype(str))
    kept, skipped = [], dict(skipped)
    for group in groups:
        if group in in_rows or (augment and _without_codec(augment, group, group_by)[1]):
            kept.append(group)
        else:
            skipped[group] = (
                f"never in {'/'.join(TRAINING_SPLITS)} nor in the augmentation policy: already unseen by every run"
            )
    return kept, skipped


def _preset_augment(train_preset: str) -> str | None:
    from cm_cli.core.presets import load_preset

    try:
        options = load_preset(train_preset, command="train").options
    except CmError:
        return None
    value = options.get("augment")
    return str(value) if value else None


def _without_codec(augment: str, group: str, group_by: str) -> tuple[str, list[str]]:
    """The augmentation policy with every entry that codes with ``group`` removed, and the removed entries."""
    from cm_cli.degrade.policy import load_policy
    from cm_cli.degrade.registry import codec_fields

    policy = load_policy(augment, check_available=False)
    kept, removed = [], []
    for entry, p in zip(policy.entries, policy.probabilities):
        names = {entry.condition} if entry.condition else set()
        for spec in entry.candidates():
            names.add(codec_fields(spec)[0])
        if group_by == "codec_family":
            names = {codec_family(n) for n in names if n}
        (removed if group in names else kept).append(f"{entry.condition or entry.text}:{p:.6g}")
    if not kept:
        kept = ["clean:1"]
    return ", ".join(kept), removed


def plan_loao(
    manifest_path: str | Path,
    manifest: "pd.DataFrame",
    *,
    out: str | Path,
    train_preset: str,
    group_by: str = "attack",
    eval_split: str = "eval",
    train_args: str = "",
    seeds: Sequence[int] | None = None,
) -> list[str]:
    """One shell line per held-out group (plus the all-seen baseline): ``cm train`` on a manifest whose
    train and dev splits lack that group's spoofs, then ``cm eval`` of the run on ``eval_split`` of the
    full manifest with a per-attack breakdown.

    Writes the training manifests under ``OUT/manifests``, ``OUT/plan.sh`` (every line, in order) and
    ``OUT/loao_plan.json``, the recipe record by which ``cm report`` finds the runs and reads each held-out
    group's EER from ``by.<group_by>`` of their metrics.json.
    """
    from cm_cli.core.artifacts import write_json, write_parquet

    manifest = with_codec_groups(manifest, group_by, str(manifest_path))
    if group_by not in manifest.columns:
        raise CmError(f"{manifest_path}: no column {group_by!r}")
    by_codec = group_by in CODEC_GROUPS
    groups, skipped, has_splits = (
        _plan_codecs(manifest, group_by, eval_split) if by_codec else _plan_groups(manifest, group_by, eval_split)
    )
    if len(groups) < 1:
        reasons = "; ".join(f"{g}: {r}" for g, r in skipped.items()) or "no spoofs with a value"
        raise CmError(
            f"{manifest_path}: no {group_by} can be held out ({reasons})",
            "the held-out attack must be spoofed in train/dev and present in the evaluated split",
            option="split",
        )
    if not has_splits and len(groups) < 2:
        raise CmError(f"{manifest_path}: fewer than 2 {group_by} values among spoofs; nothing to hold out")
    spoof = manifest["label"].astype(str) == "spoof"
    out = Path(out)
    q = shlex.quote
    args = shlex.split(train_args) if train_args else []
    given_augment = None
    if by_codec:  # an --augment among the train args is the policy each held-out run must filter, not repeat
        for i, arg in enumerate(args):
            if arg == "--augment" and i + 1 < len(args):
                given_augment = args[i + 1]
                args = args[:i] + args[i + 2 :]
                break
            if arg.startswith("--augment="):
                given_augment = arg.split("=", 1)[1]
                args = args[:i] + args[i + 1 :]
                break
    extra = (" " + " ".join(q(a) for a in args)) if args else ""

    augment = (given_augment or _preset_augment(train_preset)) if by_codec else None
    if by_codec:  # a codec no run trains on (no train/dev rows, no augmentation entry) is unseen already
        groups, skipped = _seen_codecs(manifest, group_by, groups, skipped, augment, has_splits)
        if not groups:
            reasons = "; ".join(f"{g}: {r}" for g, r in skipped.items())
            raise CmError(
                f"{manifest_path}: no {group_by} can be held out ({reasons})",
                "a codec must be seen in training (train/dev rows or the augmentation policy) and present "
                "in the evaluated split",
                option="split",
            )

    def one(train_manifest: Path, run: Path, policy: str | None, seed: int | None) -> str:
        aug = f" --augment {q(policy)}" if policy is not None else ""
        cm = "cm" if seed is None else f"cm --seed {int(seed)}"
        return (
            f"{cm} train --preset {q(train_preset)} --manifest {q(str(train_manifest))} --out {q(str(run))}"
            f"{aug}{extra}"
            f" && cm eval --run {q(str(run))} --manifest {q(str(manifest_path))} --split {q(eval_split)}"
            f" --out {q(str(run / 'eval'))} --by {q(group_by)}"
        )

    def runs_of(run: Path) -> list[tuple[Path, int | None]]:
        """The run directories of one recipe line: RUN, or RUN/seed_<s> per seed (the report's seed layout)."""
        return [(run, None)] if not seeds else [(run / f"seed_{int(s)}", int(s)) for s in seeds]

    def line(train_manifest: Path, run: Path, policy: str | None = None) -> list[str]:
        return [one(train_manifest, r, policy, s) for r, s in runs_of(run)]

    def where(run: Path) -> dict:
        found = runs_of(run)
        entry = {"run": str(found[0][0].resolve()), "eval": str((found[0][0] / "eval").resolve())}
        if seeds:
            entry.update(seeds=[int(s) for s in seeds], evals=[str((r / "eval").resolve()) for r, _ in found])
        return entry

    baseline = out / "runs" / "seen"
    lines = line(Path(manifest_path), baseline, given_augment)
    held_out = []
    for group in groups:
        slug = _slug(group)
        train_manifest = out / "manifests" / f"without_{slug}" / "manifest.parquet"
        # the group's spoofs leave every split of the training manifest (train and dev matter to cm train;
        # the evaluation reads the full manifest)
        in_group = manifest[group_by].astype(str) == group
        dropped = in_group if by_codec else spoof & in_group  # a codec: its rows of both classes
        write_parquet(manifest.loc[~dropped].reset_index(drop=True), train_manifest)
        run = out / "runs" / f"heldout_{slug}"
        policy, removed = _without_codec(augment, group, group_by) if augment else (None, [])
        lines.extend(line(train_manifest, run, policy if removed else given_augment))
        held_out.append(
            {
                "group": group,
                "train_manifest": str(train_manifest.resolve()),
                **where(run),
                "rows_removed": int(dropped.sum()),
                **({"augment_removed": removed, "augment": policy} if removed else {}),
            }
        )
    record = {
        "kind": "loao_retrain",
        "protocol": "full retraining",
        "measures": measures_text("retrain", group_by),
        "manifest": str(Path(manifest_path).resolve()),
        "group_by": group_by,
        "eval_split": eval_split,
        "train_preset": train_preset,
        "train_args": train_args,
        "held_out_from": list(TRAINING_SPLITS) if has_splits else "every split (the manifest has no train/dev split)",
        "baseline": where(baseline),
        "seeds": [int(s) for s in seeds] if seeds else None,
        "held_out": held_out,
        "skipped": skipped,
        "lines": lines,
    }
    write_json(record, out / PLAN_FILE)
    script = out / "plan.sh"
    script.write_text(
        "#!/bin/sh\n# leave-one-attack-out with full retraining, written by `cm loao --plan`\n"
        "# each line is independent (a job-array task); run them all, then `cm report "
        f"{q(str(out))}`\nset -e\n" + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return lines


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _sd(values: list[float]) -> float:
    """Sample standard deviation (n - 1), NaN below two values."""
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def retrained_gaps(record: dict) -> tuple["pd.DataFrame", list[str]]:
    """Per held-out group: EER of the all-seen baseline and of the run trained without it (points, from the
    ``by.<group_by>`` breakdown of each run's metrics.json), the gap, and what is still missing."""
    import pandas as pd

    from cm_cli.core.artifacts import read_json

    group_by = str(record.get("group_by", "attack"))
    missing: list[str] = []

    def eer_of(eval_dir: str, group: str) -> tuple[float, int | None]:
        path = Path(eval_dir) / "metrics.json"
        if not path.is_file():
            missing.append(str(path))
            return math.nan, None
        entry = ((read_json(path).get("by") or {}).get(group_by) or {}).get(group) or {}
        if entry.get("eer") is None:
            missing.append(f"{path}: by.{group_by}.{group}")
            return math.nan, None
        return 100 * float(entry["eer"]), entry.get("n_spoof")

    baseline = record.get("baseline") or {}
    rows = []
    for item in record.get("held_out") or []:
        group = str(item["group"])
        # per seed (a plan with --train-seeds pairs baseline and held-out runs of the same seed)
        pairs = list(
            zip(baseline.get("evals") or [baseline.get("eval", "")], item.get("evals") or [item.get("eval", "")])
        )
        seen_eers, held_eers, n_spoof = [], [], None
        for seen_dir, held_dir in pairs:
            seen, n = eer_of(seen_dir, group)
            held, _ = eer_of(held_dir, group)
            seen_eers.append(seen)
            held_eers.append(held)
            n_spoof = n if n_spoof is None else n_spoof
        gaps = [h - s for s, h in zip(seen_eers, held_eers) if not (math.isnan(s) or math.isnan(h))]
        rows.append(
            {
                "attack": group,
                "eer_seen": _nanmean(seen_eers),
                "eer_held_out": _nanmean(held_eers),
                "gap": sum(gaps) / len(gaps) if gaps else math.nan,
                "gap_sd": _sd(gaps),
                "n_seeds": len(gaps),
                "n_spoof": n_spoof,
            }
        )
    columns = ["attack", "eer_seen", "eer_held_out", "gap", "n_spoof", "gap_sd", "n_seeds"]
    return pd.DataFrame(rows, columns=columns), list(dict.fromkeys(missing))


# --------------------------------------------------------------------------- the whole step


def run_loao(
    embeddings: str | Path,
    *,
    manifest: str | Path,
    out: str | Path,
    config: LoaoConfig = LoaoConfig(),
    probe_results: str | Path | None = None,
    probe_tag: str | None = None,
    compare: str | Path | None = None,
    force: bool = False,
    argv: Sequence[str] | None = None,
) -> dict:
    """Compute LOAO gaps and geometry (and the optional joins), then write loao.parquet, geometry.parquet,
    loao.json (and compare.parquet) under ``out``. Nothing is written if any step fails."""
    from cm_cli.analysis._output import previous_summary, write_outputs
    from cm_cli.data.manifests import load_manifest

    options = {
        "embeddings": str(embeddings),
        "manifest": str(manifest),
        **config.options(),
        "probe_results": str(probe_results) if probe_results else None,
        "probe_tag": probe_tag,
        "compare": str(compare) if compare else None,
    }
    done = previous_summary(out, "loao", options, force=force)
    if done is not None:
        return done
    frame = load_manifest(manifest, split=config.split)
    tables = compute_loao(embeddings, frame, config=config, source=str(manifest))
    summary = summarise_loao(tables, config=config)
    summary["embeddings"] = str(embeddings)
    out_tables = {"loao.parquet": tables.loao, "geometry.parquet": tables.geometry}
    if probe_results:
        summary["probe_selectivity"] = probe_selectivity_correlations(
            tables.loao, probe_results, group_by=config.group_by, config=config, tag=probe_tag
        )
    if compare:
        tables_b = compute_loao(compare, frame, config=config, source=str(manifest))
        joined, compare_summary = compare_loao(tables, tables_b, config=config)
        summary["compare"] = {"embeddings_b": str(compare), **compare_summary, "notes_b": tables_b.notes}
        out_tables["compare.parquet"] = joined
    inputs = [p for p in (embeddings, manifest, probe_results, compare) if p]
    metadata = {"cm.protocol": "frozen embeddings", "cm.measures": measures_text("frozen", config.group_by)}
    return write_outputs(
        out,
        "loao",
        options,
        tables=out_tables,
        summary=summary,
        summary_name="loao.json",
        inputs=inputs,
        force=force,
        argv=argv,
        metadata={"loao.parquet": metadata},
    )
