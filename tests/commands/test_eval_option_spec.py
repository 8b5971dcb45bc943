"""`cm eval` declares each option once (commands/_spec.py): the CLI defaults build EvalSettings' own defaults,
every EvalSettings field is set by one option or is built from several (a named, justified set), and an [eval]
key of cm.toml reaches its field, checked with the option's type."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

from cm_cli.commands import eval as eval_command
from cm_cli.commands.eval import OPTIONS, ScoreKind, _settings
from cm_cli.evaluation.readers import ScoreColumns
from cm_cli.evaluation.settings import EvalSettings

# EvalSettings fields no single option sets, and what builds each (commands/eval.py, _settings)
BUILT_FROM_SEVERAL = {
    "seed": "the global --seed (cm --seed / CM_SEED), not an option of cm eval",
    "seen_domains": "--seen-domain merged with the domains of --seen-from RUN",
    "columns": "ScoreColumns of --score-col, --label-col, --id-col and --bonafide-value",
    "blocks": "the t-DCF block made from the asv_scores file and --asv-score-col/--asv-key-col",
    "asv_scores": "--asv-scores, else the manifest's own ASV scores when a model is scored",
}


def _defaults() -> dict:
    return {**OPTIONS.defaults(), "audio_paths": None}


def test_cli_defaults_build_the_settings_defaults():
    assert _settings(SimpleNamespace(seed=0), _defaults()) == EvalSettings()
    assert _settings(SimpleNamespace(seed=0), _defaults()).options() == EvalSettings().options()
    extras = dict(seed=0, seen_domains=None, columns=ScoreColumns(), blocks=(), asv_scores=None)
    assert OPTIONS.config(EvalSettings, OPTIONS.defaults(), **extras) == EvalSettings()


def test_every_settable_field_has_exactly_one_option():
    fields = {f.name for f in dataclasses.fields(EvalSettings)}
    declared = [o.config_field for o in OPTIONS if o.config_field is not None]
    assert len(declared) == len(set(declared)), f"a field set by two options: {sorted(declared)}"
    assert not set(declared) & set(BUILT_FROM_SEVERAL)
    assert set(declared) | set(BUILT_FROM_SEVERAL) == fields
    assert {o.name for o in OPTIONS} >= {"score_col", "label_col", "id_col", "bonafide_value", "seen_domain"}


def test_each_declared_option_reaches_its_field():
    given = {
        "by": ["attack,codec", "speaker"],
        "in_domain": ["clean"],
        "domain_col": "codec",
        "compare": "base.json",
        "bootstrap": 7,
        "cluster_by": "speaker",
        "level": 0.9,
        "calibrate_on": "dev.csv",
        "score_kind": ScoreKind.logit,
        "p_spoof": 0.1,
        "c_miss": 2.0,
        "c_fa": 3.0,
        "min_trials": 3,
        "drop_invalid": True,
        "dedupe": True,
    }
    assert set(given) == {o.config_field for o in OPTIONS if o.config_field is not None}
    settings = _settings(SimpleNamespace(seed=0), {**_defaults(), **given})
    default = EvalSettings()
    for name in given:
        assert getattr(settings, name) != getattr(default, name), name
    assert settings.by == ("attack", "codec", "speaker") and settings.score_kind == "logit"


def test_fields_built_from_several_options(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"seen_domains": ["mp3"], "augment_conditions": ["opus"]}))
    o = {
        **_defaults(),
        "score_col": "s",
        "label_col": "y",
        "id_col": "i",
        "bonafide_value": "0",
        "seen_domain": ["clean,none"],
        "seen_from": str(run),
    }
    settings = _settings(SimpleNamespace(seed=5), o)
    assert settings.columns == ScoreColumns(score_col="s", label_col="y", bonafide_value="0", id_col="i")
    assert settings.seen_domains == ("clean", "mp3", "none", "opus")
    assert settings.seed == 5 and settings.asv_scores is None and settings.blocks == ()


def test_tuple_and_negatable_options_keep_their_command_line_form():
    by_name = {o.name: o for o in OPTIONS}
    assert by_name["export"].metavar == "FORMAT FILE" and by_name["export"].field is None
    assert by_name["baseline"].negatable and by_name["baseline"].default is True
    assert eval_command.eval.__signature__.parameters["audio_paths"].default is None


def test_cm_toml_key_reaches_its_field(cm_env, run_cm, tmp_path):
    scores = tmp_path / "s.csv"
    scores.write_text("utt_id,score,label\na,1,bonafide\nb,0,spoof\n")
    (cm_env / "cm.toml").write_text(
        '[eval]\nbootstrap = 50\nscore-kind = "logit"\nby = ["attack", "codec"]\nlevel = 0.9\ndedupe = true\n'
        'c_fa = 1\nseen-domain = "clean"\n'
    )
    result = run_cm("--json", "--dry-run", "eval", "--scores", scores, "--level", "0.8")
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert options["bootstrap"] == 50 and options["score_kind"] == "logit" and options["by"] == ["attack", "codec"]
    assert options["dedupe"] is True and options["c_fa"] == 1.0 and options["seen_domains"] == ["clean"]
    assert options["level"] == 0.8  # the command line wins over cm.toml


def test_cm_toml_bad_type_fails_with_one_line_naming_the_key(cm_env, run_cm, tmp_path):
    scores = tmp_path / "s.csv"
    scores.write_text("utt_id,score,label\na,1,bonafide\nb,0,spoof\n")
    (cm_env / "cm.toml").write_text('[eval]\nbootstrap = "many"\n')
    bad = run_cm("--dry-run", "eval", "--scores", scores)
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "[eval]" in errors[0] and "bootstrap" in errors[0] and "many" in errors[0]
    (cm_env / "cm.toml").write_text('[eval]\nexport = ["bogus", "x.tsv"]\n')  # the tuple option, from cm.toml
    bad = run_cm("--dry-run", "eval", "--scores", scores)
    assert bad.exit_code != 0 and "--export 'bogus'" in bad.stderr
