"""`cm eval --scores`: the JSON interface outside checks use, artifacts, reruns and error exits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def fixture_tsv(fixtures_dir):
    return fixtures_dir / "scores" / "asvspoof5_eval50k_w2v2_erm.tsv"


def test_json_interface_matches_expected(cm_env, run_cm, fixture_tsv, fixtures_dir):
    expected = json.loads((fixtures_dir / "scores" / "expected_metrics.json").read_text())[fixture_tsv.name]
    result = run_cm(
        "--json",
        "eval",
        "--scores",
        fixture_tsv,
        "--score-col",
        "score",
        "--label-col",
        "y_task",
        "--bonafide-value",
        "0",
        "--out",
        cm_env / "m",
        "--by",
        "codec",
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    for key, value in expected["overall"].items():
        assert payload["overall"][key] == pytest.approx(value, abs=1e-9)
    for codec, want in expected["by_codec"].items():
        for key, value in want.items():
            assert payload["by"]["codec"][codec][key] == pytest.approx(value, abs=1e-9)
    assert payload["params"] == {"p_spoof": 0.05, "c_miss": 1.0, "c_fa": 10.0, "score_kind": "raw", "min_trials": 20}
    saved = json.loads((cm_env / "m" / "metrics.json").read_text())
    assert saved["overall"] == payload["overall"]
    table = pd.read_parquet(cm_env / "m" / "metrics_by_codec.parquet")
    assert len(table) == 12 and "codec" in table.columns
    assert json.loads((cm_env / "m" / "cm.json").read_text())["kind"] == "metrics"
    # same options again: reused; other options: refused without --force
    again = run_cm(
        "--json",
        "eval",
        "--scores",
        fixture_tsv,
        "--score-col",
        "score",
        "--label-col",
        "y_task",
        "--bonafide-value",
        "0",
        "--out",
        cm_env / "m",
        "--by",
        "codec",
    )
    assert json.loads(again.stdout)["overall"] == payload["overall"]
    other = run_cm(
        "eval", "--scores", fixture_tsv, "--label-col", "y_task", "--bonafide-value", "0", "--out", cm_env / "m"
    )
    assert other.exit_code == 1


def test_key_protocol_bootstrap_and_ood(cm_env, run_cm):
    rng = np.random.default_rng(0)
    n = 400
    label = np.where(rng.random(n) < 0.3, "bonafide", "spoof")
    codec = rng.choice(["-", "C01", "C02"], n)
    ids = [f"E_{i:06d}" for i in range(n)]
    score = np.where(label == "bonafide", 1.0, -1.0) + rng.normal(0, 1, n)
    (cm_env / "scores.txt").write_text("".join(f"{u} {s:.6f}\n" for u, s in zip(ids, score)))
    protocol = "".join(
        f"E_{i % 9:04d} {u} F {c} 0 - - {'bonafide' if lab == 'bonafide' else 'A17'} {lab} -\n"
        for i, (u, c, lab) in enumerate(zip(ids, codec, label))
    )
    (cm_env / "protocol.tsv").write_text(protocol)
    result = run_cm(
        "--json",
        "eval",
        "--scores",
        cm_env / "scores.txt",
        "--key",
        cm_env / "protocol.tsv",
        "--by",
        "codec,attack",
        "--in-domain",
        "none",
        "--domain-col",
        "codec",
        "--bootstrap",
        "50",
        "--cluster-by",
        "speaker",
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload["by"]["codec"]) == {"none", "C01", "C02"}
    assert payload["by"]["attack"]["A17"]["bonafide_pool"] == "all"
    assert payload["ood_gap"]["in_domain"] == ["none"]
    low, high = payload["ci"]["eer"]
    assert low <= payload["overall"]["eer"] <= high and payload["ci"]["n_clusters"] == 9


@pytest.mark.parametrize(
    "content,args,message",
    [
        ("utt_id,score,label\na,1,bonafide\nb,nan,spoof\nc,0,spoof\n", [], "1 of 3 scores are NaN"),
        ("utt_id,score,label\na,1,spoof\nb,2,spoof\n", [], "no bona fide trials"),
        ("utt_id,score,label\na,1,bonafide\nb,2,fake\n", [], "unknown label value"),
        ("utt_id,value,label\na,1,bonafide\n", [], "columns found: utt_id, value, label"),
        ("", [], "empty file"),
        ("utt_id,score,label\na,1,bonafide\nb,2,spoof\n", ["--by", "codec"], "no column 'codec'"),
    ],
)
def test_bad_input_exits_1_with_one_clear_line(cm_env, run_cm, content, args, message):
    path = cm_env / "s.csv"
    path.write_text(content)
    result = run_cm("eval", "--scores", path, *args)
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_drop_invalid_and_missing_scores_option(cm_env, run_cm):
    path = cm_env / "s.csv"
    path.write_text("utt_id,score,label\na,1,bonafide\nb,inf,spoof\nc,0,spoof\n")
    result = run_cm("--json", "eval", "--scores", path, "--drop-invalid")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["n_dropped"] == 1
    assert run_cm("eval").exit_code == 2


def test_conflicting_duplicate_ids_exit_1_with_one_line(cm_env, run_cm):
    """Issue 13.9: id 'a' twice with both labels used to be evaluated without a word."""
    path = cm_env / "dup.csv"
    path.write_text("utt_id,score,label\na,1,bonafide\nb,0,spoof\na,1,spoof\n")
    for extra in ([], ["--dedupe"]):
        result = run_cm("eval", "--scores", path, *extra)
        assert result.exit_code == 1
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "1 trial id(s) appear more than once (2 rows), first 'a'" in lines[0]
        assert "conflicting" in lines[0]


def test_agreeing_duplicates_need_dedupe(cm_env, run_cm):
    path = cm_env / "dup.csv"
    path.write_text("utt_id,score,label\na,1,bonafide\nb,0,spoof\na,1,bonafide\nb,0,spoof\nc,2,spoof\n")
    refused = run_cm("eval", "--scores", path)
    assert refused.exit_code == 1 and "2 trial id(s)" in refused.stderr and "--dedupe" in refused.stderr
    kept = json.loads(run_cm("--json", "eval", "--scores", path, "--dedupe").stdout)
    assert kept["overall"]["n_bonafide"] == 1 and kept["overall"]["n_spoof"] == 2
    # with a key, the score file's duplicates are caught before the join
    (cm_env / "key.txt").write_text("a bonafide\nb spoof\nc spoof\n")
    (cm_env / "scores.txt").write_text("a 1\nb 0\na 3\nc 2\n")
    keyed = run_cm("eval", "--scores", cm_env / "scores.txt", "--key", cm_env / "key.txt", "--dedupe")
    assert keyed.exit_code == 1 and "first 'a'" in keyed.stderr and "conflicting score" in keyed.stderr


def test_score_kind_posterior_and_the_deprecated_prob(cm_env, run_cm):
    """Issue 13.8: posterior log-odds are not LLRs; the collapse warning points to --calibrate-on."""
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.5
    p = 1 / (1 + np.exp(-(np.where(y, 4.0, -4.0) + rng.normal(0, 1, 400))))
    path = cm_env / "p.csv"
    pd.DataFrame(
        {"utt_id": [f"t{i}" for i in range(400)], "score": p, "label": np.where(y, "bonafide", "spoof")}
    ).to_csv(path, index=False)
    posterior = json.loads(run_cm("--json", "eval", "--scores", path, "--score-kind", "posterior").stdout)
    prob = json.loads(run_cm("--json", "eval", "--scores", path, "--score-kind", "prob").stdout)
    assert posterior["params"]["score_kind"] == prob["params"]["score_kind"] == "posterior"
    assert prob["overall"] == posterior["overall"]
    assert any("deprecated" in w for w in prob["warnings"]) and not any(
        "deprecated" in w for w in posterior["warnings"]
    )
    raw = json.loads(run_cm("--json", "eval", "--scores", path).stdout)  # probabilities read as LLRs: collapse
    bayes = [w for w in raw["warnings"] if "actDCF (Bayes) threshold" in w]
    assert bayes and "--calibrate-on" in bayes[0] and "try --score-kind prob" not in bayes[0]


def test_settings_blocks_corpus_and_the_one_writer(cm_env):
    """A further block (t-DCF, SASV) joins metrics.json by one call; corpus/run are top-level."""
    from cm_cli.core.errors import CmError
    from cm_cli.evaluation.settings import EvalSettings
    from cm_cli.evaluation.writer import add_block, write_metrics_dir

    table = pd.DataFrame(
        {
            "utt_id": list("abcdef"),
            "score": [2.0, 1.5, 0.2, -1.0, 0.1, -2.0],
            "label": ["bonafide", "bonafide", "spoof", "spoof", "bonafide", "spoof"],
            "corpus": ["asvspoof5", "asvspoof5", "toy", "toy", "toy", None],
            "codec": list("xxyyxy"),
        }
    )

    def tdcf(df, result):
        assert result["overall"]["n_spoof"] == 3  # makers see the document built so far
        return {"overall": {"min_tdcf": 0.25}, "tdcf": {"formulation": "revised", "params": {}}}

    result = EvalSettings(by=("codec",), blocks=(tdcf,)).evaluate(table, source="t")
    assert result["corpus"] == ["asvspoof5", "toy"] and result["run"] is None
    assert result["overall"]["min_tdcf"] == 0.25 and result["tdcf"]["formulation"] == "revised"
    written = write_metrics_dir(result, cm_env / "m")
    assert written == {"metrics": "metrics.json", "by_codec": "metrics_by_codec.parquet"}
    assert json.loads((cm_env / "m" / "metrics.json").read_text())["tdcf"] == result["tdcf"]
    with pytest.raises(CmError, match="already has a 'tdcf' block"):
        add_block(result, "tdcf", {})
    with pytest.raises(CmError, match="overwrite overall eer"):
        add_block(result, "overall", {"eer": 0.0})


# ---------- cm eval --export: official submission score files, read back as the official readers parse them ----------


def _scored_trials(tmp, n=400, seed=3):
    rng = np.random.default_rng(seed)
    ids = [f"E_{i:010d}" for i in range(n)]
    bona = rng.random(n) < 0.3
    scores = np.where(bona, rng.normal(1.5, 1, n), rng.normal(-1, 1, n)) * 1.000001  # full float64 digits
    attack = np.where(bona, "-", np.array(["A17", "A18"])[rng.integers(0, 2, n)])
    (tmp / "s.tsv").write_text("filename\tcm-score\n" + "".join(f"{i}\t{float(v)!r}\n" for i, v in zip(ids, scores)))
    rows = [
        f"E_{i % 7:04d} {u} - {a} {'bonafide' if b else 'spoof'}" for i, (u, a, b) in enumerate(zip(ids, attack, bona))
    ]
    (tmp / "key.txt").write_text("\n".join(rows) + "\n")  # the 2019 LA protocol layout (five fields)
    return np.array(ids), scores, bona, attack


def _official_eer(bona, spoof):  # asvspoof5 calculate_modules.compute_det_curve / compute_eer, restated
    scores = np.concatenate((bona, spoof))
    labels = np.concatenate((np.ones(bona.size), np.zeros(spoof.size)))[np.argsort(scores, kind="mergesort")]
    tar = np.cumsum(labels)
    non = spoof.size - (np.arange(1, scores.size + 1) - tar)
    frr = np.concatenate((np.atleast_1d(0), tar / bona.size))
    far = np.concatenate((np.atleast_1d(1), non / spoof.size))
    i = np.argmin(np.abs(frr - far))
    return np.mean((frr[i], far[i]))


def test_export_writes_each_challenges_official_score_file(cm_env, run_cm):
    """Issue 26 item 7 / issue 30 item 4: the files parse with the official readers' own calls."""
    ids, scores, bona, attack = _scored_trials(cm_env)
    written = {}
    for fmt in ("asvspoof5", "asvspoof2021", "asvspoof2019"):
        target = cm_env / f"{fmt}.txt"
        result = run_cm(
            "--json",
            "eval",
            "--scores",
            cm_env / "s.tsv",
            "--key",
            cm_env / "key.txt",
            "--export",
            fmt,
            target,
            "--out",
            cm_env / f"m_{fmt}",
        )
        assert result.exit_code == 0, result.output
        written[fmt] = target
    eer = json.loads((cm_env / "m_asvspoof5" / "metrics.json").read_text())["overall"]["eer"]
    # ASVspoof 5 util.load_tsv + load_cm_scores_keys: tab-separated with a header
    t1 = pd.read_csv(written["asvspoof5"], sep="\t", header=0).set_index("filename")
    assert list(t1.columns) == ["cm-score"] and list(t1.index) == list(ids)
    assert np.array_equal(t1["cm-score"].to_numpy(), scores)  # every digit survives
    assert _official_eer(t1["cm-score"].to_numpy()[bona], t1["cm-score"].to_numpy()[~bona]) == pytest.approx(
        eer, abs=1e-12
    )
    # ASVspoof 2021 pd_tools.load_score: space-separated, no header, names [trial, score]
    t21 = pd.read_csv(written["asvspoof2021"], sep=" ", names=["trial", "score"], skipinitialspace=True)
    assert list(t21["trial"]) == list(ids) and np.array_equal(t21["score"].to_numpy(), scores)
    # ASVspoof 2019 evaluate_tDCF_asvspoof19: np.genfromtxt(dtype=str), id / source / key / score
    cm_data = np.genfromtxt(written["asvspoof2019"], dtype=str)
    assert cm_data.shape == (len(ids), 4) and list(cm_data[:, 0]) == list(ids)
    assert list(cm_data[:, 1]) == list(attack) and set(cm_data[bona, 1]) == {"-"}
    assert list(cm_data[:, 2]) == ["bonafide" if b else "spoof" for b in bona]
    assert np.array_equal(cm_data[:, 3].astype(float), scores)


