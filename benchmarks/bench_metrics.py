"""Time cm's metrics on ASVspoof 5 eval size (680,774 trials) against a plain numpy reference.

Trials are resampled from the shared score fixture. Both sides compute the same
numbers (overall metrics plus breakdowns by codec, 12 groups, and by attack, 16
groups against all bona fide); the reference sorts every group again, as a script
calling the official functions per group would. Also times 1,000 bootstrap
resamples of overall EER and minDCF. Prints numbers; asserts nothing.

    python benchmarks/bench_metrics.py [--fixture PATH] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

N_TRIALS = 680_774
ROOT = Path(__file__).resolve().parents[1]


def reference_metrics(bona: np.ndarray, spoof: np.ndarray) -> dict:
    """Plain numpy, one group: the official DET/EER/minDCF/actDCF/Cllr plus hull metrics."""
    from cm_cli.metrics.hull import auc_from_groups, eer_from_blocks, min_cllr_from_blocks, pav_blocks

    scores = np.concatenate([bona, spoof])
    labels = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    order = np.argsort(scores, kind="mergesort")
    labels, sorted_scores = labels[order], scores[order]
    tar = np.cumsum(labels)
    non = spoof.size - (np.arange(1, scores.size + 1) - tar)
    frr = np.concatenate([[0.0], tar / bona.size])
    far = np.concatenate([[1.0], non / spoof.size])
    i = int(np.argmin(np.abs(frr - far)))
    eer = (frr[i] + far[i]) / 2
    min_dcf = (0.95 * frr + 0.5 * far).min() / 0.5
    thr = -np.log(0.95 / 0.5)
    act = (0.95 * np.mean(bona < thr) + 0.5 * np.mean(spoof >= thr)) / 0.5
    cllr = 0.5 * (np.mean(np.logaddexp(0, -bona)) + np.mean(np.logaddexp(0, spoof))) / np.log(2)
    _, inverse = np.unique(sorted_scores, return_inverse=True)
    b = np.bincount(inverse, weights=labels).astype(np.int64)
    s = np.bincount(inverse).astype(np.int64) - b
    blocks = pav_blocks(b, s)
    return {
        "eer": eer,
        "min_dcf": min_dcf,
        "act_dcf": act,
        "cllr": cllr,
        "eer_rocch": eer_from_blocks(blocks),
        "min_cllr": min_cllr_from_blocks(blocks),
        "auc": auc_from_groups(b, s),
    }


def reference_run(scores, is_bona, codec, attack) -> dict:
    out = {"overall": reference_metrics(scores[is_bona], scores[~is_bona])}
    for value in np.unique(codec):
        m = codec == value
        out[f"codec={value}"] = reference_metrics(scores[m & is_bona], scores[m & ~is_bona])
    for value in np.unique(attack[~is_bona]):
        m = attack == value
        out[f"attack={value}"] = reference_metrics(scores[is_bona], scores[m & ~is_bona])
    return out


def cm_run(scores, is_bona, codec, attack) -> dict:
    from cm_cli.metrics.breakdown import breakdown
    from cm_cli.metrics.summary import metrics_from_sorted
    from cm_cli.metrics.trials import sort_trials

    trials = sort_trials(scores, is_bona)
    out = {"overall": metrics_from_sorted(trials).to_dict()}
    for name, keys in (("codec", codec), ("attack", attack)):
        for group in breakdown(trials, keys):
            if group.metrics is not None:
                out[f"{name}={group.value}"] = group.metrics.to_dict()
    return out


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fixture", type=Path, default=ROOT.parent / "shared/fixtures/scores/asvspoof5_eval50k_w2v2_erm.tsv"
    )
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    df = pd.read_csv(args.fixture, sep="\t", dtype={"codec": str})
    idx = np.random.default_rng(0).integers(0, len(df), N_TRIALS)
    # jitter keeps the resampled trials distinct, as real scores of 680k utterances are
    scores = df["score"].to_numpy(np.float64)[idx] + np.random.default_rng(1).normal(0, 1e-9, N_TRIALS)
    is_bona = (df["y_task"].to_numpy() == 0)[idx]
    codec = df["codec"].to_numpy(dtype=object)[idx]
    attack = np.where(is_bona, "bonafide", df["attack_label"].to_numpy(dtype=object)[idx]).astype(object)
    print(
        f"trials: {N_TRIALS} ({int(is_bona.sum())} bona fide), codec groups: {len(np.unique(codec))}, "
        f"attack groups: {len(np.unique(attack[~is_bona]))}"
    )

    t_ref, ref = best_of(lambda: reference_run(scores, is_bona, codec, attack), args.repeats)
    t_cm, got = best_of(lambda: cm_run(scores, is_bona, codec, attack), args.repeats)
    worst = max(abs(got[k][m] - ref[k][m]) for k in ref for m in ref[k])
    print(
        f"overall + breakdowns   reference {t_ref:.3f} s   cm {t_cm:.3f} s   cm/reference {t_cm / t_ref:.2f}   "
        f"max |difference| {worst:.2e}"
    )

    from cm_cli.metrics.stats import bootstrap_ci
    from cm_cli.metrics.trials import sort_trials

    trials = sort_trials(scores, is_bona)
    start = time.perf_counter()
    result = bootstrap_ci(trials, n_resamples=args.resamples, seed=0)
    elapsed = time.perf_counter() - start
    ci = result.to_dict()
    print(
        f"bootstrap {args.resamples} resamples: {elapsed:.2f} s   EER 95% CI [{100 * ci['eer'][0]:.3f}, "
        f"{100 * ci['eer'][1]:.3f}] %   minDCF [{ci['min_dcf'][0]:.4f}, {ci['min_dcf'][1]:.4f}]"
    )


if __name__ == "__main__":
    main()
