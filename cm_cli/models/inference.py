"""One way to run a model over audio: the batch iterator and the one padding rule every caller shares.

Training validation, ``cm eval`` scoring, ``cm embed`` and ``cm patch`` all feed
utterances to a model through ``model_inputs``, so a dev EER seen during training and
the EER ``cm eval`` reports come from the same inputs. The rule is the model's own
length policy (``ModelConfig.length``, DESIGN.md), applied per utterance:

- ``repeat`` (AASIST, SSL-AASIST: 64,600 samples): shorter audio is tiled to the target,
  longer audio centre-cropped to it (or kept whole with ``keep_long``);
- ``zero`` / ``crop``: shorter audio is zero-padded to the target (its true length is
  passed on for masking), longer audio centre-cropped (or kept whole with ``keep_long``);
  random crops are a training-time augmentation and never used here;
- ``full``: the utterance as it is.

Audio shorter than the front end can analyse (``minimum_samples``: its receptive field,
at least 400 samples = 25 ms) is zero-padded to it unless the policy already tiles it.
Rows are batched only with rows of the same fitted length when the policy fixes the
length (the fixed-length models do not mask padding), so a row scores the same alone
or in any batch; ``full``-policy models take right-padded batches with true lengths.

Decoding is ``AudioBatches``: one loader over one frame, iterated once by ``cm eval``,
``cm embed`` and ``cm patch`` (``iter_audio_batches``) and once per validation by
``cm train``, which keeps its worker processes alive for the whole run so a validation
never pays for starting them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

__all__ = [
    "MIN_SAMPLES",
    "AudioBatch",
    "InputGroup",
    "inference_policy",
    "minimum_samples",
    "fit_wave",
    "model_inputs",
    "forward_scores",
    "AudioBatches",
    "iter_audio_batches",
    "shard_rows",
]

MIN_SAMPLES = 400  # 25 ms at 16 kHz: one analysis frame of every front end cm ships


@dataclass
class AudioBatch:
    """Decoded rows of a manifest: ``waves[i]`` (1-D float32 tensor, real length) belongs to row ``indices[i]``."""

    indices: list[int]
    waves: list
    failures: list[tuple[int, str]] = field(default_factory=list)  # (row, message) of undecodable rows


@dataclass
class InputGroup:
    """Rows of one forward pass: ``positions`` into the list of waves given, ``batch [B, T]``, ``lengths [B]``."""

    positions: list[int]
    batch: "torch.Tensor"
    lengths: "torch.Tensor"


def inference_policy(model):
    """The model's length policy as used at inference (random crops become centre crops)."""
    from cm_cli.models.length import LengthPolicy

    policy = model.config.length
    if policy.policy == "crop" and policy.crop_mode != "centre":
        return LengthPolicy("crop", policy.target, "centre")
    return policy


def minimum_samples(model) -> int:
    """Fewest samples the model's front end accepts: its receptive field (from its bundle), at least ``MIN_SAMPLES``."""
    return max(MIN_SAMPLES, int(model.bundle.receptive_field(model)))


