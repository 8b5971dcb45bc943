"""Fine-tuning SSL backbones (issue 18): layerdrop, freezing off the autograd tape, checkpointing, masked group norm."""

from __future__ import annotations

import pytest
import torch

from cm_cli.core.errors import CmError
from cm_cli.models.model import ModelConfig, build_model
from cm_cli.models.ssl import MaskedGroupNorm, load_ssl_model, masked_group_norm, save_tiny_ssl

FAMILIES = ("wavlm", "w2v2", "xlsr", "hubert")
N_LAYERS = 4


@pytest.fixture(scope="module")
def layerdrop_dirs(tmp_path_factory):
    """Tiny random models of every family whose saved config has layerdrop 0.5."""
    root = tmp_path_factory.mktemp("ld")
    return {kind: save_tiny_ssl(kind, root / kind, num_hidden_layers=N_LAYERS, layerdrop=0.5) for kind in FAMILIES}


def _batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    wave = torch.randn(4, 4000, generator=gen)
    lengths = torch.tensor([4000, 3100, 2500, 4000])
    wave[1, 3100:] = 0
    wave[2, 2500:] = 0
    return wave, lengths, torch.tensor([0, 1, 0, 1])


def _train_steps(model, n_steps: int = 3):
    """A few optimiser steps in train mode; returns the hidden-state counts seen."""
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    counts = []
    for step in range(n_steps):
        wave, lengths, labels = _batch(step)
        out = model(wave, lengths)
        loss = torch.nn.functional.cross_entropy(out.logits, labels)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        counts.append(len(out.hidden_states))
    return counts


def test_layerdrop_is_off_on_load_unless_asked(layerdrop_dirs):
    directory = layerdrop_dirs["wavlm"]
    assert load_ssl_model(str(directory)).config.layerdrop == 0.0
    assert load_ssl_model(str(directory), layerdrop=0.2).config.layerdrop == 0.2
    with pytest.raises(CmError, match="layerdrop"):
        load_ssl_model(str(directory), layerdrop=1.5)


@pytest.mark.parametrize("spec", ["top:2", "transformer", "all"])
@pytest.mark.parametrize("kind", FAMILIES)
def test_fine_tuning_every_family_from_a_layerdrop_checkpoint(layerdrop_dirs, kind, spec):
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone=str(layerdrop_dirs[kind]), trainable=spec, dropout=0.0))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    counts = _train_steps(model)
    assert counts == [N_LAYERS + 1] * 3
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        if not p.requires_grad:
            assert not changed, f"frozen {name} changed"
    top = model.backbone.model.encoder.layers[-1]
    assert all(
        not torch.equal(before[f"backbone.model.encoder.layers.{N_LAYERS - 1}.{n}"], p.detach())
        for n, p in top.named_parameters()
        if p.dim() > 1
    )


@pytest.mark.parametrize("kind", FAMILIES)
def test_configured_layerdrop_keeps_every_layer_slot(layerdrop_dirs, kind):
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(backbone=str(layerdrop_dirs[kind]), trainable="all", backbone_options={"layerdrop": 0.5})
    )
    assert model.backbone.model.config.layerdrop == 0.5
    model.train()
    skipped = 0
    for step in range(8):
        wave, lengths, labels = _batch(step)
        out = model(wave, lengths)
        assert len(out.hidden_states) == N_LAYERS + 1
        skipped += sum(out.hidden_states[i] is out.hidden_states[i - 1] for i in range(1, N_LAYERS + 1))
        torch.nn.functional.cross_entropy(out.logits, labels).backward()
    assert skipped > 0  # layers were dropped, and their slots kept
    model.eval()
    with torch.no_grad():
        out = model(*_batch(0)[:2])
    assert not any(out.hidden_states[i] is out.hidden_states[i - 1] for i in range(1, N_LAYERS + 1))


def _trainable_roots(hf, spec: str) -> list[str]:
    k = int(spec[4:])
    roots = [f"encoder.layers.{i}" for i in range(N_LAYERS - k, N_LAYERS)]
    if getattr(hf.config, "do_stable_layer_norm", False):
        roots.append("encoder.layer_norm")
    return roots


