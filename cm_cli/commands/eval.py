"""`cm eval`: official ASVspoof metrics, breakdowns, OOD gap, intervals and calibration of scores.

External-scores mode (``--scores FILE``) reads any score file through
``cm_cli.evaluation.readers``; model-scoring mode (``--run RUN_DIR`` or
``--checkpoint FILE``) scores a manifest per degradation / chunk-length condition
through ``cm_cli.evaluation.evaluate_model``, or, for a ``cm train --features`` head,
the rows of a ``cm embed`` cache (``--features DIR``) through
``cm_cli.evaluation.evaluate_features``; ``--audio PATH...`` scores audio files
directly. Both metric modes evaluate under one ``EvalSettings`` and write the metrics
directory through ``cm_cli.evaluation.writer``. Every option is declared once in
``OPTIONS`` (docs/DESIGN.md, "One declaration per option") and can come from the
``[eval]`` table of cm.toml.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cm_cli.commands._common import (
    ForceOpt,
    ManifestOpt,
    OutDir,
    complete_spec,
    console,
    emit,
    get_ctx,
    print_dry_run,
    resolve_options,
)
from cm_cli.commands._spec import Opt, Options
from cm_cli.core.errors import UsageError

__all__ = ["eval"]


class ScoreKind(str, enum.Enum):
    """Mirrors ``cm_cli.metrics.kinds.ScoreKind`` without importing numpy for ``cm --help``."""

    raw = "raw"
    posterior = "posterior"
    prob = "prob"
    logit = "logit"


def _split_values(values: Any) -> list[str]:
    """Repeated and/or comma-separated option values, in order, without duplicates."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        out.extend(v.strip() for v in str(value).split(",") if v.strip())
    return list(dict.fromkeys(out))


def _path(value: Any) -> Optional[Path]:
    return Path(value) if value not in (None, "") else None


