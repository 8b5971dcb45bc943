"""Option types from cm.toml reach `cm train` checked: wrong types are one line, booleans are strict."""

from __future__ import annotations

import json


def test_wrong_types_in_cm_toml_are_one_line_errors(cm_env, run_cm):
    (cm_env / "cm.toml").write_text('[train]\nepochs = "six"\n')
    # the option resolver or TrainConfig.validate (library callers) stops it: one line naming option and value
    result = run_cm("--dry-run", "train", "--backbone", "lcnn", "--corpus", "toy")
    assert result.exit_code in (1, 2) and "Traceback" not in result.stderr
    assert "--epochs" in result.stderr and "'six'" in result.stderr
    (cm_env / "cm.toml").write_text('[train]\nclip_grad = "off"\n')
    result = run_cm("--dry-run", "train", "--backbone", "lcnn", "--corpus", "toy")
    assert result.exit_code in (1, 2) and "--clip-grad" in result.stderr and "'off'" in result.stderr


def test_false_and_no_strings_in_cm_toml_are_false(cm_env, run_cm):
    (cm_env / "cm.toml").write_text('[train]\nclass_weighting = "false"\nbf16 = "no"\nlr = "3e-4"\n')
    result = run_cm("--json", "--dry-run", "train", "--backbone", "lcnn", "--corpus", "toy")
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert options["class_weighting"] is False and options["bf16"] is False and options["lr"] == 3e-4


def test_workers_option_and_global_workers(cm_env, run_cm):
    local = run_cm("--json", "--dry-run", "train", "--backbone", "lcnn", "--corpus", "toy", "--workers", "3")
    assert json.loads(local.stdout)["options"]["workers"] == 3
    default = run_cm("--json", "--dry-run", "train", "--backbone", "lcnn", "--corpus", "toy")
    assert json.loads(default.stdout)["options"]["workers"] == 0  # in process unless asked
    global_ = run_cm("--json", "--workers", "2", "--dry-run", "train", "--backbone", "lcnn", "--corpus", "toy")
    assert json.loads(global_.stdout)["options"]["workers"] == 2


def test_grad_checkpointing_is_an_option_off_by_default(cm_env, run_cm):
    """Gradient checkpointing costs step time, so it is asked for, not always on (issue 18)."""
    import json

    off = json.loads(run_cm("--json", "--dry-run", "train", "--preset", "toy_lcnn_erm", "--out", cm_env / "r").stdout)
    on = json.loads(
        run_cm(
            "--json", "--dry-run", "train", "--preset", "toy_lcnn_erm", "--grad-checkpointing", "--out", cm_env / "r"
        ).stdout
    )
    find = lambda d: (d.get("options") or d).get("model_options")  # noqa: E731
    assert find(off) == {} and find(on) == {"gradient_checkpointing": True}
