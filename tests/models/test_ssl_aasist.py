"""SSL-AASIST: fairseq wav2vec 2.0 names map onto transformers' Wav2Vec2Model."""

from __future__ import annotations

import re

import pytest
import torch

from cm_cli.core.errors import CmError
from cm_cli.models.ssl import SSLBackbone, load_ssl_model, save_tiny_ssl
from cm_cli.models.ssl_aasist import build_ssl_aasist, fairseq_to_hf_key, load_ssl_aasist_checkpoint


def _to_fairseq(name: str) -> str:
    """transformers -> fairseq names, written out independently of the module under test."""
    table = [
        (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
        (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.", r"feature_extractor.conv_layers.\1.2.1."),
        (r"^feature_projection\.layer_norm\.", "layer_norm."),
        (r"^feature_projection\.projection\.", "post_extract_proj."),
        (r"^masked_spec_embed$", "mask_emb"),
        (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv.0.weight_g"),
        (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv.0.weight_v"),
        (r"encoder\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
        (r"\.attention\.", ".self_attn."),
        (r"(layers\.\d+)\.layer_norm\.", r"\1.self_attn_layer_norm."),
        (r"feed_forward\.intermediate_dense", "fc1"),
        (r"feed_forward\.output_dense", "fc2"),
    ]
    for pattern, repl in table:
        name = re.sub(pattern, repl, name)
    return name


def test_fairseq_checkpoint_loads_into_transformers_model(tmp_path):
    save_tiny_ssl("xlsr", tmp_path / "src", seed=1)
    save_tiny_ssl("xlsr", tmp_path / "dst", seed=2)
    source = build_ssl_aasist(SSLBackbone(load_ssl_model(str(tmp_path / "src")))).eval()
    target = build_ssl_aasist(SSLBackbone(load_ssl_model(str(tmp_path / "dst")))).eval()
    published = {"ssl_model.model." + _to_fairseq(k): v for k, v in source.ssl.model.state_dict().items()}
    published.update(source.backend.state_dict())
    published["ssl_model.model.quantizer.vars"] = torch.zeros(1, 4, 8)
    published["ssl_model.model.project_q.weight"] = torch.zeros(8, 8)
    assert "ssl_model.model.encoder.layers.0.self_attn.k_proj.weight" in published
    assert "ssl_model.model.feature_extractor.conv_layers.0.0.weight" in published
    assert "ssl_model.model.feature_extractor.conv_layers.0.0.bias" in published
    report = load_ssl_aasist_checkpoint(target, {"module." + k: v for k, v in published.items()})
    assert set(report.dropped) == {"ssl_model.model.quantizer.vars", "ssl_model.model.project_q.weight"}
    wave = torch.randn(2, 16000)
    with torch.no_grad():
        torch.testing.assert_close(target(wave), source(wave))


def test_group_norm_extractor_and_unknown_keys():
    assert (
        fairseq_to_hf_key("feature_extractor.conv_layers.0.2.weight")
        == "feature_extractor.conv_layers.0.layer_norm.weight"
    )
    assert (
        fairseq_to_hf_key("encoder.pos_conv.0.weight_g")
        == "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
    )
    with pytest.raises(CmError):
        fairseq_to_hf_key("decoder.embed_tokens.weight")
    with pytest.raises(CmError, match="not an SSL_Anti-spoofing"):
        load_ssl_aasist_checkpoint(None, {"LL.weight": torch.zeros(1)})
