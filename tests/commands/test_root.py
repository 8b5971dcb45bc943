"""The root app: help, global options, the error contract (one line, exit codes, --json object)."""

import json
import subprocess
import sys

import pytest

from tests.data.test_asvspoof5_manifest import make_tree


def run_subprocess(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "cm_cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_help_lists_commands_and_keeps_heavy_libraries_out():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cm_cli.app import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'matplotlib', 'torchaudio', 'scipy', 'pandas')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
        "print(r.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first, rest = out.stdout.split("\n", 1)
    assert first == "[]", f"heavy modules imported by `cm --help`: {first}"
    for command in ("download", "manifest", "presets"):
        assert command in rest


def test_version(run_cm):
    result = run_cm("--version")
    assert result.exit_code == 0 and result.stdout.startswith("cm ")


def test_cm_error_is_one_line_exit_1_and_json_object(cm_env, run_cm):
    result = run_cm("manifest", "--corpus", "toy")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "error:" in result.stderr and "does not exist" in result.stderr
    result = run_cm("--json", "manifest", "--corpus", "toy")
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == 1 and "does not exist" in payload["error"] and payload["hint"]


def test_usage_error_exit_2(cm_env, run_cm):
    assert run_cm("manifest", "--corpus", "nonesuch").exit_code == 2
    assert run_cm("manifest", "--subset", "0").exit_code == 2
    assert run_cm("download").exit_code == 2


def test_bad_cm_device_env(cm_env, run_cm, monkeypatch):
    monkeypatch.setenv("CM_DEVICE", "gpu")
    result = run_cm("presets")
    assert result.exit_code == 2 and "CM_DEVICE" in result.stderr and "unknown device" in result.stderr


def test_cuda_without_gpu(cm_env, run_cm):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = run_cm("--device", "cuda", "manifest", "--corpus", "toy")
    assert result.exit_code == 1 and "no CUDA GPU" in result.stderr and "Traceback" not in result.output


def test_malformed_cm_toml(cm_env, run_cm):
    (cm_env / "cm.toml").write_text("[cm\n")
    result = run_cm("presets")
    assert result.exit_code == 1 and "cm.toml: malformed TOML" in result.stderr


def test_debug_shows_the_traceback(cm_env):
    out = run_subprocess("--debug", "manifest", "--corpus", "toy", cwd=cm_env)
    assert out.returncode != 0 and "Traceback" in out.stderr
    out = run_subprocess("manifest", "--corpus", "toy", cwd=cm_env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.startswith("error:")]) == 1


def test_nonexistent_data_root(cm_env, run_cm, tmp_path):
    result = run_cm("--data-root", str(tmp_path / "nowhere"), "manifest", "--corpus", "asvspoof5")
    assert result.exit_code == 1 and "nowhere" in result.stderr


def test_manifest_json_counts_and_unwritable_out(cm_env, run_cm):
    make_tree(cm_env / "data" / "asvspoof5", audio=False)
    result = run_cm("--json", "manifest", "--corpus", "asvspoof5", "--out", str(cm_env / "m"))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_utterances"] == 8 and payload["splits"]["train"]["attacks"] == {"A01": 1, "A02": 1}
    blocker = cm_env / "file"
    blocker.write_text("")
    result = run_cm("manifest", "--corpus", "asvspoof5", "--out", str(blocker / "m"))
    assert result.exit_code == 1 and "cannot create output directory" in result.stderr


def test_default_manifest_location_and_dry_run(cm_env, run_cm):
    make_tree(cm_env / "data" / "asvspoof5", audio=False)
    result = run_cm("--json", "--dry-run", "manifest")
    payload = json.loads(result.stdout)
    assert payload["dry_run"] and payload["options"]["out"].endswith("runs/manifests/asvspoof5")
    assert not (cm_env / "runs").exists()
    assert run_cm("manifest").exit_code == 0
    assert (cm_env / "runs" / "manifests" / "asvspoof5" / "manifest.parquet").is_file()


