"""Seed replicates in the report: groups of runs that differ only in their seed, mean ± sd of the headline
numbers, and a paired test between every two groups on the trials they all scored.

A group is the set of evaluations whose run configuration and evaluation options are
equal except for the seed (DESIGN.md contract 6). It is named by the ``<method>``
directory of the ``<method>/seed_<s>`` layout, else the run's method, else its
preset, whichever keeps the names distinct.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from cm_cli.report import figures
from cm_cli.report.blocks import Figure, FigureDir, Note
from cm_cli.report.collect import EvalInfo
from cm_cli.report.tables import Table, fmt

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "seed_groups",
    "headline_values",
    "stored_or_computed_gap",
    "seeds_table",
    "paired_tests",
    "SeedFamily",
    "seed_family",
    "study_families",
    "format_p",
    "HEADLINE",
    "MAX_BOOT_CELLS",
]

# (key, column title, scale to display, digits): EER and minDCF first, then the gaps of contract 4
HEADLINE = (
    ("eer", "EER (%)", 100, 2),
    ("min_dcf", "minDCF", 1, 3),
    ("act_dcf", "actDCF", 1, 3),
    ("cllr", "Cllr (bits)", 1, 3),
    ("ood_gap", "OOD gap (points)", 1, 2),
    ("seen_gap", "Seen-codec gap (points)", 1, 2),
    ("unseen_gap", "Unseen-codec gap (points)", 1, 2),
)
N_BOOT = 1000
MAX_BOOT_CELLS = 2e9  # replicates x trials x systems above which fewer replicates are drawn (stated in the text)


def seed_groups(evals: Sequence[EvalInfo]) -> list[tuple[str, list[EvalInfo]]]:
    """Evaluations grouped by identity up to the run's seed, with distinct labels."""
    groups: dict[tuple, list[EvalInfo]] = {}
    for e in evals:
        groups.setdefault(e.seedless_key, []).append(e)
    members = list(groups.values())
    namings = (
        lambda g: g[0].layout_group,
        lambda g: g[0].method,
        lambda g: g[0].run.preset if g[0].run else None,
        lambda g: f"{g[0].method or g[0].name} ({g[0].run.name})" if g[0].run else None,
        lambda g: f"{g[0].method or g[0].name} ({g[0].name})",
        lambda g: str(g[0].path),
    )
    for naming in namings:
        names = [naming(g) for g in members]
        if all(names) and len(set(names)) == len(names):
            return [(str(n), g) for n, g in zip(names, members)]
    return [(f"{g[0].label or g[0].name} #{i + 1}", g) for i, g in enumerate(members)]


def format_p(p: float, n_boot: int | None = None) -> str:
    """A seed-test p-value as shown (``n_boot`` is no longer used: the p-value is a t test's)."""
    from cm_cli.report.seedstats import format_p as shown

    return shown(p)


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def headline_values(e: EvalInfo, overall: Mapping[str, Any] | None) -> dict[str, float]:
    """EER/minDCF/actDCF/Cllr (fractions, from ``overall``) and the OOD gaps in points from metrics.json
    ``ood_gap`` (``gap_abs_points``; ``split.seen``/``split.unseen``), else the pooled gap from the scores."""
    values = {key: _number((overall or {}).get(key)) for key in ("eer", "min_dcf", "act_dcf", "cllr")}
    gap = stored_or_computed_gap(e)[0]
    values.update(ood_gap=math.nan, seen_gap=math.nan, unseen_gap=math.nan)
    if gap:
        values["ood_gap"] = _number(gap.get("gap_abs_points"))
        split = gap.get("split") if isinstance(gap.get("split"), Mapping) else {}
        for side in ("seen", "unseen"):
            part = split.get(side)
            if isinstance(part, Mapping):
                values[f"{side}_gap"] = _number(part.get("gap_abs_points"))
    return values


def stored_or_computed_gap(e: EvalInfo) -> tuple[dict | None, str]:
    """metrics.json ``ood_gap`` as cm eval wrote it, else the same record computed from the scores
    (``domain``, then ``codec``), with where it came from."""
    from cm_cli.report.evaldata import ood_from_scores

    stored = (e.metrics or {}).get("ood_gap")
    if isinstance(stored, Mapping) and stored:
        return dict(stored), "metrics.json"
    for column in ("domain", "codec"):
        computed = ood_from_scores(e, column)
        if computed:
            return computed, f"scores ({column}: clean vs rest)"
    return None, ""


