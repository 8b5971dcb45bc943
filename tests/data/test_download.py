"""Downloader and unpacker reliability, against a local HTTP server on 127.0.0.1 (no network)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cm_cli.core.errors import CmError
from cm_cli.data import download as dl
from cm_cli.data.download import DownloadItem, DownloadSettings, download_files, fetch_file, zenodo_metadata
from cm_cli.data.unpack import marker_path, unpack_archive


class FileServer:
    """Serves ``files`` (name -> bytes) with Range support and scripted misbehaviour per file.

    ``faults[name]`` is a list consumed one request at a time: ``"drop"`` (send half
    the body then close), ``500``, ``(429, seconds)``, ``"ignore_range"`` (always 200),
    ``"corrupt"`` (flip the bytes). ``log`` records (path, Range header) per request.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}
        self.json: dict[str, dict] = {}
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.log.append((path, self.headers.get("Range")))
                if path in server.json:
                    body = json.dumps(server.json[path]).encode()
                    return self._send(200, body, {"Content-Type": "application/json"})
                name = path.rsplit("/", 1)[-1]
                if name not in server.files:
                    return self._send(404, b"not found")
                data = server.files[name]
                fault = server.faults.get(name, []).pop(0) if server.faults.get(name) else None
                if fault == 500:
                    return self._send(500, b"server error")
                if isinstance(fault, tuple) and fault[0] == 429:
                    return self._send(429, b"slow down", {"Retry-After": str(fault[1])})
                if fault == "corrupt":
                    data = bytes(b ^ 0xFF for b in data)
                start = 0
                rng = self.headers.get("Range")
                if rng and fault != "ignore_range":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    body = data[start:]
                    headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                    status = 206
                else:
                    body, headers, status = data, {}, 200
                if fault in ("nolength", "nolength_drop"):  # no Content-Length: the end of the body is the close
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body if fault == "nolength" else body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if fault == "trickle":  # one byte every 50 ms, at most 200 bytes (a bounded loop)
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    import time as _time

                    try:
                        for i in range(min(len(body), 200)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            _time.sleep(0.05)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                if fault == "drop":
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(status, body, headers)

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_for(self, name: str) -> list[str | None]:
        return [r for p, r in self.log if p.endswith("/" + name)]


@pytest.fixture
def server():
    with FileServer() as s:
        yield s


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


FAST = DownloadSettings(retries=3, backoff=0.001, timeout=5, workers=3)
Sleep = namedtuple("Sleep", "calls fn")


def recording_sleep() -> Sleep:
    calls: list[float] = []
    return Sleep(calls, calls.append)


def make_tar(members: dict[str, bytes], *, gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


PAYLOAD = bytes(range(256)) * 400  # 100 KiB


# --------------------------------------------------------------------------- downloads


def test_interrupted_transfer_resumes_to_the_right_bytes(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    server.faults["a.bin"] = ["drop"]
    sleep = recording_sleep()
    settings = DownloadSettings(retries=3, backoff=0.001, timeout=5, sleep=sleep.fn)
    result = fetch_file(
        DownloadItem("a.bin", "http://unused/a.bin", md5=md5(PAYLOAD), size=len(PAYLOAD)),
        tmp_path,
        base_url=server.url,
        settings=settings,
    )
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert result.verified and result.attempts == 2 and result.restarts == 0
    ranges = server.requests_for("a.bin")
    assert ranges[0] is None and ranges[1] == f"bytes={len(PAYLOAD) // 2}-"
    assert not (tmp_path / "a.bin.part").exists()


def test_part_file_from_an_earlier_run_is_resumed(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:1000])
    fetch_file(DownloadItem("a.bin", "x", md5=md5(PAYLOAD)), tmp_path, base_url=server.url, settings=FAST)
    assert server.requests_for("a.bin") == ["bytes=1000-"]
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_that_file(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    server.faults["a.bin"] = ["ignore_range"]
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:5000])
    result = fetch_file(DownloadItem("a.bin", "x", md5=md5(PAYLOAD)), tmp_path, base_url=server.url, settings=FAST)
    assert result.restarts == 1 and (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_500_is_retried_with_exponential_backoff(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    server.faults["a.bin"] = [500, 500]
    sleep = recording_sleep()
    settings = DownloadSettings(retries=3, backoff=0.5, timeout=5, sleep=sleep.fn)
    result = fetch_file(DownloadItem("a.bin", "x", md5=md5(PAYLOAD)), tmp_path, base_url=server.url, settings=settings)
    assert result.attempts == 3 and sleep.calls == [0.5, 1.0]


def test_429_retry_after_is_honoured(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    server.faults["a.bin"] = [(429, 7)]
    sleep = recording_sleep()
    settings = DownloadSettings(retries=2, backoff=0.01, timeout=5, sleep=sleep.fn)
    fetch_file(DownloadItem("a.bin", "x"), tmp_path, base_url=server.url, settings=settings)
    assert sleep.calls == [7.0]
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_429_real_wait_is_short_and_succeeds(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    server.faults["a.bin"] = [(429, 0)]
    result = fetch_file(DownloadItem("a.bin", "x"), tmp_path, base_url=server.url, settings=FAST)
    assert result.attempts == 2


def test_giving_up_names_the_file(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    server.faults["a.bin"] = [500] * 5
    settings = DownloadSettings(retries=1, backoff=0.001, timeout=5)
    with pytest.raises(CmError, match=r"a.bin: giving up after 2 attempts.*HTTP 500"):
        fetch_file(DownloadItem("a.bin", "x"), tmp_path, base_url=server.url, settings=settings)


def test_404_is_not_retried(server, tmp_path):
    with pytest.raises(CmError, match="missing.bin: HTTP 404"):
        fetch_file(DownloadItem("missing.bin", "x"), tmp_path, base_url=server.url, settings=FAST)
    assert len(server.log) == 1


def test_md5_mismatch_removes_only_the_bad_file_and_names_it(server, tmp_path):
    server.files.update({"good.bin": PAYLOAD, "bad.bin": PAYLOAD[:5000]})
    server.faults["bad.bin"] = ["corrupt"]
    items = [DownloadItem("good.bin", "x", md5=md5(PAYLOAD)), DownloadItem("bad.bin", "x", md5=md5(PAYLOAD[:5000]))]
    with pytest.raises(CmError, match=r"bad.bin: md5 mismatch") as info:
        download_files(items, tmp_path, base_url=server.url, settings=FAST)
    assert "good.bin" not in info.value.message
    assert (tmp_path / "good.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "bad.bin.part").exists()
    download_files(items, tmp_path, base_url=server.url, settings=FAST)  # the rerun fetches the bad one again
    assert (tmp_path / "bad.bin").read_bytes() == PAYLOAD[:5000]
    assert len(server.requests_for("good.bin")) == 1


def test_full_disk_is_refused_before_starting(server, tmp_path, monkeypatch):
    server.files["a.bin"] = PAYLOAD
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(CmError, match=r"not enough free space .*need 100\.0 KB, 100 B free"):
        download_files(
            [DownloadItem("a.bin", "x", size=len(PAYLOAD))], tmp_path / "d", base_url=server.url, settings=FAST
        )
    assert server.log == [] and not any((tmp_path / "d").iterdir())


def test_rerun_after_success_does_nothing(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    item = DownloadItem("a.bin", "x", md5=md5(PAYLOAD))
    first = download_files([item], tmp_path, base_url=server.url, settings=FAST)
    second = download_files([item], tmp_path, base_url=server.url, settings=FAST)
    assert first[0].status == "downloaded" and second[0].status == "present" and second[0].verified
    assert len(server.log) == 1


def test_a_finished_file_is_rechecked_when_its_record_is_stale(server, tmp_path):
    server.files["a.bin"] = PAYLOAD
    (tmp_path / "a.bin").write_bytes(PAYLOAD)  # e.g. copied in by hand: verified, not refetched
    result = fetch_file(DownloadItem("a.bin", "x", md5=md5(PAYLOAD)), tmp_path, base_url=server.url, settings=FAST)
    assert result.verified and (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert server.log == [("/a.bin", f"bytes={len(PAYLOAD)}-")]  # the server confirms nothing is missing (416)


def test_progress_reports_bytes(server, tmp_path):
    from cm_cli.core.progress import use_reporter

    server.files.update({"a.bin": PAYLOAD, "b.bin": PAYLOAD[:300]})

    class Recorder:
        def __init__(self):
            self.total, self.done = None, 0

        def start(self, description, total):
            self.total = total
            return description

        def advance(self, handle, n=1):
            self.done += n

        def finish(self, handle):
            pass

    recorder = Recorder()
    with use_reporter(recorder):
        download_files(
            [DownloadItem("a.bin", "x", size=len(PAYLOAD)), DownloadItem("b.bin", "x", size=300)],
            tmp_path,
            base_url=server.url,
            settings=FAST,
        )
    assert recorder.total == len(PAYLOAD) + 300 and recorder.done == len(PAYLOAD) + 300


def test_zenodo_metadata_is_read_from_the_record(server):
    server.json["/api/records/123"] = {"files": [{"key": "x.tar", "checksum": "md5:abc", "size": 9}]}
    assert zenodo_metadata("123", api_base=server.url + "/api/records") == {"x.tar": {"md5": "abc", "size": 9}}


def test_mirror_url_replaces_the_host():
    assert (
        dl.mirror_url("https://zenodo.org/records/1/files/a.tar?download=1", "a.tar", "http://m/x/")
        == "http://m/x/a.tar"
    )
    assert dl.mirror_url("https://h/a.tar", "a.tar", None) == "https://h/a.tar"


# --------------------------------------------------------------------------- unpacking


def test_tar_with_parent_member_is_refused_and_nothing_is_written(tmp_path):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(make_tar({"ok/a.txt": b"a", "../evil.txt": b"x"}))
    target = tmp_path / "out"
    with pytest.raises(CmError, match=r"refusing member '\.\./evil\.txt'"):
        unpack_archive(archive, target)
    assert not (tmp_path / "evil.txt").exists() and not (target / "ok").exists()


def test_tar_with_absolute_member_is_refused(tmp_path):
    archive = tmp_path / "abs.tar.gz"
    archive.write_bytes(make_tar({"/etc/owned": b"x"}, gz=True))
    with pytest.raises(CmError, match="refusing member"):
        unpack_archive(archive, tmp_path / "out")


@pytest.mark.parametrize("bad", ["../x.txt", "/abs.txt", "a/../../x.txt"])
def test_zip_with_escaping_member_is_refused(tmp_path, bad):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(make_zip({"fine.txt": b"1", bad: b"2"}))
    with pytest.raises(CmError, match="outside the target"):
        unpack_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "fine.txt").exists()


def test_partly_unpacked_archive_is_finished_on_rerun(tmp_path):
    members = {f"flac_T/T_{i:04d}.flac": bytes([i]) * (100 + i) for i in range(6)}
    archive = tmp_path / "flac_T_aa.tar"
    archive.write_bytes(make_tar(members))
    target = tmp_path / "asvspoof5"
    first = unpack_archive(archive, target)
    assert first.n_written == 6 and first.top_level == ["flac_T"]
    info = json.loads(marker_path(archive, target).read_text())
    assert info["n_members"] == 6 and info["archive"] == "flac_T_aa.tar"
    assert unpack_archive(archive, target).skipped  # marker: nothing to do
    marker_path(archive, target).unlink()  # simulate a killed run: no marker, one file missing, one truncated
    (target / "flac_T/T_0001.flac").unlink()
    (target / "flac_T/T_0002.flac").write_bytes(b"\x02")
    second = unpack_archive(archive, target)
    assert not second.skipped and second.n_written == 2
    for name, data in members.items():
        assert (target / name).read_bytes() == data


def test_zip_unpacks_and_is_idempotent(tmp_path):
    archive = tmp_path / "LA.zip"
    archive.write_bytes(make_zip({"LA/ASVspoof2019_LA_cm_protocols/p.txt": b"rows", "LA/README.txt": b"r"}))
    result = unpack_archive(archive, tmp_path / "asvspoof2019_la")
    assert result.n_written == 2 and result.top_level == ["LA"]
    assert unpack_archive(archive, tmp_path / "asvspoof2019_la").skipped


def test_corrupt_archive_is_a_clear_error(tmp_path):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"not a tarball at all")
    with pytest.raises(CmError, match="not a readable tar archive"):
        unpack_archive(archive, tmp_path / "out")


# --- bounds (issue 29 item 4) ---------------------------------------------------------------------------------------


def test_a_cut_transfer_without_content_length_is_resumed_until_the_archive_is_whole(server, tmp_path):
    archive = make_tar({"corpus/a.txt": b"a" * 5000, "corpus/b.txt": bytes(range(256)) * 40}, gz=True)
    server.files["c.tar.gz"] = archive
    server.faults["c.tar.gz"] = ["nolength_drop"]  # half the bytes, then a close that looks like the end
    item = DownloadItem("c.tar.gz", server.url + "/c.tar.gz")
    result = fetch_file(item, tmp_path, settings=FAST)
    # the first response had no length: the archive check found it cut; the resumed 206 carries the length
    assert (tmp_path / "c.tar.gz").read_bytes() == archive and result.checked_by == "size"
    assert len(server.requests_for("c.tar.gz")) == 2 and server.requests_for("c.tar.gz")[1] is not None  # resumed
    assert dl._already_done(item, tmp_path / "c.tar.gz")


def test_an_unknown_length_archive_that_stays_broken_is_not_recorded_complete(server, tmp_path):
    archive = make_zip({"a.txt": b"x" * 4000})
    server.files["z.zip"] = archive[: len(archive) // 2]  # the server's copy itself is cut
    server.faults["z.zip"] = ["nolength"] * 10
    item = DownloadItem("z.zip", server.url + "/z.zip")
    with pytest.raises(CmError, match="incomplete or corrupt"):
        fetch_file(item, tmp_path, settings=DownloadSettings(retries=2, backoff=0.001, timeout=5))
    assert not (tmp_path / "z.zip").exists() and not (tmp_path / "z.zip.part").exists()
    assert not dl._already_done(item, tmp_path / "z.zip")


def test_an_unknown_length_file_that_cannot_be_checked_is_kept_but_not_marked_verified(server, tmp_path):
    server.files["notes.txt"] = b"hello" * 100
    server.faults["notes.txt"] = ["nolength"]
    item = DownloadItem("notes.txt", server.url + "/notes.txt")
    result = fetch_file(item, tmp_path, settings=FAST)
    assert result.checked_by == "none" and not result.verified
    assert not dl._already_done(item, tmp_path / "notes.txt")  # a rerun checks it again


def test_a_trickling_server_is_a_stall_then_one_line(server, tmp_path):
    server.files["slow.bin"] = bytes(5000)
    server.faults["slow.bin"] = ["trickle"] * 3
    settings = DownloadSettings(retries=1, backoff=0.001, timeout=5, stall_seconds=0.3, min_rate=1000.0)
    with pytest.raises(CmError, match=r"giving up after 2 attempts: .*stalled"):
        fetch_file(DownloadItem("slow.bin", server.url + "/slow.bin", size=5000), tmp_path, settings=settings)


def test_a_file_past_its_deadline_is_one_line(server, tmp_path):
    server.files["slow.bin"] = bytes(5000)
    server.faults["slow.bin"] = ["trickle"] * 3
    settings = DownloadSettings(retries=3, backoff=0.001, timeout=5, min_rate=0.0, deadline=0.3)
    with pytest.raises(CmError, match=r"not finished within the 0.3 s deadline"):
        fetch_file(DownloadItem("slow.bin", server.url + "/slow.bin", size=5000), tmp_path, settings=settings)
    assert (tmp_path / "slow.bin.part").exists()  # kept: a rerun resumes
