"""Codec reconstruction error: measures with known answers, a stand-in codec, a tiny random DAC through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cm_cli.featuresets.reconstruction import (
    MEASURES,
    N_MELS,
    ReconstructionExtractor,
    reconstruction_measures,
)
from tests.featuresets.synth import SR, harmonic_tone


def named(x, y):
    return dict(zip(MEASURES, reconstruction_measures(x, y).tolist()))


def speechlike(seconds=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return harmonic_tone(140.0, seconds) + 0.02 * rng.standard_normal(int(seconds * SR)).astype(np.float32)


def test_a_perfect_reconstruction_has_no_error():
    x = speechlike()
    m = named(x, x)
    assert m["logmel_mean"] == 0 and m["mcd_mean"] == 0 and m["segsnr_mean"] == 35.0 and m["snr_db"] > 100


def test_half_amplitude_is_6_db_everywhere_and_no_cepstral_distortion():
    x = speechlike()
    m = named(x, 0.5 * x)
    six = 20 * math.log10(2)
    assert all(m[f"logmel_band_{i:02d}"] == pytest.approx(six, abs=1e-3) for i in range(N_MELS))
    assert m["mcd_mean"] == pytest.approx(0, abs=1e-3)  # a flat gain moves c0 only, which MCD leaves out
    assert m["snr_db"] == pytest.approx(six, abs=1e-4) and m["segsnr_mean"] == pytest.approx(six, abs=1e-4)


def test_snr_of_planted_noise():
    x = speechlike(2.0)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(len(x))
    noise *= math.sqrt((x.astype(float) ** 2).sum() / (noise**2).sum() / 10 ** (10 / 10))  # 10 dB
    m = named(x, (x + noise).astype(np.float32))
    assert m["snr_db"] == pytest.approx(10.0, abs=0.05) and m["mcd_mean"] > 0.1


class _Gain:
    """A stand-in codec that scales by a level-dependent gain (the planted reconstruction error)."""

    family, rate, device = "stand-in", 16000, "cpu"
    levels = [(1.0, 1), (2.0, 2)]

    def roundtrip(self, waves, codebooks, kbps):
        return [w * (0.5 if codebooks == 1 else 1.0) for w in waves]


def test_extractor_layers_per_bitrate_and_flags():
    extractor = ReconstructionExtractor(_Gain(), _Gain.levels, "stand-in")
    batch = extractor.extract([speechlike(), np.zeros(0, np.float32), np.zeros(8000, np.float32), speechlike(0.5)])
    low = dict(zip(extractor.layers["layer_00"], batch.vectors["layer_00"][0]))
    high = dict(zip(extractor.layers["layer_01"], batch.vectors["layer_01"][0]))
    assert low["at1kbps_snr_db"] == pytest.approx(20 * math.log10(2), abs=1e-3) and high["at2kbps_logmel_mean"] == 0
    assert batch.flags["flag_short"].tolist() == [False, True, False, False]
    assert batch.flags["flag_silent"].tolist() == [False, True, True, False]
    assert not batch.vectors["layer_00"][1:3].any() and np.isfinite(batch.vectors["layer_00"]).all()


@pytest.fixture(scope="module")
def tiny_dac(tmp_path_factory):
    from cm_cli.featuresets.reconstruction import save_tiny_dac

    return save_tiny_dac(tmp_path_factory.mktemp("codec") / "dac")


def test_dac_bitrate_ladder(tiny_dac):
    from cm_cli.degrade.neural import load_codec
    from cm_cli.featuresets.reconstruction import open_codec

    codec = open_codec(str(tiny_dac))
    assert codec.family == "dac" and codec.loaded.net is load_codec("dac", model=str(tiny_dac.resolve())).net
    # 16 kHz / (2 x 4) = 2000 frames/s, log2(16) = 4 bits per codebook: 8 kbps per codebook
    assert codec.levels == [(8.0, 1), (16.0, 2), (24.0, 3), (32.0, 4)]
    assert codec.choose(None) == [(8.0, 1), (32.0, 4)] and codec.choose([15, 25]) == [(16.0, 2), (24.0, 3)]


def test_features_are_the_measures_of_the_shared_loaders_reconstruction(tiny_dac):
    """One codec path: the extractor's layer at 2 codebooks is ``reconstruction_measures`` of what
    ``degrade.neural.load_codec(...).reconstruct`` (the loader `cm degrade` uses) gives at level 2."""
    from cm_cli.degrade.neural import load_codec
    from cm_cli.featuresets.reconstruction import build_extractor

    waves = [speechlike(), speechlike(0.6, seed=1)]
    extractor = build_extractor(str(tiny_dac), options={"bitrates": "16"})
    got = extractor.extract(waves).vectors["layer_00"]
    shared = load_codec("dac", model=str(tiny_dac), device="cpu")
    expected = [reconstruction_measures(w, y) for w, y in zip(waves, shared.reconstruct(waves, 16000, 2))]
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-5, atol=1e-5)


def test_on_the_cpu_an_utterances_features_do_not_depend_on_its_batch_mates(tiny_dac):
    """DAC has no padding mask: in one padded batch a longer batch-mate changes the last frames of a shorter
    utterance's reconstruction. On the CPU each is coded alone, so its features are those of the one-wave batch."""
    from cm_cli.featuresets.reconstruction import build_extractor

    short, long = speechlike(0.6, seed=1), speechlike(1.0, seed=2)
    extractor = build_extractor(str(tiny_dac), options={"bitrates": "8,32"})
    alone = extractor.extract([short]).vectors
    together = extractor.extract([long, short]).vectors
    for column in alone:
        np.testing.assert_array_equal(together[column][1], alone[column][0])


