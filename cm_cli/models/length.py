"""Length policies: bring a batch of variable-length waveforms to the length a model expects.

AASIST was trained on 64,600-sample inputs made by repeating short utterances and
cropping long ones; SSL front ends take any length. The policy is part of the model
config so training, scoring and embedding treat audio the same way.

Policies (``target`` in samples):
- ``full``: keep every utterance whole; the batch is right-padded with zeros to its longest.
- ``crop``: longer than target -> a window of target samples (``crop_mode`` ``random`` or
  ``centre``); shorter -> zero-padded (the true length is kept for masking).
- ``repeat``: shorter -> tiled until target, longer -> cropped (as ``crop``); every output is
  exactly ``target`` samples of signal (official AASIST front-end policy).
- ``zero``: shorter -> zero-padded, longer -> cropped; true lengths kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from cm_cli.core.errors import CmError

__all__ = ["LengthPolicy", "LENGTH_POLICIES", "apply_length_policy", "fit_length"]

LENGTH_POLICIES = ("full", "crop", "repeat", "zero")
CROP_MODES = ("random", "centre")


@dataclass(frozen=True)
class LengthPolicy:
    """How to bring waveforms to a common length (see the module docstring)."""

    policy: str = "full"
    target: int | None = None
    crop_mode: str = "centre"

    def __post_init__(self):
        if self.policy not in LENGTH_POLICIES:
            raise CmError(f"unknown length policy {self.policy!r}", hint=f"choose one of {', '.join(LENGTH_POLICIES)}")
        if self.crop_mode not in CROP_MODES:
            raise CmError(f"unknown crop mode {self.crop_mode!r}", hint=f"choose one of {', '.join(CROP_MODES)}")
        if self.policy != "full" and (self.target is None or self.target <= 0):
            raise CmError(f"length policy {self.policy!r} needs a positive target length in samples")


def fit_length(wave, target: int, *, policy: str, crop_mode: str = "centre", generator=None):
    """One 1-D waveform -> (``[target]`` tensor, number of real samples in it)."""
    import torch

    n = int(wave.shape[-1])
    if n >= target:
        if crop_mode == "random" and n > target:
            start = int(torch.randint(0, n - target + 1, (1,), generator=generator).item())
        else:
            start = (n - target) // 2
        return wave[start : start + target], target
    if n == 0:
        return wave.new_zeros(target), 0
    if policy == "repeat":
        reps = -(-target // n)
        return wave.repeat(reps)[:target], target
    out = wave.new_zeros(target)
    out[:n] = wave
    return out, n


def apply_length_policy(waves, policy: LengthPolicy, *, generator=None):
    """A list of 1-D tensors -> (batch ``[B, T]``, lengths ``[B]`` long tensor of real samples)."""
    import torch

    if not waves:
        raise CmError("empty batch: no waveforms to bring to a common length")
    if policy.policy == "full":
        longest = max(int(w.shape[-1]) for w in waves)
        batch = waves[0].new_zeros(len(waves), longest)
        lengths = torch.zeros(len(waves), dtype=torch.long)
        for i, w in enumerate(waves):
            batch[i, : w.shape[-1]] = w
            lengths[i] = int(w.shape[-1])
        return batch, lengths
    fitted = [
        fit_length(w, policy.target, policy=policy.policy, crop_mode=policy.crop_mode, generator=generator)
        for w in waves
    ]
    batch = torch.stack([f[0] for f in fitted])
    lengths = torch.tensor([f[1] for f in fitted], dtype=torch.long)
    return batch, lengths