def _tensors(value):
    if torch.is_tensor(value):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if hasattr(value, "values"):
        return [t for v in value.values() for t in _tensors(v)]
    return []


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("kind", FAMILIES)
def test_top_k_records_no_autograd_for_frozen_modules(layerdrop_dirs, kind, checkpointing):
    """With top:K only the top K layers are on the tape: no frozen module's output requires grad."""
    spec = "top:2"
    model = build_model(
        ModelConfig(backbone=str(layerdrop_dirs[kind]), trainable=spec, gradient_checkpointing=checkpointing)
    )
    hf = model.backbone.model
    roots = _trainable_roots(hf, spec)
    recorded: list[str] = []
    handles = []
    for name, module in hf.named_modules():
        if not name or any(name == r or name.startswith(r + ".") or r.startswith(name + ".") for r in roots):
            continue  # a trainable layer, inside one, or a container of one
        assert not any(p.requires_grad for p in module.parameters(recurse=False)), name

        def check(mod, args, output, _name=name):
            if any(t.requires_grad for t in _tensors(output)):
                recorded.append(_name)

        handles.append(module.register_forward_hook(check))
    first = hf.encoder.layers[N_LAYERS - 2]
    inputs_need_grad = []
    handles.append(first.register_forward_pre_hook(lambda m, args: inputs_need_grad.append(args[0].requires_grad)))
    model.train()
    wave, lengths, labels = _batch()
    out = model(wave, lengths)
    torch.nn.functional.cross_entropy(out.logits, labels).backward()
    for handle in handles:
        handle.remove()
    assert recorded == [], f"frozen modules recorded by autograd: {recorded[:5]}"
    assert inputs_need_grad == [False]
    assert all(p.grad is not None for p in hf.encoder.layers[-1].parameters())
    assert all(p.grad is None for p in hf.feature_extractor.parameters())


def test_transformer_spec_keeps_the_waveform_off_the_tape(layerdrop_dirs):
    model = build_model(ModelConfig(backbone=str(layerdrop_dirs["w2v2"]), trainable="transformer")).train()
    conv = model.backbone.model.feature_extractor
    seen = []
    handle = conv.register_forward_hook(lambda m, a, o: seen.append(o.requires_grad))
    wave, lengths, labels = _batch()
    torch.nn.functional.cross_entropy(model(wave, lengths).logits, labels).backward()
    handle.remove()
    assert seen == [False]
    assert model.backbone.model.feature_projection.projection.weight.grad is not None


def _checkpointed(hf) -> bool:
    return any(getattr(m, "gradient_checkpointing", False) for m in hf.modules())


def test_gradient_checkpointing_is_an_option_off_by_default(layerdrop_dirs):
    directory = str(layerdrop_dirs["wavlm"])
    assert ModelConfig(backbone=directory).gradient_checkpointing is False
    assert not _checkpointed(build_model(ModelConfig(backbone=directory, trainable="top:1")).backbone.model)
    assert not _checkpointed(
        build_model(ModelConfig(backbone=directory, trainable="frozen", gradient_checkpointing=True)).backbone.model
    )
    model = build_model(ModelConfig(backbone=directory, trainable="top:1", gradient_checkpointing=True, dropout=0.0))
    assert _checkpointed(model.backbone.model)
    assert _train_steps(model, 2) == [N_LAYERS + 1] * 2
    assert all(p.grad is not None for p in model.backbone.model.encoder.layers[-1].parameters())


def _old_masked_group_norm(norm, x, lengths):
    """The implementation before issue 18, kept as the reference."""
    mask = (torch.arange(x.shape[-1]).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1)
    m = mask.to(x.dtype)
    count = m.sum(dim=-1, keepdim=True).clamp_min(1.0)
    mean = (x * m).sum(dim=-1, keepdim=True) / count
    var = ((x - mean).pow(2) * m).sum(dim=-1, keepdim=True) / count
    y = (x - mean) / torch.sqrt(var + norm.eps)
    y = y * norm.weight.view(1, -1, 1) + norm.bias.view(1, -1, 1)
    return y * m


def test_masked_group_norm_matches_the_old_implementation():
    torch.manual_seed(0)
    norm = MaskedGroupNorm(16, 16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, 16, 50) * 3 + 1
    padded = torch.tensor([50, 31, 7])
    norm.frame_lengths = padded
    out = norm(x)
    torch.testing.assert_close(out, _old_masked_group_norm(norm, x, padded), atol=1e-5, rtol=1e-5)
    assert out[1, :, 31:].abs().max() == 0 and out[2, :, 7:].abs().max() == 0
    # the first rows' real frames: the same as normalising the utterance alone
    norm.frame_lengths = None
    torch.testing.assert_close(out[2:3, :, :7], norm(x[2:3, :, :7]), atol=1e-5, rtol=1e-5)
    full = torch.full((3,), 50)
    native = norm(x)
    torch.testing.assert_close(native, _old_masked_group_norm(norm, x, full), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        masked_group_norm(x, full, norm.weight, norm.bias, norm.eps), native, atol=1e-5, rtol=1e-5
    )
    half = masked_group_norm(x.bfloat16(), padded, norm.weight, norm.bias, norm.eps)  # statistics in float32
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), out, atol=3e-2, rtol=2e-2)


def test_unpadded_batches_take_the_native_group_norm(layerdrop_dirs):
    model = build_model(ModelConfig(backbone=str(layerdrop_dirs["w2v2"]))).eval()
    norm = model.backbone.model.feature_extractor.conv_layers[0].layer_norm
    assert isinstance(norm, MaskedGroupNorm)
    with torch.no_grad():
        model(torch.randn(2, 3000), torch.tensor([3000, 3000]))
        assert norm.frame_lengths is None
        model(torch.randn(2, 3000), torch.tensor([3000, 2000]))
        assert norm.frame_lengths.tolist() == [599, 399]
