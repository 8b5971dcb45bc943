"""Corpus jobs survive dying workers and notice damaged outputs (issue 29 item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.artifacts import read_json, read_table, write_parquet
from cm_cli.data.manifest import normalise_manifest
from cm_cli.degrade.corpus import degrade_manifest
from tests.hostile.media import tone, write_nonfinite

REPO = Path(__file__).resolve().parents[2]


def _manifest(root: Path, n: int = 4, nan_row: bool = True) -> Path:
    audio = root / "audio"
    audio.mkdir(parents=True)
    rows = []
    for i in range(n):
        path = audio / f"U_{i:04d}.flac"
        sf.write(path, tone(0.5, freq=200.0 + 50 * i), 16000)
        rows.append(
            dict(
                utt_id=f"U_{i:04d}",
                path=str(path),
                label="bonafide",
                attack=None,
                speaker="S1",
                split="eval",
                corpus="toy",
                codec=None,
                codec_q=None,
                domain="clean",
            )
        )
    if nan_row:
        rows.insert(1, {**rows[0], "utt_id": "NAN", "path": str(write_nonfinite(audio / "NAN.wav"))})
    manifest = root / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    return manifest


def test_nan_row_with_mp3_and_two_workers_ends_with_a_failure_entry(tmp_path):
    manifest = _manifest(tmp_path / "src")
    out = tmp_path / "deg"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CM_DATA_ROOT": str(tmp_path), "CM_RUNS_DIR": str(tmp_path / "runs")}
    cmd = [
        sys.executable,
        "-m",
        "cm_cli",
        "degrade",
        "--manifest",
        str(manifest),
        "--chain",
        "mp3:kbps=32",
        "-j",
        "2",
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode < 128 and done.returncode == 0, done.stderr
    failures = read_table(out / "failures.parquet")
    assert failures.source_utt_id.tolist() == ["NAN"] and "non-finite" in failures.error.iloc[0]
    assert len(read_table(out / "manifest.parquet")) == 4
    assert not list(out.glob(".*.lock"))


@pytest.mark.parametrize("workers", [2, 1])  # -j 1 runs in one worker process too, so the abort is contained
def test_a_native_abort_in_a_worker_is_one_failure_and_the_rest_complete(tmp_path, monkeypatch, workers):
    import cm_cli.degrade.registry as registry

    real = registry.apply_spec

    def aborting(samples, sr, spec, *, seed=0, utt_id=""):
        if utt_id == "U_0002":
            os.abort()  # what LAME's assertion does to the process (exit 134)
        return real(samples, sr, spec, seed=seed, utt_id=utt_id)

    monkeypatch.setattr(registry, "apply_spec", aborting)  # the fork-started workers inherit the patch
    manifest = _manifest(tmp_path / "src", n=6, nan_row=False)
    out = tmp_path / "deg"
    import faulthandler

    enabled = faulthandler.is_enabled()
    faulthandler.disable()  # pytest's handler would print the aborting worker's stack
    try:
        result = degrade_manifest(manifest, out, specs=["alaw"], workers=workers)
    finally:
        if enabled:
            faulthandler.enable()
    assert result.n_failed == 1 and result.n_written == 5
    failure = read_table(out / "failures.parquet").iloc[0]
    assert failure.source_utt_id == "U_0002" and "SIGABRT" in failure.error
    table = read_table(out / "manifest.parquet")
    assert table.source_utt_id.tolist() == ["U_0000", "U_0001", "U_0003", "U_0004", "U_0005"]  # order kept
    assert not list(out.glob(".*.lock")) and not list(out.rglob(".*partial*"))
    monkeypatch.setattr(registry, "apply_spec", real)
    clean = degrade_manifest(manifest, tmp_path / "clean", specs=["alaw"], workers=1)
    for a, b in zip(table.path, read_table(clean.manifest).path.drop(2)):
        np.testing.assert_array_equal(sf.read(a)[0], sf.read(b)[0])


def test_a_finished_degrade_notices_outputs_deleted_or_changed_afterwards(tmp_path):
    manifest = _manifest(tmp_path / "src", n=3, nan_row=False)
    out = tmp_path / "deg"
    degrade_manifest(manifest, out, specs=["alaw"])
    assert degrade_manifest(manifest, out, specs=["alaw"]).already_done
    first = out / "audio" / "alaw" / "U_0000.flac"
    second = out / "audio" / "alaw" / "U_0001.flac"
    good = first.read_bytes(), second.read_bytes()
    first.write_bytes(good[0][: len(good[0]) // 2])  # truncated: the size check sees it
    second.unlink()
    rerun = degrade_manifest(manifest, out, specs=["alaw"])
    assert not rerun.already_done and sorted(rerun.redone) == ["audio/alaw/U_0000.flac", "audio/alaw/U_0001.flac"]
    assert (rerun.n_written, rerun.n_skipped) == (2, 1)
    assert (first.read_bytes(), second.read_bytes()) == good
    # same size, other bytes: only the checksum tells, with verify
    flipped = bytearray(good[0])
    flipped[-1] ^= 0xFF
    first.write_bytes(bytes(flipped))
    assert degrade_manifest(manifest, out, specs=["alaw"]).already_done
    again = degrade_manifest(manifest, out, specs=["alaw"], verify=True)
    assert again.redone == ["audio/alaw/U_0000.flac"] and first.read_bytes() == good[0]
    assert read_json(out / "cm.json")["status"] == "complete"


@pytest.mark.parametrize("chain", [["--codec", "mp3", "--kbps", "32"], ["--chain", "mulaw"], ["--chain", "opus"]])
def test_degrade_one_nan_file_is_one_line(tmp_path, chain):
    nan = write_nonfinite(tmp_path / "nan.wav")
    env = {**os.environ, "PYTHONPATH": str(REPO), "CM_DATA_ROOT": str(tmp_path), "CM_RUNS_DIR": str(tmp_path / "runs")}
    done = subprocess.run(
        [sys.executable, "-m", "cm_cli", "--seed", "1", "degrade", str(nan), str(tmp_path / "o.wav"), *chain],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode in (1, 2), done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "non-finite" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "o.wav").exists()
