"""Shared fixtures: the repo's shared/ fixtures folder, an isolated cm environment, a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path | None:
    for candidate in (REPO.parent / "shared", REPO / "shared"):
        if (candidate / "fixtures").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    found = _shared_dir()
    if found is None:
        pytest.skip("../shared/fixtures is absent (real ASVspoof 5 fixtures are not available here)")
    return found


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures"


@pytest.fixture
def cm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated working directory: data root, runs dir and cache dir under tmp_path."""
    for var in (
        "CM_DATA_ROOT",
        "CM_RUNS_DIR",
        "CM_CACHE_DIR",
        "CM_DEVICE",
        "CM_SEED",
        "CM_WORKERS",
        "RUNS_DIR",
        "ASVSPOOF5_ROOT",
        "CM_CONFIG",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CM_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("CM_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def run_cm():
    """Invoke the real app with CliRunner; returns the click Result (stdout and stderr separate)."""
    from typer.testing import CliRunner

    from cm_cli.app import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small toy corpus built once per test session (read-only for tests)."""
    from cm_cli.data.corpora.toy import build_toy_corpus

    data_root = tmp_path_factory.mktemp("toydata")
    build_toy_corpus(data_root / "toy", size="small", seed=0)
    return data_root
