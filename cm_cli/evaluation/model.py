"""``cm eval --run``: score a trained model on a manifest, per condition, and evaluate.

One condition is the manifest as it is; ``--degrade`` specs (with ``|`` sweeps) and
``--chunk-ms`` lengths (streaming inference, also sweepable) add conditions that are
applied on the fly, so no audio is written. Each condition gets ``scores.parquet``
(utt_id, score, every manifest column) and the metrics directory written by
``writer.write_metrics_dir`` under the same ``EvalSettings`` as external score files;
a sweep adds ``sweep.parquet``. Scores (and the utterances that failed) are cached
under the cache dir keyed by checkpoint hash, preprocessing, precision and manifest
hash, so stale scores are never reused and a cached rerun reports the same failures.

Utterances shorter than the model's receptive field are still scored (padded by the
model's length policy, DESIGN.md "Padding") but never silently: ``scores.parquet`` flags
them in its boolean ``short`` column, and ``metrics.json`` counts them
(``condition.n_short``) with a warning the command prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from cm_cli.core.errors import CmError
from cm_cli.evaluation.settings import EvalSettings

__all__ = [
    "Condition",
    "ConditionResult",
    "ConditionWriter",
    "ModelEvalResult",
    "plan_conditions",
    "evaluate_model",
    "write_conditions",
    "short_warning",
]


@dataclass(frozen=True)
class Condition:
    label: str  # canonical spec, "clean", with "+chunk=<ms>ms" in streaming mode
    slug: str  # directory name inside a sweep
    degrade: str | None
    chunk_ms: float | None
    parameter: str | None  # the swept parameter (kbps, snr, chunk_ms), if any
    severity: float | None


@dataclass
class ConditionResult:
    condition: Condition
    out_dir: Path
    metrics: dict | None
    n_scored: int
    n_failed: int
    cached: bool = False
    n_short: int = 0  # scored rows shorter than the receptive field (flagged ``short``)


@dataclass
class ModelEvalResult:
    out_dir: Path
    conditions: list[ConditionResult] = field(default_factory=list)
    sweep: Path | None = None
    skipped: bool = False

    def summary(self) -> dict:
        from cm_cli.evaluation.writer import headline

        rows = []
        for r in self.conditions:
            rows.append(
                {
                    "condition": r.condition.label,
                    "dir": str(r.out_dir),
                    "n_scored": r.n_scored,
                    "n_failed": r.n_failed,
                    "n_short": r.n_short,
                    "cached": r.cached,
                    **headline(r.metrics or {}),
                }
            )
        return {"out": str(self.out_dir), "conditions": rows, "sweep": str(self.sweep) if self.sweep else None}


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _degrade_conditions(specs: Sequence[str]) -> list[tuple[str | None, str | None, float | None]]:
    """(canonical spec, swept parameter, severity) per degradation condition, in order."""
    from cm_cli.core.specs import expand_sweep

    out: list[tuple[str | None, str | None, float | None]] = []
    for text in specs:
        expanded = expand_sweep(text)
        varying: list[str] = []
        if len(expanded) > 1:
            for s, step in enumerate(expanded[0].steps):
                for key, _ in step.params:
                    if len({str(e.steps[s].get(key)) for e in expanded}) > 1:
                        varying.append(key)
        for spec in expanded:
            canonical = spec.canonical()
            if canonical == "clean":
                out.append((None, None, None))
                continue
            parameter = varying[0] if varying else (spec.steps[0].params[0][0] if spec.steps[0].params else None)
            severity = None
            if parameter is not None:
                severity = next(
                    (_float_or_none(st.get(parameter)) for st in spec.steps if st.get(parameter) is not None), None
                )
            out.append((canonical, parameter, severity))
    return out


def plan_conditions(
    degrade: Sequence[str] = (), chunk_ms: Sequence[str] = (), *, baseline: bool = True
) -> list[Condition]:
    """Every (degradation x chunk length) condition; with a sweep, the clean baseline first."""
    from cm_cli.core.specs import spec_slug

    degradations = _degrade_conditions(degrade) if degrade else [(None, None, None)]
    if degrade and baseline and (None, None, None) not in degradations:
        degradations.insert(0, (None, None, None))
    chunks: list[float | None] = []
    for text in chunk_ms or []:
        for part in str(text).split("|"):
            value = _float_or_none(part)
            if value is None or value <= 0:
                raise CmError(
                    f"window length {text!r}: {part!r} is not a positive number of milliseconds", option="chunk_ms"
                )
            chunks.append(value)
    chunk_values = list(dict.fromkeys(chunks)) or [None]
    conditions = []
    for spec, parameter, severity in degradations:
        for chunk in chunk_values:
            label = spec or "clean"
            slug = spec_slug(spec) if spec else "clean"
            if chunk is not None:
                label += f"+chunk={chunk:g}ms"
                slug += f"+chunk-{chunk:g}ms"
                if len(chunk_values) > 1 and spec is None:
                    parameter, severity = "chunk_ms", chunk
            conditions.append(Condition(label, slug, spec, chunk, parameter, severity))
    return conditions


def _manifest_sha(path: Path) -> str:
    from cm_cli.core.artifacts import file_fingerprint

    info = file_fingerprint(path)
    return info.get("sha256") or f"{info.get('size')}-{info.get('mtime')}"


def _scored_table(scores, frame):
    """scores.parquet: utt_id, score, then every manifest column carried through."""
    extra = frame.drop(columns=[c for c in ("score",) if c in frame.columns])
    return scores.merge(extra, on="utt_id", how="left", validate="one_to_one")


FAILURE_COLUMNS = ("utt_id", "error")


def _cached_scores(cache_file: Path | None):
    """(scores, failures) from the cache, or None when absent (or cached before failures were kept)."""
    if cache_file is None or not cache_file.is_file():
        return None
    failures_file = cache_file.with_suffix(".failures.parquet")
    if not failures_file.is_file():
        return None
    import pandas as pd

    scores = pd.read_parquet(cache_file)
    if "short" not in scores.columns:  # cached before short rows were flagged: score again
        return None
    return scores, pd.read_parquet(failures_file).to_dict("records")


def _store_cache(cache_file: Path | None, scores, failures: list[dict]) -> None:
    if cache_file is None:
        return
    import pandas as pd

    from cm_cli.core.artifacts import write_parquet

    write_parquet(
        pd.DataFrame(failures, columns=list(FAILURE_COLUMNS)).astype(str), cache_file.with_suffix(".failures.parquet")
    )
    write_parquet(scores, cache_file)


def _remove_stale_conditions(out_dir: Path, previous: dict | None, keep: set[str]) -> None:
    """With --force: condition folders (and the sweep table) of an earlier sweep that this run
    does not make; ``keep`` empty means a single condition written into ``out_dir`` itself."""
    import shutil

    previous = previous or {}
    listed = set((previous.get("outputs") or {}).get("conditions") or [])
    old = previous.get("options") or {}
    try:  # an interrupted earlier run recorded no outputs: its options name its conditions
        planned = plan_conditions(
            old.get("degrade") or [], old.get("chunk_ms") or [], baseline=old.get("baseline", True)
        )
        listed |= {c.slug for c in planned} if len(planned) > 1 else set()
    except CmError:
        pass
    for name in sorted(listed - keep):
        target = out_dir / name
        if target.is_dir() and target.resolve().parent == out_dir.resolve():
            shutil.rmtree(target)
    if not keep:
        (out_dir / "sweep.parquet").unlink(missing_ok=True)


def _sweep_row(condition: Condition, metrics: dict, table) -> dict:
    from cm_cli.metrics.summary import SHOWN_KEYS

    overall = metrics["overall"]
    row = {
        "condition": condition.label,
        "parameter": condition.parameter,
        "severity": condition.severity,
        "chunk_ms": condition.chunk_ms,
        **{k: overall[k] for k in (*SHOWN_KEYS, "n_bonafide", "n_spoof")},
    }
    row.update(_per_attack_eer(table))
    return row


@dataclass
class ConditionWriter:
    """Scores of one condition -> scores.parquet, failures.parquet and (for a whole set) the
    metrics directory; ``scores(condition)`` is what a kind of model supplies."""

    source: Path
    part: Any  # the manifest rows of this shard
    settings: EvalSettings
    shard: Any

    def scores(self, condition: Condition):  # pragma: no cover - every subclass scores
        """(scores with utt_id and score, failures as {utt_id, error} records, came from a cache)."""
        raise NotImplementedError

    def run(self, condition: Condition, cdir: Path) -> tuple[ConditionResult, Any]:
        """Score, write scores/failures (and, for a whole set, the metrics directory)."""
        import pandas as pd

        from cm_cli.core.artifacts import write_parquet
        from cm_cli.evaluation.writer import write_metrics_dir

        scores, failures, cached = self.scores(condition)
        table = _scored_table(scores, self.part)
        n_short = int(table["short"].sum()) if "short" in table.columns else 0
        whole = self.shard.is_whole
        failures_file = cdir / ("failures.parquet" if whole else self.shard.part_name("failures"))
        if failures:
            write_parquet(pd.DataFrame(failures, columns=list(FAILURE_COLUMNS)), failures_file)
        else:
            failures_file.unlink(missing_ok=True)
        if not whole:
            write_parquet(table, cdir / self.shard.part_name())
            return ConditionResult(condition, cdir, None, len(table), len(failures), cached, n_short), table
        write_parquet(table, cdir / "scores.parquet")
        metrics = self.settings.evaluate(table, source=str(cdir / "scores.parquet"), run=self.source.resolve())
        metrics["condition"] = {
            "label": condition.label,
            "degrade": condition.degrade,
            "chunk_ms": condition.chunk_ms,
            "n_failed": len(failures),
            "n_short": n_short,
        }
        if n_short:
            metrics.setdefault("warnings", []).append(short_warning(n_short, getattr(self, "loaded", None)))
        from cm_cli.evaluation.overlap import overlap_warning, run_overlap

        overlap = run_overlap(self.source, table)  # scored rows sharing speakers/sources/utterances with training
        if overlap is not None:
            metrics["overlap"] = overlap
            if overlap_warning(overlap):
                metrics.setdefault("warnings", []).append(overlap_warning(overlap))
        write_metrics_dir(metrics, cdir)
        return ConditionResult(condition, cdir, metrics, len(table), len(failures), cached, n_short), table


def short_warning(n_short: int, loaded: Any) -> str:
    """The warning for scored rows shorter than the model's receptive field (``short`` in scores.parquet)."""
    from cm_cli.models.inference import inference_policy, minimum_samples

    if loaded is None:
        return (
            f"{n_short} utterance(s) are shorter than the model's receptive field (flagged 'short' in scores.parquet)"
        )
    model = getattr(loaded, "model", loaded)
    minimum, policy = minimum_samples(model), inference_policy(model)
    rate = int(getattr(loaded, "sample_rate", 16000) or 16000)
    padding = "tiled to the model's input length" if policy.policy == "repeat" else "zero-padded to it"
    return (
        f"{n_short} utterance(s) are shorter than the model's receptive field ({minimum} samples = "
        f"{1000 * minimum / rate:g} ms) and were {padding}: their scores mostly measure padding "
        "(flagged in the 'short' column of scores.parquet)"
    )


