"""`cm report`: collect the artifacts of a study and write report.md, report.html, figures and LaTeX tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List

import typer

from cm_cli.commands._common import OutDir, console, emit, get_ctx, print_dry_run


def report(
    ctx: typer.Context,
    dirs: Annotated[
        List[Path],
        typer.Argument(
            help="Directories to search recursively for run, eval and analysis outputs.", show_default=False
        ),
    ],
    out: OutDir = None,
    latex: Annotated[
        bool, typer.Option("--latex", help="Also write every table as a booktabs .tex file under OUT/tables.")
    ] = False,
    title: Annotated[str, typer.Option("--title", help="Report title.")] = "Countermeasure report",
) -> None:
    """Write a Markdown + self-contained HTML report (figures, tables, provenance) from cm artifacts."""
    from cm_cli.report.render import build_report

    c = get_ctx(ctx)
    out_dir = out or c.runs_dir / "report"
    options = {"dirs": [str(d) for d in dirs], "out": str(out_dir), "latex": latex, "title": title}
    if c.dry_run:
        print_dry_run(c, "report", options)
        return
    result = build_report(dirs, out_dir, latex=latex, title=title, argv=None)
    emit(c, result.to_dict(), lambda: _print(result))


def _print(result) -> None:
    from rich.markup import escape

    out = console()
    found = ", ".join(f"{n} {k}" for k, n in result.counts.items() if n)
    out.print(f"found {found} ({len(result.corpora)} corpus group(s): {', '.join(result.corpora) or '-'})")
    for line in result.skipped:
        out.print(f"[dim]skipped:[/] {escape(line)}")
    out.print(f"{len(result.figures)} figures, {len(result.tables)} LaTeX files")
    out.print(f"[bold]{escape(str(result.html))}[/]")
    out.print(escape(str(result.markdown)))