def fit_wave(wave, policy, *, minimum: int, keep_long: bool = False):
    """One 1-D tensor -> (fitted tensor, number of real samples) under ``policy`` (module docstring)."""
    import torch

    n = int(wave.shape[-1])
    target = policy.target
    if policy.policy == "repeat" and n > 0:
        if n >= target:
            if keep_long or n == target:
                return wave, n
            start = (n - target) // 2
            return wave[start : start + target], target
        reps = -(-target // n)
        wave = wave.repeat(reps)[:target]
        n = target
        if n >= minimum:
            return wave, n
    if n < minimum:  # too short for one frame of the front end: zero-pad, the padding counted as signal
        wave = torch.nn.functional.pad(wave, (0, minimum - n))
        n = minimum
    if policy.policy == "full" or n == target or (keep_long and n > target):
        return wave, n
    if n > target:
        start = (n - target) // 2
        return wave[start : start + target], target
    out = wave.new_zeros(target)
    out[:n] = wave
    return out, n


def model_inputs(model, waves: Sequence, *, keep_long: bool = False, pin_memory: bool = False) -> list[InputGroup]:
    """Fit ``waves`` by the model's policy and group them into forward passes (see the module docstring).

    ``pin_memory`` builds each batch in page-locked memory (CUDA only), so the copy to the
    GPU need not be staged through a pageable buffer.
    """
    import torch

    policy = inference_policy(model)
    minimum = minimum_samples(model)
    fitted = [fit_wave(w, policy, minimum=minimum, keep_long=keep_long) for w in waves]
    if policy.policy == "full":
        groups = {0: list(range(len(fitted)))}
    else:
        groups: dict[int, list[int]] = {}
        for i, (w, _) in enumerate(fitted):
            groups.setdefault(int(w.shape[-1]), []).append(i)
    out = []
    for positions in groups.values():
        longest = max(int(fitted[i][0].shape[-1]) for i in positions)
        first = fitted[positions[0]][0]
        batch = torch.zeros(len(positions), longest, dtype=first.dtype, pin_memory=pin_memory)
        for row, i in enumerate(positions):
            batch[row, : fitted[i][0].shape[-1]] = fitted[i][0]
        lengths = torch.tensor([fitted[i][1] for i in positions], dtype=torch.long)
        out.append(InputGroup(positions, batch, lengths))
    return out


def forward_scores(
    model, waves: Sequence, *, device: Any = "cpu", keep_long: bool = False, autocast_dtype: Any = None
) -> np.ndarray:
    """Scores (float64, higher = more bona fide) of ``waves`` in the order given."""
    import torch

    device = torch.device(device)
    pinned = device.type == "cuda"
    scores = np.full(len(waves), np.nan)
    with torch.inference_mode():
        for group in model_inputs(model, waves, keep_long=keep_long, pin_memory=pinned):
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                out = model(group.batch.to(device, non_blocking=pinned), group.lengths.to(device))
            scores[group.positions] = out.score.float().cpu().numpy().astype(np.float64)
    return scores


def shard_rows(n: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """Row positions a rank scores: ``rank::world_size`` (every row exactly once across ranks)."""
    return np.arange(n)[rank :: max(1, world_size)]


class AudioBatches:
    """Decoded length-bucketed batches (longest first) of one manifest frame, as often as it is iterated.

    One ``DataLoader`` over the frame; its worker seeds come from a private generator, so
    iterating never draws from the global torch RNG (dev scoring leaves training's
    randomness alone). ``persistent=True`` starts the ``workers`` processes at the first
    pass and reuses them for every later one, until ``close``; ``pin_memory`` page-locks
    the decoded batches (CUDA). Undecodable rows come back in ``AudioBatch.failures``.
    """

    def __init__(
        self,
        frame: "pd.DataFrame",
        *,
        data_root: str | Path | None,
        batch_size: int,
        transform: Callable | None = None,
        workers: int = 0,
        persistent: bool = False,
        pin_memory: bool = False,
    ):
        import torch
        from torch.utils.data import DataLoader

        from cm_cli.data.datasets import BucketBatchSampler, ManifestAudio, collate_audio

        dataset = ManifestAudio(frame, data_root=data_root, transform=transform)
        sampler = BucketBatchSampler(dataset.durations(), batch_size, shuffle=False)
        generator = torch.Generator()
        generator.manual_seed(0)
        extra = {"persistent_workers": True} if persistent and workers > 0 else {}
        self.loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_audio,
            num_workers=int(workers),
            pin_memory=bool(pin_memory),
            generator=generator,
            **extra,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[AudioBatch]:
        if self.loader is None:
            raise RuntimeError("AudioBatches used after close()")
        for batch in self.loader:
            waves = [batch.waves[r, : int(batch.lengths[r])] for r in range(len(batch))]
            yield AudioBatch(batch.indices.tolist(), waves, list(batch.failures))

    def close(self) -> None:
        """Stop persistent worker processes now (dropping the loader ends them); the object is spent."""
        self.loader = None


def iter_audio_batches(
    frame: "pd.DataFrame",
    *,
    data_root: str | Path | None,
    batch_size: int,
    transform: Callable | None = None,
    workers: int = 0,
) -> Iterator[AudioBatch]:
    """One pass of ``AudioBatches`` over ``frame`` (its workers end with the pass)."""
    yield from AudioBatches(frame, data_root=data_root, batch_size=batch_size, transform=transform, workers=workers)
