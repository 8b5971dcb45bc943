"""ASV/SASV score files in the exact layouts the corpora ship, and the tandem block built from them."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.data.manifests import find_asv_scores
from cm_cli.evaluation.asv_scores import read_asv_scores, read_sasv_scores
from cm_cli.metrics.tandem import tandem_metrics
from cm_cli.metrics.tdcf import asv_error_rates, min_tdcf


def _asv_rows(rng, n=60):
    rows = []
    for i in range(n):
        rows.append(("bonafide", "target", rng.normal(3, 1)))
        rows.append(("bonafide", "nontarget", rng.normal(0, 1)))
        rows.append((f"A{7 + i % 3:02d}", "spoof", rng.normal(1.5 + (i % 3), 1)))
    return rows


def test_2019_layout_source_key_score(tmp_path):
    rng = np.random.default_rng(0)
    rows = _asv_rows(rng)
    path = tmp_path / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    path.write_text("".join(f"{s} {k} {v:.6f}\n" for s, k, v in rows))
    df = read_asv_scores(path)
    assert list(df["key"].unique()) == ["target", "nontarget", "spoof"]
    assert df["attack"].isna().sum() == 120 and set(df["attack"].dropna()) == {"A07", "A08", "A09"}
    assert df["score"].dtype == np.float64 and len(df) == 180
    root = tmp_path / "corpus"
    (root / "LA" / "ASVspoof2019_LA_asv_scores").mkdir(parents=True)
    (root / "LA" / "ASVspoof2019_LA_asv_scores" / path.name).write_text(path.read_text())
    assert find_asv_scores(root, "asvspoof2019_la").name == path.name


def test_2021_layout_metadata_and_score(tmp_path):
    rng = np.random.default_rng(1)
    asv_dir = tmp_path / "keys" / "LA" / "ASV"
    (asv_dir / "ASVTorch_Kaldi").mkdir(parents=True)
    meta, score = [], []
    for i, (src, key, value) in enumerate(_asv_rows(rng, 40)):
        phase = "eval" if i % 4 else "progress"
        attack = "-" if src == "bonafide" else src
        meta.append(f"LA_00{i % 9} LA_E_{i:07d} alaw ita_tx {attack} {key} notrim {phase}")
        score.append(f"LA_00{i % 9} LA_E_{i:07d} {value:.5f}")
    (asv_dir / "trial_metadata.txt").write_text("\n".join(meta) + "\n")
    (asv_dir / "ASVTorch_Kaldi" / "score.txt").write_text("\n".join(score) + "\n")
    df = read_asv_scores(asv_dir)
    assert len(df) == sum(1 for i in range(120) if i % 4) and set(df["key"]) == {"target", "nontarget", "spoof"}
    assert df["utt_id"].iloc[0] == "LA_E_0000001" and df["codec"].iloc[0] == "alaw"
    assert len(read_asv_scores(asv_dir / "ASVTorch_Kaldi" / "score.txt", phase="progress")) == 30
    assert find_asv_scores(tmp_path, "asvspoof2021_la") == asv_dir
    (asv_dir / "ASVTorch_Kaldi" / "score.txt").write_text("\n".join(score[:-1]) + "\n")
    with pytest.raises(CmError, match="expected 3 columns and 120 rows"):
        read_asv_scores(asv_dir)


def test_header_table_with_named_columns(tmp_path):
    path = tmp_path / "asv.tsv"
    path.write_text("trial\tasv_key\tllr\nt1\ttarget\t2.5\nt2\tnontarget\t-1\nt3\tspoof\t0.5\n")
    with pytest.raises(CmError, match="no ASV score column"):
        read_asv_scores(path)
    df = read_asv_scores(path, score_col="llr")
    assert list(df.columns[:3]) == ["key", "score", "utt_id"] and df["score"].tolist() == [2.5, -1.0, 0.5]
    path.write_text("utt_id\tkey\tscore\nt1\ttarget\tnan\n")
    with pytest.raises(CmError, match="not finite"):
        read_asv_scores(path)
    path.write_text("utt_id\tkey\tscore\nt1\tbonafide\t1\n")
    with pytest.raises(CmError, match="not target, nontarget or spoof"):
        read_asv_scores(path)


def test_sasv_files_of_asvspoof5_track2(tmp_path):
    scores = tmp_path / "sasv.tsv"
    key = tmp_path / "key.tsv"
    scores.write_text(
        "spk\tfilename\tcm-score\tasv-score\tsasv-score\n"
        "E_1\tE_01\t3.0\t2.0\t5.0\nE_1\tE_02\t2.5\t-1.0\t1.5\nE_2\tE_03\t-2.0\t1.0\t-1.0\n"
    )
    key.write_text(
        "spk\tfilename\tcm-label\tasv-label\n"
        "E_1\tE_01\tbonafide\ttarget\nE_1\tE_02\tbonafide\tnontarget\nE_2\tE_03\tspoof\tspoof\n"
    )
    df = read_sasv_scores(scores, key=key)
    assert df["key"].tolist() == ["target", "nontarget", "spoof"]
    assert df["sasv_score"].tolist() == [5.0, 1.5, -1.0] and df["cm_label"].tolist() == [
        "bonafide",
        "bonafide",
        "spoof",
    ]
    key.write_text("spk\tfilename\tcm-label\tasv-label\nE_1\tE_01\tbonafide\ttarget\n")
    with pytest.raises(CmError, match="2 of 3 trials have no row"):
        read_sasv_scores(scores, key=key)


def test_tandem_block_agrees_with_the_metric_functions():
    rng = np.random.default_rng(4)
    keys = np.array(["target"] * 200 + ["nontarget"] * 100 + ["spoof"] * 300)
    asv = np.where(
        keys == "target",
        rng.normal(3, 1, 600),
        np.where(keys == "nontarget", rng.normal(0, 1, 600), rng.normal(1.5, 1, 600)),
    )
    attack = np.where(keys == "spoof", np.where(np.arange(600) % 2 == 0, "A07", "A08"), None)
    cm = np.where(keys == "spoof", rng.normal(0, 1, 600) + (attack == "A08") * 1.5, rng.normal(2, 1, 600))
    ids = np.array([f"u{i}" for i in range(600)])
    bona = keys != "spoof"
    block = tandem_metrics(cm, bona, keys, asv, cm_ids=ids, asv_ids=ids, groups={"attack": (attack, attack)})
    rates = asv_error_rates(asv[keys == "target"], asv[keys == "nontarget"], asv[keys == "spoof"])
    assert block["min_tdcf"] == min_tdcf(cm[bona], cm[~bona], rates).min_tdcf
    assert block["min_tdcf_legacy"] == min_tdcf(cm[bona], cm[~bona], rates, formulation="legacy").min_tdcf
    assert 0 < block["t_eer"] < 0.5 and block["tdcf"]["t_eer_trials"] == 600
    a07, a08 = block["by"]["attack"]["A07"], block["by"]["attack"]["A08"]
    assert a08["min_tdcf"] > a07["min_tdcf"]  # the planted harder attack costs more
    assert a07["asv_spoof_rate"] == "group"
    assert a07["asv_rates"] == "spoof"  # an attack restricts only the spoof ASV trials (2021 eval-package)
    # the t-DCF needs no pairing: disjoint ids give the same t-DCF and no t-EER, with the reason
    unpaired = tandem_metrics(cm, bona, keys, asv, cm_ids=ids, asv_ids=np.array([f"x{i}" for i in range(600)]))
    assert unpaired["min_tdcf"] == block["min_tdcf"] and "t_eer" not in unpaired
    assert "t-EER pairs CM and ASV scores by trial id" in unpaired["tdcf"]["t_eer_skipped"]
    with pytest.raises(CmError, match="no spoof"):
        tandem_metrics(cm, bona, np.where(keys == "spoof", "nontarget", keys), asv)
