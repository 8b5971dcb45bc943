"""Train/test overlap in `cm eval --run` (issue 25): planted overlaps and a planted null."""

import json

import numpy as np
import pandas as pd
import soundfile as sf

from cm_cli.core.artifacts import write_parquet
from cm_cli.data.manifest import normalise_manifest
from cm_cli.evaluation.overlap import overlap_counts


def test_counts_on_a_planted_table():
    train = pd.DataFrame({"utt_id": ["a", "b", "c"], "speaker": ["s1", "s2", "s2"], "codec_seed": [None, None, None]})
    scored = pd.DataFrame(
        {"utt_id": ["a", "x", "y", "z"], "speaker": ["s1", "s2", "s9", None], "source_utt_id": [None, "b", "q", "c"]}
    )
    got = overlap_counts(scored, train)
    assert (got["speakers"], got["sources"], got["utterances"]) == (2, 3, 1)  # a,x | a,x(b),z(c) | a
    assert (got["n_scored"], got["n_train"]) == (4, 3)


def test_eval_on_the_training_split_reports_full_overlap_and_eval_split_none(tmp_path, run_cm, cm_env):
    import torch

    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        split = "train" if i < 8 else "eval"
        label = "bonafide" if i % 2 == 0 else "spoof"
        sf.write(tmp_path / f"u{i:02d}.flac", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
        rows.append(
            {
                "utt_id": f"u{i:02d}",
                "path": f"u{i:02d}.flac",
                "label": label,
                "attack": None if label == "bonafide" else "A01",
                "speaker": f"{split}_s{i % 3}",
                "split": split,
                "corpus": "toy",
                "codec": None,
                "codec_q": None,
                "domain": "clean",
            }
        )
    manifest = tmp_path / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    run = tmp_path / "run"
    torch.manual_seed(0)
    save_checkpoint(run / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")))
    (run / "config.json").write_text(json.dumps({"manifest": str(manifest), "train": {"train_split": "train"}}))
    out = cm_env / "ev"
    result = run_cm(
        "--data-root", tmp_path, "eval", "--run", run, "--manifest", manifest, "--split", "train", "--out", out
    )
    assert result.exit_code == 0, result.output
    overlap = json.loads((out / "metrics.json").read_text())["overlap"]
    assert overlap == {"speakers": 8, "sources": 8, "utterances": 8, "n_scored": 8, "n_train": 8}
    assert "train/test overlap" in result.stdout
    clean = run_cm(
        "--data-root",
        tmp_path,
        "eval",
        "--run",
        run,
        "--manifest",
        manifest,
        "--split",
        "eval",
        "--out",
        cm_env / "ev2",
    )
    assert clean.exit_code == 0, clean.output
    none = json.loads((cm_env / "ev2" / "metrics.json").read_text())["overlap"]
    assert (none["speakers"], none["sources"], none["utterances"]) == (0, 0, 0)
    assert "train/test overlap" not in clean.stdout


def test_report_shows_the_overlap_metrics_json_holds(cm_env, run_cm):
    from tests.report.synth import make_study

    study = make_study(cm_env / "study", analyses=False, seeds=(0,))
    metrics_files = sorted(study.rglob("metrics.json"))
    assert metrics_files
    leaky = metrics_files[0]
    data = json.loads(leaky.read_text())
    data["overlap"] = {"speakers": 7, "sources": 5, "utterances": 3, "n_scored": 9, "n_train": 40}
    leaky.write_text(json.dumps(data))
    result = run_cm("report", study, "--out", cm_env / "rep")
    assert result.exit_code == 0, result.output
    text = (cm_env / "rep" / "report.md").read_text()
    assert "Train/test overlap" in text and "Not held out" in text
    row = next(line for line in text.splitlines() if "| 7 " in line or "| 7|" in line)
    assert "5" in row and "3" in row and "40" in row
