"""`cm loao` through the CLI: tables written, --json summary, --plan lines, clear errors."""

from __future__ import annotations

import json

import pandas as pd

from tests.analysis.synth import spoof_world, write_embeddings, write_manifest


def _world(tmp_path):
    rows, layers = spoof_world()
    return write_embeddings(tmp_path / "emb", rows.utt_id, layers), write_manifest(tmp_path / "m.parquet", rows), rows


def test_loao_json_and_tables(cm_env, run_cm):
    emb, manifest, _ = _world(cm_env)
    result = run_cm("--json", "loao", emb, "--manifest", manifest, "--out", cm_env / "out", "--layer", "1", "--seeds", "0,1")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["largest_gap"]["layer_01"]["attack"] == "A05"
    table = pd.read_parquet(cm_env / "out" / "loao.parquet")
    assert set(table["seed"]) == {0, 1} and set(table["layer"]) == {"layer_01"}
    assert (cm_env / "out" / "geometry.parquet").is_file()


def test_loao_plan_prints_job_lines(cm_env, run_cm):
    _, manifest, _ = _world(cm_env)
    result = run_cm("loao", "--plan", "--train-preset", "toy_lcnn_erm", "--manifest", manifest, "--out", cm_env / "plan")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("cm train") and "&& cm eval" in line for line in lines)


def test_loao_errors(cm_env, run_cm):
    emb, manifest, rows = _world(cm_env)
    result = run_cm("loao", emb, "--manifest", manifest, "--out", cm_env / "out", "--layer", "12")
    assert result.exit_code == 1 and "no layer '12'" in result.stderr
    other = write_manifest(cm_env / "other.parquet", rows.assign(utt_id="X" + rows["utt_id"]))
    result = run_cm("--json", "loao", emb, "--manifest", other, "--out", cm_env / "out")
    assert result.exit_code == 1 and "share no utt_id" in json.loads(result.stdout)["error"]
    assert not (cm_env / "out").exists()
    result = run_cm("loao", "--plan", "--manifest", manifest)
    assert result.exit_code == 2 and "--train-preset" in result.stderr
