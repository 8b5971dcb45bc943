"""Report sections for one corpus: runs, overall metrics, breakdowns, OOD gap, curves, attacks, sweeps, training.

Each builder takes the runs/evaluations of a single corpus, so results of different
corpora never share a table or an axis. A builder with nothing to show returns a
``Note`` naming the command that would produce the missing artifact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from cm_cli.report import figures
from cm_cli.report.blocks import Figure, FigureDir, Note, Section
from cm_cli.report.collect import EvalInfo, RunInfo
from cm_cli.report.evaldata import (
    breakdown,
    breakdown_columns,
    ci_unit,
    curve,
    metric_ci,
    normalise_sweep,
    overall_metrics,
    per_attack,
)
from cm_cli.report.sections_overlap import overlap_blocks
from cm_cli.report.sections_seeds import headline_values, paired_tests, seed_groups, seeds_table, stored_or_computed_gap
from cm_cli.report.tables import Table, fmt, fmt_ci, fmt_pct

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["run_table", "corpus_section", "cross_corpus_table", "HINTS"]

HINTS = {
    "run": "`cm train --preset toy_lcnn_dann --out RUN_DIR` (or `--method erm|dann --manifest M`)",
    "eval": "`cm eval --run RUN_DIR --manifest M --out DIR`",
    "breakdown": "`cm eval --run RUN_DIR --manifest M --by codec --by domain --out DIR`",
    "scores": "`cm eval --run RUN_DIR --manifest M --out DIR` (writes scores.parquet)",
    "sweep": '`cm eval --run RUN_DIR --manifest M --degrade "mp3:kbps=8|16|32|64" --out DIR`',
    "ood": "`cm eval --run RUN_DIR --manifest M --in-domain none --out DIR`",
    "history": "`cm train ... --out RUN_DIR` (writes history.parquet)",
    "attack": "`cm eval --run RUN_DIR --manifest M --by attack --out DIR`",
}
# breakdown columns shown as per-condition bars; attacks get their own section
_SKIP_BARS = {"attack", "attack_family", "label", "split", "corpus", "speaker", "utt_id"}
_SHORT_REV = 10


def run_table(runs: Sequence[RunInfo], name: str) -> Table:
    import pandas as pd

    rows = [
        {
            "Run": r.name,
            "Corpus": r.corpus,
            "Method": r.method or "–",
            "Backbone": r.backbone or "–",
            "Preset": r.preset or "–",
            "Seed": "–" if r.seed is None else str(r.seed),
            "Data": r.data or "–",
            "Git revision": (r.git_revision or "–")[:_SHORT_REV],
        }
        for r in runs
    ]
    return Table(name, "Training runs (git revision shortened to 10 characters).", pd.DataFrame(rows))


def cross_corpus_table(evals: Sequence[EvalInfo], name: str) -> "Table | None":
    """Each run's results on its own corpus beside those on other corpora; None without a cross-corpus one."""
    import pandas as pd

    scored = [e for e in evals if not e.in_sweep and e.run is not None and (e.metrics or e.scores is not None)]
    if not any(e.corpus != e.run.corpus for e in scored):
        return None
    rows = []
    for e in sorted(scored, key=lambda e: (str(e.run.path), e.corpus != e.run.corpus, e.corpus)):
        m = overall_metrics(e) or {}
        rows.append(
            {
                "System": e.label,
                "Run": e.run.name,
                "Trained on": e.run.corpus,
                "Evaluated on": e.corpus,
                "": "in-corpus" if e.corpus == e.run.corpus else "cross-corpus",
                "EER (%)": fmt_pct(m.get("eer")),
                "minDCF": fmt(m.get("min_dcf")),
                "min t-DCF": fmt(m.get("min_tdcf"), 4),
            }
        )
    frame = pd.DataFrame(rows)
    if (frame["min t-DCF"] == "–").all():
        frame = frame.drop(columns=["min t-DCF"])
    return Table(
        name,
        "In-corpus and cross-corpus results of each run side by side (corpus of the evaluation from "
        "metrics.json `corpus`, else the scores); each corpus also has its own section.",
        frame,
    )


# --------------------------------------------------------------------------- overall


_TDCF_FIRST = ("asvspoof2019_la", "asvspoof2021_la")  # ranked by min t-DCF (2019 and 2021 evaluation plans)


