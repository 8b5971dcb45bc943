"""`cm train`: train a countermeasure with any registered method into a run directory."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from cm_cli.commands._common import (
    Corpus,
    ForceOpt,
    ManifestOpt,
    OutDir,
    PresetOpt,
    console,
    emit,
    err_console,
    get_ctx,
    print_dry_run,
    resolve_options,
    rich_reporter,
)
from cm_cli.models.registry import DEFAULT_BACKBONE


def _method_enum():
    """``--method`` choices: the training-method registry (cm_cli.training.methods), no torch import."""
    from cm_cli.training.methods import LOSSES, method_names

    names = method_names()
    return enum.Enum("Method", {n: n for n in names}, type=str), enum.Enum("Loss", {n: n for n in LOSSES}, type=str)


Method, Loss = _method_enum()


class FeatureNorm(str, enum.Enum):
    auto = "auto"
    standardize = "standardize"
    none = "none"


class Schedule(str, enum.Enum):
    constant = "constant"
    linear = "linear"
    ganin = "ganin"
    exponential = "exponential"


def _complete_backbone(incomplete: str) -> list[str]:
    from cm_cli.models.registry import backbone_names

    return [n for n in backbone_names() if n.startswith(incomplete)]


def _seeds(text: str | None) -> list[int] | None:
    from cm_cli.core.errors import UsageError

    if not text:
        return None
    try:
        seeds = [int(s) for s in str(text).replace(" ", "").split(",") if s]
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds needs distinct integers, got {text!r}")
    return seeds


_NOT_RESOLVED = ("ctx", "preset", "manifest", "out", "resume", "force")


def train(
    ctx: typer.Context,
    method: Annotated[
        Method,
        typer.Option("--method", help=", ".join(m.value for m in Method) + " (training methods, docs/training.md)."),
    ] = Method("erm"),
    loss: Annotated[
        Loss,
        typer.Option(
            "--loss",
            help="Task loss: ce (cross-entropy) or ocsoftmax (one-class softmax; score = cosine to the bona fide direction).",
        ),
    ] = Loss("ce"),
    method_option: Annotated[
        Optional[List[str]],
        typer.Option(
            "--method-option",
            help="A method's option NAME=VALUE (repeatable): coral/mmd weight, mmd estimator=biased|unbiased, "
            "groupdro step.",
            show_default=False,
        ),
    ] = None,
    sam_rho: Annotated[
        Optional[float],
        typer.Option(
            "--sam-rho",
            help="SAM radius (sam 0.05, asam 0.5 by default); with another method, wraps it in SAM.",
            min=0.0,
            show_default=False,
        ),
    ] = None,
    sam_adaptive: Annotated[
        bool,
        typer.Option(
            "--sam-adaptive/--no-sam-adaptive", help="With --sam-rho: ASAM's adaptive radius instead of SAM's."
        ),
    ] = False,
    backbone: Annotated[
        str,
        typer.Option(
            "--backbone",
            "-b",
            help="lcnn, aasist, ssl_aasist, wavlm, w2v2, xlsr, hubert, or a hub id.",
            autocompletion=_complete_backbone,
        ),
    ] = DEFAULT_BACKBONE,
    preset: PresetOpt = None,
    manifest: ManifestOpt = None,
    corpus: Annotated[
        Corpus,
        typer.Option("--corpus", "-c", help="Corpus whose default manifest is used when --manifest is not given."),
    ] = Corpus.asvspoof5,
    out: OutDir = None,
    backbone_id: Annotated[
        Optional[str],
        typer.Option("--backbone-id", help="Hub id or local directory of the backbone weights.", show_default=False),
    ] = None,
    trainable: Annotated[
        Optional[str],
        typer.Option(
            "--trainable", help="SSL: frozen | top:K | transformer | all; others: all | frozen.", show_default=False
        ),
    ] = None,
    pooling: Annotated[
        Optional[str], typer.Option("--pooling", help="SSL pooling: mean, meanstd, attentive.", show_default=False)
    ] = None,
    head: Annotated[
        Optional[str],
        typer.Option(
            "--head", help="SSL projection sizes, e.g. 256 or 256,128 ('none' for no projection).", show_default=False
        ),
    ] = None,
    length_policy: Annotated[
        Optional[str],
        typer.Option(
            "--length-policy",
            help="Validation/inference length policy: full, crop, repeat, zero (backbone default).",
            show_default=False,
        ),
    ] = None,
    max_len: Annotated[
        float, typer.Option("--max-len", help="Seconds: random training crop, and the target of fixed length policies.")
    ] = 4.0,
    epochs: Annotated[int, typer.Option("--epochs", "-e", help="Passes over the training set.", min=1)] = 10,
    max_steps: Annotated[
        Optional[int],
        typer.Option(
            "--max-steps", help="Stop after this many optimiser steps (overrides --epochs).", min=1, show_default=False
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Utterances per forward pass.", min=1)] = 32,
    grad_accum: Annotated[int, typer.Option("--grad-accum", help="Forward passes per optimiser step.", min=1)] = 1,
    lr: Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate (cosine decay after warm-up).")] = 1e-4,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay (matrices only).")] = 1e-2,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps", help="Linear learning-rate warm-up steps.", min=0)] = 0,
    clip_grad: Annotated[float, typer.Option("--clip-grad", help="Gradient norm clipping (0: off).", min=0.0)] = 1.0,
    class_weighting: Annotated[
        bool,
        typer.Option(
            "--class-weighting/--no-class-weighting", help="Weight the cross-entropy by inverse class frequency."
        ),
    ] = False,
    augment: Annotated[
        Optional[str],
        typer.Option(
            "--augment",
            help="On-the-fly augmentation policy: inline ('clean:0.3, mp3:kbps=32:0.7'), YAML file or degrade preset.",
            show_default=False,
        ),
    ] = None,
    augment_manifest: Annotated[
        Optional[Path],
        typer.Option(
            "--augment-manifest",
            help="Pre-rendered variants from `cm degrade --variants` (domain column = condition).",
            show_default=False,
        ),
    ] = None,
    features: Annotated[
        Optional[List[Path]],
        typer.Option(
            "--features",
            help="Train a head on `cm embed --pooling meanstd` directories (no audio, no backbone); repeat it to fuse several tables, joined on utt_id.",
            show_default=False,
        ),
    ] = None,
    feature_norm: Annotated[
        FeatureNorm,
        typer.Option(
            "--feature-norm",
            help="--features inputs: standardise each column by the training rows' mean and sd (auto: feature-set tables such as prosody only).",
        ),
    ] = FeatureNorm.auto,
    domain_column: Annotated[
        Optional[List[str]],
        typer.Option(
            "--domain-column",
            help="DANN: manifest column of domain labels (repeatable: one head each).",
            show_default=False,
        ),
    ] = None,
    lambda_schedule: Annotated[
        Schedule,
        typer.Option("--lambda-schedule", help="GRL coefficient: constant, linear, ganin (alias exponential)."),
    ] = Schedule.ganin,
    lambda_max: Annotated[float, typer.Option("--lambda-max", help="Largest GRL coefficient.", min=0.0)] = 1.0,
    lambda_warmup: Annotated[
        int, typer.Option("--lambda-warmup", help="Steps with the GRL coefficient held at 0.", min=0)
    ] = 0,
    domain_loss_weight: Annotated[
        float, typer.Option("--domain-loss-weight", help="Weight of the domain losses (separate from lambda).", min=0.0)
    ] = 1.0,
    domain_lr_mult: Annotated[
        float,
        typer.Option(
            "--domain-lr-mult", help="Learning-rate multiplier of the domain heads (a stronger adversary).", min=0.0
        ),
    ] = 1.0,
    domain_hidden: Annotated[
        int, typer.Option("--domain-hidden", help="Hidden units of each domain head (0: a linear head).", min=0)
    ] = 128,
    val_every: Annotated[int, typer.Option("--val-every", help="Validate every N steps (0: every epoch).", min=0)] = 0,
    patience: Annotated[
        Optional[int],
        typer.Option(
            "--patience", help="Early stopping after N validations without improvement.", min=1, show_default=False
        ),
    ] = None,
    coded_dev_manifest: Annotated[
        Optional[Path],
        typer.Option(
            "--coded-dev-manifest", help="Also validate on this (degraded) manifest's dev split.", show_default=False
        ),
    ] = None,
    train_split: Annotated[str, typer.Option("--train-split", help="Manifest split to train on.")] = "train",
    dev_split: Annotated[str, typer.Option("--dev-split", help="Manifest split to validate on.")] = "dev",
    seeds: Annotated[
        Optional[str],
        typer.Option("--seeds", help="Comma-separated seeds: one run per seed in OUT/seed_<s>.", show_default=False),
    ] = None,
    save_frozen: Annotated[
        bool, typer.Option("--save-frozen", help="Also store frozen pretrained weights in checkpoints.")
    ] = False,
    bf16: Annotated[bool, typer.Option("--bf16/--no-bf16", help="bf16 autocast on CUDA.")] = True,
    grad_checkpointing: Annotated[
        bool,
        typer.Option(
            "--grad-checkpointing/--no-grad-checkpointing",
            help="Recompute trainable SSL layers in backward (less memory, +10-30% step time).",
        ),
    ] = False,
    log_to: Annotated[
        Optional[List[str]],
        typer.Option(
            "--log-to",
            help="Also log to an experiment tracker: tensorboard, wandb, mlflow (repeatable; pip install 'cm-cli[NAME]').",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option(
            "--workers",
            "-j",
            help="Data-loading worker processes (default: the global --workers when set, else 0 = in process); any number gives the same weights.",
            min=0,
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from checkpoints/last.pt.")
    ] = False,
    force: ForceOpt = False,
) -> None:
    """Train a countermeasure (ERM, DANN, SAM, ASAM, CORAL, MMD, GroupDRO) and write a run directory."""
    values = {k: v for k, v in locals().items() if k not in _NOT_RESOLVED}
    c = get_ctx(ctx)
    o = resolve_options(ctx, "train", values, preset=preset)
    # the two augmentation sources exclude each other: one given on the command line
    # replaces the other coming from a preset or cm.toml, instead of clashing with it
    if augment_manifest is not None and augment is None:
        o["augment"] = None
    elif augment is not None and augment_manifest is None:
        o["augment_manifest"] = None
    _run(c, o, manifest=manifest, out=out, resume=resume, force=force, preset=preset)


def _run(c, o: dict, *, manifest, out, resume: bool, force: bool, preset) -> None:
    """Check the invocation, then train (one run, one per seed, or a feature-cache head) and print."""
    from cm_cli.core.errors import UsageError
    from cm_cli.core.progress import use_reporter
    from cm_cli.training.distributed import distributed
    from cm_cli.training.run import default_run_name, train_run, train_seeds
    from cm_cli.training.signals import preemption_guard

    seed_list = _seeds(o["seeds"])
    config = _train_config(o, c)
    if resume and out is None:
        raise UsageError("--resume needs --out RUN_DIR (the run to continue)")
    if resume and seed_list:
        raise UsageError("--resume continues one run; give --out RUN_DIR/seed_<s> instead of --seeds")
    name = default_run_name(config)
    run_dir = out or c.runs_dir / (name if not seed_list else name.replace(f"-seed{config.seed}", "-seeds"))
    options = {
        **config.to_dict(),
        "manifest": str(manifest) if manifest else f"<default {config.corpus}>",
        "out": str(run_dir),
        "seeds": seed_list,
        "preset": preset,
    }
    if c.dry_run:
        print_dry_run(c, "train", options)
        return
    if manifest is None:
        from cm_cli.data.manifests import default_manifest

        manifest = default_manifest(c, config.corpus)
    with distributed(c.device) as (dist, device):
        if dist.world_size == 1:
            device = str(c.torch_device())
        show = dist.is_main
        _warn_codecs(config, device, show)
        kwargs = dict(
            data_root=c.data_root, device=device, force=force, cache_dir=c.cache_dir, dist=dist, preset=preset
        )
        with preemption_guard() as stop, use_reporter(rich_reporter(c) if show else None):
            if config.features:
                outcomes = _train_features(config, seed_list, manifest, run_dir, device, force, preset, resume)
            elif seed_list:
                outcomes = train_seeds(config, seed_list, manifest, run_dir, stop_requested=stop, **kwargs)
            else:
                outcomes = [train_run(config, manifest, run_dir, resume=resume, stop_requested=stop, **kwargs)]
    if not show:
        return
    payload = {
        "runs": [
            {"run_dir": str(o.run_dir), "status": o.status, "resumed": o.resumed, "skipped": o.skipped, **o.summary}
            for o in outcomes
        ]
    }
    emit(c, payload["runs"][0] if len(outcomes) == 1 else payload, lambda: _print(outcomes, stop.signal))


def _train_features(config, seed_list, manifest_path, run_dir, device, force, preset, resume=False) -> list:
    from dataclasses import replace

    from cm_cli.core.errors import UsageError
    from cm_cli.training.features import train_features_run

    if resume:
        raise UsageError("--resume is not used with --features: a feature-head run is short; run it again with --force")
    if config.coded_dev_manifest:
        raise UsageError("--coded-dev-manifest is not used with --features", "embed the coded dev set and score it")
    if not seed_list:
        return [
            train_features_run(
                config, config.features, manifest_path, run_dir, device=device, force=force, preset=preset
            )
        ]
    return [
        train_features_run(
            replace(config, seed=s),
            config.features,
            manifest_path,
            run_dir / f"seed_{s}",
            device=device,
            force=force,
            preset=preset,
        )
        for s in seed_list
    ]


def _warn_codecs(config, device: str, show: bool) -> None:
    from cm_cli.training.data import on_the_fly_codec_warning

    warning = on_the_fly_codec_warning(config, device)
    if warning and show:
        err_console().print(f"[yellow]warning:[/] {warning}")


def _train_config(o: dict, c):
    """The run's ``TrainConfig`` from resolved options; types are checked there (presets, cm.toml)."""
    from cm_cli.training.config import TrainConfig

    enum_value = lambda v: v.value if isinstance(v, enum.Enum) else v  # noqa: E731
    path = lambda v: str(Path(v).resolve()) if v else None  # noqa: E731
    workers = c.data_workers(o["workers"], unset=0)  # the global --workers only where one was given
    same = (
        "backbone",
        "backbone_id",
        "train_split",
        "dev_split",
        "trainable",
        "pooling",
        "head",
        "length_policy",
        "max_len",
        "epochs",
        "max_steps",
        "batch_size",
        "grad_accum",
        "lr",
        "weight_decay",
        "warmup_steps",
        "clip_grad",
        "class_weighting",
        "augment",
        "lambda_max",
        "lambda_warmup",
        "domain_loss_weight",
        "domain_lr_mult",
        "domain_hidden",
        "val_every",
        "patience",
        "save_frozen",
        "bf16",
        "sam_rho",
        "sam_adaptive",
    )
    return TrainConfig(
        method=enum_value(o["method"]),
        corpus=enum_value(o["corpus"]),
        loss=enum_value(o["loss"]),
        method_options=_method_options(o["method_option"]),
        lambda_schedule=enum_value(o["lambda_schedule"]),
        domain_columns=list(o["domain_column"] or []),
        augment_manifest=path(o["augment_manifest"]),
        coded_dev_manifest=path(o["coded_dev_manifest"]),
        features=_features(o["features"]),
        feature_norm=enum_value(o["feature_norm"]),
        log_to=list(o["log_to"] or []),
        model_options={"gradient_checkpointing": True} if o["grad_checkpointing"] else {},
        seed=c.seed,
        workers=workers,
        **{k: o[k] for k in same},
    ).validate()


