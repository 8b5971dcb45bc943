"""Report layout (issue 31): legends outside the data, heatmap labels apart, wide tables scroll in their box."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.report import figures


@pytest.fixture
def captured(monkeypatch):
    """The figures the report functions draw, kept open and drawn, instead of only their PNG files."""
    from cm_cli.report import style

    kept = []

    def keep(fig, path):
        kept.append(fig)
        fig.tight_layout()
        fig.canvas.draw()
        return path

    monkeypatch.setattr(figures, "save", keep)
    yield kept
    plt = style.pyplot()
    for fig in kept:
        plt.close(fig)


def _curve(seed: int):
    rng = np.random.default_rng(seed)
    bona, spoof = rng.normal(1, 1, 400), rng.normal(-1, 1, 400)
    from cm_cli.metrics.det import det_curve
    from cm_cli.metrics.summary import eer

    curve = det_curve(bona, spoof)
    return curve.frr, curve.far, float(eer(bona, spoof))


def test_det_and_roc_legends_sit_outside_the_axes(captured, tmp_path):
    curves = [(f"system {i}", *_curve(i)) for i in range(3)]
    figures.det_curves(curves, tmp_path / "det.png", title="DET")
    figures.roc_curves([(label, frr, far, 0.9) for label, frr, far, _ in curves], tmp_path / "roc.png", title="ROC")
    for fig in captured:
        ax = fig.axes[0]
        legend = ax.get_legend().get_window_extent()
        frame = ax.get_window_extent()
        assert legend.y1 <= frame.y0, (legend, frame)  # wholly below the plotting area


def test_heatmap_tick_labels_do_not_overlap(captured, tmp_path):
    for columns in (
        ["codec_seen_by_erm_aug", "codec_unseen_by_all", "clean_reference", "mp3_kbps_16"],
        [f"layer_{i:02d}" for i in range(13)],
    ):
        matrix = pd.DataFrame(
            np.random.default_rng(0).random((3, len(columns))), columns=columns, index=["a", "b", "c"]
        )
        figures.heatmap(matrix, tmp_path / "h.png", title="t", xlabel="x", ylabel="y", colorbar="c")
        ax = captured[-1].axes[0]
        boxes = sorted((t.get_window_extent() for t in ax.get_xticklabels()), key=lambda b: b.x0)
        for left, right in zip(boxes, boxes[1:]):
            assert not left.overlaps(right), (columns, left, right)


def test_wide_tables_scroll_in_their_box_with_the_caption_above():
    from cm_cli.report.render import _table_html
    from cm_cli.report.tables import Table

    frame = pd.DataFrame({f"a rather long column name {i}": ["x" * 30] for i in range(12)})
    html = _table_html(Table("wide", "A caption long enough to wrap at the page width " * 4, frame))
    assert html.startswith('<p class="caption">A caption long enough')
    assert '<div class="table-wrap"><table id="tab-wide">' in html and "<caption>" not in html
