"""EER and minDCF for the analyses, by DESIGN.md's official definitions.

A private stand-in used only until ``cm_cli.metrics`` provides ``eer``/``min_dcf``;
``detection_errors`` prefers the metrics package when it is importable, so both
give the same numbers. Scores: higher = more bona fide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["det_curve", "eer", "min_dcf", "detection_errors"]


def det_curve(bona: "np.ndarray", spoof: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """FRR and FAR at every threshold of the official sweep, with the (FRR 0, FAR 1) point first."""
    import numpy as np

    bona = np.asarray(bona, dtype=np.float64)
    spoof = np.asarray(spoof, dtype=np.float64)
    scores = np.concatenate([bona, spoof])
    labels = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    order = np.argsort(scores, kind="mergesort")
    labels = labels[order]
    bona_below = np.cumsum(labels)
    spoof_above = spoof.size - (np.arange(1, labels.size + 1) - bona_below)
    frr = np.concatenate([[0.0], bona_below / bona.size])
    far = np.concatenate([[1.0], spoof_above / spoof.size])
    return frr, far


def eer(bona: "np.ndarray", spoof: "np.ndarray") -> float:
    """Equal error rate as a fraction (official: mean of FRR and FAR at argmin |FRR - FAR|)."""
    import numpy as np

    frr, far = det_curve(bona, spoof)
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2)


def min_dcf(bona: "np.ndarray", spoof: "np.ndarray", *, p_spoof: float = 0.05, c_miss: float = 1.0,
            c_fa: float = 10.0) -> float:
    """Normalised minimum detection cost over the official sweep's operating points."""
    frr, far = det_curve(bona, spoof)
    cost = c_miss * (1 - p_spoof) * frr + c_fa * p_spoof * far
    return float(cost.min() / min(c_miss * (1 - p_spoof), c_fa * p_spoof))


def detection_errors(bona: "np.ndarray", spoof: "np.ndarray") -> tuple[float, float]:
    """(EER, minDCF) as fractions, from ``cm_cli.metrics`` when it is available, else the helpers above."""
    try:
        from cm_cli.metrics.dcf import min_dcf as metrics_min_dcf
        from cm_cli.metrics.summary import eer as metrics_eer
    except ImportError:
        return eer(bona, spoof), min_dcf(bona, spoof)
    return float(metrics_eer(bona, spoof)), float(metrics_min_dcf(bona, spoof))
