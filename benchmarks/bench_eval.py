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

``--vs-official [N]`` instead times, in fresh processes, the whole command
``cm --json eval --scores s.tsv --key k.tsv --out DIR`` against the official ASVspoof 5
``evaluation.py --m t1 --cm s.tsv --cm_keys k.tsv`` on the same N trials (default 680,774;
ASVspoof 5 TSVs ``filename<TAB>cm-score`` and ``filename<TAB>cm-label``, key rows shuffled),
median of ``--repeats`` (3) runs each, interleaved, and prints the ratio. The official package
cannot be downloaded here: set ``CM_OFFICIAL_EVAL`` to its ``evaluation.py`` to time it, else
the baseline is ``OFFICIAL_T1`` below, a line-by-line re-statement of what ``evaluation.py --m
t1`` runs (``util.load_cm_scores_keys``: pandas ``read_csv``, set comparison, join;
``calculate_metrics.calculate_minDCF_EER_CLLR_actDCF`` with ``calculate_modules.compute_eer``,
``compute_mindcf``, ``compute_actDCF``, ``calculate_CLLR``; the result file and its ``cat``),
labelled ``official (re-stated)`` in the output.
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

EVAL_IMPORTS = (
    "cm_cli.evaluation.readers",
    "cm_cli.evaluation.settings",
    "cm_cli.evaluation.writer",
    "cm_cli.metrics.report",
    "pandas",
    "pyarrow.parquet",
)  # imported before the baseline RSS


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
    return {
        "n": len(table),
        "read_s": t1 - t0,
        "evaluate_s": t2 - t1,
        "write_s": t3 - t2,
        "total_s": t3 - t0,
        "eer": result["overall"]["eer"],
        "n_clusters": ci.get("n_clusters"),
        "unit": ci.get("unit"),
    }


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
    return pd.DataFrame(
        {
            "utt_id": utt_id,
            "score": score,
            "label": np.where(is_bona, "bonafide", "spoof"),
            "codec": codec,
            "speaker": np.char.add("E_spk", speaker[source].astype(str)),
            "codec_seed": np.where(coded, source_id, "-"),
        }
    )


def run_child(scores: Path, out: Path, bootstrap: int) -> dict:
    m = measure(evaluate_once, str(scores), str(out), bootstrap, imports=EVAL_IMPORTS)
    return {**m["result"], "base_rss_mib": m["base_rss_mib"], "peak_rss_mib": m["peak_rss_mib"]}


