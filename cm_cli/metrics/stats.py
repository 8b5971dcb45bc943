"""The one statistics engine: cluster resampling, the bootstrap EER/minDCF, intervals and tests.

Why one module: cm's numbers go into papers, so every interval and test (``cm eval
--bootstrap``, the report's seed comparisons, patching, probes, LOAO correlations)
must resample the same unit (``metrics.clusters.cluster_codes``: one definition of a
cluster, nulls each their own) and compute the EER the same way as ``cm eval``
(trials sorted once, ties bona fide first, every resampled copy its own DET point).

Scores: higher = more bona fide. A resample is a vector of non-negative weights (how
often each trial, or each cluster, was drawn); ``weighted_eer_dcf`` gives the EER and
minDCF of the official DET curve of the expanded resample without expanding it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.metrics.clusters import cluster_codes
from cm_cli.metrics.dcf import CostParams
from cm_cli.metrics.trials import SortedTrials, sort_trials

__all__ = [
    "BootstrapResult",
    "Correlation",
    "SeedTest",
    "bootstrap_ci",
    "bootstrap_eers",
    "cluster_bootstrap_mean",
    "draw_counts",
    "hedges_g",
    "holm",
    "percentile_interval",
    "seed_test",
    "seed_test_batch",
    "spearman",
    "spearman_test",
    "weighted_eer_dcf",
]

MAX_CELLS = 4_000_000  # resamples x trials held in memory at once


# --------------------------------------------------------------------------- resampling


def draw_counts(n_units: int, n_boot: int, rng: np.random.Generator, *, chunk: int = 0) -> Iterator[np.ndarray]:
    """(b, n_units) draw counts, ``n_boot`` rows in all: each row draws ``n_units`` units with replacement.

    One ``rng.integers(0, K, K)`` call per replicate, so a seed gives the same resamples
    whatever the chunk size.
    """
    chunk = chunk or max(1, MAX_CELLS // max(n_units, 1))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        picks = np.stack([rng.integers(0, n_units, n_units) for _ in range(b)])
        yield np.bincount((picks + n_units * np.arange(b)[:, None]).ravel(), minlength=b * n_units).reshape(b, n_units)


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite draws (NaN, NaN when there are none)."""
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --------------------------------------------------------------------------- the EER engine


def _runs(is_bona: np.ndarray) -> np.ndarray:
    """Start index of every maximal run of one class along the last axis of a 1-D label vector."""
    return np.concatenate([[0], np.flatnonzero(is_bona[1:] != is_bona[:-1]) + 1])


def weighted_eer_dcf(
    is_bona: np.ndarray, weights: np.ndarray, params: CostParams | None = CostParams()
) -> tuple[np.ndarray, np.ndarray | None]:
    """EER and normalised minDCF of weighted trials, batched over leading axes.

    ``is_bona``: classes in sorted order (ascending score, ties bona fide first), (N,)
    shared by every row or (..., N); ``weights``: (..., N) trial multiplicities. The
    result equals the official DET curve of the expanded trials (each copy one point;
    argmin |FRR - FAR|, first on ties; EER = mean of the two there). Within a run of one
    class FRR - FAR only grows, so only run ends are needed plus the copies of the one
    run where it crosses zero. NaN where a row has no bona fide or no spoof weight.
    ``params=None`` skips minDCF.
    """
    is_bona = np.asarray(is_bona, dtype=bool)
    weights = np.asarray(weights, dtype=np.float64)
    if is_bona.ndim == 1:
        starts = _runs(is_bona)
        run_bona = is_bona[starts]
        w = np.add.reduceat(weights, starts, axis=-1) if starts.size < is_bona.size else weights
    else:
        run_bona, w = is_bona, weights
    return _runs_eer_dcf(run_bona, w, params)


