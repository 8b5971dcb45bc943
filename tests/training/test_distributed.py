"""DDP on CPU: two processes with the gloo backend, started the way torchrun starts them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, torch
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.distributed import distributed
    from cm_cli.training.run import train_run

    root, manifest, out, method = sys.argv[1:5]
    extra = {"sam_rho": 0.05} if method == "coral" else {}
    if method == "ocsoftmax":  # LCNN's own output layer is bypassed by the cosine head
        method, extra = "erm", {"loss": "ocsoftmax"}
    config = TrainConfig(method=method, backbone="lcnn", corpus="toy", epochs=1, max_steps=2, batch_size=4,
                         lr=1e-3, max_len=1.0, seed=1, augment="clean:0.5, telephony:0.5",
                         domain_columns=["domain"], lambda_schedule="constant", lambda_max=0.5, **extra)
    with distributed("cpu") as (dist, device):
        outcome = train_run(config, manifest, out, data_root=root, device=device, dist=dist)
    print("RANK", dist.rank, dist.world_size, outcome.status, outcome.summary["step"])
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
# coral runs wrapped in SAM: the two-pass step under DDP; ocsoftmax: erm with a parameter the loss never reaches
@pytest.mark.parametrize("method", ["dann", "coral", "ocsoftmax"])
def test_two_process_gloo_training_writes_one_run(toy_tiny, tmp_path, method):
    import pandas as pd

    root, manifest = toy_tiny
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(root), str(manifest), str(tmp_path / "run"), method],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    assert "RANK 0 2 complete 2" in outputs[0] and "RANK 1 2 complete 2" in outputs[1]
    history = pd.read_parquet(tmp_path / "run/history.parquet")
    assert len(history) == 2
    if method == "dann":
        assert history["adv_grad_norm"].notna().all()
    elif method == "coral":  # 4 rows per rank: a step whose groups all have < 2 rows skips the term and counts it
        assert (history["loss_coral"].notna() | (history["coral_skipped"] > 0)).all()
    assert (tmp_path / "run/checkpoints/best.pt").is_file()
    assert not list(tmp_path.glob("run/*.lock")) and not list(tmp_path.glob("run/.*.lock"))
