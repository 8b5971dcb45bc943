"""Generator family per attack id, from tables shipped as package data.

``taxonomy/<corpus>.tsv`` holds ``attack<TAB>family<TAB>description`` lines; a
corpus without a table gets null families rather than invented ones.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TAXONOMY_DIR", "attack_families", "attack_descriptions"]

TAXONOMY_DIR = Path(__file__).resolve().parent / "taxonomy"


def _rows(corpus: str) -> list[list[str]]:
    path = TAXONOMY_DIR / f"{corpus}.tsv"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            fields = line.split("\t")
            if fields[0] != "attack":
                rows.append(fields)
    return rows


def attack_families(corpus: str) -> dict[str, str]:
    return {r[0]: r[1] for r in _rows(corpus) if len(r) > 1 and r[1]}


def attack_descriptions(corpus: str) -> dict[str, str]:
    return {r[0]: r[2] for r in _rows(corpus) if len(r) > 2}
