"""Start-up time of `cm --help` against a bare `python -c "import typer"`, medians of N runs.

    python benchmarks/bench_help.py [N]
Goal: `cm --help` median under 0.5 s on the 2-core CI machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    base = median_seconds([sys.executable, "-c", "import typer"], n)
    help_ = median_seconds([sys.executable, "-m", "cm_cli", "--help"], n)
    print(f"python -c 'import typer'  median {base * 1000:7.1f} ms")
    print(f"cm --help                 median {help_ * 1000:7.1f} ms  ({help_ / base:.2f}x the bare import)")
    print(f"goal: under 500 ms -> {'met' if help_ < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
