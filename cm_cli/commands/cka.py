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


def cka(
    ctx: typer.Context,
    embeddings_a: Annotated[Path, typer.Argument(help="Embeddings (set A).", show_default=False)],
    embeddings_b: Annotated[Optional[Path], typer.Argument(help="Embeddings (set B; default A itself).", show_default=False)] = None,
    out: OutDir = None,
    estimator: Annotated[Optional[str], typer.Option("--estimator", help="HSIC estimator: biased or debiased (unbiased HSIC). Default: biased for full batch, debiased with --batch-size (biased is refused there).", show_default=False)] = None,
    layers_a: Annotated[Optional[str], typer.Option("--layers-a", "--layer", help="Layers of A (index, name, comma list; default all).")] = None,
    layers_b: Annotated[Optional[str], typer.Option("--layers-b", help="Layers of B (default: as --layers-a).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Minibatch CKA: unbiased HSIC accumulated over random batches of this size (large N).")] = None,
    preset: PresetOpt = None,
    force: ForceOpt = False,
) -> None:
    """CKA matrix and diagonal between layers; identical inputs are flagged (CKA 1 by construction)."""
    from cm_cli.analysis.cka import CkaConfig, run_cka
    from cm_cli.analysis.probes import set_name
    from cm_cli.core.progress import use_reporter

    c_ = get_ctx(ctx)
    values = {"estimator": estimator, "layers_a": layers_a, "layers_b": layers_b, "batch_size": batch_size,
              "out": out, "force": force}
    opts = resolve_options(ctx, "cka", values, preset=preset)
    config = CkaConfig(estimator=str(opts["estimator"]) if opts["estimator"] else None, layers_a=opts["layers_a"], layers_b=opts["layers_b"],
                       batch_size=opts["batch_size"], seed=c_.seed)
    name = set_name(embeddings_a) + (f"_vs_{set_name(embeddings_b)}" if embeddings_b else "")
    out_dir = Path(opts["out"]) if opts["out"] else c_.runs_dir / "analysis" / "cka" / name
    if c_.dry_run:
        print_dry_run(c_, "cka", {"embeddings_a": str(embeddings_a), "embeddings_b": str(embeddings_b) if embeddings_b else None,
                                  "out": str(out_dir), "config": config.options()})
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
