"""Augmentation policies: parsing, labelled draws, on-the-fly cache, presets, loud failure."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.core.errors import CmError
from cm_cli.degrade import policy as pol
from cm_cli.degrade.policy import apply_policy, draw, load_policy, parse_policy

from .conftest import speechlike


def test_inline_policy_parses_probabilities_and_sweeps():
    p = parse_policy("clean:0.3, mp3:kbps=16|32|64:0.3, telephony+mulaw:0.2, C05:0.2")
    assert [e.probability for e in p.entries] == [0.3, 0.3, 0.2, 0.2]
    assert p.entries[3].condition == "C05"
    assert p.labels()[:4] == ["clean", "mp3:kbps=16", "mp3:kbps=32", "mp3:kbps=64"]
    assert "C05" in p.labels()


def test_draws_follow_probabilities_and_label_every_sample():
    p = parse_policy("clean:0.25, mp3:kbps=16|32:0.75")
    rng = np.random.default_rng(0)
    labels = [draw(p, rng)[1] for _ in range(4000)]
    share_clean = labels.count("clean") / len(labels)
    assert share_clean == pytest.approx(0.25, abs=0.03)
    assert set(labels) == {"clean", "mp3:kbps=16", "mp3:kbps=32"}


@pytest.mark.parametrize(
    "text,match",
    [("mp3:kbps=32:abc", "not a probability"), ("", "empty"), ("mp3:-0.5", ">= 0"), ("mp9:0.5", "unknown degradation")],
)
def test_bad_policies(text, match):
    with pytest.raises(CmError, match=match):
        load_policy(text) if text else parse_policy(text)


def test_policy_naming_a_codec_without_encoder_fails_loudly():
    from cm_cli.degrade.codecs import codec_available

    if codec_available("amr-wb"):
        pytest.skip("amr-wb encoder present")
    with pytest.raises(CmError, match="amr-wb.*libvo_amrwbenc"):
        load_policy("clean:0.5, amr-wb:kbps=12.65:0.5")
    with pytest.raises(CmError, match="C02"):
        load_policy("clean:0.5, C02:0.5")


def test_policy_presets_load_and_work(tmp_path):
    for name in ("aug_codec_basic", "aug_channel", "aug_codec_asvspoof5"):
        p = load_policy(name)
        assert p.name == name and "clean" in p.labels()
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text("policy:\n  - {spec: clean, p: 1}\n  - {spec: 'g723_1', p: 1}\n")
    assert load_policy(yaml_file).labels() == ["clean", "g723_1"]


def test_apply_policy_reproducible_by_seed_and_cached(tmp_path, monkeypatch):
    x = speechlike(16000, 1.0, seed=9)
    p = parse_policy("mp3:kbps=32:1")
    y1, label = apply_policy(x, 16000, p, seed=3, utt_id="u", cache_dir=tmp_path)
    assert label == "mp3:kbps=32" and len(y1) == len(x)
    files = list((tmp_path / "degrade").rglob("*.flac"))
    assert len(files) == 1
    import soundfile as sf

    info = sf.info(str(files[0]))
    assert (info.format, info.subtype, info.frames) == ("FLAC", "PCM_16", len(x))
    assert files[0].stat().st_size < 2 * len(
        x
    )  # compact: smaller than raw 16-bit PCM (float32 .npy was 4 bytes per sample)
    # a second call must come from the cache: make the coder unusable and check nothing breaks
    monkeypatch.setattr(
        "cm_cli.degrade.registry.apply_spec", lambda *a, **k: (_ for _ in ()).throw(AssertionError("not cached"))
    )
    y2, _ = apply_policy(x, 16000, p, seed=3, utt_id="u", cache_dir=tmp_path)
    np.testing.assert_array_equal(y1, y2)


def test_apply_policy_output_is_what_cm_degrade_writes(tmp_path):
    """On-the-fly audio equals the coder's output written as 16-bit FLAC and read back, cache or not."""
    from cm_cli.data.audio import load_audio, save_audio
    from cm_cli.degrade.noise import stable_rng
    from cm_cli.degrade.registry import apply_spec

    x = speechlike(16000, 1.0, seed=4)
    x = 4.0 * x / np.abs(x).max()  # the band-passed output exceeds full scale: clipped as a file would be
    p = parse_policy("telephony:1")
    fresh, _ = apply_policy(x, 16000, p, seed=5, utt_id="u", cache=False)
    rng = stable_rng(5, "u", "policy")
    spec, _ = draw(p, rng)
    direct, _ = apply_spec(x, 16000, spec, seed=int(rng.integers(2**31)), utt_id="u")
    save_audio(tmp_path / "v.flac", direct, 16000)
    written, _ = load_audio(tmp_path / "v.flac", sample_rate=16000)
    np.testing.assert_array_equal(fresh, written)
    assert np.abs(direct).max() > 1.0 and np.abs(fresh).max() <= 1.0


