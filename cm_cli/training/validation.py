"""Dev-set scoring and metrics for model selection: the same inputs and definitions as ``cm eval``.

``evaluate_dev`` scores the dev rows through ``cm_cli.models.inference`` (the model's own
length policy, as ``cm eval --run`` does), each rank its share ``rank::world_size``, and
gathers the scores so every rank sees the same EER. A ``DevShard`` holds one rank's share
and its loader: ``cm train`` builds one per dev frame and run (``persistent=True``), so its
``--workers`` decoding processes start once and serve every validation. EER, its threshold and minDCF come
from one DET curve (``cm_cli.metrics``); scores are higher = more bona fide. A split
without both classes cannot select a model: ``usable_dev`` says why, and the loop then
trains without early stopping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DevMetrics",
    "dev_metrics",
    "usable_dev",
    "DevShard",
    "dev_shard",
    "score_shard",
    "evaluate_dev",
    "score_batches",
]


@dataclass(frozen=True)
class DevMetrics:
    eer: float
    min_dcf: float
    n_bonafide: int
    n_spoof: int
    eer_threshold: float = float("nan")


def dev_metrics(scores: np.ndarray, is_bonafide: np.ndarray) -> DevMetrics:
    """EER and minDCF (p_spoof 0.05, c_miss 1, c_fa 10) of scores against bona fide flags."""
    from cm_cli.metrics.dcf import CostParams, min_dcf_from_curve
    from cm_cli.metrics.det import det_from_sorted
    from cm_cli.metrics.summary import eer_from_curve
    from cm_cli.metrics.trials import from_pools

    scores = np.asarray(scores, dtype=np.float64)
    is_bonafide = np.asarray(is_bonafide, dtype=bool)
    curve = det_from_sorted(from_pools(scores[is_bonafide], scores[~is_bonafide]))
    eer, threshold = eer_from_curve(curve)
    dcf = float(min_dcf_from_curve(curve, CostParams(0.05, 1.0, 10.0))[0])
    return DevMetrics(eer, dcf, int(is_bonafide.sum()), int((~is_bonafide).sum()), threshold)


def usable_dev(labels) -> str | None:
    """None if a dev split with these labels can select a model, else the reason it cannot."""
    values = set(labels)
    if not values:
        return "no dev split"
    if len(values & {"bonafide", "spoof"}) < 2:
        return f"the dev split has only {', '.join(sorted(values))} utterances"
    return None


def score_batches(model, batches, n: int, *, device, autocast: bool = False) -> tuple[np.ndarray, int]:
    """Scores of the ``n`` rows ``batches`` (``AudioBatches``) decode (NaN: undecodable), and how many failed."""
    import torch

    from cm_cli.models.inference import forward_scores

    device = torch.device(device)
    dtype = torch.bfloat16 if autocast and device.type == "cuda" else None
    scores = np.full(n, np.nan)
    failed = 0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            failed += len(batch.failures)
            if batch.indices:
                scores[batch.indices] = forward_scores(model, batch.waves, device=device, autocast_dtype=dtype)
    finally:
        model.train(was_training)
    return scores, failed


@dataclass
class DevShard:
    """One rank's rows (``positions``, ``rank::world_size``) of a dev frame of ``n`` rows, and their loader."""

    n: int
    positions: np.ndarray
    is_bonafide: np.ndarray  # per row of the whole frame
    batches: object  # cm_cli.models.inference.AudioBatches over the rank's rows
    world_size: int = 1

    def close(self) -> None:
        self.batches.close()


def dev_shard(
    frame,
    *,
    data_root,
    batch_size: int,
    workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    persistent: bool = False,
    pin_memory: bool = False,
) -> DevShard:
    """This rank's share of ``frame`` with its loader (``persistent``: workers kept between validations)."""
    from cm_cli.models.inference import AudioBatches, shard_rows

    frame = frame.reset_index(drop=True)
    positions = shard_rows(len(frame), rank, world_size)
    batches = AudioBatches(
        frame.iloc[positions].reset_index(drop=True),
        data_root=data_root,
        batch_size=batch_size,
        workers=workers,
        persistent=persistent,
        pin_memory=pin_memory,
    )
    return DevShard(len(frame), positions, frame["label"].astype(str).to_numpy() == "bonafide", batches, world_size)


def _gather(values: np.ndarray, positions: np.ndarray, failed: int, n: int, world_size: int):
    """All ranks' (positions, scores) put back in row order; failures summed."""
    if world_size <= 1:
        out = np.full(n, np.nan)
        out[positions] = values
        return out, failed
    import torch.distributed as tdist

    parts: list = [None] * world_size
    tdist.all_gather_object(parts, (positions.tolist(), values.tolist(), int(failed)))
    out = np.full(n, np.nan)
    for pos, vals, _ in parts:
        out[np.asarray(pos, dtype=np.int64)] = np.asarray(vals, dtype=np.float64)
    return out, sum(p[2] for p in parts)


def score_shard(model, shard: DevShard, *, device, autocast: bool = False) -> dict:
    """``dev_eer``, ``dev_min_dcf``, ``dev_eer_threshold``, ``n``, ``n_failed`` of ``model`` over every rank's shard.

    With ``shard.world_size > 1`` the scores are gathered over the initialised process
    group, so every rank returns the same numbers. Metrics are NaN when the scored rows
    lack a class.
    """
    mine, failed = score_batches(model, shard.batches, len(shard.positions), device=device, autocast=autocast)
    scores, failed = _gather(mine, shard.positions, failed, shard.n, shard.world_size)
    keep = ~np.isnan(scores)
    is_bona = shard.is_bonafide
    out = {
        "dev_eer": float("nan"),
        "dev_min_dcf": float("nan"),
        "dev_eer_threshold": float("nan"),
        "n": int(keep.sum()),
        "n_failed": int(failed),
    }
    if is_bona[keep].all() or not is_bona[keep].any():
        return out
    m = dev_metrics(scores[keep], is_bona[keep])
    out.update(dev_eer=m.eer, dev_min_dcf=m.min_dcf, dev_eer_threshold=m.eer_threshold)
    return out


def evaluate_dev(
    model,
    frame,
    *,
    data_root,
    device,
    batch_size: int,
    workers: int = 0,
    autocast: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> dict:
    """``score_shard`` of a one-off shard of ``frame`` (rows ``rank::world_size``; its workers end with it)."""
    shard = dev_shard(
        frame, data_root=data_root, batch_size=batch_size, workers=workers, rank=rank, world_size=world_size
    )
    try:
        return score_shard(model, shard, device=device, autocast=autocast)
    finally:
        shard.close()
