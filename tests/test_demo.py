"""cm demo: the study layout (contract 6), the seen/unseen summary on planted scores, and the chain end to end."""

import json
import time

import numpy as np
import pytest


def _scores(path, eers: dict, n: int = 200, seed: int = 0):
    """A scores.parquet whose pooled EER per study group is known: a fraction e of each class is swapped."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    domains = {"clean": ["clean"], "seen": ["C05", "C08"], "unseen": ["C10", "gsm"]}
    for group, e in eers.items():
        for k, domain in enumerate(domains[group]):
            m = n // len(domains[group])
            flip = int(round(e * m))
            bona = np.r_[rng.uniform(1, 2, m - flip), rng.uniform(-2, -1, flip)]
            spoof = np.r_[rng.uniform(-2, -1, m - flip), rng.uniform(1, 2, flip)]
            rows += [
                {"utt_id": f"{group}{k}b{i}", "score": s, "label": "bonafide", "domain": domain}
                for i, s in enumerate(bona)
            ]
            rows += [
                {"utt_id": f"{group}{k}s{i}", "score": s, "label": "spoof", "domain": domain}
                for i, s in enumerate(spoof)
            ]
    path.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(path / "scores.parquet")


def test_study_summary_splits_seen_and_unseen_and_reads_seed_spread(tmp_path):
    from cm_cli.recipes.demo import group_of, study_summary

    assert [group_of(d) for d in ("clean", "none", "C05", "C08", "C10", "gsm")] == [
        "clean",
        "clean",
        "seen",
        "seen",
        "unseen",
        "unseen",
    ]
    dirs = {"erm": {}, "erm_aug": {}, "dann": {}}
    for s in range(3):
        _scores(
            dirs["erm"].setdefault(s, tmp_path / "erm" / f"seed_{s}"),
            {"clean": 0.10, "seen": 0.30, "unseen": 0.40},
            seed=s,
        )
        _scores(
            dirs["erm_aug"].setdefault(s, tmp_path / "aug" / f"seed_{s}"),
            {"clean": 0.10, "seen": 0.12, "unseen": 0.20 + 0.02 * s},
            seed=s,
        )
        _scores(
            dirs["dann"].setdefault(s, tmp_path / "dann" / f"seed_{s}"),
            {"clean": 0.10, "seen": 0.12, "unseen": 0.21 - 0.02 * s},
            seed=s,
        )
    summary = study_summary(dirs)
    erm = summary["methods"]["erm"]["stats"]
    assert erm["clean"]["mean"] == pytest.approx(10.0, abs=0.01) and erm["unseen"]["mean"] == pytest.approx(
        40.0, abs=0.01
    )
    assert erm["gap_unseen_rel"]["mean"] == pytest.approx(300.0, abs=0.1) and erm["unseen"]["sd"] == pytest.approx(0.0)
    assert summary["methods"]["erm_aug"]["stats"]["unseen"]["sd"] == pytest.approx(2.0, abs=0.01)
    text = summary["text"]
    assert "ERM-aug lowers the never-seen-codec EER by 18.0 points" in text
    assert "does not show that DANN adds to augmentation" in text  # -1.0 points, seed sd 2.0


def test_study_summary_with_one_seed_says_so(tmp_path):
    from cm_cli.recipes.demo import study_summary

    _scores(tmp_path / "a", {"clean": 0.1, "seen": 0.2, "unseen": 0.4})
    _scores(tmp_path / "b", {"clean": 0.1, "seen": 0.1, "unseen": 0.1})
    text = study_summary({"erm": {0: tmp_path / "a"}, "erm_aug": {0: tmp_path / "b"}})["text"]
    assert "one seed cannot tell whether" in text


def test_demo_presets_augment_with_the_demo_policy():
    from cm_cli.core.presets import load_preset
    from cm_cli.degrade.policy import parse_policy
    from cm_cli.recipes.demo import DEMO_AUGMENT_POLICY, DEMO_EVAL_CONDITIONS, DEMO_PRESETS, DEMO_SEEN

    assert "augment" not in load_preset(DEMO_PRESETS["erm"], command="train").options
    for method in ("erm_aug", "dann"):
        assert load_preset(DEMO_PRESETS[method], command="train").options["augment"] == DEMO_AUGMENT_POLICY
    labels = set(parse_policy(DEMO_AUGMENT_POLICY).labels())
    assert labels - {"clean"} == set(DEMO_SEEN) and set(DEMO_SEEN) < set(DEMO_EVAL_CONDITIONS)


@pytest.mark.slow
def test_demo_runs_the_whole_chain_and_reruns_from_cache(cm_env, run_cm):
    out = cm_env / "demo"
    result = run_cm("--json", "demo", "--out", out, "--size", "tiny", "--epochs", "1", "--seeds", "1")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = [s["name"] for s in payload["steps"]]
    assert names[0] == "toy corpus" and names[-1] == "report"
    for expected in (
        "train ERM seed 0",
        "train ERM-aug seed 0",
        "train DANN seed 0",
        "eval ERM seed 0",
        "eval DANN seed 0",
        "study summary",
        "stress sweep DANN",
        "embed DANN",
        "loao",
        "probe codec ERM-aug vs DANN",
        "cka ERM-aug vs DANN",
        "patch ERM-aug <- DANN",
    ):
        assert expected in names
    html = out / "report" / "report.html"
    assert html.is_file() and (out / "report" / "report.md").is_file()
    text = (out / "report" / "report.md").read_text()
    assert "ERM" in text and "DANN" in text and "C05" in text  # per-codec results of the runs
    for method in ("erm", "erm_aug", "dann"):
        assert (out / "runs" / method / "seed_0" / "config.json").is_file()
        metrics = json.loads((out / "eval" / method / "seed_0" / "metrics.json").read_text())
        assert set(metrics["by"]["codec"]) >= {"none", "C05", "C08"}
    erm_config = json.loads((out / "runs" / "erm" / "seed_0" / "config.json").read_text())
    assert not erm_config["train"].get("augment_manifest")  # ERM really trains without augmentation
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"erm", "erm_aug", "dann"} and "one seed" in summary["text"]
    assert summary == payload["summary"]
    for table in (
        "loao/loao.parquet",
        "probe/probes.parquet",
        "cka/cka.parquet",
        "patch/patching.parquet",
        "sweep/erm/seed_0/sweep.parquet",
        "runs/dann/seed_0/history.parquet",
    ):
        assert (out / table).is_file(), table

    start = time.perf_counter()
    again = json.loads(run_cm("--json", "demo", "--out", out, "--size", "tiny", "--epochs", "1", "--seeds", "1").stdout)
    assert time.perf_counter() - start < 60
    assert all(s["skipped"] for s in again["steps"] if s["name"] not in ("report", "study summary"))


def test_demo_into_an_unwritable_folder(cm_env, run_cm):
    blocker = cm_env / "file"
    blocker.write_text("")
    result = run_cm("demo", "--out", blocker / "demo", "--size", "tiny")
    assert result.exit_code == 1 and "cannot create output directory" in result.stderr
