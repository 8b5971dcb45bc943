"""Pool-adjacent-violators over tied score groups: the ROC convex hull and its metrics.

Scores: higher = more bona fide. PAV on the bona fide indicator, sorted by score with
ties pooled, yields blocks whose bona fide fraction increases with score; the block
boundaries are exactly the vertices of the ROC convex hull (ROCCH). From the blocks
come the convex-hull EER, the optimally calibrated LLRs (for minCllr), and from the
tie groups the AUC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PavBlocks", "pav_blocks", "eer_from_blocks", "min_cllr_from_blocks", "auc_from_groups"]


@dataclass(frozen=True)
class PavBlocks:
    """Per block, in ascending score order: bona fide count, spoof count, and the
    index one past its last tie group."""

    bona: np.ndarray
    spoof: np.ndarray
    ends: np.ndarray


def pav_blocks(bona_counts: np.ndarray, spoof_counts: np.ndarray) -> PavBlocks:
    """Merge adjacent tie groups until the bona fide fraction strictly increases.

    Ratios are compared by exact integer cross-multiplication; equal ratios are
    merged (collinear hull points collapse into one segment). The blocks are the
    segments of the lower convex hull of the cumulative points (trials, bona fide),
    found by vectorised passes that drop every point on or above the segment of its
    neighbours (such a point is never a hull vertex); a pathological input that needs
    many passes falls back to the sequential stack.
    """
    b = np.asarray(bona_counts, dtype=np.int64)
    s = np.asarray(spoof_counts, dtype=np.int64)
    x = np.concatenate([[0], np.cumsum(b + s)])
    y = np.concatenate([[0], np.cumsum(b)])
    keep = np.arange(x.size)
    for _ in range(_MAX_PASSES):
        if keep.size < 3:
            break
        xs, ys = x[keep], y[keep]
        # cross product of (P[i] - P[i-1]) x (P[i+1] - P[i]) > 0: a strict left turn, convex from below
        turn = (xs[1:-1] - xs[:-2]) * (ys[2:] - ys[1:-1]) - (ys[1:-1] - ys[:-2]) * (xs[2:] - xs[1:-1])
        bad = turn <= 0
        if not bad.any():
            break
        keep = np.concatenate([keep[:1], keep[1:-1][~bad], keep[-1:]])
    else:
        return _pav_stack(b, s)
    return PavBlocks(np.diff(y[keep]), np.diff(x[keep] - y[keep]), keep[1:].astype(np.int64))


_MAX_PASSES = 200


def _pav_stack(bona_counts: np.ndarray, spoof_counts: np.ndarray) -> PavBlocks:
    """The sequential pool-adjacent-violators stack (same blocks; O(n) but a Python loop)."""
    sum_b: list[int] = []
    sum_s: list[int] = []
    ends: list[int] = []
    for k, (b, s) in enumerate(zip(np.asarray(bona_counts).tolist(), np.asarray(spoof_counts).tolist())):
        while sum_b and sum_b[-1] * (b + s) >= b * (sum_b[-1] + sum_s[-1]):
            b += sum_b.pop()
            s += sum_s.pop()
            ends.pop()
        sum_b.append(b)
        sum_s.append(s)
        ends.append(k + 1)
    return PavBlocks(
        np.asarray(sum_b, dtype=np.int64), np.asarray(sum_s, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    )


def eer_from_blocks(blocks: PavBlocks) -> float:
    """EER of the ROC convex hull: where the hull crosses Pmiss = Pfa, interpolated on its segment."""
    n_bona = int(blocks.bona.sum())
    n_spoof = int(blocks.spoof.sum())
    p_miss = np.concatenate([[0.0], np.cumsum(blocks.bona) / n_bona])
    p_fa = np.concatenate([[1.0], 1.0 - np.cumsum(blocks.spoof) / n_spoof])
    diff = p_miss - p_fa  # -1 at the first vertex, +1 at the last: increasing along the hull
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0:
        return float(p_miss[i])
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(p_miss[i - 1] + t * (p_miss[i] - p_miss[i - 1]))


def min_cllr_from_blocks(blocks: PavBlocks) -> float:
    """Cllr (bits) of the PAV-calibrated LLRs: log(B/S) per block minus the log prior odds."""
    b = blocks.bona.astype(np.float64)
    s = blocks.spoof.astype(np.float64)
    n_bona, n_spoof = b.sum(), s.sum()
    with np.errstate(divide="ignore", invalid="ignore"):  # +-inf LLRs of pure blocks; 0 * inf masked below
        llr = np.log(b) - np.log(s) - (np.log(n_bona) - np.log(n_spoof))
        bona_cost = np.where(b > 0, b * np.logaddexp(0.0, -llr), 0.0)
        spoof_cost = np.where(s > 0, s * np.logaddexp(0.0, llr), 0.0)
    return float(0.5 * (bona_cost.sum() / n_bona + spoof_cost.sum() / n_spoof) / np.log(2.0))


def auc_from_groups(bona_counts: np.ndarray, spoof_counts: np.ndarray) -> float:
    """P(bona fide score > spoof score) + ½ P(tie), from counts per distinct score."""
    b = np.asarray(bona_counts, dtype=np.float64)
    s = np.asarray(spoof_counts, dtype=np.float64)
    spoof_below = np.cumsum(s) - s
    return float(np.sum(b * (spoof_below + 0.5 * s)) / (b.sum() * s.sum()))
