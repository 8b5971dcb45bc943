"""The report's figures: one function per figure, each drawing prepared data and returning its PNG path.

Inputs are plain arrays and DataFrames already selected by the section code; rates
come in as fractions and are drawn in percent. Every axis carries a label with its
unit and every series differs by marker/hatch as well as colour (see ``style``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from cm_cli.report.style import (
    HEATMAP_CMAP,
    bar_style,
    layer_sort_key,
    legend_below,
    new_figure,
    param_label,
    save,
    series_style,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "DET_TICKS",
    "grouped_bars",
    "det_curves",
    "roc_curves",
    "score_histograms",
    "sweep_lines",
    "heatmap",
    "training_curves",
    "loao_gaps",
    "geometry_scatter",
    "probe_curves",
    "cka_diagonal",
    "patching_effects",
    "thin_curve",
    "seed_comparison",
]

DET_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90, 95, 98, 99)  # percent
_CLIP = 1e-4  # probabilities clipped before the probit so 0 and 1 stay on the plot


def thin_curve(frr: "np.ndarray", far: "np.ndarray", max_points: int = 4000) -> tuple["np.ndarray", "np.ndarray"]:
    """At most ``max_points`` points of a curve (first and last kept) for plotting."""
    import numpy as np

    n = len(frr)
    if n <= max_points:
        return np.asarray(frr), np.asarray(far)
    index = np.unique(np.concatenate([np.linspace(0, n - 1, max_points).astype(int), [0, n - 1]]))
    return np.asarray(frr)[index], np.asarray(far)[index]


def grouped_bars(
    frame: "pd.DataFrame",
    path: Path,
    *,
    category: str,
    system: str,
    value: str,
    ylabel: str,
    title: str,
    xlabel: str | None = None,
    low: str | None = None,
    high: str | None = None,
    scale: float = 100.0,
) -> Path:
    """Bars of ``value`` per ``category`` (x), one hatched bar per ``system`` side by side; optional CI whiskers."""
    import numpy as np

    categories = list(dict.fromkeys(frame[category].astype(str)))
    systems = list(dict.fromkeys(frame[system].astype(str)))
    width = 0.8 / max(1, len(systems))
    fig, ax = new_figure(width=max(5.0, min(12.0, 1.0 + 0.22 * len(categories) * max(2, len(systems)))), height=3.4)
    x = np.arange(len(categories))
    for i, name in enumerate(systems):
        part = frame[frame[system].astype(str) == name].set_index(frame[category].astype(str).name)
        part.index = part.index.astype(str)
        values = np.array([scale * float(part[value].get(c, np.nan)) for c in categories])
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, values, width, label=name, **bar_style(i))
        if low and high and low in part and high in part:
            lo = np.array([scale * float(part[low].get(c, np.nan)) for c in categories])
            hi = np.array([scale * float(part[high].get(c, np.nan)) for c in categories])
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                ax.errorbar(
                    (x + (i - (len(systems) - 1) / 2) * width)[ok],
                    values[ok],
                    yerr=[np.maximum(values[ok] - lo[ok], 0), np.maximum(hi[ok] - values[ok], 0)],
                    fmt="none",
                    ecolor="black",
                    elinewidth=0.8,
                    capsize=2,
                )
    ax.set_xticks(
        x, categories, rotation=45 if len(categories) > 6 else 0, ha="right" if len(categories) > 6 else "center"
    )
    ax.set_xlabel(xlabel or category)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="x", visible=False)
    if len(systems) > 1:
        ax.legend(title=None, ncols=min(4, len(systems)))
    return save(fig, path)


def _probit_axis(ax, axis: str, lo: float, hi: float) -> None:
    from scipy.stats import norm

    ticks = [t for t in DET_TICKS if lo <= t / 100 <= hi]
    positions = norm.ppf([t / 100 for t in ticks])
    labels = [f"{t:g}" for t in ticks]
    limits = norm.ppf([lo, hi])
    if axis == "x":
        ax.set_xticks(positions, labels)
        ax.set_xlim(*limits)
    else:
        ax.set_yticks(positions, labels)
        ax.set_ylim(*limits)


def det_curves(curves: Sequence[tuple[str, "np.ndarray", "np.ndarray", float]], path: Path, *, title: str) -> Path:
    """DET curves (label, FRR, FAR, EER) on normal-deviate axes, in percent, with each EER point marked."""
    import numpy as np
    from scipy.stats import norm

    fig, ax = new_figure(width=4.8, height=4.6)
    lowest = 1.0
    for i, (label, frr, far, eer) in enumerate(curves):
        frr_t, far_t = thin_curve(frr, far)
        style = series_style(i)
        marker = style.pop("marker")
        x = norm.ppf(np.clip(far_t, _CLIP, 1 - _CLIP))
        y = norm.ppf(np.clip(frr_t, _CLIP, 1 - _CLIP))
        ax.plot(x, y, label=f"{label} (EER {100 * eer:.2f}%)", **style)
        if np.isfinite(eer):
            e = norm.ppf(np.clip(eer, _CLIP, 1 - _CLIP))
            ax.plot([e], [e], marker=marker, color=style["color"], markeredgecolor="black", linestyle="none")
        positive = np.concatenate([frr_t[frr_t > 0], far_t[far_t > 0]])
        if positive.size:
            lowest = min(lowest, float(positive.min()))
    lo = max(_CLIP, min(0.001, lowest / 2))
    hi = 0.6
    _probit_axis(ax, "x", lo, hi)
    _probit_axis(ax, "y", lo, hi)
    limits = norm.ppf([lo, hi])
    ax.plot(limits, limits, color="#b0b0b0", linewidth=0.8, linestyle=":", zorder=0)
    ax.set_xlabel("False acceptance rate: spoof accepted (%)")
    ax.set_ylabel("False rejection rate: bona fide rejected (%)")
    ax.set_title(title)
    legend_below(ax, fontsize=8)  # outside the data: DET curves run through every corner
    return save(fig, path)


def roc_curves(curves: Sequence[tuple[str, "np.ndarray", "np.ndarray", float]], path: Path, *, title: str) -> Path:
    """ROC curves (label, FRR, FAR, AUC): bona fide accepted vs spoof accepted, in percent."""
    fig, ax = new_figure(width=4.6, height=4.4)
    for i, (label, frr, far, auc) in enumerate(curves):
        frr_t, far_t = thin_curve(frr, far)
        style = series_style(i)
        style.pop("marker")
        ax.plot(100 * far_t, 100 * (1 - frr_t), label=f"{label} (AUC {auc:.3f})", **style)
    ax.plot([0, 100], [0, 100], color="#b0b0b0", linewidth=0.8, linestyle=":")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100.5)
    ax.set_xlabel("Spoof accepted: false acceptance rate (%)")
    ax.set_ylabel("Bona fide accepted: 1 - false rejection rate (%)")
    ax.set_title(title)
    legend_below(ax, fontsize=8)
    return save(fig, path)


def score_histograms(
    systems: Sequence[tuple[str, "np.ndarray", "np.ndarray", float | None]], path: Path, *, title: str
) -> Path:
    """Score densities per class (bona fide solid, spoof hatched), one panel per system; EER threshold dashed."""
    import numpy as np

    n = len(systems)
    ncols = min(3, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = new_figure(ncols, nrows, width=3.4 * ncols, height=2.6 * nrows)
    flat = np.atleast_1d(axes).ravel()
    for ax, (label, bona, spoof, threshold) in zip(flat, systems):
        both = np.concatenate([bona, spoof])
        lo, hi = np.percentile(both, [0.5, 99.5]) if both.size else (0.0, 1.0)
        if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
            lo, hi = float(np.min(both)) - 0.5, float(np.max(both)) + 0.5
        bins = np.linspace(lo, hi, 50)
        ax.hist(
            np.clip(bona, lo, hi),
            bins=bins,
            density=True,
            histtype="stepfilled",
            alpha=0.55,
            color="#3b6aa0",
            edgecolor="black",
            linewidth=0.6,
            label=f"bona fide (n={bona.size})",
        )
        ax.hist(
            np.clip(spoof, lo, hi),
            bins=bins,
            density=True,
            histtype="stepfilled",
            alpha=0.35,
            hatch="//",
            color="#c9a227",
            edgecolor="black",
            linewidth=0.6,
            label=f"spoof (n={spoof.size})",
        )
        if threshold is not None and np.isfinite(threshold) and lo <= threshold <= hi:
            ax.axvline(threshold, color="black", linestyle="--", linewidth=0.9, label="EER threshold")
        ax.set_title(label)
        ax.set_xlabel("Score (higher = more bona fide)")
        ax.set_ylabel("Density")
        ax.legend(loc="upper left", fontsize=7)
    for ax in flat[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return save(fig, path)


def sweep_lines(frame: "pd.DataFrame", path: Path, *, title: str, clean: Mapping[str, float] | None = None) -> Path:
    """EER (%) against each severity parameter (one panel per parameter), one line per system.

    ``frame``: system, parameter, severity, eer. ``clean``: system -> clean EER, drawn as a
    dotted reference line.
    """
    parameters = list(dict.fromkeys(frame["parameter"].astype(str)))
    systems = list(dict.fromkeys(frame["system"].astype(str)))
    import numpy as np

    fig, axes = new_figure(len(parameters), 1, width=4.2 * len(parameters), height=3.4)
    for ax, parameter in zip(np.atleast_1d(axes).ravel(), parameters):
        part = frame[frame["parameter"].astype(str) == parameter]
        for i, name in enumerate(systems):
            rows = part[part["system"].astype(str) == name].sort_values("severity")
            if rows.empty:
                continue
            style = series_style(i)
            ax.plot(rows["severity"].astype(float), 100 * rows["eer"].astype(float), label=name, **style)
            if clean and name in clean and np.isfinite(clean[name]):
                ax.axhline(100 * clean[name], color=style["color"], linestyle=":", linewidth=1.0)
        values = part["severity"].astype(float)
        if len(values) and values.min() > 0 and values.max() / values.min() >= 8:
            ax.set_xscale("log", base=2)
            ticks = sorted(values.unique())
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel(param_label(parameter))
        ax.set_ylabel("EER (%)")
        ax.set_title(param_label(parameter).split(" (")[0])
        ax.legend()
    fig.suptitle(title + ("  (dotted: clean)" if clean else ""))
    return save(fig, path)


def heatmap(
    matrix: "pd.DataFrame",
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    colorbar: str,
    scale: float = 1.0,
    digits: int = 1,
    diverging: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Path:
    """A labelled heatmap of ``matrix`` (rows = y, columns = x) with values annotated when it is small enough."""
    import numpy as np

    values = scale * matrix.to_numpy(dtype=float)
    nrows, ncols = values.shape
    xlabels, ylabels = [str(c) for c in matrix.columns], [str(r) for r in matrix.index]
    # tick labels must not overlap: rotate the x labels when they are wider than a column (about 0.075 in per
    # character at 8 pt), and give each row and column room for its label
    longest_x = max((len(t) for t in xlabels), default=1)
    column_in = max(0.55, 0.075 * longest_x if ncols <= 5 else 0.3)
    rotate = ncols > 5 or 0.075 * longest_x > column_in
    fig, ax = new_figure(width=min(12.0, 2.2 + column_in * ncols), height=min(10.0, 1.6 + 0.35 * nrows))
    small = {"fontsize": 7} if max(nrows, ncols) > 16 else {}
    finite = values[np.isfinite(values)]
    cmap = "PuOr_r" if diverging else HEATMAP_CMAP
    if diverging and finite.size:
        bound = float(np.max(np.abs(finite))) or 1.0
        vmin, vmax = -bound, bound
    image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks(
        range(ncols),
        xlabels,
        rotation=45 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor" if rotate else "default",
        **small,
    )
    ax.set_yticks(range(nrows), ylabels, **small)
    ax.grid(False)
    if nrows * ncols <= 400 and finite.size:
        mid = (np.nanmin(finite) + np.nanmax(finite)) / 2 if not diverging else 0.0
        for r in range(nrows):
            for c in range(ncols):
                v = values[r, c]
                if np.isfinite(v):
                    dark = (v < mid) if not diverging else abs(v) > 0.5 * (vmax or 1)
                    ax.text(
                        c,
                        r,
                        f"{v:.{digits}f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if dark else "black",
                    )
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(colorbar)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save(fig, path)


_HISTORY_PANELS = (
    ("loss_task", "Task loss", "Cross-entropy (nats)"),
    ("loss_domain", "Domain loss", "Cross-entropy (nats)"),
    ("domain_acc", "Domain accuracy", "Accuracy (%)"),
    ("lambda", "Adversarial weight λ", "λ (unitless)"),
    ("dev_eer", "Dev EER", "EER (%)"),
    ("dev_min_dcf", "Dev minDCF", "minDCF (normalised)"),
)


def _history_series(history: "pd.DataFrame", key: str) -> list[tuple[str, "pd.Series"]]:
    """Columns for one panel: the plain column and its per-domain-column variants, NaN rows dropped."""
    if key == "domain_acc":
        names = [c for c in history.columns if c.startswith("domain_acc")]
    elif key == "loss_domain":
        names = [c for c in history.columns if c == "loss_domain" or c.startswith("loss_domain_")]
    else:
        names = [key] if key in history.columns else []
    out = []
    for name in names:
        series = history[name].astype(float)
        if series.notna().any():
            out.append((name, series))
    return out


def training_curves(histories: Sequence[tuple[str, "pd.DataFrame"]], path: Path, *, title: str) -> Path:
    """Panels of task/domain losses, domain accuracy, λ and dev EER/minDCF against the optimiser step."""
    import numpy as np

    panels = [(k, t, y) for k, t, y in _HISTORY_PANELS if any(_history_series(h, k) for _, h in histories)]
    ncols = min(3, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = new_figure(ncols, nrows, width=3.6 * ncols, height=2.7 * nrows)
    flat = np.atleast_1d(axes).ravel()
    for ax, (key, panel_title, ylabel) in zip(flat, panels):
        for i, (label, history) in enumerate(histories):
            x = history["step"] if "step" in history else np.arange(len(history))
            for k, (name, series) in enumerate(_history_series(history, key)):
                ok = series.notna().to_numpy()
                scale = 100.0 if key in ("dev_eer", "domain_acc") else 1.0
                style = series_style(i)
                sparse = ok.sum() <= 30
                if not sparse:
                    style["marker"] = None
                if k:  # several domain columns of one run: same colour, another dash and marker
                    style["linestyle"] = ("--", ":", "-.")[k % 3]
                    style["marker"] = "x"
                    style["markevery"] = max(1, int(ok.sum()) // 8)
                suffix = name[len(key) :].lstrip("_") if name != key else ""
                ax.plot(
                    np.asarray(x)[ok],
                    scale * series.to_numpy()[ok],
                    label=label + (f" [{suffix}]" if suffix else ""),
                    **style,
                )
        if key == "domain_acc":
            ax.set_ylim(0, 100)
        ax.set_title(panel_title)
        ax.set_xlabel("Optimiser step")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    return save(fig, path)


def loao_gaps(per_attack: "pd.DataFrame", path: Path, *, title: str, layers: Sequence[str]) -> Path:
    """Held-out minus seen EER (points) per attack, bars per layer with ± sd over seeds."""
    import numpy as np

    attacks = sorted(per_attack["attack"].astype(str).unique())
    width = 0.8 / max(1, len(layers))
    fig, ax = new_figure(width=max(5.0, min(12.0, 1.5 + 0.3 * len(attacks) * len(layers))), height=3.4)
    x = np.arange(len(attacks))
    for i, layer in enumerate(layers):
        part = per_attack[per_attack["layer"].astype(str) == layer].set_index("attack")
        part.index = part.index.astype(str)
        means = np.array([float(part["gap_mean"].get(a, np.nan)) for a in attacks])
        sds = np.array([float(part["gap_sd"].get(a, np.nan)) if "gap_sd" in part else np.nan for a in attacks])
        offset = x + (i - (len(layers) - 1) / 2) * width
        ax.bar(offset, means, width, label=layer, **bar_style(i))
        ok = np.isfinite(sds)
        if ok.any():
            ax.errorbar(offset[ok], means[ok], yerr=sds[ok], fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, attacks, rotation=45 if len(attacks) > 8 else 0, ha="right" if len(attacks) > 8 else "center")
    ax.set_xlabel("Held-out attack")
    ax.set_ylabel("Generalisation gap (EER points)")
    ax.set_title(title)
    ax.grid(axis="x", visible=False)
    ax.legend(title="layer", ncols=min(4, len(layers)))
    return save(fig, path)


_GEOMETRY_LABELS = {
    "d_bona": "Distance to bona fide centroid",
    "cos_bona": "Cosine distance to bona fide centroid",
    "d_near_spoof": "Distance to nearest other attack",
    "bona_axis_proj": "Projection on spoof→bona fide axis",
    "selectivity": "Probe selectivity (points)",
}


def geometry_scatter(
    joined: "pd.DataFrame",
    path: Path,
    *,
    metrics: Sequence[str],
    title: str,
    rho: Mapping[str, tuple[float, float | None]] | None = None,
) -> Path:
    """Gap (points) against each geometry metric, one panel per metric, attacks labelled; Spearman ρ in titles."""
    import numpy as np

    fig, axes = new_figure(len(metrics), 1, width=3.2 * len(metrics), height=3.2)
    for i, (ax, metric) in enumerate(zip(np.atleast_1d(axes).ravel(), metrics)):
        x = joined[metric].astype(float)
        y = joined["gap_mean"].astype(float)
        ax.scatter(
            x,
            y,
            marker=series_style(i)["marker"],
            color=series_style(0)["color"],
            edgecolor="black",
            linewidth=0.5,
            s=28,
        )
        for _, row in joined.iterrows():
            ax.annotate(
                str(row["attack"]),
                (float(row[metric]), float(row["gap_mean"])),
                fontsize=6,
                xytext=(3, 2),
                textcoords="offset points",
            )
        label = _GEOMETRY_LABELS.get(metric, metric)
        ax.set_xlabel(label + (" (unitless)" if metric in ("cos_bona",) else ""))
        ax.set_ylabel("Gap (EER points)")
        if rho and metric in rho:
            r, p = rho[metric]
            ax.set_title(f"ρ = {r:.2f}" + (f", p = {p:.3f}" if p is not None else ""))
    fig.suptitle(title)
    return save(fig, path)


def probe_curves(frame: "pd.DataFrame", path: Path, *, title: str) -> Path:
    """Probe balanced accuracy and selectivity (percent) against layer, one line per tag, chance lines dashed."""
    layers = sorted(frame["layer"].astype(str).unique(), key=layer_sort_key)
    position = {layer: i for i, layer in enumerate(layers)}
    fig, (ax_acc, ax_sel) = new_figure(2, 1, width=9.0, height=3.4)
    accuracy = (
        "balanced_accuracy" if "balanced_accuracy" in frame and frame["balanced_accuracy"].notna().any() else "accuracy"
    )
    for i, (tag, part) in enumerate(frame.groupby(frame["tag"].astype(str), sort=False)):
        part = part.assign(_x=part["layer"].astype(str).map(position)).sort_values("_x")
        style = series_style(i)
        ax_acc.plot(part["_x"], 100 * part[accuracy].astype(float), label=tag, **style)
        if {"ci_low", "ci_high"} <= set(part.columns) and part["ci_low"].notna().any():
            ax_acc.fill_between(
                part["_x"],
                100 * part["ci_low"].astype(float),
                100 * part["ci_high"].astype(float),
                color=style["color"],
                alpha=0.15,
                linewidth=0,
            )
        if "control_accuracy" in part:
            ax_acc.plot(
                part["_x"],
                100 * part["control_accuracy"].astype(float),
                color=style["color"],
                linestyle=":",
                marker=style["marker"],
                markerfacecolor="white",
                label=f"{tag} control",
            )
        ax_sel.plot(part["_x"], 100 * part["selectivity"].astype(float), label=tag, **style)
    for column, dash, name in (
        ("chance_majority", "--", "majority chance"),
        ("chance_uniform", (0, (1, 2)), "uniform chance"),
    ):
        if column in frame and frame[column].notna().any():
            ax_acc.axhline(
                100 * float(frame[column].astype(float).mean()),
                color="black",
                linestyle=dash,
                linewidth=0.9,
                label=name,
            )
    ax_sel.axhline(0, color="black", linestyle="--", linewidth=0.9, label="no selectivity")
    for ax in (ax_acc, ax_sel):
        ax.set_xticks(
            range(len(layers)),
            layers,
            rotation=45 if len(layers) > 6 else 0,
            ha="right" if len(layers) > 6 else "center",
        )
        ax.set_xlabel("Layer")
        ax.legend(fontsize=7)
    ax_acc.set_ylabel(("Balanced accuracy" if accuracy == "balanced_accuracy" else "Accuracy") + " (%)")
    ax_acc.set_ylim(0, 101)
    ax_sel.set_ylabel("Selectivity: accuracy - control (points)")
    ax_acc.set_title("Probe accuracy")
    ax_sel.set_title("Selectivity")
    fig.suptitle(title)
    return save(fig, path)


def cka_diagonal(frame: "pd.DataFrame", path: Path, *, title: str) -> Path:
    """CKA of each layer with the same layer of the other set, one line per estimator."""
    fig, ax = new_figure(width=5.6, height=3.2)
    for i, (estimator, part) in enumerate(frame.groupby(frame["estimator"].astype(str), sort=False)):
        part = part.assign(_key=part["layer_a"].map(layer_sort_key)).sort_values("_key")
        ax.plot(range(len(part)), part["cka"].astype(float), label=estimator, **series_style(i))
        ax.set_xticks(
            range(len(part)),
            part["layer_a"].astype(str),
            rotation=45 if len(part) > 6 else 0,
            ha="right" if len(part) > 6 else "center",
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Layer")
    ax.set_ylabel("CKA (0 = unrelated, 1 = identical)")
    ax.set_title(title)
    ax.legend()
    return save(fig, path)


def patching_effects(frame: "pd.DataFrame", path: Path, *, title: str) -> Path:
    """EER change (points) from patching each site, with CI whiskers; no-op sites hollow and labelled."""
    import numpy as np

    sites = [str(s) for s in frame["site"]]
    delta = 100 * frame["delta_eer"].astype(float).to_numpy()
    low = 100 * frame["ci_low"].astype(float).to_numpy() if "ci_low" in frame else np.full(len(sites), np.nan)
    high = 100 * frame["ci_high"].astype(float).to_numpy() if "ci_high" in frame else np.full(len(sites), np.nan)
    noop = frame["noop"].fillna(False).astype(bool).to_numpy() if "noop" in frame else np.zeros(len(sites), bool)
    fig, ax = new_figure(width=max(5.0, min(12.0, 1.5 + 0.45 * len(sites))), height=3.4)
    x = np.arange(len(sites))
    style = bar_style(1)
    ax.bar(x[~noop], delta[~noop], 0.6, label="effect", **style)
    ax.bar(
        x[noop],
        delta[noop],
        0.6,
        label="no-op (identical activations)",
        color="white",
        edgecolor="#808080",
        linestyle="--",
        linewidth=0.8,
    )
    ok = np.isfinite(low) & np.isfinite(high)
    if ok.any():
        ax.errorbar(
            x[ok],
            delta[ok],
            yerr=[np.maximum(delta[ok] - low[ok], 0), np.maximum(high[ok] - delta[ok], 0)],
            fmt="none",
            ecolor="black",
            elinewidth=0.8,
            capsize=3,
            label="95% CI",
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, sites, rotation=45 if len(sites) > 6 else 0, ha="right" if len(sites) > 6 else "center")
    ax.set_xlabel("Patched site")
    ax.set_ylabel("ΔEER vs unpatched base (points)")
    ax.set_title(title)
    ax.grid(axis="x", visible=False)
    ax.legend(fontsize=7)
    return save(fig, path)


def seed_comparison(per_seed: "pd.DataFrame", tests: "pd.DataFrame", path: Path, *, title: str) -> Path:
    """Left: EER (%) of every seed per group, mean ± sd; right: each pair's EER difference (points) with its CI."""
    import numpy as np

    fig, (left, right) = new_figure(ncols=2, width=10.0, height=max(3.0, 1.2 + 0.45 * max(len(tests), 3)))
    groups = list(dict.fromkeys(per_seed["group"].astype(str)))
    for i, group in enumerate(groups):
        values = 100 * per_seed.loc[per_seed["group"].astype(str) == group, "eer"].astype(float).to_numpy()
        style = series_style(i)
        left.plot(
            np.full(len(values), i),
            values,
            linestyle="none",
            marker=style.get("marker", "o"),
            color=style.get("color"),
            alpha=0.7,
        )
        if len(values):
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            left.errorbar(
                [i + 0.15], [values.mean()], yerr=[[sd], [sd]], fmt="s", color="black", capsize=3, markersize=4
            )
    left.set_xticks(range(len(groups)), groups)
    left.set_xlim(-0.5, len(groups) - 0.5)
    left.set_ylabel("EER (%)")
    left.set_xlabel("Group (dots: seeds; square: mean ± sd)")
    y = np.arange(len(tests))[::-1]
    diff = tests["difference"].astype(float).to_numpy()
    low, high = tests["ci_low"].astype(float).to_numpy(), tests["ci_high"].astype(float).to_numpy()
    right.errorbar(
        diff, y, xerr=[np.maximum(diff - low, 0), np.maximum(high - diff, 0)], fmt="o", color="black", capsize=3
    )
    right.axvline(0, color="#808080", linewidth=0.8, linestyle="--")
    shown = tests["p_label"] if "p_label" in tests else [f"= {p:.3g}" for p in tests["p_value"]]
    right.set_yticks(y, [f"{b} − {a}\np {p}" for a, b, p in zip(tests["a"], tests["b"], shown)])
    right.set_xlabel("EER difference (points), 95% CI")
    fig.suptitle(title)
    return save(fig, path)
