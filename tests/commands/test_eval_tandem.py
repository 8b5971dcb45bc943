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
    asv = np.select(
        [keys == "target", keys == "nontarget"],
        [rng.normal(3, 1, keys.size), rng.normal(0, 1, keys.size)],
        rng.normal(1.2, 1, keys.size),
    )
    attack = np.where(keys == "spoof", np.where(np.arange(keys.size) % 2 == 0, "A07", "A10"), "-")
    cm = np.where(keys == "spoof", rng.normal(0, 1, keys.size) + 1.2 * (attack == "A10"), rng.normal(2.5, 1, keys.size))
    ids = np.array([f"E_{i:05d}" for i in range(keys.size)])
    return ids, keys, asv, cm, attack


def test_min_tdcf_from_cm_and_asv_files(cm_env, run_cm):
    ids, keys, asv, cm, attack = _trials()
    cm_file, asv_file = cm_env / "cm.tsv", cm_env / "asv.tsv"
    pd.DataFrame(
        {"utt_id": ids, "score": cm, "key": np.where(keys == "spoof", "spoof", "bonafide"), "attack": attack}
    ).to_csv(cm_file, sep="\t", index=False)
    pd.DataFrame({"utt_id": ids, "key": keys, "score": asv, "attack": attack}).to_csv(asv_file, sep="\t", index=False)
    result = run_cm(
        "--json",
        "eval",
        "--scores",
        cm_file,
        "--score-col",
        "score",
        "--label-col",
        "key",
        "--bonafide-value",
        "bonafide",
        "--asv-scores",
        asv_file,
        "--asv-score-col",
        "score",
        "--asv-key-col",
        "key",
        "--by",
        "attack",
        "--out",
        cm_env / "m",
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    saved = json.loads((cm_env / "m" / "metrics.json").read_text())
    rates = asv_error_rates(asv[keys == "target"], asv[keys == "nontarget"], asv[keys == "spoof"])
    bona = keys != "spoof"
    for doc in (printed, saved):
        assert abs(doc["overall"]["min_tdcf"] - min_tdcf(cm[bona], cm[~bona], rates).min_tdcf) < 1e-12
        assert (
            abs(doc["overall"]["min_tdcf_legacy"] - min_tdcf(cm[bona], cm[~bona], rates, formulation="legacy").min_tdcf)
            < 1e-12
        )
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
        cm_file, sep="\t", index=False
    )
    keep = keys != "spoof"
    pd.DataFrame({"key": keys[keep], "score": asv[keep]}).to_csv(asv_file, sep="\t", index=False)
    result = run_cm(
        "eval", "--scores", cm_file, "--label-col", "key", "--bonafide-value", "bonafide", "--asv-scores", asv_file
    )
    assert result.exit_code == 1 and "no spoof" in result.output and "Traceback" not in result.output
    pd.DataFrame({"utt_id": [f"X{i}" for i in range(keys.size)], "key": keys, "score": asv}).to_csv(
        asv_file, sep="\t", index=False
    )
    result = run_cm(
        "--json",
        "eval",
        "--scores",
        cm_file,
        "--label-col",
        "key",
        "--bonafide-value",
        "bonafide",
        "--asv-scores",
        asv_file,
        "--out",
        cm_env / "unpaired",
    )
    assert result.exit_code == 0, result.output  # the t-DCF needs no pairing; the t-EER says why it is absent
    saved = json.loads((cm_env / "unpaired" / "metrics.json").read_text())
    assert "min_tdcf" in saved["overall"] and "t_eer" not in saved["overall"]
    assert "disjoint" in saved["tdcf"]["t_eer_skipped"] and "X0" in saved["tdcf"]["t_eer_skipped"]


def test_sasv_scores_give_adcf_and_teer(cm_env, run_cm):
    ids, keys, asv, cm, _ = _trials(2, 200)
    sasv = asv + cm
    path, key = cm_env / "sasv.tsv", cm_env / "key.tsv"
    pd.DataFrame({"spk": "E_1", "filename": ids, "cm-score": cm, "asv-score": asv, "sasv-score": sasv}).to_csv(
        path, sep="\t", index=False
    )
    pd.DataFrame(
        {"spk": "E_1", "filename": ids, "cm-label": np.where(keys == "spoof", "spoof", "bonafide"), "asv-label": keys}
    ).to_csv(key, sep="\t", index=False)
    result = run_cm("--json", "eval", "--sasv-scores", path, "--sasv-key", key, "--out", cm_env / "t2")
    assert result.exit_code == 0, result.output
    block = json.loads(result.stdout)["sasv"]
    expected = a_dcf(sasv[keys == "target"], sasv[keys == "nontarget"], sasv[keys == "spoof"]).min_a_dcf
    assert abs(block["a_dcf"] - expected) < 1e-12
    assert abs(block["t_eer"] - t_eer(cm, asv, keys)) < 1e-12 and 0 < block["min_tdcf"] < 1
    assert json.loads((cm_env / "t2" / "metrics.json").read_text())["sasv"]["a_dcf"] == block["a_dcf"]


