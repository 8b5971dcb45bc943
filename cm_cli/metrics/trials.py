"""Trials sorted once by score, so every metric and every breakdown shares one sort.

Scores: higher = more bona fide (the ASVspoof convention). Ties are ordered bona
fide first, which is exactly what the official evaluation package gets from a stable
mergesort of ``concatenate([bonafide, spoof])``; any subset of the sorted trials keeps
that order, so a group's DET curve needs no new sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cm_cli.core.errors import CmError

__all__ = ["SortedTrials", "sort_trials", "from_pools", "check_scores"]


def check_scores(scores: np.ndarray, *, what: str = "scores") -> np.ndarray:
    """Float64 copy of ``scores``; CmError naming the count and first row of NaN/inf values."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise CmError(
            f"{int(bad.sum())} of {values.size} {what} are NaN or infinite (first at row {first}: {values[first]})",
            "fix the scores or drop invalid trials to leave them out",
            option="drop_invalid",
        )
    return values


@dataclass(frozen=True)
class SortedTrials:
    """Scores in ascending order (ties: bona fide first) with their labels.

    ``scores``: float64 (n,); ``is_bona``: bool (n,); ``order``: indices into the
    original arrays such that ``original[order] == scores`` (kept for subsetting).
    """

    scores: np.ndarray
    is_bona: np.ndarray
    order: np.ndarray

    @property
    def n_bonafide(self) -> int:
        return int(np.count_nonzero(self.is_bona))

    @property
    def n_spoof(self) -> int:
        return int(self.is_bona.size - np.count_nonzero(self.is_bona))

    def take(self, mask: np.ndarray) -> "SortedTrials":
        """The trials where ``mask`` (aligned with the *sorted* order) is true, still sorted."""
        return SortedTrials(self.scores[mask], self.is_bona[mask], self.order[mask])

    def require_both_classes(self, what: str = "scores") -> None:
        if self.n_bonafide == 0 or self.n_spoof == 0:
            missing = "bona fide" if self.n_bonafide == 0 else "spoof"
            raise CmError(
                f"{what}: no {missing} trials ({self.n_bonafide} bona fide, {self.n_spoof} spoof); "
                "detection metrics need both classes",
                "check the label column and the bona fide label value",
                option="bonafide_value",
            )

    def tie_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unique scores ascending, bona fide count, spoof count) per distinct score."""
        n = self.scores.size
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros(0), empty, empty
        starts = np.concatenate([[0], np.flatnonzero(np.diff(self.scores) != 0) + 1])
        bona_cum = np.concatenate([[0], np.cumsum(self.is_bona, dtype=np.int64)])
        ends = np.concatenate([starts[1:], [n]])
        bona = bona_cum[ends] - bona_cum[starts]
        spoof = (ends - starts) - bona
        return self.scores[starts], bona, spoof


def sort_trials(scores: np.ndarray, is_bona: np.ndarray) -> SortedTrials:
    """Sort once: ascending score, bona fide before spoof among equal scores (stable)."""
    scores = check_scores(scores)
    is_bona = np.asarray(is_bona, dtype=bool).ravel()
    if is_bona.shape != scores.shape:
        raise ValueError(f"scores and labels differ in length ({scores.size} vs {is_bona.size})")
    order = np.lexsort((~is_bona, scores))
    return SortedTrials(scores[order], is_bona[order], order)


def from_pools(bonafide: np.ndarray, spoof: np.ndarray) -> SortedTrials:
    """Sorted trials from separate bona fide and spoof score arrays (the official API shape)."""
    bona = check_scores(bonafide, what="bona fide scores")
    spf = check_scores(spoof, what="spoof scores")
    scores = np.concatenate([bona, spf])
    labels = np.concatenate([np.ones(bona.size, dtype=bool), np.zeros(spf.size, dtype=bool)])
    order = np.argsort(scores, kind="mergesort")
    return SortedTrials(scores[order], labels[order], order)
