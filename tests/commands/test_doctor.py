"""`cm doctor`: one screen and --json on what this install can do, and what a missing piece changes."""

from __future__ import annotations

import json
from collections import namedtuple

import numpy as np
import pytest

from cm_cli.core.errors import CmError


def test_doctor_screen_lists_providers_conditions_and_exits_0(cm_env, run_cm):
    result = run_cm("doctor")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for heading in ("torch", "codec providers", "ASVspoof 5 conditions", "toy conditions", "extras", "data root"):
        assert heading in out, heading
    assert "pyav" in out and "[in-process]" in out
    assert "g723_1 ok never seen" in out and "g726 ok never seen" in out  # PyAV encodes the toy study everywhere


def test_doctor_json_is_one_valid_document(cm_env, run_cm):
    from cm_cli.degrade.conditions import CONDITIONS
    from cm_cli.degrade.toy_conditions import DEFAULT_TOY_CONDITIONS

    result = run_cm("--json", "doctor")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [c["condition"] for c in payload["conditions"]] == list(CONDITIONS)
    assert [c["condition"] for c in payload["toy_conditions"]] == list(DEFAULT_TOY_CONDITIONS)
    assert all(c["available"] for c in payload["toy_conditions"])
    assert payload["providers"][0]["origin"] in ("pyav", "--ffmpeg", "CM_FFMPEG")
    assert {p["name"] for p in payload["storage"]} >= {"data root", "runs dir", "cache dir"}
    assert payload["torch"]["installed"] and "cpu" in payload["torch"]["devices"]
    assert payload["ok"] == (payload["findings"] == [])
    for c in payload["conditions"]:  # a condition is missing exactly when its reason is given
        assert c["available"] == (c["missing"] == ""), c


def test_no_provider_at_all_blocks_the_toy_study_and_says_so(monkeypatch):
    """Planted: no ffmpeg and no PyAV. Every codec, C05/C08 and the toy conditions are reported missing."""
    from cm_cli import doctor
    from cm_cli.degrade import codecs, ffmpeg

    monkeypatch.setattr(ffmpeg, "providers", lambda: [])
    monkeypatch.setattr(codecs, "find_encoder", lambda encoders: None)
    report = doctor.diagnose({})
    assert report.providers == [] and not any(c["available"] for c in report.codecs)
    status = {c["condition"]: c for c in report.conditions}
    assert not status["C05"]["available"] and "libmp3lame" in status["C05"]["missing"]
    assert status["C11"]["available"] is False  # its Bluetooth levels need the sbc encoder
    assert not any(c["available"] for c in report.toy_conditions)
    what = " | ".join(f.what for f in report.findings)
    assert "PyAV (package av) is not importable" in what and "toy conditions this install cannot render" in what


def test_missing_extra_and_low_disk_are_findings_with_their_effect(monkeypatch, tmp_path):
    import importlib.util
    import shutil

    from cm_cli import doctor

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 2 * 10**9, 2 * 10**9))
    report = doctor.diagnose({"cache dir": tmp_path / "not" / "yet"})
    place = report.storage[0]
    assert place["free_gb"] == 2.0 and place["exists"] is False and place["writable"]
    found = {f.what: f for f in report.findings}
    assert found["mlflow is not installed"].fix == "pip install 'cm-cli[mlflow]'"
    assert "history.parquet" in found["mlflow is not installed"].effect
    assert any(w.startswith("only 2.0 GB free under cache dir") for w in found)


def test_a_missing_encoder_error_points_to_cm_doctor(monkeypatch):
    from cm_cli.degrade import codecs
    from cm_cli.degrade.registry import apply_spec

    monkeypatch.setattr(codecs, "find_encoder", lambda encoders: None)
    with pytest.raises(CmError) as err:
        apply_spec(np.zeros(1600, np.float32), 16000, "mp3:kbps=32")
    assert "cm doctor" in err.value.hint
