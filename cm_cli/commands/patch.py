"""`cm patch`: activation patching from a donor run into a base run of the same architecture."""

from __future__ import annotations

from pathlib import Path

import typer

from cm_cli.commands._common import (
    ForceOpt,
    ManifestOpt,
    OutDir,
    PresetOpt,
    SplitOpt,
    console,
    emit,
    get_ctx,
    print_dry_run,
    resolve_options,
    rich_reporter,
)
from cm_cli.commands._spec import Opt, Options
from cm_cli.core.errors import UsageError


def _none(value):
    return None if str(value).lower() == "none" else str(value)


# each option once: its flag, type, default and help, the preset/cm.toml key, and the PatchConfig field it sets
OPTIONS = Options(
    Opt(
        "base",
        Path,
        None,
        "Base run directory (e.g. ERM) or checkpoint.",
        show_default=False,
        field=None,
        resolved=False,
    ),
    Opt(
        "donor",
        Path,
        None,
        "Donor run directory (e.g. DANN) or checkpoint.",
        show_default=False,
        field=None,
        resolved=False,
    ),
    Opt(
        "base_model",
        str,
        None,
        "Base as a zoo model name, `cm export` folder or hub id (instead of --base).",
        show_default=False,
        field=None,
        resolved=False,
    ),
    Opt(
        "donor_model",
        str,
        None,
        "Donor as a zoo model name, `cm export` folder or hub id (instead of --donor).",
        show_default=False,
        field=None,
        resolved=False,
    ),
    Opt("manifest", annotation=ManifestOpt, field=None, resolved=False),
    Opt("out", annotation=OutDir, field=None),
    Opt("sites", str, None, "Comma list of sites (default every site: layer_XX, layer_weighting, pooled, projection)."),
    Opt("split", annotation=SplitOpt),
    Opt("batch_size", int, 16, "Utterances per forward pass.", convert=int),
    Opt("probe_target", str, "codec", "Manifest column probed on the final representation.", convert=str),
    Opt("probe_group_by", str, "speaker", "Probe folds grouped by this column ('none': rows).", convert=_none),
    Opt("folds", int, 3, "Probe cross-validation folds.", convert=int),
    Opt("bootstrap", int, 500, "Paired bootstrap resamples for the EER-change CIs.", field="n_boot", convert=int),
    Opt("max_rows", int, None, "Use a seeded random subset of this many utterances."),
    Opt(
        "allow_unaligned",
        bool,
        False,
        "Patch runs that do not share their initialisation (no common pretrained backbone or init seed); the output is flagged aligned: false.",
        convert=bool,
    ),
    Opt(
        "cluster_by",
        str,
        "speaker",
        "Bootstrap unit of the EER-change intervals: a manifest column ('none': trials).",
        convert=_none,
    ),
    Opt("preset", annotation=PresetOpt, field=None, resolved=False),
    Opt("force", annotation=ForceOpt, default=False, field=None),
)


@OPTIONS.command
def patch(ctx: typer.Context, **options) -> None:
    """Run the base model with the donor's activation at each site: EER, minDCF and codec-probe changes.

    Base and donor must share their initialisation (same pretrained backbone or same init seed) unless
    --allow-unaligned. Runs on the global --device, decoding audio with the global --workers.
    """
    from cm_cli.analysis.patching import PatchConfig, run_patching
    from cm_cli.core.progress import use_reporter

    c_ = get_ctx(ctx)
    base, donor, manifest = options["base"], options["donor"], options["manifest"]
    if options["base_model"] is not None or options["donor_model"] is not None:
        from cm_cli.models.zoo import resolve_model_option

        base = resolve_model_option(options["base_model"], base, cache_dir=c_.cache_dir, option=("base", "base_model"))
        donor = resolve_model_option(
            options["donor_model"], donor, cache_dir=c_.cache_dir, option=("donor", "donor_model")
        )
    if base is None or donor is None:
        raise UsageError(
            "--base and --donor are both required", "e.g. cm patch --base runs/erm --donor runs/dann --manifest M"
        )
    if manifest is None:
        raise UsageError("--manifest is required", "the utterances both runs are scored on")
    opts = resolve_options(ctx, "patch", OPTIONS.values(options), preset=options["preset"])
    config = OPTIONS.config(PatchConfig, opts, seed=c_.seed)
    out_dir = (
        Path(opts["out"]) if opts["out"] else c_.runs_dir / "analysis" / "patch" / f"{base.name}_from_{donor.name}"
    )
    if c_.dry_run:
        print_dry_run(
            c_,
            "patch",
            {
                "base": str(base),
                "donor": str(donor),
                "manifest": str(manifest),
                "out": str(out_dir),
                "config": config.options(),
            },
        )
        return
    with use_reporter(rich_reporter(c_)):
        summary = run_patching(
            base,
            donor,
            manifest=manifest,
            out=out_dir,
            data_root=c_.data_root,
            config=config,
            force=bool(opts["force"]),
            device=c_.torch_device(),
            workers=c_.data_workers(unset=0),
        )
    emit(c_, {"out": str(out_dir), **summary}, lambda: _print(out_dir, summary))


def _print(out_dir: Path, summary: dict) -> None:
    from rich.table import Table

    from cm_cli.core.artifacts import read_table

    out = console()
    if summary.get("skipped"):
        out.print(f"[dim]{out_dir}: already complete with these options (reused)[/]")
    table = read_table(out_dir / "patching.parquet")
    aligned = "" if summary.get("aligned", True) else " [red]UNALIGNED[/]"
    view = Table(
        title=f"patching {summary['donor']} -> {summary['base']} (EER in points){aligned}", title_justify="left"
    )
    for column in ("site", "EER", "minDCF", "ΔEER", "95% CI", "probe acc", ""):
        view.add_column(column, justify="left" if column in ("site", "") else "right")
    for r in table.itertuples(index=False):
        view.add_row(
            str(r.site),
            f"{r.eer:.2f}",
            f"{r.min_dcf:.3f}",
            f"{r.delta_eer:+.2f}",
            f"{r.ci_low:+.2f}–{r.ci_high:+.2f}",
            "n/a" if r.probe_acc != r.probe_acc else f"{r.probe_acc:.3f}",
            "no-op (identical)" if r.noop else "",
        )
    out.print(view)
    ci = summary.get("ci") or {}
    if ci:
        out.print(
            f"[dim]95% intervals: paired bootstrap over {ci.get('n_clusters')} {ci.get('unit')} cluster(s); "
            f"alignment: {summary.get('alignment')}[/]"
        )
    for note in summary.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
    out.print(f"wrote {out_dir}")
