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
    result = run_cm("--json", "embed", "--manifest", m, "--backbone", "aasist", "--checkpoint", weights,
                    "--out", cm_env / "emb", "--layers", "0,9", "--split", "eval", "-j", "0")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_rows"] == 3 and payload["dims"] == {"layer_00": 23, "layer_09": 160, "pooled": 160, "pre_logit": 160}
    assert pq.read_schema(cm_env / "emb" / "embeddings.parquet").names == ["utt_id", "layer_00", "layer_09", "pooled", "pre_logit"]
    record = json.loads((cm_env / "emb" / "cm.json").read_text())
    assert record["summary"]["checkpoint"] == str(weights.resolve()) and record["summary"]["dtype"] == "float16"
    again = run_cm("--json", "embed", "--manifest", m, "--backbone", "aasist", "--checkpoint", weights,
                   "--out", cm_env / "emb", "--layers", "0,9", "--split", "eval", "-j", "0")
    assert json.loads(again.stdout)["skipped"] is True


def test_embed_ssl_shards_and_human_output(cm_env, run_cm, tiny):
    m = make_manifest(cm_env / "audio", lengths=(8000, 9000, 10000, 11000))
    for index in (0, 1):
        result = run_cm("embed", "-m", m, "--backbone", tiny, "--out", cm_env / "emb", "--shard", f"{index}/2",
                        "--pooling", "meanstd", "-j", "0")
        assert result.exit_code == 0, result.output
        assert f"part-0000{index}-of-00002.parquet" in result.stdout
    from cm_cli.embedding import load_layer

    ids, X = load_layer(cm_env / "emb", "layer_02")
    assert len(ids) == 5 and X.shape == (5, 64)  # 4 eval + 1 train row, one undecodable
    assert (cm_env / "emb" / "failures-00001-of-00002.parquet").is_file() or (cm_env / "emb" / "failures-00000-of-00002.parquet").is_file()


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
