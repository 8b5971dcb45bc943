"""``feature_head_step`` is the step `cm train --features` takes, callable alone (what bench_gpu times)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("method", ["erm", "dann"])
def test_feature_head_step_is_the_runs_step_and_learns_a_planted_label(method):
    from cm_cli.training import features as feats
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.data import TrainData

    n, layers, dim = 64, 3, 8
    labels = np.array(["bonafide" if i % 2 else "spoof" for i in range(n)])
    frame = pd.DataFrame(
        {"utt_id": [f"u{i}" for i in range(n)], "label": labels, "domain": [["a", "b"][i % 4 // 2] for i in range(n)]}
    )
    rng = np.random.default_rng(0)
    values = rng.standard_normal((n, layers, dim)).astype(np.float32)
    values[:, 1, 0] += np.where(labels == "bonafide", 3.0, -3.0)  # the label lives in layer 1, feature 0
    cache = feats.FeatureSet(
        frame["utt_id"].to_numpy(dtype=str), values, ["layer_00", "layer_01", "layer_02"], "meanstd"
    )
    config = TrainConfig(
        method=method,
        backbone="wavlm",
        epochs=1,
        max_steps=200,
        batch_size=n,
        lr=1e-2,
        seed=0,
        head="32",
        domain_columns=["domain"] if method == "dann" else [],
    ).validate()
    data = TrainData(frame, None, None, {"domain": ["a", "b"]} if method == "dann" else {}, None)
    step = feats.feature_head_step(config, data, cache)
    assert step.__func__ is feats._FeatureTrainer._step  # the run's own step, not a copy
    trainer = step.__self__
    for _ in range(40):
        step(np.arange(n))
    assert trainer.state.step == 40 and len(trainer.state.history) == 40
    scores = feats._score(trainer.head, values, "cpu")
    assert scores[labels == "bonafide"].min() > scores[labels == "spoof"].max()
