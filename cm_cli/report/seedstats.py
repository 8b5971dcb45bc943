"""Seed aggregation and paired tests between systems evaluated on the same trials.

One seed of a method says little: the report shows mean ± sd over seed replicates
and, for each pair of methods, a test of the difference of their mean EERs on the
trials both scored (``metrics.stats.seed_test``: a t test on the seed means whose
variance adds the trial-sampling part the seeds share, from one cluster bootstrap
drawn once for every system, with Satterthwaite df; docs/metrics.md shows its
calibration). Everything here is pure: arrays in, numbers out; the resampling and
the EER are those of ``cm_cli.metrics.stats``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from cm_cli.core.errors import CmError
from cm_cli.metrics.stats import bootstrap_eers, holm

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "mean_sd",
    "side_mask",
    "PairedTest",
    "paired_test",
    "holm",
    "adjust_holm",
    "family_label",
    "holm_family",
    "compare_groups",
    "format_p",
    "verdict",
]


def mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample sd (ddof 1; NaN for one value) and count of the finite values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(finite)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(finite) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else math.nan
    return mean, sd, n


def side_mask(mask: "np.ndarray", is_bona: "np.ndarray") -> "np.ndarray":
    """The trials of one side of an OOD gap: the side's own bona fide if it has any, else all bona fide
    (the rule of ``cm_cli.metrics.ood``)."""
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    return mask if (mask & is_bona).any() else (mask | is_bona)


@dataclass
class PairedTest:
    """B − A on the same trials: difference of mean metric over seeds (points), its CI, p-value and effect size."""

    a: str
    b: str
    metric: str  # what is compared (lower is better): "EER", "unseen-codec gap", ...
    eer_a: float  # mean over seeds of the metric, points
    eer_b: float
    n_seeds_a: int
    n_seeds_b: int
    n_trials: int
    unit: str  # what was resampled for the trial-sampling term
    difference: float  # eer_b - eer_a, points
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    relative: float  # difference / eer_a
    hedges_g: float  # difference / pooled seed sd, small-sample corrected (NaN with < 2 seeds on a side)
    se_seeds: float  # the two parts of the standard error (points)
    se_trials: float
    df: float  # Satterthwaite degrees of freedom
    n_boot: int
    level: float
    family: str = ""  # the Holm family p_holm was adjusted over

    def to_dict(self) -> dict:
        return asdict(self)


def paired_test(
    eers_a: Sequence[float],
    eers_b: Sequence[float],
    boot_a: "np.ndarray",
    boot_b: "np.ndarray",
    *,
    a: str = "A",
    b: str = "B",
    n_trials: int = 0,
    unit: str = "trial",
    n_clusters: int | None = None,
    level: float = 0.95,
    metric: str = "EER",
    scale: float = 100.0,
) -> PairedTest:
    """Test of mean(EER_B) − mean(EER_A) (fractions in, points out; any lower-is-better ``metric`` with its
    ``scale`` to points, e.g. an OOD gap already in points with scale 1).

    ``boot_a`` (B, k_a) and ``boot_b`` (B, k_b) hold each seed's value under the same trial
    resamples (``metrics.stats.bootstrap_eers``); see ``metrics.stats.seed_test``.
    """
    import numpy as np

    from cm_cli.metrics.stats import hedges_g, seed_test

    eers_a, eers_b = scale * np.asarray(eers_a, float), scale * np.asarray(eers_b, float)
    boot_a, boot_b = scale * np.asarray(boot_a, float), scale * np.asarray(boot_b, float)
    finite = np.isfinite(boot_a).all(axis=1) & np.isfinite(boot_b).all(axis=1)
    if boot_a.shape[0] and not finite.any():
        raise CmError(f"no bootstrap replicate of {metric} had both classes on every side")
    result = seed_test(eers_a, eers_b, boot_a, boot_b, n_clusters=n_clusters or max(n_trials, 2), level=level)
    mean_a = float(eers_a.mean())
    return PairedTest(
        a=a,
        b=b,
        metric=metric,
        eer_a=mean_a,
        eer_b=float(eers_b.mean()),
        n_seeds_a=len(eers_a),
        n_seeds_b=len(eers_b),
        n_trials=int(n_trials),
        unit=unit,
        difference=result.difference,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        p_value=result.p_value,
        p_holm=result.p_value,
        relative=result.difference / abs(mean_a) if mean_a != 0 else math.nan,
        hedges_g=hedges_g(eers_a, eers_b),
        se_seeds=result.se_seeds,
        se_trials=result.se_trials,
        df=result.df,
        n_boot=int(finite.sum()),
        level=level,
    )


def compare_groups(
    groups: Mapping[str, Sequence["np.ndarray"]],
    is_bona: "np.ndarray",
    clusters: "np.ndarray | None" = None,
    *,
    unit: str = "trial",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    gap: tuple["np.ndarray", "np.ndarray"] | None = None,
    metric: str | None = None,
) -> list[PairedTest]:
    """Every pair of groups (label -> one score array per seed, all on the same trials), Holm-adjusted as one
    family (``adjust_holm`` re-adjusts a larger family, e.g. every test of a report section).

    Compares EER, or with ``gap = (in_mask, out_mask)`` the OOD gap 100 (EER(out) − EER(in)) in points,
    each side by ``side_mask``.
    """
    import numpy as np

    from cm_cli.metrics.clusters import cluster_codes
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
    n_clusters = cluster_codes(clusters)[1] if clusters is not None else len(is_bona)
    tests = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            tests.append(
                paired_test(
                    point[a],
                    point[b],
                    boot[:, columns[a]],
                    boot[:, columns[b]],
                    a=a,
                    b=b,
                    n_trials=len(is_bona),
                    unit=unit,
                    n_clusters=n_clusters,
                    level=level,
                    metric=name,
                    scale=scale,
                )
            )
    return adjust_holm(tests, f"the {len(tests)} {name} comparisons")


def adjust_holm(tests: Sequence[PairedTest], family: str) -> list[PairedTest]:
    """Holm-adjust ``tests`` as one family, named in each test's ``family``."""
    for test, adjusted in zip(tests, holm([t.p_value for t in tests])):
        test.p_holm, test.family = adjusted, family
    return list(tests)


