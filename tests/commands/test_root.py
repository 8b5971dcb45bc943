"""The root app: help, global options, the error contract (one line, exit codes, --json object)."""

import json
import subprocess
import sys

import pytest

from tests.data.test_asvspoof5_manifest import make_tree


def run_subprocess(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "cm_cli", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


def test_help_lists_commands_and_keeps_heavy_libraries_out():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cm_cli.app import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'matplotlib', 'torchaudio', 'scipy', 'pandas') if m in sys.modules]\n"
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