@dataclass
class _ConditionScorer(ConditionWriter):
    """What every condition of one ``evaluate_model`` call shares: model, rows, settings, cache."""

    loaded: Any = None
    base: Any = None  # ScoringConfig without the condition's degradation / chunk length
    cache_key: str = ""  # manifest hash, split and shard
    cache_dir: Path | None = None
    data_root: str | Path | None = None
    torch_device: Any = "cpu"
    seed: int = 0
    causal_windows: int | None = None  # streaming conditions only: score the first K windows
    workers: int = 0  # audio decoding processes (scores do not depend on it)

    def scores(self, condition: Condition):
        """(scores, failures, cached) of one condition, from the cache when it has them."""
        from cm_cli.scoring import score_cache_key, score_frame

        config = replace(
            self.base,
            degrade=condition.degrade,
            chunk_ms=condition.chunk_ms,
            causal_windows=self.causal_windows if condition.chunk_ms else None,
        )
        key = score_cache_key(self.loaded.checkpoint_sha256, config, self.cache_key)
        cache_file = self.cache_dir / "scores" / f"{key}.parquet" if self.cache_dir else None
        hit = _cached_scores(cache_file)
        if hit is not None:
            return (*hit, True)
        scored = score_frame(
            self.loaded,
            self.part,
            data_root=self.data_root,
            config=config,
            device=self.torch_device,
            seed=self.seed,
            workers=self.workers,
        )
        _store_cache(cache_file, scored.scores, scored.failures)
        return scored.scores, scored.failures, False


