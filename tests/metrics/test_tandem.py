"""t-DCF (legacy, revised, ASVspoof 5), a-DCF and t-EER against the official packages' formulas.

The reference functions below restate, loop by loop, what the official evaluation packages
compute (ASVspoof 2019 tDCF_python v1, ASVspoof 2021 eval-package/eval_metrics.py,
ASVspoof 5 evaluation-package calculate_modules.py and a_dcf.py); cm's vectorised versions
must agree to 1e-9 on many synthetic score sets, including ties and useless systems.
"""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.metrics.sasv import ADcfCosts, a_dcf, t_eer
from cm_cli.metrics.tdcf import ASVSPOOF5_ASV_RATES, AsvRates, asv_error_rates, min_tdcf

# ---------- reference restatements of the official formulas (slow, literal) ----------


def ref_det(tar, non):
    scores = np.concatenate((tar, non))
    labels = np.concatenate((np.ones(tar.size), np.zeros(non.size)))
    idx = np.argsort(scores, kind="mergesort")
    labels = labels[idx]
    tsum = np.cumsum(labels)
    nsum = non.size - (np.arange(1, scores.size + 1) - tsum)
    frr = np.concatenate(([0], tsum / tar.size))
    far = np.concatenate(([1], nsum / non.size))
    thr = np.concatenate(([scores[idx[0]] - 0.001], scores[idx]))
    return frr, far, thr


def ref_asv_rates(tar, non, spf):
    frr, far, thr = ref_det(tar, non)
    t = thr[np.argmin(np.abs(frr - far))]
    return (sum(non >= t) / non.size, sum(tar < t) / tar.size, np.sum(spf < t) / spf.size, np.sum(spf >= t) / spf.size)


def ref_tdcf_legacy(bona, spoof, pfa, pmiss, pmiss_spoof):
    p = 0.05
    ptar, pnon = (1 - p) * 0.99, (1 - p) * 0.01
    pm, pf, _ = ref_det(bona, spoof)
    c1 = ptar * (1 - 1 * pmiss) - pnon * 10 * pfa
    c2 = 10 * p * (1 - pmiss_spoof)
    return np.min((c1 * pm + c2 * pf) / np.minimum(c1, c2))


def ref_tdcf_revised(bona, spoof, pfa, pmiss, pfa_spoof):
    p = 0.05
    ptar, pnon = (1 - p) * 0.99, (1 - p) * 0.01
    pm, pf, _ = ref_det(bona, spoof)
    c0 = ptar * 1 * pmiss + pnon * 10 * pfa
    c1 = ptar * 1 - (ptar * 1 * pmiss + pnon * 10 * pfa)
    c2 = p * 10 * pfa_spoof
    return np.min((c0 + c1 * pm + c2 * pf) / (c0 + np.minimum(c1, c2)))


def ref_adcf(tar, non, spf, ptar=0.9, pnon=0.05, pspf=0.05, cmiss=1, cfa_asv=10, cfa_cm=20):
    scores = np.concatenate((tar, non, spf))
    labels = np.concatenate((np.ones_like(tar), np.zeros_like(non), np.ones_like(spf) + 1))
    idx = np.argsort(scores, kind="mergesort")
    fp_n, fp_s, fn = len(non), len(spf), 0
    fa_asv, fa_cm, frr = [1.0], [1.0], [0.0]
    for lab in labels[idx]:
        if lab == 0:
            fp_n -= 1
        elif lab == 1:
            fn += 1
        else:
            fp_s -= 1
        fa_asv.append(fp_n / len(non))
        fa_cm.append(fp_s / len(spf))
        frr.append(fn / len(tar))
    d = (
        np.array([cmiss * ptar]) * np.array(frr)
        + np.array([cfa_asv * pnon]) * np.array(fa_asv)
        + np.array([cfa_cm * pspf]) * np.array(fa_cm)
    )
    return float(np.min(d / min(np.array([cfa_asv * pnon + cfa_cm * pspf]), np.array([cmiss * ptar]))))


