"""Where each real corpus comes from: the ``CorpusSource`` each registered corpus module declares.

The records themselves live in the corpus modules (``asvspoof5.py`` …, see ``registry.py``);
this module gathers them for ``cm download`` and keeps the names older code imports.
"""

from __future__ import annotations

from cm_cli.core.errors import CmError
from cm_cli.data.corpora.registry import corpus_specs
from cm_cli.data.corpora.remote import ODC_BY, SUBSETS, CorpusSource, RemoteFile, zenodo_file_url

__all__ = ["SUBSETS", "ODC_BY", "RemoteFile", "CorpusSource", "CORPUS_SOURCES", "corpus_source", "zenodo_file_url"]

CORPUS_SOURCES: dict[str, CorpusSource] = {spec.name: spec.source for spec in corpus_specs() if spec.source}


def corpus_source(name: str) -> CorpusSource:
    if name not in CORPUS_SOURCES:
        raise CmError(f"unknown corpus {name!r}", f"downloadable corpora: toy, {', '.join(CORPUS_SOURCES)}")
    return CORPUS_SOURCES[name]
