"""`cm embed`'s embeddings table at corpus scale: file size, row groups, write and one-layer read time, peak RSS.

Writes N rows of 13 layers x 768 values in float16 (WavLM Base's hidden states, mean-pooled)
through ``cm_cli.embedding.store.EmbeddingWriter`` in batches of ``--batch`` rows, as
``cm embed`` does, then reads one layer back with ``read_layer`` (what probes, CKA and LOAO
call). Writing and reading each run in a fresh process, so each peak RSS is its own; the
RSS once the libraries are imported is printed too, so what grows with N is the data.
The values are random normal (real embeddings compress somewhat better), generated per
batch outside the timed calls.

Usage: ``python benchmarks/bench_embed_scale.py [--sizes 1000,10000,100000] [--batch 64]``;
ASVspoof 5 eval size (``--sizes 680774``) writes ~13.6 GB. ``--smoke``: 200 rows.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

N_LAYERS = 13
DIM = 768

CHILD = r"""
import json, resource, sys, time
from pathlib import Path

def rss_mib():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

mode, path = sys.argv[1], Path(sys.argv[2])
import numpy as np
import pyarrow as pa, pyarrow.compute, pyarrow.parquet as pq  # noqa: E401  (imported before the baseline)
import cm_cli.core.artifacts  # noqa: F401
from cm_cli.embedding.store import EmbeddingWriter, read_layer
base = rss_mib()
if mode == "write":
    n, batch, layers, dim = (int(v) for v in sys.argv[3:7])
    rng = np.random.default_rng(0)
    writer = EmbeddingWriter(path, value_type="float16")
    meta = {"cm.backbone": "wavlm", "cm.pooling": "mean", "cm.dtype": "float16"}
    timed = 0.0
    for start in range(0, n, batch):
        rows = min(batch, n - start)
        ids = [f"E_{i:010d}" for i in range(start, start + rows)]
        arrays = {f"layer_{k:02d}": rng.standard_normal((rows, dim), dtype=np.float32) for k in range(layers)}
        t0 = time.perf_counter()
        writer.write(ids, arrays, meta)
        timed += time.perf_counter() - t0
    t0 = time.perf_counter()
    writer.commit()
    timed += time.perf_counter() - t0
    meta = pq.ParquetFile(path).metadata
    out = {"write_s": timed, "row_groups": meta.num_row_groups, "footer_bytes": meta.serialized_size,
           "file_bytes": path.stat().st_size}
else:
    t0 = time.perf_counter()
    data = read_layer(path, sys.argv[3])
    out = {"read_s": time.perf_counter() - t0, "rows_read": int(data.X.shape[0]), "dim": int(data.X.shape[1])}
out.update(base_rss_mib=base, peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(out))
"""


def child(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {argv[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--batch", type=int, default=64, help="rows per writer call (cm embed --batch-size)")
    parser.add_argument("--layer", default="layer_06", help="the layer read back")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--smoke", action="store_true", help="200 rows: checks it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes = "200"
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows: list[dict] = []
    print(f"{'rows':>9} {'file MB':>9} {'B/row':>7} {'groups':>6} {'footer kB':>9} {'write s':>8} {'write MiB':>9} "
          f"{'read s':>7} {'read MiB':>9}  (MiB: peak RSS of the process)")
    with tempfile.TemporaryDirectory(prefix="cm_bench_embed_", dir=args.dir) as tmp:
        for n in sizes:
            path = Path(tmp) / f"embeddings_{n}.parquet"
            w = child("write", str(path), str(n), str(args.batch), str(N_LAYERS), str(DIM))
            r = child("read", str(path), args.layer)
            path.unlink()
            row = {"rows": n, **{f"write_{k}" if "rss" in k else k: v for k, v in w.items()},
                   **{f"read_{k}" if "rss" in k else k: v for k, v in r.items()}}
            rows.append(row)
            print(f"{n:9d} {w['file_bytes'] / 1e6:9.1f} {w['file_bytes'] / n:7.0f} {w['row_groups']:6d} "
                  f"{w['footer_bytes'] / 1e3:9.1f} {w['write_s']:8.2f} {w['peak_rss_mib']:9.0f} {r['read_s']:7.2f} "
                  f"{r['peak_rss_mib']:9.0f}   (imports {w['base_rss_mib']:.0f} / {r['base_rss_mib']:.0f} MiB)")
    def above(row: dict, stage: str) -> float:
        return max(row[f"{stage}_peak_rss_mib"] - row[f"{stage}_base_rss_mib"], 1.0)

    for a, c in zip(rows, rows[1:]):
        print(f"growth {a['rows']} -> {c['rows']} rows ({c['rows'] / a['rows']:.1f}x): write time "
              f"{c['write_s'] / a['write_s']:.1f}x, write peak above imports {above(c, 'write') / above(a, 'write'):.1f}x, "
              f"read time {c['read_s'] / a['read_s']:.1f}x, read peak above imports "
              f"{above(c, 'read') / above(a, 'read'):.1f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
