"""The training driver: ERM or DANN, resumable to the bit on CPU, pre-emptible, optionally distributed.

``fit`` trains one model into a run directory's ``checkpoints/`` and returns a
``TrainResult``; it never prints. Each concern has its own module: the step
(``step``), model selection (``selection``), checkpoints and resumption
(``checkpointing``, ``state``), signals (``signals``) and the history schema
(``history``); this module only wires them together over one ``TrainState``.
Data-side randomness is seeded per (seed, epoch, row) (``cm_cli.training.data``), and
the data loader draws its seeds from a private generator, so the global RNG only
drives the model (dropout) and is restored on resume; any number of loader
workers gives the same batches.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from cm_cli.training.config import TrainConfig
from cm_cli.training.data import TrainData
from cm_cli.training.history import HISTORY_COLUMNS, history_columns, record_dev, write_history
from cm_cli.training.signals import preemption_guard
from cm_cli.training.state import TrainState

__all__ = [
    "TrainResult",
    "DistInfo",
    "fit",
    "preemption_guard",
    "HISTORY_COLUMNS",
    "history_columns",
    "build_model_config",
]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # complete | early_stopped | interrupted
    step: int
    epoch: int
    best: dict
    last: dict
    n_failed: int
    failed_examples: list
    augmentation: dict
    adversary: dict
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    last_dev: dict = field(default_factory=dict)  # the most recent validation's dev_* values

    def summary(self) -> dict:
        """What `cm train` prints and `cm.json` records; ``best_dev_*`` / ``dev_*`` for the demo and report."""
        best = self.best or {}
        return {
            "run_dir": str(self.run_dir),
            "status": self.status,
            "step": self.step,
            "epoch": self.epoch,
            "best": self.best,
            "last": self.last,
            "n_failed_audio": self.n_failed,
            "failed_examples": self.failed_examples,
            "augmentation": self.augmentation,
            "adversary": self.adversary,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
            "best_dev_eer": best.get("eer"),
            "best_dev_min_dcf": best.get("min_dcf"),
            "dev_eer_threshold": best.get("eer_threshold"),
            "dev_eer": self.last_dev.get("dev_eer"),
            "dev_min_dcf": self.last_dev.get("dev_min_dcf"),
        }


def build_model_config(config: TrainConfig):
    """The models package's ``ModelConfig`` for a training configuration."""
    from cm_cli.models.model import ModelConfig
    from cm_cli.training.methods.losses import score_head

    kwargs = dict(
        backbone=config.backbone,
        backbone_id=config.backbone_id,
        trainable=config.trainable,
        length_policy=config.length_policy,
        backbone_options=dict(config.model_options.get("backbone", {})),
    )
    if config.loss != "ce":
        kwargs["score_head"] = score_head(config.loss)
    if config.pooling:
        kwargs["pooling"] = config.pooling
    if config.head:
        kwargs["head_dims"] = (
            tuple(int(d) for d in str(config.head).split(",") if d.strip()) if config.head != "none" else ()
        )
    for key in ("layer", "dropout", "gradient_checkpointing"):
        if key in config.model_options:
            kwargs[key] = config.model_options[key]
    mc = ModelConfig(**kwargs)
    if mc.length_policy != "full" and mc.target_samples is None:
        mc = ModelConfig(**{**kwargs, "length_policy": mc.length_policy, "target_samples": config.max_samples})
    return mc


def _class_weight(train, device):
    import torch

    counts = train["label"].value_counts()
    n_spoof, n_bona = float(counts.get("spoof", 0)), float(counts.get("bonafide", 0))
    total = n_spoof + n_bona
    # index 0 = spoof, 1 = bona fide (cm_cli.models.heads)
    return torch.tensor([total / (2 * n_spoof), total / (2 * n_bona)], dtype=torch.float32, device=device)


@dataclass
class _Run:
    """The fixed parts of one training run (the mutable ones are in ``TrainState``)."""

    config: TrainConfig
    data: TrainData
    run_dir: Path
    data_root: object
    device: object
    dist: DistInfo
    model: object
    heads: object
    optimizer: object
    stepper: object
    dataset: object
    sampler: object
    batches: object
    loader: object
    per_epoch: int
    validator: object  # cm_cli.training.selection.Validator: dev loaders built once per run
    tracker: object = None  # cm_cli.training.tracking.Trackers, on the main rank only

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"


