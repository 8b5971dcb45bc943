"""The OOD gap split into seen-in-training and unseen conditions (issue 13.4)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cm_cli.metrics import eer
from cm_cli.metrics.report import evaluate_scores


def _domains(seed: int = 0) -> pd.DataFrame:
    """clean: easy; C01/C05 (augmented in training): a little harder; C02/C03 (unseen): hard."""
    rng = np.random.default_rng(seed)
    spoof_mean = {"clean": -3.0, "C01": -1.5, "C05": -1.5, "C02": 0.5, "C03": 0.5}
    rows = []
    for domain, mean in spoof_mean.items():
        for i in range(200):
            bona = i % 4 == 0
            rows.append(
                {
                    "utt_id": f"{domain}_{i}",
                    "domain": domain,
                    "label": "bonafide" if bona else "spoof",
                    "score": rng.normal(1.0 if bona else mean, 1.0),
                }
            )
    return pd.DataFrame(rows)


def _eer(df: pd.DataFrame) -> float:
    return eer(df.score[df.label == "bonafide"].to_numpy(), df.score[df.label == "spoof"].to_numpy())


def test_split_measures_seen_and_unseen_against_in_domain():
    df = _domains()
    gap = evaluate_scores(df, in_domain=["clean"], seen_domains=["C01", "C05", "clean"])["ood_gap"]
    eer_in = _eer(df[df.domain == "clean"])
    eer_seen = _eer(df[df.domain.isin(["C01", "C05"])])
    eer_unseen = _eer(df[df.domain.isin(["C02", "C03"])])
    assert gap["eer_in"] == pytest.approx(eer_in, abs=1e-12)
    assert gap["seen_domains"] == ["C01", "C05", "clean"]
    seen, unseen = gap["split"]["seen"], gap["split"]["unseen"]
    assert seen["values"] == ["C01", "C05"] and unseen["values"] == ["C02", "C03"]
    assert seen["eer"] == pytest.approx(eer_seen, abs=1e-12) and unseen["eer"] == pytest.approx(eer_unseen, abs=1e-12)
    assert seen["gap_abs_points"] == pytest.approx(100 * (eer_seen - eer_in))
    assert unseen["gap_abs_points"] == pytest.approx(100 * (eer_unseen - eer_in))
    assert seen["n_spoof"] == 300 and unseen["n_bonafide"] == 100
    # the pooled gap mixes the two: it lies between them
    assert seen["gap_abs_points"] < gap["gap_abs_points"] < unseen["gap_abs_points"]
    # nothing seen besides clean: the seen side is empty, unseen is the whole out-of-domain side
    none_seen = evaluate_scores(df, in_domain=["clean"], seen_domains=["clean"])["ood_gap"]["split"]
    assert none_seen["seen"]["eer"] is None and none_seen["seen"]["n_spoof"] == 0
    assert none_seen["unseen"]["eer"] == pytest.approx(evaluate_scores(df, in_domain=["clean"])["ood_gap"]["eer_out"])
    assert "split" not in evaluate_scores(df, in_domain=["clean"])["ood_gap"]


def test_cli_seen_domain_and_seen_from_run(cm_env, run_cm):
    df = _domains()
    path = cm_env / "s.parquet"
    df.to_parquet(path)
    by_option = json.loads(
        run_cm(
            "--json", "eval", "--scores", path, "--in-domain", "clean", "--seen-domain", "C01", "--seen-domain", "C05"
        ).stdout
    )["ood_gap"]
    assert by_option["split"]["seen"]["values"] == ["C01", "C05"]
    run = cm_env / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"seen_domains": ["C01", "clean"], "augment_conditions": ["C05"]}))
    from_run = json.loads(
        run_cm("--json", "eval", "--scores", path, "--in-domain", "clean", "--seen-from", run).stdout
    )["ood_gap"]
    assert from_run["seen_domains"] == ["C01", "C05", "clean"] and from_run["split"] == by_option["split"]
    (run / "config.json").write_text("{}")
    old = run_cm("eval", "--scores", path, "--in-domain", "clean", "--seen-from", run)
    assert old.exit_code == 1 and "seen_domains" in old.stderr
