"""`cm loao` through the CLI: tables written, --json summary, --plan lines, clear errors."""

from __future__ import annotations

import json

import pandas as pd

from tests.analysis.synth import spoof_world, write_embeddings, write_manifest


def _world(tmp_path):
    rows, layers = spoof_world()
    return write_embeddings(tmp_path / "emb", rows.utt_id, layers), write_manifest(tmp_path / "m.parquet", rows), rows


def test_loao_json_and_tables(cm_env, run_cm):
    emb, manifest, _ = _world(cm_env)
    result = run_cm(
        "--json", "loao", emb, "--manifest", manifest, "--out", cm_env / "out", "--layer", "1", "--seeds", "0,1"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["largest_gap"]["layer_01"]["attack"] == "A05"
    table = pd.read_parquet(cm_env / "out" / "loao.parquet")
    assert set(table["seed"]) == {0, 1} and set(table["layer"]) == {"layer_01"}
    assert (cm_env / "out" / "geometry.parquet").is_file()


def test_loao_plan_prints_job_lines(cm_env, run_cm):
    _, manifest, _ = _world(cm_env)
    result = run_cm(
        "loao", "--plan", "--train-preset", "toy_lcnn_erm", "--manifest", manifest, "--out", cm_env / "plan"
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("cm train") and "&& cm eval" in line for line in lines)


def test_loao_errors(cm_env, run_cm):
    emb, manifest, rows = _world(cm_env)
    result = run_cm("loao", emb, "--manifest", manifest, "--out", cm_env / "out", "--layer", "12")
    assert result.exit_code == 1 and "no layer '12'" in result.stderr
    other = write_manifest(cm_env / "other.parquet", rows.assign(utt_id="X" + rows["utt_id"]))
    result = run_cm("--json", "loao", emb, "--manifest", other, "--out", cm_env / "out")
    assert result.exit_code == 1 and "share no utt_id" in json.loads(result.stdout)["error"]
    assert not (cm_env / "out").exists()
    result = run_cm("loao", "--plan", "--manifest", manifest)
    assert result.exit_code == 2 and "--train-preset" in result.stderr


def test_retrain_recipe_runs_on_the_toy_corpus_and_the_report_reads_it(cm_env, run_cm):
    """Issue 13.5: `cm loao --plan` is a runnable recipe (each attack removed from train and dev, the runs
    evaluated on the eval split), and `cm report` recognises it. Tiny toy corpus: A01 and A04 are the attacks
    seen in train/dev that eval also holds, so 2 held-out runs + the baseline, 1 epoch each."""
    import shlex

    from cm_cli.data.corpora.toy import build_toy_corpus
    from cm_cli.data.manifests import load_manifest

    build_toy_corpus(cm_env / "data" / "toy", size="tiny", seed=0, workers=2)
    made = run_cm("--json", "manifest", "--corpus", "toy", "--out", cm_env / "m")
    assert made.exit_code == 0, made.output
    manifest = json.loads(made.stdout)["manifest"]
    plan_dir = cm_env / "plan"
    result = run_cm(
        "--json",
        "loao",
        "--plan",
        "--train-preset",
        "toy_lcnn_erm",
        "--train-args",
        "--epochs 1",
        "--manifest",
        manifest,
        "--out",
        plan_dir,
    )
    assert result.exit_code == 0, result.output
    lines = json.loads(result.stdout)["plan"]
    assert len(lines) == 3 and all("--epochs 1" in line and "--split eval" in line for line in lines)
    record = json.loads((plan_dir / "loao_plan.json").read_text())
    assert [h["group"] for h in record["held_out"]] == ["A01", "A04"]
    assert set(record["skipped"]) == {"A02", "A03", "A05", "A06"}
    without = load_manifest(record["held_out"][0]["train_manifest"])
    trained = without[without["split"].isin(["train", "dev"])]
    assert "A01" not in set(trained["attack"].dropna()) and "A02" in set(trained["attack"].dropna())
    assert (plan_dir / "plan.sh").read_text().count("cm train") == 3
    for line in lines:  # run the recipe exactly as printed
        for command in line.split(" && "):
            argv = shlex.split(command)
            assert argv[0] == "cm"
            step = run_cm(*argv[1:])
            assert step.exit_code == 0, (command, step.output)
    report = run_cm("--json", "report", plan_dir, "--out", cm_env / "report")
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["counts"]["loao_retrain"] == 1
    text = (cm_env / "report" / "report.md").read_text()
    assert "Leave one attack out, full retraining" in text and "encoder included" in text
    section = text.split("Leave one attack out, full retraining")[1]
    assert "| A01 |" in section and "| A04 |" in section and "not found yet" not in section


def test_plan_by_codec_on_the_toy_manifest_removes_codec_rows_and_its_augmentation(cm_env, run_cm):
    """Issue 25: one `cm train` line per held-out codec; its rows leave training and its policy entry leaves
    the augmentation (otherwise the "unseen" codec was seen through augmentation)."""
    import pandas as pd

    from cm_cli.data.corpora.toy import build_toy_corpus
    from cm_cli.degrade.toy_conditions import add_coded_eval_conditions

    build_toy_corpus(cm_env / "data" / "toy", size="tiny", seed=0, workers=1)
    add_coded_eval_conditions(cm_env / "data" / "toy", seed=0, workers=1)
    made = run_cm("--json", "manifest", "--corpus", "toy", "--out", cm_env / "m")
    assert made.exit_code == 0, made.output
    manifest = cm_env / "m" / "manifest.parquet"
    help_text = run_cm("loao", "--help").stdout
    assert "codec" in help_text
    result = run_cm(
        "loao",
        "--plan",
        "--group-by",
        "codec",
        "--manifest",
        manifest,
        "--train-preset",
        "toy_lcnn_erm_aug",
        "--out",
        cm_env / "plan",
    )
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("cm train")]
    codecs = sorted(pd.read_parquet(manifest).query("split == 'eval'")["codec"].dropna().unique())
    # C05 and C08 are seen through the preset's augmentation; the other eval codecs no run trains on
    assert len(lines) == 3 and {"C05", "C08"} < set(codecs)  # + the all-seen baseline
    record = json.loads((cm_env / "plan" / "loao_plan.json").read_text())
    by_group = {h["group"]: h for h in record["held_out"]}
    assert sorted(by_group) == ["C05", "C08"]
    assert set(record["skipped"]) == set(codecs) - {"C05", "C08"}
    assert all("already unseen" in reason for reason in record["skipped"].values())
    c05 = by_group["C05"]
    assert c05["augment_removed"] == ["C05:0.3"] and "C05" not in c05["augment"] and "C08" in c05["augment"]
    kept = pd.read_parquet(c05["train_manifest"])
    assert not (kept["codec"] == "C05").any() and len(kept) == len(pd.read_parquet(manifest)) - c05["rows_removed"]
    c05_line = next(ln for ln in lines if "heldout_C05" in ln)
    assert "--augment" in c05_line and "C05:" not in c05_line.split("--augment", 1)[1].split(" --out")[0]
    assert "augmentation entries removed: C05:0.3" in result.stderr

    none = cm_env / "clean.parquet"
    pd.read_parquet(manifest).assign(codec=None).to_parquet(none)
    refused = run_cm(
        "loao",
        "--plan",
        "--group-by",
        "codec",
        "--manifest",
        none,
        "--train-preset",
        "toy_lcnn_erm_aug",
        "--out",
        cm_env / "plan2",
    )
    assert refused.exit_code == 1 and "needs codec values" in refused.stderr and "Traceback" not in refused.stderr
