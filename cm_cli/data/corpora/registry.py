"""The corpus registry: one ``CorpusSpec`` per corpus, declared by the corpus's own module.

Why: adding a corpus used to mean an if-chain in ``manifests.py`` (protocol files, ASV
score files, builders) plus edits elsewhere, and a corpus missing from the chain silently
left its protocol files out of the manifest's fingerprint. Now a corpus is one module that
declares everything about it and one line in ``_REGISTERED`` below; ``CORPORA`` (the
``Corpus`` choice of the commands and shell completion), ``cm manifest``, ``cm download``
and the reuse fingerprint all read it. Specs are imported lazily, so ``cm --help`` only
reads the names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from cm_cli.data.corpora.remote import CorpusSource

__all__ = ["CorpusSpec", "CORPORA", "corpus_spec", "corpus_specs"]

# One line per corpus: name -> "module:attribute" of its CorpusSpec (the order is the CLI's order).
_REGISTERED: dict[str, str] = {
    "asvspoof5": "cm_cli.data.corpora.asvspoof5:SPEC",
    "asvspoof2021_la": "cm_cli.data.corpora.asvspoof2021:LA_SPEC",
    "asvspoof2021_df": "cm_cli.data.corpora.asvspoof2021:DF_SPEC",
    "asvspoof2019_la": "cm_cli.data.corpora.asvspoof2019_la:SPEC",
    "in_the_wild": "cm_cli.data.corpora.in_the_wild:SPEC",
    "mlaad": "cm_cli.data.corpora.mlaad:SPEC",
    "codecfake": "cm_cli.data.corpora.codecfake:SPEC",
    "codecfake_plus": "cm_cli.data.corpora.codecfake_plus:SPEC",
    "toy": "cm_cli.data.corpora.asvspoof5:TOY_SPEC",
}
CORPORA: tuple[str, ...] = tuple(_REGISTERED)


@dataclass(frozen=True)
class CorpusSpec:
    """Everything cm knows about one corpus.

    ``prepare(corpus_root, *, data_root, protocol=None, audio_dir=None, phase=None)`` returns the
    manifest rows. ``protocol_files(corpus_root)`` returns the protocol/key files the manifest is made
    from (the reuse fingerprint); a corpus without a short list of them must say ``scanned=True``
    (its manifest comes from a folder scan), otherwise the spec is refused when it is built.
    """

    name: str
    title: str
    prepare: Callable[..., "pd.DataFrame"]
    protocol_files: Callable[[Path], list[Path]] | None = None
    scanned: bool = False
    source: "CorpusSource | None" = None  # download record; None: built locally (toy)
    labels: Mapping[str, str] = field(default_factory=dict)  # label text in the protocols -> bonafide/spoof
    attack_families: Callable[[], Mapping[str, str]] | None = None  # attack id -> generator family
    splits: tuple[str, ...] = ("train", "dev", "eval")  # splits the corpus ships
    asv_scores: Callable[[Path, str], Path | None] | None = None  # (corpus_root, split) -> ASV score file
    accepts_protocol: bool = False  # `cm manifest --protocol/--audio-dir` apply
    phases: tuple[str, ...] = ()  # `cm manifest --phase` values (ASVspoof 2021)
    layout: str = ""  # expected layout under <data_root>/<name>/

    def __post_init__(self) -> None:
        if self.protocol_files is None and not self.scanned:
            raise CmError(
                f"corpus {self.name!r} declares no protocol files",
                "give the CorpusSpec protocol_files=..., or scanned=True when the manifest is a folder scan",
            )

    def build(self, corpus_root: Path, *, data_root: Path, **kwargs: Any) -> "pd.DataFrame":
        return self.prepare(Path(corpus_root), data_root=data_root, **kwargs)


_LOADED: dict[str, CorpusSpec] = {}


def corpus_spec(name: str) -> CorpusSpec:
    """The registered spec of ``name``; an unknown name is a one-line error listing the known ones."""
    if name in _LOADED:
        return _LOADED[name]
    if name not in _REGISTERED:
        raise CmError(f"unknown corpus {name!r}", f"known: {', '.join(CORPORA)}")
    module, _, attribute = _REGISTERED[name].partition(":")
    spec = getattr(importlib.import_module(module), attribute)
    if not isinstance(spec, CorpusSpec) or spec.name != name:
        raise CmError(f"{_REGISTERED[name]} is not the CorpusSpec of {name!r}")
    _LOADED[name] = spec
    return spec


def corpus_specs() -> list[CorpusSpec]:
    return [corpus_spec(name) for name in CORPORA]
