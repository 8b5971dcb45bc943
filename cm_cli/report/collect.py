"""Find the artifacts of earlier steps under some directories and describe them as typed records.

Discovery goes by each directory's ``cm.json`` ``kind`` and by the file names of
DESIGN.md, so hand-made or older output directories are found too. Analysis kinds
are not listed here: each is declared once by the module that makes it
(``cm_cli.core.kinds.register_kind``: its marker file, tables and summary), and
this module finds every declared kind. Nothing here
reads a big table: scores, histories and analysis tables are read later, one at a
time, by the figure and table code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from cm_cli.core.errors import CmError

__all__ = [
    "RunInfo",
    "EvalInfo",
    "AnalysisInfo",
    "Collection",
    "collect",
    "looked_for",
    "UNKNOWN_CORPUS",
]

UNKNOWN_CORPUS = "unknown corpus"
# what the collector's own readers recognise (runs, evaluations), before the declared analysis kinds
_LOOKED_FOR_CHAIN = (
    "run directories (cm.json kind 'run', config.json, history.parquet)",
    "evaluation directories (metrics.json, scores.parquet, metrics_by_<col>.parquet, sweep.parquet)",
)
_SEED_DIR = re.compile(r"^seed[_-]?\d+$")
_SKIP_DIRS = {"checkpoints", "figures", "__pycache__", "tables"}


@dataclass
class RunInfo:
    """A ``cm train`` run directory."""

    path: Path
    name: str
    method: str | None
    backbone: str | None
    preset: str | None
    seed: int | None
    data: str | None
    git_revision: str | None
    corpus: str
    config: dict = field(default_factory=dict)
    history: Path | None = None

    @property
    def seedless_key(self) -> tuple:
        """Identity of the run up to its seed: runs sharing it are seed replicates."""
        ignore = {"seed", "workers", "out", "output", "log_every", "val_every"}
        config = tuple(sorted((k, repr(v)) for k, v in self.config.items() if k not in ignore))
        return (self.corpus, self.method, self.backbone, self.preset, self.data, config)


@dataclass
class EvalInfo:
    """A ``cm eval`` output directory (metrics, scores, breakdowns and/or a sweep)."""

    path: Path
    name: str
    corpus: str
    options: dict = field(default_factory=dict)
    metrics: dict | None = None
    scores: Path | None = None
    breakdowns: dict[str, Path] = field(default_factory=dict)
    sweep: Path | None = None
    run: RunInfo | None = None
    in_sweep: bool = False  # a per-condition set inside a sweep directory
    label: str = ""

    @property
    def method(self) -> str | None:
        return self.run.method if self.run else _first(self.options, ("method",))

    @property
    def seed(self) -> int | None:
        return self.run.seed if self.run else None

    @property
    def layout_group(self) -> str | None:
        """``<method>`` of the ``<method>/seed_<s>`` layout (DESIGN.md, demo), from this directory or its run's."""
        for path in (self.path, self.run.path if self.run else None):
            if path is not None and _SEED_DIR.match(path.name):
                return path.parent.name
        return None

    @property
    def seedless_key(self) -> tuple:
        """Same evaluation of seed replicates of one run configuration."""
        ignore = {
            "run",
            "checkpoint",
            "checkpoint_sha256",
            "out",
            "output",
            "seed",
            "scores",
            "workers",
            "shard",
            "force",
        }
        options = tuple(sorted((k, repr(v)) for k, v in self.options.items() if k not in ignore))
        run_key = self.run.seedless_key if self.run else (self.name,)
        return (self.corpus, run_key, options)


@dataclass
class AnalysisInfo:
    """An output directory of ``cm loao``, ``cm probe``, ``cm cka`` or ``cm patch``."""

    kind: str
    path: Path
    name: str
    tables: dict[str, Path] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


