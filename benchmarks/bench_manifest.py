"""`cm manifest` at corpus scale: parse, first build, rerun into the finished output; time and peak RSS per size.

Writes a synthetic ASVspoof 5 protocol set (the eval protocol with N rows, ten
whitespace-separated fields as the real one; train and dev with a few rows, so the corpus
layout is complete), then, in a fresh process per size and stage, measures wall time and
peak RSS of (a) ``prepare_asvspoof5`` on the eval protocol (the parse alone), (b)
``make_manifest`` into a new output folder (what `cm manifest` runs: parse and write), (c)
``make_manifest`` again into that finished folder (a rerun: it should notice it is done
before parsing anything; issue 18 measured 12.3 s here at 1M rows) and (d) a bare
``pandas.read_csv`` of the eval protocol (the baseline). Prints growth between sizes.

Usage: ``python benchmarks/bench_manifest.py [--sizes 1000,100000,1004081]``
(``--smoke``: 1,000 rows). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _measure import growth, measure, parse_sized

EVAL = "ASVspoof5.eval.track_1.tsv"
STAGES = ("parse", "build", "rerun", "pandas")
# every stage imports the same libraries before its baseline RSS and its clock start, so the
# times and memory compare the work itself (a real `cm manifest` adds ~1 s of imports)
IMPORTS = ("pandas", "pyarrow.parquet", "cm_cli.data.manifests", "cm_cli.data.corpora.asvspoof5")


def write_protocol(path: Path, n: int, prefix: str = "E") -> None:
    codecs = ["-"] + [f"C{i:02d}" for i in range(1, 12)]
    with path.open("w") as handle:
        for i in range(n):
            codec = codecs[i % len(codecs)]
            q = "0" if codec == "-" else str(1 + i % 5)
            seed = "-" if codec == "-" else f"{prefix}_{i // 3:010d}"
            key = "bonafide" if i % 7 == 0 else "spoof"
            attack = "bonafide" if key == "bonafide" else f"A{17 + i % 16}"
            handle.write(
                f"{prefix}_{i % 737:04d} {prefix}_{i:010d} {'F' if i % 2 else 'M'} {codec} {q} {seed} "
                f"AC{1 + i % 3} {attack} {key} -\n"
            )


def write_corpus(root: Path, n: int) -> None:
    """The three ASVspoof 5 protocols under ``root``: eval with ``n`` rows, train and dev with 14 each."""
    root.mkdir(parents=True, exist_ok=True)
    write_protocol(root / EVAL, n)
    write_protocol(root / "ASVspoof5.train.tsv", 14, prefix="T")
    write_protocol(root / "ASVspoof5.dev.track_1.tsv", 14, prefix="D")


def parse_cm(root: str) -> int:
    from cm_cli.data.corpora.asvspoof5 import prepare_asvspoof5

    return len(prepare_asvspoof5(Path(root), splits=("eval",)))


def parse_pandas(root: str) -> int:
    import pandas as pd

    return len(pd.read_csv(Path(root) / EVAL, sep=r"\s+", header=None, dtype=str))


def build(root: str, out: str) -> dict:
    """``cm manifest --corpus asvspoof5 --out OUT`` as a library call; whether it found the output finished."""
    from cm_cli.data.manifests import make_manifest

    result = make_manifest("asvspoof5", Path(out), data_root=Path(root), corpus_root=Path(root), workers=1)
    return {"n": int(result.n_rows), "skipped": bool(result.skipped)}


def run_size(root: Path, n: int) -> dict:
    write_corpus(root, n)
    out = root / "out"
    stages = {
        "parse": measure(parse_cm, str(root), imports=IMPORTS),
        "build": measure(build, str(root), str(out), imports=IMPORTS),
        "rerun": measure(build, str(root), str(out), imports=IMPORTS),
        "pandas": measure(parse_pandas, str(root), imports=IMPORTS),
    }
    if stages["build"]["result"]["skipped"] or not stages["rerun"]["result"]["skipped"]:
        raise SystemExit(
            f"{n} rows: the first build should write and the rerun find it done; "
            f"got {stages['build']['result']} then {stages['rerun']['result']}"
        )
    return {
        "rows": n,
        **{f"{k}_s": m["seconds"] for k, m in stages.items()},
        **{f"{k}_peak_rss_mib": m["peak_rss_mib"] for k, m in stages.items()},
        **{f"{k}_base_rss_mib": m["base_rss_mib"] for k, m in stages.items()},
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args, sizes = parse_sized(parser, argv, sizes="1000,100000,1004081", smoke="1000", unit="rows")
    rows = []
    print(
        f"{'rows':>9} "
        + " ".join(f"{s + ' s':>9} {s + ' MiB':>10}" for s in STAGES)
        + "  (MiB: peak RSS of the process; parse = prepare_asvspoof5, build/rerun = make_manifest)"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="cm_bench_manifest_") as tmp:
            r = run_size(Path(tmp), n)
        rows.append(r)
        print(f"{n:9d} " + " ".join(f"{r[s + '_s']:9.2f} {r[s + '_peak_rss_mib']:10.0f}" for s in STAGES))
    for r in rows:
        print(
            f"{r['rows']} rows: cm parse / bare pandas {r['parse_s'] / r['pandas_s']:.2f}x time, "
            f"{r['parse_peak_rss_mib'] / r['pandas_peak_rss_mib']:.2f}x memory; rerun {r['rerun_s']:.2f} s "
            f"= {r['rerun_s'] / r['build_s']:.2f}x the first build"
        )
    print("\n".join(growth(rows, "rows", ("parse", "build", "rerun"), "rows")))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
