"""`cm train`: train a countermeasure with any registered method into a run directory."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import List

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
    given_explicitly,
    parse_seeds,
    print_dry_run,
    resolve_options,
    rich_reporter,
)
from cm_cli.commands._spec import Opt, Options
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


def _features(value) -> str | None:
    """``--features`` (repeatable; a preset may give one path or a list) as resolved paths joined by ","."""
    if not value:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return ",".join(str(Path(v).resolve()) for v in items)


def _method_options(items) -> dict:
    from cm_cli.training.methods.base import parse_method_options

    return parse_method_options(items)


def _path(value) -> str | None:
    return str(Path(value).resolve()) if value else None


def _list(value) -> list:
    return list(value or [])


def _model_options(grad_checkpointing) -> dict:
    return {"gradient_checkpointing": True} if grad_checkpointing else {}


# each option once: its flag, type, default and help, the preset/cm.toml key, and the TrainConfig field it sets
# (field=None: not a TrainConfig field); --preset, --manifest, --out, --resume and --force are not preset keys
OPTIONS = Options(
    Opt(
        "method",
        Method,
        Method("erm"),
        ", ".join(m.value for m in Method) + " (training methods, docs/training.md).",
    ),
    Opt(
        "loss",
        Loss,
        Loss("ce"),
        "Task loss: ce (cross-entropy) or ocsoftmax (one-class softmax; score = cosine to the bona fide direction).",
    ),
    Opt(
        "method_option",
        List[str],
        None,
        "A method's option NAME=VALUE (repeatable): coral/mmd weight, mmd estimator=biased|unbiased, groupdro step.",
        show_default=False,
        field="method_options",
        convert=_method_options,
    ),
    Opt(
        "sam_rho",
        float,
        None,
        "SAM radius (sam 0.05, asam 0.5 by default); with another method, wraps it in SAM.",
        minimum=0.0,
        show_default=False,
    ),
    Opt("sam_adaptive", bool, False, "With --sam-rho: ASAM's adaptive radius instead of SAM's.", negatable=True),
    Opt(
        "backbone",
        str,
        DEFAULT_BACKBONE,
        "lcnn, aasist, ssl_aasist, wavlm, w2v2, xlsr, hubert, or a hub id.",
        flags=("-b",),
        complete=_complete_backbone,
    ),
    Opt("preset", annotation=PresetOpt, field=None, resolved=False),
    Opt("manifest", annotation=ManifestOpt, field=None, resolved=False),
    Opt(
        "corpus",
        Corpus,
        Corpus.asvspoof5,
        "Corpus whose default manifest is used when --manifest is not given.",
        flags=("-c",),
    ),
    Opt("out", annotation=OutDir, field=None, resolved=False),
    Opt("backbone_id", str, None, "Hub id or local directory of the backbone weights.", show_default=False),
    Opt("trainable", str, None, "SSL: frozen | top:K | transformer | all; others: all | frozen.", show_default=False),
    Opt("pooling", str, None, "SSL pooling: mean, meanstd, attentive.", show_default=False),
    Opt("head", str, None, "SSL projection sizes, e.g. 256 or 256,128 ('none' for no projection).", show_default=False),
    Opt(
        "length_policy",
        str,
        None,
        "Validation/inference length policy: full, crop, repeat, zero (backbone default).",
        show_default=False,
    ),
    Opt("max_len", float, 4.0, "Seconds: random training crop, and the target of fixed length policies."),
    Opt("epochs", int, 10, "Passes over the training set.", flags=("-e",), minimum=1),
    Opt(
        "max_steps",
        int,
        None,
        "Stop after this many optimiser steps (overrides --epochs).",
        minimum=1,
        show_default=False,
    ),
    Opt("batch_size", int, 32, "Utterances per forward pass.", minimum=1),
    Opt("grad_accum", int, 1, "Forward passes per optimiser step.", minimum=1),
    Opt("lr", float, 1e-4, "Peak AdamW learning rate (cosine decay after warm-up)."),
    Opt("weight_decay", float, 1e-2, "AdamW weight decay (matrices only)."),
    Opt("warmup_steps", int, 0, "Linear learning-rate warm-up steps.", minimum=0),
    Opt("clip_grad", float, 1.0, "Gradient norm clipping (0: off).", minimum=0.0),
    Opt("class_weighting", bool, False, "Weight the cross-entropy by inverse class frequency.", negatable=True),
    Opt(
        "augment",
        str,
        None,
        "On-the-fly augmentation policy: inline ('clean:0.3, mp3:kbps=32:0.7'), YAML file or degrade preset.",
        show_default=False,
    ),
    Opt(
        "augment_manifest",
        Path,
        None,
        "Pre-rendered variants from `cm degrade --variants` (domain column = condition).",
        show_default=False,
        convert=_path,
    ),
    Opt(
        "features",
        List[Path],
        None,
        "Train a head on `cm embed --pooling meanstd` directories (no audio, no backbone); repeat it to fuse several tables, joined on utt_id.",
        show_default=False,
        convert=_features,
    ),
    Opt(
        "feature_norm",
        FeatureNorm,
        FeatureNorm.auto,
        "--features inputs: standardise each column by the training rows' mean and sd (auto: feature-set tables such as prosody only).",
    ),
    Opt(
        "domain_column",
        List[str],
        None,
        "DANN: manifest column of domain labels (repeatable: one head each).",
        show_default=False,
        field="domain_columns",
        convert=_list,
    ),
    Opt(
        "lambda_schedule",
        Schedule,
        Schedule.ganin,
        "GRL coefficient: constant, linear, ganin (alias exponential).",
    ),
    Opt("lambda_max", float, 1.0, "Largest GRL coefficient.", minimum=0.0),
    Opt("lambda_warmup", int, 0, "Steps with the GRL coefficient held at 0.", minimum=0),
    Opt("domain_loss_weight", float, 1.0, "Weight of the domain losses (separate from lambda).", minimum=0.0),
    Opt(
        "domain_lr_mult",
        float,
        1.0,
        "Learning-rate multiplier of the domain heads (a stronger adversary).",
        minimum=0.0,
    ),
    Opt("domain_hidden", int, 128, "Hidden units of each domain head (0: a linear head).", minimum=0),
    Opt("val_every", int, 0, "Validate every N steps (0: every epoch).", minimum=0),
    Opt(
        "patience",
        int,
        None,
        "Early stopping after N validations without improvement.",
        minimum=1,
        show_default=False,
    ),
    Opt(
        "coded_dev_manifest",
        Path,
        None,
        "Also validate on this (degraded) manifest's dev split.",
        show_default=False,
        convert=_path,
    ),
    Opt("train_split", str, "train", "Manifest split to train on."),
    Opt("dev_split", str, "dev", "Manifest split to validate on."),
    Opt(
        "seeds",
        str,
        None,
        "Comma-separated seeds: one run per seed in OUT/seed_<s>.",
        show_default=False,
        field=None,
    ),
    Opt("save_frozen", bool, False, "Also store frozen pretrained weights in checkpoints."),
    Opt("bf16", bool, True, "bf16 autocast on CUDA.", negatable=True),
    Opt(
        "grad_checkpointing",
        bool,
        False,
        "Recompute trainable SSL layers in backward (less memory, +10-30% step time).",
        negatable=True,
        field="model_options",
        convert=_model_options,
    ),
    Opt(
        "log_to",
        List[str],
        None,
        "Also log to an experiment tracker: tensorboard, wandb, mlflow (repeatable; pip install 'cm-cli[NAME]').",
        show_default=False,
        convert=_list,
    ),
    Opt(
        "log_every",
        int,
        1,
        "Send every N-th step's history row to the --log-to trackers (history.parquet keeps every step).",
        minimum=1,
    ),
    # a TrainConfig field, set by _train_config: the global --workers applies where this one is not given
    Opt(
        "workers",
        int,
        None,
        "Data-loading worker processes (default: the global --workers when set, else 0 = in process); any number gives the same weights.",
        flags=("-j",),
        minimum=0,
        show_default=False,
        field=None,
    ),
    Opt("resume", bool, False, "Continue the run in --out from checkpoints/last.pt.", field=None, resolved=False),
    Opt("force", annotation=ForceOpt, default=False, field=None, resolved=False),
)


@OPTIONS.command
def train(ctx: typer.Context, **options) -> None:
    """Train a countermeasure (ERM, DANN, SAM, ASAM, CORAL, MMD, GroupDRO) and write a run directory."""
    c = get_ctx(ctx)
    preset = options["preset"]
    o = resolve_options(ctx, "train", OPTIONS.values(options), preset=preset)
    # the two augmentation sources exclude each other: one given on the command line
    # replaces the other coming from a preset or cm.toml, instead of clashing with it
    typed = {name: given_explicitly(ctx, name) for name in ("augment", "augment_manifest")}
    if typed["augment_manifest"] and not typed["augment"]:
        o["augment"] = None
    elif typed["augment"] and not typed["augment_manifest"]:
        o["augment_manifest"] = None
    _run(
        c,
        o,
        manifest=options["manifest"],
        out=options["out"],
        resume=options["resume"],
        force=options["force"],
        preset=preset,
    )


def _run(c, o: dict, *, manifest, out, resume: bool, force: bool, preset) -> None:
    """Check the invocation, then train (one run, one per seed, or a feature-cache head) and print."""
    from cm_cli.core.errors import UsageError
    from cm_cli.core.progress import use_reporter
    from cm_cli.training.distributed import distributed
    from cm_cli.training.run import default_run_name, train_run, train_seeds
    from cm_cli.training.signals import preemption_guard

    seed_list = list(parse_seeds(o["seeds"], "--seeds", distinct=True)) if o["seeds"] else None
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

    workers = c.data_workers(o["workers"], unset=0)  # the global --workers only where one was given
    return OPTIONS.config(TrainConfig, o, seed=c.seed, workers=workers).validate()


def _last_losses(last: dict) -> str:
    """The task loss and each term the method logged (domain, coral, mmd, ...): no column a method never fills."""
    import math

    terms = {"task": last.get("loss_task")}
    terms.update(
        (name[len("loss_") :], value)
        for name, value in last.items()
        if name.startswith("loss_") and name != "loss_task" and not name.startswith("loss_domain_")
    )
    shown = [f"{k} {v:.4f}" for k, v in terms.items() if isinstance(v, (int, float)) and math.isfinite(v)]
    return ", ".join(shown) or "n/a"


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
        table.add_row("last loss", _last_losses(s.get("last") or {}))
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
