"""SSL front ends: tiny configs round-trip through the loader; padding never leaks into pooled vectors."""

from __future__ import annotations

import pytest
import torch

from cm_cli.core.errors import CmError
from cm_cli.models.model import ModelConfig, build_model
from cm_cli.models.ssl import SSLBackbone, load_ssl_model, save_tiny_ssl, set_trainable


@pytest.mark.parametrize(
    "kind,cls",
    [("wavlm", "WavLMModel"), ("w2v2", "Wav2Vec2Model"), ("hubert", "HubertModel"), ("xlsr", "Wav2Vec2Model")],
)
def test_tiny_ssl_roundtrip_gives_all_hidden_states(tmp_path, kind, cls):
    save_tiny_ssl(kind, tmp_path / kind, num_hidden_layers=3)
    model = load_ssl_model(str(tmp_path / kind))
    assert type(model).__name__ == cls
    backbone = SSLBackbone(model).eval()
    with torch.no_grad():
        states, frames = backbone(torch.randn(2, 4000), torch.tensor([4000, 2500]))
    assert len(states) == 4  # embedding output + 3 layers
    assert frames.tolist() == model._get_feat_extract_output_lengths(torch.tensor([4000, 2500])).tolist()
    assert states[0].shape == (2, int(frames[0]), 32)


@pytest.mark.parametrize("kind", ["w2v2", "wavlm", "xlsr"])
def test_padding_invariance_of_pooled_vector(tmp_path, kind):
    save_tiny_ssl(kind, tmp_path / kind)
    torch.manual_seed(1)
    model = build_model(ModelConfig(backbone=str(tmp_path / kind), pooling="meanstd")).eval()
    short, long = torch.randn(2300), torch.randn(6000)
    batch = torch.zeros(2, 6000)
    batch[0, :2300], batch[1] = short, long
    with torch.no_grad():
        together = model.embed(batch, torch.tensor([2300, 6000]))
        alone = model.embed(short.unsqueeze(0), torch.tensor([2300]))
    for name in alone:
        torch.testing.assert_close(together[name][0], alone[name][0], atol=1e-4, rtol=1e-4)


def test_group_norm_masking_matters(tmp_path):
    """Without the masked group norm the padded utterance would differ: the test above can fail."""
    save_tiny_ssl("w2v2", tmp_path / "m")
    model = load_ssl_model(str(tmp_path / "m")).eval()
    short = torch.randn(1, 2300)
    padded = torch.cat([short, torch.zeros(1, 3700)], dim=1)
    with torch.no_grad():
        a = model(short).last_hidden_state
        b = model(padded, attention_mask=(torch.arange(6000) < 2300).long().unsqueeze(0)).last_hidden_state[
            :, : a.shape[1]
        ]
    assert (a - b).abs().max() > 1e-3


def test_trainable_specs(tmp_path):
    save_tiny_ssl("w2v2", tmp_path / "m", num_hidden_layers=3)
    model = load_ssl_model(str(tmp_path / "m"))
    set_trainable(model, "top:1")
    trainable = {n.split(".")[2] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"2"}
    set_trainable(model, "transformer")
    assert not any(p.requires_grad for p in model.feature_extractor.parameters())
    assert all(p.requires_grad for p in model.encoder.parameters())
    with pytest.raises(CmError):
        set_trainable(model, "top:9")


def test_missing_model_offline_says_how_to_download(tmp_path):
    with pytest.raises(CmError) as info:
        load_ssl_model("wavlm", cache_dir=tmp_path / "empty-cache")
    assert "cm download --model wavlm" in info.value.hint
