"""Model selection during training: score the dev split, keep the best checkpoint, stop early.

Dev scoring is ``cm_cli.training.validation.evaluate_dev`` (the one model path: it
pads as ``cm eval`` does, shards rows ``rank::world_size`` and gathers the scores, so
every rank selects the same checkpoint), called from exactly one place, ``validate``.
``dev_result`` gives the same metrics for scores computed elsewhere (feature heads).
"""

from __future__ import annotations

import numpy as np

from cm_cli.training.state import TrainState

__all__ = ["validate", "dev_result"]


def dev_result(scores: np.ndarray, is_bona: np.ndarray) -> dict:
    """``dev_eer``, ``dev_min_dcf`` (p_spoof 0.05, c_miss 1, c_fa 10), ``dev_eer_threshold``, ``n``; NaN rows skipped."""
    from cm_cli.training.validation import dev_metrics

    keep = ~np.isnan(scores)
    out = {"dev_eer": float("nan"), "dev_min_dcf": float("nan"), "dev_eer_threshold": float("nan"),
           "n": int(keep.sum())}
    if is_bona[keep].all() or not is_bona[keep].any():
        return out
    m = dev_metrics(scores[keep], is_bona[keep])
    out.update(dev_eer=m.eer, dev_min_dcf=m.min_dcf, dev_eer_threshold=m.eer_threshold)
    return out


def validate(model, data, state: TrainState, *, config, data_root, device, rank: int = 0,
             world_size: int = 1) -> dict | None:
    """Score dev (and the coded dev set, if any); update the best-so-far. None without a dev split."""
    from cm_cli.training.validation import evaluate_dev

    if data.dev is None:
        return None
    result: dict = {}
    for prefix, frame in (("dev_", data.dev), ("dev_coded_", data.coded_dev)):
        if frame is None:
            continue
        scored = evaluate_dev(model, frame, data_root=data_root, device=device, batch_size=config.batch_size,
                               workers=config.workers, autocast=config.bf16, rank=rank, world_size=world_size)
        if prefix == "dev_":
            result.update(scored)
        else:
            result.update(dev_coded_eer=scored["dev_eer"], dev_coded_min_dcf=scored["dev_min_dcf"])
    result["improved"] = state.select(result)
    return result
