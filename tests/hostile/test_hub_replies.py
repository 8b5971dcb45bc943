"""`cm download --model` against a broken or hostile hub on 127.0.0.1: one line, nothing outside the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHA = "a" * 40
REPLIES = {
    "dotdot": json.dumps(
        {"id": "org/m", "sha": SHA, "siblings": [{"rfilename": "config.json"}, {"rfilename": "../../../evil.json"}]}
    ).encode(),
    "malformed": b'{"sha": 5, "siblings": "nope"}',
    "garbage": b"<html>not json",
}


def _server(mode: str) -> ThreadingHTTPServer:
    class Hub(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            body = REPLIES[mode] if self.path.startswith("/api/models/") else b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Repo-Commit", SHA)
            self.send_header("ETag", '"e"')
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


@pytest.mark.parametrize("mode", sorted(REPLIES))
def test_a_bad_hub_reply_is_one_line(tmp_path, mode):
    server = _server(mode)
    try:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
            "HF_HOME": str(tmp_path / "hf"),
            "CM_CACHE_DIR": str(tmp_path / "cache" / "cm"),
            "CM_DATA_ROOT": str(tmp_path),
            "HF_HUB_DISABLE_XET": "1",
        }
        env.pop("HF_HUB_OFFLINE", None)
        done = subprocess.run(
            [sys.executable, "-m", "cm_cli", "download", "--model", "org/m"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: cannot download 'org/m'")
    assert len([line for line in done.stderr.splitlines() if line.strip() and not line.startswith("hint:")]) == 1
    assert not list(tmp_path.rglob("evil.json"))  # nothing written outside the cache
