"""Torch datasets over manifests: decoded 16 kHz mono audio, padded batches, length buckets.

Shared by training, scoring and embedding so all three read audio the same way.
A row that cannot be decoded is returned as a failure marker rather than raising,
so one corrupt file never kills an epoch or an evaluation: the collate function
drops it and the caller counts and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

__all__ = [
    "SAMPLE_RATE",
    "AudioItem",
    "ManifestAudio",
    "Batch",
    "collate_audio",
    "BucketBatchSampler",
    "bucket_batches",
]

SAMPLE_RATE = 16000


@dataclass
class AudioItem:
    index: int  # row position in the manifest frame
    wave: np.ndarray | None  # float32 (samples,), None when decoding failed
    error: str | None = None


class ManifestAudio:
    """A map-style dataset of manifest rows (a ``torch.utils.data.Dataset`` by duck typing).

    ``transform(wave, index) -> wave`` runs after decoding (augmentation, cropping);
    it receives the row index so it can seed per-utterance randomness.
    """

    def __init__(
        self,
        frame: "pd.DataFrame",
        *,
        data_root: str | Path | None,
        sample_rate: int = SAMPLE_RATE,
        transform: Callable[[np.ndarray, int], np.ndarray] | None = None,
    ):
        from cm_cli.data.manifest import resolve_audio_path

        self.frame = frame.reset_index(drop=True)
        self.paths = [resolve_audio_path(p, data_root) for p in self.frame["path"].astype(str)]
        self.sample_rate = sample_rate
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int, window: tuple[int, int] | None = None) -> AudioItem:
        """Decode row ``index`` (only ``(start, frames)`` of it when given); failures become markers."""
        from cm_cli.data.audio import load_audio, load_audio_window

        try:
            if window is None:
                wave, _ = load_audio(self.paths[index], sample_rate=self.sample_rate)
            else:
                wave = load_audio_window(self.paths[index], *window, sample_rate=self.sample_rate)
        except CmError as exc:
            return AudioItem(index, None, exc.message)
        except Exception as exc:  # decoder crash on a corrupt file
            return AudioItem(index, None, f"{self.paths[index]}: {type(exc).__name__}: {exc}")
        return AudioItem(index, wave)

    def __getitem__(self, index: int) -> AudioItem:
        item = self.read(index)
        if item.wave is None:
            return item
        wave = item.wave
        if self.transform is not None:
            wave = self.transform(wave, index)
        return AudioItem(index, np.ascontiguousarray(wave, dtype=np.float32))

    def durations(self) -> np.ndarray:
        """Seconds per row: the manifest's probed durations, else file sizes as a proxy for ordering."""
        if "duration" in self.frame and self.frame["duration"].notna().all():
            return self.frame["duration"].to_numpy(dtype=np.float64)
        return np.array([p.stat().st_size if p.exists() else 0 for p in self.paths], dtype=np.float64)


@dataclass
class Batch:
    waves: "torch.Tensor"  # (B, T) float32, zero padded
    lengths: "torch.Tensor"  # (B,) int64, valid samples per row
    indices: "torch.Tensor"  # (B,) int64 row positions in the manifest frame
    failures: list[tuple[int, str]]  # (row index, message) of rows that could not be decoded
    conditions: list | None = None  # training: augmentation label per kept row (None: clean)

    def __len__(self) -> int:
        return int(self.indices.numel())

    def pin_memory(self) -> "Batch":
        """Page-locked copies of the tensors (called by a DataLoader with ``pin_memory=True``)."""
        return Batch(
            self.waves.pin_memory(),
            self.lengths.pin_memory(),
            self.indices.pin_memory(),
            self.failures,
            self.conditions,
        )


def collate_audio(items: Sequence[AudioItem]) -> Batch:
    import torch

    good = [it for it in items if it.wave is not None]
    failures = [(it.index, it.error or "unreadable") for it in items if it.wave is None]
    if not good:
        return Batch(torch.zeros(0, 0), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), failures)
    longest = max(len(it.wave) for it in good)
    waves = torch.zeros(len(good), longest, dtype=torch.float32)
    for row, it in enumerate(good):
        waves[row, : len(it.wave)] = torch.from_numpy(it.wave)
    lengths = torch.tensor([len(it.wave) for it in good], dtype=torch.long)
    indices = torch.tensor([it.index for it in good], dtype=torch.long)
    return Batch(waves, lengths, indices, failures)


def bucket_batches(
    durations: Sequence[float], batch_size: int, *, shuffle: bool, seed: int = 0, bucket_factor: int = 50
) -> list[list[int]]:
    """Batches of similar length (little padding), deterministic for a seed.

    Rows are shuffled, cut into windows of ``batch_size * bucket_factor``, sorted by
    length inside each window, batched, and the batches shuffled; without shuffling
    rows are simply sorted by length.
    """
    n = len(durations)
    if batch_size < 1:
        raise CmError(f"batch size must be at least 1, got {batch_size}")
    durations = np.asarray(durations, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if not shuffle:
        order = np.argsort(-durations, kind="stable")
        return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    order = rng.permutation(n)
    window = max(batch_size, batch_size * bucket_factor)
    batches: list[list[int]] = []
    for start in range(0, n, window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(-durations[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


class BucketBatchSampler:
    """A batch sampler over ``bucket_batches``; ``set_epoch`` reshuffles reproducibly."""

    def __init__(
        self,
        durations: Sequence[float],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        self.durations = np.asarray(durations, dtype=np.float64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        batches = bucket_batches(self.durations, self.batch_size, shuffle=self.shuffle, seed=self.seed + self.epoch)
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size] or batches
        if self.world_size > 1:  # every rank gets the same number of batches
            usable = len(batches) - len(batches) % self.world_size or len(batches)
            batches = batches[:usable][self.rank :: self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
