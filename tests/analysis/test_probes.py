"""Probes: a planted column is decoded, a pure-noise column has selectivity near 0, folds never leak groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.analysis.probes import (
    CLASS_COLUMNS,
    PROBE_COLUMNS,
    ProbeConfig,
    assign_folds,
    compute_probes,
    control_labels,
    load_class_selectivity,
    run_probes,
)
from cm_cli.core.errors import CmError
from tests.analysis.synth import write_embeddings, write_manifest


def make_world(tmp_path, *, n_speakers=30, per_speaker=12, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    n = n_speakers * per_speaker
    rows = pd.DataFrame(
        {
            "utt_id": [f"u{i}" for i in range(n)],
            "speaker": np.repeat([f"S{s}" for s in range(n_speakers)], per_speaker),
            "label": rng.choice(["bonafide", "spoof"], n),
            "codec": rng.choice(["mp3", "opus", "amr"], n),
            "noise": rng.choice(["x", "y"], n),
        }
    )
    rows["attack"] = np.where(rows["label"] == "spoof", "A01", None)
    X = rng.normal(size=(n, dim))
    planted = X.copy()
    planted[:, 0] += rows["codec"].map({"mp3": 3.0, "opus": 0.0, "amr": -3.0}).to_numpy()
    erasing = planted.copy()
    erasing[:, 0] = rng.normal(size=n)  # "DANN": the codec direction removed
    emb_a = write_embeddings(tmp_path / "erm", rows.utt_id, {"layer_00": X, "layer_01": planted})
    emb_b = write_embeddings(tmp_path / "dann", rows.utt_id, {"layer_00": X, "layer_01": erasing})
    manifest = write_manifest(tmp_path / "manifest.parquet", rows)
    return emb_a, emb_b, manifest, rows


def test_planted_column_decoded_noise_not(tmp_path):
    emb_a, _, manifest, rows = make_world(tmp_path)
    from cm_cli.data.manifests import load_manifest

    frame = load_manifest(manifest)
    config = ProbeConfig(target="codec", n_boot=200)
    table, classes, summary = compute_probes([emb_a], frame, config=config)
    assert list(table.columns) == PROBE_COLUMNS and list(classes.columns) == CLASS_COLUMNS
    planted = table.set_index("layer").loc["layer_01"]
    assert planted["accuracy"] > 0.9 and planted["selectivity"] > 0.4
    assert planted["ci_low"] <= planted["accuracy"] <= planted["ci_high"]
    noise, _, _ = compute_probes([emb_a], frame, config=ProbeConfig(target="noise", n_boot=200))
    for row in noise.itertuples():
        assert abs(row.selectivity) < 0.08, row
        assert abs(row.accuracy - row.chance_uniform) < 0.1
    assert summary["chance_uniform"] == pytest.approx(1 / 3)


def test_two_sets_paired_difference(tmp_path):
    emb_a, emb_b, manifest, _ = make_world(tmp_path)
    from cm_cli.data.manifests import load_manifest

    table, _, summary = compute_probes(
        [emb_a, emb_b], load_manifest(manifest), config=ProbeConfig(target="codec", n_boot=300, control_repeats=1)
    )
    assert set(table["tag"]) == {"erm", "dann"}
    layers = {r["layer"]: r for r in summary["comparison"]["layers"]}
    assert layers["layer_01"]["difference"] < -0.3 and layers["layer_01"]["ci_high"] < 0
    assert layers["layer_00"]["difference"] == 0 and layers["layer_00"]["ci_low"] == 0


def test_folds_keep_groups_apart_and_control_is_per_type():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20).astype(str), 5)
    y = rng.integers(0, 3, 100)
    fold = assign_folds(y, groups, folds=4, seed=0)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1
    control = control_labels(groups, y, seed=0, repeats=2)
    assert control.shape == (2, 100)
    for g in np.unique(groups):
        assert len(set(control[0][groups == g])) == 1


def test_c_sweep_and_class_file(tmp_path):
    emb_a, _, manifest, _ = make_world(tmp_path, n_speakers=15, per_speaker=8)
    out = tmp_path / "out"
    summary = run_probes(
        [emb_a],
        manifest=manifest,
        out=out,
        config=ProbeConfig(target="codec", layers="1", folds=3, c_sweep=(0.01, 1.0), n_boot=100, control_repeats=1),
    )
    assert set(summary["c_sweep"]["chosen_per_fold"]["erm"]["layer_01"]) <= {0.01, 1.0}
    selectivity = load_class_selectivity(out, target="codec")
    assert set(selectivity["class"]) == {"mp3", "opus", "amr"}


def test_bad_targets_error_with_counts(tmp_path):
    emb_a, _, manifest, rows = make_world(tmp_path, n_speakers=10, per_speaker=4)
    from cm_cli.data.manifests import load_manifest

    frame = load_manifest(manifest)
    with pytest.raises(CmError, match="single class"):
        compute_probes([emb_a], frame.assign(corpus="toy"), config=ProbeConfig(target="corpus"))
    rare = frame.copy()
    rare.loc[:1, "codec"] = "rare"
    with pytest.raises(CmError, match=r"rare: 2 rows in 1 speaker"):
        compute_probes([emb_a], rare, config=ProbeConfig(target="codec"))
    table, _, summary = compute_probes(
        [emb_a], rare, config=ProbeConfig(target="codec", min_class_size=5, n_boot=50, control_repeats=1)
    )
    assert "rare" not in summary["class_counts"]
    with pytest.raises(CmError, match="no column 'nope'"):
        compute_probes([emb_a], frame, config=ProbeConfig(target="nope"))
    out = tmp_path / "never"
    with pytest.raises(CmError):
        run_probes([emb_a], manifest=manifest, out=out, config=ProbeConfig(target="corpus"))
    assert not out.exists()


def _speaker_only_world(tmp_path, *, n_speakers=24, per_speaker=10, dim=32, seed=3):
    """A layer that encodes speaker identity and nothing else; `unrelated` is a random per-row target."""
    rng = np.random.default_rng(seed)
    n = n_speakers * per_speaker
    speakers = np.repeat([f"S{s:02d}" for s in range(n_speakers)], per_speaker)
    centroids = rng.normal(0, 3.0, size=(n_speakers, dim))
    X = centroids[np.repeat(np.arange(n_speakers), per_speaker)] + rng.normal(0, 0.5, size=(n, dim))
    rows = pd.DataFrame(
        {
            "utt_id": [f"u{i}" for i in range(n)],
            "speaker": speakers,
            "label": "bonafide",
            "unrelated": rng.choice(["p", "q"], n),
        }
    )
    emb = write_embeddings(tmp_path / "spk", rows.utt_id, {"layer_00": X}, dtype=np.float32)
    return emb, write_manifest(tmp_path / "m.parquet", rows)


def test_control_units_recur_so_a_speaker_layer_memorises_the_control(tmp_path):
    """Issue 13.2: with speaker-grouped task folds the per-speaker control used to be unlearnable (chance);
    now its units recur across the control folds, so a speaker-only layer solves it by memorisation,
    while the task (an unrelated target) stays at chance."""
    from cm_cli.data.manifests import load_manifest

    emb, manifest = _speaker_only_world(tmp_path)
    config = ProbeConfig(
        target="unrelated", group_by="speaker", control_by="speaker", c=10.0, n_boot=100, control_repeats=2
    )
    table, _, summary = compute_probes([emb], load_manifest(manifest), config=config)
    row = table.iloc[0]
    assert row["control_unit"] == "speaker" and row["control_folds"] == "recurrent"
    assert row["control_recurrence"] == pytest.approx(1.0)
    assert row["control_accuracy"] > 0.85  # chance is ~0.5
    assert abs(row["accuracy"] - 0.5) < 0.1
    assert summary["control_unit"] == "speaker" and "memorisation" in summary["control_measures"]


def test_recurrent_folds_spread_units_and_keep_sources_together():
    from cm_cli.analysis.probes import recurrent_folds, unit_recurrence

    types = np.repeat(["a", "b", "c"], 6)
    keys = np.array([f"k{i // 2}" for i in range(18)])  # a source utterance and its coded copy
    fold = recurrent_folds(types, keys, folds=3, seed=0)
    for k in np.unique(keys):
        assert len(set(fold[keys == k])) == 1
    for t in "abc":
        assert len(set(fold[types == t])) == 3
    assert unit_recurrence(types, fold) == 1.0
    assert unit_recurrence(types, np.repeat([0, 1, 2], 6)) == 0.0