# Each option once: its flag, type, default and help, the [eval] key of cm.toml, and the EvalSettings field it
# sets. field=None: an option of the invocation (what to score, where to write), not a field. The EvalSettings
# fields no single option sets are built in _settings: seed (the global --seed), seen_domains (--seen-domain
# merged with --seen-from), columns (--score-col, --label-col, --id-col, --bonafide-value), and asv_scores with
# its t-DCF block (--asv-scores, else the manifest's own ASV scores when a model is scored).
OPTIONS = Options(
    Opt(
        "scores",
        Path,
        None,
        "Score file: Parquet (or a directory of parts), CSV/TSV, or an official ASVspoof score file.",
        field=None,
    ),
    Opt(
        "key", Path, None, "Key with labels: 'filename cm-label' or an ASVspoof 5/2021/2019 protocol file.", field=None
    ),
    Opt("score_col", str, None, "Score column (default: score or cm-score).", field=None),
    Opt("label_col", str, None, "Label column (default: label, cm-label or key).", field=None),
    Opt("id_col", str, None, "Trial id column (default: utt_id, filename, flac_file...).", field=None),
    Opt(
        "bonafide_value",
        str,
        None,
        "Label value meaning bona fide, compared as text (e.g. 0); others are spoof.",
        field=None,
    ),
    Opt(
        "dedupe",
        bool,
        False,
        "Keep one row of a trial id listed more than once when every copy agrees (else an error).",
        convert=bool,
    ),
    Opt("manifest", annotation=ManifestOpt, field=None),
    Opt(
        "by",
        list[str],
        None,
        "Break metrics down by this column (repeatable or comma-separated).",
        convert=_split_values,
    ),
    Opt(
        "in_domain",
        list[str],
        None,
        "Domain value(s) counted as in-domain for the OOD gap (e.g. none, clean).",
        convert=_split_values,
    ),
    Opt("domain_col", str, None, "Column holding the domain (default: domain, else codec)."),
    Opt(
        "seen_domain",
        list[str],
        None,
        "Domain value seen in training (repeatable): splits the OOD gap into seen and unseen (--run: read from the run).",
        field=None,
    ),
    Opt("seen_from", Path, None, "Read the seen domains from this `cm train` run's config.json.", field=None),
    Opt("compare", Path, None, "A baseline's metrics.json: report the OOD gap reduction against it.", convert=_path),
    Opt(
        "bootstrap",
        int,
        0,
        "Bootstrap resamples for percentile intervals of EER and minDCF (0: none).",
        minimum=0,
        convert=int,
    ),
    Opt(
        "cluster_by",
        str,
        "auto",
        "Resample together: auto (speaker where the table has speakers, else source utterance, else trial), source, speaker, none, or a column.",
        convert=str,
    ),
    Opt("level", float, 0.95, "Confidence level of the intervals.", minimum=0.5, maximum=0.999, convert=float),
    Opt(
        "calibrate_on",
        Path,
        None,
        "Dev scores (same columns) to fit logistic-regression calibration on: the way to LLRs.",
        convert=_path,
    ),
    Opt(
        "score_kind",
        ScoreKind,
        ScoreKind.raw,
        "raw: as given; posterior: P(bona fide) -> posterior log-odds (not LLRs; prob: deprecated name); logit: already log-odds.",
    ),
    Opt("p_spoof", float, 0.05, "Spoof prior of the DCF.", convert=float),
    Opt("c_miss", float, 1.0, "Cost of rejecting bona fide.", convert=float),
    Opt("c_fa", float, 10.0, "Cost of accepting spoof.", convert=float),
    Opt("min_trials", int, 20, "Flag groups with fewer bona fide or spoof trials as small.", minimum=1, convert=int),
    Opt("drop_invalid", bool, False, "Leave out trials with NaN/inf scores instead of failing.", convert=bool),
    Opt(
        "asv_scores",
        Path,
        None,
        "ASV scores of the trials (key target/nontarget/spoof): adds min t-DCF (revised 2021 and legacy 2019); 2019/2021 LA files or their folder; --run reads the corpus's own from the manifest.",
        field=None,  # the asv_scores field is this file or the manifest's own: _settings
    ),
    Opt("asv_score_col", str, None, "Score column of --asv-scores (default: score, asv_score, asv-score).", field=None),
    Opt("asv_key_col", str, None, "Key column of --asv-scores (default: key, asv_key, asv-label).", field=None),
    Opt(
        "sasv_scores",
        Path,
        None,
        "ASVspoof 5 Track 2 SASV score file (spk filename cm-score asv-score sasv-score): a-DCF, t-EER, min t-DCF.",
        field=None,
    ),
    Opt(
        "sasv_key",
        Path,
        None,
        "Key of --sasv-scores (spk filename cm-label asv-label), unless the labels are in the score file.",
        field=None,
    ),
    Opt("run", Path, None, "Score this `cm train` run directory (its best checkpoint).", field=None),
    Opt("checkpoint", Path, None, "Score this cm checkpoint file instead of a run.", field=None),
    Opt(
        "model",
        str,
        None,
        "Score with a zoo model (toy, aasist, ...: `cm download --list-models`), a `cm export` folder or a hub id.",
        show_default=False,
        field=None,
    ),
    Opt(
        "bonafide_label",
        str,
        None,
        "Transformers audio classifiers: the label that means bona fide.",
        show_default=False,
        field=None,
    ),
    Opt(
        "features",
        Path,
        None,
        "With --run of a `cm train --features` head: the `cm embed --pooling meanstd` cache to score (no audio).",
        field=None,
    ),
    Opt("split", str, "eval", "Manifest split to score (all: every row).", field=None),
    Opt(
        "degrade",
        list[str],
        None,
        "Degradation spec applied on the fly; '|' sweeps (repeatable), e.g. \"mp3:kbps=8|16|32\".",
        complete=complete_spec,
        field=None,
    ),
    Opt(
        "chunk_ms",
        list[str],
        None,
        "Streaming: score sliding windows of this many ms ('|' sweeps), aggregated per utterance; with --audio, per-window scores.",
        field=None,
    ),
    Opt("overlap_ms", float, 0.0, "Streaming: overlap between windows.", minimum=0, field=None),
    Opt(
        "causal_windows",
        int,
        None,
        "Streaming, for latency studies: score only the first K windows of each utterance (needs --chunk-ms).",
        minimum=1,
        field=None,
    ),
    Opt("aggregate", str, "mean", "Streaming: mean, min, max or median of window scores.", field=None),
    Opt("full_length", bool, False, "Score whole utterances instead of the run's length policy.", field=None),
    Opt("batch_size", int, 16, "Utterances per forward pass.", minimum=1, field=None),
    Opt(
        "shard",
        str,
        None,
        "Score shard I/N only (default from SLURM_ARRAY_TASK_*); merge with `cm eval --scores DIR`.",
        field=None,
    ),
    Opt(
        "baseline",
        bool,
        True,
        "With --degrade sweeps, also score the clean condition.",
        negatable=True,
        field=None,
    ),
    Opt(
        "audio",
        list[Path],
        None,
        "Score these audio files or folders (recursively; wav/flac/mp3/m4a/ogg) with --run/--checkpoint; more paths may follow.",
        field=None,
    ),
    Opt(
        "threshold",
        float,
        None,
        "--audio: decision threshold (default: the run's dev EER threshold).",
        field=None,
    ),
    Opt(
        "export",
        tuple[str, str],
        None,
        "--scores: also write the scored trials as an official submission score file: asvspoof5, asvspoof2021 or asvspoof2019, then the file.",
        metavar="FORMAT FILE",
        field=None,
    ),
    Opt("out", annotation=OutDir, field=None),
    Opt("force", annotation=ForceOpt, default=False, field=None),
)


