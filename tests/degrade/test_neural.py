"""EnCodec through transformers: local weights only, batched, length-aligned, deterministic, bandwidth as asked."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.degrade.registry import apply_spec, validate_spec


def _no_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("CM_ENCODEC_MODEL", raising=False)
    monkeypatch.setenv("CM_CACHE_DIR", str(tmp_path / "cm"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


def test_encodec_without_local_weights_is_a_clear_error_naming_cm_download(tmp_path, monkeypatch):
    # issue 16 changes the hint: it names cm's own command, which fills the cache cm reads
    _no_weights(tmp_path, monkeypatch)
    with pytest.raises(CmError, match="not available locally") as err:
        validate_spec("encodec:kbps=6")
    assert "cm download --model encodec" in err.value.hint


def test_encodec_bitrate_must_be_a_model_bandwidth():
    with pytest.raises(CmError, match="not one of"):
        validate_spec("encodec:kbps=5", check_available=False)


def test_encodec_is_found_in_cm_cache_as_cm_download_puts_it(tmp_path, monkeypatch, tiny_encodec_dir):
    """`cm download --model encodec` snapshots into cm's cache dir (HF layout); degrade must find it there."""
    import shutil

    from cm_cli.degrade.neural import find_encodec_weights

    _no_weights(tmp_path, monkeypatch)
    assert find_encodec_weights() is None
    snap = tmp_path / "cm" / "models--facebook--encodec_24khz" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_encodec_dir, snap)
    (tmp_path / "cm" / "models--facebook--encodec_24khz" / "refs").mkdir()
    (tmp_path / "cm" / "models--facebook--encodec_24khz" / "refs" / "main").write_text("0" * 40)
    assert find_encodec_weights() == snap


def test_download_alias_names_the_24khz_model():
    from cm_cli.models.hub import resolve_model_id

    assert resolve_model_id("encodec") == "facebook/encodec_24khz"


@pytest.mark.parametrize("kbps, codebooks", [(1.5, 2), (3, 4), (6, 8), (12, 16), (24, 32)])
def test_bandwidth_sets_the_number_of_codebooks(tiny_encodec, speech, kbps, codebooks):
    # 75 frames/s x log2(1024) = 10 bits per codebook per frame: kbps * 1000 / 750 codebooks
    from cm_cli.degrade.neural import encodec_batch

    _, info = encodec_batch([speech], 16000, kbps=kbps)
    assert info["codebooks"] == codebooks and info["kbps"] == kbps


def test_lengths_rates_and_batching(tiny_encodec):
    from cm_cli.degrade.neural import encodec_batch

    rng = np.random.default_rng(3)
    signals = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 12345, 777)]
    batched, _ = encodec_batch(signals, 16000, kbps=6)
    assert [len(y) for y in batched] == [16000, 12345, 777]
    for signal, together in zip(signals, batched):
        (alone,), _ = encodec_batch([signal], 16000, kbps=6)
        assert np.max(np.abs(alone - together)) < 1e-4  # the padding mask keeps utterances independent
    again, _ = encodec_batch(signals, 16000, kbps=6)
    assert all(np.array_equal(a, b) for a, b in zip(batched, again))  # deterministic


def test_encodec_spec_and_c07_chain_run(tiny_encodec, speech):
    y, info = apply_spec(speech, 16000, "encodec:kbps=3")
    assert len(y) == len(speech) and info["steps"][0]["codebooks"] == 4
    y, info = apply_spec(speech, 16000, "mp3:kbps=48+encodec:kbps=1.5")
    assert len(y) == len(speech) and np.all(np.isfinite(y))
