"""Safe unpacking (issue 19 item 12): every tar member validated by cm, links resolved as the filesystem would."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from cm_cli.core.errors import CmError
from cm_cli.data.unpack import marker_path, unpack_archive


def _tar_of(entries) -> bytes:
    """entries: (name, kind, payload): kind 'file' (bytes), 'dir', 'sym'/'hard' (link name), 'fifo', 'chr'."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
            }[kind]
            if kind in ("sym", "hard"):
                info.linkname = payload
            tar.addfile(info)
    return buffer.getvalue()


def _cve_2025_4517_shape() -> list:
    """The public proof of concept's shape: a long chain of directories and links that realpath cannot
    follow past PATH_MAX, ending in a link that climbs out, and a file written through it."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    path, entries = "", []
    for step in steps:
        entries.append((os.path.join(path, comp), "dir", None))
        entries.append((os.path.join(path, step), "sym", comp))
        path = os.path.join(path, comp)
    linkpath = os.path.join("/".join(steps), "l" * 254)
    entries.append((linkpath, "sym", "../" * len(steps)))
    entries.append(("escape", "sym", linkpath + "/../../../../../../../../../../../../../../../../.."))
    entries.append(("escape/outside-owned.txt", "file", b"owned"))
    return entries


ATTACKS = {
    "chained_dot_links": [("b", "sym", "."), ("a", "sym", "b/.."), ("a/escaped.txt", "file", b"x")],
    "chain_without_write": [("b", "sym", "."), ("a", "sym", "b/..")],
    "link_out_then_file": [("ok.txt", "file", b"ok"), ("up", "sym", ".."), ("up/escaped.txt", "file", b"x")],
    "absolute_link": [("etc", "sym", "/etc"), ("etc/owned", "file", b"x")],
    "link_to_dir_then_write": [("sub", "dir", None), ("sub/in", "sym", "../.."), ("sub/in/x.txt", "file", b"x")],
    "hardlink_outside": [("h", "hard", "../secret.txt")],
    "hardlink_through_symlink": [("up", "sym", ".."), ("h", "hard", "up/secret.txt")],
    "write_through_internal_link": [("d", "dir", None), ("l", "sym", "d"), ("l/x.txt", "file", b"x")],
    "fifo": [("pipe", "fifo", None)],
    "device": [("dev", "chr", None)],
    "cve_2025_4517": _cve_2025_4517_shape(),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_link_attacks_are_refused_with_nothing_left_behind(tmp_path, attack):
    archive = tmp_path / f"{attack}.tar"
    archive.write_bytes(_tar_of(ATTACKS[attack]))
    (tmp_path / "secret.txt").write_text("secret")
    target = tmp_path / "root" / "out"
    target.mkdir(parents=True)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(CmError, match="refusing member") as info:
        unpack_archive(archive, target)
    assert info.value.hint and "malicious" in info.value.hint
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before  # nothing written anywhere, inside or outside the target
    assert (tmp_path / "secret.txt").read_text() == "secret"


def test_internal_links_and_hard_links_are_kept(tmp_path):
    archive = tmp_path / "ok.tar"
    archive.write_bytes(
        _tar_of(
            [
                ("d", "dir", None),
                ("d/a.txt", "file", b"abc"),
                ("d/link", "sym", "a.txt"),
                ("top", "sym", "d"),
                ("d/hard.txt", "hard", "d/a.txt"),
                ("dot", "sym", "."),
            ]
        )
    )
    target = tmp_path / "out"
    result = unpack_archive(archive, target)
    assert (target / "d" / "link").is_symlink() and (target / "d" / "link").read_bytes() == b"abc"
    assert (target / "top" / "a.txt").read_bytes() == b"abc"
    assert (target / "d" / "hard.txt").read_bytes() == b"abc" and not (target / "d" / "hard.txt").is_symlink()
    assert result.n_written == 2
    marker_path(archive, target).unlink()
    assert unpack_archive(archive, target).n_written == 0  # a rerun over its own links is fine


def test_existing_symlink_on_disk_is_not_written_through(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "data").symlink_to(tmp_path)
    archive = tmp_path / "a.tar"
    archive.write_bytes(_tar_of([("data/owned.txt", "file", b"x")]))
    with pytest.raises(CmError, match="through the symbolic link 'data'"):
        unpack_archive(archive, target)
    assert not (tmp_path / "owned.txt").exists()


def test_unpacked_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        archive = tmp_path / "a.tar"
        archive.write_bytes(_tar_of([("f.txt", "file", b"x")]))
        unpack_archive(archive, tmp_path / "out")
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "f.txt").stat().st_mode & 0o777 == 0o644


def test_zip_is_not_written_through_an_existing_symlink(tmp_path):
    import zipfile

    target = tmp_path / "out"
    target.mkdir()
    (target / "LA").symlink_to(tmp_path)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("LA/owned.txt", b"x")
    with pytest.raises(CmError, match="through the symbolic link 'LA'"):
        unpack_archive(archive, target)
    assert not (tmp_path / "owned.txt").exists()


# --- bounds (issue 29 item 4): archive bombs are refused before anything is written --------------------------------


def _zeros_zip(path, size):
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("big.bin", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                member.write(block)
    return path


def _zeros_tgz(path, size):
    import io
    import tarfile

    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), self.left)
            buffer[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("corpus/big.bin")
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros(size)))
    return path


@pytest.mark.parametrize("make", [_zeros_zip, _zeros_tgz])
def test_an_archive_bomb_is_refused_by_its_ratio_before_writing(tmp_path, make):
    from cm_cli.core.errors import CmError
    from cm_cli.data.unpack import UnpackLimits, unpack_archive

    archive = make(tmp_path / ("bomb.zip" if make is _zeros_zip else "bomb.tar.gz"), 64 << 20)
    ratio = (64 << 20) / archive.stat().st_size
    assert ratio > 100  # zeros compress ~1000x
    target = tmp_path / "out"
    with pytest.raises(CmError, match=r"archive bomb\?") as info:
        unpack_archive(archive, target)
    assert "CM_UNPACK_MAX_RATIO" in info.value.hint
    assert not [p for p in target.rglob("*") if p.is_file()]  # nothing written
    # a limit above the ratio lets it through; a byte cap below the size refuses it again
    unpack_archive(archive, tmp_path / "ok", limits=UnpackLimits(max_ratio=ratio * 2))
    assert sum(p.stat().st_size for p in (tmp_path / "ok").rglob("*.bin")) == 64 << 20
    with pytest.raises(CmError, match="over the 32.0 MB cap"):
        unpack_archive(archive, tmp_path / "capped", limits=UnpackLimits(max_bytes=32 << 20, max_ratio=1e9))
    assert not list((tmp_path / "capped").rglob("*.bin"))


def test_limits_from_the_environment(monkeypatch):
    from cm_cli.core.errors import CmError
    from cm_cli.data.unpack import UnpackLimits

    monkeypatch.setenv("CM_UNPACK_MAX_RATIO", "7.5")
    monkeypatch.setenv("CM_UNPACK_MAX_BYTES", "1000")
    assert UnpackLimits.from_env() == UnpackLimits(max_bytes=1000, max_ratio=7.5)
    for bad in ("inf", "nan", "-1", "lots"):
        monkeypatch.setenv("CM_UNPACK_MAX_RATIO", bad)
        with pytest.raises(CmError, match="CM_UNPACK_MAX_RATIO"):
            UnpackLimits.from_env()


def test_the_free_space_check_counts_the_unpacked_size(tmp_path, monkeypatch):
    import shutil as sh
    from collections import namedtuple

    from cm_cli.core.errors import CmError
    from cm_cli.data.unpack import UnpackLimits, unpack_archive

    archive = _zeros_zip(tmp_path / "z.zip", 8 << 20)
    usage = namedtuple("usage", "total used free")
    # more room than the archive, less than what it unpacks to
    monkeypatch.setattr(sh, "disk_usage", lambda p: usage(1 << 40, 0, archive.stat().st_size * 10))
    with pytest.raises(CmError, match="not enough free space.*need 8.0 MB"):
        unpack_archive(archive, tmp_path / "out", limits=UnpackLimits(max_ratio=1e9))
    assert not list((tmp_path / "out").rglob("*.bin"))
