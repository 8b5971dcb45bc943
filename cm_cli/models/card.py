"""The model card of an exported model: its evaluations found on disk and a README with a ``model-index``.

Numbers on a card must be the ones ``cm eval`` wrote, not retyped: ``find_evaluations``
collects every metrics directory whose provenance record says it scored this model
(same checkpoint sha256, or the run's own path), and ``model_card`` lists each metric of
``metrics.json`` (overall and per breakdown group) in the Hugging Face ``model-index``
YAML block, with corpus, condition, split, seed and cm version, and as Markdown tables.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = ["find_evaluations", "model_index", "model_card"]

_HEADLINE = (
    ("eer", "EER", 100.0, "%"),
    ("min_dcf", "minDCF", 1.0, ""),
    ("act_dcf", "actDCF", 1.0, ""),
    ("cllr", "Cllr", 1.0, ""),
)
_SKIP_DIRS = {".git", "checkpoints", "__pycache__"}


def _record_of(metrics_file: Path, stop: Path) -> tuple[Path, dict] | None:
    """The nearest ``cm.json`` at or above the metrics file's folder (a sweep keeps one at its top)."""
    from cm_cli.core.artifacts import read_json
    from cm_cli.core.errors import CmError

    folder = metrics_file.parent
    for candidate in (folder, folder.parent):
        record = candidate / "cm.json"
        if record.is_file():
            try:
                return candidate, read_json(record)
            except CmError:
                return None
        if candidate == stop:
            break
    return None


