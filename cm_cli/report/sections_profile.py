"""The report's attack-profiling (source tracing) subsection: a ``cm profile`` directory as figures and a table.

Kept apart from ``sections_analysis`` so that adding this analysis kind is one module and
one entry in its builder table; it reads the numbers ``cm profile`` wrote and recomputes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cm_cli.report.blocks import Figure, FigureDir, Note
from cm_cli.report.collect import AnalysisInfo
from cm_cli.report.labels import measures_line
from cm_cli.report.tables import Table, fmt, fmt_ci

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["profile_blocks", "PROFILE_HINT", "PROFILE_TITLE", "confusion_figure", "proximity_figure"]

PROFILE_HINT = "`cm profile FEATURES --manifest M --target attack --out DIR`"  # as declared in analysis.profile
PROFILE_TITLE = "Attack profiling (source tracing)"
MEASURES = (
    "which attack made each spoof, from a linear classifier on the features with speaker-grouped folds; "
    "an attack held out of training should look unknown (AUROC of its spoofs against known attacks' "
    "spoofs, by max-softmax and by distance to the nearest known centroid); bona fide proximity beside it"
)


def confusion_figure(confusion: "pd.DataFrame", path: Path, *, title: str) -> Path:
    """Row-normalised confusion matrix (percent of each true attack's spoofs)."""
    from cm_cli.report import figures

    matrix = confusion.pivot(index="true", columns="predicted", values="share")
    return figures.heatmap(
        matrix,
        path,
        title=title,
        xlabel="Predicted attack",
        ylabel="True attack",
        colorbar="Share of the attack's spoofs (%)",
        scale=100,
        digits=0,
        vmin=0,
        vmax=100,
    )


def proximity_figure(table: "pd.DataFrame", path: Path, *, title: str) -> Path:
    """Open-set AUROC of each held-out attack against its bona fide proximity (centroid distance)."""
    from cm_cli.report.style import new_figure, save, series_style

    fig, ax = new_figure(width=4.8, height=3.6)
    for i, (column, label) in enumerate(
        (("auroc_unknown", "max-softmax"), ("auroc_unknown_distance", "centroid distance"))
    ):
        rows = table[table[column].notna() & table["d_bona"].notna()]
        style = series_style(i)
        ax.scatter(
            rows["d_bona"].astype(float),
            100 * rows[column].astype(float),
            marker=style["marker"],
            color=style["color"],
            edgecolor="black",
            linewidth=0.5,
            s=28,
            label=label,
        )
        for _, row in rows.iterrows():
            ax.annotate(
                str(row["attack"]),
                (float(row["d_bona"]), 100 * float(row[column])),
                fontsize=6,
                xytext=(3, 2),
                textcoords="offset points",
            )
    ax.axhline(50, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("Distance to bona fide centroid (standardised units)")
    ax.set_ylabel("AUROC unknown vs known (%)")
    ax.legend(fontsize=7)
    ax.set_title(title)
    return save(fig, path)


def _table(table: "pd.DataFrame") -> "pd.DataFrame":
    import pandas as pd

    rows = []
    for r in table.itertuples(index=False):
        rows.append(
            {
                "Attack": r.attack,
                "Spoofs": int(r.n),
                "Accuracy (%)": fmt(100 * float(r.accuracy), 1),
                "AUROC unknown, MSP (%)": fmt(100 * float(r.auroc_unknown), 1),
                "AUROC unknown, distance (%)": fmt(100 * float(r.auroc_unknown_distance), 1),
                "Flagged at 95% known (%)": fmt(100 * float(r.flagged_at_95), 1),
                "Distance to bona fide": fmt(float(r.d_bona), 2),
                "Spoof→bona fide axis": fmt(float(r.bona_axis_proj), 2),
            }
        )
    return pd.DataFrame(rows)


def profile_blocks(info: AnalysisInfo, fig: FigureDir, where: str) -> list:
    """Blocks for one ``cm profile`` directory: what it measures, headline line, two figures, the table."""
    from cm_cli.core.artifacts import read_table

    if "profile" not in info.tables:
        return [Note(f"{where}: no profile.parquet")]
    table = read_table(info.tables["profile"])
    s = info.summary
    blocks: list = [measures_line("Attack profiling", MEASURES)]
    if s.get("accuracy") is not None:
        blocks.append(
            f"Closed-set accuracy {fmt(100 * float(s['accuracy']), 1)}% "
            f"(95% CI {fmt_ci(s.get('ci_low'), s.get('ci_high'), scale=100, digits=1)}, speakers "
            f"resampled), balanced {fmt(100 * float(s.get('balanced_accuracy', float('nan'))), 1)}%, "
            f"uniform chance {fmt(100 * float(s.get('chance_uniform', float('nan'))), 1)}%, over "
            f"{s.get('n_spoof')} spoofs of {len(s.get('classes', []))} {s.get('target', 'attack')} values "
            f"(features: `{s.get('features')}`, {', '.join(s.get('layers', []))})."
        )
    corr = s.get("proximity_vs_auroc_d_bona") or {}
    if corr.get("rho") is not None:
        blocks.append(
            f"Across attacks, Spearman ρ(distance to bona fide, open-set AUROC) = {corr['rho']:+.2f} "
            f"(permutation p = {fmt(corr.get('p_permutation'), 3)}, {corr.get('n')} attacks)."
        )
    if "profile_confusion" in info.tables:
        confusion = read_table(info.tables["profile_confusion"])
        if not confusion.empty:
            blocks.append(
                Figure(
                    confusion_figure(
                        confusion, fig.path(f"profile-confusion-{where}"), title=f"Attack confusion ({where})"
                    ),
                    "Out-of-fold confusion matrix of the attack classifier: percent of each true "
                    "attack's spoofs given each predicted attack (rows sum to 100).",
                )
            )
    if table["auroc_unknown"].notna().any():
        blocks.append(
            Figure(
                proximity_figure(
                    table,
                    fig.path(f"profile-open-set-{where}"),
                    title=f"Unknown attacks vs bona fide proximity ({where})",
                ),
                "Each attack held out of training in turn: AUROC of its spoofs against the known "
                "attacks' spoofs (50% = not told apart), against its distance to bona fide.",
            )
        )
    blocks.append(
        Table(
            fig.table_name(f"profile-{where}"),
            "Per attack: closed-set accuracy (recall), open-set "
            "AUROC when held out, share flagged unknown at the threshold keeping 95% of known spoofs, "
            "and bona fide proximity.",
            _table(table),
        )
    )
    for note in s.get("notes", []):
        blocks.append(Note(str(note)))
    return blocks