def test_apply_policy_with_rng_labels_clean_identity():
    x = speechlike(16000, 0.5, seed=1)
    y, label = apply_policy(x, 16000, "clean:1", rng=np.random.default_rng(0), cache=False)
    assert label == "clean"
    np.testing.assert_array_equal(x, y)


def test_cache_key_depends_on_content_and_spec():
    from cm_cli.core.specs import parse_spec

    x = speechlike(16000, 0.5, seed=1)
    k1 = pol._cache_key(x, 16000, parse_spec("mp3:kbps=32"), 1, "a")
    assert k1 == pol._cache_key(x, 16000, parse_spec("mp3:kbps=32"), 2, "b")  # deterministic codec: seed irrelevant
    assert k1 != pol._cache_key(x, 16000, parse_spec("mp3:kbps=64"), 1, "a")
    assert k1 != pol._cache_key(x * 0.5, 16000, parse_spec("mp3:kbps=32"), 1, "a")
    n = parse_spec("noise:snr=5")
    assert pol._cache_key(x, 16000, n, 1, "a") != pol._cache_key(x, 16000, n, 2, "a")


def test_asvspoof5_presets_split_seen_from_unseen():
    from cm_cli.degrade.conditions import CONDITIONS
    from cm_cli.degrade.policy import held_out_conditions

    ood = load_policy("aug_codec_asvspoof5_ood", check_available=False)
    assert ood.name == "aug_codec_asvspoof5"
    assert [lab for lab in ood.labels() if lab != "clean"] == ["C01", "C05", "C06", "C08", "C09"]
    assert held_out_conditions(ood) == ["C02", "C03", "C04", "C07", "C10", "C11"]
    everything = load_policy("aug_codec_asvspoof5_all", check_available=False)
    assert held_out_conditions(everything) == [] and set(everything.labels()) == {"clean", *CONDITIONS}
    device = load_policy("aug_device_asvspoof5")
    assert device.labels() == ["clean", "C11"]
    drawn = {draw(device, np.random.default_rng(i))[0].canonical() for i in range(400)}
    assert {lv.parsed().canonical() for lv in CONDITIONS["C11"].levels} <= drawn  # every level reachable


def test_cache_key_separates_utterances_for_steps_that_draw_randomness():
    # the cable's hum phases are drawn per utterance: two utterances with equal audio must not share a cache entry
    x = speechlike(16000, 0.5, seed=1)
    spec = pol.parse_policy("cable:hum_db=-20:1").entries[0].candidates()[0]
    assert pol._cache_key(x, 16000, spec, 1, "a") != pol._cache_key(x, 16000, spec, 1, "b")
    coded = pol.parse_policy("mp3:kbps=32:1").entries[0].candidates()[0]
    assert pol._cache_key(x, 16000, coded, 1, "a") == pol._cache_key(x, 16000, coded, 2, "b")


def test_apply_policy_cache_is_keyed_by_the_codec_provider(tmp_path, monkeypatch):
    """Audio coded by one FFmpeg build (PyAV in-process) is never served for another's (a binary)."""
    pytest.importorskip("av")
    from cm_cli.degrade import ffmpeg

    x = speechlike(16000, 0.5, seed=2)
    p = parse_policy("mp3:kbps=32:1")
    apply_policy(x, 16000, p, seed=3, utt_id="u", cache_dir=tmp_path)
    monkeypatch.setattr(ffmpeg, "pyav_provider", lambda: None)
    apply_policy(x, 16000, p, seed=3, utt_id="u", cache_dir=tmp_path)
    assert len(list((tmp_path / "degrade").rglob("*.flac"))) == 2


def test_policy_errors_keep_the_parameter_they_are_about():
    # the entry's own error names a parameter (noise_dir); re-raised with the policy's context it must still name it,
    # so the command layer can add the flag
    with pytest.raises(CmError, match="entry 'noise:type=file'") as info:
        load_policy("clean:0.5, noise:type=file:0.5")
    assert info.value.option == ("noise_dir",)
