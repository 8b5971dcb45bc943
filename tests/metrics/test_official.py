"""Agreement with the official evaluation package's numbers on the shared fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cm_cli.metrics import compute_metrics, eer, min_dcf
from cm_cli.metrics.breakdown import breakdown
from cm_cli.metrics.trials import sort_trials

FILES = ["asvspoof5_eval50k_w2v2_erm.tsv", "asvspoof5_eval50k_w2v2_dann.tsv"]


@pytest.fixture(scope="module")
def expected(fixtures_dir):
    return json.loads((fixtures_dir / "scores" / "expected_metrics.json").read_text())


def _load(fixtures_dir, name):
    import pandas as pd

    return pd.read_csv(fixtures_dir / "scores" / name, sep="\t", dtype={"codec": str})


def _check(got: dict, want: dict) -> None:
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9, rel=0), key


@pytest.mark.parametrize("name", FILES)
def test_overall_and_per_codec_match_expected(fixtures_dir, expected, name):
    df = _load(fixtures_dir, name)
    bona = df["y_task"].to_numpy() == 0
    scores = df["score"].to_numpy()
    _check(compute_metrics(scores[bona], scores[~bona]).to_dict(), expected[name]["overall"])
    # the per-codec numbers come from one shared sort
    trials = sort_trials(scores, bona)
    groups = {g.value: g for g in breakdown(trials, df["codec"].to_numpy(dtype=object))}
    assert set(groups) == set(expected[name]["by_codec"])
    for codec, want in expected[name]["by_codec"].items():
        assert groups[codec].bonafide_pool == "group"
        _check(groups[codec].metrics.to_dict(), want)


def test_single_metric_functions_agree(fixtures_dir, expected):
    df = _load(fixtures_dir, FILES[0])
    bona = df["y_task"].to_numpy() == 0
    scores = df["score"].to_numpy()
    want = expected[FILES[0]]["overall"]
    assert eer(scores[bona], scores[~bona]) == pytest.approx(want["eer"], abs=1e-12)
    assert min_dcf(scores[bona], scores[~bona]) == pytest.approx(want["min_dcf"], abs=1e-12)


def test_input_order_does_not_matter(fixtures_dir):
    df = _load(fixtures_dir, FILES[1])
    bona = df["y_task"].to_numpy() == 0
    scores = df["score"].to_numpy()
    perm = np.random.default_rng(0).permutation(scores.size)
    a = sort_trials(scores, bona)
    b = sort_trials(scores[perm], bona[perm])
    from cm_cli.metrics.summary import metrics_from_sorted

    ma, mb = metrics_from_sorted(a).to_dict(), metrics_from_sorted(b).to_dict()
    for key in ma:
        assert ma[key] == pytest.approx(mb[key], abs=1e-12), key