def ref_teer(cm, asv, keys):
    tar, non, spf = keys == "target", keys == "nontarget", keys == "spoof"
    scores = np.concatenate((asv[tar], asv[non], asv[spf]))
    labels = np.concatenate((np.ones(tar.sum()), np.zeros(non.sum()), -np.ones(spf.sum())))
    idx = np.argsort(scores, kind="mergesort")
    labels = labels[idx]
    pmiss_asv = np.concatenate(([0], np.cumsum(labels == 1) / tar.sum()))
    pfa_non = np.concatenate(([1], 1 - (np.cumsum(labels == 0) / non.sum())))
    pfa_spf = np.concatenate(([1], 1 - (np.cumsum(labels == -1) / spf.sum())))
    pmiss_cm, pfa_cm, _ = ref_det(np.concatenate([cm[tar], cm[non]]), cm[spf])
    best, value = np.inf, None
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(pmiss_asv.size):
            ptdm = pmiss_cm + (1 - pmiss_cm) * pmiss_asv[i]
            ftdm = (1 - 0) * (1 - pmiss_cm) * pfa_non[i] + 0 * pfa_cm * pfa_spf[i]
            j = np.argmin(abs(ptdm - ftdm))
            if pmiss_asv[i] < (1 - 0) * pfa_non[i] + 0 * pfa_spf[i]:
                crit = abs(pfa_non[i] / pfa_spf[i] - pfa_cm[j] / (1 - pmiss_cm[j]))
                if crit < best:
                    best, value = crit, pfa_spf[i] * pfa_cm[j]
    return value


# ---------- synthetic score sets: several operating conditions ----------


def _sets():
    out = []
    for seed, (asv_sep, spoof_asv, cm_sep, rounding, n) in enumerate(
        [
            (3.0, 1.0, 3.0, None, 300),  # good ASV and CM
            (2.0, 2.5, 0.5, None, 250),  # weak CM, spoofs fool the ASV
            (1.0, 0.0, 6.0, None, 200),  # very good CM
            (2.5, 1.5, 0.0, None, 200),  # useless CM
            (3.0, 1.0, 2.0, 1, 300),  # heavy ties (scores rounded)
            (1.5, 0.8, 1.5, 0, 150),  # extreme ties
        ]
    ):
        rng = np.random.default_rng(seed)
        n_tar, n_non, n_spf = n, n // 2 + 7, n + 31
        asv = np.concatenate([rng.normal(asv_sep, 1, n_tar), rng.normal(0, 1, n_non), rng.normal(spoof_asv, 1, n_spf)])
        cm = np.concatenate([rng.normal(cm_sep, 1, n_tar + n_non), rng.normal(0, 1, n_spf)])
        if rounding is not None:
            asv, cm = np.round(asv, rounding), np.round(cm, rounding)
        keys = np.array(["target"] * n_tar + ["nontarget"] * n_non + ["spoof"] * n_spf)
        perm = rng.permutation(keys.size)
        out.append((cm[perm], asv[perm], keys[perm]))
    return out


SETS = _sets()


@pytest.mark.parametrize("index", range(len(SETS)))
def test_tdcf_matches_official_formulas(index):
    cm, asv, keys = SETS[index]
    tar, non, spf = asv[keys == "target"], asv[keys == "nontarget"], asv[keys == "spoof"]
    bona, spoof = cm[keys != "spoof"], cm[keys == "spoof"]
    pfa, pmiss, pmiss_spoof, pfa_spoof = ref_asv_rates(tar, non, spf)
    rates = asv_error_rates(tar, non, spf)
    assert (rates.p_fa, rates.p_miss, rates.p_miss_spoof, rates.p_fa_spoof) == pytest.approx(
        (pfa, pmiss, pmiss_spoof, pfa_spoof), abs=0
    )
    if len(np.unique(cm)) < 3:
        return
    legacy = min_tdcf(bona, spoof, rates, formulation="legacy").min_tdcf
    revised = min_tdcf(bona, spoof, rates, formulation="revised").min_tdcf
    assert legacy == pytest.approx(ref_tdcf_legacy(bona, spoof, pfa, pmiss, pmiss_spoof), abs=1e-12)
    assert revised == pytest.approx(ref_tdcf_revised(bona, spoof, pfa, pmiss, pfa_spoof), abs=1e-12)
    a5 = min_tdcf(bona, spoof, formulation="asvspoof5").min_tdcf
    r = ASVSPOOF5_ASV_RATES
    assert a5 == pytest.approx(ref_tdcf_legacy(bona, spoof, r.p_fa, r.p_miss, 1 - 0.4607082907604729), abs=1e-12)