def _setup(
    config: TrainConfig,
    data: TrainData,
    run_dir: Path,
    *,
    data_root,
    device,
    cache_dir,
    dist: DistInfo,
    resume: dict | None,
) -> tuple[_Run, TrainState]:
    """Build model, heads, optimiser, data pipeline and the state (fresh or from ``resume``)."""
    import random

    import torch

    from cm_cli.data.datasets import BucketBatchSampler
    from cm_cli.models.inference import minimum_samples
    from cm_cli.models.model import build_model
    from cm_cli.training.checkpointing import restore
    from cm_cli.training.data import EpochBatches, TrainAudio, train_loader
    from cm_cli.training.methods.losses import criterion
    from cm_cli.training.selection import Validator
    from cm_cli.training.step import Stepper, build_method, build_optimizer, method_modules, train_module

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    model = build_model(build_model_config(config)).to(device)
    dataset = TrainAudio(
        data.train,
        data_root=data_root,
        policy=data.policy,
        seed=config.seed,
        crop=config.max_samples,
        cache_dir=cache_dir,
        min_samples=minimum_samples(model),
    )
    sampler = BucketBatchSampler(
        dataset.durations(),
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        rank=dist.rank,
        world_size=dist.world_size,
    )
    per_epoch = len(sampler)
    total_steps = config.max_steps or config.epochs * max(1, math.ceil(per_epoch / config.grad_accum))
    method = build_method(config, data.domains, total_steps)
    heads = method_modules(method, model, device)
    weight = _class_weight(data.train, device) if config.class_weighting else None
    module = train_module(model, heads, weight, method, criterion(config.loss)).to(device)
    optimizer = build_optimizer(module, config)
    state = TrainState(total_steps=total_steps, world_size=dist.world_size)
    if resume is not None:
        state = restore(resume, model, heads, optimizer, total_steps=total_steps, world_size=dist.world_size)
    net = module
    if dist.world_size > 1:
        from cm_cli.training.distributed import wrap_ddp

        net = wrap_ddp(module, device, config)
    stepper = Stepper(
        config,
        data,
        model=model,
        heads=heads,
        module=module,
        net=net,
        optimizer=optimizer,
        device=device,
        world_size=dist.world_size,
        total_steps=total_steps,
        method=method,
    )
    batches = EpochBatches()
    loader = train_loader(dataset, batches, workers=config.workers, seed=config.seed * 1009, device_type=device.type)
    validator = Validator(data, config, data_root=data_root, device=device, rank=dist.rank, world_size=dist.world_size)
    run = _Run(
        config,
        data,
        run_dir,
        data_root,
        device,
        dist,
        model,
        heads,
        optimizer,
        stepper,
        dataset,
        sampler,
        batches,
        loader,
        per_epoch,
        validator,
    )
    return run, state


def _save_last(run: _Run, state: TrainState, batch_offset: int, epoch: int) -> None:
    from cm_cli.training.checkpointing import save_state

    if run.dist.is_main:
        save_state(
            run.ckpt_dir / "last.pt",
            run.model,
            run.heads,
            run.optimizer,
            state,
            config=run.config,
            batch_offset=batch_offset,
            epoch=epoch,
        )
        write_history(state.history, run.data.domains, run.run_dir / "history.parquet", run.stepper.extra_columns)


def _validate_and_save(run: _Run, state: TrainState, batch_offset: int, epoch: int) -> bool | None:
    """Validate, record into the last history row, save (and promote to best).

    True when out of patience, False otherwise, None (nothing saved) without a dev split.
    """
    from cm_cli.training.checkpointing import promote_best

    result = run.validator.validate(run.model, state)
    if result is None:
        return None
    if run.tracker is not None:
        run.tracker.dev(state.step, result)
    if state.history:
        record_dev(state.history[-1], result)
    _save_last(run, state, batch_offset, epoch)
    if result["improved"] and run.dist.is_main:
        promote_best(run.ckpt_dir)
    return state.out_of_patience(run.config.patience)


def _track(run: _Run, state: TrainState, row: dict, *, last: bool) -> bool:
    """Hand ``row`` to the ``--log-to`` trackers when it is a ``log_every``-th step or the run's last; True if sent.

    history.parquet keeps every step whatever ``log_every``.
    """
    if run.tracker is None or not (last or state.step % run.config.log_every == 0):
        return False
    run.tracker.step(row)
    return True


def _train_batches(run: _Run, state: TrainState, stop_requested, on_step, advance) -> int:
    """One pass over the rest of ``state.epoch``; returns the position reached (batches consumed)."""
    config, stepper = run.config, run.stepper
    position = state.offset
    stepper.accumulated = 0
    for batch in run.loader:
        position += 1
        if batch.failures:
            state.add_failures(batch.failures)
        if len(batch) > 0:
            conditions = stepper.conditions(batch)
            state.augment_log.add(conditions)
            last_micro = stepper.accumulated + 1 == config.grad_accum or position == run.per_epoch
            stepper.backward(batch, conditions, state, last_micro=last_micro, position=position)
        if stepper.accumulated == 0 or (stepper.accumulated < config.grad_accum and position < run.per_epoch):
            continue
        row = stepper.step(state)
        advance(1)
        tracked = _track(run, state, row, last=state.step >= state.total_steps)
        if on_step is not None:
            on_step(row)
        if config.val_every and state.step % config.val_every == 0 and state.step < state.total_steps:
            if _validate_and_save(run, state, position, state.epoch):
                state.status = "early_stopped"
                if not tracked:
                    _track(run, state, row, last=True)
                break
        if state.step >= state.total_steps:
            break
        if stop_requested(state.step):
            _save_last(run, state, position, state.epoch)
            state.status = "interrupted"
            if not tracked:
                _track(run, state, row, last=True)
            break
    return position


