"""`cm doctor`: what this install can do, and what each missing piece changes."""

from __future__ import annotations

import typer

from cm_cli.commands._common import console, emit, get_ctx


def doctor(ctx: typer.Context) -> None:
    """Check torch, devices, codec providers, renderable conditions, optional extras and disk space."""
    from cm_cli.doctor import as_jsonable, diagnose

    c = get_ctx(ctx)
    places = {
        "data root": c.data_root,
        "runs dir": c.runs_dir,
        "cache dir": c.cache_dir,
        "HF_HOME": c.env.get("HF_HOME"),
    }
    report = diagnose(places)
    payload = as_jsonable(report.to_dict())
    emit(c, payload, lambda: _print(report))


def _mark(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]--[/]"


def _print(report) -> None:
    from rich.markup import escape

    out = console()
    t = report.torch
    if t.get("installed"):
        build = f"CUDA {t['cuda_build']}" if t.get("cuda_build") else "CPU-only build"
        out.print(f"[bold]torch[/] {t['version']} ({build}); devices: {', '.join(t['devices'])}")
    else:
        out.print(f"[bold]torch[/] [red]not importable[/]: {escape(t.get('error', ''))}")
    out.print("[bold]codec providers[/] (asked in this order):")
    for p in report.providers:
        kind = "in-process" if p["in_process"] else p["origin"]
        out.print(f"  {escape(p['provider'])} {escape(f'[{kind}]')}: {len(p['speech_encoders'])} of cm's encoders")
    codecs = report.codecs
    ok = [x["codec"] for x in codecs if x["available"]]
    out.print(
        f"[bold]codecs[/] {len(ok)}/{len(codecs)}: {', '.join(ok)}"
        + "".join(f"\n  {_mark(False)} {x['codec']}: needs {x['needs']}" for x in codecs if not x["available"])
    )
    out.print(
        "[bold]ASVspoof 5 conditions[/]: "
        + "  ".join(f"{x['condition']} {_mark(x['available'])}" for x in report.conditions)
    )
    for x in report.conditions:
        if not x["available"]:
            out.print(f"  {x['condition']} {escape(x['description'])}: {escape(x['missing'])}")
    out.print(
        "[bold]toy conditions[/] (cm demo): "
        + ", ".join(
            f"{x['condition']} {_mark(x['available'])}{' never seen' if x['never_seen'] else ''}"
            for x in report.toy_conditions
        )
    )
    out.print("[bold]extras[/]: " + "  ".join(f"{x['package']} {_mark(x['installed'])}" for x in report.extras))
    for place in report.storage:
        free = "?" if place["free_gb"] is None else f"{place['free_gb']} GB free"
        state = "" if place["exists"] else " (not created yet)"
        out.print(
            f"[bold]{place['name']}[/] {escape(place['path'])}{state}: {free}"
            + ("" if place["writable"] else " [red]not writable[/]")
        )
    if not report.findings:
        out.print("[green]Nothing is missing.[/]")
        return
    out.print("[bold]What is missing, and what it changes:[/]")
    for f in report.findings:
        out.print(f"  - {escape(f.what)}: {escape(f.effect)}.\n    fix: {escape(f.fix)}")
