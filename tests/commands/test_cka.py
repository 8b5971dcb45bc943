"""`cm cka` through the CLI."""

from __future__ import annotations

import json

import numpy as np

from tests.analysis.synth import write_embeddings


def test_cka_cli(cm_env, run_cm):
    rng = np.random.default_rng(0)
    ids = [f"u{i}" for i in range(300)]
    X = rng.normal(size=(300, 6))
    a = write_embeddings(cm_env / "a", ids, {"layer_00": X, "layer_01": rng.normal(size=(300, 6))})
    b = write_embeddings(cm_env / "b", ids, {"layer_00": X, "layer_01": rng.normal(size=(300, 6))})
    result = run_cm("--json", "cka", a, b, "--out", cm_env / "c", "--estimator", "debiased")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["identical_layers"] == ["layer_00"] and abs(payload["diagonal"]["layer_01"]) < 0.1
    assert (cm_env / "c" / "cka.parquet").is_file() and (cm_env / "c" / "cka.json").is_file()
    result = run_cm("cka", a, "--out", cm_env / "c2")
    assert result.exit_code == 0 and "by construction" in result.stdout
    bad = run_cm("cka", a, b, "--out", cm_env / "c3", "--estimator", "rbf")
    assert bad.exit_code == 1 and "unknown CKA estimator" in bad.stderr


def test_cka_cli_minibatch_estimator_named(cm_env, run_cm):
    import pandas as pd

    rng = np.random.default_rng(1)
    ids = [f"u{i}" for i in range(512)]
    a = write_embeddings(cm_env / "a", ids, {"layer_00": rng.normal(size=(512, 32))})
    b = write_embeddings(cm_env / "b", ids, {"layer_00": rng.normal(size=(512, 32))})
    result = run_cm("cka", a, b, "--batch-size", "64", "--out", cm_env / "mb")
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(cm_env / "mb" / "cka.parquet")
    assert set(table["estimator"]) == {"debiased-minibatch64"} and abs(table["cka"].iloc[0]) < 0.1
    refused = run_cm("cka", a, b, "--batch-size", "64", "--estimator", "biased", "--out", cm_env / "mb2")
    assert refused.exit_code == 1 and "refused with minibatches" in refused.stderr
    assert not (cm_env / "mb2").exists()
