"""Resumable, verified, parallel HTTP downloads of corpus archives (stdlib urllib only).

Corpus archives are tens of gigabytes served by busy academic hosts, so every
transfer must survive a dropped connection, a throttling server and a rerun:
bytes go to ``<name>.part`` and resume with an HTTP Range request (a server that
ignores Range restarts that file), failures retry with exponential backoff that
honours ``Retry-After``, a finished file is checked against its md5 (a mismatch
removes that file only and names it), and a ``.<name>.ok`` record lets a rerun
skip verified files without rehashing them.

A transfer is complete only when something vouches for it: the md5, else the known
size (the item's or the response's Content-Length). A response without either (a
server that closes early looks like a finished one) is checked as an archive (zip
CRCs, the whole tar/gzip/bz2/xz stream read to its end) and resumed when that fails;
a file that is neither is kept but never recorded as verified (no ``.ok``), so a
rerun checks it again. A trickling server is cut off: fewer than ``min_rate`` bytes/s
over ``stall_seconds`` is a stall (retried like a dropped connection), and
``deadline`` bounds the total seconds one file may take over all its attempts.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from cm_cli.core.errors import CmError

__all__ = [
    "DownloadItem",
    "FileResult",
    "DownloadSettings",
    "mirror_url",
    "md5sum",
    "check_free_space",
    "zenodo_metadata",
    "fetch_file",
    "download_files",
    "USER_AGENT",
    "archive_problem",
]

USER_AGENT = "cm-cli (speech anti-spoofing research toolkit)"
CHUNK = 1 << 20
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class DownloadItem:
    name: str
    url: str
    md5: str | None = None
    size: int | None = None


@dataclass
class FileResult:
    name: str
    path: Path
    size: int
    status: str  # downloaded | present
    md5: str | None = None
    verified: bool = False
    attempts: int = 0
    restarts: int = 0  # times a server ignored Range and the file restarted from byte 0
    checked_by: str = "none"  # md5 | size | archive | none: what vouches that the file is whole
    length_known: bool = False


@dataclass
class DownloadSettings:
    retries: int = 5
    backoff: float = 1.0  # first wait in seconds, doubled per attempt
    max_backoff: float = 60.0
    max_retry_after: float = 300.0
    timeout: float = 60.0
    workers: int = 4
    aria2: bool = False
    check_space: bool = True
    stall_seconds: float = 60.0  # window over which min_rate must be reached
    min_rate: float = 1024.0  # bytes per second; less over stall_seconds is a stall
    deadline: float | None = None  # seconds one file may take over all its attempts (None: no limit)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)


class _Retryable(Exception):
    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


def mirror_url(url: str, name: str, base_url: str | None) -> str:
    """``<base_url>/<name>`` when a mirror is set, else the original URL."""
    if not base_url:
        return url
    return base_url.rstrip("/") + "/" + urllib.parse.quote(name)


def md5sum(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def check_free_space(directory: str | os.PathLike, needed: int) -> None:
    """Raise ``CmError`` when ``directory``'s file system has fewer than ``needed`` free bytes."""
    directory = Path(directory)
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise CmError(
            f"not enough free space in {directory}: need {_human(needed)}, {_human(free)} free",
            "free some space, or use a data root on a larger file system",
            option="data_root",
        )


def zenodo_metadata(
    record: str, *, api_base: str = "https://zenodo.org/api/records", timeout: float = 30.0
) -> dict[str, dict]:
    """``{file name: {"md5": ..., "size": ...}}`` from a Zenodo record's JSON metadata."""
    url = f"{api_base.rstrip('/')}/{record}"
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CmError(
            f"cannot read Zenodo record {record} metadata from {url}: {exc}",
            "check the network, or give a mirror as the base URL",
            option="base_url",
        ) from None
    files = data.get("files") or []
    if isinstance(files, dict):  # some API versions nest entries
        files = files.get("entries", [])
        files = list(files.values()) if isinstance(files, dict) else files
    out: dict[str, dict] = {}
    for entry in files:
        name = entry.get("key") or entry.get("filename")
        checksum = str(entry.get("checksum") or "")
        if not name:
            continue
        md5 = checksum.split(":", 1)[1] if checksum.startswith("md5:") else None
        out[name] = {"md5": md5, "size": entry.get("size") or entry.get("filesize")}
    return out


def _ok_record(path: Path) -> Path:
    return path.with_name(f".{path.name}.ok")


def _already_done(item: DownloadItem, path: Path) -> bool:
    record = _ok_record(path)
    if not (path.is_file() and record.is_file()):
        return False
    try:
        info = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    stat = path.stat()
    if info.get("size") != stat.st_size or info.get("mtime_ns") != stat.st_mtime_ns:
        return False
    return item.md5 is None or info.get("md5") == item.md5