@OPTIONS.command
def eval(  # noqa: A001 - the command is named after its verb
    ctx: typer.Context,
    audio_paths: Annotated[
        Optional[list[Path]], typer.Argument(help="More audio files or folders (after --audio).", show_default=False)
    ] = None,
    **options,
) -> None:
    """Score a trained model or evaluate any score file with the official ASVspoof metrics, by group."""
    c = get_ctx(ctx)
    # the positional audio paths resolve like an option, as they always have ([eval] audio_paths = [...])
    o = resolve_options(ctx, "eval", {**OPTIONS.values(options), "audio_paths": audio_paths})
    source = _path(o["run"]) or _path(o["checkpoint"])
    if o["model"] is not None or o["bonafide_label"] is not None:
        from cm_cli.models.zoo import resolve_model_option

        source = resolve_model_option(o["model"], source, bonafide_label=o["bonafide_label"], cache_dir=c.cache_dir)
    if _export_target(o.get("export")) is not None and (source is not None or o["scores"] is None):
        raise UsageError(
            "--export writes the trials of a score file: give --scores",
            "score the model first, then: cm eval --scores RUN/eval/<split>/scores.parquet --export ...",
        )
    if _path(o["run"]) is not None:
        _warn_unfinished(_path(o["run"]))
        if o["manifest"] is None and not o["audio"]:  # the one default-manifest rule: the run's own first
            from cm_cli.commands._common import resolve_manifest

            o["manifest"] = str(resolve_manifest(c, None, upstream=_path(o["run"]), build=not c.dry_run))
    if o["audio_paths"] and not o["audio"]:
        raise UsageError(f"unexpected argument {o['audio_paths'][0]}: audio paths follow --audio")
    if o["features"] is not None:
        if source is None:
            raise UsageError("--features needs --run RUN_DIR: the `cm train --features` head that scores the cache")
        _check_feature_options(source, o)
        _eval_features(c, source, o, _settings(c, o))
        return
    if source is not None:
        _refuse_feature_run(source)
    if o["audio"]:
        if source is None:
            raise UsageError("--audio needs --run RUN_DIR, --checkpoint FILE or --model NAME: the model to score with")
        _eval_audio(c, source, [Path(p) for p in [*o["audio"], *(o["audio_paths"] or [])]], o)
        return
    settings = _settings(c, o)
    if source is not None:
        _eval_model(c, source, o, settings)
        return
    _eval_scores(c, o, settings)


def _warn_unfinished(run: Path) -> None:
    """A run still training (or one that failed) has a best.pt that is not its final answer: say so on stderr."""
    from cm_cli.commands._common import err_console
    from cm_cli.core.artifacts import read_json
    from cm_cli.core.errors import CmError

    try:
        status = read_json(run / "cm.json").get("status") if (run / "cm.json").is_file() else None
    except (CmError, AttributeError):
        return
    if status in ("running", "failed"):
        what = "is still training" if status == "running" else "failed before it finished"
        err_console().print(
            f"[yellow]warning:[/] run {run} {what} (cm.json status {status!r}): scoring the "
            "checkpoint it has saved so far, not its final model"
        )


