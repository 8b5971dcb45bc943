"""Corpus mode: degraded manifest schema, FLAC outputs, failures, reruns, shards, workers, policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.artifacts import read_json, read_table, write_parquet
from cm_cli.core.shard import Shard
from cm_cli.data.manifest import REQUIRED_COLUMNS
from cm_cli.degrade.corpus import degrade_file, degrade_manifest

from .conftest import speechlike


def make_manifest(root: Path, n: int = 4, bad: bool = True) -> Path:
    audio = root / "audio"
    audio.mkdir(parents=True)
    rows = []
    for i in range(n):
        path = audio / f"U_{i:04d}.flac"
        sf.write(path, speechlike(16000, 1.0, seed=i), 16000)
        rows.append(
            dict(
                utt_id=f"U_{i:04d}",
                path=str(path),
                label="bonafide" if i % 2 else "spoof",
                attack=None if i % 2 else "A01",
                attack_family=None,
                speaker="S1",
                split="eval",
                corpus="toy",
                codec=None,
                codec_q=None,
                domain="clean",
                duration=None,
                sample_rate=None,
                gender="F",
            )
        )
    if bad:
        (audio / "BAD.wav").write_text("this is not audio\n")
        rows.append({**rows[0], "utt_id": "BAD", "path": str(audio / "BAD.wav")})
    manifest = root / "manifest.parquet"
    write_parquet(pd.DataFrame(rows), manifest)
    return manifest


def test_degraded_manifest_and_failures(tmp_path):
    manifest = make_manifest(tmp_path / "src")
    out = tmp_path / "deg"
    result = degrade_manifest(manifest, out, specs=["mp3:kbps=16|32", "telephony"], seed=0)
    assert (result.n_written, result.n_failed) == (12, 3)
    df = read_table(out / "manifest.parquet")
    assert list(df.columns[: len(REQUIRED_COLUMNS)]) == list(REQUIRED_COLUMNS)
    assert {"source_utt_id", "degradation", "gender"} <= set(df.columns)
    row = df[df.utt_id == "U_0001__mp3_kbps-32"].iloc[0]
    assert row.source_utt_id == "U_0001" and row.degradation == "mp3:kbps=32" and row.domain == "mp3:kbps=32"
    assert (row.codec, row.codec_q) == ("mp3", "32")
    assert row.path.endswith("audio/mp3_kbps-32/U_0001.flac") and Path(row.path).is_file()
    assert sf.info(row.path).frames == 16000 and row.sample_rate == 16000
    tele = df[df.degradation == "telephony"]
    assert tele.codec.isna().all() and len(tele) == 4
    failures = read_table(out / "failures.parquet")
    assert set(failures.source_utt_id) == {"BAD"} and failures.error.str.contains("BAD.wav").all()
    assert read_json(out / "cm.json")["kind"] == "degraded"
    assert not list(out.rglob(".*.tmp"))  # no partial files


def test_rerun_skips_finished_files_and_retries_failures(tmp_path):
    manifest = make_manifest(tmp_path / "src", n=2)
    out = tmp_path / "deg"
    degrade_manifest(manifest, out, specs=["g723_1"])
    target = out / "audio" / "g723_1" / "U_0000.flac"
    mtime = target.stat().st_mtime_ns
    second = degrade_manifest(manifest, out, specs=["g723_1"])  # a failure was listed, so it runs again
    assert second.n_written == 0 and second.n_skipped == 2 and second.n_failed == 1
    assert target.stat().st_mtime_ns == mtime
    target.unlink()  # a preempted job lost one file
    third = degrade_manifest(manifest, out, specs=["g723_1"])
    assert third.n_written == 1 and target.is_file()


def test_complete_run_is_not_redone_and_other_options_refused(tmp_path):
    from cm_cli.core.errors import CmError

    manifest = make_manifest(tmp_path / "src", n=2, bad=False)
    out = tmp_path / "deg"
    degrade_manifest(manifest, out, specs=["alaw"])
    assert degrade_manifest(manifest, out, specs=["alaw"]).already_done
    with pytest.raises(CmError, match="different options"):
        degrade_manifest(manifest, out, specs=["mulaw"])


def test_shards_and_workers_give_the_same_table(tmp_path):
    manifest = make_manifest(tmp_path / "src", n=5, bad=False)
    whole = degrade_manifest(manifest, tmp_path / "one", specs=["mp3:kbps=24"], workers=2)
    for i in range(2):
        degrade_manifest(manifest, tmp_path / "sharded", specs=["mp3:kbps=24"], shard=Shard(i, 2))
    assert (tmp_path / "sharded" / "part-00000-of-00002.parquet").is_file()
    assert (tmp_path / "sharded" / "cm.part-1-of-2.json").is_file()
    a = read_table(whole.manifest).sort_values("utt_id").reset_index(drop=True)
    b = read_table(tmp_path / "sharded").sort_values("utt_id").reset_index(drop=True)
    assert a.utt_id.tolist() == b.utt_id.tolist() and len(a) == 5
    x, _ = sf.read(a.path[0])
    y, _ = sf.read(b.path[0])
    np.testing.assert_array_equal(x, y)  # workers and shards produce identical audio


def test_condition_and_policy_variants(tmp_path):
    manifest = make_manifest(tmp_path / "src", n=3, bad=False)
    res = degrade_manifest(manifest, tmp_path / "c", condition="C08", seed=1)
    df = read_table(res.manifest)
    assert (df.codec == "C08").all() and (df.domain == "C08").all()
    assert df.degradation.str.startswith("opus:band=nb:kbps=").all()
    assert df.codec_q.notna().all()
    res = degrade_manifest(manifest, tmp_path / "p", policy="clean:0.5, mulaw:0.5", variants=3, seed=1)
    df = read_table(res.manifest)
    assert len(df) == 9 and set(df.domain) <= {"clean", "mulaw"} and df.utt_id.is_unique
    assert set(df.degradation) == set(df.domain)


def test_degrade_file_reports_clipping_and_converts_format(tmp_path):
    src = tmp_path / "in.wav"
    stereo = np.stack([speechlike(16000, 1.0, seed=1), speechlike(16000, 1.0, seed=2)], axis=1)
    sf.write(src, stereo, 16000)
    result = degrade_file(src, tmp_path / "out.flac", "gain:db=20", sample_rate=8000)
    assert result.clipped > 0 and "clipped" in result.warnings[-1]
    info = sf.info(tmp_path / "out.flac")
    assert info.channels == 1 and info.samplerate == 8000 and info.format == "FLAC"


# --------------------------------------------------------------------------- issue 19


def test_new_manifest_into_the_same_directory_is_not_already_complete(tmp_path):
    # item 1: a directory built from another manifest printed "already complete" and kept the old rows
    first = make_manifest(tmp_path / "a", n=2, bad=False)
    out = tmp_path / "deg"
    degrade_manifest(first, out, specs=["alaw"])
    second = make_manifest(tmp_path / "b", n=3, bad=False)
    frame = read_table(second)
    frame["utt_id"] = [f"NEW_{i}" for i in range(len(frame))]
    write_parquet(frame, second)
    result = degrade_manifest(second, out, specs=["alaw"])
    assert not result.already_done and result.n_written == 3
    assert sorted(read_table(out / "manifest.parquet").source_utt_id) == ["NEW_0", "NEW_1", "NEW_2"]
    # the same manifest rewritten at the same path (fewer rows) is also redone
    write_parquet(frame.iloc[:1], second)
    result = degrade_manifest(second, out, specs=["alaw"])
    assert not result.already_done and (result.n_written, result.n_skipped) == (0, 1)
    assert read_table(out / "manifest.parquet").source_utt_id.tolist() == ["NEW_0"]


def test_force_redoes_the_work_with_the_new_options(tmp_path):
    # item 2: --force kept the seed-0 audio ("0 written, N skipped") and the 16 kHz files after --sample-rate 8000
    manifest = make_manifest(tmp_path / "src", n=2, bad=False)
    out = tmp_path / "deg"
    degrade_manifest(manifest, out, specs=["noise:snr=10"], seed=0)
    path = out / "audio" / "noise_snr-10" / "U_0000.flac"
    before, _ = sf.read(path)
    forced = degrade_manifest(manifest, out, specs=["noise:snr=10"], seed=1, force=True)
    assert (forced.n_written, forced.n_skipped) == (2, 0)
    after, _ = sf.read(path)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(
        after,
        sf.read(
            degrade_manifest(manifest, tmp_path / "clean1", specs=["noise:snr=10"], seed=1).out_dir
            / path.relative_to(out)
        )[0],
    )
    forced = degrade_manifest(manifest, out, specs=["noise:snr=10"], seed=1, sample_rate=8000, force=True)
    assert forced.n_written == 2 and sf.info(path).samplerate == 8000
    assert read_json(out / "cm.json")["options"]["sample_rate"] == 8000


def test_force_with_the_same_options_rewrites_every_file(tmp_path):
    manifest = make_manifest(tmp_path / "src", n=2, bad=False)
    out = tmp_path / "deg"
    degrade_manifest(manifest, out, specs=["alaw"])
    assert degrade_manifest(manifest, out, specs=["alaw"], force=True).n_written == 2


def test_a_truncated_output_is_not_reused(tmp_path):
    # item 3: a FLAC truncated by a full disk was accepted as "skipped" on the rerun
    manifest = make_manifest(tmp_path / "src", n=2, bad=False)
    out = tmp_path / "deg"
    degrade_manifest(manifest, out, specs=["telephony"])
    path = out / "audio" / "telephony" / "U_0001.flac"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) * 3 // 4])
    (out / "cm.json").write_text((out / "cm.json").read_text().replace('"complete"', '"failed"'))
    result = degrade_manifest(manifest, out, specs=["telephony"])
    assert (result.n_written, result.n_skipped) == (1, 1)
    assert path.read_bytes() == good


def test_a_write_cut_short_is_a_failure_not_an_output(tmp_path, monkeypatch):
    # item 3: with the disk full the writer produced a truncated FLAC without raising
    import cm_cli.data.audio as audio

    real = audio.save_audio

    def truncating(path, samples, rate):
        clipped = real(path, samples, rate)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) * 3 // 4])
        return clipped

    manifest = make_manifest(tmp_path / "src", n=2, bad=False)
    out = tmp_path / "deg"
    monkeypatch.setattr(audio, "save_audio", truncating)
    result = degrade_manifest(manifest, out, specs=["telephony"])
    assert result.n_failed == 2 and result.n_written == 0
    assert read_table(out / "failures.parquet").error.str.contains("truncated").all()
    assert not list((out / "audio").rglob("*.flac")) and not list(out.rglob(".*partial*"))
    monkeypatch.setattr(audio, "save_audio", real)
    assert degrade_manifest(manifest, out, specs=["telephony"]).n_written == 2


def test_shards_with_different_options_do_not_merge(tmp_path):
    # item 4: shard 0/2 with mp3:kbps=32 and shard 1/2 with --seed 7 noise:snr=5 merged into one set
    from cm_cli.core.errors import CmError

    manifest = make_manifest(tmp_path / "src", n=4, bad=False)
    out = tmp_path / "deg"
    degrade_manifest(manifest, out, specs=["alaw"], shard=Shard(0, 2))
    degrade_manifest(manifest, out, specs=["noise:snr=5"], seed=7, shard=Shard(1, 2))
    with pytest.raises(CmError, match="different options"):
        read_table(out, name="manifest")


def test_outputs_are_readable_by_the_group(tmp_path):
    # item 11: audio and tables were written 0600 whatever the umask
    import os

    manifest = make_manifest(tmp_path / "src", n=1, bad=False)
    old = os.umask(0o022)
    try:
        degrade_manifest(manifest, tmp_path / "deg", specs=["alaw"])
    finally:
        os.umask(old)
    for path in [
        tmp_path / "deg" / "manifest.parquet",
        tmp_path / "deg" / "cm.json",
        *(tmp_path / "deg" / "audio").rglob("*.flac"),
    ]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_sigterm_stops_cleanly_and_the_rerun_equals_a_clean_run(tmp_path, workers=2):
    # item 9: SIGTERM exited -15 leaving the lock and temporary files
    import os
    import signal
    import subprocess
    import sys
    import time

    manifest = make_manifest(tmp_path / "src", n=24, bad=False)
    out = tmp_path / "deg"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "CM_DATA_ROOT": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "cm_cli",
        "degrade",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--chain",
        "mp3:kbps=32|64",
        "-j",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = out / ".committed.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    time.sleep(0.5)  # pool workers finish unwinding
    assert not list(out.glob(".*.lock")), "lock left behind"
    assert not [p for p in out.rglob(".*") if p.is_file() and not p.name.startswith(".committed")], "temp files left"
    assert read_json(out / "cm.json")["status"] == "failed"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    clean = degrade_manifest(manifest, tmp_path / "clean", specs=["mp3:kbps=32|64"])
    a = read_table(out / "manifest.parquet").sort_values("utt_id").reset_index(drop=True)
    b = read_table(clean.manifest).sort_values("utt_id").reset_index(drop=True)
    assert a.utt_id.tolist() == b.utt_id.tolist() and len(a) == 48
    for x, y in zip(a.path, b.path):
        np.testing.assert_array_equal(sf.read(x)[0], sf.read(y)[0])


def test_disk_full_while_writing_audio_is_a_failure_line_not_a_traceback(tmp_path, monkeypatch):
    # item 13: ENOSPC while writing a file is reported per file, nothing half-written is kept
    import errno

    import cm_cli.data.audio as audio

    def full(path, samples, rate):
        Path(path).write_bytes(b"fLaC" + b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    manifest = make_manifest(tmp_path / "src", n=2, bad=False)
    out = tmp_path / "deg"
    monkeypatch.setattr(audio, "save_audio", full)
    result = degrade_manifest(manifest, out, specs=["alaw"])
    assert result.n_failed == 2
    assert read_table(out / "failures.parquet").error.str.contains("No space left on device").all()
    assert not [p for p in (out / "audio").rglob("*") if p.is_file()]
