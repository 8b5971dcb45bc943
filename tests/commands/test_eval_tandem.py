"""`cm eval --asv-scores` (min t-DCF) and `--sasv-scores` (a-DCF, t-EER) through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cm_cli.metrics.sasv import a_dcf, t_eer
from cm_cli.metrics.tdcf import asv_error_rates, min_tdcf


def _trials(seed=0, n=400):
    rng = np.random.default_rng(seed)
    keys = np.array(["target"] * n + ["nontarget"] * (n // 2) + ["spoof"] * n)
    asv = np.select([keys == "target", keys == "nontarget"], [rng.normal(3, 1, keys.size), rng.normal(0, 1, keys.size)],
                    rng.normal(1.2, 1, keys.size))
    attack = np.where(keys == "spoof", np.where(np.arange(keys.size) % 2 == 0, "A07", "A10"), "-")
    cm = np.where(keys == "spoof", rng.normal(0, 1, keys.size) + 1.2 * (attack == "A10"), rng.normal(2.5, 1, keys.size))
    ids = np.array([f"E_{i:05d}" for i in range(keys.size)])
    return ids, keys, asv, cm, attack


def test_min_tdcf_from_cm_and_asv_files(cm_env, run_cm):
    ids, keys, asv, cm, attack = _trials()
    cm_file, asv_file = cm_env / "cm.tsv", cm_env / "asv.tsv"
    pd.DataFrame({"utt_id": ids, "score": cm, "key": np.where(keys == "spoof", "spoof", "bonafide"),
                  "attack": attack}).to_csv(cm_file, sep="\t", index=False)
    pd.DataFrame({"utt_id": ids, "key": keys, "score": asv, "attack": attack}).to_csv(asv_file, sep="\t", index=False)
    result = run_cm("--json", "eval", "--scores", cm_file, "--score-col", "score", "--label-col", "key",
                    "--bonafide-value", "bonafide", "--asv-scores", asv_file, "--asv-score-col", "score",
                    "--asv-key-col", "key", "--by", "attack", "--out", cm_env / "m")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    saved = json.loads((cm_env / "m" / "metrics.json").read_text())
    rates = asv_error_rates(asv[keys == "target"], asv[keys == "nontarget"], asv[keys == "spoof"])
    bona = keys != "spoof"
    for doc in (printed, saved):
        assert abs(doc["overall"]["min_tdcf"] - min_tdcf(cm[bona], cm[~bona], rates).min_tdcf) < 1e-12
        assert abs(doc["overall"]["min_tdcf_legacy"]
                   - min_tdcf(cm[bona], cm[~bona], rates, formulation="legacy").min_tdcf) < 1e-12
        assert abs(doc["overall"]["t_eer"] - t_eer(cm, asv, keys)) < 1e-12
        assert doc["tdcf"]["revised"]["costs"]["c_fa_spoof"] == 10.0
        assert doc["tdcf"]["legacy"]["costs"]["c_fa_cm"] == 10.0 and doc["tdcf"]["asv"]["n_spoof"] == 400
    by = saved["by"]["attack"]
    assert by["A10"]["min_tdcf"] > by["A07"]["min_tdcf"]
    table = pd.read_parquet(cm_env / "m" / "metrics_by_attack.parquet")
    assert "min_tdcf" in table.columns


def test_asv_file_without_spoof_trials_is_one_line(cm_env, run_cm):
    ids, keys, asv, cm, _ = _trials(1, 60)
    cm_file, asv_file = cm_env / "cm.tsv", cm_env / "asv.tsv"
    pd.DataFrame({"utt_id": ids, "score": cm, "key": np.where(keys == "spoof", "spoof", "bonafide")}).to_csv(
        cm_file, sep="\t", index=False)
    keep = keys != "spoof"
    pd.DataFrame({"key": keys[keep], "score": asv[keep]}).to_csv(asv_file, sep="\t", index=False)
    result = run_cm("eval", "--scores", cm_file, "--label-col", "key", "--bonafide-value", "bonafide",
                    "--asv-scores", asv_file)
    assert result.exit_code == 1 and "no spoof" in result.output and "Traceback" not in result.output
    pd.DataFrame({"utt_id": [f"X{i}" for i in range(keys.size)], "key": keys, "score": asv}).to_csv(
        asv_file, sep="\t", index=False)
    result = run_cm("eval", "--scores", cm_file, "--label-col", "key", "--bonafide-value", "bonafide",
                    "--asv-scores", asv_file)
    assert result.exit_code == 1 and "disjoint" in result.output and "X0" in result.output


def test_sasv_scores_give_adcf_and_teer(cm_env, run_cm):
    ids, keys, asv, cm, _ = _trials(2, 200)
    sasv = asv + cm
    path, key = cm_env / "sasv.tsv", cm_env / "key.tsv"
    pd.DataFrame({"spk": "E_1", "filename": ids, "cm-score": cm, "asv-score": asv, "sasv-score": sasv}).to_csv(
        path, sep="\t", index=False)
    pd.DataFrame({"spk": "E_1", "filename": ids, "cm-label": np.where(keys == "spoof", "spoof", "bonafide"),
                  "asv-label": keys}).to_csv(key, sep="\t", index=False)
    result = run_cm("--json", "eval", "--sasv-scores", path, "--sasv-key", key, "--out", cm_env / "t2")
    assert result.exit_code == 0, result.output
    block = json.loads(result.stdout)["sasv"]
    expected = a_dcf(sasv[keys == "target"], sasv[keys == "nontarget"], sasv[keys == "spoof"]).min_a_dcf
    assert abs(block["a_dcf"] - expected) < 1e-12
    assert abs(block["t_eer"] - t_eer(cm, asv, keys)) < 1e-12 and 0 < block["min_tdcf"] < 1
    assert json.loads((cm_env / "t2" / "metrics.json").read_text())["sasv"]["a_dcf"] == block["a_dcf"]
