"""`cm loao`: leave-one-attack-out gaps of linear detectors, attack geometry, and their correlation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cm_cli.commands._common import (
    ForceOpt,
    ManifestOpt,
    OutDir,
    PresetOpt,
    SplitOpt,
    console,
    emit,
    get_ctx,
    parse_seeds,
    print_dry_run,
    resolve_options,
    rich_reporter,
)
from cm_cli.commands._spec import Opt, Options
from cm_cli.core.errors import UsageError


def manifest_for(embeddings: Optional[Path], manifest: Optional[Path]) -> Path:
    """The --manifest given, else the manifest recorded in the embeddings' cm.json by `cm embed`."""
    if manifest is not None:
        return manifest
    if embeddings is not None:
        record = (embeddings if embeddings.is_dir() else embeddings.parent) / "cm.json"
        if record.is_file():
            from cm_cli.core.artifacts import read_json

            recorded = (read_json(record).get("options") or {}).get("manifest")
            if recorded and Path(recorded).exists():
                return Path(recorded)
    raise UsageError(
        "no --manifest given, and the embeddings do not record one",
        "pass --manifest with the manifest the embeddings were made from",
    )


# each option once: its flag, type, default and help, the preset/cm.toml key, and the LoaoConfig field it sets
OPTIONS = Options(
    Opt("manifest", annotation=ManifestOpt, field=None),
    Opt("out", annotation=OutDir, field=None),
    Opt("layer", str, None, "Layer index or name, comma list, or 'all' (default all).", flags=("-l",), field="layers"),
    Opt(
        "group_by",
        str,
        "attack",
        "Hold out each value of: attack, attack_family, codec or codec_family (a codec: its rows of both classes, "
        "and its augmentation with --plan), or of another manifest column as an attack (e.g. codec_dec).",
    ),
    Opt(
        "seeds",
        str,
        "0,1,2",
        "Seeds of the speaker-disjoint train/test split (mean and sd over them).",
        convert=lambda value: parse_seeds(value, "--seeds"),
    ),
    Opt("split", annotation=SplitOpt),
    Opt("test_size", float, 0.3, "Fraction of speakers held out for testing.", convert=float),
    Opt("c", float, 1.0, "Inverse L2 strength of the logistic regression.", convert=float),
    Opt(
        "probe_results",
        Path,
        None,
        "`cm probe --target attack` output to correlate per-attack selectivity with gaps.",
        field=None,
    ),
    Opt("probe_tag", str, None, "Which embedding set of the probe results (default the first).", field=None),
    Opt(
        "compare",
        Path,
        None,
        "A second embedding set (e.g. fine-tuned): per-attack changes and their correlation.",
        field=None,
    ),
    Opt(
        "plan",
        bool,
        False,
        "Print one `cm train` + `cm eval` line per held-out attack or codec (job array) and exit.",
        field=None,
    ),
    Opt("train_preset", str, None, "Preset of the retraining runs for --plan.", field=None),
    Opt(
        "train_seeds",
        str,
        None,
        "--plan: retrain every line once per seed (`cm --seed S train`, runs in RUN/seed_<s>); the report gives mean and sd of each gap.",
        show_default=False,
        field=None,
    ),
    Opt(
        "train_args",
        str,
        None,
        'Extra `cm train` options for every --plan run, e.g. "--epochs 1 --seed 3".',
        field=None,
    ),
    Opt("preset", annotation=PresetOpt, field=None, resolved=False),
    Opt("force", annotation=ForceOpt, default=False, field=None),
)


