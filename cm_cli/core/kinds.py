"""Artifact kinds: declared once, by the module that produces them, and discovered by provenance and the report.

Why: adding an analysis used to mean editing closed lists on three floors (the
provenance kinds, the report's collector and its section titles and hints). Now the
producing module calls ``register_kind(...)`` at module level; ``cm_cli.core.provenance``
accepts the kind, ``cm_cli.report.collect`` finds its directories by ``marker`` (or by
``cm.json`` ``kind``) and ``cm_cli.report.sections_analysis`` renders it, with the
declared ``section`` builder or a generic one that tables the declared ``tables``.

Discovery imports nothing at ``cm --help`` time: ``discover()`` runs only when a kind
is looked up that is not registered yet (or when the report runs). It scans the
package's source files for a line starting with ``register_kind(`` (or ``NAME =
register_kind(``) and imports those modules, then loads the entry points of the
``cm.kinds`` group, so an installed plugin can add kinds too. Keep the declaring
module light at module level (no torch, sklearn, matplotlib imports outside functions).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Kind", "register_kind", "unregister_kind", "get_kind", "is_kind", "kinds", "analysis_kinds", "discover"]


@dataclass(frozen=True)
class Kind:
    """One artifact kind: what ``cm.json`` calls it and how the report finds and shows it.

    ``marker``: the file whose presence identifies a directory of this kind even without a
    ``cm.json`` (hand-made or older output). ``tables``: the Parquet stems the report reads
    (``<stem>.parquet`` in the directory). ``summary``: the JSON file the report reads as the
    analysis summary (default ``<name>.json``, or the marker when it is JSON). ``title`` makes
    it an analysis section of the report (None: not an analysis, e.g. ``manifest``).
    ``command``: how to make it, as shown in the report's hints. ``section``: ``"module:function"``
    of a section builder ``(info, fig, where) -> list of blocks``, resolved only when the report
    runs (None: the generic builder). ``optional``: its section and count appear only when one
    is found. ``bulk``: its directories hold bulk data and are never searched below.
    ``order``: position among the report's analysis sections.
    """

    name: str
    title: str | None = None
    command: str | None = None
    marker: str | None = None
    tables: tuple[str, ...] = ()
    summary: str | None = None
    looked_for: str | None = None
    missing: str | None = None
    section: str | None = None
    optional: bool = False
    bulk: bool = False
    order: float = 100.0
    module: str | None = None

    @property
    def is_analysis(self) -> bool:
        return self.title is not None

    @property
    def summary_file(self) -> str:
        if self.summary:
            return self.summary
        if self.marker and self.marker.endswith(".json"):
            return self.marker
        return f"{self.name}.json"

    @property
    def looked_for_text(self) -> str:
        return self.looked_for or self.marker or f"cm.json kind '{self.name}'"

    @property
    def missing_text(self) -> str:
        return self.missing or f"{self.title or self.name} results"


_REGISTRY: dict[str, Kind] = {}
_DISCOVERED = False
_DECLARES = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*)?(?:kinds\.)?register_kind\(", re.MULTILINE)


def register_kind(name: str, **fields) -> Kind:
    """Declare an artifact kind (see ``Kind`` for the fields); returns it. Call at module level.

    Registering the same name again with the same fields is a no-op (a module imported
    twice); with different fields it is an error, so two modules cannot silently claim
    one kind.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name or ""):
        raise ValueError(f"artifact kind name {name!r} must be lower case letters, digits and underscores")
    if "tables" in fields:
        fields["tables"] = tuple(fields["tables"])
    fields.setdefault("module", sys._getframe(1).f_globals.get("__name__"))
    kind = Kind(name=name, **fields)
    existing = _REGISTRY.get(name)
    if existing is not None and existing != kind and existing.module != kind.module:
        raise ValueError(f"artifact kind {name!r} is already declared by {existing.module}")
    _REGISTRY[name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove a kind (tests that declare a dummy kind clean up with this)."""
    _REGISTRY.pop(name, None)


def discover() -> None:
    """Import every module of the package that declares a kind, and the ``cm.kinds`` entry points (once)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    import importlib

    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        if path.name == "kinds.py" and path.parent.name == "core":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "register_kind(" not in text or not _DECLARES.search(text):
            continue
        relative = path.relative_to(package.parent).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        importlib.import_module(".".join(parts))
    from importlib import metadata

    for entry in metadata.entry_points(group="cm.kinds"):
        entry.load()


def get_kind(name: str) -> Kind | None:
    """The declared kind ``name``, discovering the declaring modules on first miss; None if nobody declares it."""
    if name not in _REGISTRY:
        discover()
    return _REGISTRY.get(name)


def is_kind(name: str) -> bool:
    return get_kind(name) is not None


def kinds() -> list[Kind]:
    """Every declared kind (after discovery), built-in chain kinds first, then by ``order`` and name."""
    discover()
    return sorted(_REGISTRY.values(), key=lambda k: (k.order, k.name))


def analysis_kinds() -> list[Kind]:
    """The kinds the report gives an analysis section, in section order."""
    return [k for k in kinds() if k.is_analysis]


# The chain's own kinds: each has a bespoke reader in the report (runs, evaluations) or is bulk
# data the report only records, so they carry no section here. New kinds are declared where made.
for _name in ("manifest", "degraded", "embeddings"):
    register_kind(_name, bulk=True, order=0.0)
for _name in ("run", "scores", "metrics", "report"):
    register_kind(_name, order=0.0)
del _name
