"""The training data pipeline: crops read by seeking, short and non-audio files, per-item randomness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.data.audio import load_audio, load_audio_window
from cm_cli.training.data import TrainAudio, _stable


def _train_rows(toy):
    root, manifest = toy
    df = pd.read_parquet(manifest)
    return root, df[df.split == "train"].reset_index(drop=True)


def test_window_read_equals_slicing_the_full_decode(toy_tiny):
    from cm_cli.data.manifest import resolve_audio_path

    root, train = _train_rows(toy_tiny)
    for path in train["path"].head(4):
        path = resolve_audio_path(path, root)
        full, _ = load_audio(path, sample_rate=16000)
        for start, frames in ((0, 800), (123, 4000), (len(full) - 500, 500)):
            assert np.array_equal(
                load_audio_window(path, start, frames, sample_rate=16000), full[start : start + frames]
            )


def test_training_crop_reads_only_the_window_and_matches_the_full_decode(toy_tiny, monkeypatch):
    import soundfile as sf

    root, train = _train_rows(toy_tiny)
    crop = 4000
    dataset = TrainAudio(train, data_root=root, seed=3, crop=crop)
    reads = []
    original = sf.read

    def counting(*args, **kwargs):
        data, rate = original(*args, **kwargs)
        reads.append(len(data))
        return data, rate

    monkeypatch.setattr(sf, "read", counting)
    for index in range(6):
        item = dataset[(2, index)]
        full, _ = load_audio(dataset.paths[index], sample_rate=16000)  # counted too: the reference decode
        assert len(full) > crop
        start = int(_stable(3, 2, index, 11).integers(0, len(full) - crop + 1))  # the rule before seeking
        assert np.array_equal(item.wave, full[start : start + crop])
    assert reads[0::2] == [crop] * 6  # the dataset decoded only the crop


def test_short_utterance_is_padded_to_the_front_ends_window_and_trains(toy_tiny, tmp_path):
    import soundfile as sf

    from cm_cli.training.config import TrainConfig
    from cm_cli.training.run import train_run

    root, manifest = toy_tiny
    df = pd.read_parquet(manifest)
    rows = df.index[df.split == "train"][:10]  # enough short rows to fill whole batches
    rng = np.random.default_rng(0)
    for i, row in enumerate(rows):
        path = tmp_path / f"short{i}.flac"
        sf.write(path, (rng.standard_normal(100 + i) * 0.1).astype(np.float32), 16000)  # ~6 ms < 10 ms window
        df.loc[row, "path"] = str(path)
        df.loc[row, "duration"] = (100 + i) / 16000
    edited = tmp_path / "short.parquet"
    df.to_parquet(edited)
    config = TrainConfig(backbone="lcnn", corpus="toy", epochs=1, batch_size=4, lr=1e-3, max_len=1.0, seed=0)
    outcome = train_run(config, edited, tmp_path / "run", data_root=root)
    assert outcome.status == "complete" and outcome.summary["n_failed_audio"] == 0
    dataset = TrainAudio(df[df.split == "train"].reset_index(drop=True), data_root=root, crop=16000, min_samples=400)
    item = dataset[(0, 0)]
    assert len(item.wave) == 400 and np.all(item.wave[100:] == 0)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ""])
def test_random_bytes_are_reported_as_not_audio(tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    data = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(b"\x00" + data)  # a leading zero byte: no chance of an MPEG frame sync
    with pytest.raises(CmError, match="not audio"):
        load_audio(path)


def test_on_the_fly_codecs_on_a_gpu_warn_and_recommend_pre_rendered_variants():
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.data import on_the_fly_codec_warning

    codec = TrainConfig(augment="clean:0.5, mp3:kbps=32:0.5")
    warning = on_the_fly_codec_warning(codec, "cuda:0")
    assert "mp3:kbps=32" in warning and "--variants K" in warning and "--augment-manifest" in warning
    assert on_the_fly_codec_warning(codec, "cpu") is None
    assert on_the_fly_codec_warning(TrainConfig(augment="clean:0.5, noise:snr=10:0.5"), "cuda") is None
    assert on_the_fly_codec_warning(TrainConfig(), "cuda") is None


def test_scoring_loader_never_draws_from_the_global_rng(toy_tiny):
    # dev scoring runs between training steps: it must not shift the model's dropout stream
    import torch

    from cm_cli.models.inference import AudioBatches

    root, train = _train_rows(toy_tiny)
    torch.manual_seed(11)
    before = torch.get_rng_state().clone()
    for workers in (0, 1):
        for _ in AudioBatches(train.head(6), data_root=root, batch_size=4, workers=workers):
            pass
    assert torch.equal(torch.get_rng_state(), before)
