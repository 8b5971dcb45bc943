"""Validation decodes with persistent workers: one loader per run, the same processes at every validation."""

from __future__ import annotations

import os
import time

import pytest

torch = pytest.importorskip("torch")


def _recording_reads(monkeypatch, log):
    """Make every validation-side decode (``ManifestAudio.__getitem__``) append ``pid row`` to ``log``."""
    from cm_cli.data.datasets import ManifestAudio

    original = ManifestAudio.__getitem__

    def recorded(self, index):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {index}\n")
        return original(self, index)

    monkeypatch.setattr(ManifestAudio, "__getitem__", recorded)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_validator_reuses_its_worker_processes(toy_tiny, tmp_path, monkeypatch):
    from cm_cli.models.model import build_model
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.data import load_training_data
    from cm_cli.training.loop import build_model_config
    from cm_cli.training.selection import Validator
    from cm_cli.training.state import TrainState

    root, manifest = toy_tiny
    log = tmp_path / "reads.txt"
    _recording_reads(monkeypatch, log)
    results = {}
    for workers in (0, 2):
        config = TrainConfig(
            method="erm", backbone="lcnn", corpus="toy", epochs=1, batch_size=4, max_len=1.0, seed=0, workers=workers
        )
        data = load_training_data(manifest, config)
        torch.manual_seed(0)
        model = build_model(build_model_config(config))
        validator = Validator(data, config, data_root=root, device="cpu")
        log.write_text("")
        passes = []
        for _ in range(3):
            result = validator.validate(model, TrainState(total_steps=1))
            passes.append(log.read_text().split("\n")[:-1])
            log.write_text("")
        pids = [{int(line.split()[0]) for line in lines} for lines in passes]
        rows = [sorted(int(line.split()[1]) for line in lines) for lines in passes]
        n_dev = len(data.dev)
        assert all(r == list(range(n_dev)) for r in rows)  # every dev row decoded once per validation
        if workers == 0:
            assert pids == [{os.getpid()}] * 3
        else:
            assert os.getpid() not in pids[0] and 1 <= len(pids[0]) <= 2
            assert pids[0] == pids[1] == pids[2]  # the same processes served all three validations
            validator.close()
            deadline = time.time() + 10
            while any(_alive(p) for p in pids[0]) and time.time() < deadline:
                time.sleep(0.1)
            assert not any(_alive(p) for p in pids[0])
        results[workers] = result
    for key in ("dev_eer", "dev_min_dcf", "dev_eer_threshold", "n"):
        assert results[0][key] == results[2][key], key


def test_training_builds_the_dev_loader_once(toy_tiny, tmp_path, monkeypatch):
    import pandas as pd

    import cm_cli.models.inference as inference
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.run import train_run

    built = []

    class Counted(inference.AudioBatches):
        def __init__(self, *args, **kwargs):
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(inference, "AudioBatches", Counted)
    root, manifest = toy_tiny
    config = TrainConfig(
        method="erm", backbone="lcnn", corpus="toy", epochs=3, batch_size=8, lr=1e-3, max_len=0.5, seed=3, workers=2
    )
    outcome = train_run(config, manifest, tmp_path / "run", data_root=root)
    assert outcome.status == "complete"
    history = pd.read_parquet(tmp_path / "run/history.parquet")
    assert history["dev_eer"].notna().sum() == 3  # three validations ...
    assert len(built) == 1  # ... from one dev loader
    assert built[0]["workers"] == 2 and built[0]["persistent"] is True and built[0]["pin_memory"] is False


@pytest.mark.gpu
def test_cuda_validation_pins_its_batches_and_scores_every_row_each_time(toy_tiny):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from cm_cli.models.model import build_model
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.data import load_training_data
    from cm_cli.training.loop import build_model_config
    from cm_cli.training.selection import Validator
    from cm_cli.training.state import TrainState

    root, manifest = toy_tiny
    config = TrainConfig(
        method="erm", backbone="lcnn", corpus="toy", epochs=1, batch_size=4, max_len=1.0, seed=0, workers=2
    )
    data = load_training_data(manifest, config)
    torch.manual_seed(0)
    model = build_model(build_model_config(config))
    results = {}
    for device in ("cpu", "cuda"):
        validator = Validator(data, config, data_root=root, device=device)
        assert validator.shards["dev_"].batches.loader.pin_memory is (device == "cuda")
        results[device] = [validator.validate(model.to(device), TrainState(total_steps=1)) for _ in range(2)]
        validator.close()
    first, second = results["cuda"]
    assert first["n"] == second["n"] == results["cpu"][0]["n"] == len(data.dev)
    assert 0 <= first["dev_eer"] <= 1 and first["dev_eer"] == second["dev_eer"]
