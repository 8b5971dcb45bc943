"""`cm patch`: activation patching from a donor run into a base run of the same architecture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cm_cli.commands._common import (
    ForceOpt, ManifestOpt, OutDir, PresetOpt, SplitOpt, console, emit, get_ctx, print_dry_run, resolve_options,
    rich_reporter,
)
from cm_cli.core.errors import UsageError


def patch(
    ctx: typer.Context,
    base: Annotated[Optional[Path], typer.Option("--base", help="Base run directory (e.g. ERM) or checkpoint.", show_default=False)] = None,
    donor: Annotated[Optional[Path], typer.Option("--donor", help="Donor run directory (e.g. DANN) or checkpoint.", show_default=False)] = None,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Base as a zoo model name, `cm export` folder or hub id (instead of --base).", show_default=False)] = None,
    donor_model: Annotated[Optional[str], typer.Option("--donor-model", help="Donor as a zoo model name, `cm export` folder or hub id (instead of --donor).", show_default=False)] = None,
    manifest: ManifestOpt = None,
    out: OutDir = None,
    sites: Annotated[Optional[str], typer.Option("--sites", help="Comma list of sites (default every site: layer_XX, layer_weighting, pooled, projection).")] = None,
    split: SplitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Utterances per forward pass.")] = 16,
    probe_target: Annotated[str, typer.Option("--probe-target", help="Manifest column probed on the final representation.")] = "codec",
    probe_group_by: Annotated[str, typer.Option("--probe-group-by", help="Probe folds grouped by this column ('none': rows).")] = "speaker",
    folds: Annotated[int, typer.Option("--folds", help="Probe cross-validation folds.")] = 3,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Paired bootstrap resamples for the EER-change CIs.")] = 500,
    max_rows: Annotated[Optional[int], typer.Option("--max-rows", help="Use a seeded random subset of this many utterances.")] = None,
    allow_unaligned: Annotated[bool, typer.Option("--allow-unaligned", help="Patch runs that do not share their initialisation (no common pretrained backbone or init seed); the output is flagged aligned: false.")] = False,
    cluster_by: Annotated[str, typer.Option("--cluster-by", help="Bootstrap unit of the EER-change intervals: a manifest column ('none': trials).")] = "speaker",
    preset: PresetOpt = None,
    force: ForceOpt = False,
) -> None:
    """Run the base model with the donor's activation at each site: EER, minDCF and codec-probe changes.

    Base and donor must share their initialisation (same pretrained backbone or same init seed) unless
    --allow-unaligned. Runs on the global --device.
    """
    from cm_cli.analysis.patching import PatchConfig, run_patching
    from cm_cli.core.progress import use_reporter

    c_ = get_ctx(ctx)
    if base_model is not None or donor_model is not None:
        from cm_cli.models.zoo import resolve_model_option

        base = resolve_model_option(base_model, base, cache_dir=c_.cache_dir, flag="--base")
        donor = resolve_model_option(donor_model, donor, cache_dir=c_.cache_dir, flag="--donor")
    if base is None or donor is None:
        raise UsageError("--base and --donor are both required", "e.g. cm patch --base runs/erm --donor runs/dann --manifest M")
    if manifest is None:
        raise UsageError("--manifest is required", "the utterances both runs are scored on")
    values = {"sites": sites, "split": split, "batch_size": batch_size, "probe_target": probe_target,
              "probe_group_by": probe_group_by, "folds": folds, "bootstrap": bootstrap, "max_rows": max_rows,
              "allow_unaligned": allow_unaligned, "cluster_by": cluster_by, "out": out, "force": force}
    opts = resolve_options(ctx, "patch", values, preset=preset)
    group = None if str(opts["probe_group_by"]).lower() == "none" else str(opts["probe_group_by"])
    unit = None if str(opts["cluster_by"]).lower() == "none" else str(opts["cluster_by"])
    config = PatchConfig(sites=opts["sites"], split=opts["split"], batch_size=int(opts["batch_size"]),
                         probe_target=str(opts["probe_target"]), probe_group_by=group, folds=int(opts["folds"]),
                         n_boot=int(opts["bootstrap"]), seed=c_.seed, max_rows=opts["max_rows"],
                         allow_unaligned=bool(opts["allow_unaligned"]), cluster_by=unit)
    out_dir = Path(opts["out"]) if opts["out"] else c_.runs_dir / "analysis" / "patch" / f"{base.name}_from_{donor.name}"
    if c_.dry_run:
        print_dry_run(c_, "patch", {"base": str(base), "donor": str(donor), "manifest": str(manifest),
                                    "out": str(out_dir), "config": config.options()})
        return
    with use_reporter(rich_reporter(c_)):
        summary = run_patching(base, donor, manifest=manifest, out=out_dir, data_root=c_.data_root, config=config,
                               force=bool(opts["force"]), device=c_.torch_device())
    emit(c_, {"out": str(out_dir), **summary}, lambda: _print(out_dir, summary))


def _print(out_dir: Path, summary: dict) -> None:
    from rich.table import Table

    from cm_cli.core.artifacts import read_table

    out = console()
    if summary.get("skipped"):
        out.print(f"[dim]{out_dir}: already complete with these options (reused)[/]")
    table = read_table(out_dir / "patching.parquet")
    aligned = "" if summary.get("aligned", True) else " [red]UNALIGNED[/]"
    view = Table(title=f"patching {summary['donor']} -> {summary['base']} (EER in points){aligned}", title_justify="left")
    for column in ("site", "EER", "minDCF", "ΔEER", "95% CI", "probe acc", ""):
        view.add_column(column, justify="left" if column in ("site", "") else "right")
    for r in table.itertuples(index=False):
        view.add_row(str(r.site), f"{r.eer:.2f}", f"{r.min_dcf:.3f}", f"{r.delta_eer:+.2f}",
                     f"{r.ci_low:+.2f}–{r.ci_high:+.2f}", "n/a" if r.probe_acc != r.probe_acc else f"{r.probe_acc:.3f}",
                     "no-op (identical)" if r.noop else "")
    out.print(view)
    ci = summary.get("ci") or {}
    if ci:
        out.print(f"[dim]95% intervals: paired bootstrap over {ci.get('n_clusters')} {ci.get('unit')} cluster(s); "
                  f"alignment: {summary.get('alignment')}[/]")
    for note in summary.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
    out.print(f"wrote {out_dir}")