@OPTIONS.command
def loao(
    ctx: typer.Context,
    embeddings: Annotated[
        Optional[Path],
        typer.Argument(help="embeddings.parquet or the output directory of `cm embed`.", show_default=False),
    ] = None,
    **options,
) -> None:
    """Leave-one-attack-out. On embeddings: linear separability of a held-out attack by a probe that never saw it
    (the encoder saw every attack). With --plan: the full-retraining recipe (each attack removed from train and dev)."""
    c_ = get_ctx(ctx)
    opts = resolve_options(ctx, "loao", OPTIONS.values(options), preset=options["preset"])
    manifest_path = manifest_for(embeddings, opts["manifest"])
    if opts["plan"]:
        _plan(c_, manifest_path, opts)
        return
    if embeddings is None:
        raise UsageError("missing EMBEDDINGS", "give the embeddings file or directory (or use --plan)")
    from cm_cli.analysis.loao import LoaoConfig, run_loao
    from cm_cli.core.progress import use_reporter

    config = OPTIONS.config(LoaoConfig, opts)
    out_dir = Path(opts["out"]) if opts["out"] else c_.runs_dir / "analysis" / "loao" / _name(embeddings)
    if c_.dry_run:
        print_dry_run(
            c_,
            "loao",
            {
                "embeddings": str(embeddings),
                **{k: str(v) if isinstance(v, Path) else v for k, v in opts.items()},
                "out": str(out_dir),
                "config": config.options(),
            },
        )
        return
    with use_reporter(rich_reporter(c_)):
        summary = run_loao(
            embeddings,
            manifest=manifest_path,
            out=out_dir,
            config=config,
            probe_results=opts["probe_results"],
            probe_tag=opts["probe_tag"],
            compare=opts["compare"],
            force=bool(opts["force"]),
        )
    payload = {"out": str(out_dir), **summary}
    emit(c_, payload, lambda: _print(summary, out_dir))


def _name(path: Path) -> str:
    from cm_cli.analysis.probes import set_name

    return set_name(path)


def _plan(c_, manifest_path: Path, opts: dict) -> None:
    from cm_cli.analysis.loao import plan_loao
    from cm_cli.data.manifests import load_manifest

    if not opts["train_preset"]:
        raise UsageError("--plan needs --train-preset", "e.g. --plan --train-preset toy_lcnn_erm")
    out_dir = Path(opts["out"]) if opts["out"] else c_.runs_dir / "loao_plan"
    eval_split = opts["split"] or "eval"  # with --plan, --split names the split the runs are evaluated on
    frame = load_manifest(manifest_path)
    if c_.dry_run:
        print_dry_run(
            c_,
            "loao",
            {
                "plan": True,
                "manifest": str(manifest_path),
                "out": str(out_dir),
                "train_preset": opts["train_preset"],
                "train_args": opts["train_args"],
                "eval_split": eval_split,
                "train_seeds": opts.get("train_seeds"),
            },
        )
        return
    lines = plan_loao(
        manifest_path,
        frame,
        out=out_dir,
        train_preset=opts["train_preset"],
        group_by=opts["group_by"],
        eval_split=eval_split,
        train_args=opts["train_args"] or "",
        seeds=parse_seeds(opts["train_seeds"], "--train-seeds") if opts.get("train_seeds") else None,
    )
    from cm_cli.analysis.loao import PLAN_FILE
    from cm_cli.core.artifacts import read_json

    held_out = read_json(out_dir / PLAN_FILE).get("held_out", [])
    if c_.json:
        emit(c_, {"plan": lines, "out": str(out_dir), "script": str(out_dir / "plan.sh"), "held_out": held_out})
        return
    sys.stdout.write("\n".join(lines) + "\n")
    for entry in held_out:  # what each run lost, on stderr so stdout stays one command per line
        removed = entry.get("augment_removed")
        note = f"; augmentation entries removed: {', '.join(removed)}" if removed else ""
        sys.stderr.write(f"# held out {entry['group']}: {entry.get('rows_removed', 0)} rows removed{note}\n")


def _print(summary: dict, out_dir: Path) -> None:
    from rich.table import Table

    out = console()
    if summary.get("skipped"):
        out.print(f"[dim]{out_dir}: already complete with these options (reused)[/]")
    rows = summary.get("per_attack", [])
    largest = summary.get("largest_gap", {})
    # show the layer whose largest gap is largest, to keep the table short
    layer = max(largest, key=lambda k: largest[k]["gap_mean"]) if largest else None
    table = Table(title=f"LOAO gaps ({summary.get('group_by')}, {layer}), points", title_justify="left")
    for column in ("attack", "EER seen", "EER held out", "gap mean", "gap sd"):
        table.add_column(column, justify="left" if column == "attack" else "right")
    for r in rows:
        if r["layer"] != layer:
            continue
        table.add_row(
            str(r["attack"]), _f(r["eer_seen_mean"]), _f(r["eer_held_out_mean"]), _f(r["gap_mean"]), _f(r["gap_sd"])
        )
    out.print(table)
    if summary.get("measures"):
        out.print(f"[dim]measures: {summary['measures']}[/]")
    for note in summary.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
    out.print(f"wrote {out_dir}")


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"
