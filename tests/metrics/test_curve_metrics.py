"""Hand-computed cases and scikit-learn cross-checks for EER, ROCCH-EER, minCllr, AUC, DCF, Cllr."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.metrics import act_dcf, auc, cllr, compute_metrics, det_curve, eer, eer_rocch, min_cllr, min_dcf, to_llr
from cm_cli.metrics.hull import pav_blocks


def test_det_curve_prepends_point_and_breaks_ties_bona_first():
    curve = det_curve(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    # sorted: spoof 0, bona 1, spoof 1, bona 2
    assert curve.frr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert curve.far.tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]
    assert curve.thresholds[0] == pytest.approx(-0.001)


def test_eer_hand_case_and_perfect_separation():
    # bona 3,4 ; spoof 1,2 -> separable
    assert eer(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0
    # bona 1,3 ; spoof 2,4 -> sorted b s b s: frr 0,.5,.5,1,1 far 1,1,.5,.5,0 -> |d| min .0 at index 2
    assert eer(np.array([1.0, 3.0]), np.array([2.0, 4.0])) == 0.5
    # official: EER = mean of FRR and FAR at argmin, not interpolated
    # sorted s b b s b b b: argmin |FRR - FAR| at (FRR 0.4, FAR 0.5) -> 0.45 (interpolation would give 0.4)
    assert eer(np.array([2.0, 3.0, 4.0, 5.0, 6.0]), np.array([1.0, 3.5])) == pytest.approx(0.45)


def test_eer_rocch_hand_cases():
    assert eer_rocch(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0
    # one bona below one spoof out of 2 each: ROC points (pfa, pmiss) = (1,0),(1/2,0),(1/2,1/2),(0,1/2),(0,1)
    # hull (1,0)->(0,1/2)... via (1/2,0): segment (1/2,0)-(0,1/2) crosses diagonal at 1/4
    assert eer_rocch(np.array([1.5, 3.0]), np.array([1.0, 2.0])) == pytest.approx(0.25)
    # complete tie: hull is the diagonal chord -> EER 1/2
    assert eer_rocch(np.zeros(3), np.zeros(5)) == pytest.approx(0.5)


def test_eer_rocch_never_exceeds_eer():
    rng = np.random.default_rng(3)
    for _ in range(20):
        bona = np.round(rng.normal(1, 1, 40), 1)
        spoof = np.round(rng.normal(0, 1, 60), 1)
        assert eer_rocch(bona, spoof) <= eer(bona, spoof) + 1e-12


def _sk_min_cllr(bona, spoof):
    from sklearn.isotonic import IsotonicRegression

    scores = np.concatenate([bona, spoof])
    labels = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    p = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(scores, labels).predict(scores)
    with np.errstate(divide="ignore"):
        llr = np.log(p) - np.log1p(-p) - math.log(bona.size / spoof.size)
    b, s = llr[: bona.size], llr[bona.size :]
    return 0.5 * (np.mean(np.logaddexp(0, -b)) + np.mean(np.logaddexp(0, s))) / math.log(2)


@pytest.mark.parametrize("seed", range(6))
def test_min_cllr_and_auc_match_sklearn(seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    bona = np.round(rng.normal(1.0, 1.0, 300), 1 + seed % 2)  # rounding makes ties
    spoof = np.round(rng.normal(-0.5, 1.3, 500), 1 + seed % 2)
    assert min_cllr(bona, spoof) == pytest.approx(_sk_min_cllr(bona, spoof), abs=1e-9)
    y = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    assert auc(bona, spoof) == pytest.approx(roc_auc_score(y, np.concatenate([bona, spoof])), abs=1e-12)


def test_min_cllr_hand_cases():
    assert min_cllr(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0  # separable: perfect calibration
    assert min_cllr(np.zeros(4), np.zeros(4)) == pytest.approx(1.0)  # uninformative: 1 bit
    assert min_cllr(np.array([0.0]), np.array([1.0])) == pytest.approx(1.0)  # reversed: PAV pools to prior


def test_min_cllr_bounded_by_cllr_and_one():
    rng = np.random.default_rng(7)
    bona, spoof = rng.normal(2, 1, 200), rng.normal(-2, 1, 300)
    value = min_cllr(bona, spoof)
    assert 0 < value <= min(cllr(bona, spoof), 1.0)


def test_pav_blocks_increasing_ratio():
    blocks = pav_blocks(np.array([1, 0, 2, 0, 3]), np.array([0, 2, 0, 1, 0]))
    ratios = blocks.bona / (blocks.bona + blocks.spoof)
    assert np.all(np.diff(ratios) > 0)
    assert blocks.bona.sum() == 6 and blocks.spoof.sum() == 3


def test_auc_hand_cases():
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auc(np.array([0.0]), np.array([1.0])) == 0.0
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5


def test_cllr_hand_values():
    # LLR 0 everywhere: 1 bit
    assert cllr(np.zeros(3), np.zeros(5)) == pytest.approx(1.0)
    bona, spoof = np.array([2.0]), np.array([-1.0])
    expected = 0.5 * (math.log2(1 + math.exp(-2)) + math.log2(1 + math.exp(-1)))
    assert cllr(bona, spoof) == pytest.approx(expected)
    # huge scores do not overflow
    assert math.isfinite(cllr(np.array([1e4]), np.array([1e4])))


def test_act_dcf_threshold_rule_and_defaults():
    thr = -math.log(0.95 / 0.5)
    # bona fide exactly at the threshold is accepted; spoof exactly at it is accepted too
    value = act_dcf(np.array([thr, 5.0]), np.array([thr, -5.0]))
    assert value == pytest.approx((10 * 0.05 * 0.5) / 0.5)
    assert act_dcf(np.array([5.0]), np.array([-5.0])) == 0.0
    # all rejected: FRR 1 -> 0.95 / 0.5
    assert act_dcf(np.array([-5.0]), np.array([-5.0])) == pytest.approx(0.95 / 0.5)


def test_min_dcf_costs_are_parameters():
    # sorted s b s b b: (FRR, FAR) = (0,1) (0,.5) (1/3,.5) (1/3,0) (2/3,0) (1,0)
    bona, spoof = np.array([1.0, 3.0, 4.0]), np.array([2.0, 0.0])
    assert min_dcf(bona, spoof) == pytest.approx(0.25 / 0.5)  # 0.95 FRR + 0.5 FAR, best at (0, .5)
    assert min_dcf(bona, spoof, p_spoof=0.5, c_miss=1, c_fa=1) == pytest.approx((1 / 6) / 0.5)  # at (1/3, 0)


def test_metrics_record_has_design_keys():
    m = compute_metrics(np.array([1.0, 2.0]), np.array([0.0, 1.5]))
    assert list(m.to_dict()) == [
        "eer",
        "eer_threshold",
        "eer_rocch",
        "min_dcf",
        "act_dcf",
        "cllr",
        "min_cllr",
        "auc",
        "n_bonafide",
        "n_spoof",
    ]


def test_one_class_and_nan_are_errors():
    with pytest.raises(CmError, match="no spoof trials"):
        compute_metrics(np.array([1.0]), np.array([]))
    with pytest.raises(CmError, match=r"1 of 2 .*NaN.*row 1"):
        eer(np.array([1.0, np.nan]), np.array([0.0]))


def test_score_kinds():
    p = np.array([0.0, 0.5, 0.9, 1.0])
    llr = to_llr(p, "prob")
    assert llr[1] == 0.0 and llr[2] == pytest.approx(math.log(9))
    assert np.isfinite(llr).all() and llr[0] == pytest.approx(-llr[3], rel=1e-4)
    assert to_llr(np.array([3.0]), "logit")[0] == 3.0
    with pytest.raises(CmError, match="probabilities"):
        to_llr(np.array([1.5]), "prob")


def test_vectorised_pav_equals_the_sequential_stack():
    """The lower-hull passes give exactly the blocks of the pool-adjacent-violators stack (ties, pure groups,
    collinear runs), and the stack is still what a pathological input falls back to."""
    from cm_cli.metrics import hull

    rng = np.random.default_rng(0)
    for _ in range(500):
        k = int(rng.integers(1, 80))
        b, s = rng.integers(0, 4, k), rng.integers(0, 4, k)
        b[(b + s) == 0] = 1
        fast, slow = hull.pav_blocks(b, s), hull._pav_stack(b, s)
        for field in ("bona", "spoof", "ends"):
            assert np.array_equal(getattr(fast, field), getattr(slow, field))
    collinear = hull.pav_blocks(np.array([1, 1, 1, 1]), np.array([1, 1, 1, 1]))  # one segment
    assert collinear.ends.tolist() == [4] and collinear.bona.tolist() == [4]