def _features(value) -> str | None:
    """``--features`` (repeatable; a preset may give one path or a list) as resolved paths joined by ","."""
    if not value:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return ",".join(str(Path(v).resolve()) for v in items)


def _method_options(items) -> dict:
    from cm_cli.training.methods.base import parse_method_options

    return parse_method_options(items)


def _print(outcomes, signal_name) -> None:
    from rich.table import Table

    out = console()
    for o in outcomes:
        s = o.summary
        if o.skipped:
            out.print(f"[green]{o.run_dir}[/]: already trained with these options (reused)")
            continue
        if o.status == "interrupted":
            out.print(
                f"[yellow]interrupted[/] ({signal_name or 'stop requested'}) at step {s.get('step')}: "
                f"state saved to {o.run_dir}/checkpoints/last.pt; continue with "
                f"`cm train --resume --out {o.run_dir}` and the same options"
            )
            continue
        table = Table(title=f"{o.run_dir}  ({o.status}{', resumed' if o.resumed else ''})", title_justify="left")
        table.add_column("item")
        table.add_column("value")
        best = s.get("best") or {}
        table.add_row("steps / epochs", f"{s.get('step')} / {s.get('epoch')}")
        if best.get("eer") is not None:
            table.add_row(
                "best dev EER / minDCF", f"{best['eer']:.4f} / {best['min_dcf']:.4f} (step {best.get('step')})"
            )
        last = s.get("last") or {}
        table.add_row(
            "last loss (task / domain)",
            f"{last.get('loss_task', float('nan')):.4f} / {last.get('loss_domain', float('nan')):.4f}",
        )
        adversary = s.get("adversary") or {}
        if adversary:
            table.add_row("adversary reaches", ", ".join(adversary.get("groups", [])))
        rates = (s.get("augmentation") or {}).get("rates") or {}
        if rates:
            table.add_row("realised augmentation", ", ".join(f"{k} {v:.0%}" for k, v in rates.items()))
        if s.get("n_failed_audio"):
            table.add_row("unreadable audio skipped", str(s["n_failed_audio"]))
        for note in s.get("notes", []):
            table.add_row("note", note)
        table.add_row("time", f"{s.get('seconds', 0):.1f} s")
        out.print(table)