def _settings(c, o: dict):
    """The one EvalSettings of this invocation (both modes): the declared fields from ``OPTIONS``, and the
    fields several options build (seed, seen_domains, columns, and asv_scores with its t-DCF block)."""
    from cm_cli.evaluation.readers import ScoreColumns
    from cm_cli.evaluation.settings import EvalSettings, seen_domains_of_run

    blocks = []
    asv = _path(o["asv_scores"])
    if asv is None and (o["run"] or o["checkpoint"] or o["model"]) and o["manifest"] and o["split"] != "all":
        from cm_cli.data.manifests import manifest_asv_scores

        asv = manifest_asv_scores(Path(o["manifest"]), o["split"])
    if asv is not None:
        from cm_cli.evaluation.tandem import tdcf_block_maker

        blocks.append(tdcf_block_maker(asv, score_col=o["asv_score_col"], key_col=o["asv_key_col"]))
    seen = _split_values(o["seen_domain"]) or None
    if o["seen_from"] is not None:
        seen = sorted({*(seen or []), *(seen_domains_of_run(Path(o["seen_from"])) or [])})
    columns = ScoreColumns(
        score_col=o["score_col"], label_col=o["label_col"], bonafide_value=o["bonafide_value"], id_col=o["id_col"]
    )
    return OPTIONS.config(
        EvalSettings, o, seed=c.seed, seen_domains=seen, columns=columns, blocks=tuple(blocks), asv_scores=asv
    )


def _eval_scores(c, o: dict, settings) -> None:
    scores = _path(o["scores"])
    if scores is None and o["sasv_scores"] is not None:
        _eval_sasv(c, o)
        return
    if scores is None:
        raise UsageError(
            "give --scores FILE, or --run RUN_DIR / --checkpoint FILE to score a model",
            "e.g. cm eval --run runs/dann --manifest runs/manifests/toy/manifest.parquet --out runs/dann/eval",
        )
    key, manifest, out = _path(o["key"]), _path(o["manifest"]), _path(o["out"])
    export = _export_target(o.get("export"))
    options: dict[str, Any] = {
        "scores": str(scores),
        "key": str(key) if key else None,
        "manifest": str(manifest) if manifest else None,
        "score_col": o["score_col"],
        "label_col": o["label_col"],
        "id_col": o["id_col"],
        "bonafide_value": o["bonafide_value"],
        **settings.options(),
        "out": str(out) if out else None,
    }
    if c.dry_run:
        print_dry_run(c, "eval", options)
        return

    def load():
        from cm_cli.core.labels import label_notes
        from cm_cli.evaluation.readers import load_scores

        with label_notes() as notes:  # labels normalised from another spelling are reported, with their count
            table = load_scores(scores, settings.columns, key=key, manifest=manifest, dedupe=settings.dedupe)
        return table, notes

    def exported(table) -> None:
        if export is not None:
            from cm_cli.evaluation.export import export_scores

            export_scores(table, export[0], export[1], source=str(scores))

    def evaluate() -> dict:
        table, notes = load()
        result = settings.evaluate(table, source=str(scores))
        result["warnings"] = notes + list(result.get("warnings") or [])
        exported(table)  # after the metrics: nothing is written for a table they refuse
        return result

    if out is None:
        result = evaluate()
        emit(c, result, lambda: _print(result, None))
        return
    from cm_cli.core.artifacts import OutputDir, read_json
    from cm_cli.evaluation.writer import METRICS_FILE, headline, write_metrics_dir

    inputs = [p for p in (scores, key, manifest) if p is not None] + settings.inputs()
    with OutputDir(out, "metrics", options, inputs=inputs, force=bool(o["force"])) as target:
        if target.done and (out / METRICS_FILE).is_file():
            result = read_json(out / METRICS_FILE)
            exported(load()[0] if export is not None else None)
        else:
            result = evaluate()
            target.finish(outputs=write_metrics_dir(result, out), summary=headline(result))
    emit(c, result, lambda: _print(result, out))


def _export_target(value) -> tuple[str, Path] | None:
    """``--export FORMAT FILE`` checked before anything is read: (format, file) or None."""
    if not value or value[0] in (None, ""):
        return None
    from cm_cli.evaluation.export import EXPORT_FORMATS

    fmt, file = str(value[0]).strip().lower(), value[1]
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"--export {value[0]!r}: unknown format", f"use one of {', '.join(EXPORT_FORMATS)}, then the file"
        )
    if file in (None, ""):
        raise UsageError("--export needs the format and the file, e.g. --export asvspoof5 scores.tsv")
    return fmt, Path(file)