def _run_epoch(run: _Run, state: TrainState, stop_requested, on_step, advance) -> None:
    """Train the rest of the current epoch, then validate or checkpoint at its end."""
    from cm_cli.core.errors import CmError

    config = run.config
    if state.offset and state.offset >= run.per_epoch:
        # stopped (pre-empted) after the epoch's last batch: finish that epoch's
        # bookkeeping instead of starting an empty pass over it
        state.epoch, state.offset = state.epoch + 1, 0
        if not config.val_every and _validate_and_save(run, state, state.offset, state.epoch):
            state.status = "early_stopped"
        return
    run.sampler.set_epoch(state.epoch)
    run.dataset.epoch = state.epoch
    run.batches.set(state.epoch, list(run.sampler)[state.offset :])
    steps_before = state.step
    run.stepper.module.train()
    position = _train_batches(run, state, stop_requested, on_step, advance)
    if state.status == "interrupted":
        return
    if state.step == steps_before and state.status == "complete" and state.step < state.total_steps:
        raise CmError(
            f"epoch {state.epoch}: no training utterance could be read ({state.n_failed} failures, e.g. "
            f"{'; '.join(state.failed_examples[:3])})",
            "check the audio paths and the data root",
            option="data_root",
        )
    if position >= run.per_epoch:
        state.epoch, state.offset = state.epoch + 1, 0
    else:
        state.offset = position
    if state.status == "early_stopped":
        return
    stop = None
    if not config.val_every or state.step >= state.total_steps:
        stop = _validate_and_save(run, state, state.offset, state.epoch)
    if stop is None:
        _save_last(run, state, state.offset, state.epoch)
    elif stop:
        state.status = "early_stopped"
        return
    if stop_requested(state.step) and state.step < state.total_steps:
        state.status = "interrupted"


def _more_epochs(config: TrainConfig, state: TrainState) -> bool:
    if state.done:
        return False
    return config.max_steps is not None or state.epoch < config.epochs


def fit(
    config: TrainConfig,
    data: TrainData,
    run_dir: str | Path,
    *,
    data_root,
    device=None,
    resume: dict | None = None,
    stop_requested: Callable[[int], bool] | None = None,
    cache_dir: str | Path | None = None,
    dist: DistInfo | None = None,
    on_step: Callable[[dict], None] | None = None,
    tracker=None,
) -> TrainResult:
    """Train into ``run_dir/checkpoints``; ``resume`` is a loaded ``last.pt`` payload to continue from.

    ``tracker`` (``cm_cli.training.tracking.Trackers``) receives every ``log_every``-th history row (and the
    last) and every validation.
    """
    import shutil

    import torch

    from cm_cli.core.progress import task

    started = time.time()
    dist = dist or DistInfo()
    run, state = _setup(
        config,
        data,
        Path(run_dir),
        data_root=data_root,
        device=torch.device(device or "cpu"),
        cache_dir=cache_dir,
        dist=dist,
        resume=resume,
    )
    run.tracker = tracker
    stop_requested = stop_requested or (lambda step: False)
    try:
        with task(state.total_steps, f"train {config.method} {config.backbone}") as advance:
            advance(state.step)
            while _more_epochs(config, state):
                _run_epoch(run, state, stop_requested, on_step, advance)
    finally:
        run.validator.close()
    if state.status != "interrupted" and dist.is_main:
        _save_last(run, state, state.offset, state.epoch)
        if data.dev is None or not (run.ckpt_dir / "best.pt").exists():
            shutil.copyfile(run.ckpt_dir / "last.pt", run.ckpt_dir / "best.pt")
    return _result(run, state, time.time() - started)


def _result(run: _Run, state: TrainState, seconds: float) -> TrainResult:
    notes: list[str] = list(run.config.notes) + ([run.data.dev_note] if run.data.dev_note else [])
    if state.n_failed:
        notes.append(f"{state.n_failed} training utterance(s) could not be read and were skipped")
    validated = [r for r in state.history if not math.isnan(r.get("dev_eer", float("nan")))]
    last_dev = {k: v for k, v in validated[-1].items() if k.startswith("dev_")} if validated else {}
    return TrainResult(
        run.run_dir,
        state.status,
        state.step,
        state.epoch,
        state.best_summary(),
        dict(state.history[-1]) if state.history else {},
        state.n_failed,
        state.failed_examples,
        state.augment_log.to_dict(),
        state.adversary,
        notes,
        seconds,
        last_dev,
    )
