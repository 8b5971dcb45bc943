"""Hub and network failures are one line (issue 31): the hub client's HTTP library errors are not OSErrors."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.data.test_hub_mirror import hub  # noqa: F401 - the stand-in hub fixture


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_hub_is_one_line_through_the_cli(cm_env, run_cm, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(cm_env / "hf"))
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_cm("download", "asvspoof5", "--source", "huggingface", "--subset", "protocols", "--base-url", url)
    assert result.exit_code == 1, result.output
    assert "Hugging Face hub unreachable" in result.stderr and "Traceback" not in result.output
    assert "zenodo" in result.stderr and "(--source)" in result.stderr
    assert not list((cm_env / "data").rglob("*.tar.gz"))


def test_unreachable_hub_in_a_real_process_prints_no_traceback(cm_env, monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cm_cli.app",
            "download",
            "asvspoof5",
            "--source",
            "huggingface",
            "--subset",
            "protocols",
            "--base-url",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cm_env,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) <= 3, done.stderr


def test_a_connection_lost_mid_download_is_one_line(cm_env, run_cm, hub, monkeypatch):  # noqa: F811
    import huggingface_hub

    from cm_cli.data.corpora.hub_mirror import network_errors

    http_errors = [e for e in network_errors() if e.__module__.split(".")[0] in ("httpx", "httpx2", "requests")]
    if not http_errors:
        pytest.skip("huggingface_hub here uses no separate HTTP library")
    error = http_errors[0]

    def lost(*args, **kwargs):
        raise error("connection reset by peer")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lost)
    result = run_cm("download", "asvspoof5", "--source", "huggingface", "--subset", "protocols", "--base-url", hub.url)
    assert result.exit_code == 1, result.output
    assert "download from the hub failed (connection reset by peer)" in result.stderr
