"""`cm train` through the CLI on a tiny toy corpus under the data root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest


@pytest.fixture
def toy_root(cm_env):
    from cm_cli.data.corpora.toy import build_toy_corpus

    build_toy_corpus(cm_env / "data" / "toy", size="tiny", seed=0, workers=2)
    return cm_env


def test_preset_toy_lcnn_dann_trains_on_the_default_toy_manifest(toy_root, run_cm):
    out = toy_root / "run"
    result = run_cm("--json", "train", "--preset", "toy_lcnn_dann", "--out", out, "--epochs", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "complete" and summary["step"] >= 1
    assert (toy_root / "runs/manifests/toy/manifest.parquet").is_file()  # built on first use
    history = pd.read_parquet(out / "history.parquet")
    assert {"lambda", "adv_grad_norm"} <= set(history.columns)
    assert history["adv_grad_norm"].notna().all()
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["method"] == "dann" and config["train"]["domain_columns"] == ["domain"]
    assert config["train"]["epochs"] == 1  # explicit option beats the preset
    # the same command again reuses the finished run; a changed option is refused without --force
    again = run_cm("--json", "train", "--preset", "toy_lcnn_dann", "--out", out, "--epochs", "1")
    assert json.loads(again.stdout)["skipped"] is True
    changed = run_cm("train", "--preset", "toy_lcnn_dann", "--out", out, "--epochs", "2")
    assert changed.exit_code == 1 and "epochs: 1 -> 2" in changed.stderr


def test_dry_run_prints_resolved_options(toy_root, run_cm):
    result = run_cm("--json", "--dry-run", "train", "--preset", "wavlm_dann_exponential", "--lr", "0.001")
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert options["lambda_schedule"] == "ganin" and options["lr"] == 0.001 and options["backbone"] == "wavlm"


def test_bad_options_are_usage_errors(toy_root, run_cm):
    result = run_cm("train", "--method", "dann", "--backbone", "lcnn", "--corpus", "toy")
    assert result.exit_code == 2 and "--domain-column" in result.stderr
    result = run_cm("train", "--backbone", "lcnn", "--corpus", "toy", "--seeds", "1,x")
    assert result.exit_code == 2 and "--seeds" in result.stderr
    result = run_cm("train", "--backbone", "lcnn", "--corpus", "toy", "--resume")
    assert result.exit_code == 2 and "--out" in result.stderr


def test_sigterm_saves_a_checkpoint_and_exits_zero_then_resume_finishes(toy_root):
    env = dict(os.environ)
    out = toy_root / "run"
    args = [sys.executable, "-m", "cm_cli", "train", "--preset", "toy_lcnn_erm", "--out", str(out), "--epochs", "40"]
    proc = subprocess.Popen(args, env=env, cwd=toy_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoints/last.pt").is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "interrupted" in stdout and "--resume" in stdout
    record = json.loads((out / "cm.json").read_text())
    assert record["status"] == "interrupted"
    step = record["summary"]["step"]
    assert 0 < step < 40 * 3
    resumed = subprocess.run(
        args[:-2] + ["--epochs", "40", "--resume", "--max-steps", str(step + 1), "--force"],
        env=env,
        cwd=toy_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    assert json.loads((out / "cm.json").read_text())["summary"]["step"] == step + 1
