"""`cm profile`: attack profiling (source tracing) from any feature table: which attack, and unknown attacks."""

from __future__ import annotations

import math
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


def _none(value: Optional[str]) -> Optional[str]:
    return None if value is None or str(value).lower() in ("none", "") else str(value)


def profile(
    ctx: typer.Context,
    features: Annotated[
        Path,
        typer.Argument(
            help="A `cm embed` output (backbone layers or a feature set such as prosody).", show_default=False
        ),
    ],
    manifest: ManifestOpt = None,
    target: Annotated[
        str,
        typer.Option(
            "--target", "-t", help="Manifest column naming the generator of each spoof (attack, attack_family, …)."
        ),
    ] = "attack",
    out: OutDir = None,
    layer: Annotated[
        Optional[str],
        typer.Option(
            "--layer",
            "-l",
            help="Vector column(s), comma list, or 'all' (default: all when their total width is at most 2048, else the last layer).",
        ),
    ] = None,
    holdout: Annotated[
        Optional[str],
        typer.Option(
            "--holdout", help="Attacks held out of training as unknown, comma list (default: each attack in turn)."
        ),
    ] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="Folds never split a value of this column ('none': rows).")
    ] = "speaker",
    folds: Annotated[int, typer.Option("--folds", help="Cross-validation folds.", min=2)] = 5,
    split: SplitOpt = None,
    c: Annotated[float, typer.Option("--c", help="Inverse L2 strength of the logistic regression.")] = 1.0,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Speaker-cluster bootstrap resamples for the accuracy CI.")
    ] = 1000,
    preset: PresetOpt = None,
    force: ForceOpt = False,
) -> None:
    """Source tracing: confusion matrix, per-attack accuracy, open-set AUROC of held-out attacks, bona fide proximity."""
    from cm_cli.analysis.probes import set_name
    from cm_cli.analysis.profile import ProfileConfig, run_profile
    from cm_cli.commands.loao import manifest_for
    from cm_cli.core.progress import use_reporter

    c_ = get_ctx(ctx)
    values = {
        "target": target,
        "layer": layer,
        "holdout": holdout,
        "group_by": group_by,
        "folds": folds,
        "split": split,
        "c": c,
        "bootstrap": bootstrap,
        "manifest": manifest,
        "out": out,
        "force": force,
    }
    opts = resolve_options(ctx, "profile", values, preset=preset)
    manifest_path = manifest_for(features, opts["manifest"])
    held = tuple(h.strip() for h in str(opts["holdout"]).split(",") if h.strip()) if opts["holdout"] else ()
    config = ProfileConfig(
        target=str(opts["target"]),
        layers=opts["layer"],
        group_by=_none(opts["group_by"]),
        folds=int(opts["folds"]),
        holdout=held,
        split=opts["split"],
        c=float(opts["c"]),
        n_boot=int(opts["bootstrap"]),
        seed=c_.seed,
    )
    default_out = c_.runs_dir / "analysis" / "profile" / f"{set_name(features)}_{config.target}"
    out_dir = Path(opts["out"]) if opts["out"] else default_out
    if c_.dry_run:
        print_dry_run(
            c_,
            "profile",
            {
                "features": str(features),
                "manifest": str(manifest_path),
                "out": str(out_dir),
                "config": config.options(),
            },
        )
        return
    with use_reporter(rich_reporter(c_)):
        summary = run_profile(features, manifest=manifest_path, out=out_dir, config=config, force=bool(opts["force"]))
    emit(c_, {"out": str(out_dir), **summary}, lambda: _print(out_dir, summary))


def _print(out_dir: Path, summary: dict) -> None:
    from rich.table import Table

    from cm_cli.analysis.profile import PROFILE_FILE
    from cm_cli.core.artifacts import read_table

    out = console()
    if summary.get("skipped"):
        out.print(f"[dim]{out_dir}: already complete with these options (reused)[/]")
    out.print(
        f"closed-set accuracy {summary['accuracy']:.3f} ({summary['ci_low']:.3f}–{summary['ci_high']:.3f}), "
        f"balanced {summary['balanced_accuracy']:.3f}; chance {summary['chance_uniform']:.3f} (uniform), "
        f"{summary['chance_majority']:.3f} (majority); {summary['n_spoof']} spoofs, {len(summary['classes'])} "
        f"{summary['target']} values"
    )
    table = read_table(out_dir / PROFILE_FILE)
    view = Table(title="per attack (open set: held out of training)", title_justify="left")
    for column in ("attack", "n", "accuracy", "AUROC unknown", "flagged@95", "d_bona", "bona axis"):
        view.add_column(column, justify="left" if column == "attack" else "right")

    def fmt(value, spec=".3f"):
        return "–" if math.isnan(value) else format(value, spec)

    for r in table.itertuples(index=False):
        view.add_row(
            str(r.attack),
            str(r.n),
            fmt(r.accuracy),
            fmt(r.auroc_unknown),
            fmt(r.flagged_at_95),
            fmt(r.d_bona, ".2f"),
            fmt(r.bona_axis_proj, ".2f"),
        )
    out.print(view)
    for key in ("proximity_vs_auroc_d_bona", "proximity_vs_auroc_bona_axis_proj"):
        if summary.get(key) and summary[key].get("rho") is not None:
            corr = summary[key]
            out.print(
                f"spearman({key.split('auroc_')[1]}, AUROC unknown) = {corr['rho']:+.2f} "
                f"(p {corr['p_permutation']:.3f}, {corr['n']} attacks)"
            )
    for note in summary.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
    out.print(f"wrote {out_dir}")
