"""What a corpus download is made of: files, URLs, published checksums, licences, subsets.

Each corpus module declares its own ``CorpusSource`` with these types. Checksums are only
the ones the corpus documentation publishes (the ASVspoof 5 README, the ASVspoof 2021
evaluation-package README). Files hosted on Zenodo without a published sum get theirs
from the Zenodo record's metadata at download time; a file with neither is downloaded
with a size check only and reported as unverified. Sizes are left unknown (``None``)
unless published; Zenodo fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cm_cli.core.errors import CmError

__all__ = ["SUBSETS", "ODC_BY", "RemoteFile", "CorpusSource", "zenodo_file_url"]

# nested: every file of "protocols" is in "dev", every file of "dev" is in "full"
SUBSETS = ("protocols", "dev", "full")
ZENODO = "https://zenodo.org/records/{record}/files/{name}?download=1"
ODC_BY = "ODC-By 1.0"  # Open Data Commons Attribution License


def zenodo_file_url(record: str, name: str) -> str:
    return ZENODO.format(record=record, name=name)


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable archive of a corpus."""

    name: str  # file name on disk (and on a mirror: <base-url>/<name>)
    url: str
    subset: str  # smallest subset that includes it: protocols, dev or full
    md5: str | None = None  # published checksum, when the corpus documentation gives one
    size: int | None = None  # bytes, when published
    zenodo_record: str | None = None  # record whose metadata supplies md5/size at download time
    note: str = ""

    def in_subset(self, subset: str) -> bool:
        return SUBSETS.index(self.subset) <= SUBSETS.index(subset)


@dataclass(frozen=True)
class CorpusSource:
    name: str
    title: str
    licence: str
    homepage: str
    files: tuple[RemoteFile, ...]
    layout: str  # what unpacking leaves under <data_root>/<name>/
    subset_notes: dict[str, str] = field(default_factory=dict)

    def files_for(self, subset: str) -> list[RemoteFile]:
        if subset not in SUBSETS:
            raise CmError(f"unknown subset {subset!r}", f"use one of: {', '.join(SUBSETS)}")
        return [f for f in self.files if f.in_subset(subset)]
