"""Calibration of the report's seed comparison: false-positive rate and power against Welch's t.

Runs the planted studies of ``tests/metrics/seedsim.py`` (two methods, k seeds each, the
same trials of K speakers; see that module for the score model) through
``cm_cli.metrics.stats.seed_test`` and through Welch's t on the seed EERs, and prints the
rejection rate at alpha = 0.05 per number of seeds and seed-to-seed sd (in units of the
trial noise): under the null (no effect, and a speaker-by-method interaction that a new
set of speakers would not show) and under a planted effect. docs/metrics.md shows the table.

    python benchmarks/bench_seedstats.py [--studies 1000] [--boot 100] [--json OUT] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000, help="simulated studies per cell")
    parser.add_argument("--boot", type=int, default=100, help="cluster-bootstrap replicates per study")
    parser.add_argument("--effect", type=float, default=0.8, help="planted gain in bona fide separation")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="20 studies, 10 replicates: checks it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.studies, args.boot = 20, 10
    sys.path.insert(0, str(ROOT))
    from tests.metrics.seedsim import rejection_table

    start = time.perf_counter()
    rows = []
    for what, extra in (
        ("null", {}),
        ("null, speaker x method", {"interaction_sd": 0.6}),
        ("effect", {"effect": args.effect}),
    ):
        for row in rejection_table(args.studies, n_boot=args.boot, **extra):
            rows.append({"scenario": what, **row})
    print(f"{'scenario':<24} {'seeds':>5} {'seed sd':>7} {'studies':>7} {'seed test':>9} {'Welch t':>8}")
    for r in rows:
        print(
            f"{r['scenario']:<24} {r['seeds']:5d} {r['seed_sd']:7.2f} {r['n_studies']:7d} "
            f"{r['seed_test']:9.3f} {r['welch']:8.3f}"
        )
    print(f"({time.perf_counter() - start:.1f} s; rejection rate at alpha 0.05)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
