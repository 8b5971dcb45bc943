"""One history schema: what ``fit`` writes is exactly ``history_columns``, and the summary carries dev EER."""

from __future__ import annotations

import math

import pandas as pd

from cm_cli.training.config import TrainConfig
from cm_cli.training.history import HISTORY_COLUMNS, MicroStats, history_columns, history_row, write_history
from cm_cli.training.run import train_run


def test_rows_and_written_table_follow_one_schema(tmp_path):
    row = history_row(1, 0, 1e-3, float("nan"), MicroStats(), ["domain", "codec"])
    assert list(row) == history_columns(["domain", "codec"])
    assert history_columns() == list(HISTORY_COLUMNS)
    write_history([row], ["domain", "codec"], tmp_path / "h.parquet")
    assert list(pd.read_parquet(tmp_path / "h.parquet").columns) == history_columns(["domain", "codec"])
    write_history([], [], tmp_path / "empty.parquet")
    assert list(pd.read_parquet(tmp_path / "empty.parquet").columns) == list(HISTORY_COLUMNS)


def _config(**kwargs):
    base = dict(backbone="lcnn", corpus="toy", epochs=1, batch_size=8, lr=1e-3, max_len=1.0, seed=3)
    return TrainConfig(**{**base, **kwargs})


def test_erm_and_dann_runs_write_exactly_the_schema_and_summary_has_dev_eer(toy_tiny, tmp_path):
    import torch

    root, manifest = toy_tiny
    erm = train_run(_config(), manifest, tmp_path / "erm", data_root=root, cache_dir=tmp_path / "c")
    history = pd.read_parquet(tmp_path / "erm/history.parquet")
    assert list(history.columns) == list(HISTORY_COLUMNS)
    validated = history.dropna(subset=["dev_eer"])
    assert len(validated) == 1
    summary = erm.summary
    # the keys demo.py and `cm train --json` read
    assert summary["best_dev_eer"] == validated["dev_eer"].iloc[-1] == summary["dev_eer"]
    assert summary["best_dev_min_dcf"] == validated["dev_min_dcf"].iloc[-1]
    assert math.isfinite(summary["dev_eer_threshold"])
    metrics = torch.load(tmp_path / "erm/checkpoints/best.pt", weights_only=True)["metrics"]
    assert {"dev_eer", "dev_min_dcf", "dev_eer_threshold"} <= set(metrics)
    assert metrics["dev_eer_threshold"] == summary["dev_eer_threshold"]
    # the dev EER that selected the checkpoint is the one the shared model path computes from it
    from cm_cli.models.loading import load_model
    from cm_cli.training.validation import evaluate_dev

    frame = pd.read_parquet(manifest)
    again = evaluate_dev(
        load_model(tmp_path / "erm").model, frame[frame.split == "dev"], data_root=root, device="cpu", batch_size=8
    )
    assert again["dev_eer"] == summary["best_dev_eer"] and again["dev_eer_threshold"] == summary["dev_eer_threshold"]

    dann = _config(method="dann", augment="clean:0.5, alaw:0.5", domain_columns=["domain"], max_steps=2)
    train_run(dann, manifest, tmp_path / "dann", data_root=root, cache_dir=tmp_path / "c")
    columns = list(pd.read_parquet(tmp_path / "dann/history.parquet").columns)
    assert columns == history_columns(["domain"])
