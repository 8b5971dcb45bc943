"""``cm train --features --feature-norm``: per-column standardisation fitted on the training rows, saved with
the head and applied to validation and scoring, on by default for feature-set tables (raw units) only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.training.config import TrainConfig

N = {"train": 240, "dev": 120, "eval": 240}


def _table(path, ids, values, feature_set=None):
    """A `cm embed`-layout table; ``feature_set`` writes the marker a feature set's table carries."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True, exist_ok=True)
    columns = {"utt_id": pa.array(ids)}
    for layer in range(values.shape[1]):
        flat = pa.array(values[:, layer].astype(np.float32).reshape(-1))
        columns[f"layer_{layer:02d}"] = pa.FixedSizeListArray.from_arrays(flat, values.shape[2])
    table = pa.table(columns)
    if feature_set:
        table = table.replace_schema_metadata({"cm.feature_set": feature_set})
    pq.write_table(table, path / "embeddings.parquet")
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """One informative column in Hz-like units (d' = 2.7) beside a nuisance column in samples (sd 10^4)
    and four unit-variance noise columns: the layer norm of the head is swamped by the nuisance."""
    base = tmp_path_factory.mktemp("norm")
    rng = np.random.default_rng(7)
    rows = [(f"{s}_{i:04d}", s, "bonafide" if i % 2 else "spoof") for s, n in N.items() for i in range(n)]
    frame = pd.DataFrame(rows, columns=["utt_id", "split", "label"])
    frame["path"] = frame["utt_id"] + ".flac"
    frame["speaker"] = "s" + (np.arange(len(frame)) % 12).astype(str)
    frame["domain"] = "clean"
    frame["attack"] = np.where(frame["label"] == "bonafide", "-", "A01")
    frame = frame.assign(attack_family="-", corpus="toy", codec="-", codec_q="-", duration=1.0, sample_rate=16000)
    manifest = base / "manifest.parquet"
    frame.to_parquet(manifest)
    bona = np.where(frame["label"] == "bonafide", 1.0, -1.0)
    values = np.zeros((len(frame), 1, 6))
    values[:, 0, 0] = 150 + 20 * bona + 15 * rng.standard_normal(len(frame))
    values[:, 0, 1] = 40000 + 10000 * rng.standard_normal(len(frame))
    values[:, 0, 2:] = rng.standard_normal((len(frame), 4))
    ids = frame["utt_id"].to_numpy()
    marked = _table(base / "marked", ids, values, feature_set="planted")
    plain = _table(base / "plain", ids, values)
    return manifest, frame, values, marked, plain


def _config(features, **kwargs):
    base = dict(backbone="lcnn", corpus="toy", epochs=10, batch_size=16, lr=1e-2, seed=0, head="16")
    return TrainConfig(**{**base, "features": str(features), **kwargs})


def _eval_eer(run, features, frame) -> float:
    """EER (%) of the run's best head on the eval rows, scored as `cm eval --run R --features` scores them."""
    from cm_cli.metrics.summary import eer
    from cm_cli.training.features import score_features

    part = frame[frame["split"] == "eval"]
    scores = score_features(run, features, utt_ids=part["utt_id"].tolist())["score"].to_numpy()
    bona = (part["label"] == "bonafide").to_numpy()
    return 100 * float(eer(scores[bona], scores[~bona]))


def _linear_eer(frame, values) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from cm_cli.metrics.summary import eer

    x, bona = values[:, 0], (frame["label"] == "bonafide").to_numpy()
    train, test = (frame["split"] == "train").to_numpy(), (frame["split"] == "eval").to_numpy()
    scaler = StandardScaler().fit(x[train])
    model = LogisticRegression().fit(scaler.transform(x[train]), bona[train])
    scores = model.decision_function(scaler.transform(x[test]))
    return 100 * float(eer(scores[bona[test]], scores[~bona[test]]))


def test_standardised_head_reaches_the_linear_detector_and_the_unstandardised_one_does_not(planted, tmp_path):
    from cm_cli.core.artifacts import read_json
    from cm_cli.models.loading import read_torch_file
    from cm_cli.training.features import train_features_run

    manifest, frame, values, marked, plain = planted
    linear = _linear_eer(frame, values)
    auto = train_features_run(_config(marked), marked, manifest, tmp_path / "auto")
    none = train_features_run(_config(marked, feature_norm="none"), marked, manifest, tmp_path / "none")
    eer_auto, eer_none = _eval_eer(tmp_path / "auto", marked, frame), _eval_eer(tmp_path / "none", marked, frame)
    assert linear < 15  # the planted effect: d' = 2.7 on one column
    assert eer_auto < linear + 6, (eer_auto, linear)
    assert eer_none > eer_auto + 10, (eer_none, eer_auto)
    assert auto.summary["best_dev_eer"] < none.summary["best_dev_eer"]  # validation sees the standardised rows too
    # the mean and sd are the training rows' own, saved with the head
    saved = read_torch_file(tmp_path / "auto" / "checkpoints" / "best.pt")["feature_norm"]
    train = values[(frame["split"] == "train").to_numpy()].astype(np.float32).astype(np.float64)
    assert saved["mode"] == "auto"
    np.testing.assert_allclose(saved["mean"].numpy()[0], train.mean(axis=0)[0], rtol=1e-6)
    np.testing.assert_allclose(saved["scale"].numpy()[0], train.std(axis=0)[0], rtol=1e-6)
    assert read_json(tmp_path / "auto" / "config.json")["model"]["feature_norm"] == "auto"


