"""Tandem metrics at corpus size: min t-DCF on 181,566 trials (ASVspoof 2021 LA eval) and t-EER.

Prints seconds and the ratio to a baseline measured in the same run (one ``np.argsort`` of
the same scores with mergesort, the floor of any exact DET-curve metric). Run on a quiet
machine: ``python benchmarks/bench_tandem.py``.
"""

from __future__ import annotations

import time

import numpy as np

from cm_cli.metrics.sasv import t_eer
from cm_cli.metrics.tdcf import asv_error_rates, min_tdcf


def best_of(fn, repeat=5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    n_bona, n_total = 14816, 181566
    bona, spoof = rng.normal(2, 1, n_bona), rng.normal(0, 1, n_total - n_bona)
    scores = np.concatenate([bona, spoof])
    rates = asv_error_rates(rng.normal(3, 1, 20000), rng.normal(0, 1, 20000), rng.normal(1, 1, 20000))
    base = best_of(lambda: np.argsort(scores, kind="mergesort"))
    t = best_of(lambda: min_tdcf(bona, spoof, rates))
    print(f"min t-DCF, {n_total} trials: {t:.3f} s ({t / base:.1f}x one mergesort of the scores, {base:.3f} s)")
    keys = np.array(["target"] * 60000 + ["nontarget"] * 60000 + ["spoof"] * 61566)
    asv = np.select(
        [keys == "target", keys == "nontarget"],
        [rng.normal(3, 1, keys.size), rng.normal(0, 1, keys.size)],
        rng.normal(1, 1, keys.size),
    )
    cm = np.where(keys == "spoof", rng.normal(0, 1, keys.size), rng.normal(2, 1, keys.size))
    t2 = best_of(lambda: t_eer(cm, asv, keys), repeat=3)
    print(f"t-EER, {keys.size} trials: {t2:.3f} s ({t2 / base:.1f}x the mergesort baseline)")


if __name__ == "__main__":
    main()
