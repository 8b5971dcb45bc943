"""Backbone bundles: every registry entry builds, names its layers, freezes, and exposes patch sites (its layers)."""

from __future__ import annotations

import pytest
import torch

from cm_cli.core.errors import CmError
from cm_cli.models.model import CountermeasureModel, ModelConfig, build_model
from cm_cli.models.registry import BACKBONES, SSL_MODELS, LayerStates, get_backbone
from cm_cli.models.ssl import save_tiny_ssl

N_SSL_LAYERS = 3


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    return {
        kind: save_tiny_ssl(kind, root / kind, num_hidden_layers=N_SSL_LAYERS)
        for kind in ("wavlm", "w2v2", "xlsr", "hubert")
    }


def _config(name: str, tiny_dirs) -> ModelConfig:
    """A small model for each registry entry (SSL entries point at a tiny random model of their family)."""
    if name in SSL_MODELS:
        return ModelConfig(backbone=name, backbone_id=str(tiny_dirs[name]))
    if name == "ssl_aasist":
        return ModelConfig(backbone=name, backbone_id=str(tiny_dirs["xlsr"]))
    return ModelConfig(backbone=name)


def test_registry_covers_every_backbone_and_ssl_family():
    assert set(BACKBONES) == {"aasist", "lcnn", "ssl_aasist", "wavlm", "w2v2", "xlsr", "hubert"}
    assert set(SSL_MODELS) == {"wavlm", "w2v2", "xlsr", "hubert"}
    generic = get_backbone("org/model")
    assert generic.default_id == "org/model" and generic.cm_head and generic.default_trainable == "frozen"
    with pytest.raises(CmError):
        get_backbone("resnet")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_bundle_builds_and_its_layers_match_the_forward(name, tiny_dirs):
    bundle = get_backbone(name)
    model = build_model(_config(name, tiny_dirs)).eval()
    assert isinstance(model, CountermeasureModel) and model.bundle is bundle
    assert model.config.trainable == bundle.default_trainable
    wave = torch.randn(2, 8000)
    lengths = torch.tensor([8000, 6000])
    with torch.no_grad():
        states = bundle.forward_layers(model, wave, lengths)
        out = model(wave, lengths)
    assert isinstance(states, LayerStates)
    names = bundle.layer_names(model)
    assert names == model.layer_names == [f"layer_{i:02d}" for i in range(len(out.hidden_states))]
    assert len(states.hidden_states) == len(names)
    assert (states.logits is None) == bundle.cm_head
    for a, b in zip(states.hidden_states, out.hidden_states):
        torch.testing.assert_close(a, b)
    assert bundle.receptive_field(model) == model.receptive_field == model.backbone.receptive_field > 0


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_patch_sites_are_the_layers(name, tiny_dirs):
    """Replacing a site's output changes that layer's state and leaves every earlier layer as it was."""
    bundle = get_backbone(name)
    model = build_model(_config(name, tiny_dirs)).eval()
    sites = bundle.patch_sites(model)
    names = bundle.layer_names(model)
    assert list(sites)[: len(names)] == names
    assert ("pooled" in sites) == bundle.cm_head
    wave, lengths = torch.randn(2, 8000), torch.tensor([8000, 8000])
    with torch.no_grad():
        clean = model(wave, lengths)
    for i, site in enumerate(names):

        def bump(module, inputs, output):
            return (output[0] + 1.0, *output[1:]) if isinstance(output, tuple) else output + 1.0

        handle = sites[site].register_forward_hook(bump)
        try:
            with torch.no_grad():
                patched = model(wave, lengths)
        finally:
            handle.remove()
        for j in range(i):
            torch.testing.assert_close(patched.hidden_states[j], clean.hidden_states[j])
        assert not torch.allclose(patched.hidden_states[i], clean.hidden_states[i]), site
    if bundle.cm_head:
        handle = sites["pooled"].register_forward_hook(lambda m, i, o: o * 0)
        with torch.no_grad():
            assert model(wave, lengths).pooled.abs().max() == 0
        handle.remove()


