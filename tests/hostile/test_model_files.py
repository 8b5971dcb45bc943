"""Model files a user gives: one model cache for download and loaders, pickle-bearing weights (issue 29)."""

from __future__ import annotations

import os

import pytest

from cm_cli.core.errors import CmError
from cm_cli.models.ssl import load_ssl_model, save_tiny_ssl
from tests.models.test_hub import _fake_cache


def test_a_model_cm_download_fetched_is_found_by_every_loader(tmp_path, monkeypatch, run_cm):
    from cm_cli.models import hub

    cm_cache, hf_home = tmp_path / "cm_cache", tmp_path / "hf_home"
    hf_home.mkdir()
    snapshot = _fake_cache(cm_cache, "microsoft/wavlm-base-plus")  # where `cm download --model` stores it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setenv("CM_CACHE_DIR", str(cm_cache))
    monkeypatch.chdir(tmp_path)
    import json

    payload = json.loads(run_cm("--json", "download", "--model", "wavlm").stdout)
    assert payload["path"] == str(snapshot)  # the download is a cache hit in cm's cache
    assert hub.cached_model_path("wavlm") == snapshot  # no cache_dir: HF cache, then cm's
    model = load_ssl_model("wavlm")  # what cm embed / train build through (backbone_options without cache_dir)
    assert type(model).__name__ == "WavLMModel"
    monkeypatch.setenv("CM_CACHE_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(CmError, match="not in the model cache") as info:
        load_ssl_model("wavlm")
    assert "cm download --model wavlm" in info.value.hint


def test_pickle_bearing_pytorch_model_bin_is_refused_without_suggesting_weights_only_false(tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = save_tiny_ssl("wavlm", tmp_path / "evil")
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    weights["payload"] = os.system  # pickled by reference: a GLOBAL that weights_only loading blocks
    torch.save(weights, folder / "pytorch_model.bin")
    with pytest.raises(CmError, match="pickled Python objects") as info:
        load_ssl_model(str(folder))
    text = f"{info.value.message} {info.value.hint}"
    assert "weights_only" not in text and "arbitrary code" in info.value.hint