def test_presets_list_and_show(cm_env, run_cm):
    listing = json.loads(run_cm("--json", "presets").stdout)
    names = [p["name"] for p in listing["presets"]]
    assert "toy_manifest_subset" in names
    shown = json.loads(run_cm("--json", "presets", "show", "toy_manifest_subset").stdout)
    assert shown["options"] == {"subset": 200}
    assert run_cm("presets", "show", "nope").exit_code == 1


# --------------------------------------------------------------------------- one option resolver (issues 12, 19)


@pytest.mark.parametrize(
    "table, message",
    [
        ('epochs = "six"', "epochs = 'six' is not an integer"),
        ('lr = "fast"', "lr = 'fast' is not a number"),
        ('clip_grad = "off"', "clip_grad = 'off' is not a number"),
        ("epochs = 2.5", "epochs = 2.5 is not an integer"),
        ("epochs = true", "epochs = True is not an integer"),
        ('bf16 = "maybe"', "bf16 = 'maybe' is not a boolean"),
        ('method = "magic"', "method = 'magic' is not one of"),
    ],
)
def test_wrong_types_in_cm_toml_are_one_line_naming_file_and_value(cm_env, run_cm, table, message):
    (cm_env / "cm.toml").write_text(f"[train]\n{table}\n")
    result = run_cm("--dry-run", "train")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cm.toml [train]" in result.stderr and message in result.stderr


@pytest.mark.parametrize(
    "text, expected",
    [
        ('"false"', False),
        ('"no"', False),
        ('"off"', False),
        ("false", False),
        ('"true"', True),
        ('"yes"', True),
        ("true", True),
    ],
)
def test_booleans_in_cm_toml_are_parsed_strictly(cm_env, run_cm, text, expected):
    # issue 19 item 14: "false"/"no" became True
    (cm_env / "cm.toml").write_text(f"[train]\nclass_weighting = {text}\nbf16 = {text}\n")
    payload = json.loads(run_cm("--json", "--dry-run", "train").stdout)
    assert payload["options"]["class_weighting"] is expected and payload["options"]["bf16"] is expected


def test_wrong_types_in_a_preset_name_the_preset(cm_env, run_cm):
    (cm_env / "bad.yaml").write_text("command: degrade\noptions:\n  variants: x\n")
    result = run_cm(
        "degrade", "--preset", str(cm_env / "bad.yaml"), "--manifest", "m.parquet", "--out", "o", "--chain", "alaw"
    )
    assert result.exit_code == 1 and "bad.yaml" in result.stderr and "variants = 'x' is not an integer" in result.stderr
    (cm_env / "bool.yaml").write_text("command: train\noptions:\n  class_weighting: 'no'\n  epochs: '3'\n")
    payload = json.loads(run_cm("--json", "--dry-run", "train", "--preset", str(cm_env / "bool.yaml")).stdout)
    assert payload["options"]["class_weighting"] is False and payload["options"]["epochs"] == 3


def test_every_shipped_preset_passes_the_type_check():
    import typer.main

    from cm_cli.app import app
    from cm_cli.commands._common import check_option_value
    from cm_cli.core.presets import list_presets

    commands = typer.main.get_command(app).commands
    checked = 0
    for preset in list_presets():
        params = {p.name: p for p in commands[preset.command].params}
        for name, value in preset.options.items():
            check_option_value(params[name], name, value, f"preset {preset.name}")
            checked += 1
    assert checked > 10


# --------------------------------------------------------------------------- one default-manifest rule, one corpus list