@pytest.mark.parametrize("index", range(len(SETS)))
def test_adcf_and_teer_match_official_formulas(index):
    cm, asv, keys = SETS[index]
    sasv = asv + 0.5 * cm
    got = a_dcf(sasv[keys == "target"], sasv[keys == "nontarget"], sasv[keys == "spoof"]).min_a_dcf
    assert got == pytest.approx(
        ref_adcf(sasv[keys == "target"], sasv[keys == "nontarget"], sasv[keys == "spoof"]), abs=1e-12
    )
    expected = ref_teer(cm, asv, keys)
    assert expected is not None
    assert t_eer(cm, asv, keys) == pytest.approx(expected, abs=1e-12)


def test_tdcf_hand_computed_case():
    """Two bona fide, two spoof CM trials and a perfect ASV: every term can be checked by hand."""
    rates = AsvRates(p_fa=0.0, p_miss=0.0, p_miss_spoof=0.0, p_fa_spoof=1.0)
    # revised: C0 = 0, C1 = Ptar, C2 = Pspoof*10 = 0.5; Ptar = 0.9405 -> norm = 0.5
    # a CM separating the classes reaches Pmiss = Pfa = 0 -> min t-DCF 0
    assert min_tdcf([2.0, 3.0], [0.0, 1.0], rates).min_tdcf == 0.0
    # overlapping CM: bona [0, 2], spoof [1, 3]; best point rejects 1 bona + 1 spoof -> (Ptar*0.5 + 0.5*0.5)/0.5
    r = min_tdcf([0.0, 2.0], [1.0, 3.0], rates)
    ptar = 0.95 * 0.99
    expected = min(ptar * 0.5 + 0.5 * 0.5, ptar * 0.0 + 0.5 * 1.0, ptar * 1.0, ptar * 0.5 + 0.5 * 1.0) / 0.5
    assert r.min_tdcf == pytest.approx(expected, abs=1e-15)
    assert r.c0 == 0.0 and r.c2 == pytest.approx(0.5)


def test_useless_cm_gives_one_and_perfect_cm_gives_c0():
    rng = np.random.default_rng(3)
    tar, non, spf = rng.normal(3, 1, 400), rng.normal(0, 1, 400), rng.normal(2, 1, 400)
    rates = asv_error_rates(tar, non, spf)
    same = rng.normal(0, 1, 2000)
    useless = min_tdcf(same[:1000], same[1000:], rates).min_tdcf
    assert 0.9 <= useless <= 1.0 + 1e-12
    perfect = min_tdcf(rng.normal(10, 1, 500), rng.normal(-10, 1, 500), rates)
    assert perfect.min_tdcf == pytest.approx(perfect.c0 / (perfect.c0 + min(perfect.c1, perfect.c2)), abs=1e-15)


def test_adcf_hand_computed_case():
    # perfectly separated SASV scores: spoof < nontarget < target -> a threshold between gives 0
    assert a_dcf([5.0, 6.0], [1.0, 2.0], [-3.0, -2.0]).min_a_dcf == 0.0
    # everything tied: only "accept all" (Pfa 1,1) or "reject all" (Pmiss 1) -> 1.0 after normalisation
    c = ADcfCosts()
    expected = min(c.c_fa_non * c.p_non + c.c_fa_spf * c.p_spf, c.c_miss * c.p_tar) / min(
        c.c_fa_non * c.p_non + c.c_fa_spf * c.p_spf, c.c_miss * c.p_tar
    )
    assert a_dcf([1.0], [1.0], [1.0]).min_a_dcf == pytest.approx(expected)


def test_errors_are_one_line():
    with pytest.raises(CmError, match="no spoof trials"):
        asv_error_rates([1.0, 2.0], [0.0], [])
    with pytest.raises(CmError, match="NaN"):
        min_tdcf([1.0, np.nan, 2.0], [0.0, -1.0], ASVSPOOF5_ASV_RATES)
    with pytest.raises(CmError, match="soft CM scores"):
        min_tdcf([1.0, 1.0], [0.0, 0.0], ASVSPOOF5_ASV_RATES)
    with pytest.raises(CmError, match="no spoof"):
        a_dcf([1.0], [0.0], [])


def test_large_tdcf_is_fast():
    """181,566 trials (the 2021 LA eval size) well under a second: a smoke check, not a timing assertion."""
    rng = np.random.default_rng(0)
    bona, spoof = rng.normal(2, 1, 14816), rng.normal(0, 1, 181566 - 14816)
    rates = asv_error_rates(rng.normal(3, 1, 5000), rng.normal(0, 1, 5000), rng.normal(1, 1, 5000))
    assert 0 < min_tdcf(bona, spoof, rates).min_tdcf < 1