def _primary_order(corpus: str, columns: Sequence[str]) -> list[str]:
    """Each corpus's primary metric first: min t-DCF for 2019/2021 LA, minDCF for ASVspoof 5 Track 1,
    a-DCF/t-EER (Track 2) when SASV scores were given; EER first otherwise."""
    name = corpus.lower()
    lead = ["System", "Evaluation"]
    sasv = [c for c in ("a-DCF", "t-EER (%)") if c in columns]
    tdcf = [c for c in ("min t-DCF", "min t-DCF (2019 legacy)") if c in columns]
    eer = ["EER (%)", "EER 95% CI"]
    dcf = ["minDCF", "minDCF 95% CI"]
    if any(name.startswith(c) for c in _TDCF_FIRST):
        order = lead + tdcf + eer + dcf + sasv
    elif name.startswith("asvspoof5"):
        order = lead + sasv + dcf + eer + tdcf
    else:
        order = lead + eer + dcf + tdcf + sasv
    return order + [c for c in columns if c not in order]


def _overall(evals: Sequence[EvalInfo], corpus: str, fig: FigureDir) -> list:
    import pandas as pd

    rows, values = [], {}
    formulations = set()
    for e in evals:
        m = overall_metrics(e)
        if m is None:
            continue
        values[e.label] = m
        eer_ci, dcf_ci = metric_ci(e.metrics, "eer"), metric_ci(e.metrics, "min_dcf")
        row = {
            "System": e.label,
            "Evaluation": e.name,
            "EER (%)": fmt_pct(m.get("eer")),
            "EER 95% CI": fmt_ci(*eer_ci, scale=100) if eer_ci else "–",
            "minDCF": fmt(m.get("min_dcf")),
            "minDCF 95% CI": fmt_ci(*dcf_ci, digits=3) if dcf_ci else "–",
            "CI resampled by": ci_unit(e.metrics) if (eer_ci or dcf_ci) else "–",
            "actDCF": fmt(m.get("act_dcf")),
            "Cllr (bits)": fmt(m.get("cllr")),
            "bona fide": fmt(m.get("n_bonafide")),
            "spoof": fmt(m.get("n_spoof")),
        }
        if m.get("min_tdcf") is not None or m.get("min_tdcf_legacy") is not None:
            row["min t-DCF"] = fmt(m.get("min_tdcf"), 4)
            row["min t-DCF (2019 legacy)"] = fmt(m.get("min_tdcf_legacy"), 4)
            tdcf = (e.metrics or {}).get("tdcf")
            if isinstance(tdcf, dict) and tdcf.get("formulation"):
                formulations.add(str(tdcf["formulation"]))
        sasv = (e.metrics or {}).get("sasv")
        if isinstance(sasv, dict) and (sasv.get("a_dcf") is not None or sasv.get("t_eer") is not None):
            row["a-DCF"] = fmt(sasv.get("a_dcf"), 4)
            row["t-EER (%)"] = fmt_pct(sasv.get("t_eer"))
        rows.append(row)
    if not rows:
        return [Note(f"No metrics.json or scores.parquet for {corpus}: run {HINTS['eval']}")]
    frame = pd.DataFrame(rows)
    frame = frame[_primary_order(corpus, list(frame.columns))].fillna("–")
    caption = (
        f"Overall metrics on {corpus}, primary metric first (EER in %, DCF normalised, 95% bootstrap "
        "intervals where computed, with what they resampled"
        + (
            f"; t-DCF: min t-DCF is the revised formulation (ASVspoof 2021), the legacy column the 2019 one; "
            f"recorded formulation(s): {', '.join(sorted(formulations))}"
            if formulations
            else ""
        )
        + ")."
    )
    blocks: list = [Table(fig.table_name(f"overall-{corpus}"), caption, frame)]
    seeds = seeds_table(
        seed_groups(evals),
        {e.label: headline_values(e, values[e.label]) for e in evals if e.label in values},
        fig.table_name(f"seeds-{corpus}"),
        corpus,
    )
    if seeds is not None:
        blocks.append(seeds)
    else:
        blocks.append("No seed replicates found (runs identical up to the seed), so no mean ± sd over seeds.")
    return blocks


# --------------------------------------------------------------------------- breakdowns


