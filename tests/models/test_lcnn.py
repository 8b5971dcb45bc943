"""LFCC-LCNN: shapes, gradients and layer names on CPU."""

from __future__ import annotations

import torch

from cm_cli.models.model import ModelConfig, build_model


def test_lcnn_forward_backward_shapes():
    model = build_model(ModelConfig(backbone="lcnn")).train()
    wave = torch.randn(3, 16000)
    out = model(wave, torch.tensor([16000, 9000, 4000]))
    assert out.logits.shape == (3, 2) and out.score.shape == (3,)
    assert out.pre_logit.shape == (3, 64)
    assert [h.shape[1] for h in out.hidden_states] == [16, 24, 32, 32, 64]
    out.logits.logsumexp(-1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    emb = model.eval().embed(wave)
    assert list(emb) == [f"layer_{i:02d}" for i in range(5)] + ["pooled", "pre_logit"]


def test_lcnn_frozen_trains_only_output_layer():
    model = build_model(ModelConfig(backbone="lcnn", trainable="frozen"))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names == ["backbone.out_layer.weight", "backbone.out_layer.bias"]
