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
from cm_cli.commands._spec import Opt, Options


def _none(value: Optional[str]) -> Optional[str]:
    return None if value is None or str(value).lower() in ("none", "") else str(value)


def _holdout(value: Optional[str]) -> tuple[str, ...]:
    return tuple(h.strip() for h in str(value).split(",") if h.strip()) if value else ()


# each option once: its flag, type, default and help, the preset/cm.toml key, and the ProfileConfig field it sets
OPTIONS = Options(
    Opt("manifest", annotation=ManifestOpt, field=None),
    Opt(
        "target",
        str,
        "attack",
        "Manifest column naming the generator of each spoof (attack, attack_family, …).",
        flags=("-t",),
        convert=str,
    ),
    Opt("out", annotation=OutDir, field=None),
    Opt(
        "layer",
        str,
        None,
        "Vector column(s), comma list, or 'all' (default: all when their total width is at most 2048, else the last layer).",
        flags=("-l",),
        field="layers",
    ),
    Opt(
        "holdout",
        str,
        None,
        "Attacks held out of training as unknown, comma list (default: each attack in turn).",
        convert=_holdout,
    ),
    Opt("group_by", str, "speaker", "Folds never split a value of this column ('none': rows).", convert=_none),
    Opt("folds", int, 5, "Cross-validation folds.", minimum=2, convert=int),
    Opt("split", annotation=SplitOpt),
    Opt("c", float, 1.0, "Inverse L2 strength of the logistic regression.", convert=float),
    Opt(
        "bootstrap",
        int,
        1000,
        "Speaker-cluster bootstrap resamples for the accuracy CI.",
        field="n_boot",
        convert=int,
    ),
    Opt("preset", annotation=PresetOpt, field=None, resolved=False),
    Opt("force", annotation=ForceOpt, default=False, field=None),
)


@OPTIONS.command
def profile(
    ctx: typer.Context,
    features: Annotated[
        Path,
        typer.Argument(
            help="A `cm embed` output (backbone layers or a feature set such as prosody).", show_default=False
        ),
    ],
    **options,
) -> None:
    """Source tracing: confusion matrix, per-attack accuracy, open-set AUROC of held-out attacks, bona fide proximity."""
    from cm_cli.analysis.probes import set_name
    from cm_cli.analysis.profile import ProfileConfig, run_profile
    from cm_cli.commands.loao import manifest_for
    from cm_cli.core.progress import use_reporter

    c_ = get_ctx(ctx)
    opts = resolve_options(ctx, "profile", OPTIONS.values(options), preset=options["preset"])
    manifest_path = manifest_for(features, opts["manifest"])
    config = OPTIONS.config(ProfileConfig, opts, seed=c_.seed)
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
