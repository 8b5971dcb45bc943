"""Batch and streaming scoring of a checkpoint (a random-init LCNN on generated audio)."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.errors import CmError
from cm_cli.models.loading import load_model
from cm_cli.scoring import ScoringConfig, score_cache_key, score_frame, window_starts


@pytest.fixture(scope="module")
def lcnn_checkpoint(tmp_path_factory):
    import torch

    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="lcnn"))
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, model)
    return path


@pytest.fixture
def audio_frame(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i, seconds in enumerate([0.5, 1.3, 2.1]):
        sf.write(tmp_path / f"u{i}.flac", (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
        rows.append({"utt_id": f"u{i}", "path": f"u{i}.flac"})
    sf.write(tmp_path / "stereo48k.wav", (0.1 * rng.standard_normal((48000, 2))).astype(np.float32), 48000)
    rows.append({"utt_id": "stereo", "path": "stereo48k.wav"})
    (tmp_path / "bad.flac").write_bytes(b"truncated")
    rows.append({"utt_id": "bad", "path": "bad.flac"})
    return pd.DataFrame(rows), tmp_path


def test_window_starts_cover_the_tail_without_tiling():
    assert window_starts(100, 40, 40) == [0, 40, 60]
    assert window_starts(100, 40, 30) == [0, 30, 60]
    assert window_starts(110, 40, 30) == [0, 30, 60, 70]
    assert window_starts(30, 40, 40) == [0]
    assert window_starts(80, 40, 40) == [0, 40]
    assert window_starts(81, 40, 40) == [0, 40, 41]


def test_batch_scores_are_batch_size_invariant_and_failures_listed(lcnn_checkpoint, audio_frame):
    frame, root = audio_frame
    loaded = load_model(lcnn_checkpoint)
    one = score_frame(loaded, frame, data_root=root, config=ScoringConfig(batch_size=1))
    many = score_frame(loaded, frame, data_root=root, config=ScoringConfig(batch_size=8))
    assert one.scores["utt_id"].tolist() == ["u0", "u1", "u2", "stereo"]
    assert one.scores["score"].dtype == np.float32
    np.testing.assert_allclose(one.scores["score"], many.scores["score"], atol=1e-4)
    assert [f["utt_id"] for f in one.failures] == ["bad"]


def test_streaming_aggregates_windows(lcnn_checkpoint, audio_frame):
    frame, root = audio_frame
    loaded = load_model(lcnn_checkpoint)
    result = score_frame(loaded, frame, data_root=root, config=ScoringConfig(chunk_ms=500, aggregate="max"))
    windows = dict(zip(result.scores["utt_id"], result.scores["n_windows"]))
    assert windows == {"u0": 1, "u1": 3, "u2": 5, "stereo": 2}

    low = score_frame(loaded, frame, data_root=root, config=ScoringConfig(chunk_ms=500, aggregate="min"))
    assert (result.scores["score"].to_numpy() >= low.scores["score"].to_numpy()).all()


def test_audio_shorter_than_the_receptive_field_is_padded(lcnn_checkpoint, tmp_path):
    sf.write(tmp_path / "tiny.wav", np.full(100, 0.1, dtype=np.float32), 16000)
    loaded = load_model(lcnn_checkpoint)
    result = score_frame(loaded, pd.DataFrame({"utt_id": ["t"], "path": ["tiny.wav"]}), data_root=tmp_path)
    assert np.isfinite(result.scores["score"]).all()


def test_on_the_fly_degradation_changes_scores(lcnn_checkpoint, audio_frame):
    frame, root = audio_frame
    loaded = load_model(lcnn_checkpoint)
    clean = score_frame(loaded, frame, data_root=root)
    phone = score_frame(loaded, frame, data_root=root, config=ScoringConfig(degrade="telephony"))
    assert not np.allclose(clean.scores["score"], phone.scores["score"])


def test_cache_key_tracks_preprocessing_and_inputs():
    a = score_cache_key("abc", ScoringConfig(), "m1")
    assert a == score_cache_key("abc", ScoringConfig(), "m1")
    assert a != score_cache_key("abd", ScoringConfig(), "m1")
    assert a != score_cache_key("abc", ScoringConfig(full_length=True), "m1")
    assert a != score_cache_key("abc", ScoringConfig(), "m2")


def test_bad_configs_and_sources(tmp_path):
    with pytest.raises(CmError):
        ScoringConfig(aggregate="mode")
    with pytest.raises(CmError):
        ScoringConfig(chunk_ms=100, overlap_ms=100)
    with pytest.raises(CmError, match="no such run"):
        load_model(tmp_path / "missing")


@pytest.fixture(scope="module")
def repeat_checkpoint(tmp_path_factory):
    """A repeat-policy model (as AASIST: short audio tiled to a fixed target), small enough for CPU."""
    import torch

    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    torch.manual_seed(1)
    model = build_model(ModelConfig(backbone="lcnn", length_policy="repeat", target_samples=16000))
    path = tmp_path_factory.mktemp("repeat") / "best.pt"
    save_checkpoint(path, model)
    return path


def test_repeat_policy_short_utterance_scores_alike_alone_batched_and_chunked(repeat_checkpoint, tmp_path):
    import torch

    rng = np.random.default_rng(3)
    for name, seconds in (("short", 0.3), ("long1", 1.5), ("long2", 2.2)):
        sf.write(tmp_path / f"{name}.wav", (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
    frame = lambda names: pd.DataFrame({"utt_id": names, "path": [f"{n}.wav" for n in names]})  # noqa: E731
    loaded = load_model(repeat_checkpoint)
    alone = score_frame(loaded, frame(["short"]), data_root=tmp_path, config=ScoringConfig(batch_size=1))
    batched = score_frame(
        loaded, frame(["long1", "short", "long2"]), data_root=tmp_path, config=ScoringConfig(batch_size=8)
    )
    chunked = score_frame(loaded, frame(["short"]), data_root=tmp_path, config=ScoringConfig(chunk_ms=300))
    full = score_frame(loaded, frame(["short"]), data_root=tmp_path, config=ScoringConfig(full_length=True))
    value = float(alone.scores["score"].iloc[0])
    assert float(batched.scores.set_index("utt_id").loc["short", "score"]) == pytest.approx(value, abs=1e-5)
    assert int(chunked.scores["n_windows"].iloc[0]) == 1
    assert float(chunked.scores["score"].iloc[0]) == pytest.approx(value, abs=1e-5)
    assert float(full.scores["score"].iloc[0]) == pytest.approx(value, abs=1e-5)
    # the planted difference: zero-padding the same audio (the old rule for chunks) scores otherwise
    wave, _ = sf.read(tmp_path / "short.wav", dtype="float32")
    padded = torch.zeros(1, 16000)
    padded[0, : len(wave)] = torch.from_numpy(wave)
    with torch.no_grad():
        zero_score = float(loaded.model(padded, torch.tensor([16000])).score[0])
    assert abs(zero_score - value) > 1e-3


def test_causal_windows_score_only_the_first_windows(lcnn_checkpoint, audio_frame, tmp_path):
    frame, root = audio_frame
    loaded = load_model(lcnn_checkpoint)
    causal = score_frame(loaded, frame, data_root=root, config=ScoringConfig(chunk_ms=500, causal_windows=2))
    windows = dict(zip(causal.scores["utt_id"], causal.scores["n_windows"]))
    assert windows == {"u0": 1, "u1": 2, "u2": 2, "stereo": 2}
    # two causal windows of u2 = streaming over its first second (windows at 0 and 0.5 s)
    wave, _ = sf.read(root / "u2.flac", dtype="float32")
    sf.write(tmp_path / "head.wav", wave[:16000], 16000)
    head = score_frame(
        loaded,
        pd.DataFrame({"utt_id": ["h"], "path": ["head.wav"]}),
        data_root=tmp_path,
        config=ScoringConfig(chunk_ms=500),
    )
    assert int(head.scores["n_windows"].iloc[0]) == 2
    got = float(causal.scores.set_index("utt_id").loc["u2", "score"])
    assert got == pytest.approx(float(head.scores["score"].iloc[0]), abs=1e-5)
    with pytest.raises(CmError, match="give a chunk length"):
        ScoringConfig(causal_windows=2)
