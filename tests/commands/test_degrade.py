"""`cm degrade` through the real app: ad hoc, --list, corpus mode, and one clear line per bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.artifacts import read_table, write_parquet


def _speech(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    from cm_cli.degrade.codecs import probe_signal

    return probe_signal(16000, seconds=seconds, seed=seed)


@pytest.fixture
def wav(cm_env):
    path = cm_env / "in.wav"
    sf.write(path, np.stack([_speech(seed=1), _speech(seed=2)], axis=1), 16000)
    return path


def test_codec_kbps_sugar(run_cm, wav, cm_env):
    result = run_cm("--json", "degrade", wav, cm_env / "out.wav", "--codec", "mp3", "--kbps", "32")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["degradation"] == "mp3:kbps=32"
    info = sf.info(cm_env / "out.wav")
    assert info.channels == 1 and info.frames == 16000 and info.samplerate == 16000


def test_chain_snr_and_sample_rate(run_cm, wav, cm_env):
    result = run_cm(
        "--json", "degrade", wav, cm_env / "o.flac", "--chain", "telephony", "--snr", "10", "--sample-rate", "8000"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["degradation"] == "telephony+noise:snr=10"
    assert sf.info(cm_env / "o.flac").samplerate == 8000


def test_condition_picks_a_bitrate(run_cm, wav, cm_env):
    result = run_cm("--json", "degrade", wav, cm_env / "c.wav", "--condition", "C05")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["degradation"].startswith("mp3:kbps=")


def test_clipping_is_warned_with_count(run_cm, wav, cm_env):
    result = run_cm("degrade", wav, cm_env / "g.wav", "--chain", "gain:db=24")
    assert result.exit_code == 0
    assert "clipped" in result.stderr and any(ch.isdigit() for ch in result.stderr)


def test_list_shows_providers_and_missing(run_cm, cm_env):
    result = run_cm("--json", "degrade", "--list")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    rows = {r["name"]: r for r in payload["degradations"]}
    assert rows["mp3"]["available"] and "libmp3lame" in rows["mp3"]["provider"]
    from cm_cli.degrade.codecs import codec_available

    if not codec_available("amr-wb"):
        assert not rows["amr-wb"]["available"] and "libvo_amrwbenc" in rows["amr-wb"]["provider"]
    # issue 16: C11 exists; every condition lists its levels, sources and providers
    assert {c["id"] for c in payload["conditions"]} == {f"C{i:02d}" for i in range(1, 12)}
    for c in payload["conditions"]:
        assert len(c["levels"]) == (8 if c["id"] == "C11" else 5) and c["source"] and c["provided_by"]
    human = run_cm("degrade", "--list")
    assert "telephony" in human.stdout and "C05" in human.stdout


def _one_error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args,match",
    [
        (["--codec", "mp4"], "unknown degradation 'mp4'"),
        (["--chain", "mp3:speed=2"], "unknown parameter"),
        (["--codec", "mp3", "--kbps", "abc"], "not a number"),
        (["--codec", "mp3", "--kbps", "-32"], "must be > 0"),
        (["--codec", "amr-wb"], "libvo_amrwbenc"),
        (["--snr", "5", "--noise-dir", "NOPE"], "no such folder"),
    ],
)
def test_bad_options_one_line_no_output(run_cm, wav, cm_env, args, match):
    from cm_cli.degrade.codecs import codec_available

    if "amr-wb" in args and codec_available("amr-wb"):
        pytest.skip("amr-wb encoder present")
    args = [str(cm_env / "nope") if a == "NOPE" else a for a in args]
    result = run_cm("degrade", wav, cm_env / "out.wav", *args)
    assert result.exit_code == 1
    assert match in _one_error_line(result)
    assert not (cm_env / "out.wav").exists()


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "corrupt"])
def test_bad_audio_inputs(run_cm, cm_env, kind):
    bad = cm_env / f"{kind}.wav"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "text":
        bad.write_text("hello, I am not a wav file\n" * 10)
    else:
        good = cm_env / "good.wav"
        sf.write(good, _speech(), 16000)
        data = good.read_bytes()
        bad.write_bytes(data[:40] if kind == "truncated" else data[:44] + os.urandom(64) + b"RIFF" * 3)
        if kind == "corrupt":
            bad.write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt " + os.urandom(200))
    result = run_cm("degrade", bad, cm_env / "out.wav", "--codec", "mp3", "--kbps", "32")
    assert result.exit_code == 1, result.output
    line = _one_error_line(result)
    assert str(bad.name) in line
    assert not (cm_env / "out.wav").exists()


def test_unwritable_output(run_cm, wav, cm_env):
    locked = cm_env / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        result = run_cm("degrade", wav, locked / "out.wav", "--codec", "mp3")
        assert result.exit_code == 1 and "locked" in _one_error_line(result)
    finally:
        locked.chmod(0o700)


def test_unwritable_output_file_path_is_one_line(run_cm, wav, cm_env):
    blocker = cm_env / "afile"
    blocker.write_text("x")
    result = run_cm("degrade", wav, blocker / "out.wav", "--codec", "mp3")
    assert result.exit_code == 1 and "afile" in _one_error_line(result)


def test_corpus_mode_with_workers(run_cm, cm_env):
    audio = cm_env / "src"
    audio.mkdir()
    rows = []
    for i in range(4):
        sf.write(audio / f"U{i}.flac", _speech(seed=i), 16000)
        rows.append(
            dict(
                utt_id=f"U{i}",
                path=str(audio / f"U{i}.flac"),
                label="bonafide",
                attack=None,
                attack_family=None,
                speaker="S",
                split="eval",
                corpus="toy",
                codec=None,
                codec_q=None,
                domain="clean",
                duration=None,
                sample_rate=None,
            )
        )
    (audio / "X.wav").write_text("not audio")
    rows.append({**rows[0], "utt_id": "X", "path": str(audio / "X.wav")})
    write_parquet(pd.DataFrame(rows), cm_env / "m.parquet")
    result = run_cm(
        "--json",
        "degrade",
        "--manifest",
        cm_env / "m.parquet",
        "--out",
        cm_env / "deg",
        "--codec",
        "mp3",
        "--kbps",
        "32",
        "--workers",
        "2",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["written"] == 4 and payload["failed"] == 1
    df = read_table(cm_env / "deg" / "manifest.parquet")
    assert sorted(df.utt_id) == [f"U{i}__mp3_kbps-32" for i in range(4)]
    again = json.loads(
        run_cm(
            "--json",
            "degrade",
            "--manifest",
            cm_env / "m.parquet",
            "--out",
            cm_env / "deg",
            "--codec",
            "mp3",
            "--kbps",
            "32",
        ).stdout
    )
    assert again["written"] == 0 and again["skipped"] == 4
    human = run_cm(
        "degrade",
        "--manifest",
        cm_env / "m.parquet",
        "--out",
        cm_env / "deg2",
        "--policy",
        "aug_codec_basic",
        "--variants",
        "2",
    )
    assert human.exit_code == 0 and "failed" in human.stderr


def test_usage_errors(run_cm, wav, cm_env):
    assert run_cm("degrade", wav, cm_env / "o.wav").exit_code == 2
    assert run_cm("degrade", wav, cm_env / "o.wav", "--kbps", "32").exit_code == 2
    assert run_cm("degrade", wav, "--codec", "mp3").exit_code == 2


def test_condition_c11_one_file(run_cm, wav, cm_env):
    result = run_cm("--json", "degrade", wav, cm_env / "c11.flac", "--condition", "C11")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["condition"] == "C11" and payload["codec_q"] in {str(q) for q in range(1, 9)}
    info = sf.info(cm_env / "c11.flac")
    assert info.frames == 16000 and info.samplerate == 16000


def test_condition_c04_with_local_encodec_weights(run_cm, wav, cm_env, monkeypatch):
    import huggingface_hub.constants as constants

    from tests.degrade.conftest import make_tiny_encodec

    monkeypatch.delenv("CM_ENCODEC_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cm_env / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cm_env / "hf"))  # a machine with the real weights cached
    missing = run_cm("degrade", wav, cm_env / "c04.flac", "--condition", "C04")
    assert missing.exit_code == 1 and "cm download --model encodec" in missing.stderr
    monkeypatch.setenv("CM_ENCODEC_MODEL", str(make_tiny_encodec(cm_env / "tiny_encodec")))
    result = run_cm("--json", "degrade", wav, cm_env / "c04.flac", "--condition", "C04")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["degradation"].startswith("encodec:kbps=") and payload["bitrate_kbps"] in (1.5, 3, 6, 12, 24)
    assert sf.info(cm_env / "c04.flac").frames == 16000


def test_corpus_condition_columns(run_cm, cm_env):
    audio = cm_env / "src"
    audio.mkdir()
    rows = []
    for i in range(6):
        sf.write(audio / f"U{i}.flac", _speech(seed=i), 16000)
        rows.append(
            dict(
                utt_id=f"U{i}",
                path=str(audio / f"U{i}.flac"),
                label="bonafide",
                attack=None,
                attack_family=None,
                speaker="S",
                split="eval",
                corpus="toy",
                codec=None,
                codec_q=None,
                domain="clean",
                duration=None,
                sample_rate=None,
            )
        )
    write_parquet(pd.DataFrame(rows), cm_env / "m.parquet")
    result = run_cm(
        "--json", "degrade", "--manifest", cm_env / "m.parquet", "--out", cm_env / "c08", "--condition", "C08"
    )
    assert result.exit_code == 0, result.output
    df = read_table(cm_env / "c08" / "manifest.parquet")
    assert set(df["codec"]) == {"C08"} and set(df["codec_q"]) <= {"1", "2", "3", "4", "5"}
    kbps = {"1": 4.0, "2": 8.0, "3": 12.0, "4": 16.0, "5": 20.0}
    assert all(kbps[q] == b for q, b in zip(df["codec_q"], df["bitrate_kbps"]))
