"""Cost of running `cm degrade --manifest ... -j 1` jobs in one worker process instead of in-process.

Usage: python benchmarks/bench_degrade_isolation.py [--n 40] [--chain alaw] [--repeats 3]

-j 1 corpus jobs run in a one-worker process pool so that a native abort inside a codec
(LAME's assertion, exit 134) is one failure entry, not the end of the job (issue 29 item 3).
This times the same N utterances (16 kHz, 2 s) both ways, in the same run, fresh output
directories, after one warm-up, alternated, best of --repeats: the pool (what -j 1 does)
and in-process (what the neural-codec path does), and prints the extra milliseconds per
utterance. A cheap chain (alaw) shows the overhead at its most visible.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_manifest(root: Path, n: int) -> Path:
    import numpy as np
    import pandas as pd
    import soundfile as sf

    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    rows = []
    for i in range(n):
        path = root / "audio" / f"U_{i:04d}.flac"
        sf.write(path, (0.1 * rng.standard_normal(32000)).astype("float32"), 16000)
        rows.append(dict(utt_id=f"U_{i:04d}", path=str(path), label="bonafide", speaker="S1", split="eval"))
    manifest = root / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    return manifest


def timed(manifest: Path, out: Path, chain: str, *, in_process: bool) -> float:
    import cm_cli.degrade.neural_batch as neural_batch
    from cm_cli.degrade.corpus import degrade_manifest

    real = neural_batch.has_neural_step
    if in_process:  # the neural-codec branch: jobs run in this process
        neural_batch.has_neural_step = lambda specs: True
    try:
        start = time.perf_counter()
        result = degrade_manifest(manifest, out, specs=[chain], workers=1)
        elapsed = time.perf_counter() - start
    finally:
        neural_batch.has_neural_step = real
    assert result.n_written and not result.n_failed
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--chain", default="alaw")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = make_manifest(root / "src", args.n)
        timed(manifest, root / "warm", args.chain, in_process=True)  # imports and codec set-up, paid once
        runs = {True: [], False: []}
        for k in range(args.repeats):  # alternated, best of each
            for in_process in (True, False):
                runs[in_process].append(timed(manifest, root / f"r{k}{in_process}", args.chain, in_process=in_process))
        inproc, pool = min(runs[True]), min(runs[False])
    extra = (pool - inproc) / args.n * 1000
    print(f"{args.n} utterances, chain {args.chain}: in-process {inproc:.2f} s, one-worker pool {pool:.2f} s")
    print(f"extra per utterance: {extra:.2f} ms ({pool / inproc:.2f}x)")


if __name__ == "__main__":
    main()
