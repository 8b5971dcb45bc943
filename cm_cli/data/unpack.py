"""Safe, idempotent unpacking of corpus archives into ``<data_root>/<corpus>/``.

Archives come from the network, so no member may land outside the target
directory. tarfile's ``data`` filter alone is not enough on affected Pythons
(CVE-2025-4517: a path too long for ``realpath`` hides a chain of links), so cm
validates every tar member itself, resolving links as the filesystem would (link
first, then ``..``) over the archive's own links and what is already on disk:
no absolute or ``..`` names, no member written through a symbolic link, link
targets (after every hop of a chain) under the target, hard links only to regular
files of the archive, no devices or FIFOs. cm then writes the members itself
(never ``tar.extract``), each file under a temporary name renamed into place.
Zip members are checked by name and may not be links. The whole member list is
checked before anything is written, so a refused archive leaves the target untouched. Archive bombs are
refused the same way, before writing: the members' total unpacked size is capped (``UnpackLimits.max_bytes``,
env ``CM_UNPACK_MAX_BYTES``, default 2 TiB, above the largest ASVspoof release) and so is its ratio to the
archive's size (``max_ratio``, env ``CM_UNPACK_MAX_RATIO``, default 100: speech audio compresses about 1-3x,
a zip bomb 1000x and more); the free-space check counts the unpacked bytes still to write, and a member
that yields more bytes than its header declares is stopped at the declared size. A member already on disk with the
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

__all__ = ["UnpackResult", "UnpackLimits", "MARKER_DIR", "marker_path", "unpack_archive", "is_archive"]

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


@dataclass(frozen=True)
class UnpackLimits:
    """Bounds on what one archive may unpack to (see the module docstring)."""

    max_bytes: int = 2 << 40
    max_ratio: float = 100.0
    check_space: bool = True

    @classmethod
    def from_env(cls) -> "UnpackLimits":
        def number(name: str, default, kind):
            text = os.environ.get(name)
            if not text:
                return default
            try:
                value = kind(text)
            except ValueError:
                raise CmError(f"{name}={text!r} is not a number") from None
            if not value > 0 or value != value or value == float("inf"):
                raise CmError(f"{name}={text!r} must be a finite positive number")
            return value

        return cls(
            number("CM_UNPACK_MAX_BYTES", cls.max_bytes, int), number("CM_UNPACK_MAX_RATIO", cls.max_ratio, float)
        )


def _check_bounds(archive: Path, target: Path, sizes: list[tuple[Path, int]], limits: UnpackLimits) -> None:
    """Refuse before writing: total unpacked size and ratio over the limits, or not enough free space."""
    from cm_cli.data.download import _human, check_free_space

    total = sum(size for _, size in sizes)
    packed = max(1, archive.stat().st_size)
    if total > limits.max_bytes:
        raise CmError(
            f"{archive.name}: refusing to unpack {_human(total)}, over the {_human(limits.max_bytes)} cap",
            "if the archive is genuine, raise CM_UNPACK_MAX_BYTES",
        )
    if total / packed > limits.max_ratio:
        raise CmError(
            f"{archive.name}: refusing to unpack: {_human(packed)} would expand to {_human(total)} "
            f"({total / packed:.0f}x, over the {limits.max_ratio:g}x cap): an archive bomb?",
            "if the archive is genuine, raise CM_UNPACK_MAX_RATIO",
        )
    if limits.check_space:
        check_free_space(target, sum(size for dest, size in sizes if _needs_write(dest, size)))


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
        raise CmError(
            f"refusing archive member {name!r}: it would be written outside the target directory",
            "the archive is corrupt or malicious; delete it and download again",
        )
    return path


_REFUSE_HINT = "the archive is corrupt or malicious; delete it and download again"
_MAX_HOPS = 40  # like the kernel's limit on nested symbolic links


class _Escape(Exception):
    pass


def _member_parts(name: str) -> tuple[str, ...]:
    if name.startswith(("/", "\\")) or "\\" in name:
        raise _Escape("absolute path")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if parts and ":" in parts[0]:
        raise _Escape("absolute path")
    if ".." in parts:
        raise _Escape("'..' in the path")
    return parts


class _Tree:
    """The target as it will be after extraction so far: the archive's links plus what is on disk."""

    def __init__(self, target: Path):
        self.target = target
        self.links: dict[tuple[str, ...], str | None] = {}  # None: a non-link member replaced whatever was there

    def link_at(self, parts: tuple[str, ...]) -> str | None:
        if parts in self.links:
            return self.links[parts]
        path = self.target.joinpath(*parts)
        if path.is_symlink():
            return os.readlink(path)
        return None

    def resolve(self, parts: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """Follow links component by component (the link first, then '..'); raise _Escape on leaving."""
        out: list[str] = []
        pending = list(parts)
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not out:
                    raise _Escape("it resolves outside the target directory")
                out.pop()
                continue
            link = self.link_at(tuple(out) + (part,))
            if link is None:
                out.append(part)
                continue
            hops += 1
            if hops > _MAX_HOPS:
                raise _Escape("too many levels of symbolic links")
            if link.startswith("/"):
                raise _Escape(f"a link in its path points to the absolute path {link!r}")
            pending = [p for p in link.split("/")] + pending
        return tuple(out)


def _check_tar_member(member: tarfile.TarInfo, tree: _Tree, files: set) -> tuple[str, ...]:
    parts = _member_parts(member.name)
    for depth in range(1, len(parts)):
        if tree.link_at(parts[:depth]) is not None:
            raise _Escape(f"it is written through the symbolic link {'/'.join(parts[:depth])!r}")
    if member.issym():
        if not member.linkname or member.linkname.startswith("/"):
            raise _Escape(f"symbolic link to the absolute path {member.linkname!r}")
        tree.links[parts] = member.linkname
        tree.resolve(parts)  # the whole chain, with this link in place, must stay inside
        return parts
    if member.islnk():
        link = _member_parts(member.linkname)
        if tree.resolve(link) not in files:
            raise _Escape(f"hard link to {member.linkname!r}, which is not a regular file of the archive")
        tree.links[parts] = None
        files.add(parts)
        return parts
    if member.isdir():
        tree.links[parts] = None
        return parts
    if member.isreg():
        tree.links[parts] = None
        files.add(parts)
        return parts
    raise _Escape("special file (device, FIFO or other non-regular member)")


def _tar_members(tar: tarfile.TarFile, target: Path, archive: Path) -> list[tuple[tarfile.TarInfo, tuple[str, ...]]]:
    """Every member checked, in order, before anything is written."""
    tree, files = _Tree(target), set()
    checked = []
    for member in tar.getmembers():
        try:
            parts = _check_tar_member(member, tree, files)
        except _Escape as exc:
            raise CmError(f"{archive.name}: refusing member {member.name!r} ({exc})", _REFUSE_HINT) from None
        if parts:
            checked.append((member, parts))
    for member, parts in checked:  # links replaced later in the archive are checked again in the final tree
        if member.issym():
            try:
                tree.resolve(parts)
            except _Escape as exc:
                raise CmError(f"{archive.name}: refusing member {member.name!r} ({exc})", _REFUSE_HINT) from None
    return checked


def _write_member(source, dest: Path, size: int | None = None) -> None:
    """Copy a member under a temporary name; never more than its declared ``size`` bytes (a lying header)."""
    from cm_cli.core.artifacts import atomic_path

    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out:
            if size is None:
                shutil.copyfileobj(source, out, 1 << 20)
                return
            left = size
            while True:
                block = source.read(min(1 << 20, left + 1))
                if not block:
                    break
                if len(block) > left:
                    raise CmError(
                        f"{dest.name}: the archive member holds more than the {size} bytes its header "
                        "declares; refusing it",
                        _REFUSE_HINT,
                    )
                out.write(block)
                left -= len(block)


def _extract_tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    if member.isdir():
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            dest.unlink()
        dest.mkdir(parents=True, exist_ok=True)
    elif member.issym():
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        os.symlink(member.linkname, dest)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is None:
            raise CmError(f"{member.name}: cannot read this member")
        with source:
            _write_member(source, dest, member.size if member.isreg() else None)  # a link: its target's checked size


def _needs_write(path: Path, size: int) -> bool:
    return not (not path.is_symlink() and path.is_file() and path.stat().st_size == size)


def unpack_archive(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    force: bool = False,
    advance: Callable[[int], None] | None = None,
    limits: UnpackLimits | None = None,
) -> UnpackResult:
    """Unpack ``archive`` into ``target`` safely; skip it when its marker says it is already unpacked."""
    archive, target = Path(archive), Path(target)
    limits = limits or UnpackLimits.from_env()
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
                tree = _Tree(target)
                for info in infos:  # check everything before writing anything
                    rel = _safe_zip_name(info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise CmError(f"{archive.name}: refusing symbolic link member {info.filename!r}")
                    for depth in range(1, len(rel.parts) + 1):
                        if tree.link_at(tuple(rel.parts[:depth])) is not None:
                            raise CmError(
                                f"{archive.name}: refusing member {info.filename!r} (it is written through "
                                f"the symbolic link {'/'.join(rel.parts[:depth])!r})",
                                _REFUSE_HINT,
                            )
                _check_bounds(
                    archive,
                    target,
                    [
                        (target.joinpath(*_safe_zip_name(i.filename).parts), int(i.file_size))
                        for i in infos
                        if not i.is_dir()
                    ],
                    limits,
                )
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
                        with zf.open(info) as src:
                            _write_member(src, dest, int(info.file_size))
                        written += 1
                    advance(1)
                n_members = len(infos)
        except zipfile.BadZipFile as exc:
            raise CmError(f"{archive}: not a valid zip archive ({exc})", "delete it and download again") from None
    elif is_archive(name):
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = _tar_members(tar, target, archive)
                regular = {m.name: int(m.size) for m, _ in members if m.isreg()}
                _check_bounds(
                    archive,
                    target,  # a hard link is written as a copy of its target: its size counts
                    [
                        (
                            target.joinpath(*parts),
                            int(member.size) if member.isreg() else regular.get(member.linkname, 0),
                        )
                        for member, parts in members
                        if member.isreg() or member.islnk()
                    ],
                    limits,
                )
                for member, parts in members:
                    top.add(parts[0])
                    dest = target.joinpath(*parts)
                    size = (
                        member.size if member.isreg() else tar.getmember(member.linkname).size if member.islnk() else -1
                    )
                    if size >= 0 and not _needs_write(dest, size):
                        advance(1)
                        continue
                    _extract_tar_member(tar, member, dest)
                    written += int(member.isreg() or member.islnk())
                    advance(1)
                n_members = len(members)
        except (tarfile.TarError, EOFError) as exc:
            raise CmError(
                f"{archive}: not a readable tar archive ({exc})",
                "the download may be incomplete or corrupt; delete it and download again",
            ) from None
    else:
        raise CmError(f"{archive}: unknown archive type", f"supported: {', '.join(_ARCHIVE_SUFFIXES)}")
    marker = marker_path(archive, target)
    marker.parent.mkdir(parents=True, exist_ok=True)
    record = {
        **_archive_identity(archive),
        "n_members": n_members,
        "n_written": written,
        "top_level": sorted(top),
        "unpacked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    os.replace(tmp, marker)
    return UnpackResult(archive, target, n_members, written, False, sorted(top))