def _runs_eer_dcf(run_bona: np.ndarray, w: np.ndarray, params: CostParams | None):
    """``weighted_eer_dcf`` on weights already summed per run of one class (``run_bona``: class of each run)."""
    # cumulative weights after each run end (the start point, 0 and 0, is implicit)
    cb = np.cumsum(w * run_bona, axis=-1)
    cs = np.cumsum(w, axis=-1)
    cs -= cb
    nb, ns = cb[..., -1:], cs[..., -1:]
    valid = (nb[..., 0] > 0) & (ns[..., 0] > 0)
    nb_safe, ns_safe = np.where(nb > 0, nb, 1.0), np.where(ns > 0, ns, 1.0)
    # first run end with FRR - FAR >= 0, i.e. cb ns + cs nb >= nb ns (exact in integers); the run it closes
    p = np.argmax(cb * ns_safe + cs * nb_safe >= nb_safe * ns_safe, axis=-1)[..., None]
    cb_p = np.where(p > 0, np.take_along_axis(cb, np.maximum(p - 1, 0), -1), 0.0)
    cs_p = np.where(p > 0, np.take_along_axis(cs, np.maximum(p - 1, 0), -1), 0.0)
    w_q = np.take_along_axis(w, p, -1)
    bona_q = np.take_along_axis(np.broadcast_to(run_bona, w.shape), p, -1)
    # copies j = 0..w_q of that run; the crossing copy is near x (exact in real numbers)
    x = np.where(bona_q, (ns - cs_p) / ns_safe * nb - cb_p, ns - cs_p - cb_p / nb_safe * ns)
    j = np.clip(np.floor(x) + np.arange(-1, 3), 0, w_q)  # (..., 4) candidates, ascending
    cand_frr = np.where(bona_q, (cb_p + j) / nb_safe, cb_p / nb_safe)
    cand_far = np.where(bona_q, (ns - cs_p) / ns_safe, (ns - cs_p - j) / ns_safe)
    k = np.argmin(np.abs(cand_frr - cand_far), axis=-1)[..., None]
    eer = np.mean(
        np.concatenate([np.take_along_axis(cand_frr, k, -1), np.take_along_axis(cand_far, k, -1)], axis=-1), axis=-1
    )
    eer = np.where(valid, eer, np.nan)
    if params is None:
        return eer, None
    p_bona = 1 - params.p_spoof
    a_miss, a_fa = params.c_miss * p_bona / nb_safe, params.c_fa * (1 - p_bona) / ns_safe
    cost = np.minimum((a_miss * cb + a_fa * (ns - cs)).min(axis=-1), params.c_fa * (1 - p_bona))  # with start
    dcf = np.where(valid, cost / params.normaliser, np.nan)
    return eer, dcf


# --------------------------------------------------------------------------- cm eval --bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile intervals and the resampled values (eer, min_dcf: (n_resamples,))."""

    eer: np.ndarray
    min_dcf: np.ndarray
    level: float
    n_resamples: int
    seed: int
    cluster_by: str | None
    n_clusters: int
    unit: str = "trial"

    def interval(self, values: np.ndarray) -> list[float]:
        return list(percentile_interval(values, self.level))

    def to_dict(self) -> dict:
        return {
            "eer": self.interval(self.eer),
            "min_dcf": self.interval(self.min_dcf),
            "eer_std": float(np.std(self.eer, ddof=1)) if self.n_resamples > 1 else None,
            "min_dcf_std": float(np.std(self.min_dcf, ddof=1)) if self.n_resamples > 1 else None,
            "level": self.level,
            "method": "percentile",
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "cluster_by": self.cluster_by,
            "unit": self.unit,
            "n_clusters": self.n_clusters,
        }


def _stratified_counts(n_bona: int, n_spoof: int, n_boot: int, rng: np.random.Generator) -> Iterator[tuple]:
    """Per-trial resamples with class sizes fixed: (bona counts, spoof counts) per replicate."""
    for _ in range(n_boot):
        yield (
            np.bincount(rng.integers(0, n_bona, n_bona), minlength=n_bona),
            np.bincount(rng.integers(0, n_spoof, n_spoof), minlength=n_spoof),
        )


