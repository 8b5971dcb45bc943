"""The domain heads `cm train --method dann` builds have one public constructor, which the GPU benchmark uses too."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("training", [True, False])
def test_model_domain_heads_read_the_representation_width_and_keep_the_mode(training):
    from cm_cli.models.model import ModelConfig, build_model
    from cm_cli.training.dann import model_domain_heads

    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="lcnn")).train(training)
    out = model(torch.zeros(2, 16000), torch.tensor([16000, 16000]))
    width = int((out.pre_logit if out.pre_logit is not None else out.pooled).shape[-1])
    data = SimpleNamespace(domains={"domain": ["C01", "C05", "clean"], "codec.q": ["hi", "lo"]})
    heads = model_domain_heads(model, data, SimpleNamespace(domain_hidden=16), "cpu")
    assert model.training is training
    assert set(heads) == {"domain", "codec_q"}
    assert heads["domain"][0].in_features == width and heads["domain"][0].out_features == 16
    assert heads["domain"][-1].out_features == 3 and heads["codec_q"][-1].out_features == 2


def test_gpu_benchmark_imports_no_private_cm_names():
    tree = ast.parse((REPO / "benchmarks" / "bench_gpu.py").read_text())
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cm_cli")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []
