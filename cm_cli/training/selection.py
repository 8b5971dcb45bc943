"""Model selection during training: score the dev split, keep the best checkpoint, stop early.

``_evaluate_dev`` has the signature and result keys of the shared
``cm_cli.training.validation.evaluate_dev`` (one model path, see docs/DESIGN.md) and is
called from exactly one place, ``validate``; when the shared function lands it replaces
this one. It pads exactly as ``cm eval`` does (``cm_cli.scoring``), shards rows
``rank::world_size`` and gathers the scores, so every rank selects the same checkpoint.
"""

from __future__ import annotations

import numpy as np

from cm_cli.training.state import TrainState

__all__ = ["validate"]


def _gather(scores: np.ndarray, world_size: int) -> np.ndarray:
    """Element-wise combination of each rank's scores (NaN where a rank did not score a row)."""
    if world_size <= 1:
        return scores
    import torch.distributed as tdist

    if not tdist.is_available() or not tdist.is_initialized():
        return scores
    parts: list = [None] * world_size
    tdist.all_gather_object(parts, scores)
    out = np.full_like(scores, np.nan)
    for part in parts:
        out = np.where(np.isnan(out), part, out)
    return out


def _evaluate_dev(model, frame, *, data_root, device, batch_size: int, workers: int = 0, autocast: bool = False,
                  rank: int = 0, world_size: int = 1) -> dict:
    """``dev_eer``, ``dev_min_dcf``, ``dev_eer_threshold`` and ``n`` of ``model`` on ``frame``."""
    import torch
    from torch.utils.data import DataLoader

    from cm_cli.data.datasets import ManifestAudio, bucket_batches, collate_audio
    from cm_cli.metrics.dcf import CostParams, min_dcf_from_curve
    from cm_cli.metrics.det import det_curve
    from cm_cli.metrics.summary import eer_from_curve
    from cm_cli.scoring import _forward_scores
    from cm_cli.training.step import autocast as autocast_ctx

    device = torch.device(device)
    dataset = ManifestAudio(frame, data_root=data_root)
    mine = np.arange(rank, len(frame), max(1, world_size))
    durations = dataset.durations()[mine]
    batches = [mine[b].tolist() for b in bucket_batches(durations, batch_size, shuffle=False)]
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate_audio, num_workers=workers,
                        pin_memory=device.type == "cuda")
    scores = np.full(len(frame), np.nan)
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            if len(batch) == 0:
                continue
            waves = [batch.waves[r, : int(batch.lengths[r])] for r in range(len(batch))]
            with autocast_ctx(device, autocast):
                values = _forward_scores(model, waves, device=device, full_length=False, streaming=False)
            scores[batch.indices.numpy()] = values
    finally:
        model.train(was_training)
    scores = _gather(scores, world_size)
    keep = ~np.isnan(scores)
    is_bona = frame["label"].astype(str).to_numpy() == "bonafide"
    if is_bona[keep].all() or not is_bona[keep].any():
        return {"dev_eer": float("nan"), "dev_min_dcf": float("nan"), "dev_eer_threshold": float("nan"),
                "n": int(keep.sum())}
    curve = det_curve(scores[keep & is_bona], scores[keep & ~is_bona])
    eer, threshold = eer_from_curve(curve)
    min_dcf = float(min_dcf_from_curve(curve, CostParams(0.05, 1.0, 10.0))[0])
    return {"dev_eer": eer, "dev_min_dcf": min_dcf, "dev_eer_threshold": threshold, "n": int(keep.sum())}


def validate(model, data, state: TrainState, *, config, data_root, device, rank: int = 0,
             world_size: int = 1) -> dict | None:
    """Score dev (and the coded dev set, if any); update the best-so-far. None without a dev split."""
    if data.dev is None:
        return None
    result: dict = {}
    for prefix, frame in (("dev_", data.dev), ("dev_coded_", data.coded_dev)):
        if frame is None:
            continue
        scored = _evaluate_dev(model, frame, data_root=data_root, device=device, batch_size=config.batch_size,
                               workers=config.workers, autocast=config.bf16, rank=rank, world_size=world_size)
        if prefix == "dev_":
            result.update(scored)
        else:
            result.update(dev_coded_eer=scored["dev_eer"], dev_coded_min_dcf=scored["dev_min_dcf"])
    result["improved"] = state.select(result)
    return result
