"""The training loop on the tiny toy corpus: artifacts, exact resumption, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig
from cm_cli.training.run import train_run

AUG = "clean:0.4, alaw:0.3, telephony:0.3"


def _config(**kwargs) -> TrainConfig:
    base = dict(backbone="lcnn", corpus="toy", epochs=1, batch_size=8, lr=1e-3, max_len=1.0, seed=3)
    base.update(kwargs)
    return TrainConfig(**base)


def _dann(**kwargs) -> TrainConfig:
    return _config(
        method="dann", augment=AUG, domain_columns=["domain"], lambda_schedule="constant", lambda_max=0.5, **kwargs
    )


def _run(config, toy, out, **kwargs):
    root, manifest = toy
    kwargs.setdefault("cache_dir", out.parent / "cache")
    return train_run(config, kwargs.pop("manifest", manifest), out, data_root=root, **kwargs)


def test_dann_run_directory_matches_the_design(toy_tiny, tmp_path):
    import torch

    from cm_cli.core.artifacts import read_json
    from cm_cli.models.loading import load_model

    out = tmp_path / "run"
    outcome = _run(_dann(epochs=2), toy_tiny, out)
    assert outcome.status == "complete"
    for name in (
        "config.json",
        "history.parquet",
        "cm.json",
        "augmentation.json",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ):
        assert (out / name).is_file(), name
    record = read_json(out / "cm.json")
    assert record["kind"] == "run" and record["status"] == "complete"
    history = pd.read_parquet(out / "history.parquet")
    assert list(history.columns[:6]) == ["step", "epoch", "lr", "lambda", "loss_task", "loss_domain"]
    for column in ("loss_domain_domain", "domain_acc_domain", "adv_grad_norm", "dev_eer", "dev_min_dcf"):
        assert column in history
    assert history["step"].tolist() == list(range(1, len(history) + 1))
    assert (history["lambda"] == 0.5).all()
    assert (history["adv_grad_norm"] > 0).all()  # the reversed gradient reaches the representation
    assert history["dev_eer"].notna().sum() == 2  # one validation per epoch
    adversary = outcome.summary["adversary"]
    assert "backbone.stages" in adversary["groups"]
    assert all(v > 0 for v in adversary["grad_norm_per_unit_lambda"].values())
    rates = read_json(out / "augmentation.json")["rates"]
    assert set(rates) <= {"clean", "alaw", "telephony"} and len(rates) == 3
    payload = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert payload["format"] == "cm-checkpoint/1" and payload["step"] == len(history)
    model = load_model(out).model
    assert model.config.backbone == "lcnn"


def test_erm_history_has_nan_for_adversarial_columns(toy_tiny, tmp_path):
    outcome = _run(_config(), toy_tiny, tmp_path / "erm")
    history = pd.read_parquet(tmp_path / "erm" / "history.parquet")
    assert history["lambda"].isna().all() and history["adv_grad_norm"].isna().all()
    assert outcome.summary["augmentation"]["rates"] == {"clean": 1.0}


def _weights(path):
    import torch

    return torch.load(path, weights_only=True)["state_dict"]


def test_interrupted_and_resumed_run_ends_with_the_same_weights(toy_tiny, tmp_path):
    config = _dann(epochs=3, max_steps=8)
    whole = _run(config, toy_tiny, tmp_path / "whole")
    assert whole.status == "complete" and whole.summary["step"] == 8
    part = _run(config, toy_tiny, tmp_path / "part", stop_requested=lambda step: step >= 3)
    assert part.status == "interrupted" and part.summary["step"] == 3
    resumed = _run(config, toy_tiny, tmp_path / "part", resume=True)
    assert resumed.resumed and resumed.status == "complete" and resumed.summary["step"] == 8
    a, b = _weights(tmp_path / "whole/checkpoints/last.pt"), _weights(tmp_path / "part/checkpoints/last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key
    h1 = pd.read_parquet(tmp_path / "whole/history.parquet")
    h2 = pd.read_parquet(tmp_path / "part/history.parquet")
    pd.testing.assert_frame_equal(h1, h2)


def test_preempted_after_an_epochs_last_batch_resumes_into_the_next_epoch(toy_tiny, tmp_path):
    # regression: a stop right after the last batch of an epoch saved offset == batches per epoch,
    # and the resumed run started an empty pass and failed with "no training utterance could be read"
    config = _dann(epochs=2)
    whole = _run(config, toy_tiny, tmp_path / "whole")
    history = pd.read_parquet(tmp_path / "whole/history.parquet")
    first_epoch_steps = int((history["epoch"] == 0).sum())
    part = _run(config, toy_tiny, tmp_path / "part", stop_requested=lambda step: step >= first_epoch_steps)
    assert part.status == "interrupted" and part.summary["step"] == first_epoch_steps
    resumed = _run(config, toy_tiny, tmp_path / "part", resume=True)
    assert resumed.status == "complete" and resumed.summary["step"] == whole.summary["step"]
    a, b = _weights(tmp_path / "whole/checkpoints/last.pt"), _weights(tmp_path / "part/checkpoints/last.pt")
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key
    pd.testing.assert_frame_equal(history, pd.read_parquet(tmp_path / "part/history.parquet"))


def test_resume_with_changed_configuration_is_refused_and_keeps_the_checkpoint(toy_tiny, tmp_path):
    out = tmp_path / "run"
    _run(_config(max_steps=2), toy_tiny, out)
    before = (out / "checkpoints/last.pt").read_bytes()
    with pytest.raises(CmError, match=r"lr: 0.001 -> 0.01"):
        _run(_config(max_steps=2, lr=1e-2), toy_tiny, out, resume=True)
    assert (out / "checkpoints/last.pt").read_bytes() == before
    (out / "checkpoints/last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CmError, match="cannot read checkpoint"):
        _run(_config(max_steps=2), toy_tiny, out, resume=True)
    with pytest.raises(CmError, match="does not exist"):
        _run(_config(max_steps=2), toy_tiny, tmp_path / "empty", resume=True)


def test_dann_bad_domain_columns(toy_tiny, tmp_path):
    # the toy manifest's own `domain` column is `clean` everywhere: one value cannot train an adversary
    with pytest.raises(CmError, match=r"1 distinct value"):
        _run(_config(method="dann", domain_columns=["domain"]), toy_tiny, tmp_path / "a")
    with pytest.raises(CmError, match="not in the training manifest"):
        _run(_config(method="dann", domain_columns=["room"]), toy_tiny, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_nothing_trainable_upstream_of_the_grl_is_an_error(toy_tiny, tmp_path):
    with pytest.raises(CmError, match="nothing trainable lies upstream"):
        _run(_dann(trainable="frozen"), toy_tiny, tmp_path / "frozen")


def _edited_manifest(toy, tmp_path, edit):
    root, manifest = toy
    df = pd.read_parquet(manifest)
    df = edit(df)
    path = tmp_path / "edited.parquet"
    df.to_parquet(path)
    return path


def test_one_class_training_set_is_refused(toy_tiny, tmp_path):
    path = _edited_manifest(toy_tiny, tmp_path, lambda df: df[~((df.split == "train") & (df.label == "bonafide"))])
    with pytest.raises(CmError, match="only spoof"):
        _run(_config(), toy_tiny, tmp_path / "run", manifest=path)


def test_missing_dev_split_trains_without_early_stopping(toy_tiny, tmp_path):
    path = _edited_manifest(toy_tiny, tmp_path, lambda df: df[df.split != "dev"])
    outcome = _run(_config(patience=1), toy_tiny, tmp_path / "run", manifest=path)
    assert outcome.status == "complete"
    assert any("without validation or early stopping" in n for n in outcome.summary["notes"])
    assert (tmp_path / "run/checkpoints/best.pt").is_file()
    one_class = _edited_manifest(toy_tiny, tmp_path, lambda df: df[~((df.split == "dev") & (df.label == "spoof"))])
    outcome = _run(_config(), toy_tiny, tmp_path / "run2", manifest=one_class)
    assert any("only bonafide" in n for n in outcome.summary["notes"])


def test_corrupt_audio_is_skipped_counted_and_reported(toy_tiny, tmp_path):
    root, manifest = toy_tiny
    df = pd.read_parquet(manifest)
    train = df.index[df.split == "train"]
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"fLaC" + b"\x00garbage" * 50)
    df.loc[train[5], "path"] = str(bad)
    df.loc[train[9], "path"] = str(tmp_path / "missing.flac")
    path = tmp_path / "m.parquet"
    df.to_parquet(path)
    outcome = _run(_config(), toy_tiny, tmp_path / "run", manifest=path)
    assert outcome.status == "complete"
    assert outcome.summary["n_failed_audio"] == 2
    assert any("could not be read" in n for n in outcome.summary["notes"])


def test_nan_loss_stops_with_step_and_utterances_and_keeps_last_good_checkpoint(toy_tiny, tmp_path, monkeypatch):
    from cm_cli.training import data as data_module

    out = tmp_path / "run"
    original = data_module.TrainAudio.__getitem__

    def poisoned(self, index):
        item = original(self, index)
        if self.epoch == 1 and item.wave is not None:
            item.wave = item.wave * np.float32("nan")
        return item

    monkeypatch.setattr(data_module.TrainAudio, "__getitem__", poisoned)
    with pytest.raises(CmError, match=r"loss became nan at step 5 \(epoch 1, batch 0; utterances T_") as info:
        _run(_config(epochs=2), toy_tiny, out)
    assert "last good state" in info.value.hint
    import torch

    payload = torch.load(out / "checkpoints/last.pt", weights_only=True)
    assert payload["epoch"] == 1 and payload["step"] == 5
    assert all(torch.isfinite(v).all() for v in payload["state_dict"].values() if v.is_floating_point())


def test_cuda_out_of_memory_names_the_batch_size(toy_tiny, tmp_path, monkeypatch):
    import torch

    from cm_cli.models import model as model_module

    cls = model_module.CountermeasureModel

    def explode(self, wave, lengths=None):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(cls, "forward", explode)
    with pytest.raises(CmError, match="CUDA out of memory at step 0 with batch size 8") as info:
        _run(_config(), toy_tiny, tmp_path / "run")
    assert info.value.option == ("batch_size", "grad_accum", "max_len") and "accumulation" in info.value.hint


def test_missing_codec_encoder_fails_before_training(toy_tiny, tmp_path, monkeypatch):
    from cm_cli.degrade import codecs

    monkeypatch.setattr(codecs, "find_encoder", lambda encoders: None)  # as on a machine without the encoder
    with pytest.raises(CmError, match="mp3.*encoder"):
        _run(_config(augment="clean:0.5, mp3:kbps=32:0.5"), toy_tiny, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_seeds_make_one_run_each(toy_tiny, tmp_path):
    from cm_cli.training.run import train_seeds

    root, manifest = toy_tiny
    outcomes = train_seeds(_config(max_steps=1), [1, 2], manifest, tmp_path / "multi", data_root=root)
    assert [o.run_dir.name for o in outcomes] == ["seed_1", "seed_2"]
    a, b = (_weights(o.run_dir / "checkpoints/last.pt") for o in outcomes)
    assert any(not np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
