"""`cm train --features A --features B`: several feature tables joined on utt_id and fused in one head
(issue 27 item 4), scored by `cm eval --run R --features A,B` like any other run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig


def _table(path, ids, values):
    """An `cm embed`-layout table: utt_id and one fixed-size-list column per layer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    columns = {"utt_id": pa.array(ids)}
    for layer in range(values.shape[1]):
        flat = pa.array(values[:, layer].astype(np.float32).reshape(-1))
        columns[f"layer_{layer:02d}"] = pa.FixedSizeListArray.from_arrays(flat, values.shape[2])
    pq.write_table(pa.table(columns), path / "embeddings.parquet")
    return path


@pytest.fixture()
def planted(toy_tiny, tmp_path):
    """Table A: noise (3 layers x 4); table B (another width, 1 layer x 3, rows shuffled): the label."""
    root, manifest = toy_tiny
    frame = pd.read_parquet(manifest)
    ids = frame["utt_id"].astype(str).to_numpy()
    bona = (frame["label"] == "bonafide").to_numpy()
    rng = np.random.default_rng(0)
    a = _table(tmp_path / "a", ids, rng.standard_normal((len(ids), 3, 4)))
    b_values = rng.standard_normal((len(ids), 1, 3))
    b_values[:, 0, 1] += np.where(bona, 3.0, -3.0)
    order = rng.permutation(len(ids))
    b = _table(tmp_path / "b", ids[order], b_values[order])
    return manifest, a, b, ids


def _config(features, **kwargs):
    base = dict(backbone="lcnn", corpus="toy", epochs=8, batch_size=8, lr=1e-2, seed=0, head="16", features=features)
    return TrainConfig(**{**base, **kwargs})


def test_two_tables_are_joined_fused_and_learn_the_label_only_one_of_them_holds(planted, tmp_path):
    from cm_cli.core.artifacts import read_json
    from cm_cli.evaluation import evaluate_features
    from cm_cli.training.features import load_feature_tables, train_features_run

    manifest, a, b, ids = planted
    fused = load_feature_tables([a, b])
    assert fused.groups == [(3, 4), (1, 3)] and fused.values.shape == (len(ids), 1, 3 * 4 + 3)
    spec = f"{a},{b}"
    alone = train_features_run(_config(str(a)), a, manifest, tmp_path / "a_only")
    both = train_features_run(_config(spec), spec, manifest, tmp_path / "fused")
    assert both.status == "complete"
    assert both.summary["best_dev_eer"] == 0.0 < alone.summary["best_dev_eer"]
    assert read_json(tmp_path / "fused/config.json")["features"] == f"{a.resolve()},{b.resolve()}"
    result = evaluate_features(tmp_path / "fused", spec, manifest, tmp_path / "ev", split="eval")
    metrics = read_json(tmp_path / "ev/metrics.json")
    assert metrics["overall"]["eer"] < 0.15 and result is not None  # the planted label, through the fused head
    with pytest.raises(CmError, match="layers"):  # the head was trained on two tables: one is not enough
        evaluate_features(tmp_path / "fused", a, manifest, tmp_path / "ev2", split="eval")


def test_a_row_missing_from_one_table_is_one_line_naming_that_table(planted, tmp_path):
    from cm_cli.training.features import train_features_run

    manifest, a, b, ids = planted
    import pyarrow.parquet as pq

    table = pq.read_table(b / "embeddings.parquet")
    train_id = pd.read_parquet(manifest).query("split == 'train'")["utt_id"].iloc[0]
    keep = [u != train_id for u in table.column("utt_id").to_pylist()]
    pq.write_table(table.filter(keep), b / "embeddings.parquet")
    spec = f"{a},{b}"
    with pytest.raises(CmError, match=f"missing from one of the feature tables, e.g. {train_id} from .*b"):
        train_features_run(_config(spec), spec, manifest, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_repeats_features(planted, tmp_path):
    from typer.testing import CliRunner

    from cm_cli.app import app

    manifest, a, b, ids = planted
    result = CliRunner().invoke(
        app,
        [
            "--runs-dir",
            str(tmp_path / "runs"),
            "train",
            "--features",
            str(a),
            "--features",
            str(b),
            "--manifest",
            str(manifest),
            "--out",
            str(tmp_path / "cli"),
            "--epochs",
            "1",
            "--batch-size",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli/checkpoints/best.pt").is_file()
