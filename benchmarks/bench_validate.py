"""`cm manifest --validate` probing against a bare ``soundfile.info`` loop over the same files.

Writes N short FLAC files, then times (a) a plain loop of ``soundfile.info`` (baseline, one
thread) and (b) ``probe_manifest_audio`` with one and with two workers. Prints the ratios.
Usage: ``python benchmarks/bench_validate.py [--n 3000]``; run on a quiet machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from cm_cli.data.manifests import probe_manifest_audio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wave = (0.1 * np.sin(np.arange(16000) / 9.0)).astype(np.float32)
        names = [f"u{i:06d}.flac" for i in range(args.n)]
        for name in names:
            sf.write(root / name, wave, 16000)
        df = pd.DataFrame({"path": names})
        start = time.perf_counter()
        for name in names:
            sf.info(str(root / name))
        base = time.perf_counter() - start
        for workers in (1, 2):
            start = time.perf_counter()
            probe_manifest_audio(df, data_root=root, workers=workers)
            t = time.perf_counter() - start
            print(f"{args.n} files, --workers {workers}: {t:.2f} s = {t / base:.2f}x a bare soundfile.info loop ({base:.2f} s)")


if __name__ == "__main__":
    main()