@dataclass
class Collection:
    """Everything found under the report's input directories."""

    roots: list[Path]
    runs: list[RunInfo] = field(default_factory=list)
    evals: list[EvalInfo] = field(default_factory=list)
    analyses: dict[str, list[AnalysisInfo]] = field(default_factory=dict)
    records: list[tuple[Path, dict]] = field(default_factory=list)  # (directory, cm.json)

    @property
    def empty(self) -> bool:
        return not (self.runs or self.evals or any(self.analyses.values()))

    def corpora(self) -> list[str]:
        """Corpora of runs and evaluations, in order of first appearance (unknown last)."""
        seen = list(dict.fromkeys([r.corpus for r in self.runs] + [e.corpus for e in self.evals if not e.in_sweep]))
        return sorted(seen, key=lambda c: c == UNKNOWN_CORPUS)

    def counts(self) -> dict[str, int]:
        main = [e for e in self.evals if not e.in_sweep]
        counts = {
            "runs": len(self.runs),
            "evaluations": sum(e.sweep is None for e in main),
            "sweeps": sum(e.sweep is not None for e in main),
        }
        from cm_cli.core.kinds import analysis_kinds

        counts.update(
            {
                k.name: len(self.analyses.get(k.name, []))
                for k in analysis_kinds()
                if not k.optional or self.analyses.get(k.name)
            }
        )
        return counts


def looked_for() -> tuple[str, ...]:
    """What discovery recognises, as listed in the "nothing found" error: runs, evaluations, every analysis kind."""
    from cm_cli.core.kinds import analysis_kinds

    return _LOOKED_FOR_CHAIN + tuple(k.looked_for_text for k in analysis_kinds())


def __getattr__(name: str):
    if name == "LOOKED_FOR":  # computed on use: the analysis kinds are discovered, not listed here
        return looked_for()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_analysis(kind, record_kind: str | None, names: set[str]) -> bool:
    """A directory of a declared analysis kind: its marker file, or its ``cm.json`` kind with a table beside it."""
    if kind.marker is None:
        return record_kind == kind.name
    return kind.marker in names or (
        record_kind == kind.name and kind.marker.endswith(".parquet") and any(n.endswith(".parquet") for n in names)
    )


# --------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _first(mapping: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return value
    return None


def _column_values(path: Path, column: str, *, name: str | None = None) -> list[str]:
    """Distinct non-null values of one column of a Parquet file (or directory of parts); [] if absent."""
    import pyarrow.parquet as pq

    from cm_cli.core.artifacts import read_arrow

    try:
        if path.is_file() and column not in pq.read_schema(path).names:
            return []
        table = read_arrow(path, name=name, columns=[column])
    except (CmError, OSError, ValueError):
        return []
    values = table.column(0).drop_null().unique().to_pylist()
    return sorted(str(v) for v in values)


def _corpus_from_manifest(options: Mapping[str, Any]) -> str | None:
    manifest = _first(options, ("manifest", "train_manifest"))
    if not manifest:
        return None
    path = Path(str(manifest))
    if path.is_dir():
        path = path / "manifest.parquet"
    if not path.is_file():
        return None
    values = _column_values(path, "corpus")
    return "+".join(values) if values else None


