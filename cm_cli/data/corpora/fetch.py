"""``download_corpus``: fetch a real corpus's archives for a subset, then unpack them in place.

Glue between the file list (``sources``), the downloader and the unpacker, so the
command layer makes one call. Archives are kept in ``<corpus_root>/downloads/``
(they make reruns and partial unpacks cheap); unpacking fills ``<corpus_root>/``
in the layout ``cm manifest`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cm_cli.core.errors import CmError

__all__ = ["CorpusDownload", "download_corpus", "resolve_checksums", "DOWNLOAD_DIR"]

DOWNLOAD_DIR = "downloads"
ZENODO_API = "https://zenodo.org/api/records"


@dataclass
class CorpusDownload:
    corpus: str
    subset: str
    root: Path
    files: list[dict] = field(default_factory=list)
    unpacked: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(f["status"] == "downloaded" for f in self.files) or any(not u["skipped"] for u in self.unpacked)


def resolve_checksums(files, *, zenodo_api: str, timeout: float, warnings: list[str]):
    """``DownloadItem``s with published md5s, else md5/size from the Zenodo record's metadata."""
    from cm_cli.data.download import DownloadItem, zenodo_metadata

    cache: dict[str, dict] = {}
    items = []
    for f in files:
        md5, size = f.md5, f.size
        if f.zenodo_record and (md5 is None or size is None):
            if f.zenodo_record not in cache:
                try:
                    cache[f.zenodo_record] = zenodo_metadata(f.zenodo_record, api_base=zenodo_api, timeout=timeout)
                except CmError as exc:
                    if md5 is None:
                        raise
                    cache[f.zenodo_record] = {}
                    warnings.append(f"sizes unknown ({exc.message})")
            meta = cache[f.zenodo_record].get(f.name, {})
            md5 = md5 or meta.get("md5")
            size = size if size is not None else meta.get("size")
            if f.md5 and meta.get("md5") and meta["md5"] != f.md5:
                warnings.append(
                    f"{f.name}: Zenodo lists md5 {meta['md5']}, the corpus README {f.md5}; using the README's"
                )
        if md5 is None:
            warnings.append(
                f"{f.name}: no published checksum; verified by size only"
                if size is not None
                else f"{f.name}: no published checksum or size; verified by archive integrity only"
            )
        items.append(DownloadItem(f.name, f.url, md5=md5, size=size))
    return items


def download_corpus(
    corpus: str,
    corpus_root: str | Path,
    *,
    subset: str = "full",
    base_url: str | None = None,
    unpack: bool = True,
    workers: int = 4,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    aria2: bool = False,
    zenodo_api: str | None = None,
    source_name: str = "zenodo",
) -> CorpusDownload:
    """Download (and unpack) ``corpus``'s files for ``subset`` under ``corpus_root``; safe to rerun."""
    import shutil

    from cm_cli.core.progress import task
    from cm_cli.data.corpora.sources import corpus_source
    from cm_cli.data.download import DownloadSettings, download_files
    from cm_cli.data.unpack import is_archive, unpack_archive

    source = corpus_source(corpus)
    root = Path(corpus_root)
    result = CorpusDownload(corpus, subset, root)
    files = source.files_for(subset)
    if source_name == "huggingface":  # the hub supplies sizes and sha256; published md5s are checked too
        from cm_cli.data.download import DownloadItem

        items = [DownloadItem(f.name, f.url, md5=f.md5, size=f.size) for f in files]
    else:
        items = resolve_checksums(files, zenodo_api=zenodo_api or ZENODO_API, timeout=timeout, warnings=result.warnings)
    if aria2 and shutil.which("aria2c") is None:
        result.warnings.append("--aria2 asked for but aria2c is not on PATH; used the built-in downloader")
    settings = DownloadSettings(retries=retries, backoff=backoff, timeout=timeout, workers=workers, aria2=aria2)
    extra = sum(i.size for i in items if i.size is not None) if unpack else 0
    if source_name == "huggingface":
        from cm_cli.data.corpora.hub_mirror import download_from_hub

        fetched = download_from_hub(items, root / DOWNLOAD_DIR, corpus=corpus, endpoint=base_url, workers=workers)
    elif source_name == "zenodo":
        fetched = download_files(
            items,
            root / DOWNLOAD_DIR,
            base_url=base_url,
            settings=settings,
            extra_space=extra,
            description=f"downloading {corpus}",
        )
    else:
        raise CmError(f"unknown download source {source_name!r}", "use zenodo or huggingface")
    result.files = [
        {
            "name": r.name,
            "path": str(r.path),
            "size": r.size,
            "status": r.status,
            "verified": r.verified,
            "md5": r.md5,
            "attempts": r.attempts,
        }
        for r in fetched
    ]
    if unpack:
        names = {r.name for r in fetched}
        split = {r.name for r in fetched if r.name.endswith(".zip") and r.name[:-4] + ".z01" in names}
        for name in sorted(split):  # a split zip (Codecfake) cannot be unpacked member by member
            result.warnings.append(
                f"{name} is a split zip: join its parts with `zip -s 0 {name} --out joined.zip` and unpack that"
            )
        archives = [r.path for r in fetched if is_archive(r.name) and r.name not in split]
        for archive in archives:
            with task(None, f"unpacking {archive.name}") as advance:
                info = unpack_archive(archive, root, advance=advance)
            result.unpacked.append(
                {
                    "archive": archive.name,
                    "members": info.n_members,
                    "written": info.n_written,
                    "skipped": info.skipped,
                    "top_level": info.top_level,
                }
            )
    return result
