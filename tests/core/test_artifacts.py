import json
import os

import pandas as pd
import pytest

from cm_cli.core.artifacts import OutputDir, atomic_path, find_parts, read_json, read_table, write_json, write_parquet
from cm_cli.core.errors import CmError
from cm_cli.core.shard import Shard


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_json_roundtrip_and_bad_json_names_file_and_line(tmp_path):
    write_json({"a": 1}, tmp_path / "a.json")
    assert read_json(tmp_path / "a.json") == {"a": 1}
    (tmp_path / "b.json").write_text('{\n "a": }')
    with pytest.raises(CmError, match=r"b.json:2"):
        read_json(tmp_path / "b.json")


def test_parts_directory_reads_as_one_table(tmp_path):
    for i in range(3):
        write_parquet(pd.DataFrame({"utt_id": [f"u{i}"], "score": [float(i)]}), tmp_path / Shard(i, 3).part_name())
    df = read_table(tmp_path)
    assert list(df["utt_id"]) == ["u0", "u1", "u2"]


def test_incomplete_parts_are_refused_naming_the_missing(tmp_path):
    for i in (0, 2):
        write_parquet(pd.DataFrame({"a": [i]}), tmp_path / Shard(i, 3).part_name())
    with pytest.raises(CmError, match="part-00001-of-00003"):
        read_table(tmp_path)


def test_mixed_parts_are_refused(tmp_path):
    write_parquet(pd.DataFrame({"a": [0]}), tmp_path / Shard(0, 1).part_name())
    write_parquet(pd.DataFrame({"a": [0]}), tmp_path / Shard(0, 2).part_name())
    with pytest.raises(CmError, match="mixed"):
        find_parts(tmp_path)


def test_missing_column_lists_found_columns(tmp_path):
    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")
    with pytest.raises(CmError, match="no column") as info:
        read_table(tmp_path / "t.parquet", columns=["b"])
    assert "columns found: a" in info.value.hint


def test_output_dir_provenance_skip_and_refusal(tmp_path):
    out = tmp_path / "out"
    with OutputDir(out, "metrics", options={"x": 1}, inputs=[]) as o:
        assert not o.done
        o.finish(summary={"ok": True})
    record = json.loads((out / "cm.json").read_text())
    for key in ("kind", "cm_version", "argv", "options", "inputs", "started", "finished", "host", "versions"):
        assert key in record
    assert record["status"] == "complete" and record["kind"] == "metrics"
    with OutputDir(out, "metrics", options={"x": 1}) as o:
        assert o.done
    with pytest.raises(CmError, match="different options"):
        with OutputDir(out, "metrics", options={"x": 2}):
            pass
    with OutputDir(out, "metrics", options={"x": 2}, force=True) as o:
        assert not o.done