# ---------- ASVspoof 2021 LA layout against a literal re-statement of the official eval-package ----------
# (asvspoof-challenge/2021 eval-package: eval_metrics.compute_det_curve / compute_eer /
# obtain_asv_error_rates, eval_wrapper.get_tDCF_C012 / get_mintDCF_eer, config.cost_model,
# main.compute_tDCF_C012 with --recompute-c012: a codec is a factor of type "both")

COST = {"Pspoof": 0.05, "Ptar": 0.95 * 0.99, "Pnon": 0.95 * 0.01, "Cmiss": 1, "Cfa": 10, "Cfa_spoof": 10}
CODECS_2021 = ("none", "alaw", "g722")


def _official_det(target, nontarget):
    n_scores = target.size + nontarget.size
    all_scores = np.concatenate((target, nontarget))
    labels = np.concatenate((np.ones(target.size), np.zeros(nontarget.size)))
    indices = np.argsort(all_scores, kind="mergesort")
    labels = labels[indices]
    tar_trial_sums = np.cumsum(labels)
    nontarget_trial_sums = nontarget.size - (np.arange(1, n_scores + 1) - tar_trial_sums)
    frr = np.concatenate((np.atleast_1d(0), tar_trial_sums / target.size))
    far = np.concatenate((np.atleast_1d(1), nontarget_trial_sums / nontarget.size))
    thresholds = np.concatenate((np.atleast_1d(all_scores[indices[0]] - 0.001), all_scores[indices]))
    return frr, far, thresholds


def _official_eer(target, nontarget):
    frr, far, thresholds = _official_det(target, nontarget)
    i = np.argmin(np.abs(frr - far))
    return np.mean((frr[i], far[i])), thresholds[i]


def _official_c012(tar, non, spoof):
    _, thr = _official_eer(tar, non)
    pfa = sum(non >= thr) / non.size
    pmiss = sum(tar < thr) / tar.size
    pfa_spoof = np.sum(spoof >= thr) / spoof.size
    c0 = COST["Ptar"] * COST["Cmiss"] * pmiss + COST["Pnon"] * COST["Cfa"] * pfa
    c1 = COST["Ptar"] * COST["Cmiss"] - (COST["Ptar"] * COST["Cmiss"] * pmiss + COST["Pnon"] * COST["Cfa"] * pfa)
    c2 = COST["Pspoof"] * COST["Cfa_spoof"] * pfa_spoof
    return c0, c1, c2


def _official_min_tdcf_eer(bona, spoof, c0, c1, c2):
    pmiss_cm, pfa_cm, _ = _official_det(bona, spoof)
    tdcf = (c0 + c1 * pmiss_cm + c2 * pfa_cm) / (c0 + np.minimum(c1, c2))
    i = np.argmin(np.abs(pmiss_cm - pfa_cm))
    return tdcf[tdcf.argmin()], np.mean((pmiss_cm[i], pfa_cm[i]))