@pytest.mark.parametrize("kind", ["wavlm", "w2v2", "xlsr", "hubert"])
def test_ssl_patch_sites_output_exactly_the_hidden_states(kind, tiny_dirs):
    bundle = get_backbone(kind)
    model = build_model(_config(kind, tiny_dirs)).eval()
    seen = {}
    handles = [
        m.register_forward_hook(lambda mod, i, o, _n=n: seen.__setitem__(_n, o[0] if isinstance(o, tuple) else o))
        for n, m in bundle.patch_sites(model).items()
        if n.startswith("layer_")
    ]
    with torch.no_grad():
        out = model(torch.randn(2, 6000), torch.tensor([6000, 4000]))
    for handle in handles:
        handle.remove()
    for i, state in enumerate(out.hidden_states):
        assert torch.equal(seen[f"layer_{i:02d}"], state)


def test_ssl_hidden_states_equal_transformers_own(tiny_dirs):
    """Reading the layers through hooks gives exactly what ``output_hidden_states`` gives."""
    for kind, directory in tiny_dirs.items():
        model = build_model(ModelConfig(backbone=str(directory))).eval()
        wave, lengths = torch.randn(2, 5000), torch.tensor([5000, 3000])
        mask = (torch.arange(5000).unsqueeze(0) < lengths.unsqueeze(1)).long()
        with torch.no_grad():
            ours = model(wave, lengths).hidden_states
            theirs = model.backbone.model(wave, attention_mask=mask, output_hidden_states=True).hidden_states
        assert len(ours) == len(theirs) == N_SSL_LAYERS + 1
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b), kind


def test_ssl_receptive_field_is_the_fewest_samples_for_one_frame(tiny_dirs):
    model = build_model(ModelConfig(backbone=str(tiny_dirs["w2v2"])))
    rf = get_backbone("w2v2").receptive_field(model)
    frames = model.backbone.frame_lengths(torch.tensor([rf - 1, rf]))
    assert frames.tolist() == [0, 1]


@pytest.mark.parametrize("name", ["aasist", "lcnn"])
def test_own_head_backbones_freeze_all_but_their_output_layer(name):
    bundle = get_backbone(name)
    model = build_model(ModelConfig(backbone=name, trainable="frozen"))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "backbone.out_layer.weight",
        "backbone.out_layer.bias",
    ]
    bundle.set_trainable(model, "all")
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(CmError, match="not supported"):
        bundle.set_trainable(model, "top:2")


def test_ssl_aasist_trainable_specs(tiny_dirs):
    bundle = get_backbone("ssl_aasist")
    model = build_model(ModelConfig(backbone="ssl_aasist", backbone_id=str(tiny_dirs["xlsr"]), trainable="frozen"))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "backbone.backend.out_layer.weight",
        "backbone.backend.out_layer.bias",
    ]
    bundle.set_trainable(model, "top:1")
    assert all(p.requires_grad for p in model.backbone.backend.parameters())
    trainable_ssl = {
        n.split(".")[0] for n, p in model.backbone.ssl.model.encoder.layers.named_parameters() if p.requires_grad
    }
    assert trainable_ssl == {str(N_SSL_LAYERS - 1)}


def test_same_architecture_and_weight_sources(tmp_path):
    wavlm = get_backbone("wavlm")
    assert wavlm.same_architecture(get_backbone("microsoft/wavlm-base-plus"))
    assert not wavlm.same_architecture(get_backbone("w2v2"))
    assert not wavlm.same_architecture(get_backbone("ssl_aasist"))
    assert get_backbone("aasist").same_architecture(get_backbone("aasist"))
    (tmp_path / "m").mkdir()
    assert get_backbone(str(tmp_path / "m")).same_architecture(get_backbone(str(tmp_path / "x" / ".." / "m")))
    assert {n: b.weights for n, b in BACKBONES.items()} == {
        "aasist": "file",
        "lcnn": "run",
        "ssl_aasist": "run",
        "wavlm": "hub",
        "w2v2": "hub",
        "xlsr": "hub",
        "hubert": "hub",
    }
    assert {n for n, b in BACKBONES.items() if b.frame_layers} == {"ssl_aasist", "wavlm", "w2v2", "xlsr", "hubert"}


def test_no_family_if_chains_in_the_models_package():
    """Backbone-specific behaviour lives in bundles: nothing in models/ outside the registry tests a family string."""
    import re
    from pathlib import Path

    import cm_cli.models

    chain = re.compile(r"family\s*(==|!=|\bin\b|\bnot in\b)")
    offenders = [
        f"{path.name}:{i}"
        for path in Path(cm_cli.models.__file__).parent.glob("*.py")
        if path.name != "registry.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if chain.search(line)
    ]
    assert offenders == []
