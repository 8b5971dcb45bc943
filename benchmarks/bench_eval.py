"""`cm eval --scores` at corpus scale: time and peak RSS per trial count, with and without a clustered bootstrap.

Writes a synthetic ASVspoof 5-shaped score table of N trials (Parquet: ``utt_id``, ``score``,
``label``, ``codec``, ``speaker``, ``codec_seed``; every source utterance appears uncoded,
with a null ``codec_seed``, and in three coded copies whose ``codec_seed`` is the source's
id, as in the ASVspoof 5 protocols). Then, in a fresh process per size and setting, runs
what ``cm eval --scores FILE --by codec --out DIR [--bootstrap 200 --cluster-by source]``
runs: ``evaluation.readers.load_scores``, ``EvalSettings.evaluate`` and
``evaluation.writer.write_metrics_dir``, and reports each stage's seconds, the process's
peak RSS and its RSS once the libraries are imported (so growth with N is what the data
costs). Sizes default to 1k, 10k, 100k and ASVspoof 5 eval (680,774 trials).

Usage: ``python benchmarks/bench_eval.py [--sizes 1000,10000,100000,680774] [--bootstrap 200]``
(``--smoke``: 1,000 trials, 20 resamples). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from _measure import growth, measure, parse_sized

ASVSPOOF5_EVAL_TRIALS = 680_774
CODECS = [f"C{i:02d}" for i in range(1, 12)]
COPIES = 4  # per source utterance: the uncoded original and three coded copies

EVAL_IMPORTS = ("cm_cli.evaluation.readers", "cm_cli.evaluation.settings", "cm_cli.evaluation.writer",
                "cm_cli.metrics.report", "pandas", "pyarrow.parquet")  # imported before the baseline RSS


def evaluate_once(scores: str, out: str, bootstrap: int) -> dict:
    """What ``cm eval --scores FILE --by codec --out DIR`` runs, stage by stage (called in a fresh process)."""
    import time

    from cm_cli.evaluation.readers import ScoreColumns, load_scores
    from cm_cli.evaluation.settings import EvalSettings
    from cm_cli.evaluation.writer import write_metrics_dir

    settings = EvalSettings(by=("codec",), bootstrap=bootstrap, cluster_by="source" if bootstrap else "auto", seed=0)
    t0 = time.perf_counter()
    table = load_scores(Path(scores), ScoreColumns())
    t1 = time.perf_counter()
    result = settings.evaluate(table, source=str(scores))
    t2 = time.perf_counter()
    Path(out).mkdir(parents=True, exist_ok=True)
    write_metrics_dir(result, Path(out))
    t3 = time.perf_counter()
    ci = result.get("ci") or {}
    return {"n": len(table), "read_s": t1 - t0, "evaluate_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t0,
            "eer": result["overall"]["eer"], "n_clusters": ci.get("n_clusters"), "unit": ci.get("unit")}


def synthetic_scores(n: int, seed: int = 0):
    """``n`` trials shaped like the ASVspoof 5 eval protocol (sources with coded copies, speakers, codecs)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    i = np.arange(n)
    source, copy = i // COPIES, i % COPIES
    n_sources = int(source.max()) + 1 if n else 0
    bona_source = rng.random(n_sources) < 0.2
    speaker = rng.integers(0, max(1, n_sources // 50), n_sources)
    is_bona = bona_source[source]
    coded = copy > 0
    codec = np.where(coded, np.array(CODECS, dtype=object)[rng.integers(0, len(CODECS), n)], "-")
    shift = np.where(coded, -0.5, 0.0)
    score = np.where(is_bona, rng.normal(2.0, 1.0, n), rng.normal(-1.0, 1.5, n)) + shift
    source_id = np.char.add("E_", np.char.zfill(source.astype(str), 10))
    utt_id = np.where(coded, np.char.add(np.char.add(source_id, "_c"), copy.astype(str)), source_id)
    return pd.DataFrame({"utt_id": utt_id, "score": score, "label": np.where(is_bona, "bonafide", "spoof"),
                         "codec": codec, "speaker": np.char.add("E_spk", speaker[source].astype(str)),
                         "codec_seed": np.where(coded, source_id, "-")})


def run_child(scores: Path, out: Path, bootstrap: int) -> dict:
    m = measure(evaluate_once, str(scores), str(out), bootstrap, imports=EVAL_IMPORTS)
    return {**m["result"], "base_rss_mib": m["base_rss_mib"], "peak_rss_mib": m["peak_rss_mib"]}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples of the clustered run (0: skip it)")
    args, sizes = parse_sized(parser, argv, sizes=f"1000,10000,100000,{ASVSPOOF5_EVAL_TRIALS}", smoke="1000",
                              unit="trials")
    if args.smoke:
        args.bootstrap = 20
    settings = [0] + ([args.bootstrap] if args.bootstrap else [])
    rows: list[dict] = []
    print(f"{'trials':>9} {'bootstrap':>9} {'read s':>7} {'eval s':>8} {'write s':>7} {'total s':>8} "
          f"{'peak MiB':>9} {'+data MiB':>9} {'clusters':>9}")
    with tempfile.TemporaryDirectory(prefix="cm_bench_eval_") as tmp:
        root = Path(tmp)
        for n in sizes:
            path = root / f"scores_{n}.parquet"
            synthetic_scores(n).to_parquet(path, index=False)
            for b in settings:
                r = run_child(path, root / f"out_{n}_{b}", b)
                r.update(trials=n, bootstrap=b)
                rows.append(r)
                print(f"{n:9d} {b:9d} {r['read_s']:7.2f} {r['evaluate_s']:8.2f} {r['write_s']:7.2f} "
                      f"{r['total_s']:8.2f} {r['peak_rss_mib']:9.0f} {r['peak_rss_mib'] - r['base_rss_mib']:9.0f} "
                      f"{r['n_clusters'] or '-':>9}")
            path.unlink()
    for b in settings:
        chain = [r for r in rows if r["bootstrap"] == b]
        for line in growth(chain, "trials", [("", "total_s", "peak_rss_mib", "base_rss_mib")], "trials"):
            print(f"bootstrap {b}: {line}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