def _walk_metrics(root: Path, limit: int = 20000) -> Iterable[Path]:
    """``metrics.json`` files under ``root`` (checkpoint folders and hidden folders skipped)."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        seen += 1
        if seen > limit:
            return
        if "metrics.json" in filenames:
            yield Path(dirpath) / "metrics.json"


def _scored_this(record: dict, loaded) -> bool:
    options = record.get("options") or {}
    if record.get("status") != "complete" or record.get("kind") not in ("scores", "metrics"):
        return False
    if options.get("checkpoint_sha256"):
        return options["checkpoint_sha256"] == loaded.checkpoint_sha256
    run = options.get("run")
    mine = {Path(loaded.source).resolve(), loaded.checkpoint.resolve()}
    return bool(run) and Path(run).expanduser().resolve() in mine


def find_evaluations(loaded, roots: Sequence[str | os.PathLike]) -> list[dict]:
    """Every metrics directory under ``roots`` made by ``cm eval`` with this model, sorted by path.

    Each: ``path``, ``corpus``, ``split``, ``condition``, ``seed``, ``cm_version``, ``metrics``.
    """
    from cm_cli.core.artifacts import read_json
    from cm_cli.core.errors import CmError

    found: dict[str, dict] = {}
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        for metrics_file in _walk_metrics(root):
            located = _record_of(metrics_file, root)
            if located is None or not _scored_this(located[1], loaded):
                continue
            try:
                metrics = read_json(metrics_file)
            except CmError:
                continue
            if not isinstance(metrics, dict) or not isinstance(metrics.get("overall"), dict):
                continue
            options = located[1].get("options") or {}
            corpus = metrics.get("corpus")
            condition = (metrics.get("condition") or {}).get("label") or "clean"
            found[str(metrics_file.parent.resolve())] = {
                "path": str(metrics_file.parent.resolve()),
                "corpus": ", ".join(corpus) if isinstance(corpus, list) else (corpus or "unknown"),
                "split": options.get("split"),
                "condition": condition,
                "seed": options.get("scoring_seed", options.get("seed")),
                "cm_version": located[1].get("cm_version"),
                "metrics": metrics,
            }
    return [found[k] for k in sorted(found)]


def _numbers(record: dict) -> list[tuple[str, float]]:
    """The finite numeric metrics of one metrics record, in its own order."""
    out = []
    for key, value in record.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out.append((key, float(value) if isinstance(value, float) else int(value)))
    return out


def _result(evaluation: dict, group: str, record: dict, model_seed: int | None) -> dict:
    dataset: dict[str, Any] = {
        "name": evaluation["corpus"],
        "type": evaluation["corpus"],
        "config": f"{evaluation['condition']}" + ("" if group == "overall" else f"; {group}"),
        "split": evaluation["split"] or "unknown",
        "args": {
            "condition": evaluation["condition"],
            "group": group,
            "scoring_seed": evaluation["seed"],
            "model_seed": model_seed,
            "cm_version": evaluation["cm_version"],
        },
    }
    return {
        "task": {"type": "audio-classification", "name": "Speech anti-spoofing (bona fide vs spoof)"},
        "dataset": dataset,
        "metrics": [{"type": key, "name": key, "value": value} for key, value in _numbers(record)],
    }


def model_index(name: str, evaluations: Sequence[dict], *, model_seed: int | None = None) -> list[dict]:
    """The ``model-index`` entry: one result per evaluated set and group (overall, then each ``by`` value)."""
    results = []
    for evaluation in evaluations:
        metrics = evaluation["metrics"]
        results.append(_result(evaluation, "overall", metrics["overall"], model_seed))
        for column, groups in (metrics.get("by") or {}).items():
            for value, record in groups.items():
                if isinstance(record, dict):
                    results.append(_result(evaluation, f"{column}={value}", record, model_seed))
    return [{"name": name, "results": results}]


def _cell(record: dict, key: str, scale: float) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{scale * float(value):.3f}" if scale != 1.0 else f"{float(value):.4f}"


def _table(rows: list[tuple[str, dict]], first: str) -> list[str]:
    head = f"| {first} | " + " | ".join(f"{label}{' ' + unit if unit else ''}" for _, label, _, unit in _HEADLINE)
    lines = [head + " | bona fide | spoof |", "|" + "---|" * (len(_HEADLINE) + 3)]
    for label, record in rows:
        cells = " | ".join(_cell(record, key, scale) for key, _, scale, _ in _HEADLINE)
        lines.append(f"| {label} | {cells} | {record.get('n_bonafide', '-')} | {record.get('n_spoof', '-')} |")
    return lines


def model_card(
    config: dict, evaluations: Sequence[dict], *, name: str, licence: str | None = None, notes: str | None = None
) -> str:
    """README.md text: YAML front matter (``model-index``) then the card in Markdown."""
    import yaml

    model_config = config.get("model_config") or {}
    seed = config.get("seed")
    front = {
        "library_name": "cm",
        "license": licence or "other",
        "tags": ["audio-classification", "anti-spoofing", "audio-deepfake-detection", "cm"],
        "model-index": model_index(name, evaluations, model_seed=seed),
    }
    train = config.get("train") or {}
    policy = config.get("length_policy") or {}
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        f"A speech anti-spoofing countermeasure ({model_config.get('backbone')} backbone) exported by cm "
        f"{(config.get('source') or {}).get('cm_version')}.",
        "",
    ]
    if notes:
        lines += [notes.strip(), ""]
    lines += [
        "## Input and output",
        "",
        f"- audio: mono, {config.get('sample_rate')} Hz (other rates are resampled by cm)",
        f"- length policy: {policy.get('policy')}"
        + (f", {policy.get('target_samples')} samples" if policy.get("target_samples") else ""),
        f"- score: {config.get('score')}",
        f"- dev EER threshold: {(config.get('metrics') or {}).get('dev_eer_threshold')}",
        "",
        "## Training",
        "",
        f"- corpus: {train.get('corpus')}, method: {train.get('method')}, preset: {config.get('preset')}",
        f"- seed: {seed}, epochs: {train.get('epochs')}, augmentation: {train.get('augment')}",
        f"- domains seen in training: {', '.join(map(str, config.get('seen_domains') or [])) or 'unknown'}",
        "",
        "## Evaluation",
        "",
    ]
    if not evaluations:
        lines += ["No `cm eval` results were found for this model when it was exported.", ""]
    for evaluation in evaluations:
        overall = evaluation["metrics"]["overall"]
        lines += [
            f"### {evaluation['corpus']}, split {evaluation['split']}, condition {evaluation['condition']}",
            "",
            f"cm {evaluation['cm_version']}, scoring seed {evaluation['seed']}.",
            "",
        ]
        lines += _table([("overall", overall)], "set") + [""]
        for column, groups in (evaluation["metrics"].get("by") or {}).items():
            rows = [(str(value), record) for value, record in groups.items() if isinstance(record, dict)]
            lines += [f"By {column}:", ""] + _table(rows, column) + [""]
    lines += [
        "## Use",
        "",
        "```",
        "cm eval --run THIS_FOLDER --audio FILE.wav --out OUT",
        "```",
        "",
        "## Provenance",
        "",
        f"- checkpoint sha256: {(config.get('source') or {}).get('checkpoint_sha256')}",
        "- metric definitions: the ASVspoof 5 evaluation package (EER, minDCF, actDCF, Cllr); "
        "EER and minDCF are fractions in `model-index`",
        "",
    ]
    return "\n".join(lines)
