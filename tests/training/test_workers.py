"""Loader workers change speed, never results: --workers 0 and 2 give the same weights, history and dev metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cm_cli.training.config import TrainConfig
from cm_cli.training.run import train_run


def test_workers_0_and_2_give_bit_identical_weights(toy_tiny, tmp_path):
    import torch

    root, manifest = toy_tiny
    runs = {}
    for workers in (0, 2):
        # augmentation and random crops draw per item: their RNG must not depend on the worker
        config = TrainConfig(
            method="dann",
            backbone="lcnn",
            corpus="toy",
            epochs=2,
            batch_size=8,
            lr=1e-3,
            max_len=0.5,
            seed=5,
            augment="clean:0.4, alaw:0.3, telephony:0.3",
            domain_columns=["domain"],
            lambda_schedule="constant",
            lambda_max=0.5,
            workers=workers,
        )
        out = tmp_path / f"w{workers}"
        outcome = train_run(config, manifest, out, data_root=root, cache_dir=tmp_path / f"cache{workers}")
        assert outcome.status == "complete"
        runs[workers] = out
    a = torch.load(runs[0] / "checkpoints/last.pt", weights_only=True)
    b = torch.load(runs[2] / "checkpoints/last.pt", weights_only=True)
    assert a["step"] == b["step"] > 2
    for key in a["state_dict"]:
        assert np.array_equal(a["state_dict"][key].numpy(), b["state_dict"][key].numpy()), key
    for key in a["training"]["heads"]:
        assert torch.equal(a["training"]["heads"][key], b["training"]["heads"][key]), key
    h0, h2 = pd.read_parquet(runs[0] / "history.parquet"), pd.read_parquet(runs[2] / "history.parquet")
    pd.testing.assert_frame_equal(h0, h2)
    # the validation pass (its own persistent workers with --workers 2) scores the same dev set the same way
    validated = h0["dev_eer"].notna()
    assert validated.sum() == 2  # once per epoch
    for column in ("dev_eer", "dev_min_dcf", "dev_eer_threshold"):
        assert h2.loc[validated, column].notna().all(), column
        assert np.array_equal(h0.loc[validated, column].to_numpy(), h2.loc[validated, column].to_numpy()), column