def seeds_table(
    groups: Sequence[tuple[str, list[EvalInfo]]], values: Mapping[str, dict], name: str, corpus: str
) -> "Table | None":
    """Mean ± sd (sample sd) over the seeds of each group with 2+ seeds; None when there is none."""
    import pandas as pd

    from cm_cli.report.seedstats import mean_sd

    rows = []
    for label, members in groups:
        scored = [e for e in members if e.label in values]
        if len(scored) < 2:
            continue
        row = {"System": label, "Seeds": ", ".join(str(e.seed) for e in scored), "n": str(len(scored))}
        for key, title, scale, digits in HEADLINE:
            mean, sd, n = mean_sd([values[e.label][key] * scale for e in scored])
            if n == 0:
                continue
            row[title] = f"{mean:.{digits}f} ± {sd:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"
        rows.append(row)
    if not rows:
        return None
    frame = pd.DataFrame(rows).fillna("–")
    return Table(
        name,
        f"Mean ± sd over runs on {corpus} that differ only in their seed (gaps: out-of-domain minus "
        "in-domain EER, from metrics.json ood_gap; seen/unseen: codecs the run's augmentation did or "
        "did not cover).",
        frame,
    )


def _aligned_scores(groups: Sequence[tuple[str, list[EvalInfo]]]) -> tuple[dict, "pd.DataFrame | None", list[str]]:
    """Scores of every member on the trials all of them scored: ({label: [scores]}, trial table, notes)."""
    from cm_cli.report.evaldata import bona_mask, load_scores

    notes: list[str] = []
    frames: dict[str, list] = {}
    common: set[str] | None = None
    first = None
    for label, members in groups:
        for e in members:
            frame = load_scores(e, ["utt_id", "speaker", "domain", "codec"])
            if "utt_id" not in frame:
                notes.append(f"{e.path}: scores without utt_id, so {label} cannot be paired")
                return {}, None, notes
            frame = frame.drop_duplicates("utt_id").set_index(frame["utt_id"].astype(str).to_numpy())
            frames.setdefault(label, []).append(frame)
            ids = set(frame.index)
            common = ids if common is None else common & ids
            first = frame if first is None else first
    if not common:
        return {}, None, notes + ["no trial was scored by every system"]
    order = sorted(common)
    trials = first.loc[order]
    is_bona = bona_mask(trials["label"])
    scores = {
        label: [f.loc[order, "score"].to_numpy(dtype="float64") for f in parts] for label, parts in frames.items()
    }
    sizes = {len(f) for parts in frames.values() for f in parts}
    if max(sizes) > len(order):
        notes.append(f"paired on the {len(order)} trials every system scored (largest set: {max(sizes)})")
    return scores, trials.assign(is_bona=is_bona), notes


def _gap_masks(groups: Sequence[tuple[str, list[EvalInfo]]], trials: "pd.DataFrame"):
    """(in_mask, out_mask, metric name, description) of the OOD gap compared between groups, or None.

    In-domain: ``ood_gap.in_domain`` (else clean/none/null). Out: the other trials whose domain no
    group's run trained on (the union of ``ood_gap.seen_domains``), so every group is compared on
    codecs unseen by all of them; without recorded seen domains, every other trial (pooled gap)."""
    import numpy as np

    from cm_cli.metrics.breakdown import key_strings
    from cm_cli.report.evaldata import CLEAN_VALUES

    gaps = [(e.metrics or {}).get("ood_gap") for _, members in groups for e in members]
    gaps = [g for g in gaps if isinstance(g, Mapping) and g]
    column = next((str(g["column"]) for g in gaps if g.get("column")), None)
    column = column or next((c for c in ("domain", "codec") if c in trials), None)
    if column is None or column not in trials:
        return None
    keys = key_strings(trials[column].to_numpy(dtype=object))
    recorded = next((g.get("in_domain") for g in gaps if g.get("in_domain")), None)
    in_domain = {str(v) for v in recorded} if recorded else {k for k in set(keys) if k.lower() in CLEAN_VALUES}
    seen = set().union(*[{str(v) for v in (g.get("seen_domains") or [])} for g in gaps]) - in_domain if gaps else set()
    in_mask = np.isin(keys, list(in_domain))
    out_mask = ~in_mask & ~np.isin(keys, list(seen))
    if seen:
        name = "unseen-codec gap"
        what = (
            f"the {column} values no group trained on ({', '.join(sorted(set(keys[out_mask]))) or 'none'}) minus "
            f"EER on the in-domain ones ({', '.join(sorted(in_domain))})"
        )
    else:
        name = "OOD gap"
        what = (
            f"every {column} value but {', '.join(sorted(in_domain))} minus EER on those (no seen_domains "
            "recorded, so seen and unseen codecs are pooled)"
        )
    return in_mask, out_mask, name, what


