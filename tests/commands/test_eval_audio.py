"""`cm eval --run RUN --audio PATH...`: score audio files directly (issue 14.1)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import soundfile as sf


@pytest.fixture(scope="module")
def audio_setup(tmp_path_factory):
    import torch

    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    calibration = {"slope": 2.0, "offset": 0.5, "prior_log_odds": 0.25}
    run = root / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")),
                    metrics={"dev_eer": 0.1, "dev_eer_threshold": 0.0, "calibration": calibration})
    bare = root / "bare"  # no dev threshold, no calibration
    save_checkpoint(bare / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")))
    folder = root / "clips"
    (folder / "sub").mkdir(parents=True)
    mono = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    sf.write(folder / "mono.flac", mono, 16000)
    sf.write(folder / "sub" / "stereo.wav", np.stack([mono, mono], axis=1), 16000)
    sf.write(folder / "sub" / "fast.ogg", 0.2 * rng.standard_normal(44100).astype(np.float32), 44100)
    (folder / "sub" / "broken.wav").write_bytes(b"RIFF....not a wave file")
    (folder / "notes.txt").write_text("not audio, not listed")
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(folder / "mono.flac"), "-ar", "22050",
                        str(folder / "sub" / "coded.mp3")], check=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(folder / "mono.flac"), "-c:a", "aac",
                        str(folder / "sub" / "coded.m4a")], check=True)
    return root, run, bare, folder, calibration


def test_scores_files_and_folders_with_the_dev_threshold(audio_setup, run_cm, cm_env):
    root, run, _, folder, calibration = audio_setup
    extra = cm_env / "extra.flac"
    shutil.copy(folder / "mono.flac", extra)
    result = run_cm("--json", "eval", "--run", run, "--audio", folder, extra, cm_env / "missing.wav")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    by_name = {rec["path"].split("/")[-1]: rec for rec in payload["scores"]}
    expected = {"mono.flac", "stereo.wav", "fast.ogg", "extra.flac"} | ({"coded.mp3", "coded.m4a"} if shutil.which("ffmpeg") else set())
    assert set(by_name) == expected
    assert sorted(f["path"].split("/")[-1] for f in payload["failures"]) == ["broken.wav", "missing.wav"]
    assert payload["threshold"] == 0.0 and payload["threshold_source"] == "dev_eer"
    for rec in payload["scores"]:
        assert {"path", "score", "decision"} <= set(rec)
        assert rec["decision"] == ("bonafide" if rec["score"] >= 0.0 else "spoof")
        llr = 2.0 * rec["score"] + 0.5 - 0.25
        assert rec["p_bonafide"] == pytest.approx(1 / (1 + np.exp(-llr)))
    # stereo is mixed to mono: identical channels give the mono file's score (up to float32 decoding)
    assert by_name["stereo.wav"]["score"] == pytest.approx(by_name["mono.flac"]["score"], abs=1e-4)
    assert by_name["extra.flac"]["score"] == pytest.approx(by_name["mono.flac"]["score"], abs=1e-4)
    assert by_name["fast.ogg"]["duration"] == pytest.approx(1.0)  # 44.1 kHz resampled, duration kept


def test_same_score_as_eval_run_on_a_manifest(audio_setup, run_cm, cm_env):
    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    root, run, _, folder, _ = audio_setup
    rows = [{"utt_id": "m", "path": str(folder / "mono.flac"), "label": "bonafide", "attack": None, "speaker": "s",
             "split": "eval", "corpus": "toy", "codec": None, "codec_q": None, "domain": "clean"},
            {"utt_id": "n", "path": str(folder / "sub" / "fast.ogg"), "label": "spoof", "attack": "A01", "speaker": "s",
             "split": "eval", "corpus": "toy", "codec": None, "codec_q": None, "domain": "clean"}]
    write_parquet(normalise_manifest(pd.DataFrame(rows)), cm_env / "m.parquet")
    assert run_cm("eval", "--run", run, "--manifest", cm_env / "m.parquet", "--out", cm_env / "ev").exit_code == 0
    manifest_score = pd.read_parquet(cm_env / "ev" / "scores.parquet").set_index("utt_id")["score"]
    payload = json.loads(run_cm("--json", "eval", "--run", run, "--audio", folder / "mono.flac").stdout)
    assert payload["scores"][0]["score"] == pytest.approx(float(manifest_score["m"]), abs=1e-5)


def test_threshold_option_windows_plot_and_out(audio_setup, run_cm, cm_env):
    root, _, bare, folder, _ = audio_setup
    out = cm_env / "scored"
    result = run_cm("--json", "eval", "--run", bare, "--audio", folder / "mono.flac", folder / "sub" / "fast.ogg",
                    "--chunk-ms", "250", "--threshold", "1e9", "--out", out)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["threshold_source"] == "option" and {r["decision"] for r in payload["scores"]} == {"spoof"}
    assert all(len(r["windows"]) == 4 for r in payload["scores"])  # 1 s in 250 ms windows
    assert "p_bonafide" not in payload["scores"][0]
    table = pd.read_parquet(out / "scores.parquet")
    assert list(table.columns) == ["path", "duration", "score", "decision"] and len(table) == 2
    windows = pd.read_parquet(out / "windows.parquet")
    assert len(windows) == 8 and windows["end_s"].max() == pytest.approx(1.0)
    assert (out / "windows.png").stat().st_size > 1000
    # no dev threshold recorded and no --threshold: scores, no decision
    plain = json.loads(run_cm("--json", "eval", "--run", bare, "--audio", folder / "mono.flac").stdout)
    assert plain["threshold"] is None and plain["scores"][0]["decision"] is None
    human = run_cm("eval", "--run", bare, "--audio", folder)
    assert human.exit_code == 0 and "broken.wav" in human.stdout and "give --threshold" in human.stdout


def test_bad_model_and_bad_paths(audio_setup, run_cm, cm_env):
    root, run, _, folder, _ = audio_setup
    broken = cm_env / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    result = run_cm("eval", "--run", broken, "--audio", folder)
    assert result.exit_code == 1 and "cannot load a model" in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    empty = cm_env / "empty"
    empty.mkdir()
    assert run_cm("eval", "--run", run, "--audio", empty).exit_code == 2
    assert run_cm("eval", "--audio", folder).exit_code == 2  # no model
    assert run_cm("eval", "--run", run, "--audio", folder, "--chunk-ms", "250|500").exit_code == 2
