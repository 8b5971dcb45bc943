"""One figure style for every report plot, readable in colour and in greyscale.

Series differ by lightness (a palette sampled along a monotone-luminance colour
map), by marker and line style for lines, and by hatch for bars, so a printout in
black and white still tells ERM from DANN. matplotlib is imported lazily: importing
this module costs nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = [
    "PALETTE",
    "MARKERS",
    "LINESTYLES",
    "HATCHES",
    "HEATMAP_CMAP",
    "DPI",
    "pyplot",
    "series_style",
    "bar_style",
    "save",
    "new_figure",
    "layer_sort_key",
    "param_label",
]

# dark -> light, distinct in luminance (roughly cividis/viridis stops), colour-blind safe
PALETTE = ("#1b1b3a", "#3b6aa0", "#7fb3a8", "#c9a227", "#8c8c8c", "#d9d9d9")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 2)))
HATCHES = ("", "//", "..", "xx", "\\\\", "--", "++", "oo")
HEATMAP_CMAP = "cividis"  # monotone lightness: ordered in greyscale too
DPI = 130

_RC = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#d0d0d0",
    "grid.linewidth": 0.6,
    "grid.alpha": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "hatch.linewidth": 0.8,
    "image.cmap": HEATMAP_CMAP,
}


def pyplot():
    """matplotlib.pyplot on the Agg backend with the report's rcParams applied."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(_RC)
    return plt


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 6.4, height: float = 3.6, **kwargs: Any):
    """(figure, axes) with the house style; ``axes`` is a flat array (row-major) when there is more than one."""
    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kwargs)
    return fig, (axes[0, 0] if ncols * nrows == 1 else axes.ravel())


def series_style(i: int) -> dict:
    """Line keyword arguments for the i-th series (colour, marker, dash)."""
    return {
        "color": PALETTE[i % len(PALETTE)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
    }


def bar_style(i: int) -> dict:
    """Bar keyword arguments for the i-th series (fill, hatch, black edge)."""
    return {
        "color": PALETTE[i % len(PALETTE)],
        "hatch": HATCHES[i % len(HATCHES)],
        "edgecolor": "black",
        "linewidth": 0.6,
    }


def legend_below(ax, *, ncols: int = 1, fontsize: float | None = None):
    """A legend under the axes, outside the data (curves that fill the plot, such as DET and ROC curves, leave
    no corner free); ``save`` keeps it in the image (``bbox_inches='tight'``)."""
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=ncols, fontsize=fontsize, frameon=False)


def save(fig, path: Path) -> Path:
    """Write ``fig`` as PNG at ``path`` (tight layout, legends outside the axes included) and close it."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.08)
    plt.close(fig)
    return path


_LAYER = re.compile(r"^layer_(\d+)$")
_LAYER_TAIL = {"pooled": 1, "pre_logit": 2}


def layer_sort_key(name: Any) -> tuple:
    """Backbone order: ``layer_00`` … ``layer_NN``, then ``pooled``, ``pre_logit``, then others by name."""
    text = str(name)
    match = _LAYER.match(text)
    if match:
        return (0, int(match.group(1)), text)
    if text.isdigit():
        return (0, int(text), text)
    return (1, _LAYER_TAIL.get(text, 3), text)


_PARAM_LABELS = {
    "kbps": "Bitrate (kbit/s)",
    "bitrate": "Bitrate (kbit/s)",
    "snr": "SNR (dB)",
    "snr_db": "SNR (dB)",
    "chunk_ms": "Chunk length (ms)",
    "ms": "Chunk length (ms)",
    "chunk_s": "Chunk length (s)",
    "rt60": "RT60 (s)",
    "q": "Quality level",
    "level": "Level",
}


def param_label(name: str) -> str:
    """Axis label with unit for a sweep's severity parameter."""
    return _PARAM_LABELS.get(str(name).lower(), str(name))
