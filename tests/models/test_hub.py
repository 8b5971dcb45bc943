"""cm download --model: cache hits need no network; offline misses are clear errors (no network in tests)."""

from __future__ import annotations

import pytest

from cm_cli.core.errors import CmError
from cm_cli.models import hub
from cm_cli.models.ssl import load_ssl_model, save_tiny_ssl


def _fake_cache(cache, repo_id):
    """The huggingface_hub cache layout: models--org--name/{refs/main, snapshots/<rev>/...}."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    save_tiny_ssl("wavlm", repo / "snapshots" / revision)
    return repo / "snapshots" / revision


def test_cache_hit_needs_no_network(tmp_path, monkeypatch):
    snapshot = _fake_cache(tmp_path, "microsoft/wavlm-base-plus")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.download_model("wavlm", cache_dir=tmp_path) == snapshot
    model = load_ssl_model("wavlm", cache_dir=tmp_path)
    assert type(model).__name__ == "WavLMModel"


def test_offline_download_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("cannot reach the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CmError, match="no network") as info:
        hub.download_model("hubert", cache_dir=tmp_path)
    assert "cm download --model hubert" in info.value.hint
