"""`cm train` declares each option once (commands/_spec.py): its defaults build TrainConfig's own defaults, every
field a user sets has exactly one option, and a cm.toml [train] key reaches its field, checked with its type."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, fields

from cm_cli.commands import train
from cm_cli.training.config import TrainConfig

# TrainConfig fields that no `cm train` option sets through OPTIONS.config, and why
NOT_AN_OPTION_FIELD = {
    # the global `cm --seed` (context), handed to OPTIONS.config by _train_config; --seeds runs several
    "seed": "global --seed",
    # --workers is declared (field=None), but the value is a context decision: the command's --workers, else the
    # global --workers/CM_WORKERS/cm.toml [cm] when one was set, else 0 (c.data_workers(value, unset=0))
    "workers": "--workers, resolved with the global --workers in _train_config",
}


def _options():
    return {o.name: o for o in train.OPTIONS}


def test_cli_defaults_build_the_train_config_defaults(tmp_path):
    from cm_cli.core.context import resolve_context

    defaults = train.OPTIONS.defaults()
    built = asdict(train.OPTIONS.config(TrainConfig, defaults))
    assert built == asdict(TrainConfig())
    # and through the command's own path (context seed and workers, then validate) with nothing set anywhere
    context = resolve_context({}, environ={}, cwd=tmp_path)
    config = train._train_config({k: v for k, v in defaults.items() if _options()[k].resolved}, context)
    assert asdict(config) == asdict(TrainConfig().validate())


def test_every_settable_field_has_exactly_one_option():
    field_names = {f.name for f in fields(TrainConfig)}
    declared = Counter(o.config_field for o in train.OPTIONS if o.config_field is not None)
    assert [name for name, count in declared.items() if count > 1] == []
    assert set(declared) <= field_names, set(declared) - field_names  # no option names a field that is not there
    assert set(declared) | set(NOT_AN_OPTION_FIELD) == field_names
    assert not set(declared) & set(NOT_AN_OPTION_FIELD)
    # options that are not TrainConfig fields: the invocation (paths, preset, reuse) and the seed list
    outside = {o.name for o in train.OPTIONS if o.config_field is None}
    assert outside == {"preset", "manifest", "out", "seeds", "workers", "resume", "force"}
    # not preset keys, as before the declarations (resolve_options never saw them)
    assert {o.name for o in train.OPTIONS if not o.resolved} == {"preset", "manifest", "out", "resume", "force"}


def test_cm_toml_keys_reach_their_fields(cm_env, run_cm):
    (cm_env / "cm.toml").write_text(
        "[train]\n"
        'method = "dann"\n'
        'domain-column = ["codec", "attack"]\n'
        "grad_checkpointing = true\n"
        'lambda-schedule = "exponential"\n'
        "domain_hidden = 0\n"
        'log_to = "tensorboard"\n'
        'coded_dev_manifest = "coded.parquet"\n'
        "epochs = 3\n"
    )
    result = run_cm("--json", "--dry-run", "train", "--corpus", "toy", "--epochs", "2")
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert options["method"] == "dann" and options["domain_columns"] == ["codec", "attack"]
    assert options["model_options"] == {"gradient_checkpointing": True}
    assert options["lambda_schedule"] == "ganin" and options["domain_hidden"] == 0
    assert options["log_to"] == ["tensorboard"]
    assert options["coded_dev_manifest"] == str((cm_env / "coded.parquet").resolve())
    assert options["epochs"] == 2  # the command line wins over cm.toml


def test_a_bad_type_in_cm_toml_is_one_line_naming_the_key(cm_env, run_cm):
    (cm_env / "cm.toml").write_text('[train]\ndomain_hidden = "wide"\n')
    result = run_cm("--dry-run", "train", "--corpus", "toy")
    assert result.exit_code in (1, 2) and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "domain_hidden" in errors[0] and "'wide'" in errors[0], result.stderr


def test_the_summary_shows_the_terms_a_method_logged_and_no_nan():
    last = {"loss_task": 0.5, "loss_domain": float("nan"), "loss_coral": 0.0125, "loss_domain_codec": 1.2}
    assert train._last_losses(last) == "task 0.5000, coral 0.0125"
    assert train._last_losses({"loss_task": 0.7, "loss_domain": 1.1}) == "task 0.7000, domain 1.1000"
    assert train._last_losses({}) == "n/a"
