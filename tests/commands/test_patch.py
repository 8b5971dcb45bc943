"""`cm patch` through the CLI."""

from __future__ import annotations

import json

import pandas as pd

from tests.analysis.test_patching import make_runs


def test_patch_cli(cm_env, run_cm):
    runs, manifest = make_runs(cm_env)
    result = run_cm(
        "--json",
        "patch",
        "--base",
        runs["erm"],
        "--donor",
        runs["erm"],
        "--manifest",
        manifest,
        "--out",
        cm_env / "p",
        "--folds",
        "2",
        "--bootstrap",
        "20",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["noop_sites"] == payload["sites"]
    assert set(pd.read_parquet(cm_env / "p" / "patching.parquet")["site"]) >= {"base", "donor", "layer_00"}
    missing = run_cm("patch", "--base", runs["erm"], "--manifest", manifest)
    assert missing.exit_code == 2 and "--donor" in missing.stderr


def test_patch_refuses_unaligned_runs_and_honours_device(cm_env, run_cm, monkeypatch):
    import torch

    from cm_cli.analysis import patching
    from cm_cli.core.context import Context
    from cm_cli.core.errors import CmError

    runs, manifest = make_runs(cm_env)
    refused = run_cm(
        "patch", "--base", runs["erm"], "--donor", runs["dann"], "--manifest", manifest, "--out", cm_env / "no"
    )
    assert refused.exit_code == 1 and "--allow-unaligned" in refused.output
    result = run_cm(
        "--json",
        "patch",
        "--base",
        runs["erm"],
        "--donor",
        runs["dann"],
        "--manifest",
        manifest,
        "--out",
        cm_env / "un",
        "--folds",
        "2",
        "--bootstrap",
        "10",
        "--allow-unaligned",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["aligned"] is False and payload["ci"]["unit"] == "speaker"
    assert not pd.read_parquet(cm_env / "un" / "patching.parquet")["aligned"].any()
    seen = {}

    def record(*args, device, **kwargs):
        seen["device"] = device
        raise CmError("recorded")

    monkeypatch.setattr(Context, "torch_device", lambda self: torch.device("meta"))  # what --device resolves to
    monkeypatch.setattr(patching, "compute_patching", record)
    stopped = run_cm(
        "patch", "--base", runs["erm"], "--donor", runs["erm"], "--manifest", manifest, "--out", cm_env / "dev"
    )
    assert stopped.exit_code == 1 and seen["device"] == torch.device("meta")
