"""AASIST written for cm reproduces the official ASVspoof 5 baseline checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cm_cli.core.errors import CmError
from cm_cli.models.aasist import AASISTConfig, build_aasist
from cm_cli.models.model import ModelConfig, build_model


@pytest.fixture(scope="module")
def aasist_files(fixtures_dir):
    folder = fixtures_dir / "aasist"
    return folder / "asvspoof5_aasist_baseline.pth", folder / "inputs.npy", folder / "reference.json"


def test_aasist_state_dict_loads_strict(aasist_files):
    weights, _, reference = aasist_files
    model = build_aasist()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(p.numel() for p in model.parameters()) == json.loads(reference.read_text())["n_parameters"]


def test_aasist_reproduces_reference_logits(aasist_files):
    weights, inputs, reference = aasist_files
    ref = json.loads(reference.read_text())
    model = build_model(ModelConfig(backbone="aasist", backbone_id=str(weights))).eval()
    x = torch.from_numpy(np.load(inputs))
    with torch.no_grad():
        out = model(x)
    np.testing.assert_allclose(out.logits.numpy(), np.array(ref["logits"]), atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.score.numpy(), np.array(ref["score_bonafide_minus_spoof"]), atol=2e-4, rtol=0)
    assert out.pre_logit.shape == (6, ref["embedding_dim"])
    # the default length policy of AASIST is repeat-padding to 64,600 samples
    assert model.config.length_policy == "repeat" and model.config.target_samples == 64600


def test_aasist_extract_names_layers_in_block_order():
    model = build_aasist().eval()
    with torch.no_grad():
        layers = model.extract(torch.randn(2, 16000))
    assert list(layers) == [f"layer_{i:02d}" for i in range(10)]
    assert [v.shape[1] for v in layers.values()] == [23, 32, 32, 64, 64, 64, 64, 64, 64, 160]


def test_aasist_wrong_weights_is_a_clear_error(tmp_path):
    bad = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(CmError, match="not an AASIST checkpoint"):
        build_model(ModelConfig(backbone="aasist", backbone_id=str(bad)))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(CmError, match="cannot read"):
        build_model(ModelConfig(backbone="aasist", backbone_id=str(corrupt)))


def test_aasist_trains_one_step():
    model = build_aasist(AASISTConfig())
    model.train()
    logits = model(torch.randn(2, 16000))
    logits.sum().backward()
    assert model.out_layer.weight.grad is not None and model.encoder[0][0].conv1.weight.grad is not None
