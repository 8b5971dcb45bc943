"""One declaration per option (commands/_spec.py): the CLI defaults build the library's default config, and a
preset/cm.toml key is the option's own name, checked with its type, reaching the config field it declares."""

from __future__ import annotations

import json

import pytest

from cm_cli.analysis.cka import CkaConfig
from cm_cli.analysis.patching import PatchConfig
from cm_cli.analysis.probes import ProbeConfig
from cm_cli.commands import cka, patch, probe
from cm_cli.commands._spec import Opt, Options


@pytest.mark.parametrize("module, config", [(cka, CkaConfig), (probe, ProbeConfig), (patch, PatchConfig)])
def test_cli_defaults_build_the_library_defaults(module, config):
    defaults = {k: v for k, v in module.OPTIONS.defaults().items()}
    assert module.OPTIONS.config(config, defaults) == config()


def test_a_name_is_declared_once():
    with pytest.raises(ValueError, match="declared twice"):
        Options(Opt("folds", int, 3), Opt("folds", int, 5))


def test_cm_toml_key_reaches_the_declared_field(cm_env, run_cm, monkeypatch, tmp_path):
    manifest = tmp_path / "m.parquet"
    manifest.write_bytes(b"")
    (tmp_path / "cm.toml").write_text('[probe]\nbootstrap = 50\nlayer = "layer_01"\ngroup-by = "none"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cm("--json", "--dry-run", "probe", tmp_path / "emb", "--manifest", manifest, "--folds", "3")
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["options"]["config"]
    assert config["n_boot"] == 50 and config["layers"] == "layer_01" and config["group_by"] is None
    assert config["folds"] == 3 and config["target"] == "codec"
    (tmp_path / "cm.toml").write_text('[probe]\nbootstrap = "many"\n')
    bad = run_cm("--dry-run", "probe", tmp_path / "emb", "--manifest", manifest)
    assert bad.exit_code != 0 and "bootstrap" in bad.stderr and "many" in bad.stderr


def test_negatable_boolean_and_completion_reach_typer():
    import typer
    from typer.testing import CliRunner

    def complete(incomplete: str) -> list[str]:
        return [n for n in ("lcnn", "wavlm") if n.startswith(incomplete)]

    options = Options(
        Opt("bf16", bool, True, "bf16 autocast.", negatable=True), Opt("backbone", str, "lcnn", "x", complete=complete)
    )

    @options.command
    def command(**values) -> None:
        typer.echo(json.dumps(values, sort_keys=True))

    app = typer.Typer()
    app.command()(command)
    runner = CliRunner()
    assert json.loads(runner.invoke(app, []).stdout) == {"backbone": "lcnn", "bf16": True}
    assert json.loads(runner.invoke(app, ["--no-bf16", "--backbone", "wavlm"]).stdout) == {
        "backbone": "wavlm",
        "bf16": False,
    }
    backbone = next(o for o in options if o.name == "backbone").parameter().annotation.__metadata__[0]
    assert backbone.shell_complete is not None or backbone.autocompletion is complete


def test_an_enum_choice_reaches_the_config_as_its_plain_value():
    import enum

    class Kind(str, enum.Enum):
        a = "a"

    option = Opt("kind", Kind, Kind.a, "x", convert=lambda value: value.upper())
    assert type(Opt("kind", Kind, Kind.a, "x").to_config(Kind.a)) is str
    assert option.to_config(Kind.a) == "A"
