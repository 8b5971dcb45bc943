"""Patching: the base's own activation changes nothing, a different donor does, other architectures are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from tests.analysis.synth import write_manifest

torch = pytest.importorskip("torch")
soundfile = pytest.importorskip("soundfile")


def make_runs(tmp_path: Path, *, donor_channels=(4, 8), seeds=None):
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
        records.append(
            {
                "utt_id": f"u{i}",
                "path": str(path),
                "label": label,
                "attack": None if label == "bonafide" else "A01",
                "speaker": f"S{i % 4}",
                "codec": ["mp3", "opus"][i % 4 // 2],
            }
        )
    manifest = write_manifest(tmp_path / "manifest.parquet", pd.DataFrame(records))
    runs = {}
    for name, seed, channels in (("erm", 0, (4, 8)), ("dann", 1, donor_channels)):
        torch.manual_seed(seed)
        model = build_model(ModelConfig(backbone="lcnn", backbone_options={"channels": list(channels), "emb_dim": 8}))
        save_checkpoint(tmp_path / name / "checkpoints" / "best.pt", model.eval())
        runs[name] = tmp_path / name
        if seeds is not None:  # the run's config.json names its init seed, as `cm train` writes it
            (tmp_path / name / "config.json").write_text(json.dumps({"train": {"seed": seeds[name]}}))
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
    table, _ = compute_patching(
        runs["erm"], runs["dann"], frame, data_root=None, config=PatchConfig(n_boot=50, folds=2, allow_unaligned=True)
    )  # issue 13.6
    assert not table.loc[table["site"] != "base", "noop"].any()
    assert (table.loc[table["site"] == "base", "delta_eer"] == 0).all()


def test_different_architectures_are_refused(tmp_path):
    from cm_cli.analysis.patching import run_patching

    runs, manifest = make_runs(tmp_path, donor_channels=(4, 4))
    with pytest.raises(CmError, match="different architectures"):
        run_patching(runs["erm"], runs["dann"], manifest=manifest, out=tmp_path / "never", data_root=None)
    assert not (tmp_path / "never").exists()


def test_unaligned_pairs_are_refused_unless_allowed_and_then_flagged(tmp_path):
    from cm_cli.analysis.patching import PatchConfig, compute_patching, run_patching
    from cm_cli.data.manifests import load_manifest

    runs, manifest = make_runs(tmp_path, seeds={"erm": 0, "dann": 1})
    with pytest.raises(CmError, match="do not share their initialisation.*init seeds 0 and 1") as info:
        run_patching(runs["erm"], runs["dann"], manifest=manifest, out=tmp_path / "never", data_root=None)
    assert info.value.option == ("allow_unaligned",) and not (tmp_path / "never").exists()
    config = PatchConfig(n_boot=20, folds=2, allow_unaligned=True)
    summary = run_patching(
        runs["erm"], runs["dann"], manifest=manifest, out=tmp_path / "p", data_root=None, config=config
    )
    assert summary["aligned"] is False and "init seeds 0 and 1" in summary["alignment"]
    assert any("not aligned" in n for n in summary["notes"])
    assert (pd.read_parquet(tmp_path / "p" / "patching.parquet")["aligned"] == False).all()  # noqa: E712
    # the same init seed (and configuration) makes the pair aligned
    same, _ = make_runs(tmp_path / "same", seeds={"erm": 3, "dann": 3})
    table, summary = compute_patching(
        same["erm"], same["dann"], load_manifest(manifest), data_root=None, config=PatchConfig(n_boot=20, folds=2)
    )
    assert summary["aligned"] is True and summary["alignment"] == "same init seed 3" and table["aligned"].all()


def test_intervals_resample_whole_speakers():
    from cm_cli.analysis.patching import cluster_draws

    keys = np.array(["a", "a", "a", "b", "b", "c", None, None], dtype=object)
    draws = cluster_draws(keys, 200, np.random.default_rng(0))
    members = {"a": [0, 1, 2], "b": [3, 4], "c": [5]}
    for draw in draws:
        counts = np.bincount(draw, minlength=len(keys))
        for rows in members.values():  # a speaker's rows always come together
            assert len(set(counts[rows])) == 1
        assert len(draw) == sum(len(members[k]) * (counts[members[k][0]]) for k in members) + counts[6] + counts[7]
    # null keys are clusters of their own: the two null rows are drawn independently
    assert any(np.bincount(d, minlength=8)[6] != np.bincount(d, minlength=8)[7] for d in draws)


def test_patching_ci_unit_is_speaker_by_default(tmp_path):
    from cm_cli.analysis.patching import PatchConfig, compute_patching
    from cm_cli.data.manifests import load_manifest

    runs, manifest = make_runs(tmp_path)
    frame = load_manifest(manifest)
    _, summary = compute_patching(
        runs["erm"], runs["erm"], frame, data_root=None, config=PatchConfig(n_boot=10, folds=2)
    )
    assert summary["ci"]["unit"] == "speaker" and summary["ci"]["n_clusters"] == 4
    _, summary = compute_patching(
        runs["erm"], runs["erm"], frame, data_root=None, config=PatchConfig(n_boot=10, folds=2, cluster_by=None)
    )
    assert summary["ci"]["unit"] == "trial" and summary["ci"]["n_clusters"] == 16
