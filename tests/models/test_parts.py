"""Pooling, layer weighting, gradient reversal, heads, length policies, registry."""

from __future__ import annotations

import math

import pytest
import torch

from cm_cli.core.errors import CmError
from cm_cli.models.grl import GradientReversal, LambdaSchedule, grad_reverse
from cm_cli.models.heads import score_from_logits
from cm_cli.models.length import LengthPolicy, apply_length_policy
from cm_cli.models.pooling import LayerWeighting, StatsPooling, frame_mask, masked_mean_std
from cm_cli.models.registry import backbone_names, get_backbone


def test_grl_flips_and_scales_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * torch.arange(3.0).expand(4, 3))
    x.grad = None
    GradientReversal()(x, coeff=2.0).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((4, 3), -2.0))


def test_lambda_schedules():
    ganin = LambdaSchedule("ganin", hi=1.0, total_steps=100)
    assert ganin(0) == 0.0
    assert ganin(100) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert ganin(1000) == ganin(100)
    assert LambdaSchedule("linear", hi=2.0, lo=0.0, total_steps=10)(5) == pytest.approx(1.0)
    assert LambdaSchedule("constant", hi=0.3)(7) == 0.3
    with pytest.raises(CmError):
        LambdaSchedule("cosine")


def test_masked_pooling_ignores_padding():
    frames = torch.randn(1, 5, 4)
    padded = torch.cat([frames, 100 * torch.ones(1, 3, 4)], dim=1)
    mask = frame_mask(torch.tensor([5]), 8)
    torch.testing.assert_close(masked_mean_std(padded, mask), masked_mean_std(frames))
    expected = torch.cat([frames.mean(1), frames.std(1, unbiased=False)], dim=-1)
    torch.testing.assert_close(masked_mean_std(frames), expected, atol=1e-5, rtol=1e-5)
    attentive = StatsPooling("attentive", 4).eval()
    torch.testing.assert_close(attentive(padded, mask), attentive(frames), atol=1e-5, rtol=1e-5)


def test_layer_weighting_is_softmax_average():
    weighting = LayerWeighting(3)
    states = torch.stack([torch.full((1, 2, 2), float(i)) for i in range(3)])
    torch.testing.assert_close(weighting(states), torch.full((1, 2, 2), 1.0))
    with torch.no_grad():
        weighting.logits.copy_(torch.tensor([0.0, 0.0, 50.0]))
    torch.testing.assert_close(weighting(list(states)), torch.full((1, 2, 2), 2.0))


def test_score_is_bonafide_minus_spoof():
    assert score_from_logits(torch.tensor([[1.0, 3.0]])).item() == 2.0


def test_length_policies():
    short, long = torch.arange(1.0, 4.0), torch.arange(10.0)
    batch, lengths = apply_length_policy([short, long], LengthPolicy("repeat", 7))
    assert batch[0].tolist() == [1, 2, 3, 1, 2, 3, 1] and lengths.tolist() == [7, 7]
    assert batch[1].tolist() == list(range(1, 8))  # centre crop
    batch, lengths = apply_length_policy([short, long], LengthPolicy("zero", 5))
    assert batch[0].tolist() == [1, 2, 3, 0, 0] and lengths.tolist() == [3, 5]
    batch, lengths = apply_length_policy([short, long], LengthPolicy("full"))
    assert batch.shape == (2, 10) and lengths.tolist() == [3, 10]
    gen = torch.Generator().manual_seed(0)
    batch, _ = apply_length_policy([long] * 20, LengthPolicy("crop", 4, "random"), generator=gen)
    assert len({int(row[0]) for row in batch}) > 1
    with pytest.raises(CmError):
        LengthPolicy("stretch", 10)


def test_unknown_backbone_lists_registry():
    with pytest.raises(CmError) as info:
        get_backbone("resnet")
    for name in ("aasist", "lcnn", "wavlm", "w2v2", "xlsr", "hubert", "ssl_aasist"):
        assert name in info.value.hint and name in backbone_names()
    assert get_backbone("org/model").family == "ssl"