def _tests_table(tests, n_boot: int, name: str, caption: str) -> tuple[Table, "pd.DataFrame"]:
    import pandas as pd

    frame = pd.DataFrame([t.to_dict() for t in tests])
    frame["p_label"] = [(v if v.startswith("<") else f"= {v}") for v in (format_p(p) for p in frame["p_value"])]
    metric = str(frame["metric"].iloc[0])
    unit = "%" if metric == "EER" else "points"
    table = Table(
        name,
        caption,
        pd.DataFrame(
            {
                "A": frame["a"],
                "B": frame["b"],
                f"{metric} A ({unit})": [fmt(v, 2) for v in frame["eer_a"]],
                f"{metric} B ({unit})": [fmt(v, 2) for v in frame["eer_b"]],
                "Δ B − A (points)": [f"{v:+.2f}" for v in frame["difference"]],
                "95% CI": [f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in zip(frame["ci_low"], frame["ci_high"])],
                "df": [fmt(v, 1) for v in frame["df"]],
                "p": [format_p(v) for v in frame["p_value"]],
                "p (Holm)": [format_p(v) for v in frame["p_holm"]],
                "Hedges' g": [fmt(v, 2) for v in frame["hedges_g"]],
                "Seeds A/B": [f"{a}/{b}" for a, b in zip(frame["n_seeds_a"], frame["n_seeds_b"])],
            }
        ),
    )
    return table, frame


def _summary(tests, gap_tests, *, alpha: float = 0.05) -> str:
    """One paragraph: the ranking by mean EER and which differences the evidence supports."""
    means: dict[str, float] = {}
    for t in tests:
        means[t.a], means[t.b] = t.eer_a, t.eer_b
    ranking = " < ".join(f"{k} {v:.2f} %" for k, v in sorted(means.items(), key=lambda kv: kv[1]))
    parts = [f"Mean EER over seeds: {ranking}."]
    for kind, group in (("EER", tests), (gap_tests[0].metric if gap_tests else "", gap_tests)):
        if not group:
            continue
        supported = [f"{t.b} vs {t.a} ({t.difference:+.2f} points)" for t in group if t.p_holm < alpha]
        parts.append(
            f"Differences in {kind} the evidence supports (Holm-adjusted p < {alpha}, {group[0].family}): "
            + (", ".join(supported) if supported else "none")
            + "."
        )
    return " ".join(parts)


@dataclass
class SeedFamily:
    """Every seed-level comparison of one study (one corpus of a report) and how it was computed.

    ``tests`` (EER) and ``gap_tests`` (unseen-codec, else pooled OOD gap) are one Holm family
    (``seedstats.holm_family``); the demo's summary.md quotes this same object's p-values."""

    corpus: str
    tests: list = field(default_factory=list)
    gap_tests: list = field(default_factory=list)
    n_trials: int = 0
    n_boot: int = 0
    unit: str = "trial"
    how: str = ""
    gap_what: str = ""
    with_scores: list = field(default_factory=list)
    blocks: list = field(default_factory=list)  # what stands before the tables (missing scores)
    notes: list[str] = field(default_factory=list)
    reason: str = ""  # why there is no test, when there is none

    @property
    def all(self) -> list:
        return [*self.tests, *self.gap_tests]

    @property
    def name(self) -> str:
        return self.all[0].family if self.all else ""


