"""Clustered bootstrap units (issue 13.3): copies of one source resample together, nulls never merge."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.metrics.clusters import cluster_keys
from cm_cli.metrics.report import evaluate_scores


def _copies(n_sources: int = 80, copies: int = 4, lone: int = 40, seed: int = 0) -> pd.DataFrame:
    """Each source: one uncoded row (codec_seed null, id = the source id) and coded copies
    (codec_seed = the source id), all sharing a strong per-source score offset."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sources):
        label = "bonafide" if s % 4 == 0 else "spoof"
        offset = rng.normal(0, 2.0) + (1.0 if label == "bonafide" else -1.0)
        rows.append(
            {
                "utt_id": f"S{s:03d}",
                "codec_seed": "-",
                "label": label,
                "speaker": None,
                "score": offset + rng.normal(0, 0.1),
            }
        )
        for c in range(copies):
            rows.append(
                {
                    "utt_id": f"S{s:03d}_c{c}",
                    "codec_seed": f"S{s:03d}",
                    "label": label,
                    "speaker": None,
                    "score": offset + rng.normal(0, 0.1),
                }
            )
    for i in range(lone):  # uncoded rows without copies: each its own cluster
        label = "bonafide" if i % 2 else "spoof"
        rows.append(
            {
                "utt_id": f"L{i:03d}",
                "codec_seed": None,
                "label": label,
                "speaker": None,
                "score": rng.normal(1.0 if label == "bonafide" else -1.0, 2.0),
            }
        )
    return pd.DataFrame(rows)


def test_source_keys_group_copies_with_their_source_and_keep_nulls_apart():
    df = _copies()
    spec = cluster_keys(df, "source")
    assert spec.cluster_by == "source" and spec.unit == "source utterance"
    keys = pd.Series(spec.keys)
    assert keys.nunique() == 80 + 40  # 80 sources (uncoded row + 4 copies), 40 lone rows
    assert (keys[df.utt_id.str.startswith("S000")] == "S000").all()
    # speaker is null everywhere: every trial its own cluster, never one big null cluster
    assert pd.Series(cluster_keys(df, "speaker").keys).nunique() == len(df)
    assert cluster_keys(df, "auto").cluster_by == "source"
    assert cluster_keys(df.drop(columns=["codec_seed"]), "auto").keys is None
    assert cluster_keys(df, "none").unit == "trial"
    with pytest.raises(CmError, match="clusters by 'nope': no such column"):
        cluster_keys(df, "nope")


def test_per_trial_resampling_understates_the_interval_of_copies():
    df = _copies()
    per_trial = evaluate_scores(df, bootstrap=300, cluster_by="none")["ci"]
    by_source = evaluate_scores(df, bootstrap=300, cluster_by="source")["ci"]
    default = evaluate_scores(df, bootstrap=300)["ci"]
    assert per_trial["cluster_by"] is None and per_trial["unit"] == "trial" and per_trial["n_clusters"] == len(df)
    assert by_source["cluster_by"] == "source" and by_source["n_clusters"] == 120
    assert default == by_source  # the default clusters by source where the columns allow
    # five near-identical copies per source: the honest interval is ~sqrt(5) wider
    assert by_source["eer_std"] > 1.6 * per_trial["eer_std"]
    width = lambda ci: ci["eer"][1] - ci["eer"][0]  # noqa: E731
    assert width(by_source) > 1.6 * width(per_trial)


def test_fixture_source_interval(fixtures_dir, run_cm, cm_env):
    """The w2v2 ERM fixture: with nulls merged into one cluster the width was 3.97 points."""
    path = fixtures_dir / "scores" / "asvspoof5_eval50k_w2v2_erm.tsv"
    result = run_cm(
        "--json",
        "eval",
        "--scores",
        path,
        "--score-col",
        "score",
        "--label-col",
        "y_task",
        "--bonafide-value",
        "0",
        "--bootstrap",
        "200",
        "--cluster-by",
        "source",
        "--out",
        cm_env / "ci",
    )
    assert result.exit_code == 0, result.stderr
    ci = json.loads(result.stdout)["ci"]
    assert json.loads((cm_env / "ci" / "metrics.json").read_text())["ci"] == ci
    table = pd.read_csv(path, sep="\t", dtype=str)
    expected = np.where(table.codec_seed == "-", table.flac_file, table.codec_seed)
    assert ci["cluster_by"] == "source" and ci["unit"] == "source utterance"
    assert ci["n_clusters"] == len(set(expected))
    assert 0.5 < 100 * (ci["eer"][1] - ci["eer"][0]) < 1.2


def test_auto_prefers_speaker_then_source_then_trial_and_says_which():
    """Issue 26 item 4: auto = speaker when the table has speakers, else source utterance, else trial."""
    df = _copies()
    df["speaker"] = [f"spk{i % 30}" for i in range(len(df))]
    spec = cluster_keys(df, "auto")
    assert spec.cluster_by == "speaker" and spec.unit == "speaker" and pd.Series(spec.keys).nunique() == 30
    ci = evaluate_scores(df, bootstrap=50)["ci"]
    assert ci["cluster_by"] == "speaker" and ci["unit"] == "speaker" and ci["n_clusters"] == 30
    assert cluster_keys(df.assign(speaker=None), "auto").cluster_by == "source"  # an all-null column is no unit
    assert cluster_keys(df.drop(columns=["codec_seed"]).assign(speaker="-"), "auto").keys is None


def test_cluster_codes_one_definition():
    from cm_cli.metrics.clusters import cluster_codes

    codes, n = cluster_codes(np.array(["b", "a", None, "b", "", "-", float("nan"), "a"], dtype=object))
    assert n == 2 + 4  # a, b, and four null keys each their own cluster
    assert codes[0] == codes[3] and codes[1] == codes[7] and codes[0] != codes[1]
    assert len({codes[2], codes[4], codes[5], codes[6]}) == 4 and min(codes[[2, 4, 5, 6]]) >= 2
