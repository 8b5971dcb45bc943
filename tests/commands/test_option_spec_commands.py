"""One declaration per option (commands/_spec.py) for `cm embed`, `cm loao`, `cm profile`, `cm degrade` and `cm demo`:
the CLI defaults build the library's default config, a cm.toml key (the option's own name) reaches the command, and
a value of the wrong type fails with one error line naming the key."""

from __future__ import annotations

import json

import pytest

from cm_cli.analysis.loao import LoaoConfig
from cm_cli.analysis.profile import ProfileConfig
from cm_cli.commands import degrade, demo, embed, loao, profile
from cm_cli.recipes.demo import DemoSettings
from tests.analysis.synth import spoof_world, write_embeddings, write_manifest


@pytest.mark.parametrize("module, config", [(loao, LoaoConfig), (profile, ProfileConfig), (demo, DemoSettings)])
def test_cli_defaults_build_the_library_defaults(module, config):
    assert module.OPTIONS.config(config, module.OPTIONS.defaults()) == config()


@pytest.mark.parametrize("module", [embed, loao, profile, degrade, demo])
def test_every_parameter_is_declared_once(module):
    """The command's options are exactly its declarations (no option added beside OPTIONS)."""
    import inspect

    declared = [o.name for o in module.OPTIONS]
    command = getattr(module, module.__name__.rsplit(".", 1)[1])
    parameters = [
        p.name for p in inspect.signature(command).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert parameters == declared


@pytest.fixture
def world(cm_env):
    rows, layers = spoof_world(n_speakers=4, n_attacks=3)
    return write_embeddings(cm_env / "emb", rows.utt_id, layers), write_manifest(cm_env / "m.parquet", rows)


# command, its dry-run arguments (EMB, MANIFEST and OUT filled in), a [command] table, what the dry run then shows,
# and a value of the wrong type with the key it must name
CASES = {
    "embed": (
        ["embed", "--backbone", "lcnn", "--manifest", "MANIFEST", "--out", "OUT"],
        'batch-size = 4\nlayers = "0,1"\nfp32 = true\npooling = "meanstd"',
        lambda o: (o["batch_size"], o["layers"], o["fp32"], o["pooling"]) == (4, "0,1", True, "meanstd"),
        ("max_seconds", '"long"'),
    ),
    "loao": (
        ["loao", "EMB", "--manifest", "MANIFEST"],
        'seeds = "4,5"\nlayer = "1"\ntest-size = 0.2',
        lambda o: (o["config"]["seeds"], o["config"]["layers"], o["config"]["test_size"]) == ([4, 5], "1", 0.2),
        ("c", '"strong"'),
    ),
    "profile": (
        ["profile", "EMB", "--manifest", "MANIFEST"],
        'bootstrap = 10\nholdout = "A01, A02"\ngroup_by = "none"\nfolds = 3',
        lambda o: (
            (o["config"]["n_boot"], o["config"]["holdout"], o["config"]["group_by"], o["config"]["folds"])
            == (10, ["A01", "A02"], None, 3)
        ),
        ("folds", '"five"'),
    ),
    "degrade": (
        ["degrade", "--manifest", "MANIFEST", "--out", "OUT"],
        'chain = ["mp3:kbps=32"]\nsnr = 10\nvariants = 2',
        lambda o: (o["specs"], o["variants"]) == (["mp3:kbps=32+noise:snr=10"], 2),
        ("sample_rate", '"high"'),
    ),
    "demo": (
        ["demo"],
        'size = "tiny"\nseeds = 2\nmethods = "erm,dann"',
        lambda o: (o["size"], o["seeds"], o["methods"]) == ("tiny", [0, 1], ["erm", "dann"]),
        ("epochs", '"many"'),
    ),
}


@pytest.mark.parametrize("command", sorted(CASES))
def test_cm_toml_key_reaches_the_command_and_a_bad_type_names_it(command, world, cm_env, run_cm):
    arguments, table, shows, (key, bad) = CASES[command]
    emb, manifest = world
    filled = {"EMB": emb, "MANIFEST": manifest, "OUT": cm_env / "out"}
    arguments = [filled.get(a, a) for a in arguments]
    config = cm_env / "cm.toml"
    config.write_text(f"[{command}]\n{table}\n")
    result = run_cm("--json", "--dry-run", *arguments)
    assert result.exit_code == 0, result.output
    assert shows(json.loads(result.stdout)["options"])
    config.write_text(f"[{command}]\n{key} = {bad}\n")
    result = run_cm("--dry-run", *arguments)
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and key in lines[0] and bad.strip('"') in lines[0], result.stderr
