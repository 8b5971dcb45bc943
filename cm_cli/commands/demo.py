"""`cm demo`: a small study on the embedded toy corpus (ERM, ERM-aug, DANN over seeds), one step at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cm_cli.commands._common import (
    ForceOpt,
    console,
    emit,
    err_console,
    get_ctx,
    print_dry_run,
    resolve_options,
    rich_reporter,
)


def demo(
    ctx: typer.Context,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Study directory (default: RUNS_DIR/demo).", show_default=False),
    ] = None,
    size: Annotated[str, typer.Option("--size", help="Toy corpus size: tiny, small or medium.")] = "small",
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds", min=1, help="Training seeds per method (1 for a quick look; 3 to tell effects from seed noise)."
        ),
    ] = 3,
    epochs: Annotated[
        Optional[int],
        typer.Option("--epochs", min=1, help="Training epochs (default: the toy presets').", show_default=False),
    ] = None,
    methods: Annotated[
        Optional[str],
        typer.Option(
            "--methods",
            help="Comma-separated methods of the study: erm, erm_aug, dann, sam, coral, mmd, groupdro (default erm,erm_aug,dann).",
            show_default=False,
        ),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Run the study on the toy corpus: data, ERM / ERM-aug / DANN training over seeds, evaluation, analysis, report."""
    from cm_cli.core.progress import use_reporter
    from cm_cli.recipes.demo import DemoSettings, demo_methods, run_demo

    c = get_ctx(ctx)
    opts = resolve_options(
        ctx, "demo", {"out": out, "size": size, "seeds": seeds, "epochs": epochs, "force": force, "methods": methods}
    )
    target = Path(opts["out"]) if opts["out"] else c.runs_dir / "demo"
    settings = DemoSettings(
        size=str(opts["size"]),
        seed=c.seed,
        seeds=int(opts["seeds"]),
        workers=c.workers,
        epochs=opts["epochs"],
        force=bool(opts["force"]),
        methods=demo_methods(opts["methods"]),
    )
    if c.dry_run:
        print_dry_run(
            c,
            "demo",
            {
                "out": str(target),
                "size": settings.size,
                "seeds": settings.train_seeds,
                "epochs": settings.epochs,
                "seed": c.seed,
                "methods": list(settings.methods),
            },
        )
        return
    show = not (c.json or c.quiet)

    def on_step(step) -> None:
        if show:
            state = "[dim]reused[/]" if step.skipped else "[green]done[/]"
            note = f"  [dim]{step.note}[/]" if step.note else ""
            err_console().print(f"{state} {step.name:<24} {step.seconds:7.1f} s{note}")

    with use_reporter(rich_reporter(c)):
        result = run_demo(
            target,
            data_root=c.data_root,
            settings=settings,
            device=c.device,
            torch_device=c.torch_device(),
            cache_dir=c.cache_dir,
            on_step=on_step,
        )
    payload = result.to_dict()

    def human() -> None:
        text = result.summary.get("text", "")
        if text:
            console().print(text, markup=False, highlight=False)
        console().print(f"report: {result.report_html}  ({payload['seconds']:.0f} s)")

    emit(c, payload, human)
