"""Strict options and manifests: no silent wrong numbers (issue 29 item 5)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.artifacts import write_parquet
from cm_cli.data.manifest import normalise_manifest
from tests.hostile.media import tone


def _manifest(root: Path, *, duplicate: bool) -> Path:
    rows = []
    for i, (split, label) in enumerate(
        [("train", "bonafide"), ("train", "spoof"), ("dev", "bonafide"), ("dev", "spoof")] * 2
    ):
        path = root / f"u{i}.wav"
        sf.write(path, tone(0.5, freq=150.0 + 40 * i), 16000)
        rows.append(
            dict(
                utt_id=f"u{i}",
                path=str(path),
                label=label,
                attack=None if label == "bonafide" else "A01",
                speaker="s",
                split=split,
                corpus="toy",
                codec=None,
                codec_q=None,
                domain="clean",
            )
        )
    if duplicate:
        rows[5]["utt_id"] = rows[1]["utt_id"]
    manifest = root / "m.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    return manifest


def _one_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("hint:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_train_refuses_a_manifest_with_a_duplicate_utt_id(run_cm, cm_env):
    manifest = _manifest(cm_env, duplicate=True)
    out = cm_env / "run"
    result = run_cm("train", "--preset", "toy_lcnn_erm", "--manifest", manifest, "--out", out, "--epochs", "1")
    assert result.exit_code == 1
    assert "duplicate utt_id" in _one_line(result) and "u1" in result.stderr
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize(
    "option", [("--lr", "inf"), ("--lr", "nan"), ("--lr", "-inf"), ("--max-len", "inf"), ("--max-len", "nan")]
)
def test_train_refuses_non_finite_numbers_in_one_line(run_cm, cm_env, option):
    manifest = _manifest(cm_env, duplicate=False)
    out = cm_env / "run"
    result = run_cm("train", "--preset", "toy_lcnn_erm", "--manifest", manifest, "--out", out, "--epochs", "1", *option)
    assert result.exit_code == 2
    assert f"{option[0]} {float(option[1])!r}" in _one_line(result) and "not a finite number" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("text", ["lr: .inf", "lr: .nan", "max_len: .inf"])
def test_a_preset_with_a_non_finite_number_is_refused(run_cm, cm_env, text):
    preset = cm_env / "p.yaml"
    preset.write_text(f"command: train\noptions:\n  {text}\n")
    result = run_cm("--dry-run", "train", "--preset", preset)
    assert result.exit_code == 2 and "not a finite number" in _one_line(result) and "p.yaml" in result.stderr


def test_a_preset_with_a_key_given_twice_is_refused(run_cm, cm_env):
    preset = cm_env / "p.yaml"
    preset.write_text("command: train\noptions:\n  lr: 0.001\n  epochs: 2\n  lr: 0.002\n")
    result = run_cm("--dry-run", "train", "--preset", preset)
    assert result.exit_code == 1 and "p.yaml:5: key 'lr' is given twice (first on line 3)" in _one_line(result)
    preset.write_text("command: train\noptions:\n  max-len: 1\n  max_len: 2\n")
    result = run_cm("--dry-run", "train", "--preset", preset)
    assert result.exit_code == 1 and "given twice" in _one_line(result)


@pytest.mark.parametrize(
    "table,expected",
    [
        ("lr = 1e-4\nlr = 2e-4\n", "malformed TOML"),
        ("max-len = 1.0\nmax_len = 2.0\n", "given twice"),
        ("lr = inf\n", "not a finite number"),
        ("lr = nan\n", "not a finite number"),
    ],
)
def test_cm_toml_duplicates_and_non_finite_values_are_refused(run_cm, cm_env, table, expected):
    (cm_env / "cm.toml").write_text("[train]\n" + table)
    result = run_cm("--dry-run", "train", "--preset", "toy_lcnn_erm")
    assert result.exit_code in (1, 2) and expected in _one_line(result) and "cm.toml" in result.stderr


def test_finite_values_still_pass(run_cm, cm_env):
    (cm_env / "cm.toml").write_text("[train]\nlr = 2e-4\n")
    result = run_cm("--json", "--dry-run", "train", "--preset", "toy_lcnn_erm", "--max-len", "1.5")
    assert result.exit_code == 0, result.output
    import json
    import math

    options = json.loads(result.stdout)["options"]
    assert options["max_len"] == 1.5 and math.isfinite(options["lr"]) and options["lr"] > 0


def test_a_degradation_policy_file_with_a_key_given_twice_is_refused(cm_env):
    from cm_cli.core.errors import CmError
    from cm_cli.degrade.policy import load_policy

    policy = cm_env / "pol.yaml"
    policy.write_text("policy:\n  - spec: clean\n    p: 0.5\n  - spec: gain:db=-6\n    p: 0.5\n    p: 0.1\n")
    with pytest.raises(CmError) as err:
        load_policy(policy)
    assert "pol.yaml:6: key 'p' is given twice (first on line 5)" in err.value.message
    policy.write_text("policy: [clean:0.5]\npolicy: [gain:db=-6:0.5]\n")
    with pytest.raises(CmError, match="key 'policy' is given twice"):
        load_policy(policy)
    policy.write_text("policy:\n  - {spec: clean, p: 0.5}\n  - {spec: gain:db=-6, p: 0.5}\n")
    assert [e.probability for e in load_policy(policy).entries] == [0.5, 0.5]  # a clean file still reads


def test_cm_degrade_refuses_a_policy_file_with_a_key_given_twice_in_one_line(run_cm, cm_env):
    manifest = _manifest(cm_env, duplicate=False)
    policy = cm_env / "pol.yaml"
    policy.write_text("policy: [clean:0.5]\npolicy: [gain:db=-6:0.5]\n")
    out = cm_env / "deg"
    result = run_cm("degrade", "--manifest", manifest, "--policy", policy, "--out", out)
    assert result.exit_code in (1, 2) and "given twice" in _one_line(result) and "pol.yaml" in result.stderr
    assert not (out / "manifest.parquet").exists()
