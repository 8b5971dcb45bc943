"""`cm report` through the CLI: files written, --json payload, the empty-directory error, --dry-run."""

from __future__ import annotations

import json

from tests.report.synth import make_study


def test_report_writes_files_and_json(cm_env, run_cm):
    study = make_study(cm_env / "study", analyses=False, seeds=(0,))
    out = cm_env / "rep"
    result = run_cm("--json", "report", study, "--out", out, "--latex", "--title", "CLI study")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["report_html"] == str(out / "report.html") and payload["corpora"] == ["toy"]
    assert payload["counts"]["runs"] == 2 and payload["counts"]["evaluations"] == 2
    assert any("cm probe" in line for line in payload["skipped"])
    assert (out / "report.md").read_text().startswith("# CLI study")
    assert payload["tables"] and all(path.endswith(".tex") for path in payload["tables"])
    assert all((out / "figures").joinpath(p.split("/")[-1]).is_file() for p in payload["figures"])


def test_report_human_output_names_the_html(cm_env, run_cm):
    study = make_study(cm_env / "study", analyses=False, seeds=(0,))
    result = run_cm("report", study, "--out", cm_env / "rep")
    assert result.exit_code == 0, result.output
    assert "report.html" in result.stdout and "skipped:" in result.stdout


def test_report_on_empty_directory_exits_1_with_what_it_looked_for(cm_env, run_cm):
    (cm_env / "empty").mkdir()
    result = run_cm("--json", "report", cm_env / "empty", "--out", cm_env / "rep")
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert "no cm artifacts found" in error["error"] and "metrics.json" in error["error"]
    assert error["exit_code"] == 1
    assert not (cm_env / "rep").exists()


def test_report_dry_run_writes_nothing(cm_env, run_cm):
    study = make_study(cm_env / "study", analyses=False, seeds=(0,))
    result = run_cm("--json", "--dry-run", "report", study, "--out", cm_env / "rep")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["options"]["latex"] is False
    assert not (cm_env / "rep").exists()


def test_report_default_out_is_under_runs_dir(cm_env, run_cm):
    study = make_study(cm_env / "study", analyses=False, seeds=(0,))
    result = run_cm("report", study)
    assert result.exit_code == 0, result.output
    assert (cm_env / "runs" / "report" / "report.html").is_file()
