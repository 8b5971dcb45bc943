"""The DET curve of the official ASVspoof 5 evaluation package, from trials sorted once.

Scores: higher = more bona fide. Point i (after the prepended (FRR 0, FAR 1) point)
rejects the i lowest-scoring trials: FRR = bona fide rejected / N_bona, FAR = spoof
still accepted / N_spoof. Thresholds are the sorted scores, with the first point's
threshold ``min - 0.001`` as in the package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cm_cli.metrics.trials import SortedTrials, from_pools

__all__ = ["DetCurve", "det_curve", "det_from_sorted"]


@dataclass(frozen=True)
class DetCurve:
    """FRR, FAR and thresholds, each (n + 1,), with counts of each class."""

    frr: np.ndarray
    far: np.ndarray
    thresholds: np.ndarray
    n_bonafide: int
    n_spoof: int


def det_from_sorted(trials: SortedTrials) -> DetCurve:
    """DET curve of already-sorted trials (both classes required)."""
    trials.require_both_classes()
    n_bona, n_spoof = trials.n_bonafide, trials.n_spoof
    bona_below = np.cumsum(trials.is_bona, dtype=np.int64)
    spoof_above = n_spoof - (np.arange(1, trials.scores.size + 1) - bona_below)
    frr = np.concatenate([[0.0], bona_below / n_bona])
    far = np.concatenate([[1.0], spoof_above / n_spoof])
    thresholds = np.concatenate([[trials.scores[0] - 0.001], trials.scores])
    return DetCurve(frr, far, thresholds, n_bona, n_spoof)


def det_curve(bonafide: np.ndarray, spoof: np.ndarray) -> DetCurve:
    """DET curve from bona fide and spoof scores."""
    return det_from_sorted(from_pools(bonafide, spoof))
