"""torchrun integration: read RANK / WORLD_SIZE / LOCAL_RANK, start the process group, pick the device.

Under ``torchrun --nproc-per-node N cm train ...`` every process runs the same
command; rank 0 alone writes artifacts and the batch sampler gives each rank its
share of every epoch (``BucketBatchSampler(rank=, world_size=)``). Without those
variables training runs in one process.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from cm_cli.training.loop import DistInfo

__all__ = ["dist_from_env", "distributed", "wrap_ddp", "loss_skips_output_layer"]


def dist_from_env(environ=None) -> DistInfo:
    env = os.environ if environ is None else environ
    return DistInfo(rank=int(env.get("RANK", 0)), world_size=int(env.get("WORLD_SIZE", 1)))


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[tuple[DistInfo, str]]:
    """Yield (DistInfo, device string); sets up and tears down the process group when WORLD_SIZE > 1."""
    info = dist_from_env()
    if info.world_size <= 1:
        yield info, device
        return
    import torch
    import torch.distributed as tdist

    local = int(os.environ.get("LOCAL_RANK", info.rank))
    use_cuda = device not in ("cpu",) and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    started = False
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if use_cuda else "gloo")
        started = True
    try:
        yield info, device
    finally:
        if started:
            with contextlib.suppress(Exception):
                tdist.barrier()
            tdist.destroy_process_group()


def loss_skips_output_layer(config) -> bool:
    """True when ``--loss`` scores through its own head (OC-Softmax's cosine), so the model's output layer is unused.

    Decided once from the configuration: DDP then searches for unused parameters each
    step, which the common path (``--loss ce``) never pays for.
    """
    from cm_cli.training.methods.losses import score_head

    return score_head(config.loss) != "linear"


def wrap_ddp(module, device, config):
    """``DistributedDataParallel`` around the train module, tolerating the output layer a score head bypasses."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=loss_skips_output_layer(config),
    )
