import numpy as np
import pandas as pd
import soundfile as sf

from cm_cli.data.datasets import BucketBatchSampler, ManifestAudio, bucket_batches, collate_audio


def test_bucketing_covers_every_row_once_and_is_seeded():
    durations = np.random.default_rng(0).uniform(1, 5, size=103)
    batches = bucket_batches(durations, 8, shuffle=True, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(103))
    assert batches == bucket_batches(durations, 8, shuffle=True, seed=3)
    assert batches != bucket_batches(durations, 8, shuffle=True, seed=4)
    ordered = bucket_batches(durations, 8, shuffle=False)
    assert durations[ordered[0]].min() >= durations[ordered[-1]].max()


def test_sampler_splits_batches_across_ranks():
    durations = np.ones(40)
    ranks = [list(BucketBatchSampler(durations, 4, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 5
    assert not set(i for b in ranks[0] for i in b) & set(i for b in ranks[1] for i in b)


def test_dataset_pads_and_reports_unreadable_rows(tmp_path):
    sf.write(tmp_path / "a.flac", np.full(800, 0.1, dtype=np.float32), 16000)
    sf.write(tmp_path / "b.wav", np.full((1600, 2), 0.2, dtype=np.float32), 8000)  # stereo, 8 kHz
    (tmp_path / "c.wav").write_text("not audio")
    frame = pd.DataFrame({"path": ["a.flac", "b.wav", "c.wav"]})
    data = ManifestAudio(frame, data_root=tmp_path)
    batch = collate_audio([data[i] for i in range(3)])
    assert batch.waves.shape == (2, 3200) and batch.lengths.tolist() == [800, 3200]
    assert batch.indices.tolist() == [0, 1]
    assert batch.failures and batch.failures[0][0] == 2 and "c.wav" in batch.failures[0][1]
    assert abs(float(batch.waves[1, 100]) - 0.2) < 1e-3
