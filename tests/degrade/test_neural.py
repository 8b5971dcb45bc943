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
    batched, _ = encodec_batch(signals, 16000, kbps=6, per_call=3)  # one padded batch (a GPU's default)
    assert [len(y) for y in batched] == [16000, 12345, 777]
    for signal, together in zip(signals, batched):
        (alone,), _ = encodec_batch([signal], 16000, kbps=6)
        assert np.max(np.abs(alone - together)) < 1e-4  # the padding mask keeps utterances independent
    again, _ = encodec_batch(signals, 16000, kbps=6, per_call=3)
    assert all(np.array_equal(a, b) for a, b in zip(batched, again))  # deterministic


def test_encodec_spec_and_c07_chain_run(tiny_encodec, speech):
    y, info = apply_spec(speech, 16000, "encodec:kbps=3")
    assert len(y) == len(speech) and info["steps"][0]["codebooks"] == 4
    y, info = apply_spec(speech, 16000, "mp3:kbps=48+encodec:kbps=1.5")
    assert len(y) == len(speech) and np.all(np.isfinite(y))


# --------------------------------------------------------------------------- DAC and Mimi (issue 25)
@pytest.mark.parametrize("name", ["dac", "mimi"])
def test_missing_weights_name_the_download_and_the_env_var(name, tmp_path, monkeypatch):
    _no_weights(tmp_path, monkeypatch)
    monkeypatch.delenv(f"CM_{name.upper()}_MODEL", raising=False)
    with pytest.raises(CmError, match="not available locally") as err:
        validate_spec(f"{name}:codebooks=2")
    assert f"cm download --model {name}" in err.value.hint and f"CM_{name.upper()}_MODEL" in err.value.hint
    if name == "dac":
        with pytest.raises(CmError) as err:
            validate_spec("dac:rate=44")
        assert "cm download --model dac_44khz" in err.value.hint


def test_download_aliases_name_the_authors_models():
    from cm_cli.models.hub import resolve_model_id

    assert resolve_model_id("dac") == "descript/dac_16khz" and resolve_model_id("dac_44khz") == "descript/dac_44khz"
    assert resolve_model_id("mimi") == "kyutai/mimi"


@pytest.mark.parametrize("fixture, level", [("tiny_dac_dir", 2), ("tiny_mimi_dir", 3)])
def test_load_codec_reconstructs_any_shape_at_the_input_rate_and_length(fixture, level, request):
    from cm_cli.degrade.neural import load_codec

    folder = request.getfixturevalue(fixture)
    name = "dac" if "dac" in fixture else "mimi"
    codec = load_codec(name, model=str(folder))
    assert codec.sample_rate == (16000 if name == "dac" else 24000)
    rng = np.random.default_rng(1)
    one = (0.1 * rng.standard_normal(12345)).astype(np.float32)
    y = codec.reconstruct(one, 22050, level)
    assert y.shape == one.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    two = codec.reconstruct(np.stack([one, one[::-1].copy()]), 22050, level)
    assert two.shape == (2, 12345)
    listed = codec.reconstruct([one, one[:777]], 22050, level)
    assert [len(v) for v in listed] == [12345, 777]
    assert np.array_equal(codec.reconstruct(one, 22050, level), y)  # deterministic


def test_codebooks_are_the_level(tiny_dac_dir, speech):
    """More codebooks = a finer residual quantisation: the reconstruction error does not grow with the level."""
    from cm_cli.degrade.neural import load_codec

    codec = load_codec("dac", model=str(tiny_dac_dir))
    coarse = codec.reconstruct(speech, 16000, 1)
    fine = codec.reconstruct(speech, 16000, 4)
    assert not np.array_equal(coarse, fine)
    with pytest.raises(CmError, match="no level 5"):
        codec.reconstruct(speech, 16000, 5)


def test_dac_and_mimi_specs_run_and_keep_length(tiny_dac_dir, tiny_mimi_dir, speech):
    for spec in (
        f"dac:codebooks=2:model={tiny_dac_dir}",
        f"mimi:model={tiny_mimi_dir}",
        f"mp3:kbps=32+mimi:codebooks=4:model={tiny_mimi_dir}",
    ):
        y, info = apply_spec(speech, 16000, spec, seed=0, utt_id="u")
        assert len(y) == len(speech) and np.all(np.isfinite(y)), spec
    assert info["steps"][-1]["codebooks"] == 4


@pytest.fixture
def codec_calls(monkeypatch):
    """Utterances per model call (``LoadedCodec._code_padded``), in order."""
    from cm_cli.degrade import neural

    calls = []
    original = neural.LoadedCodec._code_padded

    def counting(self, signals, sr, level):
        calls.append(len(signals))
        return original(self, signals, sr, level)

    monkeypatch.setattr(neural.LoadedCodec, "_code_padded", counting)
    return calls


def _written_vs_alone(folder, src, spec) -> list[float]:
    """Per output file: the largest difference from the one-file path's float output."""
    import soundfile as sf

    from cm_cli.core.artifacts import read_table

    gaps = []
    for row in read_table(folder / "manifest.parquet").itertuples():
        source, rate = sf.read(str(src / "audio" / f"{row.source_utt_id}.flac"), dtype="float32")
        alone, _ = apply_spec(source, rate, spec, seed=0, utt_id=row.source_utt_id)
        written, _ = sf.read(row.path, dtype="float32")
        assert len(written) == len(source)
        gaps.append(float(np.max(np.abs(written - alone))))
    return gaps


