"""Breakdowns, OOD gap, bootstrap, calibration and collapse warnings through ``evaluate_scores``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.metrics import compute_metrics
from cm_cli.metrics.calibration import fit_calibration
from cm_cli.metrics.report import breakdown_tables, evaluate_scores
from cm_cli.metrics.stats import bootstrap_ci
from cm_cli.metrics.trials import sort_trials


def _table(seed: int = 0, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = np.where(rng.random(n) < 0.3, "bonafide", "spoof")
    attack = np.where(label == "bonafide", None, rng.choice(["A01", "A02", "A03"], n))
    codec = rng.choice(["mp3", "opus", None], n)
    shift = np.where(codec == None, 2.0, 1.0)  # noqa: E711 - codec-free trials are easier
    score = np.where(label == "bonafide", shift, -shift) + rng.normal(0, 1, n)
    speaker = rng.choice([f"S{i:02d}" for i in range(30)], n)
    return pd.DataFrame(
        {
            "utt_id": [f"u{i}" for i in range(n)],
            "score": score,
            "label": label,
            "attack": attack,
            "codec": codec,
            "speaker": speaker,
        }
    )


def test_attack_groups_use_whole_bonafide_pool():
    df = _table()
    result = evaluate_scores(df, by=["attack"])
    groups = result["by"]["attack"]
    assert set(groups) == {"A01", "A02", "A03", "none"}
    bona = df.score[df.label == "bonafide"].to_numpy()
    for attack in ("A01", "A02", "A03"):
        spoof = df.score[df.attack == attack].to_numpy()
        want = compute_metrics(bona, spoof)
        assert groups[attack]["eer"] == pytest.approx(want.eer, abs=1e-12)
        assert groups[attack]["min_dcf"] == pytest.approx(want.min_dcf, abs=1e-12)
        assert groups[attack]["bonafide_pool"] == "all"
        assert groups[attack]["n_bonafide"] == bona.size
    assert groups["none"]["eer"] is None and groups["none"]["n_spoof"] == 0
    summary = result["by_summary"]["attack"]
    assert summary["averaged"]["eer"] == pytest.approx(np.mean([groups[a]["eer"] for a in ("A01", "A02", "A03")]))
    assert summary["pooled"]["eer"] == result["overall"]["eer"]


def test_codec_groups_nulls_small_flag_and_tables():
    df = _table(n=120)
    result = evaluate_scores(df, by=["codec"], min_trials=20)
    groups = result["by"]["codec"]
    assert set(groups) == {"mp3", "opus", "none"}
    for value, record in groups.items():
        sub = df[df.codec.fillna("none") == value]
        assert record["bonafide_pool"] == "group"
        assert record["n_bonafide"] == int((sub.label == "bonafide").sum())
        assert record["small"] == (min(record["n_bonafide"], record["n_spoof"]) < 20)
    assert any(r["small"] for r in groups.values())
    table = breakdown_tables(result)["codec"]
    assert list(table.columns[:3]) == ["codec", "eer", "eer_threshold"]
    assert sorted(table["codec"]) == ["mp3", "none", "opus"]


def test_ood_gap_and_compare():
    df = _table(n=2000)
    result = evaluate_scores(df, in_domain=["none"], domain_col="codec")
    gap = result["ood_gap"]
    clean = df[df.codec.isna()]
    other = df[df.codec.notna()]
    eer_in = compute_metrics(clean.score[clean.label == "bonafide"], clean.score[clean.label == "spoof"]).eer
    eer_out = compute_metrics(other.score[other.label == "bonafide"], other.score[other.label == "spoof"]).eer
    assert gap["eer_in"] == pytest.approx(eer_in) and gap["eer_out"] == pytest.approx(eer_out)
    assert gap["gap_abs_points"] == pytest.approx(100 * (eer_out - eer_in))
    assert gap["gap_rel"] == pytest.approx(eer_out / eer_in - 1)
    baseline = {"ood_gap": {**gap, "gap_abs_points": 2 * gap["gap_abs_points"]}}
    again = evaluate_scores(df, in_domain=["none"], domain_col="codec", compare=baseline)
    assert again["ood_gap"]["compare"]["gap_reduction"] == pytest.approx(0.5)
    assert again["ood_gap"]["compare"]["gap_reduction_points"] == pytest.approx(gap["gap_abs_points"])
    with pytest.raises(CmError, match="ood_gap uses"):
        evaluate_scores(df, in_domain=["mp3"], domain_col="codec", compare=baseline)


def test_bootstrap_is_seeded_covers_estimate_and_matches_expanded_resample():
    df = _table(n=800)
    trials = sort_trials(df.score.to_numpy(), (df.label == "bonafide").to_numpy())
    a = bootstrap_ci(trials, n_resamples=200, seed=1)
    b = bootstrap_ci(trials, n_resamples=200, seed=1)
    c = bootstrap_ci(trials, n_resamples=200, seed=2)
    assert np.array_equal(a.eer, b.eer) and not np.array_equal(a.eer, c.eer)
    full = compute_metrics(df.score[df.label == "bonafide"], df.score[df.label == "spoof"])
    low, high = a.to_dict()["eer"]
    assert low <= full.eer <= high
    # a resample's EER/minDCF equal the official metrics of the expanded resample
    rng = np.random.default_rng(1)
    nb, ns = trials.n_bonafide, trials.n_spoof
    bona_counts = np.bincount(rng.integers(0, nb, nb), minlength=nb)
    spoof_counts = np.bincount(rng.integers(0, ns, ns), minlength=ns)
    bona_sorted = trials.scores[trials.is_bona]
    spoof_sorted = trials.scores[~trials.is_bona]
    ref = compute_metrics(np.repeat(bona_sorted, bona_counts), np.repeat(spoof_sorted, spoof_counts))
    assert a.eer[0] == pytest.approx(ref.eer, abs=1e-12)
    assert a.min_dcf[0] == pytest.approx(ref.min_dcf, abs=1e-12)


def test_clustered_bootstrap_is_wider_on_clustered_data():
    rng = np.random.default_rng(0)
    n_spk, per = 40, 30
    offsets = np.repeat(rng.normal(0, 1.5, n_spk), per)  # speaker effects shared by all trials
    label = np.tile(np.r_[np.ones(10, bool), np.zeros(20, bool)], n_spk)
    score = np.where(label, 1.0, -1.0) + offsets + rng.normal(0, 0.5, n_spk * per)
    trials = sort_trials(score, label)
    plain = bootstrap_ci(trials, n_resamples=300, seed=0)
    clustered = bootstrap_ci(
        trials, n_resamples=300, seed=0, clusters=np.repeat(np.arange(n_spk), per), cluster_by="speaker"
    )
    assert clustered.to_dict()["eer_std"] > plain.to_dict()["eer_std"]
    assert clustered.n_clusters == n_spk


def test_calibration_improves_cllr_of_probabilities():
    rng = np.random.default_rng(5)

    def make(n):
        y = rng.random(n) < 0.4
        p = 1 / (1 + np.exp(-(np.where(y, 3.0, -3.0) + rng.normal(0, 2, n)) * 3))  # overconfident
        return p, y

    dev_p, dev_y = make(3000)
    cal = fit_calibration(dev_p, dev_y)
    eval_p, eval_y = make(3000)
    df = pd.DataFrame({"score": eval_p, "label": np.where(eval_y, "bonafide", "spoof")})
    result = evaluate_scores(df, calibration=cal)
    before, after = result["calibration"]["before"], result["calibration"]["after"]
    assert after["cllr"] < before["cllr"] and after["cllr"] < 1.0
    assert after["min_dcf"] == pytest.approx(before["min_dcf"])  # an increasing map keeps the DET curve
    assert result["calibration"]["prior_log_odds"] == pytest.approx(np.log(dev_y.sum() / (~dev_y).sum()))


def test_collapse_warnings():
    df = pd.DataFrame(
        {
            "score": np.r_[np.ones(50), np.full(50, 0.99), np.linspace(0.9, 0.95, 20)],
            "label": ["bonafide"] * 60 + ["spoof"] * 60,
        }
    )
    warnings = evaluate_scores(df)["warnings"]
    assert any("actDCF (Bayes) threshold" in w for w in warnings)
    assert any("repeated for 50 of 120" in w for w in warnings)
    calm = evaluate_scores(_table())["warnings"]
    assert calm == []


def test_bad_input_errors():
    df = _table(n=50)
    with pytest.raises(CmError, match="no column 'nope'"):
        evaluate_scores(df, by=["nope"])
    bad = df.copy()
    bad.loc[[3, 7], "score"] = np.nan
    with pytest.raises(CmError, match=r"2 of 50 scores .* row 3 \(u3\)"):
        evaluate_scores(bad)
    result = evaluate_scores(bad, drop_invalid=True)
    assert result["n_dropped"] == 2 and "dropped 2" in result["warnings"][0]
    one = df[df.label == "spoof"]
    with pytest.raises(CmError, match="no bona fide trials"):
        evaluate_scores(one)
    odd = df.copy()
    odd.loc[0, "label"] = "genuine"
    with pytest.raises(CmError, match="unknown label value"):
        evaluate_scores(odd)
    with pytest.raises(CmError, match="no trials"):
        evaluate_scores(df.iloc[:0])


def test_score_kind_prob_changes_costs_not_eer():
    df = _table()
    probs = df.assign(score=1 / (1 + np.exp(-df.score)))
    raw = evaluate_scores(probs)
    prob = evaluate_scores(probs, score_kind="prob")
    assert prob["overall"]["eer"] == pytest.approx(raw["overall"]["eer"])
    assert prob["overall"]["cllr"] == pytest.approx(evaluate_scores(df)["overall"]["cllr"], abs=1e-9)
    # issue 13.8: "prob" is the deprecated name of "posterior" (posterior log-odds, not LLRs)
    assert prob["params"]["score_kind"] == "posterior"
    assert any("--score-kind prob is deprecated" in w for w in prob["warnings"])
