"""`cm patch` through the CLI."""

from __future__ import annotations

import json

import pandas as pd

from tests.analysis.test_patching import make_runs


def test_patch_cli(cm_env, run_cm):
    runs, manifest = make_runs(cm_env)
    result = run_cm("--json", "patch", "--base", runs["erm"], "--donor", runs["erm"], "--manifest", manifest,
                    "--out", cm_env / "p", "--folds", "2", "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["noop_sites"] == payload["sites"]
    assert set(pd.read_parquet(cm_env / "p" / "patching.parquet")["site"]) >= {"base", "donor", "layer_00"}
    missing = run_cm("patch", "--base", runs["erm"], "--manifest", manifest)
    assert missing.exit_code == 2 and "--donor" in missing.stderr