def test_lock_refuses_a_second_writer_and_recovers_a_stale_lock(tmp_path):
    out = tmp_path / "out"
    with OutputDir(out, "scores", options={}):
        with pytest.raises(CmError, match="another cm process"):
            with OutputDir(out, "scores", options={}):
                pass
    # a lock left by a dead process on this host is taken over
    import socket

    (out / ".cm.lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    with OutputDir(out, "scores", options={"y": 1}, force=True):
        pass
    assert not (out / ".cm.lock").exists()


def test_failed_step_is_recorded_and_not_skipped(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(ValueError):
        with OutputDir(out, "scores", options={"a": 1}):
            raise ValueError("bad")
    assert read_json(out / "cm.json")["status"] == "failed"
    with OutputDir(out, "scores", options={"a": 1}) as o:
        assert not o.done


def test_shard_records_are_per_part(tmp_path):
    with OutputDir(tmp_path, "embeddings", options={}, shard=Shard(1, 4)) as o:
        o.finish()
    assert (tmp_path / "cm.part-1-of-4.json").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(CmError, match="not writable|cannot"):
        write_json({}, ro / "sub" / "a.json")


def test_output_under_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CmError, match="cannot create output directory"):
        with OutputDir(blocker / "out", "metrics", options={}):
            pass


# --------------------------------------------------------------------------- issue 19


def test_outputs_respect_the_umask(tmp_path):
    # item 11: mkstemp's 0600 made every artifact unreadable to colleagues
    old = os.umask(0o022)
    try:
        write_json({"a": 1}, tmp_path / "a.json")
        write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")
        with atomic_path(tmp_path / "x.bin") as tmp:
            tmp.write_bytes(b"x")
        os.umask(0o077)
        write_json({"a": 1}, tmp_path / "private.json")
    finally:
        os.umask(old)
    for name in ("a.json", "t.parquet", "x.bin"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600


def test_disk_full_is_one_cm_error_and_leaves_nothing(tmp_path, monkeypatch):
    # item 13: ENOSPC in any artifact write is a CmError naming the file, no temp file left
    import errno

    import pyarrow.parquet as pq

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(CmError, match=r"cannot write .*t\.parquet: No space left on device") as info:
        write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")
    assert "free space" in info.value.hint
    with pytest.raises(CmError, match="No space left"):
        with atomic_path(tmp_path / "b.json") as tmp:
            tmp.write_text("half")
            full()
    assert list(tmp_path.iterdir()) == []


def test_rewritten_input_at_the_same_path_is_not_already_complete(tmp_path):
    # item 1: skip-if-done keyed on the inputs' content, not their path
    manifest = tmp_path / "manifest.parquet"
    manifest.write_bytes(b"first manifest")
    out = tmp_path / "out"
    with OutputDir(out, "embeddings", options={"x": 1}, inputs=[manifest]) as o:
        o.finish()
    with OutputDir(out, "embeddings", options={"x": 1}, inputs=[manifest]) as o:
        assert o.done and o.stale is None
    manifest.write_bytes(b"a different manifest")
    with OutputDir(out, "embeddings", options={"x": 1}, inputs=[manifest]) as o:
        assert not o.done
        assert "manifest.parquet" in o.stale
        o.finish()
    assert read_json(out / "cm.json")["inputs_digest"] == o.inputs_digest
    with OutputDir(out, "embeddings", options={"x": 1}, inputs=[manifest]) as o:
        assert o.done


def test_empty_lock_file_does_not_block_a_rerun(tmp_path):
    # item 8: a kill between create and write left an empty lock that blocked every rerun
    out = tmp_path / "out"
    out.mkdir()
    (out / ".cm.lock").write_text("")
    with OutputDir(out, "scores", options={}) as o:
        o.finish()
    assert not (out / ".cm.lock").exists()


def test_lock_of_another_host_blocks_until_its_lease_expires(tmp_path):
    # item 8: a lock left by a job killed on another node is taken over once its lease expired
    import time

    out = tmp_path / "out"
    out.mkdir()
    fresh = {
        "pid": 1,
        "host": "other-node",
        "since": time.time(),
        "refreshed": time.time(),
        "lease_seconds": 300,
        "token": "other-node:1:1",
    }
    (out / ".cm.lock").write_text(json.dumps(fresh))
    with pytest.raises(CmError, match="another cm process .*other-node"):
        with OutputDir(out, "scores", options={}):
            pass
    expired = {**fresh, "refreshed": time.time() - 301}
    (out / ".cm.lock").write_text(json.dumps(expired))
    os.utime(out / ".cm.lock", (time.time() - 301, time.time() - 301))  # expiry is judged by the file's mtime
    with OutputDir(out, "scores", options={}) as o:
        held = json.loads((out / ".cm.lock").read_text())
        assert held["host"] != "other-node" or held["pid"] != 1
        o.finish()
    assert not (out / ".cm.lock").exists()


def test_lease_is_refreshed_while_working(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("CM_LOCK_LEASE", "1.2")
    out = tmp_path / "out"
    with OutputDir(out, "scores", options={}):
        first = json.loads((out / ".cm.lock").read_text())["refreshed"]
        time.sleep(1.0)
        second = json.loads((out / ".cm.lock").read_text())["refreshed"]
        assert second > first
        with pytest.raises(CmError, match="another cm process"):  # still held: refreshed within the lease
            with OutputDir(out, "scores", options={}):
                pass


def test_parts_with_different_options_never_merge(tmp_path):
    # item 4: shard 0/2 with mp3:kbps=32 and shard 1/2 with noise:snr=5 merged into one "complete" set
    for index, options in ((0, {"specs": ["mp3:kbps=32"], "seed": 0}), (1, {"specs": ["noise:snr=5"], "seed": 7})):
        with OutputDir(tmp_path, "degraded", options={**options, "shard": f"{index}/2"}, shard=Shard(index, 2)) as o:
            write_parquet(pd.DataFrame({"utt_id": [f"u{index}"]}), tmp_path / Shard(index, 2).part_name())
            o.finish()
    with pytest.raises(CmError, match="different options .*seed: 0 vs 7"):
        read_table(tmp_path, name="manifest")


def test_parts_made_from_different_inputs_never_merge(tmp_path):
    source = tmp_path / "in.parquet"
    out = tmp_path / "out"
    for index in range(2):
        source.write_bytes(b"input %d" % index)
        with OutputDir(out, "embeddings", options={"shard": f"{index}/2"}, inputs=[source], shard=Shard(index, 2)) as o:
            write_parquet(pd.DataFrame({"utt_id": [f"u{index}"]}), out / Shard(index, 2).part_name())
            o.finish()
    with pytest.raises(CmError, match="different inputs"):
        read_table(out, name="embeddings")


def test_unfinished_part_is_refused(tmp_path):
    with OutputDir(tmp_path, "degraded", options={}, shard=Shard(0, 2)) as o:
        o.finish()
    write_parquet(pd.DataFrame({"utt_id": ["a"]}), tmp_path / Shard(0, 2).part_name())
    with pytest.raises(ValueError):
        with OutputDir(tmp_path, "degraded", options={}, shard=Shard(1, 2)):
            write_parquet(pd.DataFrame({"utt_id": ["b"]}), tmp_path / Shard(1, 2).part_name())
            raise ValueError("killed")
    with pytest.raises(CmError, match="part 1/2 is not complete"):
        read_table(tmp_path, name="manifest")


def test_whole_table_and_parts_never_share_a_directory(tmp_path):
    # item 4: an old whole-run manifest.parquet silently took precedence over a complete set of parts
    write_parquet(pd.DataFrame({"utt_id": ["old"]}), tmp_path / "manifest.parquet")
    for index in range(2):
        write_parquet(pd.DataFrame({"utt_id": [f"u{index}"]}), tmp_path / Shard(index, 2).part_name())
    with pytest.raises(CmError, match="both a whole-run manifest.parquet and part"):
        read_table(tmp_path, name="manifest")


def test_writers_keep_one_layout(tmp_path):
    with OutputDir(tmp_path, "degraded", options={}) as o:
        write_parquet(pd.DataFrame({"utt_id": ["old"]}), tmp_path / "manifest.parquet")
        o.finish(outputs={"manifest": str(tmp_path / "manifest.parquet")})
    with pytest.raises(CmError, match="whole-run result"):
        with OutputDir(tmp_path, "degraded", options={}, shard=Shard(0, 2)):
            pass
    with OutputDir(tmp_path, "degraded", options={}, shard=Shard(0, 2), force=True) as o:
        o.finish()
    assert not (tmp_path / "manifest.parquet").exists() and not (tmp_path / "cm.json").exists()
    with pytest.raises(CmError, match="sharded results"):
        with OutputDir(tmp_path, "degraded", options={}):
            pass


def test_lock_without_hard_links_falls_back_to_exclusive_create(tmp_path, monkeypatch):
    import errno

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    out = tmp_path / "out"
    with OutputDir(out, "scores", options={}):
        assert json.loads((out / ".cm.lock").read_text())["pid"] == os.getpid()
        with pytest.raises(CmError, match="another cm process"):
            with OutputDir(out, "scores", options={}):
                pass
    assert not (out / ".cm.lock").exists()


def _foreign_lock(out, *, content_time: float, mtime: float) -> None:
    """A lock of a live job on another node whose clock says ``content_time``; the file server stamped ``mtime``."""
    out.mkdir(exist_ok=True)
    holder = {
        "pid": 1,
        "host": "other-node",
        "since": content_time,
        "refreshed": content_time,
        "lease_seconds": 300,
        "token": "other-node:1:1",
    }
    (out / ".cm.lock").write_text(json.dumps(holder))
    os.utime(out / ".cm.lock", (mtime, mtime))


def test_lease_expiry_uses_the_filesystem_clock_not_the_holders_clock(tmp_path):
    # issue 18: a holder whose clock runs hours behind wrote a "refreshed" time 3 h old, but the
    # file server stamped its last write 10 s ago: the lease is live, the lock is not taken over
    import time

    out = tmp_path / "behind"
    _foreign_lock(out, content_time=time.time() - 3 * 3600, mtime=time.time() - 10)
    with pytest.raises(CmError, match="another cm process .*other-node"):
        with OutputDir(out, "scores", options={}):
            pass
    assert json.loads((out / ".cm.lock").read_text())["host"] == "other-node"


def test_lease_of_a_holder_with_a_clock_ahead_expires_on_filesystem_time(tmp_path):
    # issue 18: a dead holder whose clock ran hours ahead wrote a "refreshed" time in the future;
    # its file was last written 301 s ago by the server's clock, so its 300 s lease is over
    import time

    out = tmp_path / "ahead"
    _foreign_lock(out, content_time=time.time() + 3 * 3600, mtime=time.time() - 301)
    with OutputDir(out, "scores", options={}) as o:
        assert json.loads((out / ".cm.lock").read_text())["host"] != "other-node"
        o.finish()
    assert not (out / ".cm.lock").exists()


def test_lease_age_is_the_probe_mtime_minus_the_lock_mtime(tmp_path, monkeypatch):
    # the filesystem's "now" is what it stamps on a fresh file, whatever this host's clock says
    import time

    from cm_cli.core.artifacts import _Lease

    out = tmp_path / "skew"
    _foreign_lock(out, content_time=0.0, mtime=1_000_000.0)
    lease = _Lease(out / ".cm.lock", 300.0)
    monkeypatch.setattr(time, "time", lambda: 5_000_000_000.0)  # this node's clock is far off
    now = lease.filesystem_now()
    assert abs(now - os.stat(out).st_mtime) < 5  # the probe was written (and removed) in that directory just now
    assert abs(lease.age() - (now - 1_000_000.0)) < 5
    assert sorted(p.name for p in out.iterdir()) == [".cm.lock"]
