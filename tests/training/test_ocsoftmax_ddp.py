"""OC-Softmax under DDP (issue 24 follow-up): the output layer its cosine head bypasses no longer stops DDP.

Two gloo ranks on CPU, each on half of a fixed global batch, must end where one process
on the whole batch ends: DDP averages the ranks' gradients, and the per-rank batches are
equal halves, so the average is the full batch's mean loss gradient.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, torch
    from cm_cli.models.model import build_model
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.distributed import distributed, wrap_ddp
    from cm_cli.training.loop import build_model_config
    from cm_cli.training.methods.losses import criterion
    from cm_cli.training.step import build_method, build_optimizer, train_module

    out = sys.argv[1]
    config = TrainConfig(method="erm", backbone="lcnn", corpus="toy", loss="ocsoftmax", epochs=1, batch_size=4,
                         lr=1e-2, max_len=1.0, seed=1)
    g = torch.Generator().manual_seed(7)
    waves, lengths = torch.randn(8, 16000, generator=g) * 0.1, torch.full((8,), 16000)
    labels = torch.tensor([1, 0, 1, 0, 0, 1, 0, 0])
    with distributed("cpu") as (dist, device):
        torch.manual_seed(1)
        model = build_model(build_model_config(config))
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        module = train_module(model, None, None, build_method(config, {}, 2), criterion(config.loss))
        optimizer = build_optimizer(module, config)
        net = wrap_ddp(module, torch.device(device), config) if dist.world_size > 1 else module
        module.eval()  # dropout off, batch norm on running statistics: the halves' gradients add up to the whole's
        n = 8 // dist.world_size
        share = slice(dist.rank * n, (dist.rank + 1) * n)
        for step in range(2):  # without the fix DDP raises at the second step (a parameter never reduced)
            _, loss, terms = net((waves[share], lengths[share]), labels[share], {}, step)
            (loss + terms.total).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if dist.rank == 0:
            torch.save({"initial": initial, "final": model.state_dict()}, out)
    print("RANK", dist.rank, dist.world_size, "done")
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(script, out, world_size: int) -> None:
    port = _free_port()
    procs = []
    for rank in range(world_size):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        if world_size > 1:
            env.update(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE=str(world_size),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
            )
        else:
            for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
                env.pop(key, None)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)


@pytest.mark.slow
def test_two_rank_ocsoftmax_lcnn_equals_one_process_on_the_global_batch(tmp_path):
    import torch

    script = tmp_path / "oc_ddp.py"
    script.write_text(SCRIPT)
    _launch(script, tmp_path / "two.pt", 2)
    _launch(script, tmp_path / "one.pt", 1)
    two, one = torch.load(tmp_path / "two.pt"), torch.load(tmp_path / "one.pt")
    moved = 0
    for name, value in one["final"].items():
        torch.testing.assert_close(two["final"][name], value, rtol=1e-4, atol=1e-6, msg=name)
        if value.is_floating_point() and not torch.equal(value, one["initial"][name]):
            moved += 1
    assert moved > 4  # the backbone and the cosine direction trained
    assert not torch.equal(one["final"]["score_head.direction"], one["initial"]["score_head.direction"])
    out_layer = [k for k in one["final"] if k.endswith("out_layer.weight")]
    assert out_layer and torch.equal(two["final"][out_layer[0]], two["initial"][out_layer[0]])  # bypassed: untouched
