import json
import os

import pandas as pd
import pytest

from cm_cli.core.artifacts import (OutputDir, atomic_path, find_parts, read_json, read_table, write_json,
                                   write_parquet)
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
