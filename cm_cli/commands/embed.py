"""`cm embed`: layer-wise utterance embeddings of a manifest, one vector column per layer."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from cm_cli.commands._common import (
    ForceOpt,
    ManifestOpt,
    OutDir,
    ShardOpt,
    SplitOpt,
    console,
    emit,
    get_ctx,
    print_dry_run,
    resolve_manifest,
    resolve_options,
    rich_reporter,
)
from cm_cli.commands._spec import Opt, Options


class Pooling(str, enum.Enum):
    mean = "mean"
    meanstd = "meanstd"


def _complete_backbone(incomplete: str) -> list[str]:
    from cm_cli.featuresets.registry import feature_set_names
    from cm_cli.models.registry import backbone_names

    return [n for n in [*backbone_names(), *feature_set_names()] if n.startswith(incomplete)]


# each option once: its flag, type, default and help, and the cm.toml key (embed_manifest takes them as keywords)
OPTIONS = Options(
    Opt("manifest", annotation=ManifestOpt, resolved=False),
    Opt(
        "backbone",
        str,
        None,
        "Registry name (wavlm, w2v2, xlsr, hubert, aasist, …), hub id or model directory, or a feature set (prosody, reconstruction, transcript; docs/features.md); default: the checkpoint's own.",
        flags=("-b",),
        complete=_complete_backbone,
        resolved=False,
    ),
    Opt("out", annotation=OutDir, resolved=False),
    Opt(
        "backbone_id",
        str,
        None,
        "Hub id or local directory of the SSL weights (AASIST: the official .pth; reconstruction: a codec directory; transcript: a Whisper directory).",
        resolved=False,
    ),
    Opt(
        "checkpoint",
        Path,
        None,
        "A `cm train` run directory or checkpoint (adds pooled and pre_logit), the official AASIST .pth, or an SSL-AASIST checkpoint (with --backbone-id: its XLS-R directory).",
        resolved=False,
    ),
    Opt(
        "model",
        str,
        None,
        "Embed with a zoo model (`cm download --list-models`), a `cm export` folder or a hub id, instead of --checkpoint.",
        show_default=False,
        resolved=False,
    ),
    Opt("layers", str, "all", "all, or layer numbers like 0,6,12."),
    Opt("pooling", Pooling, Pooling.mean, "Pool frames of SSL layers: mean, or meanstd (mean and standard deviation)."),
    Opt("split", annotation=SplitOpt),
    Opt("batch_size", int, 16, "Utterances per forward pass (batched by length).", minimum=1),
    Opt(
        "max_seconds",
        float,
        None,
        "Centre-crop utterances to this many seconds (default: full length).",
        minimum=0.01,
    ),
    Opt(
        "fp32",
        bool,
        False,
        "Store float32 and run without autocast (default float16 storage, bf16/fp16 autocast on CUDA).",
    ),
    Opt("shard", annotation=ShardOpt, resolved=False),
    Opt(
        "workers",
        int,
        None,
        "Audio decoding worker processes (default: the global --workers; 0 = in process).",
        flags=("-j",),
        minimum=0,
        resolved=False,
    ),
    Opt(
        "bitrates",
        str,
        None,
        "--backbone reconstruction: codec bitrates in kbps, e.g. 1.5,6 (one layer each; default: the lowest and the highest).",
    ),
    Opt("force", annotation=ForceOpt, default=False, resolved=False),
)


@OPTIONS.command
def embed(ctx: typer.Context, **options) -> None:
    """Embed every utterance of a manifest at every backbone layer (embeddings.parquet, float16)."""
    from cm_cli.core.errors import UsageError
    from cm_cli.core.progress import use_reporter
    from cm_cli.core.shard import resolve_shard

    c = get_ctx(ctx)
    opts = resolve_options(ctx, "embed", OPTIONS.values(options))
    manifest, backbone, backbone_id, out = (options[k] for k in ("manifest", "backbone", "backbone_id", "out"))
    checkpoint, model, shard, workers = (options[k] for k in ("checkpoint", "model", "shard", "workers"))
    if model is not None:
        from cm_cli.models.zoo import resolve_model_option

        checkpoint = resolve_model_option(model, checkpoint, cache_dir=c.cache_dir, option=("checkpoint", "model"))
    if backbone is None and checkpoint is None:
        raise UsageError(
            "no model to embed with", "give --backbone NAME (e.g. wavlm), or --checkpoint RUN_DIR of `cm train`"
        )
    if out is None:
        raise UsageError("--out is required", "e.g. --out runs/embeddings/wavlm")
    manifest_path = resolve_manifest(c, manifest, upstream=checkpoint, build=False)
    the_shard = resolve_shard(shard)
    pool = Pooling(opts["pooling"]).value
    record = {
        "layers": opts["layers"],
        "pooling": pool,
        "split": opts["split"],
        "max_seconds": opts["max_seconds"],
        "fp32": bool(opts["fp32"]),
        "backbone": backbone,
        "backbone_id": backbone_id,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "manifest": str(manifest_path),
        "out": str(out),
        "shard": str(the_shard),
        "batch_size": opts["batch_size"],
    }
    feature_options = {"bitrates": opts["bitrates"]} if opts.get("bitrates") else None
    if feature_options:
        record["bitrates"] = opts["bitrates"]
    if c.dry_run:
        print_dry_run(c, "embed", record)
        return
    manifest_path = resolve_manifest(c, manifest, upstream=checkpoint)
    from cm_cli.embedding import embed_manifest

    with use_reporter(rich_reporter(c)):
        result = embed_manifest(
            manifest_path,
            out,
            backbone=backbone,
            backbone_id=backbone_id,
            checkpoint=checkpoint,
            layers=opts["layers"],
            pooling=pool,
            split=opts["split"],
            batch_size=int(opts["batch_size"]),
            max_seconds=opts["max_seconds"],
            fp32=bool(opts["fp32"]),
            shard=the_shard,
            data_root=c.data_root,
            device=c.torch_device(),
            workers=c.data_workers(workers),
            force=options["force"],
            feature_options=feature_options,
        )
    payload = {
        "embeddings": str(result.path),
        "skipped": result.skipped,
        "n_rows": result.n_rows,
        "n_failed": result.n_failed,
        "failures": str(result.failures) if result.failures else None,
        **{
            k: result.summary.get(k)
            for k in ("backbone", "checkpoint", "pooling", "dtype", "dims", "notes", "utterances_per_second", "flags")
        },
    }
    emit(c, payload, lambda: _print(result))


def _print(result) -> None:
    out = console()
    s = result.summary
    if result.skipped:
        out.print(f"{result.path}: already complete with these options, skipped ({result.n_rows} rows)")
        return
    dims = s.get("dims", {})
    shown = ", ".join(f"{k}:{v}" for k, v in list(dims.items())[:4]) + (" …" if len(dims) > 4 else "")
    out.print(
        f"{result.path}: {result.n_rows} utterances x {len(dims)} columns ({shown}), {s.get('dtype')}, "
        f"{s.get('backbone')} pooling={s.get('pooling')}, {s.get('utterances_per_second')} utt/s"
    )
    for note in s.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
