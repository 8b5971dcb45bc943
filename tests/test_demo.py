"""cm demo end to end on the tiny toy corpus: every step runs, the report exists, a rerun reuses it all."""

import json
import time

import pytest


@pytest.mark.slow
def test_demo_runs_the_whole_chain_and_reruns_from_cache(cm_env, run_cm):
    out = cm_env / "demo"
    result = run_cm("--json", "demo", "--out", out, "--size", "tiny", "--epochs", "1")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = [s["name"] for s in payload["steps"]]
    assert names[0] == "toy corpus" and names[-1] == "report"
    for expected in ("train ERM", "train DANN", "eval ERM per codec", "stress sweep DANN", "embed DANN",
                     "loao", "probe codec", "cka", "patch ERM <- DANN"):
        assert expected in names
    html = out / "report" / "report.html"
    assert html.is_file() and (out / "report" / "report.md").is_file()
    text = (out / "report" / "report.md").read_text()
    assert "ERM" in text and "DANN" in text and "C05" in text  # per-codec results of both runs
    metrics = json.loads((out / "eval" / "dann" / "metrics.json").read_text())
    assert set(metrics["by"]["codec"]) >= {"none", "C05"} and "compare" in metrics["ood_gap"]
    for table in ("loao/loao.parquet", "probe/probes.parquet", "cka/cka.parquet", "patch/patching.parquet",
                  "sweep/erm/sweep.parquet", "runs/dann/history.parquet"):
        assert (out / table).is_file(), table

    start = time.perf_counter()
    again = json.loads(run_cm("--json", "demo", "--out", out, "--size", "tiny", "--epochs", "1").stdout)
    assert time.perf_counter() - start < 60
    assert all(s["skipped"] for s in again["steps"] if s["name"] != "report")


def test_demo_into_an_unwritable_folder(cm_env, run_cm):
    blocker = cm_env / "file"
    blocker.write_text("")
    result = run_cm("demo", "--out", blocker / "demo", "--size", "tiny")
    assert result.exit_code == 1 and "cannot create output directory" in result.stderr
