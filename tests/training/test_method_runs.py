"""Every method runs the way erm/dann do: resumed bit-identically (SAM's and GroupDRO's state included),
from the command line with a preset's domain column, and evaluated with `cm eval --run`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.training.config import TrainConfig
from cm_cli.training.run import train_run

AUG = "clean:0.4, alaw:0.3, telephony:0.3"


def _run(config, toy, out, **kwargs):
    root, manifest = toy
    return train_run(config, manifest, out, data_root=root, cache_dir=out.parent / "cache", **kwargs)


def test_groupdro_wrapped_in_sam_resumes_to_the_same_weights_and_history(toy_tiny, tmp_path):
    import torch

    config = TrainConfig(
        method="groupdro",
        backbone="lcnn",
        corpus="toy",
        epochs=2,
        max_steps=7,
        batch_size=8,
        lr=1e-3,
        max_len=1.0,
        seed=2,
        augment=AUG,
        domain_columns=["domain"],
        sam_rho=0.05,
        method_options={"step": 0.1},
    )
    whole = _run(config, toy_tiny, tmp_path / "whole")
    part = _run(config, toy_tiny, tmp_path / "part", stop_requested=lambda step: step >= 3)
    assert part.status == "interrupted"
    resumed = _run(config, toy_tiny, tmp_path / "part", resume=True)
    assert whole.status == resumed.status == "complete" and resumed.summary["step"] == 7
    a = torch.load(tmp_path / "whole/checkpoints/last.pt", weights_only=True)
    b = torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert torch.equal(a["training"]["heads"]["q"], b["training"]["heads"]["q"])  # GroupDRO's group weights
    h1, h2 = pd.read_parquet(tmp_path / "whole/history.parquet"), pd.read_parquet(tmp_path / "part/history.parquet")
    pd.testing.assert_frame_equal(h1, h2)
    assert {"loss_dro", "dro_q_clean", "dro_q_alaw", "dro_q_telephony"} <= set(h1.columns)
    assert np.allclose(h1[["dro_q_clean", "dro_q_alaw", "dro_q_telephony"]].sum(axis=1), 1.0)


@pytest.mark.parametrize("method, column", [("coral", "loss_coral"), ("mmd", "loss_mmd")])
def test_cli_method_from_the_dann_preset_trains_and_evaluates(toy_tiny, tmp_path, method, column):
    from typer.testing import CliRunner

    from cm_cli.app import app
    from cm_cli.core.artifacts import read_json

    root, manifest = toy_tiny
    runner = CliRunner()
    base = ["--data-root", str(root), "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(
        app,
        [
            *base,
            "train",
            "--preset",
            "toy_lcnn_dann",
            "--method",
            method,
            "--manifest",
            str(manifest),
            "--out",
            str(tmp_path / "run"),
            "--max-steps",
            "3",
            "--augment",
            AUG,
        ],
    )
    assert result.exit_code == 0, result.output
    history = pd.read_parquet(tmp_path / "run/history.parquet")
    # squared distances (CORAL; MMD's default biased estimate), finite on every row: a skipped term logs 0.0
    assert column in history and np.isfinite(history[column]).all() and (history[column] >= 0).all()
    assert (history[column] > 0).any() and np.isfinite(history[f"{method}_skipped"]).all()
    # no --manifest: the run's own (DESIGN.md "Default manifest", rule 1)
    result = runner.invoke(app, [*base, "eval", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    assert 0.0 <= read_json(tmp_path / "ev/metrics.json")["overall"]["eer"] <= 1.0


def test_cli_bad_method_input_is_one_line_and_writes_nothing(toy_tiny, tmp_path):
    from typer.testing import CliRunner

    from cm_cli.app import app

    root, manifest = toy_tiny
    runner = CliRunner()
    base = ["--data-root", str(root), "--runs-dir", str(tmp_path / "runs")]
    out = tmp_path / "run"
    unknown = runner.invoke(app, [*base, "train", "--method", "sgd", "--manifest", str(manifest), "--out", str(out)])
    assert unknown.exit_code == 2 and "groupdro" in unknown.output and not out.exists()
    loss = runner.invoke(app, [*base, "train", "--loss", "hinge", "--manifest", str(manifest), "--out", str(out)])
    assert loss.exit_code == 2 and "ocsoftmax" in loss.output and not out.exists()
    result = runner.invoke(
        app,
        [
            *base,
            "train",
            "--preset",
            "toy_lcnn_erm",
            "--method",
            "coral",
            "--manifest",
            str(manifest),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code != 0 and "domain_column" in result.output and not out.exists()
    assert "Traceback" not in result.output


def test_ocsoftmax_run_scores_with_the_cosine_and_reloads(toy_tiny, tmp_path):
    import torch

    from cm_cli.models.loading import load_model

    config = TrainConfig(
        method="erm",
        loss="ocsoftmax",
        backbone="lcnn",
        corpus="toy",
        max_steps=3,
        batch_size=8,
        lr=1e-3,
        max_len=1.0,
        seed=1,
    )
    assert _run(config, toy_tiny, tmp_path / "oc").status == "complete"
    loaded = load_model(tmp_path / "oc")
    assert loaded.model.config.score_head == "cosine"
    with torch.no_grad():
        out = loaded.model(torch.randn(3, 16000) * 0.1, torch.tensor([16000] * 3))
    assert torch.all(out.score.abs() <= 1.0 + 1e-6)