def _write_ok(path: Path, md5: str | None) -> None:
    stat = path.stat()
    _ok_record(path).write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": md5}))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def archive_problem(path: Path, name: str) -> str | None:
    """Why ``path`` (an archive by ``name``) is incomplete or corrupt, reading it through; None if it is whole.
    Non-archives return None: nothing in them can be checked."""
    import bz2
    import gzip
    import lzma
    import tarfile
    import zipfile

    lower = name.lower()
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            return f"member {bad} fails its CRC" if bad else None
        opener = {".gz": gzip.open, ".tgz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(
            next((s for s in (".tgz", ".gz", ".bz2", ".xz") if lower.endswith(s)), "")
        )
        if opener is not None:
            with opener(path, "rb") as stream:  # reading to the end checks the stream's own CRC and length
                while stream.read(CHUNK):
                    pass
        if lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.isreg():
                        source = tar.extractfile(member)
                        while source is not None and source.read(CHUNK):
                            pass
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError, ValueError) as exc:
        return f"the archive is incomplete or corrupt ({exc})"
    return None


def _transfer(
    item: DownloadItem,
    url: str,
    part: Path,
    settings: DownloadSettings,
    advance: Callable[[int], None],
    result: FileResult,
    deadline: float | None = None,
) -> None:
    """One attempt: continue ``part`` from its current size; raise ``_Retryable`` on transient failure."""
    offset = part.stat().st_size if part.exists() else 0
    if item.size is not None and offset > item.size:  # stale or foreign bytes
        part.unlink()
        offset = 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=settings.timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset and (item.size is None or offset == item.size):
            return  # the part file already holds every byte
        if exc.code == 416:
            part.unlink(missing_ok=True)
            raise _Retryable(f"HTTP 416 for a resumed transfer of {item.name}; restarting") from None
        if exc.code in _RETRY_STATUS:
            wait = _retry_after(exc.headers.get("Retry-After")) if exc.headers else None
            raise _Retryable(f"HTTP {exc.code} from {url}", wait) from None
        raise CmError(
            f"{item.name}: HTTP {exc.code} {exc.reason} from {url}",
            "check the URL, or give a mirror as the base URL / CM_MIRROR",
            option="base_url",
        ) from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException, OSError) as exc:
        raise _Retryable(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    with response:
        status = getattr(response, "status", 200)
        if offset and status == 206:
            content_range = response.headers.get("Content-Range", "")
            start = content_range.split()[1].split("-")[0] if " " in content_range else ""
            if start and start.isdigit() and int(start) != offset:
                part.unlink(missing_ok=True)
                raise _Retryable(f"{item.name}: server resumed at byte {start}, expected {offset}; restarting")
            mode = "ab"
        else:
            if offset:  # server ignored Range: start this file over
                result.restarts += 1
                advance(-offset)
            mode = "wb"
            offset = 0
        expected_total = None
        length = response.headers.get("Content-Length")
        if length and length.isdigit():
            expected_total = offset + int(length)
        result.length_known = expected_total is not None or item.size is not None
        read = getattr(response, "read1", response.read)  # what has arrived, not a full CHUNK (a trickle)
        try:
            with open(part, mode) as out:
                window_start, window_bytes = settings.clock(), 0
                while True:
                    block = read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    advance(len(block))
                    window_bytes += len(block)
                    now = settings.clock()
                    if deadline is not None and now > deadline:
                        raise CmError(
                            f"{item.name}: not finished within the {settings.deadline:g} s deadline "
                            f"({out.tell()} bytes so far)",
                            "rerun later or from a faster mirror: it resumes",
                        )
                    if now - window_start >= settings.stall_seconds:
                        if window_bytes < settings.min_rate * (now - window_start):
                            rate = f"{window_bytes} bytes in {now - window_start:.0f} s"
                            raise _Retryable(
                                f"{item.name}: stalled ({rate}, under {settings.min_rate:g} B/s); will resume"
                            )
                        window_start, window_bytes = now, 0
        except (socket.timeout, ConnectionError, http.client.HTTPException, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
                raise CmError(
                    f"disk full while writing {part}", "free some space and rerun: the transfer resumes"
                ) from None
            raise _Retryable(f"{item.name}: transfer interrupted ({exc}); will resume") from None
    got = part.stat().st_size
    if expected_total is not None and got < expected_total:
        raise _Retryable(f"{item.name}: transfer ended early ({got} of {expected_total} bytes); will resume")
    if item.size is not None and got != item.size:
        if got > item.size:
            part.unlink()
        raise _Retryable(f"{item.name}: got {got} bytes, expected {item.size}")


def _aria2(item: DownloadItem, url: str, part: Path, settings: DownloadSettings) -> None:
    command = [
        "aria2c",
        "--continue=true",
        "--max-connection-per-server=4",
        "--split=4",
        "--quiet=true",
        f"--max-tries={settings.retries + 1}",
        f"--retry-wait={max(1, int(settings.backoff))}",
        "--auto-file-renaming=false",
        "--allow-overwrite=true",
        f"--dir={part.parent}",
        f"--out={part.name}",
        url,
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise CmError(
            f"{item.name}: aria2c failed (exit {completed.returncode}): {completed.stderr.strip()[-300:]}",
            "rerun without aria2 to use the built-in downloader",
            option="aria2",
        )


def fetch_file(
    item: DownloadItem,
    dest_dir: str | os.PathLike,
    *,
    base_url: str | None = None,
    settings: DownloadSettings | None = None,
    advance: Callable[[int], None] | None = None,
) -> FileResult:
    """Download one file into ``dest_dir`` (resuming, retrying, verifying); skip it when already verified."""
    settings = settings or DownloadSettings()
    advance = advance or (lambda n: None)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / item.name
    result = FileResult(item.name, path, 0, "present", md5=item.md5)
    if _already_done(item, path):
        result.size = path.stat().st_size
        result.verified = item.md5 is not None
        advance(result.size)
        return result
    part = path.with_name(path.name + ".part")
    if path.is_file() and not part.exists():  # finished earlier but never verified: check it now
        path.rename(part)
    if part.exists():
        advance(part.stat().st_size)
    url = mirror_url(item.url, item.name, base_url)
    use_aria2 = settings.aria2 and shutil.which("aria2c") is not None
    last_error = ""
    deadline = settings.clock() + settings.deadline if settings.deadline is not None else None
    for attempt in range(settings.retries + 1):
        result.attempts = attempt + 1
        try:
            if use_aria2:
                before = part.stat().st_size if part.exists() else 0
                _aria2(item, url, part, settings)
                advance(part.stat().st_size - before)
                result.length_known = item.size is not None
            else:
                _transfer(item, url, part, settings, advance, result, deadline)
            if item.md5 is None and not result.length_known:  # nothing says the transfer is whole: the archive must
                problem = archive_problem(part, item.name)
                if problem:
                    raise _Retryable(f"{item.name}: no Content-Length and {problem}; will resume")
            break
        except _Retryable as exc:
            last_error = str(exc)
            if attempt == settings.retries:
                if item.md5 is None and not result.length_known and part.exists():
                    size = part.stat().st_size  # resuming cannot repair it: fetch it whole next time
                    part.unlink()
                    advance(-size)
                raise CmError(
                    f"{item.name}: giving up after {attempt + 1} attempts: {last_error}",
                    "rerun later: the transfer resumes from the .part file",
                ) from None
            wait = min(settings.max_backoff, settings.backoff * (2**attempt))
            if exc.wait is not None:
                wait = max(wait, min(exc.wait, settings.max_retry_after))
            settings.sleep(wait)
    if item.md5 is not None:
        actual = md5sum(part)
        if actual != item.md5:
            size = part.stat().st_size
            part.unlink()
            advance(-size)
            raise CmError(
                f"{item.name}: md5 mismatch (expected {item.md5}, got {actual}); the bad file was removed",
                "rerun to download it again; if it keeps failing, the source or mirror is corrupt",
            )
        result.verified = True
    from cm_cli.data.unpack import is_archive

    result.checked_by = (
        "md5"
        if item.md5 is not None
        else "size"
        if result.length_known
        else "archive"
        if is_archive(item.name)
        else "none"
    )
    os.replace(part, path)
    if result.checked_by != "none":  # an unverifiable file is kept but checked again on the next run
        _write_ok(path, item.md5)
    result.size = path.stat().st_size
    result.status = "downloaded"
    return result


def download_files(
    items: Sequence[DownloadItem],
    dest_dir: str | os.PathLike,
    *,
    base_url: str | None = None,
    settings: DownloadSettings | None = None,
    extra_space: int = 0,
    description: str = "downloading",
) -> list[FileResult]:
    """Fetch ``items`` in parallel threads; every file is attempted, then all failures are reported together.

    Progress is reported in bytes through ``cm_cli.core.progress``. ``extra_space``
    adds to the free-space requirement (room to unpack, for instance).
    """
    from cm_cli.core.progress import task

    settings = settings or DownloadSettings()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    pending = [i for i in items if not _already_done(i, dest_dir / i.name)]
    if settings.check_space and pending:
        needed = extra_space
        for item in pending:
            if item.size is not None:
                part = dest_dir / (item.name + ".part")
                have = part.stat().st_size if part.exists() else 0
                needed += max(0, item.size - have)
        check_free_space(dest_dir, needed)
    known = [i.size for i in items]
    total = sum(s for s in known if s is not None) if all(s is not None for s in known) else None
    lock = threading.Lock()
    results: dict[str, FileResult] = {}
    errors: dict[str, CmError] = {}
    with task(total, description) as advance_task:

        def advance(n: int) -> None:
            with lock:
                advance_task(n)

        def run(item: DownloadItem) -> None:
            try:
                results[item.name] = fetch_file(item, dest_dir, base_url=base_url, settings=settings, advance=advance)
            except CmError as exc:
                errors[item.name] = exc

        with ThreadPoolExecutor(max_workers=max(1, settings.workers)) as pool:
            list(pool.map(run, items))
    if errors:
        if len(errors) == 1:
            raise next(iter(errors.values()))
        lines = "; ".join(e.message for e in errors.values())
        raise CmError(
            f"{len(errors)} of {len(items)} file(s) failed: {lines}",
            "rerun to retry them: completed files are kept and partial ones resume",
        )
    return [results[i.name] for i in items]
