"""`cm eval --run RUN --audio PATH...`: score audio files directly (issue 14.1)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

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
    save_checkpoint(
        run / "checkpoints" / "best.pt",
        build_model(ModelConfig(backbone="lcnn")),
        metrics={"dev_eer": 0.1, "dev_eer_threshold": 0.0, "calibration": calibration},
    )
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
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(folder / "mono.flac"),
                "-ar",
                "22050",
                str(folder / "sub" / "coded.mp3"),
            ],
            check=True,
        )
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(folder / "mono.flac"),
                "-c:a",
                "aac",
                str(folder / "sub" / "coded.m4a"),
            ],
            check=True,
        )
    return root, run, bare, folder, calibration


def test_scores_files_and_folders_with_the_dev_threshold(audio_setup, run_cm, cm_env):
    root, run, _, folder, calibration = audio_setup
    extra = cm_env / "extra.flac"
    shutil.copy(folder / "mono.flac", extra)
    result = run_cm("--json", "eval", "--run", run, "--audio", folder, extra, cm_env / "missing.wav")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    by_name = {rec["path"].split("/")[-1]: rec for rec in payload["scores"]}
    expected = {"mono.flac", "stereo.wav", "fast.ogg", "extra.flac"} | (
        {"coded.mp3", "coded.m4a"} if shutil.which("ffmpeg") else set()
    )
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
    rows = [
        {
            "utt_id": "m",
            "path": str(folder / "mono.flac"),
            "label": "bonafide",
            "attack": None,
            "speaker": "s",
            "split": "eval",
            "corpus": "toy",
            "codec": None,
            "codec_q": None,
            "domain": "clean",
        },
        {
            "utt_id": "n",
            "path": str(folder / "sub" / "fast.ogg"),
            "label": "spoof",
            "attack": "A01",
            "speaker": "s",
            "split": "eval",
            "corpus": "toy",
            "codec": None,
            "codec_q": None,
            "domain": "clean",
        },
    ]
    write_parquet(normalise_manifest(pd.DataFrame(rows)), cm_env / "m.parquet")
    assert run_cm("eval", "--run", run, "--manifest", cm_env / "m.parquet", "--out", cm_env / "ev").exit_code == 0
    manifest_score = pd.read_parquet(cm_env / "ev" / "scores.parquet").set_index("utt_id")["score"]
    payload = json.loads(run_cm("--json", "eval", "--run", run, "--audio", folder / "mono.flac").stdout)
    assert payload["scores"][0]["score"] == pytest.approx(float(manifest_score["m"]), abs=1e-5)


def test_threshold_option_windows_plot_and_out(audio_setup, run_cm, cm_env):
    root, _, bare, folder, _ = audio_setup
    out = cm_env / "scored"
    result = run_cm(
        "--json",
        "eval",
        "--run",
        bare,
        "--audio",
        folder / "mono.flac",
        folder / "sub" / "fast.ogg",
        "--chunk-ms",
        "250",
        "--threshold",
        "1e9",
        "--out",
        out,
    )
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
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # one error line, and the loader's hint is kept (it was dropped before the library named its parameters)
    assert len(lines) == 2 and lines[1].startswith("hint:") and "corrupt" in lines[1]
    empty = cm_env / "empty"
    empty.mkdir()
    assert run_cm("eval", "--run", run, "--audio", empty).exit_code == 2
    assert run_cm("eval", "--audio", folder).exit_code == 2  # no model
    assert run_cm("eval", "--run", run, "--audio", folder, "--chunk-ms", "250|500").exit_code == 2


# --- hostile audio (issue 29 items 1-2, issue 31 item 3) ---------------------------------------------------------


def test_m4a_written_by_pyav_scores_without_a_system_ffmpeg(audio_setup, run_cm, cm_env, monkeypatch):
    from tests.hostile.media import tone, write_with_pyav

    _, run, _, folder, _ = audio_setup
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)  # as on a pip-only install
    clip = write_with_pyav(cm_env / "call.m4a", tone(1.0), 16000, "aac", "mp4")
    result = run_cm("--json", "eval", "--run", run, "--audio", clip)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["failures"] == [] and len(payload["scores"]) == 1
    score = payload["scores"][0]["score"]
    assert np.isfinite(score) and payload["scores"][0]["duration"] == pytest.approx(1.0, abs=0.1)
    # lossy AAC of the same tone scores close to the lossless original
    clean = json.loads(run_cm("--json", "eval", "--run", run, "--audio", folder / "mono.flac").stdout)
    assert abs(score - clean["scores"][0]["score"]) < abs(clean["scores"][0]["score"]) + 1.0


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_file_is_a_failure_never_a_score(audio_setup, run_cm, cm_env, value):
    from tests.hostile.media import write_nonfinite

    _, run, _, folder, _ = audio_setup
    bad = write_nonfinite(cm_env / "bad.wav", value)
    result = run_cm("--json", "eval", "--run", run, "--audio", bad, folder / "mono.flac")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [r["path"].split("/")[-1] for r in payload["scores"]] == ["mono.flac"]
    assert payload["failures"][0]["path"] == str(bad) and "non-finite" in payload["failures"][0]["error"]
    assert "NaN" not in result.stdout.replace("NaN/Inf", "")


def test_all_nan_folder_exits_nonzero_without_a_nan_score(audio_setup, run_cm, cm_env):
    from tests.hostile.media import write_nonfinite

    _, run, _, _, _ = audio_setup
    folder = cm_env / "nan_folder"
    folder.mkdir()
    write_nonfinite(folder / "a.wav", np.nan)
    write_nonfinite(folder / "b.wav", np.inf)
    out = cm_env / "out"
    result = run_cm("--json", "eval", "--run", run, "--audio", folder, "--out", out)
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert "no file could be scored" in payload["error"] and "score" not in payload
    assert "NaN" not in result.stdout.replace("NaN/Inf", "")
    assert not out.exists()  # nothing written on refusal
    human = run_cm("eval", "--run", run, "--audio", folder)
    assert human.exit_code == 1 and "Traceback" not in human.output


def test_tiny_cut_and_headerless_files_are_refused_with_a_reason(audio_setup, run_cm, cm_env):
    from tests.hostile.media import tone, write_cut, write_header_only

    _, run, _, folder, _ = audio_setup
    tiny = cm_env / "tiny.wav"
    sf.write(tiny, tone(0.01), 16000)  # 160 samples, under the 400-sample receptive field
    cut = write_cut(cm_env / "cut.wav")
    header = write_header_only(cm_env / "header.wav")
    result = run_cm("--json", "eval", "--run", run, "--audio", tiny, cut, header, folder / "mono.flac")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [r["path"].split("/")[-1] for r in payload["scores"]] == ["mono.flac"]
    errors = {f["path"].split("/")[-1]: f["error"] for f in payload["failures"]}
    from cm_cli.evaluation.audio import load_model_for_audio
    from cm_cli.models.inference import minimum_samples

    needed = minimum_samples(load_model_for_audio(run).model)  # the receptive field, >= 400
    assert "too short" in errors["tiny.wav"] and f"{needed} samples" in errors["tiny.wav"] and needed >= 400
    assert "truncated" in errors["cut.wav"]
    assert "not audio" in errors["header.wav"] and "ffprobe" not in errors["header.wav"]


def test_long_audio_is_scored_in_windows_as_the_mean_of_window_scores(audio_setup, cm_env):
    import torch

    from cm_cli.data.audio import load_audio
    from cm_cli.evaluation.audio import load_model_for_audio, score_audio
    from cm_cli.models.inference import forward_scores, inference_policy

    _, run, _, _, _ = audio_setup
    loaded = load_model_for_audio(run)
    target = int(inference_policy(loaded.model).target or 0)
    rng = np.random.default_rng(3)
    long = cm_env / "long.flac"
    n = int(2.6 * 16000)
    sf.write(long, (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
    import cm_cli.data.audio as intake

    real_load = intake.load_audio

    def no_whole_decode(path, **kwargs):  # a long file must be streamed, never decoded whole
        assert Path(path) != long, "long file decoded whole"
        return real_load(path, **kwargs)

    intake.load_audio = no_whole_decode
    try:
        result = score_audio(loaded, [long], whole_file_max_s=1.0)
    finally:
        intake.load_audio = real_load
    wave = torch.from_numpy(load_audio(long, sample_rate=16000)[0])
    window = target if target else int(20 * 16000)
    from cm_cli.scoring import window_starts

    starts = window_starts(n, min(window, n), min(window, n))
    expected = forward_scores(loaded.model, [wave[s : s + window] for s in starts], keep_long=True).mean()
    row = result.table.iloc[0]
    assert row["score"] == pytest.approx(float(expected), abs=1e-5)
    assert row["windows_scored"] == len(starts) and row["duration"] == pytest.approx(n / 16000)
    # with --chunk-ms the chunk is the window, and the windows are reported
    chunked = score_audio(loaded, [long], chunk_ms=500, whole_file_max_s=1.0)
    assert len(chunked.windows) == len(window_starts(n, 8000, 8000)) == chunked.table.iloc[0]["windows_scored"]
    assert chunked.table.iloc[0]["score"] == pytest.approx(chunked.windows["score"].mean())