def test_default_manifest_rule(cm_env):
    from pathlib import Path

    from cm_cli.commands._common import resolve_manifest
    from cm_cli.core.context import resolve_context
    from cm_cli.core.errors import UsageError

    ctx = resolve_context({}, cwd=cm_env)
    given = cm_env / "given.parquet"
    assert resolve_manifest(ctx, given) == given  # 1. --manifest
    with pytest.raises(UsageError, match="no corpus under the data root"):
        resolve_manifest(ctx, None, build=False)
    (cm_env / "data" / "asvspoof2019_la").mkdir(parents=True)
    assert resolve_manifest(ctx, None, build=False) == cm_env / "runs/manifests/asvspoof2019_la/manifest.parquet"
    (cm_env / "data" / "toy").mkdir(parents=True)
    with pytest.raises(UsageError, match=r"several corpora \(asvspoof2019_la, toy\)"):
        resolve_manifest(ctx, None, build=False)
    built = cm_env / "runs/manifests/toy/manifest.parquet"
    built.parent.mkdir(parents=True)
    built.write_bytes(b"x")
    assert resolve_manifest(ctx, None, build=False) == built  # 3. the only corpus with a manifest
    assert resolve_manifest(ctx, None, corpus="asvspoof2019_la", build=False).parent.name == "asvspoof2019_la"
    upstream = cm_env / "emb"
    upstream.mkdir()
    (upstream / "cm.json").write_text(json.dumps({"options": {"manifest": str(given)}}))
    given.write_bytes(b"m")
    assert resolve_manifest(ctx, None, upstream=upstream) == given  # 2. recorded by the upstream artifact
    assert resolve_manifest(ctx, Path("x.parquet"), upstream=upstream) == Path("x.parquet")


def test_embed_does_not_assume_the_toy_corpus(cm_env, run_cm):
    # issue 12: `cm embed` without --manifest used the toy manifest whatever the data root held
    (cm_env / "data" / "asvspoof5").mkdir(parents=True)
    payload = json.loads(run_cm("--json", "--dry-run", "embed", "--backbone", "lcnn", "--out", cm_env / "e").stdout)
    assert payload["options"]["manifest"].endswith("runs/manifests/asvspoof5/manifest.parquet")
    (cm_env / "data" / "toy").mkdir(parents=True)
    result = run_cm("--dry-run", "embed", "--backbone", "lcnn", "--out", cm_env / "e")
    assert result.exit_code == 2 and "several corpora" in result.stderr


def test_one_corpus_list_feeds_enum_completion_and_builders():
    from cm_cli.commands._common import Corpus, complete_codec, complete_corpus
    from cm_cli.data.manifest import CORPORA
    from cm_cli.data.manifests import CORPUS_PREPARERS
    from cm_cli.degrade.registry import REGISTRY

    assert [c.value for c in Corpus] == list(CORPORA) == complete_corpus("")
    assert set(CORPUS_PREPARERS) == set(CORPORA)
    names = [n for n, _ in complete_codec("")]  # (name, help): encodable first, the others marked (issue 31)
    assert sorted(names) == sorted(n for n, d in REGISTRY.items() if d.kind in ("codec", "neural"))
    assert "mp3" in [n for n, _ in complete_codec("mp")] and "telephony" not in names


def test_every_command_honours_its_cm_toml_table(cm_env, run_cm):
    # issue 12: an [eval] table was silently ignored (eval does not call resolve_options itself)
    (cm_env / "cm.toml").write_text("[eval]\np_spoof = 0.5\nc_fa = 1\n")
    payload = json.loads(run_cm("--json", "--dry-run", "eval", "--scores", "s.txt").stdout)
    assert payload["options"]["p_spoof"] == 0.5 and payload["options"]["c_fa"] == 1.0
    payload = json.loads(run_cm("--json", "--dry-run", "eval", "--scores", "s.txt", "--p-spoof", "0.2").stdout)
    assert payload["options"]["p_spoof"] == 0.2  # the command line wins
    (cm_env / "cm.toml").write_text('[eval]\np_spoof = "half"\n')
    result = run_cm("--dry-run", "eval", "--scores", "s.txt")
    assert result.exit_code == 1 and "cm.toml [eval]: p_spoof = 'half' is not a number" in result.stderr
    (cm_env / "cm.toml").write_text("[eval]\nnonesuch = 1\n")
    result = run_cm("--dry-run", "eval", "--scores", "s.txt")
    assert result.exit_code == 1 and "unknown option(s) nonesuch" in result.stderr