OFFICIAL_T1 = r"""
# Re-statement of asvspoof-challenge/asvspoof5 evaluation-package/evaluation.py --m t1 (util.py,
# calculate_metrics.py, calculate_modules.py), for timing only: same libraries, same steps.
import os, sys
import numpy as np
import pandas as pd

def load_tsv(filepath, sep="\t"):
    return pd.read_csv(filepath, sep=sep, header=0).rename(
        columns={"tar_spk_anon": "spk", "trial_anon": "filename", "asv-label": "asv_label", "cm-label": "cm_label"})

def compute_det_curve(target_scores, nontarget_scores):
    n_scores = target_scores.size + nontarget_scores.size
    all_scores = np.concatenate((target_scores, nontarget_scores))
    labels = np.concatenate((np.ones(target_scores.size), np.zeros(nontarget_scores.size)))
    indices = np.argsort(all_scores, kind="mergesort")
    labels = labels[indices]
    tar_trial_sums = np.cumsum(labels)
    nontarget_trial_sums = nontarget_scores.size - (np.arange(1, n_scores + 1) - tar_trial_sums)
    frr = np.concatenate((np.atleast_1d(0), tar_trial_sums / target_scores.size))
    far = np.concatenate((np.atleast_1d(1), nontarget_trial_sums / nontarget_scores.size))
    thresholds = np.concatenate((np.atleast_1d(all_scores[indices[0]] - 0.001), all_scores[indices]))
    return frr, far, thresholds

def compute_eer(target_scores, nontarget_scores):
    frr, far, thresholds = compute_det_curve(target_scores, nontarget_scores)
    abs_diffs = np.abs(frr - far)
    min_index = np.argmin(abs_diffs)
    eer = np.mean((frr[min_index], far[min_index]))
    return eer, frr, far, thresholds, thresholds[min_index]

def compute_mindcf(frr, far, thresholds, Pspoof, Cmiss, Cfa):
    min_c_det = float("inf")
    min_c_det_threshold = thresholds
    p_target = 1 - Pspoof
    for i in range(0, len(frr)):
        c_det = Cmiss * frr[i] * p_target + Cfa * far[i] * (1 - p_target)
        if c_det < min_c_det:
            min_c_det = c_det
            min_c_det_threshold = thresholds[i]
    c_def = min(Cmiss * p_target, Cfa * (1 - p_target))
    return min_c_det / c_def, min_c_det_threshold

def compute_actDCF(bonafide_scores, spoof_scores, Pspoof, Cmiss, Cfa):
    beta = Cmiss * (1 - Pspoof) / (Cfa * Pspoof)
    threshold = -np.log(beta)
    rate_miss = np.sum(bonafide_scores < threshold) / bonafide_scores.size
    rate_fa = np.sum(spoof_scores >= threshold) / spoof_scores.size
    act_dcf = Cmiss * (1 - Pspoof) * rate_miss + Cfa * Pspoof * rate_fa
    return act_dcf / np.min([Cfa * Pspoof, Cmiss * (1 - Pspoof)]), threshold

def calculate_CLLR(target_llrs, nontarget_llrs):
    def negative_log_sigmoid(lodds):
        return np.log1p(np.exp(-lodds))
    target_llrs = np.array(target_llrs)
    nontarget_llrs = np.array(nontarget_llrs)
    target_cost = np.mean(negative_log_sigmoid(target_llrs))
    nontarget_cost = np.mean(negative_log_sigmoid(-nontarget_llrs))
    return 0.5 * (target_cost + nontarget_cost) / np.log(2)

scores_pd = load_tsv(sys.argv[1]).set_index("filename")
keys_pd = load_tsv(sys.argv[2]).set_index("filename")
assert set(scores_pd.index) == set(keys_pd.index), "Error: CM score and key incompatible"
cm_pd = scores_pd.join(keys_pd)
cm_scores, cm_keys = cm_pd["cm-score"].to_numpy(), cm_pd["cm_label"].to_numpy()
bona_cm = cm_scores[cm_keys == "bonafide"]
spoof_cm = cm_scores[cm_keys == "spoof"]
eer_cm, frr, far, thresholds, eer_threshold = compute_eer(bona_cm, spoof_cm)
cllr_cm = calculate_CLLR(bona_cm, spoof_cm)
minDCF_cm, _ = compute_mindcf(frr, far, thresholds, 0.05, 1, 10)
actDCF, _ = compute_actDCF(bona_cm, spoof_cm, 0.05, 1, 10)
with open("./track1_result.txt", "w") as f_res:
    f_res.write(f"\nCM SYSTEM\n\tmin DCF \t\t= {minDCF_cm}\n\tEER\t\t= {eer_cm * 100:8.9f} %\n"
                f"\tCLLR\t\t= {cllr_cm:8.9f} bits\n\tactDCF\t\t= {actDCF}\n")
os.system("cat ./track1_result.txt")
print(f"-eval_mindcf: {minDCF_cm:.5f}\n-eval_eer (%): {eer_cm * 100:.3f}")
"""


