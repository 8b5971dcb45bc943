"""Small resampling statistics shared by the analyses: rank correlations and bootstrap CIs.

Correlations across attacks rest on a handful of points, so every one is reported
with a bootstrap percentile interval and a permutation p-value, never alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["Correlation", "spearman", "spearman_test", "cluster_bootstrap_mean", "paired_cluster_bootstrap"]


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


def _ranks(values: "np.ndarray") -> "np.ndarray":
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def spearman(x: "np.ndarray", y: "np.ndarray") -> float:
    """Spearman rho (average ranks for ties); NaN when either side is constant."""
    import numpy as np

    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def _rows_spearman(rx: "np.ndarray", ry: "np.ndarray") -> "np.ndarray":
    import numpy as np

    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(axis=1) / denominator, np.nan)


def spearman_test(x: "np.ndarray", y: "np.ndarray", *, n_boot: int = 2000, n_perm: int = 5000,
                  seed: int = 0, level: float = 0.95) -> Correlation:
    """Spearman rho of paired values, NaN pairs removed; CI by resampling pairs, p by permuting y."""
    import numpy as np

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
    boot = boot[np.isfinite(boot)]
    alpha = (1 - level) / 2
    low, high = (np.quantile(boot, [alpha, 1 - alpha]) if boot.size else (nan, nan))
    ry = _ranks(y)
    permuted = np.argsort(rng.random((n_perm, n)), axis=1)
    null = _rows_spearman(np.broadcast_to(_ranks(x), (n_perm, n)).copy(), ry[permuted])
    p = (1 + int((np.abs(null) >= abs(rho) - 1e-12).sum())) / (n_perm + 1)
    return Correlation(float(rho), float(low), float(high), float(p), n)


def cluster_bootstrap_mean(values: "np.ndarray", clusters: "np.ndarray", *, n_boot: int = 1000, seed: int = 0,
                           level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the mean of ``values`` resampling whole clusters (e.g. speakers)."""
    low, high, _ = paired_cluster_bootstrap(values, None, clusters, n_boot=n_boot, seed=seed, level=level)
    return low, high


def paired_cluster_bootstrap(a: "np.ndarray", b: "np.ndarray | None", clusters: "np.ndarray", *, n_boot: int = 1000,
                             seed: int = 0, level: float = 0.95) -> tuple[float, float, "np.ndarray"]:
    """CI of mean(a) (or of mean(b) - mean(a) when ``b`` is given) over cluster resamples; also the draws."""
    import numpy as np

    a = np.asarray(a, float)
    codes, clusters_index = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    k = len(codes)
    count = np.bincount(clusters_index, minlength=k).astype(float)
    sum_a = np.bincount(clusters_index, weights=a, minlength=k)
    sum_b = np.bincount(clusters_index, weights=np.asarray(b, float), minlength=k) if b is not None else None
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, k, size=k), minlength=k) for _ in range(n_boot)]).astype(float)
    n = weights @ count
    draws = (weights @ sum_a) / n
    if sum_b is not None:
        draws = (weights @ sum_b) / n - draws
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return float(low), float(high), draws
