"""`cm demo`: a small study on the embedded toy corpus (ERM, ERM-aug, DANN over seeds), one step at a time."""

from __future__ import annotations

from pathlib import Path

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
from cm_cli.commands._spec import Opt, Options


def _methods(value):
    from cm_cli.recipes.demo import demo_methods

    return demo_methods(value)


# each option once: its flag, type, default and help, the cm.toml key, and the DemoSettings field it sets
OPTIONS = Options(
    Opt("out", Path, None, "Study directory (default: RUNS_DIR/demo).", flags=("-o",), show_default=False, field=None),
    Opt("size", str, "small", "Toy corpus size: tiny, small or medium.", convert=str),
    Opt(
        "seeds",
        int,
        3,
        "Training seeds per method (1 for a quick look; 3 to tell effects from seed noise).",
        minimum=1,
        convert=int,
    ),
    Opt("epochs", int, None, "Training epochs (default: the toy presets').", minimum=1, show_default=False),
    Opt(
        "methods",
        str,
        None,
        "Comma-separated methods of the study: erm, erm_aug, dann, sam, coral, mmd, groupdro (default erm,erm_aug,dann).",
        show_default=False,
        convert=_methods,
    ),
    Opt("force", annotation=ForceOpt, default=False, convert=bool),
)


@OPTIONS.command
def demo(ctx: typer.Context, **options) -> None:
    """Run the study on the toy corpus: data, ERM / ERM-aug / DANN training over seeds, evaluation, analysis, report."""
    from cm_cli.core.progress import use_reporter
    from cm_cli.recipes.demo import DemoSettings, run_demo

    c = get_ctx(ctx)
    opts = resolve_options(ctx, "demo", OPTIONS.values(options))
    target = Path(opts["out"]) if opts["out"] else c.runs_dir / "demo"
    settings = OPTIONS.config(DemoSettings, opts, seed=c.seed, workers=c.workers)
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
