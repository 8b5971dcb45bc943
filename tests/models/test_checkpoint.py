"""cm-checkpoint/1: round trip, trainable-only weights, wrong architecture and corrupt files."""

from __future__ import annotations

import pytest
import torch

from cm_cli.core.errors import CmError
from cm_cli.models.checkpoint import CHECKPOINT_FORMAT, load_weights, read_checkpoint, save_checkpoint
from cm_cli.models.loading import load_model
from cm_cli.models.model import ModelConfig, build_model
from cm_cli.models.ssl import save_tiny_ssl


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="lcnn")).eval()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 8000)).logits.sum().backward()
    optimizer.step()
    path = save_checkpoint(
        tmp_path / "run" / "checkpoints" / "last.pt",
        model,
        optimizer=optimizer,
        step=7,
        epoch=2,
        metrics={"dev_eer": 0.1},
    )
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["step"] == 7 and raw["epoch"] == 2
    assert raw["model_config"]["backbone"] == "lcnn" and raw["optimizer"]["state"]
    again = load_model(tmp_path / "run").model  # run directory -> checkpoints/last.pt
    wave = torch.randn(2, 8000)
    with torch.no_grad():
        torch.testing.assert_close(again(wave).logits, model(wave).logits)


def test_frozen_ssl_weights_are_not_saved(tmp_path):
    save_tiny_ssl("w2v2", tmp_path / "tiny")
    model = build_model(ModelConfig(backbone=str(tmp_path / "tiny"))).eval()
    path = save_checkpoint(tmp_path / "c.pt", model)
    state = read_checkpoint(path)["state_dict"]
    assert state and not any(k.startswith("backbone.model.") for k in state)
    full = read_checkpoint(save_checkpoint(tmp_path / "f.pt", model, save_frozen=True))["state_dict"]
    assert any(k.startswith("backbone.model.") for k in full)
    reloaded = load_model(path).model
    wave = torch.randn(1, 3000)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(wave).logits, model(wave).logits)


def test_other_architecture_is_a_clear_error(tmp_path):
    lcnn = build_model(ModelConfig(backbone="lcnn"))
    path = save_checkpoint(tmp_path / "lcnn.pt", lcnn)
    aasist = build_model(ModelConfig(backbone="aasist"))
    with pytest.raises(CmError, match="holds a 'lcnn' model"):
        load_weights(aasist, read_checkpoint(path))
    narrow = build_model(ModelConfig(backbone="lcnn", backbone_options={"channels": [8, 8, 8, 8]}))
    with pytest.raises(CmError, match="does not fit"):
        load_weights(narrow, read_checkpoint(path))


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(CmError, match="not found"):
        read_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CmError, match="cannot read"):
        read_checkpoint(tmp_path / "bad.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "raw.pt")
    with pytest.raises(CmError, match="not a cm-checkpoint/1"):
        read_checkpoint(tmp_path / "raw.pt")


def test_checkpoints_and_embeddings_follow_the_umask(tmp_path):
    """Colleagues on a shared project space can read what cm writes (mkstemp alone gives 0600)."""
    import os
    import stat

    import numpy as np

    from cm_cli.embedding.store import EmbeddingWriter
    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    old = os.umask(0o022)
    try:
        ckpt = save_checkpoint(tmp_path / "best.pt", build_model(ModelConfig(backbone="lcnn")))
        writer = EmbeddingWriter(tmp_path / "embeddings.parquet", value_type="float16")
        writer.write(["a", "b"], {"layer_00": np.zeros((2, 4), np.float32)}, {"backbone": "lcnn"})
        writer.commit()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ckpt).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "embeddings.parquet").st_mode) == 0o644
