"""cm_cli.embedding: layer-wise embeddings of a manifest, and the one-layer reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.core.shard import Shard

TINY_RF = 30  # receptive field (samples) of the tiny config: kernels 10,3,2 strides 5,2,2


def make_manifest(root: Path, lengths=(16000, 9000, 12000, 20), *, bad: bool = True, stereo48k: bool = False) -> Path:
    """A few generated FLACs (+ one undecodable file) and a manifest pointing at them."""
    import pandas as pd
    import soundfile as sf

    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, n in enumerate(lengths):
        path = root / f"u{i}.flac"
        sf.write(path, (0.1 * rng.standard_normal(n)).astype("float32"), 16000)
        rows.append(
            {
                "utt_id": f"u{i}",
                "path": str(path),
                "label": "bonafide" if i % 2 else "spoof",
                "attack": None if i % 2 else "A01",
                "speaker": "s1",
                "split": "eval",
                "corpus": "toy",
                "domain": "clean",
            }
        )
    if stereo48k:
        path = root / "st.wav"
        sf.write(path, (0.1 * rng.standard_normal((48000, 2))).astype("float32"), 48000)
        rows.append(
            {
                "utt_id": "stereo",
                "path": str(path),
                "label": "bonafide",
                "speaker": "s1",
                "split": "eval",
                "corpus": "toy",
                "domain": "clean",
            }
        )
    if bad:
        (root / "bad.flac").write_bytes(b"not audio at all" * 8)
        rows.append(
            {
                "utt_id": "bad",
                "path": str(root / "bad.flac"),
                "label": "spoof",
                "attack": "A02",
                "speaker": "s1",
                "split": "eval",
                "corpus": "toy",
                "domain": "clean",
            }
        )
    rows.append(
        {
            "utt_id": "train0",
            "path": str(root / "u0.flac"),
            "label": "bonafide",
            "speaker": "s2",
            "split": "train",
            "corpus": "toy",
            "domain": "clean",
        }
    )
    manifest = root / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    return manifest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from cm_cli.models.ssl import save_tiny_ssl

    return save_tiny_ssl("wavlm", tmp_path_factory.mktemp("tiny") / "wavlm")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("audio"))


def test_tiny_ssl_every_layer_float16_failures_and_padding(tmp_path, tiny, manifest):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cm_cli.embedding import embed_manifest, list_layers, load_layer

    result = embed_manifest(manifest, tmp_path / "out", backbone=str(tiny), split="eval", batch_size=2)
    assert not result.skipped and result.n_rows == 4 and result.n_failed == 1
    schema = pq.read_schema(result.path)
    assert schema.names == [
        "utt_id",
        "layer_00",
        "layer_01",
        "layer_02",
        "short",
    ]  # tiny: 2 transformer layers + embedding output, then the short-clip flag
    for name in schema.names[1:-1]:
        assert pa.types.is_fixed_size_list(schema.field(name).type)
        assert schema.field(name).type.value_type == pa.float16() and schema.field(name).type.list_size == 32
    assert list_layers(tmp_path / "out") == ["layer_00", "layer_01", "layer_02"]
    ids, X = load_layer(tmp_path / "out", 2)
    assert sorted(ids) == ["u0", "u1", "u2", "u3"] and X.shape == (4, 32) and X.dtype == np.float32
    assert np.isfinite(X).all() and X.std(axis=0).max() > 0
    failures = pd.read_parquet(tmp_path / "out" / "failures.parquet")
    assert failures["utt_id"].tolist() == ["bad"] and "bad.flac" in failures["error"][0]
    record = json.loads((tmp_path / "out" / "cm.json").read_text())
    summary = record["summary"]
    assert record["kind"] == "embeddings" and record["status"] == "complete"
    assert summary["backbone"] == str(tiny) and summary["pooling"] == "mean" and summary["dims"]["layer_01"] == 32
    assert (
        summary["n_padded_short"] == 1 and summary["padded_short"] == ["u3"] and summary["receptive_field"] == TINY_RF
    )
    assert any("receptive field" in n for n in summary["notes"])
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_batched_rows_equal_one_at_a_time(tmp_path, tiny, manifest):
    from cm_cli.embedding import embed_manifest, load_layer

    embed_manifest(manifest, tmp_path / "b4", backbone=str(tiny), split="eval", batch_size=4, fp32=True)
    embed_manifest(manifest, tmp_path / "b1", backbone=str(tiny), split="eval", batch_size=1, fp32=True)
    for layer in ("layer_00", "layer_02"):
        ids4, X4 = load_layer(tmp_path / "b4", layer)
        ids1, X1 = load_layer(tmp_path / "b1", layer)
        order = np.argsort(ids4), np.argsort(ids1)
        np.testing.assert_allclose(X4[order[0]], X1[order[1]], atol=2e-4)


def test_layer_selection_meanstd_fp32_crop_and_resume(tmp_path, tiny, manifest):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cm_cli.embedding import embed_manifest

    out = tmp_path / "sel"
    kwargs = dict(backbone=str(tiny), split="eval", layers="0,-1", pooling="meanstd", fp32=True, max_seconds=0.5)
    first = embed_manifest(manifest, out, **kwargs)
    schema = pq.read_schema(first.path)
    assert schema.names == ["utt_id", "layer_00", "layer_02", "short"]
    assert schema.field("layer_02").type.list_size == 64 and schema.field("layer_02").type.value_type == pa.float32()
    mtime = first.path.stat().st_mtime_ns
    again = embed_manifest(manifest, out, **kwargs)
    assert again.skipped and again.n_rows == 4 and first.path.stat().st_mtime_ns == mtime
    with pytest.raises(CmError, match="different options"):
        embed_manifest(manifest, out, **{**kwargs, "layers": "1"})
    forced = embed_manifest(manifest, out, **{**kwargs, "layers": "1"}, force=True)
    assert pq.read_schema(forced.path).names == ["utt_id", "layer_01", "short"]
    with pytest.raises(CmError, match="out of range"):
        embed_manifest(manifest, tmp_path / "bad_layers", backbone=str(tiny), layers="0,7")


def test_shards_write_parts_and_reader_joins_them(tmp_path, tiny):
    from cm_cli.embedding import embed_manifest, load_layer

    m = make_manifest(tmp_path / "audio", lengths=(8000, 8100, 8200, 8300, 8400), bad=False, stereo48k=True)
    out = tmp_path / "parts"
    first = embed_manifest(m, out, backbone=str(tiny), shard=Shard(0, 2), split="eval")
    assert first.path.name == "part-00000-of-00002.parquet" and (out / "cm.part-0-of-2.json").is_file()
    with pytest.raises(CmError, match="missing part-00001-of-00002"):
        load_layer(out, "layer_01")
    embed_manifest(m, out, backbone=str(tiny), shard=Shard(1, 2), split="eval")
    ids, X = load_layer(out, "layer_01")
    assert sorted(ids) == ["stereo", "u0", "u1", "u2", "u3", "u4"] and X.shape == (6, 32)


def test_interrupted_run_leaves_nothing_and_restarts(tmp_path, tiny, manifest, monkeypatch):
    from cm_cli import embedding

    calls = {"n": 0}
    original = embedding._Writer.write

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(embedding._Writer, "write", failing)
    out = tmp_path / "int"
    with pytest.raises(KeyboardInterrupt):
        embedding.embed_manifest(manifest, out, backbone=str(tiny), split="eval", batch_size=1)
    assert not (out / "embeddings.parquet").exists() and not list(out.glob(".*.tmp"))
    assert json.loads((out / "cm.json").read_text())["status"] == "failed"
    monkeypatch.setattr(embedding._Writer, "write", original)
    result = embedding.embed_manifest(manifest, out, backbone=str(tiny), split="eval", batch_size=1)
    assert not result.skipped and result.n_rows == 4


def test_nonfinite_under_autocast_falls_back_to_fp32(tmp_path, tiny, manifest):
    import torch

    from cm_cli.embedding import embed_manifest, load_layer, resolve_embed_model

    model = resolve_embed_model(str(tiny))
    plain = model.model.embed

    def overflowing(wave, lengths=None, **kw):
        out = plain(wave, lengths, **kw)
        if torch.is_autocast_enabled("cpu"):
            out["layer_01"][0] = float("inf")
        return out

    model.model.embed = overflowing
    result = embed_manifest(
        manifest, tmp_path / "amp", backbone=str(tiny), split="eval", amp="bf16", batch_size=4, model=model
    )
    assert result.n_rows == 4 and result.summary["n_fp32_fallback"] == 1 and result.summary["amp"] == "bfloat16"
    assert any("recomputed in fp32" in n for n in result.summary["notes"])
    _, X = load_layer(tmp_path / "amp", "layer_01")
    assert np.isfinite(X).all()


def test_trained_run_exports_pooled_and_pre_logit(tmp_path, tiny, manifest):
    import pyarrow.parquet as pq

    from cm_cli.embedding import embed_manifest, load_layer
    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    model = build_model(ModelConfig(backbone=str(tiny), pooling="meanstd", head_dims=(16,)))
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", model)
    result = embed_manifest(manifest, tmp_path / "emb", checkpoint=run, split="eval")
    assert pq.read_schema(result.path).names == [
        "utt_id",
        "layer_00",
        "layer_01",
        "layer_02",
        "pooled",
        "pre_logit",
        "short",
    ]
    assert result.summary["dims"]["pooled"] == 64 and result.summary["dims"]["pre_logit"] == 16
    assert result.summary["checkpoint"].endswith("best.pt")
    assert load_layer(result.path, "pre_logit")[1].shape == (4, 16)
    with pytest.raises(CmError, match="holds a"):
        embed_manifest(manifest, tmp_path / "wrong", checkpoint=run, backbone="aasist")
    assert not (tmp_path / "wrong").exists()


def test_bad_models_are_clear_errors_and_write_nothing(tmp_path, tiny, manifest):
    from cm_cli.embedding import embed_manifest

    out = tmp_path / "never"
    with pytest.raises(CmError) as info:
        embed_manifest(manifest, out, backbone="wavlmx")
    assert "unknown backbone" in info.value.message and "wavlm" in info.value.hint and "aasist" in info.value.hint
    with pytest.raises(CmError, match="not found"):
        embed_manifest(manifest, out, backbone="aasist", checkpoint=tmp_path / "missing.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02garbage" * 20)
    with pytest.raises(CmError, match="cannot read"):
        embed_manifest(manifest, out, backbone="aasist", checkpoint=corrupt)
    with pytest.raises(CmError, match="no pretrained weights"):
        embed_manifest(manifest, out, backbone="aasist")
    import torch

    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(CmError, match="not an AASIST checkpoint"):
        embed_manifest(manifest, out, backbone="aasist", checkpoint=other)
    with pytest.raises(CmError, match="only read for the aasist backbone"):
        embed_manifest(manifest, out, backbone=str(tiny), checkpoint=other)
    assert not out.exists()


def test_aasist_official_checkpoint_embeds_its_readout(tmp_path, fixtures_dir):
    import torch

    from cm_cli.embedding import embed_manifest, load_layer
    from cm_cli.models.model import ModelConfig, build_model

    weights = fixtures_dir / "aasist" / "asvspoof5_aasist_baseline.pth"
    m = make_manifest(tmp_path / "audio", lengths=(24000, 32000, 40000), bad=False)
    result = embed_manifest(m, tmp_path / "aasist", backbone="aasist", checkpoint=weights, split="eval", fp32=True)
    assert result.n_rows == 3 and result.summary["family"] == "aasist"
    assert (
        result.summary["dims"]["layer_09"] == 160 and len(result.summary["dims"]) == 12
    )  # 10 blocks + pooled + pre_logit
    ids, pooled = load_layer(tmp_path / "aasist", "pooled")
    model = build_model(ModelConfig(backbone="aasist", backbone_id=str(weights))).eval()
    import soundfile as sf

    for utt, row in zip(ids, pooled):
        wave = torch.from_numpy(sf.read(tmp_path / "audio" / f"{utt}.flac", dtype="float32")[0])
        batch, lengths = model.prepare_batch([wave])
        with torch.inference_mode():
            expected = model(batch, lengths).pooled[0].numpy()
        np.testing.assert_allclose(row, expected, rtol=1e-4, atol=1e-5)


def test_several_batches_make_one_row_group(tmp_path, tiny):
    import pyarrow.parquet as pq

    from cm_cli.embedding import embed_manifest, load_layer
    from cm_cli.embedding.store import EmbeddingWriter

    m = make_manifest(tmp_path / "audio", lengths=(8000, 8100, 8200, 8300, 8400, 8500, 8600), bad=False)
    result = embed_manifest(m, tmp_path / "rg", backbone=str(tiny), split="eval", batch_size=2)  # four batches
    meta = pq.ParquetFile(result.path).metadata
    assert meta.num_rows == 7 and meta.num_row_groups == 1
    ids, X = load_layer(result.path, "layer_01")
    assert len(set(ids)) == 7 and X.shape == (7, 32)
    # the buffer is flushed when full: a tiny budget gives one row group per flush, rows all kept
    import numpy as np

    writer = EmbeddingWriter(tmp_path / "small.parquet", value_type="float32", row_group_bytes=1)
    for k in range(3):
        writer.write([f"r{k}a", f"r{k}b"], {"layer_00": np.full((2, 4), k, dtype=np.float32)}, {})
    writer.commit()
    assert pq.ParquetFile(tmp_path / "small.parquet").metadata.num_row_groups == 3
    assert load_layer(tmp_path / "small.parquet", 0)[1][:, 0].tolist() == [0, 0, 1, 1, 2, 2]