def test_embed_reconstruction_cli_covers_every_row(cm_env, run_cm, tiny_dac):
    import pandas as pd

    from tests.commands.test_embed import _prosody_world

    manifest = _prosody_world(cm_env / "audio", n_speakers=2, per_label=2)
    result = run_cm(
        "--json",
        "embed",
        "--manifest",
        manifest,
        "--backbone",
        "reconstruction",
        "--backbone-id",
        tiny_dac,
        "--out",
        cm_env / "rec",
        "--bitrates",
        "8,24",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["dims"] == {"layer_00": len(MEASURES), "layer_01": len(MEASURES)} and payload["n_failed"] == 0
    table = pd.read_parquet(cm_env / "rec" / "embeddings.parquet")
    assert set(table["utt_id"]) == set(pd.read_parquet(manifest)["utt_id"])
    assert "at24kbps_mcd_mean" in table.columns and table["flag_short"].sum() == 2
    from cm_cli.training.features import load_features

    assert load_features(cm_env / "rec").values.shape == (len(table), 2, len(MEASURES))  # `cm train --features`
    record = json.loads((cm_env / "rec" / "cm.json").read_text())
    assert record["summary"]["info"]["codec"] == "dac" and record["summary"]["info"]["bitrates_kbps"] == [8.0, 24.0]


def test_not_a_codec_is_refused(cm_env, run_cm, tiny_dac, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    from tests.commands.test_embed import _prosody_world

    manifest = _prosody_world(cm_env / "audio", n_speakers=1, per_label=1)
    result = run_cm(
        "embed", "-m", manifest, "--backbone", "reconstruction", "--backbone-id", tmp_path, "--out", cm_env / "r"
    )
    assert result.exit_code == 1 and "not a neural codec" in result.stderr and not (cm_env / "r").exists()


def _tiny_codec(family: str, path):
    import torch

    from cm_cli.core.heavy import import_transformers

    transformers = import_transformers()
    torch.manual_seed(0)
    if family == "encodec":  # 24 kHz / 320 = 75 frames/s x 10 bits = 0.75 kbps per codebook
        model = transformers.EncodecModel(
            transformers.EncodecConfig(
                hidden_size=8,
                num_filters=4,
                upsampling_ratios=[8, 5, 4, 2],
                target_bandwidths=[1.5, 3.0],
                sampling_rate=24000,
                codebook_size=1024,
                num_lstm_layers=1,
            )
        )
    else:  # mimi: 12.5 frames/s x 4 bits = 0.05 kbps per codebook
        model = transformers.MimiModel(
            transformers.MimiConfig(
                hidden_size=16,
                num_filters=4,
                codebook_size=16,
                codebook_dim=8,
                num_quantizers=4,
                num_semantic_quantizers=1,
                num_hidden_layers=1,
                intermediate_size=32,
                num_attention_heads=2,
                num_key_value_heads=2,
                head_dim=8,
                vector_quantization_hidden_dimension=8,
                upsample_groups=16,
            )
        )
    model.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    ("family", "levels"), [("encodec", [(1.5, 2), (3.0, 4)]), ("mimi", [(0.05, 1), (0.1, 2), (0.15, 3), (0.2, 4)])]
)
def test_encodec_and_mimi_run_at_their_bitrates(tmp_path, family, levels):
    from cm_cli.featuresets.reconstruction import build_extractor

    extractor = build_extractor(str(_tiny_codec(family, tmp_path / family)), options={})
    assert extractor.codec.levels == levels and extractor.info["codec"] == family
    rng = np.random.default_rng(0)
    batch = extractor.extract([0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 5000)])
    assert all(v.shape == (2, len(MEASURES)) and np.isfinite(v).all() for v in batch.vectors.values())