def _eval_sasv(c, o: dict) -> None:
    """ASVspoof 5 Track 2 from one SASV score file: a-DCF, t-EER and min t-DCF."""
    from cm_cli.evaluation.tandem import sasv_metrics

    path, key, out = Path(o["sasv_scores"]), _path(o["sasv_key"]), _path(o["out"])
    options = {"sasv_scores": str(path), "sasv_key": str(key) if key else None, "out": str(out) if out else None}
    if c.dry_run:
        print_dry_run(c, "eval", options)
        return
    if out is None:
        result = {"sasv": sasv_metrics(path, key=key)}
    else:
        from cm_cli.core.artifacts import OutputDir, read_json
        from cm_cli.evaluation.writer import METRICS_FILE, write_metrics_dir

        with OutputDir(out, "metrics", options, inputs=[p for p in (path, key) if p], force=bool(o["force"])) as target:
            if target.done and (out / METRICS_FILE).is_file():
                result = read_json(out / METRICS_FILE)
            else:
                result = {"sasv": sasv_metrics(path, key=key)}
                target.finish(outputs=write_metrics_dir(result, out), summary=result["sasv"])

    def human() -> None:
        s = result["sasv"]
        parts = [
            f"{name} {s[k]:.4f}" if "dcf" in k else f"{name} {100 * s[k]:.2f}%"
            for k, name in (("a_dcf", "a-DCF"), ("t_eer", "t-EER"), ("min_tdcf", "min t-DCF"))
            if k in s
        ]
        console().print(f"SASV ({s['n_trials']} trials): " + ", ".join(parts))

    emit(c, result, human)


def _run_target(source: Path, o: dict, missing_manifest: str):
    """(manifest, shard, split, output directory) of scoring a run; the default out is RUN/eval/<split>."""
    from cm_cli.commands._common import recorded_manifest
    from cm_cli.core.shard import resolve_shard

    manifest = _path(o["manifest"]) or recorded_manifest(source)  # DESIGN "Default manifest", rule 1
    if manifest is None:
        raise UsageError(missing_manifest, "e.g. --manifest runs/manifests/toy/manifest.parquet")
    split = o["split"]
    out_dir = _path(o["out"]) or (source if source.is_dir() else source.parent) / "eval" / split
    return manifest, resolve_shard(o["shard"]), split, out_dir


def _eval_model(c, source: Path, o: dict, settings) -> None:
    if o["scores"] is not None:
        raise UsageError("--scores evaluates a score file; --run/--checkpoint score a model: give one of them")
    manifest, part, split, out_dir = _run_target(source, o, "--run needs --manifest M (the utterances to score)")
    degrade, chunk_ms = list(o["degrade"] or []), list(o["chunk_ms"] or [])
    options = {
        "run": str(source),
        "manifest": str(manifest),
        "split": split,
        "degrade": degrade,
        "chunk_ms": chunk_ms,
        "overlap_ms": o["overlap_ms"],
        "aggregate": o["aggregate"],
        "causal_windows": o["causal_windows"],
        "full_length": o["full_length"],
        "batch_size": o["batch_size"],
        **settings.options(),
        "shard": str(part),
        "out": str(out_dir),
    }
    if c.dry_run:
        print_dry_run(c, "eval", options)
        return
    from cm_cli.commands._common import rich_reporter
    from cm_cli.core.progress import use_reporter
    from cm_cli.evaluation import evaluate_model

    with use_reporter(rich_reporter(c)):
        result = evaluate_model(
            source,
            manifest,
            out_dir,
            settings=settings,
            split=None if split == "all" else split,
            degrade=degrade,
            chunk_ms=chunk_ms,
            overlap_ms=float(o["overlap_ms"]),
            aggregate=o["aggregate"],
            causal_windows=o["causal_windows"],
            full_length=bool(o["full_length"]),
            batch_size=int(o["batch_size"]),
            data_root=c.data_root,
            cache_dir=c.cache_dir,
            device=c.device,
            torch_device=c.torch_device(),
            seed=c.seed,
            shard=part,
            force=bool(o["force"]),
            baseline=bool(o["baseline"]),
            workers=c.data_workers(unset=0),
        )
    _emit_model_result(c, result, out_dir)


