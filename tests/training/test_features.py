"""`cm train --features`: heads trained on a `cm embed --pooling meanstd` cache, end to end on the toy corpus."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig
from cm_cli.training.features import load_features, score_features, train_features_run
from cm_cli.training.history import HISTORY_COLUMNS, history_columns


@pytest.fixture(scope="module")
def toy_features(toy_tiny, tmp_path_factory):
    from cm_cli.embedding import embed_manifest
    from cm_cli.models.ssl import save_tiny_ssl

    root, manifest = toy_tiny
    base = tmp_path_factory.mktemp("features")
    tiny = save_tiny_ssl("wavlm", base / "wavlm")  # random weights: the mechanics, not the accuracy
    embed_manifest(manifest, base / "emb", backbone=str(tiny), pooling="meanstd", data_root=root, batch_size=16)
    return root, manifest, base / "emb"


def _config(**kwargs):
    base = dict(backbone="lcnn", corpus="toy", epochs=3, batch_size=8, lr=3e-3, seed=2)
    return TrainConfig(**{**base, **kwargs})


def test_feature_cache_holds_every_layer_as_mean_and_std(toy_features):
    root, manifest, out = toy_features
    features = load_features(out)
    n_layers, width = features.values.shape[1:]
    assert features.layers == [f"layer_{i:02d}" for i in range(n_layers)] and n_layers > 1
    assert features.pooling == "meanstd" and width == 2 * 32  # mean and std of the tiny model's 32 dims
    assert len(features.ids) == len(pd.read_parquet(manifest))


def test_erm_and_dann_heads_train_report_dev_eer_and_score(toy_features, tmp_path):
    import torch

    root, manifest, out = toy_features
    erm = train_features_run(_config(features=str(out)), out, manifest, tmp_path / "erm")
    assert erm.status == "complete"
    history = pd.read_parquet(tmp_path / "erm/history.parquet")
    assert list(history.columns) == list(HISTORY_COLUMNS) and len(history) == 3 * 5  # 36 rows in batches of 8: 5 steps
    assert history["dev_eer"].notna().sum() == 3
    summary = erm.summary
    assert 0.0 <= summary["best_dev_eer"] <= 1.0 and summary["best_dev_eer"] == history["dev_eer"].min()
    payload = torch.load(tmp_path / "erm/checkpoints/best.pt", weights_only=True)
    assert payload["metrics"]["dev_eer"] == summary["best_dev_eer"]
    assert np.isfinite(payload["metrics"]["dev_eer_threshold"])
    # the saved head scores the cache; its dev EER is the one the run selected on
    from cm_cli.training.selection import dev_result

    scores = score_features(tmp_path / "erm", out)
    df = pd.read_parquet(manifest)
    dev = df[df.split == "dev"].merge(scores, on="utt_id")
    assert len(dev) == (df.split == "dev").sum()
    again = dev_result(dev["score"].to_numpy(), dev["label"].to_numpy() == "bonafide")
    assert again["dev_eer"] == pytest.approx(summary["best_dev_eer"], abs=1e-6)
    config = json.loads((tmp_path / "erm/config.json").read_text())
    assert config["model"]["kind"] == "feature_head" and config["seen_domains"] == ["clean"]

    with pytest.raises(CmError, match="widths differ"):
        _mixed_widths(out, tmp_path)

    dann = _config(
        features=str(out), method="dann", domain_columns=["gender"], lambda_schedule="constant", lambda_max=0.3
    )
    outcome = train_features_run(dann, out, manifest, tmp_path / "dann")
    assert outcome.status == "complete"
    history = pd.read_parquet(tmp_path / "dann/history.parquet")
    assert list(history.columns) == history_columns(["gender"])
    assert (history["lambda"] == 0.3).all() and history["domain_acc_gender"].notna().all()


def test_rows_missing_from_the_cache_are_named(toy_features, tmp_path):
    root, manifest, out = toy_features
    df = pd.read_parquet(manifest)
    df.loc[df.index[df.split == "train"][0], "utt_id"] = "NOT_EMBEDDED"
    edited = tmp_path / "m.parquet"
    df.to_parquet(edited)
    with pytest.raises(CmError, match="1 manifest row.*no features.*NOT_EMBEDDED"):
        train_features_run(_config(features=str(out)), out, edited, tmp_path / "run")


def test_cli_trains_from_features(toy_features, tmp_path, cm_env, run_cm):
    root, manifest, out = toy_features
    result = run_cm(
        "--json",
        "train",
        "--features",
        out,
        "--manifest",
        manifest,
        "--out",
        tmp_path / "cli",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--backbone",
        "lcnn",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "complete" and summary["features"] is True and summary["best_dev_eer"] is not None


def _mixed_widths(out, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(out / "embeddings.parquet")
    first = table.column("layer_00").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1)
    narrow = pa.FixedSizeListArray.from_arrays(pa.array(first[:, :8].reshape(-1)), 8)
    pq.write_table(table.set_column(0 + 1, "layer_00", narrow), tmp_path / "mixed.parquet")
    return load_features(tmp_path / "mixed.parquet")
