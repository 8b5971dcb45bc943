"""`cm embed` on a full disk: one line, no temporary file left (issue 29 item 6)."""

from __future__ import annotations

import errno

import pytest

from tests.test_embedding import make_manifest


@pytest.mark.parametrize("arrow_text", [False, True])
def test_embed_on_a_full_disk_is_one_line(cm_env, run_cm, monkeypatch, tmp_path, arrow_text):
    import pyarrow.parquet as pq

    from cm_cli.models.ssl import save_tiny_ssl

    tiny = save_tiny_ssl("w2v2", tmp_path / "w2v2")
    manifest = make_manifest(cm_env / "audio", lengths=(8000, 9000), bad=False)

    def full(self, *args, **kwargs):  # simulated: root can write anywhere, so chmod cannot fill a disk
        if arrow_text:  # how Arrow's C++ writer reports it: an OSError with the reason only in its text
            raise OSError("IOError: [Errno 28] No space left on device. Detail: [errno 28] No space left on device")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    out = cm_env / "emb"
    result = run_cm("embed", "-m", manifest, "--backbone", tiny, "--out", out, "-j", "0")
    assert result.exit_code == 1 and "Traceback" not in result.output
    # outside a terminal, progress lines come first (timestamped); the error is one line after them
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line[:4].isdigit()]
    assert lines[0].startswith("error: cannot write") and "No space left on device" in lines[0]
    assert "free space" in result.stderr  # the ENOSPC hint
    assert not list(out.glob("embeddings*.parquet")) and not list(out.glob(".*.tmp"))
