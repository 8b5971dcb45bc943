"""What a run records about its inputs: content hashes (checked on resume) and the domains it saw."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig
from cm_cli.training.run import train_run


def _config(**kwargs):
    base = dict(backbone="lcnn", corpus="toy", epochs=2, batch_size=8, lr=1e-3, max_len=1.0, seed=1)
    return TrainConfig(**{**base, **kwargs})


def test_resume_with_another_manifest_is_refused_naming_the_difference(toy_tiny, tmp_path):
    root, manifest = toy_tiny
    df = pd.read_parquet(manifest)
    copy = tmp_path / "manifest.parquet"
    df.to_parquet(copy)
    out = tmp_path / "run"
    part = train_run(_config(), copy, out, data_root=root, stop_requested=lambda step: step >= 1)
    assert part.status == "interrupted"
    n_train = int((df.split == "train").sum())
    half = df.drop(df.index[df.split == "train"][::2])
    half.to_parquet(copy)  # rewritten in place: same path, other content
    before = (out / "config.json").read_text()
    with pytest.raises(
        CmError, match=rf"manifest content differs .*train rows {n_train} -> {n_train - (n_train + 1) // 2}"
    ):
        train_run(_config(), copy, out, data_root=root, resume=True)
    assert (out / "config.json").read_text() == before  # provenance untouched
    df.to_parquet(copy)
    assert train_run(_config(), copy, out, data_root=root, resume=True).status == "complete"


def test_config_records_seen_domains_and_augmentation_conditions(toy_tiny, tmp_path):
    root, manifest = toy_tiny
    train_run(_config(max_steps=1), manifest, tmp_path / "erm", data_root=root)
    plain = json.loads((tmp_path / "erm/config.json").read_text())
    assert plain["seen_domains"] == ["clean"] and plain["augment_conditions"] == []
    assert plain["inputs"]["manifest"]["sha256"]
    aug = _config(max_steps=1, augment="clean:0.4, telephony:0.3, alaw:0.3")
    train_run(aug, manifest, tmp_path / "aug", data_root=root, cache_dir=tmp_path / "cache")
    record = json.loads((tmp_path / "aug/config.json").read_text())
    assert record["seen_domains"] == ["alaw", "clean", "telephony"]
    assert record["augment_conditions"] == ["clean", "telephony", "alaw"]