def _reused(result: ModelEvalResult, conditions: list[Condition], n_rows: int, sweep: bool) -> ModelEvalResult:
    """The result of a complete earlier evaluation with the same options."""
    from cm_cli.core.artifacts import read_json

    result.skipped = True
    for condition in conditions:
        cdir = result.out_dir / condition.slug if sweep else result.out_dir
        metrics = read_json(cdir / "metrics.json") if (cdir / "metrics.json").is_file() else None
        n_failed = int(((metrics or {}).get("condition") or {}).get("n_failed") or 0)
        result.conditions.append(ConditionResult(condition, cdir, metrics, n_rows - n_failed, n_failed, cached=True))
    sweep_file = result.out_dir / "sweep.parquet"
    result.sweep = sweep_file if sweep_file.is_file() else None
    return result


def _manifest_rows(manifest: Path, split: str | None, by: Sequence[str]):
    from cm_cli.data.manifests import load_manifest

    frame = load_manifest(manifest, split=split)
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise CmError(
            f"{manifest}: breakdown column(s) {', '.join(missing)} not in the manifest",
            f"columns: {', '.join(frame.columns)}",
            option="by",
        )
    return frame


def _checked_conditions(
    degrade: Sequence[str], chunk_ms: Sequence[str], baseline: bool, causal_windows: int | None = None
) -> list[Condition]:
    """The planned conditions, every degradation spec (and encoder) validated before scoring."""
    if causal_windows is not None and not chunk_ms:
        raise CmError(
            "a causal window count needs streaming windows: give a window length as well",
            option=("chunk_ms", "causal_windows"),
        )
    conditions = plan_conditions(degrade, chunk_ms, baseline=baseline)
    for condition in conditions:
        if condition.degrade:
            from cm_cli.degrade.registry import validate_spec

            validate_spec(condition.degrade)
    return conditions


