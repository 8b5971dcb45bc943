"""`cm presets`: list the shipped presets or show one."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cm_cli.commands._common import complete_preset, console, emit, get_ctx, make_app

app = make_app(help="List presets, or show one.", no_args_is_help=False, add_completion=False)


@app.callback(invoke_without_command=True)
def presets(
    ctx: typer.Context,
    command: Annotated[Optional[str], typer.Option("--command", help="Only presets of this command.")] = None,
) -> None:
    """List presets (name, command, description)."""
    if ctx.invoked_subcommand is not None:
        return
    from cm_cli.core.presets import list_presets

    c = get_ctx(ctx)
    items = list_presets(command)
    payload = [
        {"name": p.name, "command": p.command, "description": p.description, "aliases": list(p.aliases)} for p in items
    ]

    def human() -> None:
        from rich.table import Table

        table = Table(show_header=True, header_style="bold")
        for column in ("name", "command", "description"):
            table.add_column(column)
        for p in items:
            alias = f" (alias {', '.join(p.aliases)})" if p.aliases else ""
            table.add_row(p.name + alias, p.command, p.description)
        console().print(table)

    emit(c, {"presets": payload}, human)


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Preset name, alias or YAML path.", autocompletion=complete_preset)],
) -> None:
    """Show one preset's options."""
    from cm_cli.core.presets import load_preset

    c = get_ctx(ctx)
    p = load_preset(name)
    payload = {
        "name": p.name,
        "command": p.command,
        "description": p.description,
        "aliases": list(p.aliases),
        "options": p.options,
        "path": str(p.path),
    }

    def human() -> None:
        import yaml

        console().print(f"[bold]{p.name}[/]  (cm {p.command})  {p.description}")
        console().print(yaml.safe_dump(p.options, sort_keys=False).rstrip())

    emit(c, payload, human)