def test_export_refusals_are_one_line_and_write_nothing(cm_env, run_cm):
    _scored_trials(cm_env)
    target = cm_env / "out.txt"
    result = run_cm(
        "eval", "--scores", cm_env / "s.tsv", "--key", cm_env / "key.txt", "--export", "asvspoof2017", target
    )
    assert result.exit_code != 0 and "asvspoof5, asvspoof2021, asvspoof2019" in result.output
    assert "Traceback" not in result.output and not target.exists()
    (cm_env / "bad.tsv").write_text("filename\tcm-score\nE_1\t0.5\nE_2\tnan\nE_3\t0.1\nE_4\t0.3\n")
    (cm_env / "bad_key.tsv").write_text("filename\tcm-label\nE_1\tbonafide\nE_2\tspoof\nE_3\tspoof\nE_4\tbonafide\n")
    result = run_cm(
        "eval",
        "--scores",
        cm_env / "bad.tsv",
        "--key",
        cm_env / "bad_key.tsv",
        "--drop-invalid",
        "--export",
        "asvspoof5",
        target,
    )
    assert result.exit_code == 1 and "NaN" in result.output and not target.exists()
    result = run_cm("eval", "--run", cm_env, "--export", "asvspoof5", target)
    assert result.exit_code != 0 and "--scores" in result.output and not target.exists()
