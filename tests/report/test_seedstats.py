"""Seed aggregation and paired tests: a planted EER difference gives a small p, identical groups p = 1."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cm_cli.metrics.stats import bootstrap_eers, holm, weighted_eer_dcf
from cm_cli.metrics.summary import eer
from cm_cli.metrics.trials import sort_trials
from cm_cli.report.seedstats import compare_groups, mean_sd, paired_test, verdict


def _trials(n_bona=600, n_spoof=600, seed=0):
    rng = np.random.default_rng(seed)
    is_bona = np.r_[np.ones(n_bona, bool), np.zeros(n_spoof, bool)]
    speakers = rng.integers(0, 40, size=len(is_bona)).astype(str)
    return is_bona, speakers


def _system(is_bona, separation, seed):
    rng = np.random.default_rng(seed)
    return np.where(is_bona, separation, 0.0) + rng.normal(size=len(is_bona))


def test_unit_weights_give_the_official_eer():
    is_bona, _ = _trials(seed=1)
    scores = _system(is_bona, 1.0, 5)
    trials = sort_trials(scores, is_bona)
    value = weighted_eer_dcf(trials.is_bona, np.ones((1, len(scores))))[0][0]
    assert value == pytest.approx(eer(scores[is_bona], scores[~is_bona]), abs=1e-12)


def test_planted_difference_gives_a_small_p():
    is_bona, speakers = _trials()
    erm = [_system(is_bona, 1.0, s) for s in range(3)]  # EER ~ 31 %
    better = [_system(is_bona, 2.0, 10 + s) for s in range(3)]  # EER ~ 16 %
    (test,) = compare_groups({"ERM": erm, "DANN": better}, is_bona, speakers, unit="speaker", n_boot=400)
    assert test.difference < -8 and test.ci_high < 0
    assert test.p_value < 0.01 and test.hedges_g < -2
    assert "supports a real difference, DANN has a lower EER than ERM" in verdict(test)


def test_identical_groups_give_a_large_p():
    is_bona, speakers = _trials(seed=2)
    systems = [_system(is_bona, 1.0, s) for s in range(3)]
    (test,) = compare_groups({"A": systems, "B": [s.copy() for s in systems]}, is_bona, speakers, n_boot=300)
    assert test.difference == 0 and test.p_value == 1.0 and test.ci_low < 0 < test.ci_high  # seed spread
    assert "does not support a difference" in verdict(test)


def test_same_system_different_seeds_is_not_significant():
    is_bona, speakers = _trials(seed=3)
    a = [_system(is_bona, 1.5, s) for s in range(3)]
    b = [_system(is_bona, 1.5, 20 + s) for s in range(3)]
    (test,) = compare_groups({"A": a, "B": b}, is_bona, speakers, n_boot=400, seed=1)
    assert test.p_value > 0.05 and test.ci_low < 0 < test.ci_high


def test_mean_sd_and_holm():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    mean, sd, n = mean_sd([4.0])
    assert mean == 4.0 and math.isnan(sd) and n == 1
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_bootstrap_shares_resamples_across_systems():
    is_bona, speakers = _trials(seed=4)
    s = _system(is_bona, 1.0, 0)
    boot = bootstrap_eers([s, s.copy()], is_bona, speakers, n_boot=50)
    assert boot.shape == (50, 2) and np.array_equal(boot[:, 0], boot[:, 1]) and boot[:, 0].std() > 0
    test = paired_test([0.2], [0.1], boot[:, :1], boot[:, 1:] - 0.1, a="x", b="y")
    assert test.difference == pytest.approx(-10) and test.n_seeds_a == 1 and math.isnan(test.hedges_g)


def test_planted_gap_difference_and_identical_gaps():
    """The OOD-gap test: B loses far less on coded trials than A (planted), so B − A gap < 0 with a small p;
    identical systems give p = 1."""
    rng = np.random.default_rng(7)
    n = 2400
    is_bona = rng.random(n) < 0.5
    coded = rng.random(n) < 0.5
    speakers = rng.integers(0, 40, n).astype(str)

    def system(coded_separation, seed):
        r = np.random.default_rng(seed)
        separation = np.where(coded, coded_separation, 2.5)
        return np.where(is_bona, separation, 0.0) + r.normal(size=n)

    fragile = [system(0.8, s) for s in range(3)]
    robust = [system(2.2, 10 + s) for s in range(3)]
    (test,) = compare_groups(
        {"ERM": fragile, "DANN": robust}, is_bona, speakers, n_boot=300, gap=(~coded, coded), metric="unseen-codec gap"
    )
    assert test.metric == "unseen-codec gap" and test.eer_a > 15 and test.difference < -10
    assert test.p_value < 0.01 and test.ci_high < 0
    assert "DANN has a lower unseen-codec gap than ERM" in verdict(test)
    (same,) = compare_groups(
        {"A": fragile, "B": [f.copy() for f in fragile]}, is_bona, speakers, n_boot=200, gap=(~coded, coded)
    )
    assert same.difference == 0 and same.p_value == 1.0


def _holm_by_hand(p_values):
    """Holm (1979) step-down, written out: the i-th smallest p times (m - i), running maximum, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def test_one_holm_family_over_every_pair_and_both_metrics_of_four_methods():
    """Issue 26 item 3 / issue 24 item 5: 4 methods, one planted large effect (D separates better everywhere
    and loses less on coded trials), the rest null: one family of 6 EER + 6 gap comparisons whose adjusted
    p-values are Holm's over all 12 raw p-values; only D's comparisons survive."""
    from cm_cli.report.seedstats import holm_family

    rng = np.random.default_rng(11)
    n = 1600
    is_bona = rng.random(n) < 0.5
    coded = rng.random(n) < 0.5
    speakers = rng.integers(0, 40, n).astype(str)

    def system(clean_sep, coded_sep, seed):
        r = np.random.default_rng(seed)
        return np.where(is_bona, np.where(coded, coded_sep, clean_sep), 0.0) + r.normal(size=n)

    groups = {name: [system(2.0, 0.8, 100 * k + s) for s in range(3)] for k, name in enumerate("ABC")}
    groups["D"] = [system(3.5, 3.0, 900 + s) for s in range(3)]
    kwargs = dict(unit="speaker", n_boot=300, seed=0)
    eer_tests = compare_groups(groups, is_bona, speakers, **kwargs)
    gap_tests = compare_groups(groups, is_bona, speakers, gap=(~coded, coded), metric="unseen-codec gap", **kwargs)
    raw = [t.p_value for t in [*eer_tests, *gap_tests]]
    family = holm_family([*eer_tests, *gap_tests], "toy")
    assert len(family) == 12 and len(eer_tests) == len(gap_tests) == 6  # 4 choose 2, twice
    assert [t.p_holm for t in family] == pytest.approx(_holm_by_hand(raw), rel=1e-12)
    assert all(t.p_holm >= t.p_value for t in family)
    assert {t.family for t in family} == {
        "one Holm family of 12 seed-level comparisons on toy (6 EER, 6 unseen-codec gap; every pair of 4 systems)"
    }
    for t in family:
        planted = "D" in (t.a, t.b)
        assert (t.p_holm < 0.05) == planted, (t.a, t.b, t.metric, t.p_value, t.p_holm)
        if planted:
            assert t.difference < 0 if t.b == "D" else t.difference > 0
    # the family is larger than either table alone: an adjusted p can only grow when the other metric joins it
    separate = holm([t.p_value for t in eer_tests])
    assert all(f.p_holm >= s - 1e-12 for f, s in zip(family[:6], separate))
