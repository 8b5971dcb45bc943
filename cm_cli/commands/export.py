"""`cm export`: a trained run as a Hugging Face-style model folder with its model card (optionally pushed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cm_cli.commands._common import ForceOpt, console, emit, get_ctx, print_dry_run

__all__ = ["export"]


def export(
    ctx: typer.Context,
    run: Annotated[
        Path,
        typer.Argument(
            help="A `cm train` run directory (or a checkpoint, or any model `cm eval --run` reads).", show_default=False
        ),
    ],
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="The model folder to write (model.safetensors, config.json, README.md).",
            show_default=False,
        ),
    ] = None,
    search: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--search",
            help="Also look for `cm eval` results of this run under this folder (repeatable; the run and the runs dir are always searched).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="Model name on the card (default: the run folder's name).", show_default=False),
    ] = None,
    licence: Annotated[
        Optional[str],
        typer.Option(
            "--licence", "--license", help="Licence identifier for the card (e.g. mit, cc-by-4.0).", show_default=False
        ),
    ] = None,
    notes: Annotated[
        Optional[str],
        typer.Option(
            "--notes", help="A paragraph for the card (what the model is, what not to use it for).", show_default=False
        ),
    ] = None,
    push: Annotated[
        Optional[str],
        typer.Option(
            "--push",
            help="Upload the folder to this Hub model repository (org/name); needs a configured token.",
            show_default=False,
        ),
    ] = None,
    endpoint: Annotated[
        Optional[str],
        typer.Option(
            "--endpoint",
            help="Hub API endpoint for --push (default HF_ENDPOINT or huggingface.co).",
            show_default=False,
        ),
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="With --push: create the repository private.")] = False,
    force: ForceOpt = False,
) -> None:
    """Export a run as a model folder with a model card (model-index of every metric cm computed for it)."""
    from cm_cli.core.errors import UsageError

    c = get_ctx(ctx)
    if out is None:
        raise UsageError("--out is required", "e.g. cm export runs/erm --out models/erm")
    roots = [*(search or []), c.runs_dir]
    options = {
        "run": str(run),
        "out": str(out),
        "search": [str(p) for p in roots],
        "name": name,
        "licence": licence,
        "push": push,
        "endpoint": endpoint,
        "private": private,
    }
    if c.dry_run:
        print_dry_run(c, "export", options)
        return
    from cm_cli.models.export import export_run, hub_token, push_export

    token = hub_token(push) if push else None  # refused before anything is written
    result = export_run(run, out, search=roots, name=name, licence=licence, notes=notes, force=force)
    payload = {
        "out": str(result.out),
        "files": result.files,
        "skipped": result.done,
        "evaluations": [e["path"] for e in result.evaluations],
        "pushed": None,
    }
    if push:
        payload["pushed"] = push_export(result.out, push, token=token, endpoint=endpoint, private=private)

    def human() -> None:
        cons = console()
        verb = "already exported" if result.done else "exported"
        cons.print(
            f"{verb} {run} -> {result.out} ({', '.join(result.files)}); "
            f"model card lists {len(result.evaluations)} evaluation(s)"
        )
        for path in payload["evaluations"]:
            cons.print(f"  {path}")
        if payload["pushed"]:
            cons.print(f"pushed to {payload['pushed']}")

    emit(c, payload, human)