def _describe_data(options: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    manifest = _first(options, ("manifest", "train_manifest"))
    parts = []
    if manifest:
        path = Path(str(manifest))
        parts.append(path.parent.name if path.name == "manifest.parquet" else path.name)
    augment = _first(config, ("augment", "augment_manifest")) or _first(options, ("augment", "augment_manifest"))
    if augment:
        aug_path = Path(str(augment))
        named = aug_path.parent.name if aug_path.name == "manifest.parquet" else aug_path.name
        shown = named if os.sep in str(augment) else augment
        parts.append(f"aug: {shown}")
    return ", ".join(parts) or None


def _flat(values: dict) -> dict:
    """``cm train`` nests its options under ``train`` (and the model under ``model``): lift them."""
    nested = {k: v for key in ("model", "train") if isinstance(values.get(key), dict) for k, v in values[key].items()}
    return {**nested, **{k: v for k, v in values.items() if not isinstance(v, dict)}}


def _load_run(path: Path, record: dict) -> RunInfo:
    config = _flat(_read_json(path / "config.json"))
    options = record.get("options") or {}
    options = _flat(options) if isinstance(options, dict) else {}
    merged = {**options, **config}
    corpus = _first(merged, ("corpus",)) or _corpus_from_manifest(options) or UNKNOWN_CORPUS
    seed = _first(merged, ("seed",))
    method = _first(merged, ("method",))
    history = path / "history.parquet"
    return RunInfo(
        path=path,
        name=path.name,
        method=str(method).upper() if method else None,
        backbone=_first(merged, ("backbone", "backbone_id")),
        preset=_first(options, ("preset",)) or _first(config, ("preset",)),
        seed=int(seed) if seed is not None and str(seed).lstrip("-").isdigit() else None,
        data=_describe_data(options, config),
        git_revision=record.get("git_revision"),
        corpus=str(corpus),
        config=config,
        history=history if history.is_file() else None,
    )


def _scores_path(path: Path, kind: str | None) -> Path | None:
    if (path / "scores.parquet").exists():
        return path / "scores.parquet"
    if kind == "scores":
        from cm_cli.core.artifacts import find_parts

        try:
            if find_parts(path):
                return path
        except CmError:
            return None
    return None


def _load_eval(path: Path, record: dict) -> EvalInfo:
    options = record.get("options") or {}
    if not isinstance(options, dict):
        options = {}
    metrics = _read_json(path / "metrics.json") if (path / "metrics.json").is_file() else None
    scores = _scores_path(path, record.get("kind"))
    breakdowns = {p.stem[len("metrics_by_") :]: p for p in sorted(path.glob("metrics_by_*.parquet"))}
    sweep = path / "sweep.parquet"
    corpus = _first(options, ("corpus",))
    if not corpus and metrics and metrics.get("corpus"):  # contract 4: the manifest's corpus values
        recorded = metrics["corpus"]
        corpus = "+".join(sorted(map(str, recorded))) if isinstance(recorded, (list, tuple)) else str(recorded)
    if not corpus and scores is not None:
        values = _column_values(scores, "corpus", name="scores")
        corpus = "+".join(values) if values else None
    if not corpus and metrics:
        by_corpus = (metrics.get("by") or {}).get("corpus") or {}
        corpus = "+".join(sorted(by_corpus)) if by_corpus else None
    return EvalInfo(
        path=path,
        name=path.name,
        corpus=str(corpus) if corpus else UNKNOWN_CORPUS,
        options=options,
        metrics=metrics,
        scores=scores,
        breakdowns=breakdowns,
        sweep=sweep if sweep.is_file() else None,
    )


def _load_analysis(kind: str, path: Path) -> AnalysisInfo:
    from cm_cli.core.kinds import get_kind

    tables = {p.stem: p for p in sorted(path.glob("*.parquet")) if not p.name.startswith(".")}
    summary: dict = {}
    declared = get_kind(kind)
    first = declared.summary_file if declared is not None else f"{kind}.json"
    for candidate in (first, "summary.json", *sorted(p.name for p in path.glob("*.json"))):
        if candidate.startswith("cm.") or not (path / candidate).is_file():
            continue
        summary = _read_json(path / candidate)
        if summary:
            break
    return AnalysisInfo(kind=kind, path=path, name=path.name, tables=tables, summary=summary)


def _is_run(path: Path, kind: str | None, names: set[str]) -> bool:
    return kind == "run" or ("config.json" in names and ("history.parquet" in names or (path / "checkpoints").is_dir()))


def _is_eval(kind: str | None, names: set[str]) -> bool:
    if kind in ("scores", "metrics"):
        return True
    return bool({"metrics.json", "scores.parquet", "sweep.parquet"} & names) or any(
        n.startswith("metrics_by_") and n.endswith(".parquet") for n in names
    )


def _run_of(evaluation: EvalInfo, runs: list[RunInfo]) -> RunInfo | None:
    by_path = {r.path.resolve(): r for r in runs}
    reference = _first(evaluation.options, ("run", "run_dir", "checkpoint"))
    if reference:
        candidate = Path(str(reference))
        for path in (candidate, *candidate.parents[:3]):
            try:
                resolved = path.resolve()
            except OSError:
                continue
            if resolved in by_path:
                return by_path[resolved]
            if (path / "config.json").is_file() and (path / "cm.json").is_file() and path.is_dir():
                run = _load_run(path, _read_json(path / "cm.json"))
                runs.append(run)
                by_path[resolved] = run
                return run
    for parent in evaluation.path.resolve().parents:  # an eval nested inside its run directory
        if parent in by_path:
            return by_path[parent]
    return None


def collect(dirs: Iterable[str | os.PathLike], *, exclude: Iterable[str | os.PathLike] = ()) -> Collection:
    """Walk ``dirs`` recursively and describe every artifact found (no error when nothing is)."""
    roots = [Path(d) for d in dirs]
    for root in roots:
        if not root.exists():
            raise CmError(
                f"{root}: no such directory", "give the output directories of cm train/eval/loao/probe/cka/patch"
            )
        if not root.is_dir():
            raise CmError(f"{root}: not a directory", "cm report takes directories and searches them recursively")
    from cm_cli.core.kinds import analysis_kinds, kinds

    analyses = analysis_kinds()
    bulk = {k.name for k in kinds() if k.bulk}  # bulk data (audio, embeddings): recorded, never descended into
    excluded = {Path(p).resolve() for p in exclude}
    found = Collection(roots=roots, analyses={k.name: [] for k in analyses})
    visited: set[Path] = set()
    sweep_dirs: list[Path] = []
    for root in roots:
        for current, dirnames, filenames in os.walk(root, followlinks=False):
            path = Path(current)
            resolved = path.resolve()
            if resolved in visited or resolved in excluded:
                dirnames[:] = []
                continue
            visited.add(resolved)
            names = set(filenames)
            record = _read_json(path / "cm.json") if "cm.json" in names else {}
            kind = record.get("kind")
            if kind == "report":
                dirnames[:] = []
                continue
            if record:
                found.records.append((path, record))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
            if kind in bulk:
                dirnames[:] = []
                continue
            if _is_run(path, kind, names):
                found.runs.append(_load_run(path, record))
            elif kind == "scores" and (record.get("options") or {}).get("audio"):
                continue  # `cm eval --audio` scores of unlabelled files: no trials to evaluate
            elif _is_eval(kind, names):
                found.evals.append(_load_eval(path, record))
                if "sweep.parquet" in names:
                    sweep_dirs.append(resolved)
            for analysis in analyses:
                if _is_analysis(analysis, kind, names):
                    found.analyses[analysis.name].append(_load_analysis(analysis.name, path))
    for evaluation in found.evals:
        resolved = evaluation.path.resolve()
        evaluation.in_sweep = any(d in resolved.parents for d in sweep_dirs)
        evaluation.run = _run_of(evaluation, found.runs)
        if evaluation.corpus == UNKNOWN_CORPUS and evaluation.run is not None:
            evaluation.corpus = evaluation.run.corpus
    by_path = {e.path.resolve(): e for e in found.evals}
    for evaluation in found.evals:  # a condition's set belongs to its sweep's run and corpus
        if evaluation.in_sweep:
            parent = next((by_path[p] for p in evaluation.path.resolve().parents if p in by_path), None)
            if parent is not None:
                evaluation.run = evaluation.run or parent.run
                if evaluation.corpus == UNKNOWN_CORPUS:
                    evaluation.corpus = parent.corpus
    main = [e for e in found.evals if not e.in_sweep]
    # sweep-only directories are labelled among themselves so "ERM" stays "ERM" in both places
    _assign_labels([e for e in main if e.metrics is not None or e.scores is not None])
    _assign_labels([e for e in main if e.metrics is None and e.scores is None])
    return found


def _assign_labels(evals: list[EvalInfo]) -> None:
    """Short, unique system names: method, then method + seed, then the directory name."""

    def base(e: EvalInfo) -> str:
        return e.layout_group or e.method or e.name

    def with_seed(e: EvalInfo) -> str:
        return f"{base(e)} s{e.seed}" if e.seed is not None else base(e)

    for corpus in {e.corpus for e in evals}:
        group = [e for e in evals if e.corpus == corpus]
        for naming in (
            base,
            with_seed,
            lambda e: f"{with_seed(e)} ({e.name})",
            lambda e: f"{with_seed(e)} ({e.path.parent.name}/{e.name})",
            lambda e: str(e.path),
        ):
            labels = [naming(e) for e in group]
            if len(set(labels)) == len(labels):
                break
        for e, label in zip(group, labels):
            e.label = label