def _long_breakdown(evals: Sequence[EvalInfo], column: str) -> "pd.DataFrame":
    """system, value, eer, min_dcf (+ low/high as ± sd when seed replicates are averaged)."""
    import pandas as pd

    frames = []
    for label, members in seed_groups(evals):
        parts = []
        for e in members:
            table = breakdown(e, column)
            if table is not None and "eer" in table:
                parts.append(table.assign(seed=e.seed))
        if not parts:
            continue
        joined = pd.concat(parts)
        joined["min_dcf"] = joined["min_dcf"] if "min_dcf" in joined else float("nan")
        grouped = joined.groupby("value", sort=False)
        out = grouped[["eer", "min_dcf"]].mean()
        if len(parts) > 1:
            sd = grouped[["eer", "min_dcf"]].std()
            out["eer_low"], out["eer_high"] = out["eer"] - sd["eer"], out["eer"] + sd["eer"]
            out["dcf_low"], out["dcf_high"] = out["min_dcf"] - sd["min_dcf"], out["min_dcf"] + sd["min_dcf"]
        out["n_runs"] = len(parts)
        frames.append(out.reset_index().assign(system=label))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _breakdowns(evals: Sequence[EvalInfo], corpus: str, fig: FigureDir) -> list:
    columns = list(dict.fromkeys(c for e in evals for c in breakdown_columns(e) if c not in _SKIP_BARS))
    if not columns:
        return [Note(f"No per-codec/per-domain breakdowns for {corpus}: run {HINTS['breakdown']}")]
    blocks: list = []
    for column in columns:
        frame = _long_breakdown(evals, column)
        if frame.empty:
            continue
        averaged = "eer_low" in frame
        note = " Bars are means over seeds, whiskers ± 1 sd." if averaged else ""
        blocks.append(
            Figure(
                figures.grouped_bars(
                    frame,
                    fig.path(f"eer-by-{column}-{corpus}"),
                    category="value",
                    system="system",
                    value="eer",
                    low="eer_low" if averaged else None,
                    high="eer_high" if averaged else None,
                    ylabel="EER (%)",
                    xlabel=column,
                    title=f"EER by {column} ({corpus})",
                ),
                f"EER per {column} on {corpus}, one bar per system.{note}",
            )
        )
        if frame["min_dcf"].notna().any():
            blocks.append(
                Figure(
                    figures.grouped_bars(
                        frame,
                        fig.path(f"mindcf-by-{column}-{corpus}"),
                        category="value",
                        system="system",
                        value="min_dcf",
                        low="dcf_low" if averaged else None,
                        high="dcf_high" if averaged else None,
                        scale=1.0,
                        ylabel="minDCF (normalised)",
                        xlabel=column,
                        title=f"minDCF by {column} ({corpus})",
                    ),
                    f"Normalised minDCF per {column} on {corpus}.{note}",
                )
            )
        wide = frame.pivot_table(index="value", columns="system", values=["eer", "min_dcf"], sort=False)
        import pandas as pd

        table = pd.DataFrame({column: wide.index.astype(str)})
        for system in dict.fromkeys(frame["system"]):
            table[f"{system} EER (%)"] = [fmt_pct(v) for v in wide[("eer", system)]]
            if ("min_dcf", system) in wide:
                table[f"{system} minDCF"] = [fmt(v) for v in wide[("min_dcf", system)]]
        blocks.append(
            Table(fig.table_name(f"by-{column}-{corpus}"), f"EER and minDCF per {column} on {corpus}.", table)
        )
    return blocks


# --------------------------------------------------------------------------- OOD gap


def _gap_cells(gap: dict, prefix: str = "") -> dict:
    def pct(value):
        return 100 * float(value) if isinstance(value, (int, float)) else float("nan")

    def num(value):
        return float(value) if isinstance(value, (int, float)) else float("nan")

    return {
        f"{prefix}EER (%)": pct(gap.get("eer")),
        f"{prefix}gap (points)": num(gap.get("gap_abs_points")),
        f"{prefix}relative gap": num(gap.get("gap_rel")),
    }


