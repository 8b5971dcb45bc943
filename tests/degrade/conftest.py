"""Synthetic speech-like audio for the degrade tests (made here, no corpus needed)."""

from __future__ import annotations

import numpy as np
import pytest


def speechlike(sr: int = 16000, seconds: float = 2.0, seed: int = 0, silence: float = 0.0) -> np.ndarray:
    """Voiced glide plus band-limited noise under a syllabic envelope, with optional leading/trailing silence."""
    from cm_cli.degrade.codecs import probe_signal

    x = probe_signal(sr, seconds=seconds, seed=seed)
    if silence:
        pad = np.zeros(int(silence * sr), np.float32)
        x = np.concatenate([pad, x, pad])
    return x


@pytest.fixture
def speech() -> np.ndarray:
    return speechlike(seed=11)


def make_tiny_encodec(folder):
    """Save a tiny random-initialised EncodecModel (24 kHz, the real model's five bandwidths) with save_pretrained."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.EncodecConfig(
        hidden_size=8,
        num_filters=2,
        num_residual_layers=1,
        num_lstm_layers=1,
        codebook_size=1024,
        codebook_dim=8,
        upsampling_ratios=[8, 5, 4, 2],
        target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
        sampling_rate=24000,
    )
    torch.manual_seed(0)
    transformers.EncodecModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_encodec_dir(tmp_path_factory):
    return make_tiny_encodec(tmp_path_factory.mktemp("tiny_encodec"))


@pytest.fixture
def tiny_encodec(tiny_encodec_dir, monkeypatch):
    """Point cm at the tiny model the way a user points it at local weights (CM_ENCODEC_MODEL)."""
    monkeypatch.setenv("CM_ENCODEC_MODEL", str(tiny_encodec_dir))
    return tiny_encodec_dir


def make_tiny_dac(folder, rate: int = 16000):
    """A tiny random-initialised DacModel (4 codebooks, hop 320 like descript/dac_16khz) saved with save_pretrained."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.DacConfig(
        encoder_hidden_size=8,
        downsampling_ratios=[2, 4, 5, 8],
        decoder_hidden_size=32,
        n_codebooks=4,
        codebook_size=64,
        codebook_dim=4,
        sampling_rate=rate,
    )
    torch.manual_seed(0)
    transformers.DacModel(config).save_pretrained(folder)
    return folder


def make_tiny_mimi(folder):
    """A tiny random-initialised MimiModel (24 kHz, 12.5 Hz frames, 8 quantizers) saved with save_pretrained."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.MimiConfig(
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[8, 6, 5, 4],
        codebook_size=64,
        codebook_dim=16,
        num_quantizers=8,
        vector_quantization_hidden_dimension=16,
        num_semantic_quantizers=1,
        upsample_groups=16,
        num_hidden_layers=1,
        intermediate_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=50,
        max_position_embeddings=500,
        sampling_rate=24000,
    )
    torch.manual_seed(0)
    transformers.MimiModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dac_dir(tmp_path_factory):
    return make_tiny_dac(tmp_path_factory.mktemp("tiny_dac"))


@pytest.fixture(scope="session")
def tiny_mimi_dir(tmp_path_factory):
    return make_tiny_mimi(tmp_path_factory.mktemp("tiny_mimi"))
