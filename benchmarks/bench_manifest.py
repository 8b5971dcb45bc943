"""`cm manifest` parse at corpus scale: time and peak RSS per protocol size, against a bare pandas parse.

Writes a synthetic ASVspoof 5 eval protocol of N rows (ten whitespace-separated fields, as the
real one), then in a fresh process per size and method measures wall time and peak RSS of
(a) ``prepare_asvspoof5`` (what `cm manifest` runs) and (b) ``pandas.read_csv`` of the same
file (the baseline). Usage: ``python benchmarks/bench_manifest.py [--sizes 1000,100000,1004081]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
method, root = sys.argv[1], Path(sys.argv[2])
start = time.perf_counter()
if method == "cm":
    from cm_cli.data.corpora.asvspoof5 import prepare_asvspoof5
    n = len(prepare_asvspoof5(root, splits=("eval",)))
else:
    import pandas as pd
    n = len(pd.read_csv(root / "ASVspoof5.eval.track_1.tsv", sep=r"\s+", header=None, dtype=str))
seconds = time.perf_counter() - start
print(json.dumps({"n": n, "seconds": seconds, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_protocol(path: Path, n: int) -> None:
    codecs = ["-"] + [f"C{i:02d}" for i in range(1, 12)]
    with path.open("w") as handle:
        for i in range(n):
            codec = codecs[i % len(codecs)]
            q = "0" if codec == "-" else str(1 + i % 5)
            seed = "-" if codec == "-" else f"E_{i // 3:010d}"
            key = "bonafide" if i % 7 == 0 else "spoof"
            attack = "bonafide" if key == "bonafide" else f"A{17 + i % 16}"
            handle.write(f"E_{i % 737:04d} E_{i:010d} {'F' if i % 2 else 'M'} {codec} {q} {seed} AC{1 + i % 3} {attack} {key} -\n")


def run(method: str, root: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, method, str(root)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000,1004081")
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_protocol(root / "ASVspoof5.eval.track_1.tsv", n)
            cm, base = run("cm", root), run("pandas", root)
            print(f"{n:>9} rows: cm {cm['seconds']:6.2f} s {cm['rss_mib']:7.0f} MiB | bare pandas "
                  f"{base['seconds']:6.2f} s {base['rss_mib']:7.0f} MiB | ratio {cm['seconds'] / base['seconds']:.2f}x time, "
                  f"{cm['rss_mib'] / base['rss_mib']:.2f}x memory")


if __name__ == "__main__":
    main()
