"""`cm eval --run R --features DIR`: a `cm train --features` head evaluated like any other run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.metrics import eer
from cm_cli.training.config import TrainConfig
from cm_cli.training.features import score_features, train_features_run


@pytest.fixture(scope="module")
def head_run(toy_tiny, tmp_path_factory):
    """(manifest, feature cache, trained feature-head run) on the tiny toy corpus."""
    from cm_cli.embedding import embed_manifest
    from cm_cli.models.ssl import save_tiny_ssl

    root, manifest = toy_tiny
    base = tmp_path_factory.mktemp("feateval")
    tiny = save_tiny_ssl("wavlm", base / "wavlm")
    embed_manifest(manifest, base / "emb", backbone=str(tiny), pooling="meanstd", data_root=root, batch_size=16)
    config = TrainConfig(
        backbone="lcnn", corpus="toy", epochs=2, batch_size=8, lr=3e-3, seed=2, features=str(base / "emb")
    )
    assert train_features_run(config, base / "emb", manifest, base / "run").status == "complete"
    return manifest, base / "emb", base / "run"


def _independent(run, emb, manifest):
    """Eval rows of the manifest with score_features' scores joined on utt_id."""
    df = pd.read_parquet(manifest)
    return df[df.split == "eval"].merge(score_features(run, emb), on="utt_id", validate="one_to_one")


def _eer(frame) -> float:
    return float(
        eer(
            frame.loc[frame.label == "bonafide", "score"].to_numpy(np.float64),
            frame.loc[frame.label == "spoof", "score"].to_numpy(np.float64),
        )
    )


def test_cli_eval_of_a_feature_head_writes_the_metrics_of_any_run(head_run, run_cm, cm_env):
    manifest, emb, run = head_run
    out = cm_env / "ev"
    args = [
        "--json",
        "eval",
        "--run",
        run,
        "--features",
        emb,
        "--manifest",
        manifest,
        "--by",
        "codec",
        "--by",
        "attack",
        "--bootstrap",
        "20",
        "--cluster-by",
        "speaker",
        "--out",
        out,
    ]
    result = run_cm(*args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    expected = _independent(run, emb, manifest)
    assert len(expected) == 36  # the tiny toy eval split: 12 bona fide, 24 spoof
    assert metrics["overall"]["eer"] == pytest.approx(_eer(expected), abs=1e-12)
    assert payload["overall"]["eer"] == metrics["overall"]["eer"]
    assert (metrics["overall"]["n_bonafide"], metrics["overall"]["n_spoof"]) == (12, 24)
    assert set(metrics["by"]["codec"]) == {"none"} and (out / "metrics_by_codec.parquet").is_file()
    bona = expected[expected.label == "bonafide"]
    for attack, group in expected[expected.label == "spoof"].groupby("attack"):
        assert metrics["by"]["attack"][attack]["eer"] == pytest.approx(_eer(pd.concat([bona, group])), abs=1e-12)
    assert metrics["ci"]["cluster_by"] == "speaker" and metrics["condition"]["n_failed"] == 0
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns[:2]) == ["utt_id", "score"] and {"label", "attack", "codec"} <= set(scores.columns)
    assert scores["score"].dtype == np.float32
    record = json.loads((out / "cm.json").read_text())
    assert record["kind"] == "scores" and record["options"]["scoring"] == "feature_head"
    assert record["options"]["features"] == str(emb.resolve())
    assert record["options"]["seen_domains"] == ["clean"]  # read from the run's config.json
    again = json.loads(run_cm(*args).stdout)
    assert again["skipped"] and again["overall"] == payload["overall"]

    report = run_cm("--json", "report", out, "--out", cm_env / "rep")  # read like any other evaluation
    assert report.exit_code == 0, report.output
    assert f"| {100 * metrics['overall']['eer']:.2f} |" in (cm_env / "rep" / "report.md").read_text()


