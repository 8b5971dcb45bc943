"""SIGTERM handling (issue 19 item 9): unwind, remove temporary files, release the lock, exit 143 with one line."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cm_cli.core.errors import CmError
from cm_cli.core.signals import Terminated, stop_on_sigterm

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_raises_terminated_and_cleans_up(tmp_path):
    from cm_cli.core.artifacts import OutputDir, atomic_path, read_json

    out = tmp_path / "out"
    with pytest.raises(Terminated) as info:
        with stop_on_sigterm("cm test"):
            with OutputDir(out, "scores", options={}):
                with atomic_path(out / "table.parquet") as tmp:
                    tmp.write_bytes(b"half")
                    os.kill(os.getpid(), signal.SIGTERM)
    assert not isinstance(info.value, Exception) and info.value.exit_code == 143
    assert "cm test stopped by SIGTERM" in info.value.message and "rerun" in info.value.hint
    assert sorted(p.name for p in out.iterdir()) == ["cm.json"]  # no lock, no temporary file
    assert read_json(out / "cm.json")["status"] == "failed"
    assert signal.getsignal(signal.SIGTERM) is not None  # restored


def test_per_item_handlers_do_not_swallow_it():
    # `except Exception` / `except CmError` around one file's decoding must not turn a SIGTERM into a failed item
    with pytest.raises(Terminated):
        with stop_on_sigterm("cm test"):
            for _ in range(3):
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                except (CmError, Exception):
                    pass


def test_any_cm_command_exits_143_with_one_line(tmp_path):
    # the root group installs the handler for every command (embed and eval included)
    code = textwrap.dedent("""
        import os, signal, sys, typer
        from cm_cli.app import app
        from cm_cli.commands import _common

        @app.command("sleeper")
        def sleeper() -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            import time; time.sleep(30)

        app(args=["sleeper"], prog_name="cm")
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert out.returncode == 143, out.stderr
    assert "cm sleeper stopped by SIGTERM" in out.stderr and "Traceback" not in out.stderr


def test_a_forked_child_dies_by_the_signal_as_before():
    # data-loader workers fork from the main process and inherit the handler: they must not print a traceback
    with stop_on_sigterm("cm test"):
        pid = os.fork()
        if pid == 0:  # child
            os.kill(os.getpid(), signal.SIGTERM)
            os._exit(0)  # not reached
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
