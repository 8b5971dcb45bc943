"""`cm train --log-to`: what TensorBoard receives equals the run's history; a missing tracker is one line."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig
from cm_cli.training.run import train_run


def test_tensorboard_receives_every_history_column_dev_metrics_config_and_revision(toy_tiny, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, manifest = toy_tiny
    config = TrainConfig(
        method="dann",
        backbone="lcnn",
        corpus="toy",
        epochs=2,
        batch_size=8,
        lr=1e-3,
        max_len=1.0,
        seed=4,
        augment="clean:0.5, alaw:0.5",
        domain_columns=["domain"],
        log_to=["tensorboard"],
    )
    out = tmp_path / "run"
    train_run(config, manifest, out, data_root=root, cache_dir=tmp_path / "cache")
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    history = pd.read_parquet(out / "history.parquet")
    tags = set(events.Tags()["scalars"])
    logged = [c for c in history.columns if c != "step" and history[c].notna().any()]
    assert set(logged) <= tags and {"dev_eer", "dev_min_dcf", "dev_eer_threshold", "loss_domain_domain"} <= tags
    for column in logged:
        expected = {int(s): float(v) for s, v in zip(history["step"], history[column]) if not math.isnan(v)}
        got = {e.step: e.value for e in events.Scalars(column)}
        assert got.keys() == expected.keys(), column
        assert all(got[s] == pytest.approx(expected[s], rel=1e-6) for s in expected), column
    texts = set(events.Tags()["tensors"])
    assert {"config/text_summary", "git_revision/text_summary"} <= texts
    config_text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"method": "dann"' in config_text


def test_a_tracker_that_is_not_installed_is_one_line_naming_the_extra(toy_tiny, tmp_path, monkeypatch):
    import importlib.util

    root, manifest = toy_tiny
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    config = TrainConfig(backbone="lcnn", corpus="toy", max_steps=1, batch_size=8, max_len=1.0, log_to=["wandb"])
    with pytest.raises(CmError, match=r"wandb package is not installed") as info:
        train_run(config, manifest, tmp_path / "run", data_root=root)
    assert info.value.hint == "pip install 'cm-cli[wandb]'"
    assert not (tmp_path / "run").exists()
    with pytest.raises(CmError, match="unknown tracker 'neptune'"):
        TrainConfig(log_to=["neptune"]).validate()


def test_cli_log_to_is_repeatable_and_not_part_of_the_run_identity(cm_env, run_cm):
    result = run_cm(
        "--json",
        "--dry-run",
        "train",
        "--backbone",
        "lcnn",
        "--corpus",
        "toy",
        "--log-to",
        "tensorboard",
        "--log-to",
        "mlflow",
    )
    assert result.exit_code == 0, result.output
    import json

    assert json.loads(result.stdout)["options"]["log_to"] == ["tensorboard", "mlflow"]


@pytest.fixture
def tracked_steps(monkeypatch):
    """The steps a tracker receives (a recorder in place of the real trackers), in order."""
    from cm_cli.training import tracking

    received = []

    class Recorder:
        def step(self, row):
            received.append(int(row["step"]))

        def dev(self, step, result):
            pass

        def close(self, summary):
            pass

    monkeypatch.setattr(tracking, "check_trackers", lambda names: None)
    monkeypatch.setattr(tracking, "open_trackers", lambda *args, **kwargs: Recorder())
    return received


def _log_every_3() -> TrainConfig:
    return TrainConfig(
        backbone="lcnn",
        corpus="toy",
        epochs=1,
        batch_size=4,
        lr=1e-3,
        max_len=0.5,
        seed=1,
        log_every=3,
        log_to=["tensorboard"],
    )


def test_log_every_thins_what_trackers_receive_and_keeps_every_history_row(toy_tiny, tmp_path, tracked_steps):
    root, manifest = toy_tiny
    out = tmp_path / "run"
    train_run(_log_every_3(), manifest, out, data_root=root, cache_dir=tmp_path / "cache")
    steps = [int(s) for s in pd.read_parquet(out / "history.parquet")["step"]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 4
    assert tracked_steps == [s for s in steps if s % 3 == 0 or s == steps[-1]]


def test_log_every_still_sends_the_last_row_of_an_interrupted_run(toy_tiny, tmp_path, tracked_steps):
    root, manifest = toy_tiny
    outcome = train_run(
        _log_every_3(),
        manifest,
        tmp_path / "run",
        data_root=root,
        cache_dir=tmp_path / "cache",
        stop_requested=lambda s: s >= 4,
    )
    assert outcome.status == "interrupted" and tracked_steps == [3, 4]
