"""`cm profile` through the CLI: tables, JSON summary, reuse, errors that write nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tests.analysis.test_profile import planted, unit


def _world(root):
    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    table, frame = planted(root, {f"A0{i}": unit(i) for i in range(1, 4)}, bona_centre=np.zeros(8))
    frame = frame.assign(path="x.flac", split="eval", corpus="toy", domain="clean")
    manifest = root / "manifest.parquet"
    write_parquet(normalise_manifest(frame), manifest)
    return table.parent, manifest


def test_profile_cli(cm_env, run_cm):
    features, manifest = _world(cm_env)
    result = run_cm(
        "--json",
        "profile",
        features,
        "--manifest",
        manifest,
        "--out",
        cm_env / "p",
        "--folds",
        "4",
        "--bootstrap",
        "100",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["accuracy"] > 0.9 and payload["classes"] == ["A01", "A02", "A03"]
    table = pd.read_parquet(cm_env / "p" / "profile.parquet")
    assert list(table["attack"]) == ["A01", "A02", "A03"] and table["auroc_unknown"].notna().all()
    assert len(pd.read_parquet(cm_env / "p" / "profile_confusion.parquet")) == 9
    assert json.loads((cm_env / "p" / "cm.json").read_text())["kind"] == "profile"
    human = run_cm(
        "profile", features, "--manifest", manifest, "--out", cm_env / "p", "--folds", "4", "--bootstrap", "100"
    )
    assert human.exit_code == 0 and "reused" in human.stdout and "AUROC" in human.stdout


def test_profile_errors_write_nothing(cm_env, run_cm):
    features, manifest = _world(cm_env)
    result = run_cm("profile", features, "--manifest", manifest, "--target", "corpus", "--out", cm_env / "p1")
    assert result.exit_code == 1 and "at least 2 attacks" in result.stderr and not (cm_env / "p1").exists()
    result = run_cm("profile", features, "--manifest", manifest, "--holdout", "A09", "--out", cm_env / "p2")
    assert result.exit_code == 1 and "A09" in result.stderr and not (cm_env / "p2").exists()
    result = run_cm("profile", features, "--manifest", manifest, "--group-by", "nosuch", "--out", cm_env / "p3")
    assert result.exit_code == 1 and "nosuch" in result.stderr and not (cm_env / "p3").exists()


def test_profile_in_the_report(cm_env, run_cm):
    features, manifest = _world(cm_env)
    study = cm_env / "study"
    assert (
        run_cm(
            "profile", features, "--manifest", manifest, "--out", study / "profile", "--folds", "4", "--bootstrap", "50"
        ).exit_code
        == 0
    )
    result = run_cm("report", study, "--out", cm_env / "rep")
    assert result.exit_code == 0, result.output
    text = (cm_env / "rep" / "report.md").read_text()
    assert "Attack profiling (source tracing)" in text and "Closed-set accuracy" in text
    figures = sorted(p.name for p in (cm_env / "rep" / "figures").glob("profile-*.png"))
    assert len(figures) == 2, figures
