"""The package's import graph: no cycles among module-level imports and no arrow up the floors of docs/DESIGN.md.

Every ``import`` of every module is read with ``ast`` (function-level imports included;
``if TYPE_CHECKING:`` blocks excluded, they never run). A new top-level package must be
given a floor in ``FLOORS`` (and in docs/DESIGN.md, "Floors").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# docs/DESIGN.md "Floors": a module imports its own package or packages on lower floors, never a higher or equal one
FLOORS = {
    "__init__": -1,  # cm_cli/__init__.py: the version string only
    "core": 0,
    "data": 1,
    "metrics": 1,
    "degrade": 2,
    "models": 3,
    "featuresets": 3,  # feature sets for `cm embed` (prosody, codec reconstruction, transcripts): beside models
    "embedding": 4,
    "scoring": 4,
    "training": 5,
    "evaluation": 6,
    "analysis": 6,
    "report": 7,
    "recipes": 8,
    "doctor": 8,  # what this install can do (`cm doctor`): reads every lower floor, printed by commands
    "commands": 9,
    "app": 10,
    "__main__": 11,
}


def _modules(package_dir: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph(package_dir: Path) -> dict[str, tuple[set[str], set[str]]]:
    """Module -> (modules of the package it imports at module level, those it imports inside functions)."""
    modules = _modules(package_dir)
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        top: set[str] = set()
        deferred: set[str] = set()

        def target(dotted: str) -> str | None:
            while dotted and dotted not in modules:
                dotted = dotted.rpartition(".")[0]
            return dotted or None

        def visit(node: ast.AST, module_level: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                level = module_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, ast.Import):
                    found = [target(a.name) for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        anchor = name.split(".")
                        anchor = anchor[: len(anchor) - child.level + (1 if is_package else 0)]
                        base = ".".join(anchor + ([base] if base else []))
                    found = [target(f"{base}.{a.name}") for a in child.names]
                else:
                    visit(child, level)
                    continue
                for module in found:
                    if module and module != name:
                        (top if level else deferred).add(module)

        visit(ast.parse(path.read_text(encoding="utf-8")), True)
        graph[name] = (top, deferred)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def floor_violations(graph, floors: dict[str, int]) -> list[str]:
    """Imports from a package to another on the same or a higher floor (module-level and deferred alike)."""

    def package(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 else "__init__"

    bad = []
    for module, (top, deferred) in sorted(graph.items()):
        for imported in sorted(top | deferred):
            a, b = package(module), package(imported)
            if a != b and floors[b] >= floors[a]:
                bad.append(f"{module} (floor {floors[a]}) imports {imported} (floor {floors[b]})")
    return bad


def test_every_package_has_a_floor():
    graph = import_graph(ROOT / "cm_cli")
    packages = {m.split(".")[1] if "." in m else "__init__" for m in graph}
    assert sorted(packages - set(FLOORS)) == [], "give the new package a floor here and in docs/DESIGN.md"


def test_no_cycles_among_module_level_imports():
    graph = import_graph(ROOT / "cm_cli")
    assert cycles({m: top for m, (top, _) in graph.items()}) == []


def test_no_import_points_up_the_floors():
    assert floor_violations(import_graph(ROOT / "cm_cli"), FLOORS) == []


def test_the_model_registry_does_not_import_the_model_and_loading_not_training():
    graph = import_graph(ROOT / "cm_cli")
    top, deferred = graph["cm_cli.models.registry"]
    assert "cm_cli.models.model" not in top | deferred
    top, deferred = graph["cm_cli.models.loading"]
    assert not [m for m in top | deferred if m.startswith("cm_cli.training")]


@pytest.fixture
def planted(tmp_path):
    """A small package with one module-level cycle (a <-> b, b through a relative import) and one arrow up."""
    pkg = tmp_path / "pkg"
    (pkg / "low").mkdir(parents=True)
    (pkg / "high").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "high" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("from pkg.low import b\n")
    (pkg / "low" / "b.py").write_text("from . import a\n\ndef f():\n    from pkg.high import c\n")
    (pkg / "high" / "c.py").write_text(
        "import pkg.low.a\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import d\n"
    )
    (pkg / "high" / "d.py").write_text("def g():\n    import pkg.high.c\n")
    return pkg


def test_the_checks_catch_a_planted_cycle_and_a_planted_arrow_up(planted):
    graph = import_graph(planted)
    assert graph["pkg.low.b"] == ({"pkg.low.a"}, {"pkg.high.c"})
    assert graph["pkg.high.c"][0] == {"pkg.low.a"}  # the TYPE_CHECKING import is not an import
    assert cycles({m: top for m, (top, _) in graph.items()}) == [["pkg.low.a", "pkg.low.b"]]
    # c -> d is type-checking only and d -> c deferred: no module-level cycle there, but one over all imports
    assert ["pkg.high.c", "pkg.high.d"] not in cycles({m: top for m, (top, _) in graph.items()})
    assert floor_violations(graph, {"__init__": 0, "low": 1, "high": 2}) == [
        "pkg.low.b (floor 1) imports pkg.high.c (floor 2)"
    ]
