"""Report sections for the analyses (LOAO, probes, CKA, patching) and for provenance.

Each analysis directory gets its own subsection titled by its path, so two probe
runs (say, ERM and DANN embeddings) are shown side by side, never pooled. Which
analyses exist, their titles and the commands that make them are declared by the
producing modules (``cm_cli.core.kinds``); a kind without a builder of its own gets
``generic_blocks``, which tables what it declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from cm_cli.report import figures
from cm_cli.report.blocks import Figure, FigureDir, Note, Section
from cm_cli.report.collect import AnalysisInfo, Collection
from cm_cli.report.labels import (
    FROZEN_MEASURES,
    cka_estimator_text,
    measures_line,
    patching_alignment_text,
)
from cm_cli.report.style import layer_sort_key
from cm_cli.report.tables import Table, fmt, fmt_ci

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "analysis_section",
    "provenance_section",
    "generic_blocks",
    "loao_blocks",
    "loao_retrain_blocks",
    "probes_blocks",
    "cka_blocks",
    "patching_blocks",
]

_GENERIC_ROWS = 50  # rows of each table a generic section shows
_GEOMETRY = ("d_bona", "cos_bona", "d_near_spoof", "bona_axis_proj")


def _hint(kind: str) -> str:
    """The command that makes ``kind``, as its producing module declares it."""
    from cm_cli.core.kinds import get_kind

    declared = get_kind(kind)
    return (declared.command if declared is not None else None) or f"the command that makes `{kind}`"


def __getattr__(name: str):
    if name == "ANALYSIS_HINTS":  # kind -> command, read from the declarations
        from cm_cli.core.kinds import analysis_kinds

        return {k.name: _hint(k.name) for k in analysis_kinds()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _read(info: AnalysisInfo, name: str) -> "pd.DataFrame | None":
    from cm_cli.core.artifacts import read_table

    path = info.tables.get(name)
    return read_table(path) if path is not None else None


def _where(info: AnalysisInfo, base: Path | None) -> str:
    if base is not None:
        try:
            return str(info.path.resolve().relative_to(base))
        except ValueError:
            pass
    return str(info.path)


def _points(frame: "pd.DataFrame", columns: Sequence[str]) -> "pd.DataFrame":
    """Rates to percentage points when they were stored as fractions (all |values| <= 1)."""
    frame = frame.copy()
    present = [c for c in columns if c in frame]
    values = frame[present].abs().max().max() if present else 0
    if present and values <= 1.0:
        frame[present] = frame[present] * 100
    return frame


def _correlation_rows(records: Sequence[dict]) -> list[dict]:
    rows = []
    for r in records:
        if not isinstance(r, dict):
            continue
        rows.append(
            {
                "Layer": str(r.get("layer", "–")),
                "Metric": str(r.get("metric", "–")),
                "Against": str(r.get("against", "gap")),
                "Spearman ρ": fmt(r.get("rho"), 2),
                "95% CI": fmt_ci(r.get("ci_low"), r.get("ci_high")),
                "p (permutation)": fmt(r.get("p_permutation"), 3),
            }
        )
    return rows


# --------------------------------------------------------------------------- loao


def _focus_layers(per_attack: "pd.DataFrame", limit: int = 4) -> list[str]:
    """Up to ``limit`` layers: first, last, the one with the largest mean gap, and evenly spaced others."""
    layers = sorted(per_attack["layer"].astype(str).unique(), key=layer_sort_key)
    if len(layers) <= limit:
        return layers
    means = per_attack.groupby(per_attack["layer"].astype(str))["gap_mean"].mean()
    chosen = {layers[0], layers[-1], str(means.idxmax())}
    step = max(1, len(layers) // limit)
    for layer in layers[::step]:
        if len(chosen) >= limit:
            break
        chosen.add(layer)
    return sorted(chosen, key=layer_sort_key)


def loao_blocks(info: AnalysisInfo, fig: FigureDir, where: str) -> list:
    import pandas as pd

    loao = _read(info, "loao")
    if loao is None or loao.empty:
        return [Note(f"{where}: loao.parquet is empty")]
    loao = (
        _points(loao, ["eer_seen", "eer_held_out", "gap"])
        if loao["gap"].abs().max() <= 1
        and loao[["eer_seen", "eer_held_out"]].max().max() <= 1
        and info.summary.get("units") is None
        else loao
    )
    grouped = loao.groupby(["layer", "attack"], sort=True)
    per_attack = grouped.agg(
        gap_mean=("gap", "mean"),
        gap_sd=("gap", "std"),
        n_seeds=("gap", "count"),
        eer_seen=("eer_seen", "mean"),
        eer_held_out=("eer_held_out", "mean"),
    ).reset_index()
    layers = _focus_layers(per_attack)
    blocks: list = [
        measures_line("LOAO on frozen embeddings", info.summary.get("measures") or FROZEN_MEASURES)
        + " It says how far an unseen attack lies from the seen ones in this representation, not how a "
        f"detector trained without it would fare (for that, the full-retraining recipe: "
        f"{_hint('loao_retrain')})."
    ]
    blocks += [
        Figure(
            figures.loao_gaps(
                per_attack, fig.path(f"loao-gaps-{where}"), layers=layers, title=f"LOAO generalisation gap ({where})"
            ),
            "Held-out minus seen EER of a linear probe per attack (points), mean over seeds with "
            f"± 1 sd; layers shown: {', '.join(layers)}.",
        )
    ]
    focus = str(per_attack.groupby("layer")["gap_mean"].mean().idxmax())
    part = per_attack[per_attack["layer"].astype(str) == focus].sort_values("gap_mean", ascending=False)
    blocks.append(
        Table(
            fig.table_name(f"loao-{where}"),
            f"LOAO per attack at {focus} (the layer with the largest mean gap); EERs in %, gap in points, "
            "mean ± sd over seeds.",
            pd.DataFrame(
                {
                    "Attack": part["attack"].astype(str),
                    "EER seen (%)": [fmt(v, 2) for v in part["eer_seen"]],
                    "EER held out (%)": [fmt(v, 2) for v in part["eer_held_out"]],
                    "Gap (points)": [
                        f"{m:.2f} ± {s:.2f}" if pd.notna(s) else f"{m:.2f}"
                        for m, s in zip(part["gap_mean"], part["gap_sd"])
                    ],
                    "Seeds": [str(int(n)) for n in part["n_seeds"]],
                }
            ),
        )
    )
    geometry = _read(info, "geometry")
    if geometry is not None and not geometry.empty:
        joined = part.merge(geometry[geometry["layer"].astype(str) == focus], on=["layer", "attack"], how="inner")
        metrics = [m for m in _GEOMETRY if m in joined]
        rho = {}
        for r in info.summary.get("geometry_correlations") or []:
            if isinstance(r, dict) and str(r.get("layer")) == focus and r.get("metric") in metrics:
                rho[r["metric"]] = (float(r.get("rho", float("nan"))), r.get("p_permutation"))
        if len(joined) >= 2 and metrics:
            blocks.append(
                Figure(
                    figures.geometry_scatter(
                        joined,
                        fig.path(f"loao-geometry-{where}"),
                        metrics=metrics,
                        rho=rho,
                        title=f"Geometry vs gap at {focus} ({where})",
                    ),
                    "Per-attack gap against embedding geometry; titles give Spearman ρ and its "
                    "permutation p-value from loao.json.",
                )
            )
    else:
        blocks.append(Note(f"{where}: no geometry.parquet: rerun {_hint('loao')}"))
    rows = _correlation_rows(info.summary.get("geometry_correlations") or [])
    selectivity = info.summary.get("probe_selectivity") or {}
    rows += _correlation_rows(selectivity.get("correlations") or []) if isinstance(selectivity, dict) else []
    if rows:
        blocks.append(
            Table(
                fig.table_name(f"loao-correlations-{where}"),
                "Spearman correlations of per-attack gap with geometry and probe selectivity "
                "(bootstrap 95% CI, permutation p).",
                pd.DataFrame(rows),
            )
        )
    if not selectivity:
        blocks.append(
            Note(
                f"{where}: no probe-selectivity correlation: rerun `cm loao` with the output of "
                f"{_hint('probes').replace('codec', 'attack')}"
            )
        )
    return blocks


# --------------------------------------------------------------------------- probes


def probes_blocks(info: AnalysisInfo, fig: FigureDir, where: str) -> list:
    import pandas as pd

    probes = _read(info, "probes")
    if probes is None or probes.empty:
        return [Note(f"{where}: probes.parquet is empty")]
    blocks: list = []
    units = sorted(set(probes["control_unit"].dropna().astype(str))) if "control_unit" in probes else []
    if info.summary.get("control_measures"):
        blocks.append(measures_line("Control task", info.summary["control_measures"]))
    elif not units:
        blocks.append(
            measures_line(
                "Control task",
                "unit not recorded (made by an older cm probe, which assigned "
                "control labels per utterance when they equalled the fold grouping: control "
                "accuracy is then chance by construction and selectivity is accuracy minus "
                "chance)",
            )
        )
    rows = []
    for target, part in probes.groupby(probes["target"].astype(str), sort=True):
        blocks.append(
            Figure(
                figures.probe_curves(part, fig.path(f"probe-{target}-{where}"), title=f"Probe for {target} ({where})"),
                f"Linear probe for {target} per layer: balanced accuracy with its 95% CI band and "
                "the control task (dotted), majority (dashed) and uniform chance; selectivity = "
                "accuracy - control accuracy.",
            )
        )
        for tag, rows_tag in part.groupby(part["tag"].astype(str), sort=False):
            best = rows_tag.loc[rows_tag["selectivity"].astype(float).idxmax()]
            accuracy = best.get("balanced_accuracy", best.get("accuracy"))
            rows.append(
                {
                    "Target": target,
                    "Tag": tag,
                    "Most selective layer": str(best["layer"]),
                    "Accuracy (%)": fmt(100 * float(best.get("accuracy", float("nan"))), 1),
                    "95% CI": fmt_ci(best.get("ci_low"), best.get("ci_high"), scale=100, digits=1),
                    "Balanced acc. (%)": fmt(100 * float(accuracy), 1),
                    "Control acc. (%)": fmt(100 * float(best.get("control_accuracy", float("nan"))), 1),
                    "Control unit": _control_unit(best),
                    "Selectivity (points)": fmt(100 * float(best["selectivity"]), 1),
                    "Majority chance (%)": fmt(100 * float(best.get("chance_majority", float("nan"))), 1),
                    "Uniform chance (%)": fmt(100 * float(best.get("chance_uniform", float("nan"))), 1),
                }
            )
    blocks.append(
        Table(
            fig.table_name(f"probes-{where}"),
            "Most selective layer per probe target and tag (the CI "
            "is that of accuracy, clusters of the fold grouping resampled).",
            pd.DataFrame(rows),
        )
    )
    return blocks


# --------------------------------------------------------------------------- cka


def cka_blocks(info: AnalysisInfo, fig: FigureDir, where: str) -> list:
    cka = _read(info, "cka")
    if cka is None or cka.empty:
        return [Note(f"{where}: cka.parquet is empty")]
    if "estimator" not in cka:
        cka = cka.assign(estimator="linear")
    blocks: list = []
    for estimator in dict.fromkeys(cka["estimator"].astype(str)):
        blocks.append(measures_line(f"CKA estimator `{estimator}`", cka_estimator_text(estimator, info.summary)))
    for estimator, part in cka.groupby(cka["estimator"].astype(str), sort=False):
        rows = sorted(part["layer_a"].astype(str).unique(), key=layer_sort_key)
        cols = sorted(part["layer_b"].astype(str).unique(), key=layer_sort_key)
        matrix = (
            part.assign(layer_a=part["layer_a"].astype(str), layer_b=part["layer_b"].astype(str))
            .pivot_table(index="layer_a", columns="layer_b", values="cka")
            .reindex(index=rows, columns=cols)
        )
        blocks.append(
            Figure(
                figures.heatmap(
                    matrix,
                    fig.path(f"cka-{estimator}-{where}"),
                    vmin=0.0,
                    vmax=1.0,
                    digits=2,
                    title=f"CKA ({estimator}) ({where})",
                    xlabel="Layer of set B",
                    ylabel="Layer of set A",
                    colorbar="CKA",
                ),
                f"{estimator} CKA between every pair of layers.",
            )
        )
    diagonal = cka[cka["layer_a"].astype(str) == cka["layer_b"].astype(str)]
    if diagonal["layer_a"].nunique() >= 2:
        blocks.append(
            Figure(
                figures.cka_diagonal(
                    diagonal, fig.path(f"cka-diagonal-{where}"), title=f"CKA of matching layers ({where})"
                ),
                "CKA of each layer with the same layer of the other set.",
            )
        )
        if (diagonal["cka"].astype(float) > 0.999).all():
            blocks.append(
                "Every matching layer has CKA ≈ 1: the two inputs are identical there (for example frozen "
                "backbone layers), where CKA is 1 by construction."
            )
    return blocks


# --------------------------------------------------------------------------- patching


def patching_blocks(info: AnalysisInfo, fig: FigureDir, where: str) -> list:
    import pandas as pd

    patching = _read(info, "patching")
    if patching is None or patching.empty:
        return [Note(f"{where}: patching.parquet is empty")]
    rate_columns = ["eer", "delta_eer", "ci_low", "ci_high"]
    units = str(info.summary.get("units", "")).lower()
    points = "point" in units or (bool(patching["eer"].abs().max() > 1.0) if "eer" in patching else False)
    as_fraction = patching.copy()
    if points:  # stored in points: the figure expects fractions
        as_fraction[[c for c in rate_columns if c in patching]] /= 100
    blocks: list = [measures_line("Patching alignment", patching_alignment_text(info.summary))]
    blocks += [
        Figure(
            figures.patching_effects(
                as_fraction, fig.path(f"patching-{where}"), title=f"Activation patching ({where})"
            ),
            "Change in EER from patching each site with the donor's activation, with paired "
            "bootstrap 95% CIs; hollow dashed bars are no-ops (identical activations).",
        )
    ]
    noop = (
        as_fraction["noop"].fillna(False).astype(bool)
        if "noop" in as_fraction
        else pd.Series(False, index=as_fraction.index)
    )
    blocks.append(
        Table(
            fig.table_name(f"patching-{where}"),
            "Patching effects per site (EER and ΔEER in points).",
            pd.DataFrame(
                {
                    "Site": as_fraction["site"].astype(str),
                    "EER (%)": [fmt(100 * v, 2) for v in as_fraction["eer"]],
                    "minDCF": [
                        fmt(v) for v in as_fraction.get("min_dcf", pd.Series(float("nan"), index=as_fraction.index))
                    ],
                    "ΔEER (points)": [
                        f"{100 * v + 0.0:+.2f}" if pd.notna(v) else "–" for v in as_fraction["delta_eer"]
                    ],
                    "95% CI": [
                        fmt_ci(lo, hi, scale=100)
                        for lo, hi in zip(
                            as_fraction.get("ci_low", [None] * len(as_fraction)),
                            as_fraction.get("ci_high", [None] * len(as_fraction)),
                        )
                    ],
                    "Probe acc. (%)": [
                        fmt(100 * v, 1)
                        for v in as_fraction.get("probe_acc", pd.Series(float("nan"), index=as_fraction.index))
                    ],
                    "No-op": ["yes" if n else "" for n in noop],
                }
            ),
        )
    )
    return blocks


def _gap_cells(done) -> list[str]:
    """Gap in points, with sd over seeds when the recipe was retrained per seed (`cm loao --plan --train-seeds`)."""
    sds = done["gap_sd"] if "gap_sd" in done else [float("nan")] * len(done)
    ns = done["n_seeds"] if "n_seeds" in done else [1] * len(done)
    return [
        f"{v:+.2f}" + (f" ± {sd:.2f} sd, {int(n)} seeds" if sd == sd else "") for v, sd, n in zip(done["gap"], sds, ns)
    ]


def _retrain_wording(group_by: str) -> tuple[str, str, str]:
    """(column header, caption, what is measured) of a full-retraining LOAO plan grouped by ``group_by``
    (loao_plan.json records it): a codec is held out with its rows of both classes, an attack with its spoofs."""
    from cm_cli.analysis.loao import CODEC_GROUPS, measures_text

    noun = group_by.replace("_", " ")
    header = noun[:1].upper() + noun[1:]
    if group_by in CODEC_GROUPS:
        caption = (
            f"Per held-out {noun}: EER (%) on that {noun}'s trials (`by.{group_by}` of each run's metrics.json), "
            f"for the run trained with every {noun} and for the run trained without any row of it (and without "
            "the augmentation entries that code with it); gap in points."
        )
    else:
        caption = (
            f"Per held-out {noun}: EER (%) of that {noun}'s spoofs against all bona fide, for the run "
            f"trained on every {noun} and for the run trained without it; gap in points."
        )
    return header, caption, measures_text("retrain", group_by)


def loao_retrain_blocks(info: AnalysisInfo, fig: FigureDir, where: str) -> list:
    import pandas as pd

    from cm_cli.analysis.loao import RETRAIN_MEASURES, retrained_gaps

    record = info.summary
    group_by = str(record.get("group_by") or "attack")
    header, caption, measures = _retrain_wording(group_by)
    recorded = record.get("measures")
    if not recorded or (recorded == RETRAIN_MEASURES and group_by != "attack"):  # the plan's text names attacks
        recorded = measures
    blocks: list = [
        measures_line("LOAO with full retraining", recorded)
        + f" Held out from: {record.get('held_out_from', 'train and dev')}; evaluated on the "
        f"`{record.get('eval_split', 'eval')}` split; preset `{record.get('train_preset', '?')}`."
    ]
    gaps, missing = retrained_gaps(record)
    if gaps.empty:
        return blocks + [Note(f"{where}: the plan holds no held-out {group_by.replace('_', ' ')}")]
    done = gaps.dropna(subset=["gap"])
    if not done.empty:
        blocks.append(
            Table(
                fig.table_name(f"loao-retrain-{where}"),
                caption,
                pd.DataFrame(
                    {
                        header: done["attack"].astype(str),
                        "EER all seen (%)": [fmt(v, 2) for v in done["eer_seen"]],
                        "EER held out (%)": [fmt(v, 2) for v in done["eer_held_out"]],
                        "Gap (points)": _gap_cells(done),
                        "Spoofs": [fmt(v) for v in done["n_spoof"]],
                    }
                ),
            )
        )
    if missing:
        blocks.append(
            Note(
                f"{where}: {len(missing)} result(s) of the recipe not found yet (e.g. {missing[0]}): "
                f"run the lines of {Path(str(info.path)) / 'plan.sh'}"
            )
        )
    return blocks


def _control_unit(row) -> str:
    unit = row.get("control_unit") if hasattr(row, "get") else None
    if unit is None or (isinstance(unit, float) and unit != unit):
        return "–"
    folds = row.get("control_folds")
    return f"{unit} ({folds} folds)" if isinstance(folds, str) else str(unit)


def generic_blocks(info: AnalysisInfo, fig: FigureDir, where: str) -> list:
    """A section for a kind without a builder of its own: what it measures, then each declared table."""
    import pandas as pd

    from cm_cli.core.kinds import get_kind

    declared = get_kind(info.kind)
    title = declared.title if declared is not None and declared.title else info.kind
    blocks: list = []
    if info.summary.get("measures"):
        blocks.append(measures_line(title, str(info.summary["measures"])))
    names = list(declared.tables) if declared is not None and declared.tables else sorted(info.tables)
    for name in names:
        frame = _read(info, name)
        if frame is None:
            blocks.append(Note(f"{where}: no {name}.parquet"))
            continue
        shown = frame.head(_GENERIC_ROWS)
        more = f", the first {_GENERIC_ROWS} shown" if len(frame) > _GENERIC_ROWS else ""
        cells = pd.DataFrame({str(c): [fmt(v) for v in shown[c]] for c in shown.columns})
        blocks.append(
            Table(fig.table_name(f"{info.kind}-{name}-{where}"), f"{name}.parquet ({len(frame)} rows{more}).", cells)
        )
    return blocks


def _builder(kind):
    """The section builder a kind declares (``module:function``, imported now), else ``generic_blocks``."""
    if not kind.section:
        return generic_blocks
    import importlib

    module, _, function = kind.section.partition(":")
    return getattr(importlib.import_module(module), function)


def analysis_section(collection: Collection, fig: FigureDir, *, base: Path | None = None) -> Section:
    """One subsection per analysis kind, one sub-subsection per directory; a Note for each kind missing."""
    from cm_cli.core.kinds import analysis_kinds

    section = Section("Analyses")
    for kind in analysis_kinds():
        found = collection.analyses.get(kind.name) or []
        if not found and kind.optional:
            continue
        builder = _builder(kind)
        sub = Section(kind.title)
        if not found:
            sub.add(Note(f"No {kind.missing_text} found: run {_hint(kind.name)}"))
        for info in found:
            where = _where(info, base)
            blocks = builder(info, fig, where)
            if len(found) > 1:
                sub.add(Section(where).add(*blocks))
            else:
                sub.add(f"From `{where}`.", *blocks)
        section.add(sub)
    return section


# --------------------------------------------------------------------------- provenance


def provenance_section(collection: Collection, fig: FigureDir, *, base: Path | None = None) -> Section:
    """Commands, versions and input hashes of every artifact with a cm.json record."""
    import pandas as pd

    section = Section("Provenance")
    if not collection.records:
        return section.add(Note("No cm.json provenance records found: artifacts written by cm commands carry one"))
    rows, inputs, commands = [], [], []
    for path, record in collection.records:
        where = _where(AnalysisInfo("", path, path.name), base)
        versions = record.get("versions") or {}
        rows.append(
            {
                "Directory": where,
                "Kind": str(record.get("kind", "–")),
                "Status": str(record.get("status", "–")),
                "cm": str(record.get("cm_version", "–")),
                "Git revision": str(record.get("git_revision") or "–")[:10],
                "Finished": str(record.get("finished") or "–"),
                "Host": str(record.get("host") or "–"),
                "torch": str(versions.get("torch") or "–"),
                "numpy": str(versions.get("numpy") or "–"),
            }
        )
        argv = record.get("argv") or []
        if argv:
            commands.append(f"{where}: " + " ".join(str(a) for a in argv))
        for item in record.get("inputs") or []:
            if isinstance(item, dict):
                files = item.get("files") if item.get("kind") == "directory" else [item]
                for f in files or []:
                    inputs.append(
                        {
                            "Artifact": where,
                            "Input": str(f.get("path", "–")),
                            "Size (bytes)": fmt(f.get("size")),
                            "SHA-256": str(f.get("sha256") or "–")[:16],
                        }
                    )
    section.add(
        Table(
            fig.table_name("provenance"),
            "Provenance records (cm.json) of every artifact in the report.",
            pd.DataFrame(rows),
        )
    )
    if commands:
        section.add("Commands that produced the artifacts:", "```\n" + "\n".join(commands) + "\n```")
    if inputs:
        section.add(
            Table(
                fig.table_name("inputs"),
                "Inputs of each artifact with their content hashes "
                "(SHA-256, first 16 hex digits; files over 64 MB are not hashed).",
                pd.DataFrame(inputs[:400]),
            )
        )
    return section