def evaluate_model(
    source: str | Path,
    manifest: str | Path,
    out_dir: str | Path,
    *,
    settings: EvalSettings | None = None,
    split: str | None = "eval",
    degrade: Sequence[str] = (),
    chunk_ms: Sequence[str] = (),
    overlap_ms: float = 0.0,
    aggregate: str = "mean",
    causal_windows: int | None = None,
    full_length: bool = False,
    batch_size: int = 16,
    by: Sequence[str] = (),
    in_domain: Sequence[str] = (),
    bootstrap: int = 0,
    compare: str | Path | None = None,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    torch_device: Any = "cpu",
    seed: int = 0,
    shard: Any = None,
    force: bool = False,
    baseline: bool = True,
    workers: int = 0,
) -> ModelEvalResult:
    """Score ``source`` (run dir or checkpoint) on ``manifest`` under each condition; write artifacts.

    ``settings`` shapes the metrics (``by``/``in_domain``/``bootstrap``/``compare`` are a
    shorthand used when it is not given); the run's training domains fill
    ``settings.seen_domains`` unless set."""
    from cm_cli.core.shard import Shard
    from cm_cli.evaluation.settings import seen_domains_of_run
    from cm_cli.models.loading import load_model
    from cm_cli.scoring import ScoringConfig

    source, out_dir, manifest = Path(source), Path(out_dir), Path(manifest)
    shard = shard or Shard()
    if settings is None:
        settings = EvalSettings(
            by=tuple(by), in_domain=tuple(in_domain), bootstrap=bootstrap, compare=compare, seed=seed
        )
    frame = _manifest_rows(manifest, split, settings.by)
    conditions = _checked_conditions(degrade, chunk_ms, baseline, causal_windows)
    base = ScoringConfig(batch_size=batch_size, full_length=full_length, overlap_ms=overlap_ms, aggregate=aggregate)
    loaded = load_model(source, device=torch_device)
    settings = settings.with_seen(seen_domains_of_run(source, required=False))
    manifest_sha = _manifest_sha(manifest)
    options = {
        "run": str(source.resolve()),
        "checkpoint_sha256": loaded.checkpoint_sha256,
        "manifest": str(manifest.resolve()),
        "manifest_sha256": manifest_sha,
        "split": split,
        "degrade": list(degrade),
        "chunk_ms": list(chunk_ms),
        "overlap_ms": overlap_ms,
        "aggregate": aggregate,
        "causal_windows": causal_windows,
        "full_length": full_length,
        "batch_size": batch_size,
        "scoring_seed": seed,
        "baseline": baseline,
        **settings.options(),
    }
    part = frame.iloc[shard.select(list(range(len(frame))))].reset_index(drop=True)
    scorer = _ConditionScorer(
        source=source,
        part=part,
        settings=settings,
        shard=shard,
        loaded=loaded,
        base=base,
        cache_key=f"{manifest_sha}:{split}:{shard}",
        cache_dir=Path(cache_dir) if cache_dir else None,
        data_root=data_root,
        torch_device=torch_device,
        seed=seed,
        causal_windows=causal_windows,
        workers=workers,
    )
    return write_conditions(
        scorer,
        conditions,
        out_dir,
        options=options,
        inputs=[manifest, loaded.checkpoint, *settings.inputs()],
        device=device,
        force=force,
    )