def asvspoof5_tsvs(n: int, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """ASVspoof 5 Track 1 score and key TSVs of ``n`` trials (the key's rows shuffled)."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("E_", np.char.zfill(np.arange(n).astype(str), 10))
    bona = rng.random(n) < 0.2
    score = np.where(bona, rng.normal(2.0, 1.0, n), rng.normal(-1.0, 1.5, n))
    perm = rng.permutation(n)
    scores, key = folder / "s.tsv", folder / "k.tsv"
    scores.write_text("filename\tcm-score\n" + "".join(f"{i}\t{v:.6f}\n" for i, v in zip(ids, score)))
    key.write_text("filename\tcm-label\n" + "".join(f"{ids[j]}\t{'bonafide' if bona[j] else 'spoof'}\n" for j in perm))
    return scores, key


def vs_official(n: int, repeats: int) -> dict:
    """Median wall time of the cm command and of the official (or re-stated) t1 evaluation, interleaved."""
    import os
    import statistics
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    official = os.environ.get("CM_OFFICIAL_EVAL")
    times: dict[str, list[float]] = {"cm": [], "official": []}
    with tempfile.TemporaryDirectory(prefix="cm_bench_vs_official_") as tmp:
        root = Path(tmp)
        scores, key = asvspoof5_tsvs(n, root)
        if official:
            baseline = [sys.executable, official, "--m", "t1", "--cm", str(scores), "--cm_keys", str(key)]
            label = f"official ({official})"
        else:
            script = root / "official_t1_restated.py"
            script.write_text(OFFICIAL_T1)
            baseline = [sys.executable, str(script), str(scores), str(key)]
            label = "official (re-stated)"
        for r in range(repeats):
            for name, cmd in (
                ("official", baseline),
                (
                    "cm",
                    [
                        sys.executable,
                        "-m",
                        "cm_cli.app",
                        "--json",
                        "eval",
                        "--scores",
                        str(scores),
                        "--key",
                        str(key),
                        "--out",
                        str(root / f"out{r}"),
                    ],
                ),
            ):
                start = time.perf_counter()
                subprocess.run(cmd, check=True, cwd=root, env=env, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - start)
    cm_s, official_s = statistics.median(times["cm"]), statistics.median(times["official"])
    return {
        "trials": n,
        "repeats": repeats,
        "cm_s": cm_s,
        "official_s": official_s,
        "baseline": label,
        "ratio_cm_over_official": cm_s / official_s,
        "all": times,
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples of the clustered run (0: skip it)")
    parser.add_argument(
        "--vs-official",
        type=int,
        nargs="?",
        const=ASVSPOOF5_EVAL_TRIALS,
        default=None,
        metavar="N",
        help="time cm eval against the official t1 evaluation on N trials instead",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side for --vs-official (median)")
    args, sizes = parse_sized(
        parser, argv, sizes=f"1000,10000,100000,{ASVSPOOF5_EVAL_TRIALS}", smoke="1000", unit="trials"
    )
    if args.vs_official is not None:
        row = vs_official(1000 if args.smoke else args.vs_official, 1 if args.smoke else args.repeats)
        print(
            f"{row['trials']} trials, median of {row['repeats']}: cm eval {row['cm_s']:.2f} s, "
            f"{row['baseline']} {row['official_s']:.2f} s, ratio cm/official {row['ratio_cm_over_official']:.2f}"
        )
        if args.json:
            args.json.write_text(json.dumps([row], indent=2))
        return [row]
    if args.smoke:
        args.bootstrap = 20
    settings = [0] + ([args.bootstrap] if args.bootstrap else [])
    rows: list[dict] = []
    print(
        f"{'trials':>9} {'bootstrap':>9} {'read s':>7} {'eval s':>8} {'write s':>7} {'total s':>8} "
        f"{'peak MiB':>9} {'+data MiB':>9} {'clusters':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="cm_bench_eval_") as tmp:
        root = Path(tmp)
        for n in sizes:
            path = root / f"scores_{n}.parquet"
            synthetic_scores(n).to_parquet(path, index=False)
            for b in settings:
                r = run_child(path, root / f"out_{n}_{b}", b)
                r.update(trials=n, bootstrap=b)
                rows.append(r)
                print(
                    f"{n:9d} {b:9d} {r['read_s']:7.2f} {r['evaluate_s']:8.2f} {r['write_s']:7.2f} "
                    f"{r['total_s']:8.2f} {r['peak_rss_mib']:9.0f} {r['peak_rss_mib'] - r['base_rss_mib']:9.0f} "
                    f"{r['n_clusters'] or '-':>9}"
                )
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
