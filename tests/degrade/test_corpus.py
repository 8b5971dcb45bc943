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
        rows.append(dict(utt_id=f"U_{i:04d}", path=str(path), label="bonafide" if i % 2 else "spoof",
                         attack=None if i % 2 else "A01", attack_family=None, speaker="S1", split="eval",
                         corpus="toy", codec=None, codec_q=None, domain="clean", duration=None, sample_rate=None,
                         gender="F"))
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
    degrade_manifest(manifest, out, specs=["gsm"])
    target = out / "audio" / "gsm" / "U_0000.flac"
    mtime = target.stat().st_mtime_ns
    second = degrade_manifest(manifest, out, specs=["gsm"])  # a failure was listed, so it runs again
    assert second.n_written == 0 and second.n_skipped == 2 and second.n_failed == 1
    assert target.stat().st_mtime_ns == mtime
    target.unlink()  # a preempted job lost one file
    third = degrade_manifest(manifest, out, specs=["gsm"])
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
