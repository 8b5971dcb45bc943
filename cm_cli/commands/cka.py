"""`cm cka`: linear CKA between every pair of layers of one or two embedding sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cm_cli.commands._common import (
    ForceOpt,
    OutDir,
    PresetOpt,
    console,
    emit,
    get_ctx,
    print_dry_run,
    resolve_options,
    rich_reporter,
)
from cm_cli.commands._spec import Opt, Options

# each option once: its flag, type, default and help, the preset/cm.toml key, and the CkaConfig field it sets
OPTIONS = Options(
    Opt("out", annotation=OutDir, field=None),
    Opt(
        "estimator",
        str,
        None,
        "HSIC estimator: biased or debiased (unbiased HSIC). Default: biased for full batch, debiased with --batch-size (biased is refused there).",
        show_default=False,
        convert=lambda value: str(value) if value else None,
    ),
    Opt("layers_a", str, None, "Layers of A (index, name, comma list; default all).", flags=("--layer",)),
    Opt("layers_b", str, None, "Layers of B (default: as --layers-a)."),
    Opt(
        "batch_size", int, None, "Minibatch CKA: unbiased HSIC accumulated over random batches of this size (large N)."
    ),
    Opt("preset", annotation=PresetOpt, field=None, resolved=False),
    Opt("force", annotation=ForceOpt, default=False, field=None),
)


@OPTIONS.command
def cka(
    ctx: typer.Context,
    embeddings_a: Annotated[Path, typer.Argument(help="Embeddings (set A).", show_default=False)],
    embeddings_b: Annotated[
        Optional[Path], typer.Argument(help="Embeddings (set B; default A itself).", show_default=False)
    ] = None,
    **options,
) -> None:
    """CKA matrix and diagonal between layers; identical inputs are flagged (CKA 1 by construction)."""
    from cm_cli.analysis.cka import CkaConfig, run_cka
    from cm_cli.analysis.probes import set_name
    from cm_cli.core.progress import use_reporter

    c_ = get_ctx(ctx)
    opts = resolve_options(ctx, "cka", OPTIONS.values(options), preset=options["preset"])
    config = OPTIONS.config(CkaConfig, opts, seed=c_.seed)
    name = set_name(embeddings_a) + (f"_vs_{set_name(embeddings_b)}" if embeddings_b else "")
    out_dir = Path(opts["out"]) if opts["out"] else c_.runs_dir / "analysis" / "cka" / name
    if c_.dry_run:
        print_dry_run(
            c_,
            "cka",
            {
                "embeddings_a": str(embeddings_a),
                "embeddings_b": str(embeddings_b) if embeddings_b else None,
                "out": str(out_dir),
                "config": config.options(),
            },
        )
        return
    with use_reporter(rich_reporter(c_)):
        summary = run_cka(embeddings_a, embeddings_b, out=out_dir, config=config, force=bool(opts["force"]))
    emit(c_, {"out": str(out_dir), **summary}, lambda: _print(out_dir, summary))


def _print(out_dir: Path, summary: dict) -> None:
    from rich.table import Table

    out = console()
    if summary.get("skipped"):
        out.print(f"[dim]{out_dir}: already complete with these options (reused)[/]")
    table = Table(title=f"CKA diagonal ({summary['estimator']}, n={summary['n_rows']})", title_justify="left")
    if summary.get("measures"):
        out.print(f"[dim]{summary['measures']}[/]")
    table.add_column("layer")
    table.add_column("CKA", justify="right")
    for layer, value in summary["diagonal"].items():
        mark = "  (identical)" if layer in summary.get("identical_layers", []) else ""
        table.add_row(layer, f"{value:.4f}{mark}")
    out.print(table)
    for note in summary.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
    out.print(f"wrote {out_dir}")