def _emit_model_result(c, result, out_dir: Path) -> None:
    """One condition: its metrics document (as --scores prints it); several: the conditions table."""
    summary = result.summary()
    if len(result.conditions) == 1 and result.conditions[0].metrics is not None:
        summary = {**result.conditions[0].metrics, "out": str(out_dir), "skipped": result.skipped}
        emit(c, summary, lambda: _print(result.conditions[0].metrics, out_dir))
        return
    emit(c, summary, lambda: _print_conditions(result))


# options that change the audio a model hears: a feature head scores a fixed cache
_AUDIO_ONLY = (
    ("audio", "--audio"),
    ("degrade", "--degrade"),
    ("chunk_ms", "--chunk-ms"),
    ("causal_windows", "--causal-windows"),
    ("full_length", "--full-length"),
)


def _check_feature_options(source: Path, o: dict) -> None:
    """--features goes with a feature-head run and none of the options that need audio."""
    from cm_cli.training.features import is_feature_run

    for name, flag in _AUDIO_ONLY:
        if o[name]:
            raise UsageError(
                f"{flag} needs audio; a feature head scores the fixed `cm embed` cache given by --features: drop {flag}"
            )
    if o["scores"] is not None:
        raise UsageError("--scores evaluates a score file; --run with --features scores a feature head: give one")
    if is_feature_run(source) is False:
        raise UsageError(
            f"{source} is a model trained on audio, not a `cm train --features` head: drop --features "
            "to score it on the manifest's audio"
        )


def _refuse_feature_run(source: Path) -> None:
    from cm_cli.training.features import is_feature_run

    if is_feature_run(source):
        raise UsageError(
            f"{source} is a `cm train --features` head: it scores `cm embed` features, not audio; "
            f"give --features EMB_DIR (e.g. the cache it was trained on, embedded for this split)"
        )


def _eval_features(c, source: Path, o: dict, settings) -> None:
    """A feature head on a `cm embed` cache: one condition, the same metrics directory as _eval_model."""
    manifest, part, split, out_dir = _run_target(
        source, o, "--run with --features needs --manifest M (the labels and columns of the cached rows)"
    )
    features = Path(o["features"])
    options = {
        "run": str(source),
        "features": str(features),
        "manifest": str(manifest),
        "split": split,
        **settings.options(),
        "shard": str(part),
        "out": str(out_dir),
    }
    if c.dry_run:
        print_dry_run(c, "eval", options)
        return
    from cm_cli.evaluation import evaluate_features

    result = evaluate_features(
        source,
        features,
        manifest,
        out_dir,
        settings=settings,
        split=None if split == "all" else split,
        device=c.device,
        torch_device=c.torch_device(),
        shard=part,
        force=bool(o["force"]),
    )
    _emit_model_result(c, result, out_dir)


def _eval_audio(c, source: Path, paths: list[Path], o: dict) -> None:
    from cm_cli.evaluation.audio import find_audio

    chunks = list(o["chunk_ms"] or [])
    if len(chunks) > 1 or any("|" in str(v) for v in chunks):
        raise UsageError("--audio takes one --chunk-ms value (no sweep)")
    try:
        chunk = float(chunks[0]) if chunks else None
    except ValueError:
        raise UsageError(f"--chunk-ms {chunks[0]!r} is not a number of milliseconds") from None
    files, missing = find_audio(paths)
    out = _path(o["out"])
    options = {
        "run": str(source),
        "audio": [str(p) for p in paths],
        "threshold": o["threshold"],
        "chunk_ms": chunk,
        "overlap_ms": o["overlap_ms"],
        "full_length": o["full_length"],
        "batch_size": o["batch_size"],
        "out": str(out) if out else None,
    }
    if c.dry_run:
        print_dry_run(c, "eval", {**options, "files": [str(f) for f in files]})
        return
    if not files and missing:
        raise UsageError(f"no audio found: {missing[0]['path']}: {missing[0]['error']}")
    if not files:
        from cm_cli.evaluation.audio import AUDIO_SUFFIXES

        raise UsageError(
            f"no audio files ({', '.join(s[1:] for s in AUDIO_SUFFIXES)}) under {', '.join(map(str, paths))}"
        )
    from cm_cli.commands._common import rich_reporter
    from cm_cli.core.progress import use_reporter
    from cm_cli.evaluation.audio import load_model_for_audio, score_audio

    device = c.torch_device()
    loaded = load_model_for_audio(source, device=device)
    with use_reporter(rich_reporter(c)):
        result = score_audio(
            loaded,
            files,
            threshold=o["threshold"],
            chunk_ms=chunk,
            overlap_ms=float(o["overlap_ms"]),
            full_length=bool(o["full_length"]),
            batch_size=int(o["batch_size"]),
            device=device,
        )
    result.failures = missing + result.failures
    payload = {**result.to_dict(), "run": str(source), "out": str(out) if out else None}
    if out is not None:
        payload["files"] = _write_audio(result, out, options, loaded.checkpoint, bool(o["force"]))
    emit(c, payload, lambda: _print_audio(result, out))