def _ood(evals: Sequence[EvalInfo], corpus: str, fig: FigureDir) -> list:
    """metrics.json ``ood_gap`` as cm eval wrote it (else the same record computed from the scores):
    in-domain vs out-of-domain EER, and the split into codecs seen and unseen in training."""
    import pandas as pd

    rows, has_split = [], False
    for e in evals:
        gap, source = stored_or_computed_gap(e)
        if not gap:
            continue
        row = {
            "System": e.label,
            "Source": source,
            "In-domain": ", ".join(map(str, gap.get("in_domain") or [])) or "–",
            "eer_in (%)": 100 * float(gap["eer_in"]) if gap.get("eer_in") is not None else float("nan"),
            "eer_out (%)": 100 * float(gap["eer_out"]) if gap.get("eer_out") is not None else float("nan"),
            "gap (points)": float(gap["gap_abs_points"]) if gap.get("gap_abs_points") is not None else float("nan"),
            "relative_gap": float(gap["gap_rel"]) if gap.get("gap_rel") is not None else float("nan"),
        }
        split = gap.get("split") if isinstance(gap.get("split"), dict) else None
        if split:
            has_split = True
            row["Seen in training"] = ", ".join(map(str, gap.get("seen_domains") or [])) or "–"
            for side in ("seen", "unseen"):
                if isinstance(split.get(side), dict):
                    row.update(_gap_cells(split[side], prefix=f"{side} "))
        rows.append(row)
    if not rows:
        return [Note(f"No OOD gap for {corpus}: run {HINTS['ood']} (or keep a clean condition in the scores)")]
    blocks: list = []
    if len(rows) > 1:
        reference = next((r for r in rows if str(r["System"]).upper().startswith("ERM")), rows[0])
        for key, name in (
            ("unseen gap (points)", "unseen-gap reduction vs {} (%)"),
            ("gap (points)", "gap reduction vs {} (%)"),
        ):
            if not all(key in r for r in rows):
                continue
            ref = float(reference[key])
            title = name.format(reference["System"])
            for r in rows:
                value = float(r[key])
                r[title] = float("nan") if r is reference or ref == 0 or value != value else 100 * (1 - value / ref)
        blocks.append(
            f"Gap reduction = 1 - gap(system) / gap({reference['System']}): the share of "
            f"{reference['System']}'s out-of-domain penalty that the system removes"
            + ("; the unseen-codec gap is the one augmentation cannot explain." if has_split else ".")
        )
    if not has_split:
        blocks.append(
            "No seen/unseen split: the gap pools codecs the training augmentation covered with ones it did "
            "not (evaluate a run whose config.json records seen_domains to split them)."
        )
    frame = pd.DataFrame(rows)
    table = pd.DataFrame(
        {c: [v if isinstance(v, str) else fmt(v, 3 if "relative" in c else 2) for v in frame[c]] for c in frame.columns}
    )
    blocks.insert(
        0,
        Table(
            fig.table_name(f"ood-{corpus}"),
            f"In-domain vs out-of-domain EER on {corpus} (EER in %, gaps in points = 100 × (out − in)); "
            "seen/unseen: out-of-domain trials whose codec the run's augmentation did or did not cover, "
            "each against the same in-domain trials.",
            table.fillna("–"),
        ),
    )
    return blocks


# --------------------------------------------------------------------------- curves


def _curves(evals: Sequence[EvalInfo], corpus: str, fig: FigureDir) -> list:
    with_scores = [e for e in evals if e.scores is not None]
    if not with_scores:
        return [Note(f"No scores.parquet for {corpus}, so no DET/ROC curves or histograms: run {HINTS['scores']}")]
    curves = [(e.label, curve(e)) for e in with_scores]
    return [
        Figure(
            figures.det_curves(
                [(label, c.frr, c.far, c.eer) for label, c in curves],
                fig.path(f"det-{corpus}"),
                title=f"DET ({corpus})",
            ),
            f"DET curves on {corpus} (normal-deviate axes, rates in %); the marker is the EER point.",
        ),
        Figure(
            figures.roc_curves(
                [(label, c.frr, c.far, c.auc) for label, c in curves],
                fig.path(f"roc-{corpus}"),
                title=f"ROC ({corpus})",
            ),
            f"ROC curves on {corpus}: bona fide accepted against spoof accepted.",
        ),
        Figure(
            figures.score_histograms(
                [(label, c.bona, c.spoof, c.threshold) for label, c in curves],
                fig.path(f"scores-{corpus}"),
                title=f"Score distributions ({corpus})",
            ),
            f"Score densities per class on {corpus}; dashed: the EER threshold.",
        ),
    ]


# --------------------------------------------------------------------------- attacks


