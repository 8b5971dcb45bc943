"""Patching: the base's own activation changes nothing, a different donor does, other architectures are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from tests.analysis.synth import write_manifest

torch = pytest.importorskip("torch")
soundfile = pytest.importorskip("soundfile")


def make_runs(tmp_path: Path, *, donor_channels=(4, 8)):
    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    rng = np.random.default_rng(0)
    records = []
    for i in range(16):
        label = "bonafide" if i % 2 == 0 else "spoof"
        wave = rng.normal(0, 0.1 if label == "bonafide" else 0.3, 6000).astype("float32")
        path = tmp_path / "audio" / f"a{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, wave, 16000)
        records.append({"utt_id": f"u{i}", "path": str(path), "label": label,
                        "attack": None if label == "bonafide" else "A01", "speaker": f"S{i % 4}",
                        "codec": ["mp3", "opus"][i % 4 // 2]})
    manifest = write_manifest(tmp_path / "manifest.parquet", pd.DataFrame(records))
    runs = {}
    for name, seed, channels in (("erm", 0, (4, 8)), ("dann", 1, donor_channels)):
        torch.manual_seed(seed)
        model = build_model(ModelConfig(backbone="lcnn", backbone_options={"channels": list(channels), "emb_dim": 8}))
        save_checkpoint(tmp_path / name / "checkpoints" / "best.pt", model.eval())
        runs[name] = tmp_path / name
    return runs, manifest


def test_self_patching_changes_nothing_and_donor_does(tmp_path):
    from cm_cli.analysis.patching import PATCH_COLUMNS, PatchConfig, compute_patching
    from cm_cli.data.manifests import load_manifest

    runs, manifest = make_runs(tmp_path)
    frame = load_manifest(manifest)
    config = PatchConfig(n_boot=50, folds=2)
    table, summary = compute_patching(runs["erm"], runs["erm"], frame, data_root=None, config=config)
    assert list(table.columns) == PATCH_COLUMNS
    sites = table[~table["site"].isin(["base", "donor"])]
    assert len(sites) == 3 and sites["noop"].all()
    assert (table["delta_eer"] == 0).all() and (table["eer"] == table["eer"].iloc[0]).all()
    assert summary["noop_sites"] == summary["sites"]
    table, _ = compute_patching(runs["erm"], runs["dann"], frame, data_root=None, config=config)
    assert not table.loc[table["site"] != "base", "noop"].any()
    assert (table.loc[table["site"] == "base", "delta_eer"] == 0).all()


def test_different_architectures_are_refused(tmp_path):
    from cm_cli.analysis.patching import run_patching

    runs, manifest = make_runs(tmp_path, donor_channels=(4, 4))
    with pytest.raises(CmError, match="different architectures"):
        run_patching(runs["erm"], runs["dann"], manifest=manifest, out=tmp_path / "never", data_root=None)
    assert not (tmp_path / "never").exists()
