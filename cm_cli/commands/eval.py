"""`cm eval`: official ASVspoof metrics, breakdowns, OOD gap, intervals and calibration of scores.

External-scores mode (``--scores FILE``) reads any score file through
``cm_cli.scores_io`` and evaluates it with ``cm_cli.metrics.report.evaluate_scores``;
model-scoring mode (``--run RUN_DIR`` or ``--checkpoint FILE``) scores a manifest
through ``cm_cli.evaluation.evaluate_model``, which writes ``scores.parquet`` and
reuses the same call, per degradation / chunk-length condition.
"""

from __future__ import annotations

from pathlib import Path
import enum
from typing import Annotated, Any, Optional

import typer

from cm_cli.commands._common import ForceOpt, ManifestOpt, OutDir, console, emit, get_ctx, print_dry_run
from cm_cli.core.errors import UsageError

__all__ = ["eval"]


class ScoreKind(str, enum.Enum):
    """Mirrors ``cm_cli.metrics.kinds.ScoreKind`` without importing numpy for ``cm --help``."""

    raw = "raw"
    prob = "prob"
    logit = "logit"


def _split_values(values: list[str] | None) -> list[str]:
    """Repeated and/or comma-separated option values, in order, without duplicates."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return list(dict.fromkeys(out))


def eval(  # noqa: A001 - the command is named after its verb
    ctx: typer.Context,
    scores: Annotated[Optional[Path], typer.Option("--scores", help="Score file: Parquet (or a directory of parts), CSV/TSV, or an official ASVspoof score file.")] = None,
    key: Annotated[Optional[Path], typer.Option("--key", help="Key with labels: 'filename cm-label' or an ASVspoof 5/2021/2019 protocol file.")] = None,
    score_col: Annotated[Optional[str], typer.Option("--score-col", help="Score column (default: score or cm-score).")] = None,
    label_col: Annotated[Optional[str], typer.Option("--label-col", help="Label column (default: label, cm-label or key).")] = None,
    id_col: Annotated[Optional[str], typer.Option("--id-col", help="Trial id column (default: utt_id, filename, flac_file...).")] = None,
    bonafide_value: Annotated[Optional[str], typer.Option("--bonafide-value", help="Label value meaning bona fide, compared as text (e.g. 0); others are spoof.")] = None,
    manifest: ManifestOpt = None,
    by: Annotated[Optional[list[str]], typer.Option("--by", help="Break metrics down by this column (repeatable or comma-separated).")] = None,
    in_domain: Annotated[Optional[list[str]], typer.Option("--in-domain", help="Domain value(s) counted as in-domain for the OOD gap (e.g. none, clean).")] = None,
    domain_col: Annotated[Optional[str], typer.Option("--domain-col", help="Column holding the domain (default: domain, else codec).")] = None,
    compare: Annotated[Optional[Path], typer.Option("--compare", help="A baseline's metrics.json: report the OOD gap reduction against it.")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for percentile intervals of EER and minDCF (0: none).")] = 0,
    cluster_by: Annotated[Optional[str], typer.Option("--cluster-by", help="Resample whole clusters of this column (speaker, codec_seed).")] = None,
    level: Annotated[float, typer.Option("--level", min=0.5, max=0.999, help="Confidence level of the intervals.")] = 0.95,
    calibrate_on: Annotated[Optional[Path], typer.Option("--calibrate-on", help="Dev scores (same columns) to fit logistic-regression calibration on.")] = None,
    score_kind: Annotated[ScoreKind, typer.Option("--score-kind", help="raw: as given; prob: P(bona fide) -> log-odds; logit: already log-odds.")] = ScoreKind.raw,
    p_spoof: Annotated[float, typer.Option("--p-spoof", help="Spoof prior of the DCF.")] = 0.05,
    c_miss: Annotated[float, typer.Option("--c-miss", help="Cost of rejecting bona fide.")] = 1.0,
    c_fa: Annotated[float, typer.Option("--c-fa", help="Cost of accepting spoof.")] = 10.0,
    min_trials: Annotated[int, typer.Option("--min-trials", min=1, help="Flag groups with fewer bona fide or spoof trials as small.")] = 20,
    drop_invalid: Annotated[bool, typer.Option("--drop-invalid", help="Leave out trials with NaN/inf scores instead of failing.")] = False,
    run: Annotated[Optional[Path], typer.Option("--run", help="Score this `cm train` run directory (its best checkpoint).")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Score this cm checkpoint file instead of a run.")] = None,
    split: Annotated[str, typer.Option("--split", help="Manifest split to score (all: every row).")] = "eval",
    degrade: Annotated[Optional[list[str]], typer.Option("--degrade", help="Degradation spec applied on the fly; '|' sweeps (repeatable), e.g. \"mp3:kbps=8|16|32\".")] = None,
    chunk_ms: Annotated[Optional[list[str]], typer.Option("--chunk-ms", help="Streaming: score sliding windows of this many ms ('|' sweeps), aggregated per utterance.")] = None,
    overlap_ms: Annotated[float, typer.Option("--overlap-ms", min=0, help="Streaming: overlap between windows.")] = 0.0,
    aggregate: Annotated[str, typer.Option("--aggregate", help="Streaming: mean, min, max or median of window scores.")] = "mean",
    full_length: Annotated[bool, typer.Option("--full-length", help="Score whole utterances instead of the run's length policy.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Utterances per forward pass.")] = 16,
    shard: Annotated[Optional[str], typer.Option("--shard", help="Score shard I/N only (default from SLURM_ARRAY_TASK_*); merge with `cm eval --scores DIR`.")] = None,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="With --degrade sweeps, also score the clean condition.")] = True,
    out: OutDir = None,
    force: ForceOpt = False,
) -> None:
    """Score a trained model or evaluate any score file with the official ASVspoof metrics, by group."""
    c = get_ctx(ctx)
    if run is not None or checkpoint is not None:
        _eval_model(c, run or checkpoint, manifest=manifest, split=split, degrade=degrade or [], chunk_ms=chunk_ms or [],
                    overlap_ms=overlap_ms, aggregate=aggregate, full_length=full_length, batch_size=batch_size,
                    by=_split_values(by), in_domain=_split_values(in_domain), bootstrap=bootstrap, compare=compare, shard=shard,
                    baseline=baseline, out=out, force=force, scores=scores)
        return
    if scores is None:
        raise UsageError("give --scores FILE, or --run RUN_DIR / --checkpoint FILE to score a model",
                         "e.g. cm eval --run runs/dann --manifest runs/manifests/toy/manifest.parquet --out runs/dann/eval")
    by_cols = _split_values(by)
    domains = _split_values(in_domain)
    options: dict[str, Any] = {
        "scores": str(scores), "key": str(key) if key else None, "manifest": str(manifest) if manifest else None,
        "score_col": score_col, "label_col": label_col, "id_col": id_col, "bonafide_value": bonafide_value,
        "by": by_cols, "in_domain": domains, "domain_col": domain_col, "compare": str(compare) if compare else None,
        "bootstrap": bootstrap, "cluster_by": cluster_by, "level": level, "seed": c.seed,
        "calibrate_on": str(calibrate_on) if calibrate_on else None, "score_kind": score_kind.value,
        "p_spoof": p_spoof, "c_miss": c_miss, "c_fa": c_fa, "min_trials": min_trials, "drop_invalid": drop_invalid,
        "out": str(out) if out else None,
    }
    if c.dry_run:
        print_dry_run(c, "eval", options)
        return
    from cm_cli.metrics.report import evaluate_scores

    inputs = [p for p in (scores, key, manifest, compare, calibrate_on) if p is not None]
    if out is None:
        result = evaluate_scores(_load(scores, key, manifest, score_col, label_col, id_col, bonafide_value),
                                 **_settings(options, compare, calibrate_on, score_kind))
        emit(c, result, lambda: _print(result, None))
        return
    from cm_cli.core.artifacts import OutputDir, read_json, write_json, write_parquet
    from cm_cli.metrics.report import breakdown_tables

    with OutputDir(out, "metrics", options, inputs=inputs, force=force) as target:
        if target.done and (out / "metrics.json").is_file():
            result = read_json(out / "metrics.json")
        else:
            result = evaluate_scores(_load(scores, key, manifest, score_col, label_col, id_col, bonafide_value),
                                     **_settings(options, compare, calibrate_on, score_kind))
            written = {"metrics": "metrics.json"}
            for column, table in breakdown_tables(result).items():
                name = f"metrics_by_{column}.parquet"
                write_parquet(table, out / name)
                written[f"by_{column}"] = name
            write_json(result, out / "metrics.json")
            target.finish(outputs=written, summary={k: result["overall"][k] for k in ("eer", "min_dcf", "act_dcf", "cllr")})
    emit(c, result, lambda: _print(result, out))


def _eval_model(c, source: Path, *, manifest: Optional[Path], split: str, degrade: list[str], chunk_ms: list[str],
                overlap_ms: float, aggregate: str, full_length: bool, batch_size: int, by: list[str],
                in_domain: list[str], bootstrap: int, compare: Optional[Path], shard: Optional[str], baseline: bool, out: Optional[Path],
                force: bool, scores: Optional[Path]) -> None:
    from cm_cli.core.shard import resolve_shard

    if scores is not None:
        raise UsageError("--scores evaluates a score file; --run/--checkpoint score a model: give one of them")
    if manifest is None:
        raise UsageError("--run needs --manifest M (the utterances to score)",
                         "e.g. --manifest runs/manifests/toy/manifest.parquet")
    part = resolve_shard(shard)
    out_dir = out or (source if source.is_dir() else source.parent) / "eval" / split
    options = {"run": str(source), "manifest": str(manifest), "split": split, "degrade": degrade, "chunk_ms": chunk_ms,
               "overlap_ms": overlap_ms, "aggregate": aggregate, "full_length": full_length, "batch_size": batch_size,
               "by": by, "in_domain": in_domain, "bootstrap": bootstrap, "compare": str(compare) if compare else None,
               "shard": str(part), "out": str(out_dir)}
    if c.dry_run:
        print_dry_run(c, "eval", options)
        return
    from cm_cli.commands._common import rich_reporter
    from cm_cli.core.progress import use_reporter
    from cm_cli.evaluation import evaluate_model

    with use_reporter(rich_reporter(c)):
        result = evaluate_model(source, manifest, out_dir, split=None if split == "all" else split, degrade=degrade,
                                chunk_ms=chunk_ms, overlap_ms=overlap_ms, aggregate=aggregate, full_length=full_length,
                                batch_size=batch_size, by=by, in_domain=in_domain, bootstrap=bootstrap,
                                compare=compare, data_root=c.data_root, cache_dir=c.cache_dir, device=c.device,
                                torch_device=c.torch_device(), seed=c.seed, shard=part, force=force, baseline=baseline)
    summary = result.summary()
    if len(result.conditions) == 1 and result.conditions[0].metrics is not None:
        summary = {**result.conditions[0].metrics, "out": str(out_dir), "skipped": result.skipped}
        emit(c, summary, lambda: _print(result.conditions[0].metrics, out_dir))
        return
    emit(c, summary, lambda: _print_conditions(result))


def _print_conditions(result) -> None:
    from rich.table import Table

    table = Table("condition", "EER %", "minDCF", "actDCF", "scored", "failed", title=f"{result.out_dir}", title_justify="left")
    for r in result.conditions:
        overall = (r.metrics or {}).get("overall")
        if overall is None:
            table.add_row(r.condition.label, "(shard)", "", "", str(r.n_scored), str(r.n_failed))
        else:
            table.add_row(r.condition.label, f"{100 * overall['eer']:.3f}", f"{overall['min_dcf']:.4f}",
                          f"{overall['act_dcf']:.4f}", str(r.n_scored), str(r.n_failed))
    console().print(table)
    if result.sweep:
        console().print(f"sweep: {result.sweep}")


def _load(scores, key, manifest, score_col, label_col, id_col, bonafide_value):
    from cm_cli.scores_io import ScoreColumns, load_scores

    return load_scores(scores, ScoreColumns(score_col=score_col, label_col=label_col, bonafide_value=bonafide_value,
                                            id_col=id_col), key=key, manifest=manifest)


def _settings(options: dict, compare: Path | None, calibrate_on: Path | None, score_kind: ScoreKind) -> dict:
    from cm_cli.metrics.dcf import CostParams

    settings: dict[str, Any] = dict(
        by=options["by"], in_domain=options["in_domain"], domain_col=options["domain_col"],
        params=CostParams(options["p_spoof"], options["c_miss"], options["c_fa"]), score_kind=score_kind.value,
        bootstrap=options["bootstrap"], cluster_by=options["cluster_by"], seed=options["seed"], level=options["level"],
        drop_invalid=options["drop_invalid"], min_trials=options["min_trials"], source=options["scores"],
    )
    if compare is not None:
        from cm_cli.core.artifacts import read_json

        settings["compare"] = read_json(compare)
        settings["compare_source"] = str(compare)
    if calibrate_on is not None:
        from cm_cli.metrics.calibration import fit_calibration
        from cm_cli.metrics.kinds import to_llr
        from cm_cli.metrics.report import finite_scores

        dev = _load(calibrate_on, None, None, options["score_col"], options["label_col"], options["id_col"],
                    options["bonafide_value"])
        dev, _ = finite_scores(dev, drop_invalid=options["drop_invalid"], source=str(calibrate_on))
        settings["calibration"] = fit_calibration(to_llr(dev["score"].to_numpy(), score_kind.value),
                                                  (dev["label"] == "bonafide").to_numpy())
    return settings


def _print(result: dict, out: Path | None) -> None:
    from rich.table import Table

    cons = console()
    overall = result["overall"]
    cons.print(f"[bold]{overall['n_bonafide']}[/] bona fide, [bold]{overall['n_spoof']}[/] spoof trials"
               + (f"  ->  {out}/metrics.json" if out else ""))
    table = Table("metric", "value", title="overall", title_justify="left")
    for name in ("eer", "eer_rocch", "min_dcf", "act_dcf", "cllr", "min_cllr", "auc"):
        value = overall[name]
        shown = f"{100 * value:.3f} %" if name.startswith("eer") else f"{value:.4f}"
        table.add_row(name, shown)
    if "ci" in result:
        ci = result["ci"]
        table.add_row(f"eer {int(100 * ci['level'])}% CI", f"[{100 * ci['eer'][0]:.3f}, {100 * ci['eer'][1]:.3f}] %")
        table.add_row(f"min_dcf {int(100 * ci['level'])}% CI", f"[{ci['min_dcf'][0]:.4f}, {ci['min_dcf'][1]:.4f}]")
    cons.print(table)
    for column, groups in result.get("by", {}).items():
        t = Table(column, "EER %", "minDCF", "actDCF", "Cllr", "bona", "spoof", "", title=f"by {column}", title_justify="left")
        for value, rec in groups.items():
            if rec["eer"] is None:
                t.add_row(value, "-", "-", "-", "-", str(rec["n_bonafide"]), str(rec["n_spoof"]), "no spoof")
                continue
            flags = " ".join(f for f, on in (("small", rec["small"]), ("all-bona", rec["bonafide_pool"] == "all")) if on)
            t.add_row(value, f"{100 * rec['eer']:.3f}", f"{rec['min_dcf']:.4f}", f"{rec['act_dcf']:.4f}", f"{rec['cllr']:.4f}",
                      str(rec["n_bonafide"]), str(rec["n_spoof"]), flags)
        summary = result["by_summary"][column]
        if "averaged" in summary:
            t.add_row("[dim]mean of groups[/]", f"{100 * summary['averaged']['eer']:.3f}", f"{summary['averaged']['min_dcf']:.4f}",
                      f"{summary['averaged']['act_dcf']:.4f}", f"{summary['averaged']['cllr']:.4f}", "", "", "")
        cons.print(t)
    if "ood_gap" in result:
        gap = result["ood_gap"]
        rel = f"{100 * gap['gap_rel']:.1f} %" if gap["gap_rel"] is not None else "n/a"
        cons.print(f"OOD gap ({gap['column']} in {', '.join(gap['in_domain'])}): EER in {100 * gap['eer_in']:.3f} %, "
                   f"out {100 * gap['eer_out']:.3f} %, gap {gap['gap_abs_points']:.3f} points ({rel} relative)")
        if "compare" in gap and gap["compare"]["gap_reduction"] is not None:
            cons.print(f"gap reduction vs {gap['compare']['baseline']}: {100 * gap['compare']['gap_reduction']:.1f} %")
    if "calibration" in result:
        cal = result["calibration"]
        cons.print(f"calibration: actDCF {cal['before']['act_dcf']:.4f} -> {cal['after']['act_dcf']:.4f}, "
                   f"Cllr {cal['before']['cllr']:.4f} -> {cal['after']['cllr']:.4f}")
    for warning in result.get("warnings", []):
        cons.print(f"[yellow]warning:[/] {warning}")
