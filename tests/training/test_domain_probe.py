"""Evidence that DANN acts on the representation: a domain probe on the shared representation
(``pre_logit``) of a DANN run is less accurate than on an ERM run trained the same way."""

from __future__ import annotations

import numpy as np
import pytest

AUG = "clean:0.34, alaw:0.33, telephony:0.33"
CONDITIONS = ("clean", "alaw", "telephony")


def _train(method, toy, out, cache):
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.run import train_run

    root, manifest = toy
    config = TrainConfig(method=method, backbone="lcnn", corpus="toy", epochs=12, batch_size=8, lr=1e-3,
                         weight_decay=1e-4, max_len=1.5, seed=0, augment=AUG,
                         domain_columns=["domain"] if method == "dann" else [], lambda_schedule="constant",
                         lambda_max=1.0, domain_lr_mult=10.0, domain_hidden=0)
    train_run(config, manifest, out, data_root=root, cache_dir=cache)
    return out


def _probe_accuracy(run_dir, samples) -> float:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from cm_cli.models.loading import load_model

    model = load_model(run_dir).model
    with torch.no_grad():
        feats = [model(torch.from_numpy(w)[None], torch.tensor([len(w)])).pre_logit[0].numpy() for w, _ in samples]
    labels = np.array([c for _, c in samples])
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(probe, np.stack(feats), labels, cv=folds).mean())


@pytest.mark.slow
def test_domain_probe_is_weaker_on_dann_than_on_erm(toy_tiny, tmp_path):
    import pandas as pd

    from cm_cli.data.audio import load_audio
    from cm_cli.degrade.policy import apply_policy

    root, manifest = toy_tiny
    cache = tmp_path / "cache"
    df = pd.read_parquet(manifest)
    held_out = df[df.split != "train"].reset_index(drop=True)  # utterances neither model trained on
    samples = []
    for path, utt in zip(held_out.path, held_out.utt_id):
        wave = load_audio(root / path, sample_rate=16000)[0][:24000]
        for condition in CONDITIONS:
            degraded, label = apply_policy(wave, 16000, condition, seed=0, utt_id=utt, cache_dir=cache)
            samples.append((np.ascontiguousarray(degraded, dtype=np.float32), label))
    erm = _probe_accuracy(_train("erm", toy_tiny, tmp_path / "erm", cache), samples)
    dann = _probe_accuracy(_train("dann", toy_tiny, tmp_path / "dann", cache), samples)
    print(f"domain probe accuracy: ERM {erm:.3f}, DANN {dann:.3f} (chance {1 / len(CONDITIONS):.3f})")
    assert dann < erm