def _write_2021_la(root, *, seed=0, asv_prefix="LA_E_"):
    """keys/LA/CM/trial_metadata.txt, keys/LA/ASV/trial_metadata.txt + ASVTorch_Kaldi/score.txt, a CM score.txt.

    The ASV system's scores shift with the codec, so the per-codec ASV threshold matters; a tenth of the
    trials are of the progress phase, which the official --subset eval leaves out."""
    rng = np.random.default_rng(seed)
    cm_rows, score_rows, truth = [], [], []
    for i in range(1500):
        codec = CODECS_2021[i % 3]
        bona = i % 4 == 0
        attack = ("A07", "A08", "A09")[(i // 3) % 3]
        phase = "progress" if i % 10 == 9 else "eval"
        score = rng.normal(1.5 if bona else -0.5 - 0.4 * CODECS_2021.index(codec), 1.0)
        cm_rows.append(
            f"LA_{i % 30:04d} LA_E_{i:07d} {codec} trans{i % 2} {attack if not bona else '-'} "
            f"{'bonafide' if bona else 'spoof'} notrim {phase}"
        )
        score_rows.append(f"LA_E_{i:07d} {score:.6f}")
        truth.append((codec, bona, phase, score))
    asv_meta, asv_scores = [], []
    for i in range(2400):
        codec = CODECS_2021[i % 3]
        key = ("target", "target", "nontarget", "spoof", "spoof")[(i // 3) % 5]
        shift = -0.6 * CODECS_2021.index(codec)
        mean = {"target": 3.0, "nontarget": -1.0, "spoof": 1.6}[key] + shift
        phase = "progress" if i % 10 == 9 else "eval"
        asv_meta.append(
            f"LA_{i % 30:04d} {asv_prefix}{i:07d} {codec} trans{i % 2} "
            f"{'A07' if key == 'spoof' else '-'} {key} notrim {phase}"
        )
        asv_scores.append(f"LA_{i % 30:04d} {asv_prefix}{i:07d} {rng.normal(mean, 1.0):.6f}")
    (root / "LA" / "CM").mkdir(parents=True, exist_ok=True)
    (root / "LA" / "ASV" / "ASVTorch_Kaldi").mkdir(parents=True, exist_ok=True)
    (root / "LA" / "CM" / "trial_metadata.txt").write_text("\n".join(cm_rows) + "\n")
    (root / "LA" / "ASV" / "trial_metadata.txt").write_text("\n".join(asv_meta) + "\n")
    (root / "LA" / "ASV" / "ASVTorch_Kaldi" / "score.txt").write_text("\n".join(asv_scores) + "\n")
    (root / "score.txt").write_text("\n".join(score_rows) + "\n")
    return root


def _official_2021(root):
    """Pooled and per-codec min t-DCF and EER as main.py --recompute-c012 --subset eval computes them."""
    cm = [line.split() for line in (root / "LA" / "CM" / "trial_metadata.txt").read_text().splitlines()]
    scores = dict(line.split() for line in (root / "score.txt").read_text().splitlines())
    meta = [line.split() for line in (root / "LA" / "ASV" / "trial_metadata.txt").read_text().splitlines()]
    asv_score = [
        float(line.split()[2])
        for line in (root / "LA" / "ASV" / "ASVTorch_Kaldi" / "score.txt").read_text().splitlines()
    ]
    cm = [(r[2], r[5], float(scores[r[1]])) for r in cm if r[7] == "eval"]
    asv = [(m[2], m[5], s) for m, s in zip(meta, asv_score) if m[7] == "eval"]
    out = {}
    for codec in ("Pooled", *CODECS_2021):

        def take(rows, label):
            return np.array([s for c, lab, s in rows if lab == label and codec in ("Pooled", c)])

        c012 = _official_c012(take(asv, "target"), take(asv, "nontarget"), take(asv, "spoof"))
        out[codec] = _official_min_tdcf_eer(take(cm, "bonafide"), take(cm, "spoof"), *c012)
    return out


def test_asvspoof2021_la_per_codec_tdcf_equals_the_official_package(cm_env, run_cm):
    """Issue 26 item 5: per-codec min t-DCF recomputes the ASV C0, C1, C2 on that codec's ASV trials."""
    root = _write_2021_la(cm_env / "keys")
    expected = _official_2021(root)
    out = cm_env / "m21"
    result = run_cm(
        "--json",
        "eval",
        "--scores",
        root / "score.txt",
        "--key",
        root / "LA" / "CM" / "trial_metadata.txt",
        "--asv-scores",
        root / "LA" / "ASV",
        "--by",
        "codec",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert abs(doc["overall"]["min_tdcf"] - expected["Pooled"][0]) < 6e-5
    assert abs(doc["overall"]["eer"] - expected["Pooled"][1]) < 6e-5
    assert doc["subset"]["subset"] == "eval" and doc["subset"]["scored_trials_left_out"] == 150
    for codec in CODECS_2021:
        assert abs(doc["by"]["codec"][codec]["min_tdcf"] - expected[codec][0]) < 6e-5, codec
    # the pooled ASV operating point would give another value: the recomputation is what matches
    assert any(abs(doc["by"]["codec"][c]["min_tdcf"] - expected["Pooled"][0]) > 1e-3 for c in CODECS_2021)

    # ASV trial ids unrelated to the CM ids: the same t-DCF (no pairing), no t-EER, and the reason
    other = _write_2021_la(cm_env / "keys_other", asv_prefix="LA_X_")
    result = run_cm(
        "--json",
        "eval",
        "--scores",
        other / "score.txt",
        "--key",
        other / "LA" / "CM" / "trial_metadata.txt",
        "--asv-scores",
        other / "LA" / "ASV",
        "--by",
        "codec",
        "--out",
        cm_env / "m21x",
    )
    assert result.exit_code == 0, result.output
    doc_x = json.loads((cm_env / "m21x" / "metrics.json").read_text())
    assert doc_x["overall"]["min_tdcf"] == doc["overall"]["min_tdcf"]
    assert "t_eer" not in doc_x["overall"] and "trial id" in doc_x["tdcf"]["t_eer_skipped"]


def test_asv_trial_metadata_file_names_the_folder_to_pass(cm_env, run_cm):
    root = _write_2021_la(cm_env / "keys")
    out = cm_env / "bad"
    result = run_cm(
        "eval",
        "--scores",
        root / "score.txt",
        "--key",
        root / "LA" / "CM" / "trial_metadata.txt",
        "--asv-scores",
        root / "LA" / "ASV" / "trial_metadata.txt",
        "--out",
        out,
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "pass its folder" in result.output and str(root / "LA" / "ASV") in result.output
    assert "three-column" not in result.output and not (out / "metrics.json").exists()