def seed_family(groups: Sequence[tuple[str, list[EvalInfo]]], corpus: str, *, seed: int = 0) -> SeedFamily:
    """The seed test (``metrics.stats.seed_test``) of every pair of groups on the trials all of them scored,
    on EER and on the unseen-codec (else pooled) OOD gap where the scores carry the domain, Holm-adjusted as
    one family."""
    from cm_cli.core.errors import CmError
    from cm_cli.report.seedstats import compare_groups, holm_family

    family = SeedFamily(corpus)
    if len(groups) < 2:
        family.reason = "One group of runs only, so no paired test between systems."
        return family
    # the baseline first, so differences read "method − ERM"
    groups = sorted(groups, key=lambda g: (g[0].lower() != "erm", not g[0].lower().startswith("erm"), g[0].lower()))
    with_scores = [(label, members) for label, members in groups if all(e.scores is not None for e in members)]
    skipped = [label for label, members in groups if (label, members) not in with_scores]
    family.with_scores = with_scores
    if skipped:
        family.blocks.append(
            Note(
                f"No scores.parquet for {', '.join(skipped)} on {corpus}: paired tests need per-trial "
                "scores (`cm eval` writes them)"
            )
        )
    if len(with_scores) < 2:
        family.reason = f"No per-trial scores for two groups on {corpus}, so no paired test"
        return family
    scores, trials, notes = _aligned_scores(with_scores)
    family.notes = notes
    if trials is None or trials["is_bona"].all() or not trials["is_bona"].any():
        family.reason = f"No shared bona fide and spoof trials on {corpus}: {'; '.join(notes) or 'none'}"
        return family
    clusters, unit = (
        (trials["speaker"].astype(str).to_numpy(), "speaker")
        if ("speaker" in trials and trials["speaker"].notna().all())
        else (None, "trial")
    )
    n_systems = sum(len(v) for v in scores.values())
    n_boot = int(max(200, min(N_BOOT, MAX_BOOT_CELLS // max(1, len(trials) * n_systems))))
    is_bona = trials["is_bona"].to_numpy()
    family.n_trials, family.n_boot, family.unit = len(trials), n_boot, unit
    family.tests = compare_groups(scores, is_bona, clusters, unit=unit, n_boot=n_boot, seed=seed)
    if not family.tests:
        family.reason = f"Fewer than two groups with scores on {corpus}, so no paired test"
        return family
    masks = _gap_masks(with_scores, trials)
    if masks is not None:
        in_mask, out_mask, metric, family.gap_what = masks
        try:
            family.gap_tests = compare_groups(
                scores, is_bona, clusters, unit=unit, n_boot=n_boot, seed=seed, gap=(in_mask, out_mask), metric=metric
            )
        except CmError as error:
            notes.append(f"no paired test of the OOD gap: {error.message}")
    else:
        notes.append("the scores carry no domain/codec column, so the OOD gap is not tested")
    holm_family(family.all, corpus)
    family.how = (
        f"two-sided t test on the seed means, its variance the seed variance plus the trial-sampling variance "
        f"the seeds share (from {n_boot} bootstrap replicates resampling {unit}s, shared by all systems), "
        f"Satterthwaite df; Holm-adjusted as {family.name}; Hedges' g over seeds"
    )
    return family


def study_families(dirs: Sequence[Any], *, seed: int = 0) -> dict[str, SeedFamily]:
    """The seed-test family of each corpus that ``cm report dirs`` shows, computed the same way (the demo's
    summary quotes it)."""
    from cm_cli.report.collect import collect

    found = collect(dirs)
    families = {}
    for corpus in found.corpora():
        main = [e for e in found.evals if e.corpus == corpus and not e.in_sweep]
        groups = seed_groups([e for e in main if e.metrics is not None or e.scores is not None])
        if len(groups) > 1:
            families[corpus] = seed_family(groups, corpus, seed=seed)
    return families


def paired_tests(groups: Sequence[tuple[str, list[EvalInfo]]], corpus: str, fig: FigureDir, *, seed: int = 0) -> list:
    """Tables, a figure and one sentence per pair of groups: the seed test (``metrics.stats.seed_test``) of the
    difference of mean EER, and of the unseen-codec (else pooled) OOD gap where the scores carry the domain;
    one Holm family over all of them (``seed_family``)."""
    import pandas as pd

    from cm_cli.report.seedstats import verdict

    family = seed_family(groups, corpus, seed=seed)
    blocks: list = list(family.blocks)
    if not family.tests:
        if len(groups) < 2:
            return [family.reason]
        return blocks + [Note(family.reason)]
    tests, gap_tests, how = family.tests, family.gap_tests, family.how
    table, frame = _tests_table(
        tests,
        family.n_boot,
        fig.table_name(f"paired-{corpus}"),
        f"Paired tests on {corpus}: difference of mean EER over seeds (B − A, points) on the "
        f"{family.n_trials} trials every run scored; {how}.",
    )
    blocks.append(table)
    if gap_tests:
        metric = gap_tests[0].metric
        caption = (
            f"Paired tests on {corpus} of the {metric} (EER on {family.gap_what}; points), same trials and "
            f"resamples; {how}."
        )
        blocks.append(_tests_table(gap_tests, family.n_boot, fig.table_name(f"paired-gap-{corpus}"), caption)[0])
    per_seed = pd.DataFrame(
        [
            {"group": label, "eer": float(e.metrics["overall"]["eer"])}
            for label, members in family.with_scores
            for e in members
            if e.metrics
            and isinstance(e.metrics.get("overall"), Mapping)
            and e.metrics["overall"].get("eer") is not None
        ]
    )
    if not per_seed.empty:
        blocks.append(
            Figure(
                figures.seed_comparison(
                    per_seed, frame, fig.path(f"seeds-{corpus}"), title=f"Seeds and paired differences ({corpus})"
                ),
                f"Left: EER of every seed per group on {corpus} (mean ± sd). Right: difference of mean "
                "EER for each pair with its 95% interval and p-value (t test on seed means with the shared "
                "trial-sampling variance).",
            )
        )
    blocks.append(_summary(tests, gap_tests))
    blocks.append("What the evidence supports, pair by pair:")
    blocks.append("\n".join(f"- {verdict(t)}" for t in family.all))
    for note in family.notes:
        blocks.append(f"Note: {note}.")
    return blocks
