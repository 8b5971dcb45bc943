"""The report's document model: sections holding paragraphs, tables, figures and skip notes.

Section builders produce these; ``render`` turns the same tree into Markdown, HTML
and LaTeX tables, so the three outputs never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from cm_cli.report.tables import Table

__all__ = ["Figure", "Note", "Section", "Block", "FigureDir", "slug"]


@dataclass
class Figure:
    """A PNG written under ``figures/`` with its caption."""

    path: Path
    caption: str


@dataclass
class Note:
    """A line saying what was skipped and which command would produce it."""

    text: str


Block = Union[str, Table, Figure, Note, "Section"]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> "Section":
        self.blocks.extend(b for b in blocks if b is not None)
        return self

    @property
    def anchor(self) -> str:
        return slug(self.title)


def slug(text: str) -> str:
    """A file- and anchor-safe name: lower case, runs of other characters as ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


@dataclass
class FigureDir:
    """Hands out unique ``figures/<name>.png`` paths (the same stem twice gets ``-2``)."""

    root: Path
    used: set[str] = field(default_factory=set)

    def path(self, name: str) -> Path:
        stem = slug(name)
        candidate, n = stem, 1
        while candidate in self.used:
            n += 1
            candidate = f"{stem}-{n}"
        self.used.add(candidate)
        return self.root / f"{candidate}.png"

    def table_name(self, name: str) -> str:
        """A unique table stem, sharing the name space so anchors never collide."""
        return self.path("tab-" + name).stem[len("tab-") :]