def _write_audio(result, out: Path, options: dict, checkpoint: Path, force: bool) -> dict:
    import pandas as pd

    from cm_cli.core.artifacts import OutputDir, write_parquet
    from cm_cli.evaluation.audio import plot_windows

    files = [[p, Path(p).stat().st_size, Path(p).stat().st_mtime_ns] for p in result.table["path"]]
    with OutputDir(out, "scores", {**options, "files": files}, inputs=[checkpoint], force=force) as target:
        written = {"scores": write_parquet(result.table, out / "scores.parquet").name}
        if result.failures:
            written["failures"] = write_parquet(pd.DataFrame(result.failures), out / "failures.parquet").name
        if result.windows is not None:
            written["windows"] = write_parquet(result.windows, out / "windows.parquet").name
            if len(result.windows):
                written["plot"] = plot_windows(result, out / "windows.png").name
        if not target.done:
            target.finish(outputs=written, summary={"n_scored": len(result.table), "n_failed": len(result.failures)})
    return written


def _print_audio(result, out: Optional[Path]) -> None:
    from rich.table import Table

    cons = console()
    calibrated = "p_bonafide" in result.table.columns
    table = Table(
        "file",
        "duration s",
        "score",
        "decision",
        *(("P(bona fide)",) if calibrated else ()),
        title_justify="left",
        title=(
            f"threshold {result.threshold:.6g} ({'--threshold' if result.threshold_source == 'option' else 'dev EER'})"
            if result.threshold is not None
            else "no threshold: the run records no dev EER threshold; give --threshold"
        ),
    )
    for rec in result.table.to_dict("records"):
        table.add_row(
            rec["path"],
            f"{rec['duration']:.2f}",
            f"{rec['score']:.4f}",
            rec["decision"] or "-",
            *((f"{rec['p_bonafide']:.3f}",) if calibrated else ()),
        )
    cons.print(table)
    for failure in result.failures:
        cons.print(f"[yellow]unreadable:[/] {failure['path']}: {failure['error']}")
    if out is not None:
        cons.print(f"-> {out}/scores.parquet")


def _print_conditions(result) -> None:
    from rich.table import Table

    from cm_cli.metrics.summary import HEADLINE_KEYS, format_metric, metric_label

    table = Table(
        "condition",
        *(metric_label(k) for k in HEADLINE_KEYS),
        "scored",
        "failed",
        title=f"{result.out_dir}",
        title_justify="left",
    )
    for r in result.conditions:
        overall = (r.metrics or {}).get("overall")
        if overall is None:
            table.add_row(
                r.condition.label, "(shard)", *[""] * (len(HEADLINE_KEYS) - 1), str(r.n_scored), str(r.n_failed)
            )
        else:
            table.add_row(
                r.condition.label,
                *(format_metric(k, overall.get(k)) for k in HEADLINE_KEYS),
                str(r.n_scored),
                str(r.n_failed),
            )
    console().print(table)
    for r in result.conditions:  # the human form warns whatever each condition's metrics.json notes
        for warning in (r.metrics or {}).get("warnings", []):
            console().print(f"[yellow]warning:[/] {r.condition.label}: {warning}")
    if result.sweep:
        console().print(f"sweep: {result.sweep}")