def bootstrap_ci(
    trials: SortedTrials,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
    cluster_by: str | None = None,
    params: CostParams = CostParams(),
    unit: str | None = None,
) -> BootstrapResult:
    """Percentile bootstrap of EER and minDCF; ``clusters`` is aligned with the original trials
    (None: bona fide and spoof trials resampled separately, the unit is the trial)."""
    if n_resamples < 1:
        raise CmError(f"the bootstrap needs at least 1 resample, got {n_resamples}", option="bootstrap")
    if not 0.0 < level < 1.0:
        raise CmError(f"confidence level must be in (0, 1), got {level}")
    trials.require_both_classes()
    rng = np.random.default_rng(seed)
    is_bona = trials.is_bona
    n = is_bona.size
    starts = _runs(is_bona)
    run_bona = is_bona[starts]
    run_of = np.cumsum(np.isin(np.arange(n), starts)) - 1  # run index of every sorted trial
    chunk = max(1, MAX_CELLS // max(starts.size, 1))
    eers, dcfs = [], []
    if clusters is None:
        n_clusters = n
        # each class's trials in sorted order, cut at its runs: a run's weight is one reduceat per class
        bona_cuts = np.flatnonzero(np.diff(np.concatenate([[-1], run_of[is_bona]])))
        spoof_cuts = np.flatnonzero(np.diff(np.concatenate([[-1], run_of[~is_bona]])))
        draws = _stratified_counts(trials.n_bonafide, trials.n_spoof, n_resamples, rng)
        for start in range(0, n_resamples, chunk):
            b = min(chunk, n_resamples - start)
            w = np.empty((b, starts.size))
            for r in range(b):
                bona_counts, spoof_counts = next(draws)
                w[r, run_bona] = np.add.reduceat(bona_counts, bona_cuts)
                w[r, ~run_bona] = np.add.reduceat(spoof_counts, spoof_cuts)
            e, d = _runs_eer_dcf(run_bona, w, params)
            eers.append(e)
            dcfs.append(d)
    else:
        from scipy import sparse

        codes, n_clusters = cluster_codes(np.asarray(clusters, dtype=object)[trials.order])
        if n_clusters < 2:
            raise CmError(
                f"clusters by {cluster_by!r}: only one cluster; a clustered bootstrap needs several",
                option="cluster_by",
            )
        # trials of each cluster in each run: a resample's run weights are one sparse product
        members = sparse.csr_matrix((np.ones(n), (run_of, codes)), shape=(starts.size, n_clusters))
        for counts in draw_counts(n_clusters, n_resamples, rng, chunk=chunk):
            e, d = _runs_eer_dcf(run_bona, np.asarray((members @ counts.T.astype(np.float64)).T), params)
            eers.append(e)
            dcfs.append(d)
    eer, dcf = np.concatenate(eers), np.concatenate(dcfs)
    valid = np.isfinite(eer)
    if not valid.all():
        if not valid.any():
            raise CmError(
                "every bootstrap resample lost one class", "use more clusters or no clustering", option="cluster_by"
            )
        eer, dcf = eer[valid], dcf[valid]
    unit = unit or ("trial" if clusters is None else (cluster_by or "cluster"))
    return BootstrapResult(
        eer, dcf, level, int(eer.size), seed, cluster_by if clusters is not None else None, int(n_clusters), unit
    )


# --------------------------------------------------------------------------- paired resamples of many systems


def bootstrap_eers(
    score_sets: Sequence[np.ndarray],
    is_bona: np.ndarray,
    clusters: np.ndarray | None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    subsets: Sequence[np.ndarray] | None = None,
    max_cells: int = MAX_CELLS,
) -> np.ndarray:
    """EER of every score set (all on the same N trials) under the same ``n_boot`` cluster resamples: (B, S),
    or (B, S, M) with ``subsets`` (M boolean masks: the EER of each subset, same resamples).

    A resample draws K clusters with replacement out of K (``clusters`` None: each trial
    its own cluster); a trial's weight is how often its cluster was drawn. Each score set
    is sorted once with the tie order of ``cm eval``.
    """
    is_bona = np.asarray(is_bona, dtype=bool)
    n = len(is_bona)
    if n == 0 or is_bona.all() or not is_bona.any():
        raise CmError("a paired bootstrap needs bona fide and spoof trials in common")
    codes, k = cluster_codes(clusters) if clusters is not None else (np.arange(n), n)
    sorted_sets = [sort_trials(np.asarray(s, dtype=np.float64), is_bona) for s in score_sets]
    masks = [np.ones(n, dtype=bool)] if subsets is None else [np.asarray(m, dtype=bool) for m in subsets]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(sorted_sets), len(masks)))
    start = 0
    for counts in draw_counts(k, n_boot, rng, chunk=max(1, max_cells // max(n, 1))):
        b = counts.shape[0]
        weights = counts[:, codes].astype(np.float64)
        for j, trials in enumerate(sorted_sets):
            w_sorted = weights[:, trials.order]
            for m, mask in enumerate(masks):
                out[start : start + b, j, m] = weighted_eer_dcf(trials.is_bona, w_sorted * mask[trials.order], None)[0]
        start += b
    return out[:, :, 0] if subsets is None else out


def cluster_bootstrap_mean(
    values: np.ndarray,
    clusters: np.ndarray,
    *,
    other: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, np.ndarray]:
    """Percentile CI of mean(values), or of mean(other) - mean(values) (paired), resampling whole clusters;
    also the draws."""
    values = np.asarray(values, dtype=np.float64)
    codes, k = cluster_codes(clusters)
    size = np.bincount(codes, minlength=k).astype(np.float64)
    sum_a = np.bincount(codes, weights=values, minlength=k)
    sum_b = None if other is None else np.bincount(codes, weights=np.asarray(other, np.float64), minlength=k)
    draws = []
    for counts in draw_counts(k, n_boot, np.random.default_rng(seed)):
        counts = counts.astype(np.float64)
        total = counts @ size
        mean = (counts @ sum_a) / total
        draws.append(mean if sum_b is None else (counts @ sum_b) / total - mean)
    draws = np.concatenate(draws)
    low, high = percentile_interval(draws, level)
    return low, high, draws


# --------------------------------------------------------------------------- tests and effect sizes


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given): one family per call."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float:
    """Hedges' g of mean(b) - mean(a): Cohen's d over the pooled sd times J = 1 - 3 / (4 (n_a + n_b) - 9)
    (Hedges 1981), which removes d's upward bias at a handful of seeds. NaN with < 2 values on a side."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n_a, n_b = a.size, b.size
    if n_a < 2 or n_b < 2:
        return math.nan
    pooled = math.sqrt(((n_a - 1) * a.var(ddof=1) + (n_b - 1) * b.var(ddof=1)) / (n_a + n_b - 2))
    if pooled == 0:
        return math.nan
    return float((b.mean() - a.mean()) / pooled * (1 - 3 / (4 * (n_a + n_b) - 9)))


@dataclass(frozen=True)
class SeedTest:
    """mean(B) - mean(A) over seeds: its standard error split into seed and trial parts, df, CI and p."""

    difference: float
    se: float
    se_seeds: float
    se_trials: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


def _cross_cov(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Bootstrap covariance of every column of x (..., B, p) with every column of y (..., B, q) over valid rows."""
    m = valid[..., None].astype(np.float64)
    n = m.sum(axis=-2, keepdims=True)
    xc = np.where(valid[..., None], x - (m * np.nan_to_num(x)).sum(axis=-2, keepdims=True) / n, 0.0)
    yc = np.where(valid[..., None], y - (m * np.nan_to_num(y)).sum(axis=-2, keepdims=True) / n, 0.0)
    return np.einsum("...bp,...bq->...pq", xc, yc) / (n[..., 0, :, None] - 1)


def _shared_cov(cov: np.ndarray) -> np.ndarray:
    """Mean off-diagonal entry of (..., k, k) covariances (the variance seeds share); the variance when k = 1."""
    k = cov.shape[-1]
    if k == 1:
        return cov[..., 0, 0]
    return (cov.sum(axis=(-2, -1)) - np.trace(cov, axis1=-2, axis2=-1)) / (k * (k - 1))


def seed_test_batch(
    points_a: np.ndarray,
    points_b: np.ndarray,
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    *,
    n_clusters: int,
    level: float = 0.95,
) -> dict:
    """``seed_test`` over leading batch axes: points (..., k), bootstrap values (..., B, k); a dict of arrays."""
    from scipy import stats as st

    a, b = np.asarray(points_a, np.float64), np.asarray(points_b, np.float64)
    boot_a, boot_b = np.asarray(boot_a, np.float64), np.asarray(boot_b, np.float64)
    k_a, k_b = a.shape[-1], b.shape[-1]
    diff = b.mean(axis=-1) - a.mean(axis=-1)
    zero = np.zeros_like(diff)
    if k_a == k_b > 1:  # pooled seed variance (Student): the same statistic as Welch's, exact df
        pooled = (a.var(axis=-1, ddof=1) + b.var(axis=-1, ddof=1)) / 2
        seed_terms = [(pooled * 2 / k_a, 2.0 * k_a - 2)]
    else:  # unequal seed counts: Welch with Satterthwaite df (a side with one seed adds no seed term)
        seed_terms = [(v.var(axis=-1, ddof=1) / k, k - 1.0) for v, k in ((a, k_a), (b, k_b)) if k > 1]
    valid = np.isfinite(boot_a).all(axis=-1) & np.isfinite(boot_b).all(axis=-1)
    usable = valid.sum(axis=-1) > 2
    if usable.any():
        c_aa = _shared_cov(_cross_cov(boot_a, boot_a, valid))
        c_bb = _shared_cov(_cross_cov(boot_b, boot_b, valid))
        c_ab = _cross_cov(boot_a, boot_b, valid).mean(axis=(-2, -1))
        trial = np.where(usable, np.maximum(0.0, np.nan_to_num(c_aa + c_bb - 2 * c_ab)), 0.0)
    else:
        trial = zero
    terms = seed_terms + [(trial, max(1.0, n_clusters - 1.0))]
    var = sum(v for v, _ in terms)
    denominator = sum(v**2 / d for v, d in terms)
    positive = var > 0
    df = np.where(positive, var**2 / np.where(denominator > 0, denominator, 1.0), np.inf)
    se = np.sqrt(var)
    t_crit = np.where(positive, st.t.ppf(0.5 + level / 2, np.where(positive, df, 1.0)), 0.0)
    p = np.where(
        positive,
        2 * st.t.sf(np.abs(diff) / np.where(positive, se, 1.0), np.where(positive, df, 1.0)),
        np.where(diff == 0, 1.0, 0.0),
    )
    return {
        "difference": diff,
        "se": se,
        "se_seeds": np.sqrt(sum((v for v, _ in seed_terms), zero)),
        "se_trials": np.sqrt(trial),
        "df": df,
        "ci_low": diff - t_crit * se,
        "ci_high": diff + t_crit * se,
        "p_value": p,
    }


def seed_test(
    points_a: Sequence[float],
    points_b: Sequence[float],
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    *,
    n_clusters: int,
    level: float = 0.95,
) -> SeedTest:
    """t test of mean(B) - mean(A) over seeds that adds the trial-sampling variance the seeds share.

    Var = s_a²/k_a + s_b²/k_b (the seeds, on these trials: it already holds each seed's own
    trial noise; with equal seed counts the two sds are pooled, df k_a + k_b - 2, which is
    exact for normal seed effects of equal spread, where Welch's df is conservative at
    3 seeds) + V_trials, the variance of the part of the trial-sampling error that
    every seed of a method shares, from the bootstrap covariances *between* different
    seeds (``boot_*``: (B, k) per-seed values under the same cluster resamples):
    V_trials = C_aa + C_bb - 2 C_ab, C = mean cross-seed covariance (a side's bootstrap
    variance when it has one seed, whose seed part is then unknown), clipped at 0.
    Satterthwaite df over the terms (seeds as above, V_trials n_clusters - 1); two-sided t p-value.
    """
    out = seed_test_batch(points_a, points_b, boot_a, boot_b, n_clusters=n_clusters, level=level)
    return SeedTest(**{key: float(value) for key, value in out.items()})


# --------------------------------------------------------------------------- correlations across attacks


@dataclass
class Correlation:
    """Spearman rho with a percentile bootstrap CI and a two-sided permutation p-value."""

    rho: float
    ci_low: float
    ci_high: float
    p_permutation: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho (average ranks for ties); NaN when either side is constant."""
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def _rows_spearman(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(axis=1) / denominator, np.nan)


def spearman_test(
    x: np.ndarray, y: np.ndarray, *, n_boot: int = 2000, n_perm: int = 5000, seed: int = 0, level: float = 0.95
) -> Correlation:
    """Spearman rho of paired values, NaN pairs removed; CI by resampling pairs, p by permuting y.

    Correlations across attacks rest on a handful of points, so each is reported with
    its interval and p-value, never alone.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    nan = float("nan")
    if n < 3:
        return Correlation(nan, nan, nan, nan, n)
    rho = spearman(x, y)
    if not np.isfinite(rho):
        return Correlation(rho, nan, nan, nan, n)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(n_boot, n))
    boot = _rows_spearman(_ranks(x[picks]), _ranks(y[picks]))
    low, high = percentile_interval(boot, level)
    ry = _ranks(y)
    permuted = np.argsort(rng.random((n_perm, n)), axis=1)
    null = _rows_spearman(np.broadcast_to(_ranks(x), (n_perm, n)).copy(), ry[permuted])
    p = (1 + int((np.abs(null) >= abs(rho) - 1e-12).sum())) / (n_perm + 1)
    return Correlation(float(rho), float(low), float(high), float(p), n)
