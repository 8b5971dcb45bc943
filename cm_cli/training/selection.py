"""Model selection during training: score the dev split, keep the best checkpoint, stop early.

Dev scoring is ``cm_cli.training.validation.score_shard`` (the one model path: it
pads as ``cm eval`` does, shards rows ``rank::world_size`` and gathers the scores, so
every rank selects the same checkpoint), called from exactly one place,
``Validator.validate``. A ``Validator`` lives for one run: it builds each dev frame's
shard and loader once, so the ``--workers`` processes that decode dev audio start at the
first validation and are reused by every later one (pinned memory on CUDA), as the
training loader's are. ``dev_result`` gives the same metrics for scores computed
elsewhere (feature heads).
"""

from __future__ import annotations

import numpy as np

from cm_cli.training.state import TrainState

__all__ = ["Validator", "dev_result"]


def dev_result(scores: np.ndarray, is_bona: np.ndarray) -> dict:
    """``dev_eer``, ``dev_min_dcf`` (p_spoof 0.05, c_miss 1, c_fa 10), ``dev_eer_threshold``, ``n``.

    NaN rows are skipped.
    """
    from cm_cli.training.validation import dev_metrics

    keep = ~np.isnan(scores)
    out = {
        "dev_eer": float("nan"),
        "dev_min_dcf": float("nan"),
        "dev_eer_threshold": float("nan"),
        "n": int(keep.sum()),
    }
    if is_bona[keep].all() or not is_bona[keep].any():
        return out
    m = dev_metrics(scores[keep], is_bona[keep])
    out.update(dev_eer=m.eer, dev_min_dcf=m.min_dcf, dev_eer_threshold=m.eer_threshold)
    return out


class Validator:
    """Dev scoring for one training run: the dev (and coded dev) shards and their loaders, built once."""

    def __init__(self, data, config, *, data_root, device, rank: int = 0, world_size: int = 1):
        import torch

        from cm_cli.training.validation import dev_shard

        self.config = config
        self.device = torch.device(device)
        self.shards: dict = {}
        if data.dev is None:
            return
        for prefix, frame in (("dev_", data.dev), ("dev_coded_", data.coded_dev)):
            if frame is not None:
                self.shards[prefix] = dev_shard(
                    frame,
                    data_root=data_root,
                    batch_size=config.batch_size,
                    workers=config.workers,
                    rank=rank,
                    world_size=world_size,
                    persistent=True,
                    pin_memory=self.device.type == "cuda",
                )

    def validate(self, model, state: TrainState) -> dict | None:
        """Score dev (and the coded dev set, if any); update the best-so-far. None without a dev split."""
        from cm_cli.training.validation import score_shard

        if not self.shards:
            return None
        result: dict = {}
        for prefix, shard in self.shards.items():
            scored = score_shard(model, shard, device=self.device, autocast=self.config.bf16)
            if prefix == "dev_":
                result.update(scored)
            else:
                result.update(dev_coded_eer=scored["dev_eer"], dev_coded_min_dcf=scored["dev_min_dcf"])
        result["improved"] = state.select(result)
        return result

    def close(self) -> None:
        """End the dev loaders' worker processes (the validator is spent)."""
        for shard in self.shards.values():
            shard.close()
