"""Seed aggregation and paired tests between systems evaluated on the same trials.

One seed of a method says little: the report shows mean ± sd over seed replicates
and, for each pair of methods, a paired bootstrap of the difference of their mean
EERs on the trials both scored. Each bootstrap replicate draws the trials (whole
clusters, e.g. speakers) once for both methods, so the comparison is paired, and
draws each method's seeds with replacement, so seed-to-seed spread enters the
interval too. The p-value tests "no difference" by the shifted bootstrap
distribution. Everything here is pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["mean_sd", "weighted_eers", "bootstrap_eers", "side_mask", "PairedTest", "paired_test", "holm", "compare_groups",
           "verdict"]


def mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample sd (ddof 1; NaN for one value) and count of the finite values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(finite)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(finite) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else math.nan
    return mean, sd, n


def weighted_eers(sorted_bona: "np.ndarray", weights: "np.ndarray") -> "np.ndarray":
    """EER per row of ``weights`` (B, N) over trials sorted by score (``sorted_bona``: class of each).

    Weights are trial multiplicities (bootstrap counts); with unit weights this is the
    official DET-curve EER (FRR = cumulative bona fide share, FAR = remaining spoof share,
    EER = mean of the two where they are closest).
    """
    import numpy as np

    bona = sorted_bona.astype(bool)
    wb = np.cumsum(weights * bona, axis=1)
    ws = np.cumsum(weights * ~bona, axis=1)
    nb, ns = wb[:, -1:], ws[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        frr = np.concatenate([np.zeros_like(nb), wb / nb], axis=1)
        far = np.concatenate([np.ones_like(ns), 1.0 - ws / ns], axis=1)
    index = np.argmin(np.abs(frr - far), axis=1)
    rows = np.arange(len(index))
    return (frr[rows, index] + far[rows, index]) / 2


def bootstrap_eers(score_sets: Sequence["np.ndarray"], is_bona: "np.ndarray", clusters: "np.ndarray | None", *,
                   n_boot: int = 1000, seed: int = 0, max_cells: int = 4_000_000,
                   subsets: Sequence["np.ndarray"] | None = None) -> "np.ndarray":
    """EER of every score set (all on the same N trials) under the same ``n_boot`` cluster resamples: (B, S),
    or (B, S, M) with ``subsets`` (M boolean masks: the EER of each subset of the trials, same resamples).

    A resample draws K clusters with replacement out of K (each trial its own cluster when
    ``clusters`` is None); a trial's weight is how often its cluster was drawn.
    """
    import numpy as np

    is_bona = np.asarray(is_bona, dtype=bool)
    n = len(is_bona)
    if n == 0 or is_bona.all() or not is_bona.any():
        raise CmError("a paired bootstrap needs bona fide and spoof trials in common")
    if clusters is None:
        cluster_index, k = np.arange(n), n
    else:
        _, cluster_index = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
        k = int(cluster_index.max()) + 1
    orders = [np.argsort(np.asarray(s, dtype=np.float64), kind="mergesort") for s in score_sets]
    masks = [np.ones(n, dtype=bool)] if subsets is None else [np.asarray(m, dtype=bool) for m in subsets]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, len(score_sets), len(masks)))
    chunk = max(1, max_cells // max(n, 1))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        counts = np.stack([np.bincount(rng.integers(0, k, size=k), minlength=k) for _ in range(b)]).astype(np.float64)
        weights = counts[:, cluster_index]
        for j, order in enumerate(orders):
            for m, mask in enumerate(masks):
                out[start:start + b, j, m] = weighted_eers(is_bona[order], weights[:, order] * mask[order])
    return out[:, :, 0] if subsets is None else out


def side_mask(mask: "np.ndarray", is_bona: "np.ndarray") -> "np.ndarray":
    """The trials of one side of an OOD gap: the side's own bona fide if it has any, else all bona fide
    (the rule of ``cm_cli.metrics.ood``)."""
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    return mask if (mask & is_bona).any() else (mask | is_bona)


@dataclass
class PairedTest:
    """B − A on the same trials: difference of mean EERs (points), its CI, p-value and effect sizes."""

    a: str
    b: str
    metric: str  # what is compared (lower is better): "EER", "unseen-codec gap", ...
    eer_a: float  # mean over seeds of the metric, points
    eer_b: float
    n_seeds_a: int
    n_seeds_b: int
    n_trials: int
    unit: str  # what was resampled
    difference: float  # eer_b - eer_a, points
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    relative: float  # difference / eer_a
    cohens_d: float  # difference / pooled seed sd (NaN with fewer than 2 seeds on either side)
    n_boot: int
    level: float

    def to_dict(self) -> dict:
        return asdict(self)


def paired_test(eers_a: Sequence[float], eers_b: Sequence[float], boot_a: "np.ndarray", boot_b: "np.ndarray", *,
                a: str = "A", b: str = "B", n_trials: int = 0, unit: str = "trial", seed: int = 0,
                level: float = 0.95, metric: str = "EER", scale: float = 100.0) -> PairedTest:
    """Bootstrap test of mean(EER_B) − mean(EER_A) (fractions in, points out; any lower-is-better
    ``metric`` with its ``scale`` to points, e.g. an OOD gap already in points with scale 1).

    ``boot_a`` (B, k_a) and ``boot_b`` (B, k_b) hold each seed's EER under the same trial
    resamples; each replicate also draws k seeds with replacement per side. CI: percentile;
    p: two-sided, share of replicates whose centred difference is at least as far from 0
    as the observed one (+1 smoothing), so identical systems get p = 1.
    """
    import numpy as np

    eers_a, eers_b = np.asarray(eers_a, float), np.asarray(eers_b, float)
    boot_a, boot_b = np.asarray(boot_a, float), np.asarray(boot_b, float)
    n_boot = boot_a.shape[0]
    rng = np.random.default_rng(seed + 7)

    def seed_means(boot: "np.ndarray") -> "np.ndarray":
        k = boot.shape[1]
        if k == 1:
            return boot[:, 0]
        picks = rng.integers(0, k, size=(n_boot, k))
        return np.take_along_axis(boot, picks, axis=1).mean(axis=1)

    observed = scale * (eers_b.mean() - eers_a.mean())
    draws = scale * (seed_means(boot_b) - seed_means(boot_a))
    draws = draws[np.isfinite(draws)]  # a resample without bona fide or spoof trials on a side has no EER
    if draws.size == 0:
        raise CmError(f"no bootstrap replicate of {metric} had both classes on every side")
    n_boot = int(draws.size)
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    extreme = int(np.count_nonzero(np.abs(draws - observed) >= abs(observed) - 1e-12))
    p = min(1.0, (1 + extreme) / (n_boot + 1))
    _, sd_a, _ = mean_sd(scale * eers_a)
    _, sd_b, _ = mean_sd(scale * eers_b)
    if len(eers_a) > 1 and len(eers_b) > 1:
        pooled = math.sqrt(((len(eers_a) - 1) * sd_a ** 2 + (len(eers_b) - 1) * sd_b ** 2)
                           / (len(eers_a) + len(eers_b) - 2))
        d = observed / pooled if pooled > 0 else math.nan
    else:
        d = math.nan
    mean_a = scale * float(eers_a.mean())
    return PairedTest(a=a, b=b, metric=metric, eer_a=mean_a, eer_b=scale * float(eers_b.mean()), n_seeds_a=len(eers_a),
                      n_seeds_b=len(eers_b), n_trials=int(n_trials), unit=unit, difference=float(observed),
                      ci_low=float(low), ci_high=float(high), p_value=float(p), p_holm=float(p),
                      relative=float(observed / abs(mean_a)) if mean_a != 0 else math.nan, cohens_d=float(d),
                      n_boot=int(n_boot), level=level)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def compare_groups(groups: Mapping[str, Sequence["np.ndarray"]], is_bona: "np.ndarray",
                   clusters: "np.ndarray | None" = None, *, unit: str = "trial", n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95, gap: tuple["np.ndarray", "np.ndarray"] | None = None,
                   metric: str | None = None) -> list[PairedTest]:
    """Every pair of groups (label -> one score array per seed, all on the same trials), Holm-adjusted.

    Compares EER, or with ``gap = (in_mask, out_mask)`` the OOD gap 100 (EER(out) − EER(in)) in points,
    each side by ``side_mask``.
    """
    import numpy as np

    from cm_cli.metrics.summary import eer

    labels = list(groups)
    if len(labels) < 2:
        return []
    is_bona = np.asarray(is_bona, dtype=bool)
    flat = [(label, np.asarray(s, dtype=np.float64)) for label in labels for s in groups[label]]
    columns = {label: [j for j, (lab, _) in enumerate(flat) if lab == label] for label in labels}
    if gap is None:
        boot = bootstrap_eers([s for _, s in flat], is_bona, clusters, n_boot=n_boot, seed=seed)
        point = {label: [eer(flat[j][1][is_bona], flat[j][1][~is_bona]) for j in columns[label]] for label in labels}
        scale, name = 100.0, metric or "EER"
    else:
        sides = [side_mask(m, is_bona) for m in gap]
        for side, what in zip(sides, ("in-domain", "out-of-domain")):
            if not (side & ~is_bona).any():
                raise CmError(f"no {what} spoof trials for the gap test")
        boot3 = bootstrap_eers([s for _, s in flat], is_bona, clusters, n_boot=n_boot, seed=seed, subsets=sides)
        boot = 100 * (boot3[:, :, 1] - boot3[:, :, 0])

        def gap_of(scores: "np.ndarray") -> float:
            e_in = eer(scores[sides[0] & is_bona], scores[sides[0] & ~is_bona])
            e_out = eer(scores[sides[1] & is_bona], scores[sides[1] & ~is_bona])
            return 100 * (e_out - e_in)

        point = {label: [gap_of(flat[j][1]) for j in columns[label]] for label in labels}
        scale, name = 1.0, metric or "OOD gap"
    tests = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            tests.append(paired_test(point[a], point[b], boot[:, columns[a]], boot[:, columns[b]], a=a, b=b,
                                     n_trials=len(is_bona), unit=unit, seed=seed, level=level, metric=name,
                                     scale=scale))
    for test, adjusted in zip(tests, holm([t.p_value for t in tests])):
        test.p_holm = adjusted
    return tests


def verdict(test: PairedTest, *, alpha: float = 0.05) -> str:
    """One plain sentence on what the evidence supports."""
    seeds = (f"{test.n_seeds_a} seed(s) of {test.a}, {test.n_seeds_b} of {test.b}")
    def shown(p: float) -> str:
        return f"< {1 / test.n_boot:.2g}" if p <= 1 / (test.n_boot + 1) + 1e-15 else f"= {p:.3g}"

    numbers = (f"{test.b} − {test.a} = {test.difference:+.2f} points of {test.metric} "
               f"({100 * test.level:.0f}% CI [{test.ci_low:+.2f}, {test.ci_high:+.2f}], p {shown(test.p_value)}"
               + (f", Holm-adjusted p {shown(test.p_holm)}" if test.p_holm != test.p_value else "")
               + f"; {seeds}, {test.n_trials} shared trials resampled by {test.unit})")
    one_seed = (" With a single seed on a side, seed-to-seed variation is not in the interval."
                if test.n_seeds_a == 1 or test.n_seeds_b == 1 else "")
    if test.p_holm < alpha:
        better, worse = (test.b, test.a) if test.difference < 0 else (test.a, test.b)
        return (f"{numbers}: the evidence supports a real difference, {better} has a lower {test.metric} than {worse} "
                f"on these trials.{one_seed}")
    return (f"{numbers}: the evidence does not support a difference between {test.a} and {test.b} at the "
            f"{100 * alpha:.0f}% level (which does not show they are equal).{one_seed}")
