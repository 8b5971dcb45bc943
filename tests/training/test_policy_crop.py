"""On-the-fly augmentation of the training crop: the policy sees the crop plus margins, and the
crop it yields is what degrading the whole file would have put there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.training.data import WHOLE_FILE_COVERAGE, TrainAudio, policy_window
from tests.degrade.conftest import speechlike

SR = 16000
LSB = 1.0 / 32768


def test_policy_window_adds_margins_within_the_file_and_takes_whole_short_files():
    assert policy_window(8000, 16000, 160000, 4000) == (4000, 28000)
    assert policy_window(1000, 16000, 160000, 4000) == (0, 21000)  # clipped at the start
    assert policy_window(144000, 16000, 160000, 4000) == (140000, 160000)  # and at the end
    n = 30000  # crop + margins cover most of a short file: the whole file, which the cache can reuse
    assert (24000 / n) >= WHOLE_FILE_COVERAGE and policy_window(3000, 16000, n, 4000) == (0, n)


def _dataset(tmp_path, seconds: float, policy, *, crop_s: float = 1.0, n_files: int = 4):
    import soundfile as sf

    from cm_cli.degrade.policy import load_policy

    rows = []
    for i in range(n_files):
        wave = 0.5 * speechlike(SR, seconds, seed=20 + i)
        sf.write(tmp_path / f"u{i}.flac", wave, SR, subtype="PCM_16")
        rows.append({"utt_id": f"u{i}", "path": f"u{i}.flac", "label": "bonafide"})
    frame = pd.DataFrame(rows)

    def make(p):
        policy_ = None if p is None else load_policy(p)
        return TrainAudio(
            frame, data_root=tmp_path, policy=policy_, seed=3, crop=int(crop_s * SR), cache_dir=tmp_path / "cache"
        )

    return make(policy), make(None)


def _whole_file_crop(ds_clean, key, path, spec: str) -> tuple[np.ndarray, int]:
    """The same crop cut from the whole file degraded with ``spec`` (a deterministic one)."""
    from cm_cli.data.audio import load_audio
    from cm_cli.degrade.policy import apply_policy

    full = load_audio(path, sample_rate=SR)[0]
    clean = ds_clean[key].wave
    starts = [s for s in range(len(full) - len(clean) + 1) if np.array_equal(full[s : s + len(clean)], clean)]
    assert len(starts) == 1
    degraded, _ = apply_policy(full, SR, spec, seed=0, cache=False)
    return degraded[starts[0] : starts[0] + len(clean)], starts[0]


@pytest.mark.parametrize("spec", ["telephony:1", "alaw:1"])
def test_degraded_crop_equals_the_crop_of_the_degraded_file(tmp_path, spec, monkeypatch):
    """Band-pass filtering and A-law (with its 8 kHz resampling) are deterministic: with the margins the
    crop is the whole-file result to one 16-bit step; without them the crop's edges carry start-up
    transients (the defect the margins remove)."""
    ds, ds_clean = _dataset(tmp_path, 6.0, spec)
    for key in [(0, 0), (1, 1), (2, 2), (0, 3)]:
        got = ds[key].wave
        want, start = _whole_file_crop(ds_clean, key, tmp_path / f"u{key[1]}.flac", spec)
        assert start > 0.25 * SR  # an interior crop: the edge transients would show
        assert np.abs(got - want).max() <= LSB + 1e-9
    monkeypatch.setattr("cm_cli.training.data.POLICY_MARGIN_SECONDS", 0.0)
    bare = ds[(0, 0)].wave
    want, _ = _whole_file_crop(ds_clean, (0, 0), tmp_path / "u0.flac", spec)
    edges = np.r_[np.abs(bare - want)[:160], np.abs(bare - want)[-160:]]  # first and last 10 ms
    assert edges.max() > 50 * LSB


def test_codec_crop_has_no_start_transient(tmp_path):
    """A lossy codec re-quantises differently at another frame alignment, so the crop is another draw of
    the same noise: its error against the whole-file result is no worse at the edges than in the middle."""
    ds, ds_clean = _dataset(tmp_path, 6.0, "mp3:kbps=64:1", n_files=3)
    ratios = []
    for key in [(0, 0), (0, 1), (0, 2)]:
        got = ds[key].wave
        want, _ = _whole_file_crop(ds_clean, key, tmp_path / f"u{key[1]}.flac", "mp3:kbps=64:1")
        err = (got - want) ** 2
        edge = np.r_[err[:800], err[-800:]].mean()  # first and last 50 ms
        middle = err[800:-800].mean()
        ratios.append(edge / middle)
    assert np.median(ratios) < 4.0


def test_windows_are_not_cached_whole_files_are(tmp_path):
    ds_long, _ = (
        _dataset(tmp_path / "long", 6.0, "telephony:1", n_files=2) if (tmp_path / "long").mkdir() is None else None
    )
    ds_long[(0, 0)]
    ds_long[(0, 1)]
    assert not list((tmp_path / "long" / "cache").rglob("*.flac"))
    ds_short, _ = (
        _dataset(tmp_path / "short", 1.1, "telephony:1", n_files=2) if (tmp_path / "short").mkdir() is None else None
    )
    first = ds_short[(0, 0)].wave
    entries = list((tmp_path / "short" / "cache").rglob("*.flac"))
    assert len(entries) == 1
    np.testing.assert_array_equal(ds_short[(0, 0)].wave, first)  # from the cache, bit-identical
    assert len(list((tmp_path / "short" / "cache").rglob("*.flac"))) == 1


def test_policy_window_starts_on_the_grid():
    a, b = policy_window(8123, 16000, 160000, 4000, grid=320)
    assert a % 320 == 0 and a <= 8123 - 4000 and b == 8123 + 16000 + 4000
