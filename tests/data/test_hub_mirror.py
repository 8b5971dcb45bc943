"""`cm download asvspoof5 --source huggingface` against a local stand-in of the hub API on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import pytest

from cm_cli.data.corpora import sources
from tests.data.test_download import make_tar, md5

PROTOCOLS = make_tar(
    {"ASVspoof5_protocols/ASVspoof5.dev.track_1.tsv": b"D_0001 D_0000000001 F - - - AC1 A11 spoof -\n"}, gz=True
)
COMMIT = "a" * 40


class StandInHub:
    """Serves paths-info and resolve/ like the Hugging Face hub does for one dataset repo."""

    def __init__(self, repo: str, files: dict[str, bytes]):
        self.repo, self.files, self.requests = repo, dict(files), []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _file(self):
                prefix = f"/datasets/{hub.repo}/resolve/"
                path = unquote(urlparse(self.path).path)
                if not path.startswith(prefix):
                    return None
                name = path[len(prefix) :].split("/", 1)[1]
                return name if name in hub.files else ""

            def _headers(self, name: str, body: bytes) -> None:
                sha = hashlib.sha256(body).hexdigest()
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{sha}"')
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(body)))
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")

            def do_HEAD(self) -> None:
                name = self._file()
                hub.requests.append(("HEAD", self.path))
                if not name:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                self.send_response(200)
                self._headers(name, hub.files[name])
                self.end_headers()

            def do_GET(self) -> None:
                name = self._file()
                hub.requests.append(("GET", self.path))
                if not name:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = hub.files[name]
                self.send_response(200)
                self._headers(name, body)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                hub.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if raw.startswith("{"):
                    paths = json.loads(raw).get("paths", [])
                else:
                    from urllib.parse import parse_qs

                    paths = parse_qs(raw).get("paths", [])
                out = [
                    {
                        "type": "file",
                        "path": p,
                        "size": len(hub.files[p]),
                        "oid": "b" * 40,
                        "lfs": {
                            "oid": hashlib.sha256(hub.files[p]).hexdigest(),
                            "size": len(hub.files[p]),
                            "pointerSize": 134,
                        },
                    }
                    for p in paths
                    if p in hub.files
                ]
                body = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    source = sources.CORPUS_SOURCES["asvspoof5"]
    protocols = dataclasses.replace(source.files[0], md5=md5(PROTOCOLS))
    monkeypatch.setitem(sources.CORPUS_SOURCES, "asvspoof5", dataclasses.replace(source, files=(protocols,)))
    with StandInHub("jungjee/asvspoof5", {"ASVspoof5_protocols.tar.gz": PROTOCOLS}) as server:
        yield server


def test_hub_download_unpacks_into_the_zenodo_layout(cm_env, run_cm, hub):
    result = run_cm(
        "--json", "download", "asvspoof5", "--source", "huggingface", "--subset", "protocols", "--base-url", hub.url
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["files"][0]["status"] == "downloaded" and payload["files"][0]["verified"]
    root = cm_env / "data" / "asvspoof5"
    assert (root / "downloads" / "ASVspoof5_protocols.tar.gz").read_bytes() == PROTOCOLS
    assert (root / "ASVspoof5_protocols" / "ASVspoof5.dev.track_1.tsv").is_file()
    again = run_cm(
        "--json", "download", "asvspoof5", "--source", "huggingface", "--subset", "protocols", "--base-url", hub.url
    )
    assert again.exit_code == 0 and json.loads(again.stdout)["changed"] is False
    assert sum(1 for method, _ in hub.requests if method == "GET") == 1


def test_hub_copy_with_another_md5_is_refused(cm_env, run_cm, hub):
    hub.files["ASVspoof5_protocols.tar.gz"] = PROTOCOLS + b"tampered"
    result = run_cm("download", "asvspoof5", "--source", "huggingface", "--subset", "protocols", "--base-url", hub.url)
    assert result.exit_code == 1 and "differs from the published" in result.output


def test_corpus_without_mirror_and_list(cm_env, run_cm):
    result = run_cm("download", "asvspoof2019_la", "--source", "huggingface")
    assert result.exit_code == 1 and "no Hugging Face mirror" in result.output
    listing = json.loads(run_cm("--json", "download", "--list").stdout)
    as5 = next(c for c in listing["corpora"] if c["corpus"] == "asvspoof5")
    assert as5["sources"] == ["zenodo", "huggingface (jungjee/asvspoof5)"]
