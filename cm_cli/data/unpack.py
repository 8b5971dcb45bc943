"""Safe, idempotent unpacking of corpus archives into ``<data_root>/<corpus>/``.

Archives come from the network, so no member may land outside the target
directory: tar members go through tarfile's ``data`` filter (absolute paths,
``..``, links pointing outside and device files are refused), zip members are
checked by name. The whole member list is checked before anything is written, so
a refused archive leaves the target untouched. A member already on disk with the
right size is kept, which finishes a partly unpacked archive on rerun; a marker
JSON in ``.cm_unpacked/`` records what was unpacked so a rerun skips the archive.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from cm_cli.core.errors import CmError

__all__ = ["UnpackResult", "MARKER_DIR", "marker_path", "unpack_archive", "is_archive"]

MARKER_DIR = ".cm_unpacked"
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")


@dataclass
class UnpackResult:
    archive: Path
    target: Path
    n_members: int
    n_written: int
    skipped: bool
    top_level: list[str]


def is_archive(name: str) -> bool:
    return name.lower().endswith(_ARCHIVE_SUFFIXES)


def marker_path(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    return Path(target) / MARKER_DIR / (Path(archive).name + ".json")


def _archive_identity(archive: Path) -> dict:
    stat = archive.stat()
    return {"archive": archive.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _marker_matches(archive: Path, target: Path) -> bool:
    marker = marker_path(archive, target)
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    identity = _archive_identity(archive)
    return all(info.get(k) == v for k, v in identity.items())


def _safe_zip_name(name: str) -> PurePosixPath:
    if "\\" in name:
        name = name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]) or ".." in path.parts:
        raise CmError(f"refusing archive member {name!r}: it would be written outside the target directory",
                      "the archive is corrupt or malicious; delete it and download again")
    return path


def _tar_members(tar: tarfile.TarFile, target: Path, archive: Path) -> list[tarfile.TarInfo]:
    members = []
    for member in tar.getmembers():
        first = PurePosixPath(member.name).parts[:1]
        if member.name.startswith(("/", "\\")) or (first and ":" in first[0]):
            raise CmError(f"{archive.name}: refusing member {member.name!r} (absolute path)",
                          "the archive is corrupt or malicious; delete it and download again")
        try:
            checked = tarfile.data_filter(member, str(target))
        except tarfile.FilterError as exc:
            raise CmError(f"{archive.name}: refusing member {member.name!r} ({exc})",
                          "the archive is corrupt or malicious; delete it and download again") from None
        if checked is not None:
            members.append(checked)
    return members


def _needs_write(path: Path, size: int) -> bool:
    return not (path.is_file() and path.stat().st_size == size)


def unpack_archive(archive: str | os.PathLike, target: str | os.PathLike, *, force: bool = False,
                   advance: Callable[[int], None] | None = None) -> UnpackResult:
    """Unpack ``archive`` into ``target`` safely; skip it when its marker says it is already unpacked."""
    archive, target = Path(archive), Path(target)
    advance = advance or (lambda n: None)
    if not archive.is_file():
        raise CmError(f"{archive}: archive not found")
    target.mkdir(parents=True, exist_ok=True)
    if not force and _marker_matches(archive, target):
        info = json.loads(marker_path(archive, target).read_text(encoding="utf-8"))
        return UnpackResult(archive, target, int(info.get("n_members", 0)), 0, True, list(info.get("top_level", [])))
    name = archive.name.lower()
    written = 0
    top: set[str] = set()
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:  # check everything before writing anything
                    _safe_zip_name(info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise CmError(f"{archive.name}: refusing symbolic link member {info.filename!r}")
                for info in infos:
                    rel = _safe_zip_name(info.filename)
                    if not rel.parts:
                        continue
                    top.add(rel.parts[0])
                    dest = target.joinpath(*rel.parts)
                    if info.is_dir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    if _needs_write(dest, info.file_size):
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, open(dest, "wb") as out:
                            shutil.copyfileobj(src, out, 1 << 20)
                        written += 1
                    advance(1)
                n_members = len(infos)
        except zipfile.BadZipFile as exc:
            raise CmError(f"{archive}: not a valid zip archive ({exc})", "delete it and download again") from None
    elif is_archive(name):
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = _tar_members(tar, target, archive)
                for member in members:
                    rel = PurePosixPath(member.name)
                    if rel.parts:
                        top.add(rel.parts[0])
                    dest = target.joinpath(*rel.parts)
                    if member.isfile() and not _needs_write(dest, member.size):
                        advance(1)
                        continue
                    tar.extract(member, target, filter="data")
                    written += int(member.isfile())
                    advance(1)
                n_members = len(members)
        except (tarfile.ReadError, EOFError) as exc:
            raise CmError(f"{archive}: not a readable tar archive ({exc})",
                          "the download may be incomplete or corrupt; delete it and download again") from None
    else:
        raise CmError(f"{archive}: unknown archive type", f"supported: {', '.join(_ARCHIVE_SUFFIXES)}")
    marker = marker_path(archive, target)
    marker.parent.mkdir(parents=True, exist_ok=True)
    record = {**_archive_identity(archive), "n_members": n_members, "n_written": written,
              "top_level": sorted(top), "unpacked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    os.replace(tmp, marker)
    return UnpackResult(archive, target, n_members, written, False, sorted(top))