def _print(result: dict, out: Path | None) -> None:
    from rich.table import Table

    from cm_cli.metrics.summary import HEADLINE_KEYS, SHOWN_KEYS, format_metric, metric_label

    cons = console()
    overall = result["overall"]
    cons.print(
        f"[bold]{overall['n_bonafide']}[/] bona fide, [bold]{overall['n_spoof']}[/] spoof trials"
        + (f"  ->  {out}/metrics.json" if out else "")
    )
    table = Table("metric", "value", title="overall", title_justify="left")
    for name in SHOWN_KEYS:
        shown = format_metric(name, overall[name])
        table.add_row(name, shown + (" %" if name.startswith("eer") else ""))
    for name, label in (("min_tdcf", "min t-DCF (2021)"), ("min_tdcf_legacy", "min t-DCF (2019)")):
        if name in overall:
            table.add_row(label, f"{overall[name]:.4f}")
    if "t_eer" in overall:
        table.add_row("t-EER", f"{100 * overall['t_eer']:.3f} %")
    if "ci" in result:
        ci = result["ci"]
        unit = (
            f" ({ci.get('n_clusters')} {ci.get('unit', 'trial')} clusters)" if ci.get("cluster_by") else " (per trial)"
        )
        table.add_row(
            f"eer {int(100 * ci['level'])}% CI", f"[{100 * ci['eer'][0]:.3f}, {100 * ci['eer'][1]:.3f}] %{unit}"
        )
        table.add_row(f"min_dcf {int(100 * ci['level'])}% CI", f"[{ci['min_dcf'][0]:.4f}, {ci['min_dcf'][1]:.4f}]")
    cons.print(table)
    for column, groups in result.get("by", {}).items():
        t = Table(
            column,
            *(metric_label(k) for k in HEADLINE_KEYS),
            "bona",
            "spoof",
            "",
            title=f"by {column}",
            title_justify="left",
        )
        for value, rec in groups.items():
            if rec["eer"] is None:
                t.add_row(value, *["-"] * len(HEADLINE_KEYS), str(rec["n_bonafide"]), str(rec["n_spoof"]), "no spoof")
                continue
            flags = " ".join(
                f for f, on in (("small", rec["small"]), ("all-bona", rec["bonafide_pool"] == "all")) if on
            )
            t.add_row(
                value,
                *(format_metric(k, rec.get(k)) for k in HEADLINE_KEYS),
                str(rec["n_bonafide"]),
                str(rec["n_spoof"]),
                flags,
            )
        summary = result["by_summary"][column]
        if "averaged" in summary:
            t.add_row(
                "[dim]mean of groups[/]",
                *(format_metric(k, summary["averaged"].get(k)) for k in HEADLINE_KEYS),
                "",
                "",
                "",
            )
        cons.print(t)
    if "ood_gap" in result:
        _print_gap(result["ood_gap"])
    if "calibration" in result:
        cal = result["calibration"]
        cons.print(
            f"calibration: actDCF {cal['before']['act_dcf']:.4f} -> {cal['after']['act_dcf']:.4f}, "
            f"Cllr {cal['before']['cllr']:.4f} -> {cal['after']['cllr']:.4f}"
        )
    for warning in result.get("warnings", []):
        cons.print(f"[yellow]warning:[/] {warning}")
    tdcf = result.get("tdcf") or {}
    if tdcf.get("t_eer_unpaired_asv_trials"):  # the human form warns whatever the JSON notes
        used, unpaired = tdcf.get("t_eer_trials", 0), tdcf["t_eer_unpaired_asv_trials"]
        cons.print(
            f"[yellow]warning:[/] t-EER uses {used} of {used + unpaired} ASV trials: {unpaired} have no CM "
            "score with the same id"
        )


def _print_gap(gap: dict) -> None:
    cons = console()
    rel = f"{100 * gap['gap_rel']:.1f} %" if gap["gap_rel"] is not None else "n/a"
    cons.print(
        f"OOD gap ({gap['column']} in {', '.join(gap['in_domain'])}): EER in {100 * gap['eer_in']:.3f} %, "
        f"out {100 * gap['eer_out']:.3f} %, gap {gap['gap_abs_points']:.3f} points ({rel} relative)"
    )
    for side, rec in (gap.get("split") or {}).items():
        if rec["eer"] is None:
            cons.print(f"  {side} in training: no spoof trials")
            continue
        cons.print(
            f"  {side} in training ({', '.join(rec['values'][:6])}{', ...' if len(rec['values']) > 6 else ''}): "
            f"EER {100 * rec['eer']:.3f} %, gap {rec['gap_abs_points']:.3f} points"
        )
    if "compare" in gap and gap["compare"]["gap_reduction"] is not None:
        cons.print(f"gap reduction vs {gap['compare']['baseline']}: {100 * gap['compare']['gap_reduction']:.1f} %")
