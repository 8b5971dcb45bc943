"""Benchmark `cm demo`: the whole study from nothing, then a rerun that reuses everything.

Usage: python benchmarks/bench_demo.py [--size small] [--seeds 3] [--workdir DIR]

Runs `cm --json demo --out DIR/demo --size SIZE --seeds N` twice in a fresh data root
(whole CLI process timed, corpus build included) and prints, for each run, the
wall-clock seconds, the CPU seconds of the process tree, and the ten slowest steps.
Goals (issue 17, 2-core CPU): the whole demo under 300 s, the rerun under 30 s.
CPU seconds are printed because wall time on a shared machine measures the neighbours too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(workdir: Path, size: str, seeds: int) -> tuple[float, float, dict]:
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        CM_DATA_ROOT=str(workdir / "data"),
        CM_CACHE_DIR=str(workdir / "cache"),
        CM_RUNS_DIR=str(workdir / "runs"),
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cm_cli",
            "--json",
            "demo",
            "--out",
            str(workdir / "demo"),
            "--size",
            size,
            "--seeds",
            str(seeds),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"cm demo failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_demo_"))
    print(f"cm demo --size {args.size} --seeds {args.seeds} in {workdir} ({os.cpu_count()} CPUs)")
    for label, goal in (("first run", 300.0), ("rerun", 30.0)):
        wall, cpu, payload = run_once(workdir, args.size, args.seeds)
        verdict = "ok" if wall <= goal else "OVER GOAL"
        print(f"{label:<10} wall {wall:7.1f} s  cpu {cpu:7.1f} s  (goal {goal:.0f} s wall: {verdict})")
        for step in sorted(payload["steps"], key=lambda s: -s["seconds"])[:10]:
            print(f"    {step['seconds']:7.1f} s  {step['name']}{'  (reused)' if step['skipped'] else ''}")
    text = payload.get("summary", {}).get("text")
    if text:
        print("\n" + text)


if __name__ == "__main__":
    main()
