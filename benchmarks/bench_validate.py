"""`cm manifest --validate` probing at corpus scale, against a bare ``soundfile.info`` loop: time and peak RSS per size.

Writes the largest size's worth of short 16 kHz FLAC files once into a work folder (reused
by a later run given the same ``--workdir``), then, in a fresh process per size and method,
times (a) a plain loop of ``soundfile.info`` over the first N files (the baseline, one
thread) and (b) ``probe_manifest_audio`` (what ``--validate`` runs) with 1 and 2 workers,
and reports each one's peak RSS and RSS once the libraries are imported. Prints the ratios
to the baseline and the growth between sizes.

Usage: ``python benchmarks/bench_validate.py [--sizes 1000,10000,30000] [--workdir DIR]``
(ASVspoof 5 train: ``--sizes 1000,10000,182357``).
``--smoke``: 200 files. Prints numbers; asserts nothing; run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _measure import growth, measure, parse_sized

IMPORTS = ("numpy", "pandas", "soundfile", "cm_cli.data.manifests")
METHODS = ("bare", "workers1", "workers2")


def _name(i: int) -> str:
    return f"u{i:07d}.flac"


def write_files(root: Path, n: int) -> None:
    """``n`` one-second FLAC files ``u0000000.flac`` ... under ``root``; those already there are kept."""
    import numpy as np
    import soundfile as sf

    root.mkdir(parents=True, exist_ok=True)
    first = root / _name(0)
    if not first.is_file():
        sf.write(first, (0.1 * np.sin(np.arange(16000) / 9.0)).astype(np.float32), 16000)
    data = first.read_bytes()  # the same bytes in every file: probing reads headers, encoding them all is waste
    for i in range(1, n):
        path = root / _name(i)
        if not path.is_file():
            path.write_bytes(data)


def bare_info(root: str, n: int) -> int:
    import soundfile as sf

    for i in range(n):
        sf.info(str(Path(root) / _name(i)))
    return n


def probe(root: str, n: int, workers: int) -> int:
    import pandas as pd

    from cm_cli.data.manifests import probe_manifest_audio

    df = pd.DataFrame({"path": [_name(i) for i in range(n)]})
    return len(probe_manifest_audio(df, data_root=Path(root), workers=workers))


def run_size(root: Path, n: int) -> dict:
    stages = {
        "bare": measure(bare_info, str(root), n, imports=IMPORTS),
        "workers1": measure(probe, str(root), n, 1, imports=IMPORTS),
        "workers2": measure(probe, str(root), n, 2, imports=IMPORTS),
    }
    return {
        "files": n,
        **{
            f"{k}_{v}": m[v if v != "s" else "seconds"]
            for k, m in stages.items()
            for v in ("s", "peak_rss_mib", "base_rss_mib")
        },
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    args, sizes = parse_sized(parser, argv, sizes="1000,10000,30000", smoke="200", unit="files")
    rows = []
    with tempfile.TemporaryDirectory(prefix="cm_bench_validate_") as tmp:
        root = (args.workdir or Path(tmp)) / "flac"
        write_files(root, max(sizes))
        print(
            f"{'files':>9} "
            + " ".join(f"{m + ' s':>12} {m + ' MiB':>13}" for m in METHODS)
            + "  (MiB: peak RSS of the process; bare = soundfile.info loop, workersK = probe_manifest_audio)"
        )
        for n in sizes:
            r = run_size(root, n)
            rows.append(r)
            print(f"{n:9d} " + " ".join(f"{r[m + '_s']:12.2f} {r[m + '_peak_rss_mib']:13.0f}" for m in METHODS))
    for r in rows:
        print(
            f"{r['files']} files: --workers 1 {r['workers1_s'] / r['bare_s']:.2f}x, --workers 2 "
            f"{r['workers2_s'] / r['bare_s']:.2f}x a bare soundfile.info loop ({r['bare_s']:.2f} s)"
        )
    print("\n".join(growth(rows, "files", METHODS, "files")))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
