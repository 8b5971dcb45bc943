"""An augmentation source given on the command line replaces the other one from a preset."""

import json


def test_explicit_augment_manifest_replaces_the_presets_on_the_fly_policy(cm_env, run_cm):
    variants = cm_env / "variants.parquet"
    result = run_cm("--json", "--dry-run", "train", "--preset", "toy_lcnn_dann", "--augment-manifest", variants)
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert options["augment"] is None and options["augment_manifest"] == str(variants.resolve())


def test_explicit_policy_is_kept_and_both_explicit_is_a_usage_error(cm_env, run_cm):
    result = run_cm("--json", "--dry-run", "train", "--preset", "toy_lcnn_dann", "--augment", "clean:0.5, alaw:0.5")
    assert json.loads(result.stdout)["options"]["augment"] == "clean:0.5, alaw:0.5"
    both = run_cm(
        "--dry-run",
        "train",
        "--preset",
        "toy_lcnn_dann",
        "--augment",
        "clean:1",
        "--augment-manifest",
        cm_env / "v.parquet",
    )
    assert both.exit_code == 2 and "exclusive" in both.stderr


def test_an_explicit_source_also_replaces_the_other_from_cm_toml(cm_env, run_cm, monkeypatch, tmp_path):
    (tmp_path / "cm.toml").write_text('[train]\naugment = "clean:0.5, alaw:0.5"\n')
    monkeypatch.chdir(tmp_path)
    variants = cm_env / "variants.parquet"
    result = run_cm("--json", "--dry-run", "train", "--augment-manifest", variants)
    assert result.exit_code == 0, result.output
    options = json.loads(result.stdout)["options"]
    assert options["augment"] is None and options["augment_manifest"] == str(variants.resolve())
    kept = run_cm("--json", "--dry-run", "train")
    assert json.loads(kept.stdout)["options"]["augment"] == "clean:0.5, alaw:0.5"
