"""benchmarks/fault_injection.py --hostile at its smallest size: NaN, Inf, cut, headerless and 10 ms files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_hostile_corpus_good_rows_equal_a_clean_run(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("fault_injection", REPO / "benchmarks" / "fault_injection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--hostile", "--utterances", "3", "--keep", str(tmp_path / "work")]) == 0
    failures = sorted((tmp_path / "work" / "hostile_runs").rglob("failures.parquet"))
    assert len(failures) == 3  # degrade, embed and eval each listed the hostile rows
