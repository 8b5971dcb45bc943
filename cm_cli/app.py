"""The root ``cm`` app: global options -> Context, explicit command registration, error handling."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cm_cli import __version__
from cm_cli.commands._common import (
    PANEL_ANALYSIS,
    PANEL_DATA,
    PANEL_MODELLING,
    PANEL_OTHER,
    CmGroup,
    apply_command_table,
    make_app,
)

app = make_app(
    name="cm",
    cls=CmGroup,
    help=(
        "Speech anti-spoofing countermeasure research: "
        "corpora -> degradations -> models -> metrics -> analysis -> report."
    ),
)

# (module under cm_cli.commands, command name, help panel). One line per delivered command.
COMMANDS: list[tuple[str, str, str]] = [
    ("download", "download", PANEL_DATA),
    ("manifest", "manifest", PANEL_DATA),
    ("degrade", "degrade", PANEL_DATA),
    ("embed", "embed", PANEL_MODELLING),
    ("train", "train", PANEL_MODELLING),
    ("eval", "eval", PANEL_MODELLING),
    ("export", "export", PANEL_MODELLING),
    ("loao", "loao", PANEL_ANALYSIS),
    ("probe", "probe", PANEL_ANALYSIS),
    ("cka", "cka", PANEL_ANALYSIS),
    ("profile", "profile", PANEL_ANALYSIS),
    ("patch", "patch", PANEL_ANALYSIS),
    ("report", "report", PANEL_ANALYSIS),
    ("demo", "demo", PANEL_OTHER),
    ("presets", "presets", PANEL_OTHER),
    ("doctor", "doctor", PANEL_OTHER),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cm {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_root: Annotated[
        Optional[Path],
        typer.Option(
            "--data-root",
            help="Corpora live in DATA_ROOT/<corpus> (env CM_DATA_ROOT; default ./data).",
            show_default=False,
        ),
    ] = None,
    runs_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--runs-dir",
            help="Default place for runs and manifests (env CM_RUNS_DIR, RUNS_DIR; default ./runs).",
            show_default=False,
        ),
    ] = None,
    cache_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--cache-dir", help="Cache for on-the-fly degradations and scores (env CM_CACHE_DIR).", show_default=False
        ),
    ] = None,
    device: Annotated[
        Optional[str],
        typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps (env CM_DEVICE).", show_default=False),
    ] = None,
    seed: Annotated[
        Optional[int], typer.Option("--seed", help="Global random seed (env CM_SEED; default 0).", show_default=False)
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option("--workers", help="Worker processes (env CM_WORKERS).", show_default=False)
    ] = None,
    config: Annotated[
        Optional[Path], typer.Option("--config", help="cm.toml to read (default ./cm.toml).", show_default=False)
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine-readable output: one JSON object on stdout.")
    ] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More output (repeatable).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved options and stop.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """cm: build, stress-test and dissect speech deepfake detectors."""
    from cm_cli.core.context import resolve_context

    ctx.obj = resolve_context(
        {
            "data_root": data_root,
            "runs_dir": runs_dir,
            "cache_dir": cache_dir,
            "device": device,
            "seed": seed,
            "workers": workers,
            "config": config,
            "json": json_output,
            "verbose": verbose,
            "quiet": quiet,
            "dry_run": dry_run,
            "debug": debug,
        }
    )
    apply_command_table(ctx, ctx.obj)
    if ctx.obj.device not in ("auto", "cpu") and ctx.invoked_subcommand not in (None, "presets"):
        from cm_cli.core.context import check_device_available

        check_device_available(ctx.obj.device)


def _register() -> None:
    for module_name, name, panel in COMMANDS:
        module = importlib.import_module(f"cm_cli.commands.{module_name}")
        target = getattr(module, "app", None)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name, rich_help_panel=panel)
        else:
            function = getattr(module, module_name)
            app.command(name=name, rich_help_panel=panel, help=function.__doc__)(function)


_register()


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point."""
    app(args=argv, prog_name="cm")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
