"""`cm embed` through the real app: official AASIST spelling, JSON output, shards, errors."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.test_embedding import make_manifest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from cm_cli.models.ssl import save_tiny_ssl

    return save_tiny_ssl("w2v2", tmp_path_factory.mktemp("tiny") / "w2v2")


def test_embed_aasist_official_checkpoint_cli(cm_env, run_cm, fixtures_dir):
    m = make_manifest(cm_env / "audio", lengths=(16000, 20000, 24000), bad=False)
    weights = fixtures_dir / "aasist" / "asvspoof5_aasist_baseline.pth"
    result = run_cm(
        "--json",
        "embed",
        "--manifest",
        m,
        "--backbone",
        "aasist",
        "--checkpoint",
        weights,
        "--out",
        cm_env / "emb",
        "--layers",
        "0,9",
        "--split",
        "eval",
        "-j",
        "0",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_rows"] == 3 and payload["dims"] == {
        "layer_00": 23,
        "layer_09": 160,
        "pooled": 160,
        "pre_logit": 160,
    }
    assert pq.read_schema(cm_env / "emb" / "embeddings.parquet").names == [
        "utt_id",
        "layer_00",
        "layer_09",
        "pooled",
        "pre_logit",
        "short",
    ]
    record = json.loads((cm_env / "emb" / "cm.json").read_text())
    assert record["summary"]["checkpoint"] == str(weights.resolve()) and record["summary"]["dtype"] == "float16"
    again = run_cm(
        "--json",
        "embed",
        "--manifest",
        m,
        "--backbone",
        "aasist",
        "--checkpoint",
        weights,
        "--out",
        cm_env / "emb",
        "--layers",
        "0,9",
        "--split",
        "eval",
        "-j",
        "0",
    )
    assert json.loads(again.stdout)["skipped"] is True


def test_embed_ssl_shards_and_human_output(cm_env, run_cm, tiny):
    m = make_manifest(cm_env / "audio", lengths=(8000, 9000, 10000, 11000))
    for index in (0, 1):
        result = run_cm(
            "embed",
            "-m",
            m,
            "--backbone",
            tiny,
            "--out",
            cm_env / "emb",
            "--shard",
            f"{index}/2",
            "--pooling",
            "meanstd",
            "-j",
            "0",
        )
        assert result.exit_code == 0, result.output
        assert f"part-0000{index}-of-00002.parquet" in result.stdout
    from cm_cli.embedding import load_layer

    ids, X = load_layer(cm_env / "emb", "layer_02")
    assert len(ids) == 5 and X.shape == (5, 64)  # 4 eval + 1 train row, one undecodable
    assert (cm_env / "emb" / "failures-00001-of-00002.parquet").is_file() or (
        cm_env / "emb" / "failures-00000-of-00002.parquet"
    ).is_file()


def test_embed_bad_input_errors(cm_env, run_cm, tiny):
    m = make_manifest(cm_env / "audio", lengths=(8000,), bad=False)
    result = run_cm("embed", "-m", m, "--backbone", "nosuch", "--out", cm_env / "e1")
    assert result.exit_code == 1 and "unknown backbone" in result.stderr and "hubert" in result.stderr
    assert not (cm_env / "e1").exists()
    result = run_cm("embed", "-m", m, "--out", cm_env / "e2")
    assert result.exit_code == 2 and "--backbone" in result.stderr
    result = run_cm("embed", "-m", m, "--backbone", tiny, "--layers", "x", "--out", cm_env / "e3")
    assert result.exit_code == 2 and "not a layer number" in result.stderr
    result = run_cm("--dry-run", "--json", "embed", "-m", m, "--backbone", tiny, "--out", cm_env / "e4")
    assert result.exit_code == 0 and json.loads(result.stdout)["options"]["pooling"] == "mean"
    assert not (cm_env / "e4").exists()


def _prosody_world(root, n_speakers=6, per_label=3):
    """Bona fide at 100-130 Hz, spoofs at 190-230 Hz (planted F0 effect), plus an empty and a 10 ms clip."""
    import numpy as np

    from tests.featuresets.synth import harmonic_tone, write_manifest

    rng = np.random.default_rng(1)
    rows = []
    for s in range(n_speakers):
        for k in range(per_label):
            for label, (lo, hi) in (("bonafide", (100, 130)), ("spoof", (190, 230))):
                wave = harmonic_tone(float(rng.uniform(lo, hi)), float(rng.uniform(0.5, 1.0)))
                wave = wave + 0.003 * rng.standard_normal(len(wave)).astype("float32")
                rows.append(
                    {
                        "utt_id": f"{label[0]}{s}_{k}",
                        "wave": wave,
                        "label": label,
                        "speaker": f"s{s}",
                        "attack": None if label == "bonafide" else f"A0{1 + k % 2}",
                    }
                )
    rows.append({"utt_id": "empty", "wave": np.zeros(0), "label": "spoof", "speaker": "s0", "attack": "A01"})
    rows.append({"utt_id": "blip", "wave": 0.1 * np.ones(160), "label": "bonafide", "speaker": "s1"})
    return write_manifest(root, rows)


def test_embed_prosody_covers_every_row_and_probes(cm_env, run_cm):
    import numpy as np
    import pandas as pd

    manifest = _prosody_world(cm_env / "audio")
    result = run_cm("--json", "embed", "--manifest", manifest, "--backbone", "prosody", "--out", cm_env / "pros")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_failed"] == 0 and payload["flags"]["flag_short"] == 2 and payload["flags"]["flag_silent"] == 1
    table = pd.read_parquet(cm_env / "pros" / "embeddings.parquet")
    ids = set(pd.read_parquet(manifest)["utt_id"])
    assert set(table["utt_id"]) == ids and len(table) == len(ids)
    assert "f0_mean_hz" in table.columns and table["flag_short"].sum() == 2
    assert np.isfinite(np.stack(table["layer_00"].to_numpy())).all()
    probe = run_cm(
        "--json",
        "probe",
        cm_env / "pros",
        "--manifest",
        manifest,
        "--target",
        "label",
        "--out",
        cm_env / "probe",
        "--folds",
        "3",
        "--bootstrap",
        "50",
    )
    assert probe.exit_code == 0, probe.output
    assert json.loads(probe.stdout)["best_layer"]["pros"]["accuracy"] > 0.9  # the planted F0 split
    again = run_cm("--json", "embed", "--manifest", manifest, "--backbone", "prosody", "--out", cm_env / "pros")
    assert json.loads(again.stdout)["skipped"] is True
    from cm_cli.training.features import load_features

    cache = load_features(cm_env / "pros")  # what `cm train --features` reads
    assert cache.values.shape == (len(ids), 1, 19) and cache.layers == ["layer_00"]


def test_embed_prosody_shards_read_as_one_table(cm_env, run_cm):
    from cm_cli.embedding import load_layer

    manifest = _prosody_world(cm_env / "audio", n_speakers=2, per_label=1)
    for index in (0, 1):
        result = run_cm(
            "embed", "-m", manifest, "--backbone", "prosody", "--out", cm_env / "e", "--shard", f"{index}/2"
        )
        assert result.exit_code == 0, result.output
    ids, X = load_layer(cm_env / "e", "layer_00")
    assert len(ids) == 6 and X.shape[1] == 19


def test_embed_feature_set_bad_input(cm_env, run_cm):
    manifest = _prosody_world(cm_env / "audio", n_speakers=1, per_label=1)
    result = run_cm("embed", "-m", manifest, "--backbone", "prosody", "--backbone-id", "x", "--out", cm_env / "e1")
    assert result.exit_code == 1 and "takes no weights" in result.stderr and not (cm_env / "e1").exists()
    result = run_cm("embed", "-m", manifest, "--backbone", "prosody", "--checkpoint", manifest, "--out", cm_env / "e0")
    assert result.exit_code == 2 and "feature set" in result.stderr and not (cm_env / "e0").exists()
    result = run_cm("embed", "-m", manifest, "--backbone", "reconstruction", "--out", cm_env / "e2")
    assert result.exit_code == 1 and "hf download" in result.stderr and not (cm_env / "e2").exists()
    result = run_cm(
        "embed",
        "-m",
        manifest,
        "--backbone",
        "reconstruction",
        "--backbone-id",
        cm_env / "nope",
        "--out",
        cm_env / "e3",
    )
    assert result.exit_code == 1 and "hf download" in result.stderr and not (cm_env / "e3").exists()
