"""Training validation scores dev rows exactly as `cm eval --run` does (same inputs, same EER), sharded or not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.artifacts import write_parquet
from cm_cli.data.manifest import normalise_manifest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def dev_setup(tmp_path_factory):
    """Dev rows of mixed lengths (some shorter than the front end's receptive field) and a repeat-policy run."""
    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    root = tmp_path_factory.mktemp("devsetup")
    rng = np.random.default_rng(7)
    rows = []
    for i in range(14):
        label = "bonafide" if i % 2 == 0 else "spoof"
        n = [60, 300, 5000, 12000, 20000, 26000, 9000][i % 7]  # 60 and 300 samples: shorter than the receptive field
        t = np.arange(n) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (120 + 15 * i) * t) if label == "bonafide" else 0.2 * rng.standard_normal(n)
        sf.write(root / f"d{i:02d}.flac", wave.astype(np.float32), 16000)
        rows.append(
            {
                "utt_id": f"d{i:02d}",
                "path": f"d{i:02d}.flac",
                "label": label,
                "attack": None if label == "bonafide" else "A01",
                "speaker": f"s{i % 3}",
                "split": "dev",
                "corpus": "toy",
                "codec": None,
                "codec_q": None,
                "domain": "clean",
            }
        )
    manifest = root / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    runs = {}
    for name, kwargs in (("full", {}), ("repeat", {"length_policy": "repeat", "target_samples": 16000})):
        torch.manual_seed(0)
        model = build_model(ModelConfig(backbone="lcnn", **kwargs))
        save_checkpoint(root / name / "checkpoints" / "best.pt", model)
        runs[name] = root / name
    return root, manifest, runs


@pytest.mark.parametrize("policy", ["full", "repeat"])
def test_dev_eer_in_training_equals_cm_eval(dev_setup, run_cm, cm_env, policy):
    from cm_cli.data.manifests import load_manifest
    from cm_cli.models.loading import load_model
    from cm_cli.training.validation import evaluate_dev

    root, manifest, runs = dev_setup
    frame = load_manifest(manifest)
    model = load_model(runs[policy]).model.train()  # validation must switch to eval mode itself
    dev = evaluate_dev(model, frame, data_root=root, device="cpu", batch_size=4)
    assert model.training
    out = cm_env / f"ev_{policy}"
    result = run_cm(
        "--data-root",
        root,
        "--json",
        "eval",
        "--run",
        runs[policy],
        "--manifest",
        manifest,
        "--out",
        out,
        "--split",
        "dev",
        "--batch-size",
        "3",
    )
    assert result.exit_code == 0, result.output
    overall = json.loads((out / "metrics.json").read_text())["overall"]
    assert dev["n"] == overall["n_bonafide"] + overall["n_spoof"] == 14
    assert 0 < dev["dev_eer"] < 1
    assert dev["dev_eer"] == pytest.approx(overall["eer"], abs=1e-12)
    assert dev["dev_min_dcf"] == pytest.approx(overall["min_dcf"], abs=1e-9)
    assert dev["dev_eer_threshold"] == pytest.approx(overall["eer_threshold"], abs=1e-5)


def _rank(rank: int, world_size: int, port: int, model_path: str, manifest: str, root: str, out: str) -> None:
    import torch.distributed as tdist

    from cm_cli.data.manifests import load_manifest
    from cm_cli.models.loading import load_model
    from cm_cli.training.validation import evaluate_dev

    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        model = load_model(model_path).model
        dev = evaluate_dev(
            model, load_manifest(manifest), data_root=root, device="cpu", batch_size=2, rank=rank, world_size=world_size
        )
        with open(f"{out}.{rank}.json", "w") as fh:
            json.dump(dev, fh)
    finally:
        tdist.destroy_process_group()


def test_sharded_validation_gathers_every_row(dev_setup, tmp_path):
    import socket

    import torch.multiprocessing as mp

    from cm_cli.data.manifests import load_manifest
    from cm_cli.models.loading import load_model
    from cm_cli.training.validation import evaluate_dev

    root, manifest, runs = dev_setup
    single = evaluate_dev(
        load_model(runs["repeat"]).model, load_manifest(manifest), data_root=root, device="cpu", batch_size=4
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "dev")
    mp.spawn(_rank, args=(2, port, str(runs["repeat"]), str(manifest), str(root), out), nprocs=2, join=True)
    for rank in range(2):
        got = json.loads(open(f"{out}.{rank}.json").read())
        assert got["n"] == single["n"] == 14
        assert got["dev_eer"] == pytest.approx(single["dev_eer"], abs=1e-12)
        assert got["dev_min_dcf"] == pytest.approx(single["dev_min_dcf"], abs=1e-12)
