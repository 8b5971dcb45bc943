"""`cm degrade`: codecs, channels, noise and reverberation, for one file or a whole manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from cm_cli.commands._common import (
    ForceOpt,
    ManifestOpt,
    OutDir,
    PresetOpt,
    ShardOpt,
    SplitOpt,
    complete_codec,
    complete_spec,
    console,
    emit,
    err_console,
    get_ctx,
    print_dry_run,
    resolve_options,
    rich_reporter,
)
from cm_cli.commands._spec import Opt, Options
from cm_cli.core.errors import UsageError


def _compose(
    codec: Optional[str], kbps: Optional[str], chain: list[str], snr: Optional[float], noise_dir: Optional[Path]
) -> list[str]:
    """Turn the sugar options into spec strings (``--codec mp3 --kbps 32`` -> ``mp3:kbps=32``)."""
    if kbps is not None and not codec:
        raise UsageError("--kbps needs --codec", "e.g. --codec mp3 --kbps 32, or --chain mp3:kbps=32")
    if codec and chain:
        raise UsageError(
            "give either --codec or --chain, not both", "put the codec into the chain: --chain mp3:kbps=32+telephony"
        )
    specs = list(chain)
    if codec:
        specs = [codec.strip().lower() + (f":kbps={kbps.strip()}" if kbps is not None else "")]
    if snr is not None or noise_dir is not None:
        noise = "noise" + (f":snr={snr:g}" if snr is not None else "") + (f":dir={noise_dir}" if noise_dir else "")
        specs = [f"{s}+{noise}" for s in specs] if specs else [noise]
    return specs


# each option once: its flag, type, default and help, and the preset/cm.toml key (degrade has no config dataclass)
OPTIONS = Options(
    Opt("codec", str, None, "Codec (sugar for --chain CODEC:kbps=KBPS).", complete=complete_codec),
    Opt("kbps", str, None, "Codec bitrate in kbit/s ('16|32' sweeps in corpus mode)."),
    Opt(
        "chain",
        List[str],
        None,
        "Degradation spec, e.g. mp3:kbps=32+noise:snr=10 (repeatable; '|' sweeps).",
        complete=complete_spec,
    ),
    Opt("snr", float, None, "Add noise at this SNR (dB, on active speech)."),
    Opt("noise_dir", Path, None, "Folder of noise recordings (MUSAN layout) for --snr."),
    Opt(
        "condition",
        str,
        None,
        "ASVspoof 5 condition C01-C11 (quality level drawn uniformly per utterance; see --list).",
    ),
    Opt("sample_rate", int, None, "Resample the input to this rate first (default: keep).", minimum=1000),
    Opt("manifest", annotation=ManifestOpt, resolved=False),
    Opt("out", annotation=OutDir, resolved=False),
    Opt("policy", str, None, "Augmentation policy: preset name, YAML file, or 'clean:0.3, mp3:kbps=32:0.7'."),
    Opt("variants", int, 1, "Policy draws per utterance in corpus mode.", minimum=1),
    Opt(
        "workers",
        int,
        None,
        "Worker processes (default: the global --workers).",
        flags=("-j",),
        minimum=1,
        resolved=False,
    ),
    Opt(
        "batch_size",
        int,
        None,
        "Neural codecs in corpus mode: utterances per model call (default: 16 on a GPU, 1 on the CPU).",
        minimum=1,
    ),
    Opt("shard", annotation=ShardOpt, resolved=False),
    Opt("split", annotation=SplitOpt),
    Opt("ffmpeg", str, None, "ffmpeg binary to try first (env CM_FFMPEG).", resolved=False),
    Opt(  # the parameter is list_ (list is a builtin), the flag --list
        "list_",
        annotation=Annotated[
            bool, typer.Option("--list", help="List degradations, their parameters and which ffmpeg provides them.")
        ],
        default=False,
        resolved=False,
    ),
    Opt("preset", annotation=PresetOpt, resolved=False),
    Opt("force", annotation=ForceOpt, default=False, resolved=False),
    Opt(
        "verify",
        bool,
        False,
        "Corpus rerun: re-check finished outputs by sha256 (size is always checked).",
        resolved=False,
    ),
)


@OPTIONS.command
def degrade(
    ctx: typer.Context,
    input: Annotated[
        Optional[Path], typer.Argument(help="Audio file to degrade (ad hoc mode).", show_default=False)
    ] = None,
    output: Annotated[
        Optional[Path],
        typer.Argument(help="Output file; its suffix sets the format (.wav, .flac, ...).", show_default=False),
    ] = None,
    **options,
) -> None:
    """Degrade audio with codecs, channels, noise or reverberation: one file (IN OUT) or a manifest (--manifest --out)."""
    from cm_cli.degrade.ffmpeg import set_preferred_ffmpeg
    from cm_cli.degrade.neural import set_encodec_device

    c = get_ctx(ctx)
    set_encodec_device(c.device)
    # an unset --chain is resolved as [] (a preset or cm.toml may give a list)
    opts = resolve_options(
        ctx, "degrade", OPTIONS.values({**options, "chain": options["chain"] or []}), preset=options["preset"]
    )
    if isinstance(opts.get("policy"), (list, dict)):  # a policy preset holds the policy itself
        from cm_cli.degrade.policy import parse_policy

        opts["policy"] = parse_policy(opts["policy"], name=options["preset"] or "preset").canonical()
    manifest, out, workers, shard, ffmpeg = (options[k] for k in ("manifest", "out", "workers", "shard", "ffmpeg"))
    set_preferred_ffmpeg(ffmpeg)
    if options["list_"]:
        _list(c)
        return
    specs = _compose(opts["codec"], opts["kbps"], list(opts["chain"]), opts["snr"], opts["noise_dir"])
    chosen = sum(bool(x) for x in (specs, opts["condition"], opts["policy"]))
    if chosen == 0:
        raise UsageError(
            "nothing to apply", "give --codec/--kbps, --chain, --snr, --condition or --policy (see --list)"
        )
    if manifest is not None or out is not None:
        if input is not None or output is not None:
            raise UsageError("give either IN OUT (one file) or --manifest and --out (a corpus), not both")
        if manifest is None or out is None:
            raise UsageError("corpus mode needs both --manifest and --out")
        _corpus(
            c, manifest, out, specs, opts, c.data_workers(workers), shard, ffmpeg, options["force"], options["verify"]
        )
        return
    if input is None or output is None:
        raise UsageError("ad hoc mode needs IN and OUT", "e.g. cm degrade in.wav out.wav --codec mp3 --kbps 32")
    if opts["policy"]:
        raise UsageError("--policy works in corpus mode (--manifest, --out)")
    _one_file(c, input, output, specs, opts)


def _one_file(c, input: Path, output: Path, specs: list[str], opts: dict) -> None:
    from cm_cli.degrade.corpus import degrade_file

    if len(specs) + bool(opts["condition"]) > 1:
        raise UsageError("one file takes one condition", "give one --chain (no '|' sweep), or use corpus mode")
    level = None
    if opts["condition"]:
        from cm_cli.degrade.conditions import get_condition, pick_level

        condition = get_condition(opts["condition"])
        level = pick_level(condition.id, seed=c.seed, utt_id=input.stem)
        spec = level.parsed().canonical()
    else:
        spec = specs[0]
    if c.dry_run:
        print_dry_run(c, "degrade", {**opts, "input": str(input), "output": str(output), "spec": spec})
        return
    result = degrade_file(input, output, spec, seed=c.seed, sample_rate=opts["sample_rate"])
    if not c.json:
        for warning in result.warnings:
            err_console().print(f"[yellow]warning:[/] {warning}")
    from cm_cli.degrade.conditions import spec_bitrate_kbps

    payload = {
        "output": str(result.output),
        "degradation": result.spec,
        "sample_rate": result.sample_rate,
        "duration": round(result.duration, 4),
        "clipped_samples": result.clipped,
        "warnings": result.warnings,
        "condition": condition.id if level else None,
        "codec_q": str(level.q) if level else None,
        "bitrate_kbps": spec_bitrate_kbps(result.spec),
    }
    where = f"{condition.id} level {level.q}: " if level else ""
    emit(c, payload, f"{result.output}  [dim]{where}{result.spec}, {result.sample_rate} Hz, {result.duration:.2f} s[/]")


def _corpus(
    c,
    manifest: Path,
    out: Path,
    specs: list[str],
    opts: dict,
    workers: int,
    shard_text,
    ffmpeg,
    force,
    verify: bool = False,
) -> None:
    from cm_cli.core.progress import use_reporter
    from cm_cli.core.shard import resolve_shard
    from cm_cli.degrade.corpus import degrade_manifest

    shard = resolve_shard(shard_text)
    if c.dry_run:
        print_dry_run(
            c,
            "degrade",
            {
                **opts,
                "specs": specs,
                "manifest": str(manifest),
                "out": str(out),
                "workers": workers,
                "shard": str(shard),
            },
        )
        return
    with use_reporter(rich_reporter(c)):
        result = degrade_manifest(
            manifest,
            out,
            specs=specs,
            condition=opts["condition"],
            policy=opts["policy"],
            variants=opts["variants"],
            seed=c.seed,
            workers=workers,
            shard=shard,
            split=opts["split"],
            data_root=c.data_root,
            sample_rate=opts["sample_rate"],
            ffmpeg=ffmpeg,
            force=force,
            verify=verify,
            batch_size=opts["batch_size"],
        )
    if not c.json:
        stderr = err_console()
        if result.redone:
            stderr.print(
                f"[yellow]warning:[/] {len(result.redone)} finished output(s) were missing or changed "
                f"and were redone (first: {result.redone[0]})"
            )
        if result.n_clipped_files:
            stderr.print(
                f"[yellow]warning:[/] {result.n_clipped_samples} sample(s) clipped in {result.n_clipped_files} file(s)"
            )
        for text, count in result.warnings.items():
            stderr.print(f"[yellow]warning:[/] {text} ({count} file(s))")
        if result.n_failed:
            stderr.print(f"[yellow]warning:[/] {result.n_failed} file(s) failed, listed in {result.failures}")
    payload = {
        "manifest": str(result.manifest),
        "out": str(result.out_dir),
        "written": result.n_written,
        "skipped": result.n_skipped,
        "failed": result.n_failed,
        "failures": str(result.failures) if result.failures else None,
        "clipped_files": result.n_clipped_files,
        "conditions": result.conditions,
        "already_done": result.already_done,
        "redone": result.redone,
    }
    human = (
        f"{result.manifest}  [dim]{result.n_written} written, {result.n_skipped} skipped, {result.n_failed} failed"
        + ("; already complete" if result.already_done else "")
        + "[/]"
    )
    emit(c, payload, human)


def _list(c) -> None:
    from cm_cli.degrade.conditions import CONDITIONS
    from cm_cli.degrade.ffmpeg import providers
    from cm_cli.degrade.registry import REGISTRY, describe_provider

    rows = []
    for name, deg in REGISTRY.items():
        available, provider = describe_provider(deg)
        params = ", ".join(f"{p.name}={p.default}" if p.default is not None else p.name for p in deg.params)
        rows.append(
            {
                "name": name,
                "kind": deg.kind,
                "params": params,
                "available": available,
                "provider": provider,
                "description": deg.description,
            }
        )
    conditions = [_condition_row(v, {r["name"]: r for r in rows}) for v in CONDITIONS.values()]
    binaries = [{"path": b.path, "origin": b.origin} for b in providers()]
    payload = {"degradations": rows, "conditions": conditions, "ffmpeg": binaries}

    def human() -> None:
        from rich.table import Table

        table = Table(title="degradations", title_justify="left")
        for column in ("name", "kind", "parameters", "provided by"):
            table.add_column(column)
        for row in rows:
            style = "" if row["available"] else "red"
            table.add_row(row["name"], row["kind"], row["params"], row["provider"], style=style)
        out = console()
        out.print(table)
        ctable = Table(
            title="ASVspoof 5 conditions (--condition; CODEC_Q = level, drawn uniformly)", title_justify="left"
        )
        for column in ("id", "codec", "band", "rate", "levels (q: spec)", "source", "provided by"):
            ctable.add_column(column, overflow="fold")
        for row in conditions:
            levels = "\n".join(f"{lv['q']}: {lv['spec']}" for lv in row["levels"])
            ctable.add_row(
                row["id"],
                f"{row['codec']}\n{row['description']}",
                row["bandwidth"],
                row["codec_rate"],
                levels,
                f"{row['source']}; levels: {row['level_source']}",
                row["provided_by"],
                style="" if row["available"] else "red",
            )
        out.print(ctable)
        out.print(
            "codec providers (ffmpeg binaries, PyAV in-process), in order of preference: "
            + ", ".join(
                f"{b['path']} (in-process)" if b["origin"] == "pyav" else f"{b['path']} [{b['origin']}]"
                for b in binaries
            )
        )

    emit(c, payload, human)


def _condition_row(condition, degradations: dict) -> dict:
    """One condition for --list: its levels, sources, and what provides each degradation it uses."""
    providers = [degradations[name] for name in condition.provider if name in degradations]
    return {
        "id": condition.id,
        "description": condition.description,
        "codec": condition.codec,
        "bandwidth": condition.bandwidth,
        "codec_rate": condition.codec_rate,
        "kbps": condition.kbps_range,
        "levels": [{"q": lv.q, "spec": lv.spec, "bitrate_kbps": lv.kbps, "note": lv.note} for lv in condition.levels],
        "source": condition.source,
        "level_source": condition.level_source,
        "available": all(p["available"] for p in providers),
        "provided_by": "; ".join(f"{p['name']}: {p['provider']}" for p in providers),
    }