def test_dry_run_writes_nothing_and_records_the_cache(head_run, run_cm, cm_env):
    manifest, emb, run = head_run
    result = run_cm(
        "--json", "--dry-run", "eval", "--run", run, "--features", emb, "--manifest", manifest, "--out", cm_env / "dry"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["dry_run"] and payload["options"]["features"] == str(emb)
    assert not (cm_env / "dry").exists()


@pytest.mark.parametrize(
    "extra, flag",
    [
        (["--degrade", "mp3:kbps=16"], "--degrade"),
        (["--chunk-ms", "500"], "--chunk-ms"),
        (["--chunk-ms", "500", "--causal-windows", "2"], "--chunk-ms"),
        (["--full-length"], "--full-length"),
        (["--audio", "x.wav"], "--audio"),
    ],
)
def test_options_that_need_audio_are_refused(head_run, run_cm, cm_env, extra, flag):
    manifest, emb, run = head_run
    result = run_cm("eval", "--run", run, "--features", emb, "--manifest", manifest, *extra, "--out", cm_env / "o")
    assert result.exit_code == 2 and flag in result.stderr and "needs audio" in result.stderr
    assert not (cm_env / "o").exists()


def test_causal_windows_alone_is_refused(head_run, run_cm, cm_env):
    manifest, emb, run = head_run
    result = run_cm("eval", "--run", run, "--features", emb, "--manifest", manifest, "--causal-windows", "2")
    assert result.exit_code == 2 and "--causal-windows" in result.stderr


def test_a_feature_head_without_features_names_the_fix(head_run, run_cm, cm_env):
    from cm_cli.models.loading import load_model

    manifest, emb, run = head_run
    result = run_cm("eval", "--run", run, "--manifest", manifest, "--out", cm_env / "o")
    assert result.exit_code == 2 and "--features EMB_DIR" in result.stderr
    with pytest.raises(CmError, match="feature-head run") as caught:
        load_model(run)
    assert "cm eval --run" in caught.value.hint and "--features" in caught.value.hint
    assert "\n" not in str(caught.value)
    checkpoint = run / "checkpoints" / "best.pt"  # a checkpoint file, away from its run's config.json
    alone = cm_env / "head.pt"
    shutil.copyfile(checkpoint, alone)
    with pytest.raises(CmError, match="feature-head run"):
        load_model(alone)


def test_features_with_an_audio_model_is_refused(head_run, run_cm, cm_env):
    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    manifest, emb, _ = head_run
    audio_run = cm_env / "audio_run"
    save_checkpoint(audio_run / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")))
    result = run_cm("eval", "--run", audio_run, "--features", emb, "--manifest", manifest, "--out", cm_env / "o")
    assert result.exit_code == 1 and "not a feature-head checkpoint" in result.stderr
    (audio_run / "config.json").write_text(json.dumps({"train": {"seed": 0}, "model": {"backbone": "lcnn"}}))
    result = run_cm("eval", "--run", audio_run, "--features", emb, "--manifest", manifest, "--out", cm_env / "o")
    assert result.exit_code == 2 and "drop --features" in result.stderr
    assert not (cm_env / "o").exists()


def test_a_cache_of_other_layers_or_backbone_is_refused(head_run, run_cm, cm_env):
    import pyarrow.parquet as pq

    manifest, emb, run = head_run
    table = pq.read_table(emb / "embeddings.parquet")
    fewer = cm_env / "fewer"
    fewer.mkdir()
    pq.write_table(table.select(["utt_id", "layer_00", "layer_01"]), fewer / "embeddings.parquet")
    result = run_cm("eval", "--run", run, "--features", fewer, "--manifest", manifest, "--out", cm_env / "o")
    assert result.exit_code == 1 and "differ from the head's" in result.stderr and str(fewer) in result.stderr

    other = cm_env / "other"
    shutil.copytree(emb, other)
    record = json.loads((other / "cm.json").read_text())
    record["options"]["backbone"] = "microsoft/wavlm-base-plus"
    (other / "cm.json").write_text(json.dumps(record))
    result = run_cm("eval", "--run", run, "--features", other, "--manifest", manifest, "--out", cm_env / "o")
    assert result.exit_code == 1 and "microsoft/wavlm-base-plus" in result.stderr


def test_rows_missing_from_the_cache(head_run, run_cm, cm_env):
    """Rows `cm embed` failed on are failures (as unreadable audio is); any other missing row is an error."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    manifest, emb, run = head_run
    df = pd.read_parquet(manifest)
    dropped = df.loc[(df.split == "eval") & (df.label == "spoof"), "utt_id"].iloc[0]
    partial = cm_env / "partial"
    shutil.copytree(emb, partial)
    table = pq.read_table(emb / "embeddings.parquet")
    pq.write_table(table.filter(pc.invert(pc.equal(table["utt_id"], dropped))), partial / "embeddings.parquet")
    result = run_cm("eval", "--run", run, "--features", partial, "--manifest", manifest, "--out", cm_env / "o")
    assert result.exit_code == 1 and "1 manifest row(s)" in result.stderr and dropped in result.stderr

    pd.DataFrame({"utt_id": [dropped], "path": ["x.flac"], "error": ["undecodable"]}).to_parquet(
        partial / "failures.parquet"
    )
    result = run_cm(
        "--json", "eval", "--run", run, "--features", partial, "--manifest", manifest, "--out", cm_env / "o2"
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((cm_env / "o2" / "metrics.json").read_text())
    assert metrics["condition"]["n_failed"] == 1 and metrics["overall"]["n_spoof"] == 23
    failures = pd.read_parquet(cm_env / "o2" / "failures.parquet")
    assert failures["utt_id"].tolist() == [dropped] and "undecodable" in failures["error"].iloc[0]
    expected = _independent(run, emb, manifest)
    assert metrics["overall"]["eer"] == pytest.approx(_eer(expected[expected.utt_id != dropped]), abs=1e-12)


def test_an_unreadable_head_is_one_line(head_run, run_cm, cm_env):
    manifest, emb, run = head_run
    broken = cm_env / "broken"
    shutil.copytree(run, broken)
    (broken / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    result = run_cm("eval", "--run", broken, "--features", emb, "--manifest", manifest, "--out", cm_env / "o")
    assert result.exit_code == 1 and "cannot read checkpoint" in result.stderr
    assert "Traceback" not in result.output
