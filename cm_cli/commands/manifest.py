"""`cm manifest`: one Parquet table of every utterance of a corpus, all splits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cm_cli.commands._common import Corpus, ForceOpt, OutDir, emit, get_ctx, print_dry_run, rich_reporter, console


def manifest(
    ctx: typer.Context,
    corpus: Annotated[Corpus, typer.Option("--corpus", "-c", help="Corpus under the data root.")] = Corpus.asvspoof5,
    out: OutDir = None,
    validate: Annotated[bool, typer.Option("--validate", help="Check every audio file exists and probe duration and sample rate.")] = False,
    subset: Annotated[Optional[int], typer.Option("--subset", help="Keep N utterances, stratified by split, label, attack and codec.", min=1)] = None,
    force: ForceOpt = False,
) -> None:
    """Build a manifest (utterances, labels, attacks, codecs, splits) from a corpus's protocols."""
    from cm_cli.core.progress import use_reporter
    from cm_cli.data.manifests import make_manifest

    c = get_ctx(ctx)
    out_dir = out or c.runs_dir / "manifests" / corpus.value
    options = {"corpus": corpus.value, "out": str(out_dir), "validate": validate, "subset": subset, "seed": c.seed}
    if c.dry_run:
        print_dry_run(c, "manifest", options)
        return
    with use_reporter(rich_reporter(c)):
        result = make_manifest(corpus.value, out_dir, data_root=c.data_root, corpus_root=c.corpus_root(corpus.value),
                               validate=validate, subset=subset, seed=c.seed, workers=c.workers, force=force)
    payload = {"manifest": str(result.path), "corpus": corpus.value, "skipped": result.skipped, **result.counts}
    emit(c, payload, lambda: _print_counts(result))


def _print_counts(result) -> None:
    from rich.table import Table

    out = console()
    table = Table(title=f"{result.path}" + ("  (already built: reused)" if result.skipped else ""), title_justify="left")
    for column in ("split", "n", "bonafide", "spoof", "speakers", "attacks", "codecs"):
        table.add_column(column, justify="right" if column not in ("split", "attacks", "codecs") else "left")
    for split, info in result.counts.get("splits", {}).items():
        attacks = " ".join(f"{k}:{v}" for k, v in info["attacks"].items())
        codecs = " ".join(f"{k}:{v}" for k, v in info["codecs"].items())
        table.add_row(split, str(info["n"]), str(info["bonafide"]), str(info["spoof"]), str(info["speakers"]), attacks, codecs)
    out.print(table)