def test_corpus_mode_batches_on_request_and_matches_one_file_at_a_time(tiny_dac_dir, tmp_path, codec_calls):
    """``batch_size`` 16: a chunk is coded in one call (neural.prefetch), close to what the one-file path writes."""
    from cm_cli.core.artifacts import read_json
    from cm_cli.degrade.corpus import degrade_manifest

    from .test_corpus import make_manifest

    manifest = make_manifest(tmp_path / "src", n=5, bad=False)
    spec = f"dac:codebooks=3:model={tiny_dac_dir}"
    degrade_manifest(manifest, tmp_path / "deg", specs=[spec], seed=0, workers=2, batch_size=16)
    assert codec_calls == [5]  # one batch for the five files, none per file (and workers=2 ran in one process)
    assert max(_written_vs_alone(tmp_path / "deg", tmp_path / "src", spec)) < 2e-3  # batch padding + 16-bit FLAC
    summary = read_json(tmp_path / "deg" / "cm.json")["summary"]
    assert summary["neural_codecs"] == {"device": "cpu", "batch_size": 16}


def test_corpus_mode_on_cpu_codes_one_utterance_per_call_exactly_as_one_file(tiny_dac_dir, tmp_path, codec_calls):
    """The CPU default is one utterance per call (batching measured slower there): the one-file result, to the bit."""
    from cm_cli.core.artifacts import read_json
    from cm_cli.degrade.corpus import degrade_manifest
    from cm_cli.degrade.neural_batch import BATCH_SIZE, default_batch_size

    from .test_corpus import make_manifest

    assert default_batch_size("cpu") == 1 and default_batch_size("cuda") == default_batch_size("cuda:1") == BATCH_SIZE
    manifest = make_manifest(tmp_path / "src", n=5, bad=False)
    spec = f"dac:codebooks=3:model={tiny_dac_dir}"
    degrade_manifest(manifest, tmp_path / "deg", specs=[spec], seed=0)
    assert codec_calls == [1] * 5
    # the same float computation, then 16-bit FLAC: at most half a quantisation step
    assert max(_written_vs_alone(tmp_path / "deg", tmp_path / "src", spec)) <= 0.5 / 32768 + 1e-9
    assert read_json(tmp_path / "deg" / "cm.json")["summary"]["neural_codecs"] == {"device": "cpu", "batch_size": 1}
    with pytest.raises(CmError, match="at least 1"):
        degrade_manifest(manifest, tmp_path / "bad", specs=[spec], seed=0, batch_size=0)


def test_cli_degrade_dac_keeps_samples_and_rate_and_list_shows_providers(tiny_dac_dir, cm_env, run_cm, monkeypatch):
    import json

    import soundfile as sf

    from .conftest import speechlike

    source = cm_env / "in.wav"
    sf.write(source, speechlike(22050, 0.7, seed=3), 22050)
    result = run_cm("degrade", source, cm_env / "out.flac", "--chain", f"dac:model={tiny_dac_dir}")
    assert result.exit_code == 0, result.output
    info_in, info_out = sf.info(str(source)), sf.info(str(cm_env / "out.flac"))
    assert (info_out.frames, info_out.samplerate) == (info_in.frames, 22050)
    monkeypatch.setenv("CM_MIMI_MODEL", str(cm_env / "nowhere"))
    listed = {r["name"]: r for r in json.loads(run_cm("--json", "degrade", "--list").stdout)["degradations"]}
    assert {"dac", "mimi", "encodec"} <= set(listed)
    assert "DacModel" in listed["dac"]["provider"] or "cm download --model dac" in listed["dac"]["provider"]
    assert not listed["mimi"]["available"] and "CM_MIMI_MODEL" in listed["mimi"]["provider"]
    failed = run_cm("degrade", source, cm_env / "x.flac", "--chain", "mimi:codebooks=2")
    assert failed.exit_code == 1 and "cm download --model" in failed.stderr and "Traceback" not in failed.stderr
    assert not (cm_env / "x.flac").exists()


def test_batch_padding_reaches_only_the_tail_of_a_shorter_dac_utterance(tiny_dac_dir, tiny_mimi_dir):
    """Why a batch is not the one-file result for DAC: no padding mask, so a batch-mate's zero tail reaches the
    last frames of a shorter utterance (its receptive field); Mimi's padding mask keeps it to float rounding."""
    from cm_cli.degrade.neural import load_codec

    rng = np.random.default_rng(0)
    long, short = ((0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 6000))
    gaps = {}
    for name, folder in (("dac", tiny_dac_dir), ("mimi", tiny_mimi_dir)):
        codec = load_codec(name, model=str(folder))
        level = codec.default_level()
        (_, together), _ = codec.code_batch([long, short], 16000, level, per_call=2)
        (alone,), _ = codec.code_batch([short], 16000, level)
        gaps[name] = np.abs(together - alone)
        # the CPU default codes one utterance per call: the one-file result, whatever the batch-mates
        (_, default), _ = codec.code_batch([long, short], 16000, level)
        assert np.array_equal(default, alone)
    assert gaps["mimi"].max() < 1e-5
    assert gaps["dac"][:4000].max() < 1e-6 < gaps["dac"][4000:].max()
