"""`cm probe` through the CLI: one or two sets, --json summary, errors with counts."""

from __future__ import annotations

import json

import pandas as pd

from tests.analysis.test_probes import make_world


def test_probe_two_sets(cm_env, run_cm):
    emb_a, emb_b, manifest, _ = make_world(cm_env, n_speakers=15, per_speaker=8)
    result = run_cm(
        "--json",
        "probe",
        emb_a,
        emb_b,
        "--manifest",
        manifest,
        "--target",
        "codec",
        "--out",
        cm_env / "p",
        "--folds",
        "3",
        "--bootstrap",
        "100",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["tags"] == ["erm", "dann"] and len(payload["comparison"]["layers"]) == 2
    table = pd.read_parquet(cm_env / "p" / "probes.parquet")
    assert len(table) == 4 and set(table["target"]) == {"codec"}
    human = run_cm(
        "probe",
        emb_a,
        emb_b,
        "--manifest",
        manifest,
        "--target",
        "codec",
        "--out",
        cm_env / "p",
        "--folds",
        "3",
        "--bootstrap",
        "100",
    )
    assert human.exit_code == 0 and "reused" in human.stdout


def test_probe_one_class_target_is_an_error(cm_env, run_cm):
    emb_a, _, manifest, _ = make_world(cm_env, n_speakers=6, per_speaker=4)
    result = run_cm("probe", emb_a, "--manifest", manifest, "--target", "corpus", "--out", cm_env / "p")
    assert result.exit_code == 1 and "single class" in result.stderr
    assert not (cm_env / "p").exists()
