"""`cm probe`: grouped, controlled linear probes of a manifest column at every layer (one or two embedding sets)."""

from __future__ import annotations

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
    print_dry_run,
    resolve_options,
    rich_reporter,
)
from cm_cli.commands._spec import Opt, Options
from cm_cli.core.errors import UsageError


def _floats(text: Optional[str]) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        values = tuple(float(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise UsageError(
            f"--c-sweep: expected comma-separated numbers, got {text!r}", "e.g. --c-sweep 0.01,0.1,1,10"
        ) from None
    if any(v <= 0 for v in values):
        raise UsageError("--c-sweep values must be positive")
    return values


def _none(value: Optional[str]) -> Optional[str]:
    return None if value is None or str(value).lower() in ("none", "") else str(value)


# each option once: its flag, type, default and help, the preset/cm.toml key, and the ProbeConfig field it sets
OPTIONS = Options(
    Opt("manifest", annotation=ManifestOpt, field=None),
    Opt(
        "target",
        str,
        "codec",
        "Manifest column to decode (codec, domain, attack, speaker, label, …).",
        flags=("-t",),
        convert=str,
    ),
    Opt("out", annotation=OutDir, field=None),
    Opt("layer", str, None, "Layer index or name, comma list, or 'all' (default all).", flags=("-l",), field="layers"),
    Opt(
        "group_by",
        str,
        "speaker",
        "Folds never split a value of this column (speaker, codec_seed, source_utt_id; 'none': rows).",
        convert=_none,
    ),
    Opt(
        "control_by",
        str,
        "speaker",
        "Control task: one random label per value of this column; its values recur between training and test (own folds when --group-by keeps them apart). 'none': per row, not learnable.",
        convert=_none,
    ),
    Opt("folds", int, 5, "Cross-validation folds.", convert=int),
    Opt("split", annotation=SplitOpt),
    Opt("c", float, 1.0, "Inverse L2 strength of the logistic regression.", convert=float),
    Opt(
        "c_sweep",
        str,
        None,
        "Choose C per fold by inner grouped CV among these values, e.g. 0.01,0.1,1,10.",
        convert=_floats,
    ),
    Opt(
        "drop_null_target",
        bool,
        False,
        "Drop rows whose target is null (default: they form the class 'none').",
        convert=bool,
    ),
    Opt(
        "min_class_size",
        int,
        0,
        "Drop classes with fewer rows than this (default 0: too-small classes are an error).",
        convert=int,
    ),
    Opt("bootstrap", int, 1000, "Cluster-bootstrap resamples for the CIs.", field="n_boot", convert=int),
    Opt("tags", str, None, "Names of the sets in the tables, e.g. erm,dann (default: directory names).", field=None),
    Opt("preset", annotation=PresetOpt, field=None, resolved=False),
    Opt("force", annotation=ForceOpt, default=False, field=None),
)


@OPTIONS.command
def probe(
    ctx: typer.Context,
    embeddings: Annotated[
        Path, typer.Argument(help="embeddings.parquet or `cm embed` output directory (set A).", show_default=False)
    ],
    embeddings_b: Annotated[
        Optional[Path], typer.Argument(help="Optional second set (B) compared layer by layer.", show_default=False)
    ] = None,
    **options,
) -> None:
    """Linear probes per layer: accuracy, balanced accuracy, chance levels, control task, selectivity, CIs."""
    from cm_cli.analysis.probes import ProbeConfig, run_probes, set_name
    from cm_cli.commands.loao import manifest_for
    from cm_cli.core.progress import use_reporter

    c_ = get_ctx(ctx)
    opts = resolve_options(ctx, "probe", OPTIONS.values(options), preset=options["preset"])
    manifest_path = manifest_for(embeddings, opts["manifest"])
    config = OPTIONS.config(ProbeConfig, opts, seed=c_.seed)
    sets = [embeddings] + ([embeddings_b] if embeddings_b else [])
    names = [t.strip() for t in str(opts["tags"]).split(",")] if opts["tags"] else None
    out_dir = (
        Path(opts["out"])
        if opts["out"]
        else c_.runs_dir / "analysis" / "probes" / f"{set_name(embeddings)}_{config.target}"
    )
    if c_.dry_run:
        print_dry_run(
            c_,
            "probe",
            {
                "embeddings": [str(s) for s in sets],
                "manifest": str(manifest_path),
                "out": str(out_dir),
                "tags": names,
                "config": config.options(),
            },
        )
        return
    with use_reporter(rich_reporter(c_)):
        summary = run_probes(
            sets, manifest=manifest_path, out=out_dir, config=config, tags=names, force=bool(opts["force"])
        )
    emit(c_, {"out": str(out_dir), **summary}, lambda: _print(out_dir, summary))


def _print(out_dir: Path, summary: dict) -> None:
    from rich.table import Table

    from cm_cli.core.artifacts import read_table

    out = console()
    if summary.get("skipped"):
        out.print(f"[dim]{out_dir}: already complete with these options (reused)[/]")
    table = read_table(out_dir / "probes.parquet")
    view = Table(
        title=f"probe target {summary['target']} (chance: majority {summary['chance_majority']:.3f}, "
        f"uniform {summary['chance_uniform']:.3f})",
        title_justify="left",
    )
    for column in ("tag", "layer", "accuracy", "95% CI", "bal. acc", "control", "selectivity"):
        view.add_column(column, justify="left" if column in ("tag", "layer") else "right")
    for r in table.itertuples(index=False):
        view.add_row(
            str(r.tag),
            str(r.layer),
            f"{r.accuracy:.3f}",
            f"{r.ci_low:.3f}–{r.ci_high:.3f}",
            f"{r.balanced_accuracy:.3f}",
            f"{r.control_accuracy:.3f}",
            f"{r.selectivity:+.3f}",
        )
    out.print(view)
    if summary.get("control_measures"):
        out.print(
            f"[dim]control ({summary.get('control_unit')}, {summary.get('control_folds')} folds): "
            f"{summary['control_measures']}[/]"
        )
    comparison = summary.get("comparison")
    if comparison:
        diff = Table(
            title=f"accuracy {comparison['b']} - {comparison['a']} (paired cluster bootstrap)", title_justify="left"
        )
        for column in ("layer", "difference", "95% CI"):
            diff.add_column(column, justify="left" if column == "layer" else "right")
        for r in comparison["layers"]:
            diff.add_row(r["layer"], f"{r['difference']:+.3f}", f"{r['ci_low']:+.3f}–{r['ci_high']:+.3f}")
        out.print(diff)
    for note in summary.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
    out.print(f"wrote {out_dir}")
