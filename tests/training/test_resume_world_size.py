"""A run saved by N processes is not silently continued by another number (issue 13.10)."""

from __future__ import annotations

import pytest

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig
from cm_cli.training.run import train_run


def test_resume_on_another_world_size_is_refused(toy_tiny, tmp_path):
    import torch

    root, manifest = toy_tiny
    config = TrainConfig(backbone="lcnn", corpus="toy", epochs=2, batch_size=8, lr=1e-3, max_len=1.0, seed=1)
    out = tmp_path / "run"
    part = train_run(config, manifest, out, data_root=root, stop_requested=lambda step: step >= 2)
    assert part.status == "interrupted"
    last = out / "checkpoints/last.pt"
    payload = torch.load(last, weights_only=True)
    assert payload["training"]["world_size"] == 1
    total = payload["training"]["total_steps"]
    assert payload["scheduler"]["total_steps"] == total
    payload["training"]["world_size"] = 2  # as if saved under torchrun --nproc-per-node 2
    torch.save(payload, last)
    with pytest.raises(CmError, match=rf"trained on 2 process\(es\) and is being resumed on 1.*\({total}\)") as info:
        train_run(config, manifest, out, data_root=root, resume=True)
    assert "--nproc-per-node 2" in info.value.hint
    payload["training"]["world_size"] = 1
    torch.save(payload, last)
    resumed = train_run(config, manifest, out, data_root=root, resume=True)
    assert resumed.status == "complete" and resumed.resumed
