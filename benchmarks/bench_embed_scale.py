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
import tempfile
from pathlib import Path

import numpy as np
from _measure import growth, measure, parse_sized

N_LAYERS = 13
DIM = 768

STORE_IMPORTS = (
    "numpy",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.parquet",
    "cm_cli.core.artifacts",
    "cm_cli.embedding.store",
)  # imported before the baseline RSS


def write_table(path: str, n: int, batch: int, layers: int, dim: int) -> dict:
    """N rows through ``EmbeddingWriter`` in batches, timing only the writer's calls (run in a fresh process)."""
    import time

    import pyarrow.parquet as pq

    from cm_cli.embedding.store import EmbeddingWriter

    path = Path(path)
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
    info = pq.ParquetFile(path).metadata
    return {
        "write_s": timed,
        "row_groups": info.num_row_groups,
        "footer_bytes": info.serialized_size,
        "file_bytes": path.stat().st_size,
    }


def read_one_layer(path: str, layer: str) -> dict:
    """One layer back through ``read_layer`` (run in a fresh process)."""
    import time

    from cm_cli.embedding.store import read_layer

    t0 = time.perf_counter()
    data = read_layer(Path(path), layer)
    return {"read_s": time.perf_counter() - t0, "rows_read": int(data.X.shape[0]), "dim": int(data.X.shape[1])}


def child(fn, *args) -> dict:
    m = measure(fn, *args, imports=STORE_IMPORTS)
    return {**m["result"], "base_rss_mib": m["base_rss_mib"], "peak_rss_mib": m["peak_rss_mib"]}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="rows per writer call (cm embed --batch-size)")
    parser.add_argument("--layer", default="layer_06", help="the layer read back")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    args, sizes = parse_sized(parser, argv, sizes="1000,10000,100000", smoke="200", unit="rows")
    rows: list[dict] = []
    print(
        f"{'rows':>9} {'file MB':>9} {'B/row':>7} {'groups':>6} {'footer kB':>9} {'write s':>8} {'write MiB':>9} "
        f"{'read s':>7} {'read MiB':>9}  (MiB: peak RSS of the process)"
    )
    with tempfile.TemporaryDirectory(prefix="cm_bench_embed_", dir=args.dir) as tmp:
        for n in sizes:
            path = Path(tmp) / f"embeddings_{n}.parquet"
            w = child(write_table, str(path), n, args.batch, N_LAYERS, DIM)
            r = child(read_one_layer, str(path), args.layer)
            path.unlink()
            row = {
                "rows": n,
                **{f"write_{k}" if "rss" in k else k: v for k, v in w.items()},
                **{f"read_{k}" if "rss" in k else k: v for k, v in r.items()},
            }
            rows.append(row)
            print(
                f"{n:9d} {w['file_bytes'] / 1e6:9.1f} {w['file_bytes'] / n:7.0f} {w['row_groups']:6d} "
                f"{w['footer_bytes'] / 1e3:9.1f} {w['write_s']:8.2f} {w['peak_rss_mib']:9.0f} {r['read_s']:7.2f} "
                f"{r['peak_rss_mib']:9.0f}   (imports {w['base_rss_mib']:.0f} / {r['base_rss_mib']:.0f} MiB)"
            )
    print("\n".join(growth(rows, "rows", ("write", "read"), "rows")))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
