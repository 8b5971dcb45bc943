from pathlib import Path

import pytest

from cm_cli.core.context import resolve_context
from cm_cli.core.errors import CmError, UsageError


def test_precedence_option_env_dotenv_toml_default(tmp_path):
    (tmp_path / "cm.toml").write_text('[cm]\nseed = 4\nworkers = 3\ndata_root = "toml_data"\n')
    (tmp_path / ".env").write_text("CM_SEED=5\nexport CM_DATA_ROOT='dotenv_data'\n# comment\n")
    ctx = resolve_context({}, environ={}, cwd=tmp_path)
    assert ctx.seed == 5 and ctx.workers == 3 and ctx.data_root == tmp_path / "dotenv_data"
    ctx = resolve_context({}, environ={"CM_SEED": "6"}, cwd=tmp_path)
    assert ctx.seed == 6 and ctx.sources["seed"] == "CM_SEED"
    ctx = resolve_context({"seed": 7}, environ={"CM_SEED": "6"}, cwd=tmp_path)
    assert ctx.seed == 7
    ctx = resolve_context({}, environ={}, cwd=tmp_path / "elsewhere")
    assert ctx.seed == 0 and ctx.data_root == tmp_path / "elsewhere" / "data"


def test_runs_dir_fallback_and_asvspoof5_root(tmp_path):
    ctx = resolve_context({}, environ={"RUNS_DIR": "/cluster/runs", "ASVSPOOF5_ROOT": "/data/as5"}, cwd=tmp_path)
    assert ctx.runs_dir == Path("/cluster/runs")
    assert ctx.corpus_root("asvspoof5") == Path("/data/as5")
    assert ctx.corpus_root("toy") == tmp_path / "data" / "toy"
    assert ctx.default_manifest("toy") == Path("/cluster/runs/manifests/toy/manifest.parquet")


def test_bad_device_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="CM_DEVICE"):
        resolve_context({}, environ={"CM_DEVICE": "gpu0"}, cwd=tmp_path)
    assert resolve_context({"device": "cuda:1"}, environ={}, cwd=tmp_path).device == "cuda:1"


def test_malformed_cm_toml_names_the_file(tmp_path):
    (tmp_path / "cm.toml").write_text("[cm\nseed=1")
    with pytest.raises(CmError, match="cm.toml: malformed TOML"):
        resolve_context({}, environ={}, cwd=tmp_path)


def test_bad_integer_env(tmp_path):
    with pytest.raises(UsageError, match="workers"):
        resolve_context({}, environ={"CM_WORKERS": "many"}, cwd=tmp_path)


def test_command_tables_are_kept(tmp_path):
    (tmp_path / "cm.toml").write_text("[train]\nepochs = 3\n")
    ctx = resolve_context({}, environ={}, cwd=tmp_path)
    assert ctx.command_defaults("train") == {"epochs": 3}


def test_data_workers_are_decided_once_here(tmp_path):
    """The command's option, else the global one when anybody set it, else the command's own default."""
    unset = resolve_context({}, environ={}, cwd=tmp_path)
    assert unset.data_workers(3, unset=0) == 3  # the command's --workers wins
    assert unset.data_workers(None, unset=0) == 0  # train, eval, patch: in process unless asked
    assert unset.data_workers(None) == unset.workers == max(1, min(8, __import__("os").cpu_count() or 1))
    for ctx in (
        resolve_context({"workers": 5}, environ={}, cwd=tmp_path),
        resolve_context({}, environ={"CM_WORKERS": "5"}, cwd=tmp_path),
    ):
        assert ctx.data_workers(None, unset=0) == 5 and ctx.data_workers(None) == 5 and ctx.data_workers(2) == 2
    (tmp_path / "cm.toml").write_text("[cm]\nworkers = 4\n")
    assert resolve_context({}, environ={}, cwd=tmp_path).data_workers(None, unset=0) == 4


def test_one_default_backbone_for_the_cli_and_the_library():
    import inspect

    from cm_cli.commands.train import train
    from cm_cli.models.model import ModelConfig
    from cm_cli.models.registry import DEFAULT_BACKBONE, get_backbone
    from cm_cli.training.config import TrainConfig

    option = inspect.signature(train).parameters["backbone"].default
    assert option == ModelConfig().backbone == TrainConfig().backbone == DEFAULT_BACKBONE
    assert get_backbone(DEFAULT_BACKBONE).weights == "run"  # needs no download: trains from scratch
