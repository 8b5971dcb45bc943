"""`cm download`: fetch corpora (or build the embedded toy corpus) under the data root."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cm_cli.commands._common import ForceOpt, complete_corpus, emit, get_ctx, print_dry_run, rich_reporter


def download(
    ctx: typer.Context,
    corpus: Annotated[Optional[str], typer.Argument(help="Corpus to fetch: toy builds the embedded synthetic corpus.", autocompletion=complete_corpus, show_default=False)] = None,
    size: Annotated[str, typer.Option("--size", help="toy only: small or medium.")] = "small",
    force: ForceOpt = False,
) -> None:
    """Download a corpus into the data root (``toy``: build the synthetic corpus)."""
    from cm_cli.core.errors import UsageError
    from cm_cli.core.progress import use_reporter

    c = get_ctx(ctx)
    if corpus is None:
        raise UsageError("name a corpus to download", "e.g. `cm download toy`")
    if corpus != "toy":
        raise UsageError(f"unknown corpus {corpus!r}", "available here: toy")
    target = c.corpus_root("toy")
    options = {"corpus": corpus, "size": size, "seed": c.seed, "target": str(target)}
    if c.dry_run:
        print_dry_run(c, "download", options)
        return
    from cm_cli.data.corpora.toy import build_toy_corpus

    with use_reporter(rich_reporter(c)):
        info = build_toy_corpus(target, size=size, seed=c.seed, force=force)
    payload = {"corpus": "toy", "root": str(info.root), "size": info.size, "seed": info.seed,
               "built": info.built, "n_files": info.n_files, "counts": info.counts}
    verb = "built" if info.built else "already present"
    emit(c, payload, f"toy corpus ({info.size}, seed {info.seed}) {verb} at {info.root}: {info.n_files} files")