def test_auto_leaves_backbone_embeddings_alone_and_standardize_forces_it(planted, tmp_path):
    from cm_cli.models.loading import read_torch_file
    from cm_cli.training.features import score_features, train_features_run

    manifest, frame, values, marked, plain = planted
    train_features_run(_config(plain, epochs=2), plain, manifest, tmp_path / "auto")
    train_features_run(_config(plain, epochs=2, feature_norm="none"), plain, manifest, tmp_path / "none")
    forced = train_features_run(_config(plain, epochs=2, feature_norm="standardize"), plain, manifest, tmp_path / "std")
    marked_run = train_features_run(_config(marked, epochs=2), marked, manifest, tmp_path / "marked")
    a, b = (pd.read_parquet(tmp_path / r / "history.parquet") for r in ("auto", "none"))
    pd.testing.assert_frame_equal(
        a.drop(columns=[c for c in a if "time" in c or "second" in c]),
        b.drop(columns=[c for c in b if "time" in c or "second" in c]),
    )
    assert read_torch_file(tmp_path / "auto" / "checkpoints" / "best.pt")["feature_norm"]["mean"] is None
    # standardize on an unmarked table is exactly auto on the same values marked as a feature set
    assert forced.summary["best_dev_eer"] == marked_run.summary["best_dev_eer"]
    ids = frame["utt_id"].tolist()
    np.testing.assert_array_equal(
        score_features(tmp_path / "std", plain, utt_ids=ids)["score"],
        score_features(tmp_path / "marked", marked, utt_ids=ids)["score"],
    )


def test_fused_auto_standardises_only_the_feature_set_columns(planted, tmp_path):
    from cm_cli.training.features import feature_norm_columns, fit_feature_norm, load_feature_tables

    manifest, frame, values, marked, plain = planted
    fused = load_feature_tables([plain, marked])
    assert fused.feature_sets == [None, "planted"]
    mask = feature_norm_columns(fused, "auto")
    assert mask.shape == (1, 12) and not mask[0, :6].any() and mask[0, 6:].all()
    norm = fit_feature_norm(fused.values, mask)
    assert (norm["mean"][0, :6] == 0).all() and (norm["scale"][0, :6] == 1).all()
    assert feature_norm_columns(load_feature_tables(plain), "auto") is None
    const = fit_feature_norm(np.ones((5, 1, 2), dtype=np.float32), np.ones((1, 2), dtype=bool))
    assert (const["scale"] == 1).all()  # a constant column is centred, not divided by zero


def test_an_unknown_feature_norm_is_a_one_line_usage_error():
    from cm_cli.core.errors import CmError

    with pytest.raises(CmError, match="feature normalisation 'zscore' is unknown") as info:
        TrainConfig(feature_norm="zscore").validate()
    assert info.value.option == ("feature_norm",)  # the command layer adds --feature-norm


def test_cm_train_feature_norm_option_reaches_the_run_and_a_bad_value_writes_nothing(planted, cm_env, run_cm):
    from cm_cli.core.artifacts import read_json
    from cm_cli.models.loading import read_torch_file

    manifest, frame, values, marked, plain = planted
    args = ["train", "--features", plain, "--manifest", manifest, "--epochs", "1", "--head", "8", "--backbone", "lcnn"]
    result = run_cm(*args, "--feature-norm", "zscore", "--out", cm_env / "bad")
    assert result.exit_code == 2 and "zscore" in result.output and not (cm_env / "bad").exists()
    result = run_cm(*args, "--feature-norm", "standardize", "--out", cm_env / "std")
    assert result.exit_code == 0, result.output
    assert read_json(cm_env / "std" / "config.json")["train"]["feature_norm"] == "standardize"
    saved = read_torch_file(cm_env / "std" / "checkpoints" / "best.pt")["feature_norm"]
    assert saved["mode"] == "standardize" and saved["mean"] is not None
