"""The seed-level comparison is calibrated (planted nulls), at least as powerful as Welch's t (planted effect),
and every bootstrap EER is cm eval's EER (tie order), so an interval contains its own point estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cm_cli.metrics.stats import bootstrap_eers, hedges_g, seed_test, weighted_eer_dcf
from cm_cli.metrics.summary import eer
from cm_cli.metrics.trials import sort_trials
from cm_cli.report.seedstats import compare_groups
from tests.metrics.seedsim import rejection_table


def test_planted_null_false_positive_rate_is_near_alpha():
    """Issue 26 item 2: 400 studies per cell, 3 and 5 seeds, seed sd 0, 0.25, 0.5 of the trial noise."""
    rows = rejection_table(400, n_boot=60)
    assert len(rows) == 6
    for row in rows:
        assert 0.03 <= row["seed_test"] <= 0.07, row


def test_planted_effect_power_is_at_least_welchs():
    rows = rejection_table(200, effect=0.8, seed_sds=(0.25,), n_boot=60, seed=11)
    for row in rows:
        assert row["seed_test"] >= row["welch"] and row["seed_test"] > 0.4, row


def test_hedges_g_known_answer():
    # d = (3 - 2) / 1 = 1; J = 1 - 3 / (4 * 6 - 9) = 0.8
    assert hedges_g([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == pytest.approx(0.8)
    assert math.isnan(hedges_g([1.0], [2.0, 3.0]))


def test_one_seed_per_side_uses_the_trial_variance_only():
    rng = np.random.default_rng(0)
    boot = rng.normal(0, 0.01, (500, 2))
    out = seed_test([0.10], [0.13], boot[:, :1], boot[:, 1:], n_clusters=50)
    assert out.se_seeds == 0 and out.se == pytest.approx(np.sqrt(np.var(boot[:, 0] - boot[:, 1], ddof=1)), rel=1e-9)
    assert out.df == pytest.approx(49) and out.ci_low < out.difference < out.ci_high


def _tied_study(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 900
    is_bona = rng.random(n) < 0.3
    speakers = rng.integers(0, 30, n).astype(str)
    systems = [np.round(np.where(is_bona, 0.8, 0.0) + rng.normal(0, 1, n), 0) for _ in range(6)]  # heavy ties
    return is_bona, speakers, systems


def test_bootstrap_eer_on_tied_scores_is_cm_evals_eer():
    """Issue 26 item 2: the old seed bootstrap sorted without the bona-fide-first tie order (1-1.7 points off)."""
    is_bona, _, systems = _tied_study()
    for scores in systems:
        trials = sort_trials(scores, is_bona)
        unit = weighted_eer_dcf(trials.is_bona, np.ones(len(scores)))[0]
        assert unit == pytest.approx(eer(scores[is_bona], scores[~is_bona]), abs=1e-12)
    # a resample's EER equals cm eval's EER of the expanded resample
    boot = bootstrap_eers(systems[:1], is_bona, None, n_boot=3, seed=4)
    rng = np.random.default_rng(4)
    counts = np.bincount(rng.integers(0, len(is_bona), len(is_bona)), minlength=len(is_bona))
    expanded = np.repeat(systems[0], counts), np.repeat(is_bona, counts)
    assert boot[0, 0] == pytest.approx(eer(expanded[0][expanded[1]], expanded[0][~expanded[1]]), abs=1e-12)


def test_interval_contains_its_point_estimate_on_tied_scores():
    is_bona, speakers, systems = _tied_study(1)
    (test,) = compare_groups({"A": systems[:3], "B": systems[3:]}, is_bona, speakers, unit="speaker", n_boot=300)
    point_a = np.mean([100 * eer(s[is_bona], s[~is_bona]) for s in systems[:3]])
    assert test.eer_a == pytest.approx(point_a, abs=1e-9)
    assert test.ci_low <= test.difference <= test.ci_high
    boot = bootstrap_eers(systems[:1], is_bona, speakers, n_boot=400, seed=2)[:, 0]
    low, high = np.quantile(boot, [0.025, 0.975])
    assert low <= eer(systems[0][is_bona], systems[0][~is_bona]) <= high
