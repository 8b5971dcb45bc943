"""Errors a newcomer meets first (issue 31): global options after the command, eval on unfinished runs,
`cm eval --run` without --manifest."""

from __future__ import annotations

import json

import pandas as pd


def flat(text: str) -> str:
    """The error panel's words on one line (rich wraps and boxes them)."""
    return " ".join(text.replace("│", " ").split())


def test_global_option_after_the_command_gets_a_hint(cm_env, run_cm):
    result = run_cm("train", "--preset", "toy_lcnn_erm", "--dry-run")
    assert result.exit_code == 2
    assert "--dry-run is a global option: it goes before the command" in flat(result.output)
    assert "cm --dry-run train" in flat(result.output)
    valued = run_cm("eval", "--scores", "s.tsv", "--data-root", "elsewhere")
    assert valued.exit_code == 2 and "cm --data-root VALUE eval" in flat(valued.output)


def test_a_plain_unknown_option_gets_no_global_hint(cm_env, run_cm):
    result = run_cm("train", "--bogus")
    assert result.exit_code == 2 and "No such option" in result.output and "global option" not in result.output


def _fake_run(root, status: str, manifest=None):
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "cm.json").write_text(json.dumps({"kind": "run", "status": status}))
    if manifest is not None:
        (run / "config.json").write_text(json.dumps({"manifest": str(manifest)}))
    return run


def test_eval_run_without_manifest_uses_the_runs_own(cm_env, run_cm):
    manifest = cm_env / "m" / "manifest.parquet"
    manifest.parent.mkdir()
    pd.DataFrame({"utt_id": ["a"]}).to_parquet(manifest)
    run = _fake_run(cm_env, "complete", manifest)
    result = run_cm("--json", "--dry-run", "eval", "--run", run, "--out", cm_env / "ev")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["options"]["manifest"] == str(manifest)
    assert "warning" not in result.stderr


def test_eval_run_without_any_manifest_asks_for_one(cm_env, run_cm):
    run = _fake_run(cm_env, "complete")
    result = run_cm("eval", "--run", run, "--out", cm_env / "ev")
    assert result.exit_code == 2 and "--manifest" in result.output
    assert "runs/manifests/toy" not in result.output or "several" in result.output or "no corpus" in result.output


def test_eval_on_a_running_or_failed_run_warns(cm_env, run_cm):
    manifest = cm_env / "manifest.parquet"
    pd.DataFrame({"utt_id": ["a"]}).to_parquet(manifest)
    for status, words in (("running", "is still training"), ("failed", "failed before it finished")):
        run = _fake_run(cm_env / status, status, manifest)
        result = run_cm("--dry-run", "eval", "--run", run, "--out", cm_env / status / "ev")
        assert f"warning: run {run} {words}" in " ".join(result.stderr.split()), result.stderr