def _attacks(evals: Sequence[EvalInfo], corpus: str, fig: FigureDir) -> list:
    import pandas as pd

    tables = [(e.label, t) for e in evals if (t := per_attack(e)) is not None and not t.empty]
    if not tables:
        return [Note(f"No per-attack results for {corpus}: run {HINTS['attack']}")]
    families = {}
    for _, t in tables:
        families.update({a: f for a, f in zip(t["attack"], t["attack_family"]) if f})
    attacks = sorted({a for _, t in tables for a in t["attack"]}, key=lambda a: (families.get(a, "~"), a))
    out = pd.DataFrame({"Family": [families.get(a, "–") or "–" for a in attacks], "Attack": attacks})
    has_clean = False
    long = []
    for label, t in tables:
        t = t.set_index("attack")
        out[f"{label} EER (%)"] = [fmt_pct(t["eer"].get(a)) for a in attacks]
        if "eer_clean" in t:
            has_clean = True
            out[f"{label} clean (%)"] = [fmt_pct(t["eer_clean"].get(a)) for a in attacks]
            out[f"{label} Δ (points)"] = [_signed(100 * t["delta"].get(a, float("nan"))) for a in attacks]
        long.append(
            pd.DataFrame({"value": attacks, "eer": [t["eer"].get(a, float("nan")) for a in attacks], "system": label})
        )
    caption = f"Per-attack EER on {corpus} (each attack's spoofs against all bona fide), grouped by attack family" + (
        "; 'clean' uses the undegraded trials only and Δ is the change from clean." if has_clean else "."
    )
    blocks: list = [Table(fig.table_name(f"attacks-{corpus}"), caption, out)]
    if not has_clean:
        blocks.append(
            Note(
                f"No clean/degraded mix in the scores of {corpus}, so no change from clean per attack: "
                f"evaluate a manifest with clean and coded conditions, or run {HINTS['sweep']}"
            )
        )
    blocks.append(
        Figure(
            figures.grouped_bars(
                pd.concat(long),
                fig.path(f"eer-by-attack-{corpus}"),
                category="value",
                system="system",
                value="eer",
                ylabel="EER (%)",
                xlabel="attack",
                title=f"EER by attack ({corpus})",
            ),
            f"Per-attack EER on {corpus}, attacks ordered by family.",
        )
    )
    return blocks


def _signed(value: float) -> str:
    import math

    return "–" if value is None or math.isnan(value) else f"{value:+.2f}"


# --------------------------------------------------------------------------- sweeps


def _sweeps(evals: Sequence[EvalInfo], corpus: str, fig: FigureDir) -> list:
    import pandas as pd

    from cm_cli.core.artifacts import read_table

    swept = [e for e in evals if e.sweep is not None]
    if not swept:
        return [Note(f"No degradation sweeps for {corpus}: run {HINTS['sweep']}")]
    blocks: list = []
    lines, clean = [], {}
    for e in swept:
        overall, attacks = normalise_sweep(read_table(e.sweep))
        clean_rows = overall[overall["parameter"].isna()]
        if not clean_rows.empty:
            clean[e.label] = float(clean_rows["eer"].iloc[0])
        graded = overall.dropna(subset=["parameter"])
        if not graded.empty:
            lines.append(graded.assign(system=e.label))
        table = pd.DataFrame(
            {
                "Condition": overall["condition"],
                "Parameter": overall["parameter"].fillna("–"),
                "Severity": [fmt(v, 3).rstrip("0").rstrip(".") if pd.notna(v) else "–" for v in overall["severity"]],
                "EER (%)": [fmt_pct(v) for v in overall["eer"]],
                "minDCF": [fmt(v) for v in overall["min_dcf"]],
            }
        )
        blocks.append(
            Table(fig.table_name(f"sweep-{e.label}-{corpus}"), f"Degradation sweep of {e.label} on {corpus}.", table)
        )
        if not attacks.empty and attacks["eer"].notna().any():
            order = list(
                dict.fromkeys(overall.sort_values(["parameter", "severity"], na_position="first")["condition"])
            )
            matrix = attacks.pivot_table(index="attack", columns="condition", values="eer", sort=True)
            matrix = matrix[[c for c in order if c in matrix.columns]]
            blocks.append(
                Figure(
                    figures.heatmap(
                        matrix,
                        fig.path(f"attack-condition-{e.label}-{corpus}"),
                        scale=100,
                        title=f"EER (%) per attack and condition: {e.label} ({corpus})",
                        xlabel="Condition",
                        ylabel="Attack",
                        colorbar="EER (%)",
                    ),
                    f"Attack x condition EER of {e.label} on {corpus}.",
                )
            )
            clean_name = next((c for c in matrix.columns if str(c).lower() in ("clean", "none")), None)
            if clean_name is not None and matrix.shape[1] > 1:
                delta = matrix.drop(columns=[clean_name]).sub(matrix[clean_name], axis=0)
                blocks.append(
                    Figure(
                        figures.heatmap(
                            delta,
                            fig.path(f"attack-condition-delta-{e.label}-{corpus}"),
                            scale=100,
                            diverging=True,
                            title=f"Change from clean (EER points): {e.label} ({corpus})",
                            xlabel="Condition",
                            ylabel="Attack",
                            colorbar="ΔEER (points)",
                        ),
                        f"Per-attack change of EER from the clean condition, {e.label} on {corpus}.",
                    )
                )
        else:
            blocks.append(
                Note(f"sweep.parquet of {e.label} has no per-attack EER columns, so no attack x condition heatmap")
            )
    if lines:
        frame = pd.concat(lines, ignore_index=True)
        blocks.insert(
            0,
            Figure(
                figures.sweep_lines(
                    frame, fig.path(f"sweep-{corpus}"), title=f"Degradation sweeps ({corpus})", clean=clean or None
                ),
                f"EER against degradation severity on {corpus}, one panel per parameter.",
            ),
        )
    return blocks