def write_conditions(
    scorer: ConditionWriter,
    conditions: Sequence[Condition],
    out_dir: str | Path,
    *,
    options: dict,
    inputs: Sequence[Path],
    device: str = "cpu",
    force: bool = False,
) -> ModelEvalResult:
    """The evaluation directory of ``scorer`` under ``conditions``: skipped when an identical
    complete one exists, else every condition scored and evaluated, and ``cm.json`` finished."""
    from cm_cli.core.artifacts import OutputDir

    out_dir, shard = Path(out_dir), scorer.shard
    sweep = len(conditions) > 1
    result = ModelEvalResult(out_dir)
    with OutputDir(
        out_dir, "scores", options=options, inputs=list(inputs), shard=shard, device=device, force=force
    ) as output:
        if output.done:
            return _reused(result, conditions, len(scorer.part), sweep)
        if force and shard.is_whole:
            _remove_stale_conditions(out_dir, output.previous, {c.slug for c in conditions} if sweep else set())
        _score_conditions(scorer, conditions, out_dir, result, sweep=sweep)
        output.finish(outputs={"conditions": [c.slug for c in conditions]}, summary=result.summary())
    return result


def _score_conditions(
    scorer: ConditionWriter, conditions: Sequence[Condition], out_dir: Path, result: ModelEvalResult, *, sweep: bool
) -> None:
    """Score every condition into its folder (the output itself when there is one); the sweep table."""
    from cm_cli.core.artifacts import write_parquet

    sweep_rows = []
    for condition in conditions:
        done, table = scorer.run(condition, out_dir / condition.slug if sweep else out_dir)
        result.conditions.append(done)
        if sweep and done.metrics is not None:
            sweep_rows.append(_sweep_row(condition, done.metrics, table))
    if sweep_rows:
        import pandas as pd

        result.sweep = write_parquet(pd.DataFrame(sweep_rows), out_dir / "sweep.parquet")


def _per_attack_eer(table) -> dict[str, float]:
    """Each attack's spoofs against all bona fide trials (as the official per-attack EER)."""
    import numpy as np

    from cm_cli.metrics import eer

    bona = table.loc[table["label"] == "bonafide", "score"].to_numpy(dtype=np.float64)
    out = {}
    if "attack" not in table or len(bona) == 0:
        return out
    spoof = table[table["label"] == "spoof"]
    for attack, group in spoof.groupby(spoof["attack"].astype(str), sort=True):
        out[f"eer_{attack}"] = float(eer(bona, group["score"].to_numpy(dtype=np.float64)))
    return out