def family_label(tests: Sequence[PairedTest], scope: str) -> str:
    """The name of one Holm family as the report and the demo summary print it: its size and what it holds."""
    counts: dict[str, int] = {}
    for test in tests:
        counts[test.metric] = counts.get(test.metric, 0) + 1
    systems = {t.a for t in tests} | {t.b for t in tests}
    held = ", ".join(f"{n} {metric}" for metric, n in counts.items())
    return (
        f"one Holm family of {len(tests)} seed-level comparisons on {scope} "
        f"({held}; every pair of {len(systems)} systems)"
    )


def holm_family(tests: Sequence[PairedTest], scope: str) -> list[PairedTest]:
    """Every seed-level comparison of one study (all pairs, every metric) Holm-adjusted together.

    Why one family: a reader scans every comparison a report prints for the small p-values, so the
    error rate to control is that of all of them at once, not of each metric's table separately.
    """
    return adjust_holm(list(tests), family_label(tests, scope))


def format_p(p: float) -> str:
    """A t-test p-value as shown: three significant digits, or an upper bound below 0.001."""
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def verdict(test: PairedTest, *, alpha: float = 0.05) -> str:
    """One plain sentence on what the evidence supports."""
    seeds = f"{test.n_seeds_a} seed(s) of {test.a}, {test.n_seeds_b} of {test.b}"

    def shown(p: float) -> str:
        text = format_p(p)
        return text if text.startswith("<") else f"= {text}"

    numbers = (
        f"{test.b} − {test.a} = {test.difference:+.2f} points of {test.metric} "
        f"({100 * test.level:.0f}% CI [{test.ci_low:+.2f}, {test.ci_high:+.2f}], p {shown(test.p_value)}"
        + (f", Holm-adjusted p {shown(test.p_holm)}" if test.p_holm != test.p_value else "")
        + f"; {seeds}, {test.n_trials} shared trials resampled by {test.unit})"
    )
    one_seed = (
        " With a single seed on a side, seed-to-seed variation is not in the interval."
        if test.n_seeds_a == 1 or test.n_seeds_b == 1
        else ""
    )
    if test.p_holm < alpha:
        better, worse = (test.b, test.a) if test.difference < 0 else (test.a, test.b)
        return (
            f"{numbers}: the evidence supports a real difference, {better} has a lower {test.metric} than {worse} "
            f"on these trials.{one_seed}"
        )
    return (
        f"{numbers}: the evidence does not support a difference between {test.a} and {test.b} at the "
        f"{100 * alpha:.0f}% level (which does not show they are equal).{one_seed}"
    )
