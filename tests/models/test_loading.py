"""models.loading.load_model: every kind of weights cm reads, with its provenance, and one error for bad files."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from cm_cli.core.errors import CmError
from cm_cli.models.checkpoint import save_checkpoint
from cm_cli.models.loading import load_model
from cm_cli.models.model import ModelConfig, build_model


def _logits(model, wave):
    with torch.no_grad():
        return model(wave).logits


def test_run_directory_and_checkpoint_file(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="lcnn")).eval()
    run = tmp_path / "run"
    metrics = {"dev_eer": 0.1, "dev_eer_threshold": 0.25, "calibration": {"a": 2.0, "b": -1.0}}
    path = save_checkpoint(run / "checkpoints" / "best.pt", model, metrics=metrics)
    (run / "config.json").write_text(json.dumps({"train": {"seed": 7, "backbone": "lcnn"}, "seen_domains": ["clean"]}))
    loaded = load_model(run)
    assert loaded.kind == "run" and loaded.run_dir == run and loaded.source == run and loaded.checkpoint == path
    assert loaded.checkpoint_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.train_config["seen_domains"] == ["clean"] and loaded.init_seed == 7
    assert loaded.dev_threshold == 0.25 and loaded.calibration == {"a": 2.0, "b": -1.0}
    assert loaded.sample_rate == 16000 and loaded.policy == loaded.config.length and loaded.config.backbone == "lcnn"
    assert not loaded.model.training
    wave = torch.randn(2, 8000)
    torch.testing.assert_close(_logits(loaded.model, wave), _logits(model, wave))
    single = load_model(path)
    assert single.kind == "checkpoint" and single.run_dir is None and single.train_config is None
    assert single.init_seed is None and single.dev_threshold == 0.25


def test_official_aasist_weights(fixtures_dir):
    weights = fixtures_dir / "aasist" / "asvspoof5_aasist_baseline.pth"
    loaded = load_model(weights)
    assert loaded.kind == "aasist_official" and loaded.config.backbone_id == str(weights)
    assert loaded.policy.policy == "repeat" and loaded.policy.target == 64600
    reference = build_model(ModelConfig(backbone="aasist", backbone_id=str(weights))).eval()
    wave = torch.randn(1, 64600)
    torch.testing.assert_close(_logits(loaded.model, wave), _logits(reference, wave))


def test_ssl_aasist_checkpoint(tmp_path):
    from cm_cli.models.ssl import save_tiny_ssl
    from tests.models.test_ssl_aasist import _to_fairseq

    save_tiny_ssl("xlsr", tmp_path / "src", seed=1)
    save_tiny_ssl("xlsr", tmp_path / "dst", seed=2)
    source = build_model(ModelConfig(backbone="ssl_aasist", backbone_id=str(tmp_path / "src"))).eval()
    published = {
        "module.ssl_model.model." + _to_fairseq(k): v for k, v in source.backbone.ssl.model.state_dict().items()
    }
    published.update({"module." + k: v for k, v in source.backbone.backend.state_dict().items()})
    torch.save(published, tmp_path / "LA_model.pth")
    loaded = load_model(tmp_path / "LA_model.pth", overrides={"backbone_id": str(tmp_path / "dst")})
    assert loaded.kind == "ssl_aasist" and loaded.config.backbone == "ssl_aasist"
    wave = torch.randn(2, 16000)
    torch.testing.assert_close(_logits(loaded.model, wave), _logits(source, wave))


def test_bad_sources_are_one_line_errors(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"\x80\x02garbage" * 10)
    with pytest.raises(CmError, match="cannot read checkpoint") as info:
        load_model(tmp_path / "bad.pt")
    assert "\n" not in info.value.message
    with pytest.raises(CmError, match="not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(CmError, match="holds no checkpoints"):
        load_model(tmp_path / "empty_run")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CmError, match="holds a list"):
        load_model(tmp_path / "list.pt")
    torch.save({"format": "cm-checkpoint/0", "model_config": {}, "state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(CmError, match="not cm-checkpoint/1"):
        load_model(tmp_path / "old.pt")