# --------------------------------------------------------------------------- training


def _training(runs: Sequence[RunInfo], corpus: str, fig: FigureDir) -> list:
    import numpy as np
    import pandas as pd

    from cm_cli.core.artifacts import read_table

    with_history = [r for r in runs if r.history is not None]
    if not with_history:
        return [Note(f"No history.parquet for {corpus}: run {HINTS['history']}")]
    labels = _run_labels(with_history)
    histories = [(labels[r.name], read_table(r.history)) for r in with_history]
    rows = []
    for (label, h), run in zip(histories, with_history):
        row = {
            "Run": label,
            "Steps": fmt(int(h["step"].max())) if "step" in h and len(h) else "–",
            "Epochs": fmt(int(h["epoch"].max()) + 1) if "epoch" in h and h["epoch"].notna().any() else "–",
        }
        if "dev_eer" in h and h["dev_eer"].notna().any():
            best = h.loc[h["dev_eer"].idxmin()]
            row["Best dev EER (%)"] = fmt_pct(best["dev_eer"])
            row["at step"] = fmt(int(best["step"])) if "step" in h else "–"
            row["Last dev EER (%)"] = fmt_pct(h["dev_eer"].dropna().iloc[-1])
        acc = [c for c in h.columns if c.startswith("domain_acc")]
        if acc and h[acc].notna().any().any():
            row["Last domain acc. (%)"] = fmt_pct(np.nanmean(h[acc].dropna(how="all").iloc[-1].to_numpy(float)), 1)
        rows.append(row)
    return [
        Figure(
            figures.training_curves(histories, fig.path(f"training-{corpus}"), title=f"Training ({corpus})"),
            f"Training curves on {corpus}: losses, domain accuracy, λ and dev metrics against the optimiser step.",
        ),
        Table(fig.table_name(f"training-{corpus}"), f"Training summary on {corpus}.", pd.DataFrame(rows).fillna("–")),
    ]


def _run_labels(runs: Sequence[RunInfo]) -> dict[str, str]:
    base = [(r.method or r.name) + (f" s{r.seed}" if r.seed is not None else "") for r in runs]
    if len(set(base)) == len(base):
        return {r.name: b for r, b in zip(runs, base)}
    return {r.name: f"{b} ({r.name})" for r, b in zip(runs, base)}


# --------------------------------------------------------------------------- corpus


def corpus_section(corpus: str, runs: Sequence[RunInfo], evals: Sequence[EvalInfo], fig: FigureDir) -> Section:
    """Everything about one corpus; evaluations inside sweep directories are left to the sweep."""
    main = [e for e in evals if not e.in_sweep]
    scored = [e for e in main if e.metrics is not None or e.scores is not None]
    section = Section(f"Results on {corpus}")
    if main:
        section.add(Section("Overall metrics").add(*_overall(scored, corpus, fig)))
        groups = seed_groups(scored)
        if len(groups) > 1:
            section.add(Section("Seeds and paired tests").add(*paired_tests(groups, corpus, fig)))
        section.add(Section("Per codec and domain").add(*_breakdowns(scored, corpus, fig)))
        section.add(Section("Out-of-domain gap").add(*_ood(scored, corpus, fig)))
        section.add(Section("Train/test overlap").add(*overlap_blocks(scored, corpus, fig)))
        section.add(Section("DET, ROC and score distributions").add(*_curves(scored, corpus, fig)))
        section.add(Section("Per attack").add(*_attacks(scored, corpus, fig)))
        section.add(Section("Degradation sweeps").add(*_sweeps(main, corpus, fig)))
    else:
        section.add(Note(f"No evaluations for {corpus}: run {HINTS['eval']}"))
    if runs:
        section.add(Section("Training curves").add(*_training(runs, corpus, fig)))
    return section
