"""The training loop: ERM or DANN, resumable to the bit on CPU, pre-emptible, optionally distributed.

``fit`` trains one model into a run directory's ``checkpoints/`` and returns a
``TrainResult``; it never prints. The state needed to continue exactly where a run
stopped (weights, domain heads, optimiser, step, epoch, batch offset in the epoch,
RNG states, best dev metrics, patience counter, history) is in every ``last.pt``.
Data-side randomness is seeded per (seed, epoch, row) (``cm_cli.training.data``), and
the data loader draws its seeds from a private generator, so the global RNG only
drives the model (dropout) and is restored on resume.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig
from cm_cli.training.data import TrainData

__all__ = ["TrainResult", "DistInfo", "fit", "preemption_guard", "HISTORY_COLUMNS", "build_model_config"]

HISTORY_COLUMNS = ("step", "epoch", "lr", "lambda", "loss_task", "loss_domain", "adv_grad_norm", "dev_eer",
                   "dev_min_dcf")


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

    def summary(self) -> dict:
        return {"run_dir": str(self.run_dir), "status": self.status, "step": self.step, "epoch": self.epoch,
                "best": self.best, "last": self.last, "n_failed_audio": self.n_failed,
                "failed_examples": self.failed_examples, "augmentation": self.augmentation,
                "adversary": self.adversary, "notes": self.notes, "seconds": round(self.seconds, 2)}


# ---------------------------------------------------------------------------- pre-emption


class _StopFlag:
    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self, step: int) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def preemption_guard():
    """SIGTERM / SIGUSR1 set a flag (yielded) instead of killing the process; handlers restored after."""
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {}

    def handler(signum, frame):  # noqa: ARG001
        flag.signal = signal.Signals(signum).name

    for sig in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------- building blocks


def build_model_config(config: TrainConfig):
    """The models package's ``ModelConfig`` for a training configuration."""
    from cm_cli.models.model import ModelConfig

    kwargs = dict(backbone=config.backbone, backbone_id=config.backbone_id, trainable=config.trainable,
                  length_policy=config.length_policy, backbone_options=dict(config.model_options.get("backbone", {})))
    if config.pooling:
        kwargs["pooling"] = config.pooling
    if config.head:
        kwargs["head_dims"] = tuple(int(d) for d in str(config.head).split(",") if d.strip()) if config.head != "none" else ()
    for key in ("layer", "dropout", "gradient_checkpointing"):
        if key in config.model_options:
            kwargs[key] = config.model_options[key]
    mc = ModelConfig(**kwargs)
    if mc.length_policy != "full" and mc.target_samples is None:
        mc = ModelConfig(**{**kwargs, "length_policy": mc.length_policy, "target_samples": config.max_samples})
    return mc


def _train_module(model, heads, class_weight):
    """Model and domain heads as one module, so DDP sees every trainable parameter in one forward."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from cm_cli.training.dann import GradTap, domain_losses

    class TrainModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.heads = heads
            self.tap = GradTap()
            self.register_buffer("class_weight", class_weight if class_weight is not None else torch.ones(2),
                                 persistent=False)

        def forward(self, wave, lengths, labels, targets, coeff: float):
            out = self.model(wave, lengths)
            task = F.cross_entropy(out.logits.float(), labels, weight=self.class_weight)
            dom = None
            if self.heads is not None:
                rep = out.pre_logit if out.pre_logit is not None else out.pooled
                dom = domain_losses(rep, self.heads, targets, coeff, tap=self.tap)
            return out, task, dom

    return TrainModule()


def _loader(dataset, batches: list, collate, workers: int, seed: int):
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=workers,
                      generator=generator, persistent_workers=False)


def _class_weight(train, device):
    import torch

    counts = train["label"].value_counts()
    n_spoof, n_bona = float(counts.get("spoof", 0)), float(counts.get("bonafide", 0))
    total = n_spoof + n_bona
    # index 0 = spoof, 1 = bona fide (cm_cli.models.heads)
    return torch.tensor([total / (2 * n_spoof), total / (2 * n_bona)], dtype=torch.float32, device=device)


def _autocast(device, enabled: bool):
    import torch

    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower() and "CUDA" in str(exc)


# ---------------------------------------------------------------------------- validation


def evaluate(model, frame, *, data_root, device, batch_size: int, workers: int = 0, autocast: bool = False) -> dict:
    """Dev EER and minDCF of ``model`` on ``frame`` with the model's fixed length policy (no augmentation)."""
    import torch

    from cm_cli.data.datasets import BucketBatchSampler, ManifestAudio, collate_audio
    from cm_cli.training.validation import dev_metrics

    dataset = ManifestAudio(frame, data_root=data_root)
    sampler = BucketBatchSampler(dataset.durations(), batch_size, shuffle=False)
    scores = np.full(len(frame), np.nan)
    failed = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in _loader(dataset, list(sampler), collate_audio, workers, 0):
                failed += len(batch.failures)
                if len(batch) == 0:
                    continue
                waves, lengths = batch.waves, batch.lengths
                if model.config.length.policy != "full":
                    waves, lengths = model.prepare_batch([w[:n] for w, n in zip(waves, lengths.tolist())])
                with _autocast(device, autocast):
                    out = model(waves.to(device), lengths.to(device))
                scores[batch.indices.numpy()] = out.score.float().cpu().numpy()
    finally:
        model.train(was_training)
    keep = ~np.isnan(scores)
    is_bona = frame["label"].astype(str).to_numpy() == "bonafide"
    if is_bona[keep].all() or not is_bona[keep].any():
        return {"eer": float("nan"), "min_dcf": float("nan"), "n_failed": failed}
    m = dev_metrics(scores[keep], is_bona[keep])
    return {"eer": m.eer, "min_dcf": m.min_dcf, "n_failed": failed, "n": int(keep.sum())}


# ---------------------------------------------------------------------------- checkpoints


def _save(path: Path, model, heads, optimizer, *, step, epoch, metrics, config: TrainConfig, training: dict) -> None:
    import torch

    from cm_cli.core.artifacts import atomic_path
    from cm_cli.models.checkpoint import CHECKPOINT_FORMAT, capture_rng, trainable_state_dict

    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": model.config.to_dict(),
        "state_dict": trainable_state_dict(model, save_frozen=config.save_frozen),
        "save_frozen": bool(config.save_frozen),
        "optimizer": optimizer.state_dict(),
        "scheduler": {"kind": "cosine_warmup", "step": int(step), "warmup_steps": config.warmup_steps},
        "rng": capture_rng(),
        "step": int(step),
        "epoch": int(epoch),
        "metrics": dict(metrics),
        "train_config": config.to_dict(),
        "training": dict(training, heads=None if heads is None else {k: v.detach().cpu() for k, v in heads.state_dict().items()}),
    }
    with atomic_path(path, suffix=".pt.tmp") as tmp:
        torch.save(payload, tmp)


# ---------------------------------------------------------------------------- the loop


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
) -> TrainResult:
    """Train into ``run_dir/checkpoints``; ``resume`` is a loaded ``last.pt`` payload to continue from."""
    import random

    import torch
    import torch.nn.functional as F  # noqa: F401

    from cm_cli.core.progress import task
    from cm_cli.data.datasets import BucketBatchSampler
    from cm_cli.models.checkpoint import load_weights, restore_rng
    from cm_cli.models.model import build_model
    from cm_cli.training.dann import build_domain_heads, group_grad_norms, upstream_groups
    from cm_cli.training.data import AugmentationLog, TrainAudio, collate_train, domain_targets
    from cm_cli.training.schedules import GrlSchedule, cosine_with_warmup

    started = time.time()
    dist = dist or DistInfo()
    device = torch.device(device or "cpu")
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    stop_requested = stop_requested or (lambda step: False)
    notes: list[str] = [data.dev_note] if data.dev_note else []

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    model = build_model(build_model_config(config)).to(device)
    dann = config.method == "dann"

    # ---- data
    dataset = TrainAudio(data.train, data_root=data_root, policy=data.policy, seed=config.seed,
                         crop=config.max_samples, cache_dir=cache_dir)
    sampler = BucketBatchSampler(dataset.durations(), config.batch_size, shuffle=True, seed=config.seed,
                                 rank=dist.rank, world_size=dist.world_size)
    per_epoch = len(sampler)
    steps_per_epoch = max(1, math.ceil(per_epoch / config.grad_accum))
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    targets_by_row = domain_targets(data.train, data.domains, data.policy) if dann else {}
    labels_by_row = torch.from_numpy((data.train["label"].astype(str).to_numpy() == "bonafide").astype(np.int64))
    manifest_domains = data.train["domain"].astype(str).tolist() if (config.augment_manifest and "domain" in data.train) else None
    lookup = {c: {v: i for i, v in enumerate(vals)} for c, vals in data.domains.items()}

    # ---- model parts
    heads = None
    if dann:
        with torch.no_grad():
            model.eval()
            probe = model(torch.zeros(1, 16000, device=device), torch.tensor([16000], device=device))
            model.train()
        rep_dim = int((probe.pre_logit if probe.pre_logit is not None else probe.pooled).shape[-1])
        heads = build_domain_heads(rep_dim, data.domains, hidden=config.domain_hidden).to(device)
    weight = _class_weight(data.train, device) if config.class_weighting else None
    module = _train_module(model, heads, weight).to(device)
    decay, no_decay, head_params = [], [], []
    for name, p in module.named_parameters():
        if p.requires_grad:
            (head_params if name.startswith("heads.") else decay if p.dim() >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise CmError("the model has no trainable parameters", "unfreeze layers with --trainable")
    groups = [{"params": decay, "weight_decay": config.weight_decay, "lr_mult": 1.0},
              {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0}]
    if head_params:
        groups.append({"params": head_params, "weight_decay": 0.0, "lr_mult": config.domain_lr_mult})
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    grl = GrlSchedule(config.lambda_schedule, config.lambda_max, total_steps, config.lambda_warmup)

    # ---- state
    step, epoch, offset = 0, 0, 0
    best = {"eer": float("inf"), "min_dcf": float("inf"), "step": None}
    bad_validations = 0
    history: list[dict] = []
    augment_log = AugmentationLog()
    n_failed, failed_examples = 0, []
    adversary: dict = {}
    if resume is not None:
        load_weights(model, resume)
        training = resume.get("training") or {}
        if heads is not None:
            if not training.get("heads"):
                raise CmError(f"{resume.get('path')}: the run being resumed has no domain heads",
                              "resume with the method it was trained with, or start a new run")
            heads.load_state_dict(training["heads"])
        try:
            optimizer.load_state_dict(resume["optimizer"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CmError(f"{resume.get('path')}: optimiser state does not fit this model ({exc})",
                          "resume with the configuration the run was made with, or start a new run") from None
        step, epoch, offset = int(resume["step"]), int(resume["epoch"]), int(training.get("batch_offset", 0))
        best = dict(training.get("best", best))
        bad_validations = int(training.get("bad_validations", 0))
        history = [dict(r) for r in training.get("history", [])]
        augment_log.counts.update(training.get("augmentation", {}))
        n_failed = int(training.get("n_failed", 0))
        failed_examples = list(training.get("failed_examples", []))
        adversary = dict(training.get("adversary", {}))
        restore_rng(resume["rng"])

    net = module
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    def state(batch_offset: int) -> dict:
        return {"batch_offset": batch_offset, "best": best, "bad_validations": bad_validations,
                "history": history, "augmentation": dict(augment_log.counts), "n_failed": n_failed,
                "failed_examples": failed_examples, "adversary": adversary}

    def save_last(batch_offset: int, at_epoch: int) -> None:
        if dist.is_main:
            _save(ckpt_dir / "last.pt", model, heads, optimizer, step=step, epoch=at_epoch,
                  metrics=history[-1] if history else {}, config=config, training=state(batch_offset))
            _write_history(history, data.domains, run_dir / "history.parquet")

    def validate() -> dict | None:
        nonlocal best, bad_validations
        if data.dev is None:
            return None
        result = evaluate(model, data.dev, data_root=data_root, device=device, batch_size=config.batch_size,
                          workers=config.workers, autocast=config.bf16)
        if data.coded_dev is not None:
            coded = evaluate(model, data.coded_dev, data_root=data_root, device=device,
                             batch_size=config.batch_size, workers=config.workers, autocast=config.bf16)
            result["coded_eer"], result["coded_min_dcf"] = coded["eer"], coded["min_dcf"]
        improved = (result["eer"], result["min_dcf"]) < (best["eer"], best["min_dcf"])
        if improved:
            best = {"eer": result["eer"], "min_dcf": result["min_dcf"], "step": step, "epoch": epoch}
            bad_validations = 0
        else:
            bad_validations += 1
        result["improved"] = improved
        return result

    def record_validation(result: dict, batch_offset: int, at_epoch: int) -> None:
        if history:
            history[-1]["dev_eer"] = result["eer"]
            history[-1]["dev_min_dcf"] = result["min_dcf"]
            if "coded_eer" in result:
                history[-1]["dev_coded_eer"] = result["coded_eer"]
                history[-1]["dev_coded_min_dcf"] = result["coded_min_dcf"]
        save_last(batch_offset, at_epoch)
        if result["improved"] and dist.is_main:
            shutil.copyfile(ckpt_dir / "last.pt", ckpt_dir / ".best.pt.tmp")
            (ckpt_dir / ".best.pt.tmp").replace(ckpt_dir / "best.pt")

    status = "complete"
    micro = {"task": [], "dom": [], "cols": {}, "acc": {}, "adv": []}
    autocast = config.bf16
    done = step >= total_steps
    with task(total_steps, f"train {config.method} {config.backbone}") as advance:
        advance(step)
        while not done and epoch < config.epochs if config.max_steps is None else not done:
            if offset and offset >= per_epoch:
                # stopped (pre-empted) after the epoch's last batch: finish that epoch's
                # bookkeeping instead of starting an empty pass over it
                epoch, offset = epoch + 1, 0
                result = validate() if not config.val_every else None
                if result is not None:
                    record_validation(result, offset, epoch)
                    if config.patience and bad_validations >= config.patience:
                        status = "early_stopped"
                        break
                continue
            sampler.set_epoch(epoch)
            dataset.epoch = epoch
            batches = list(sampler)[offset:]
            position = offset
            accumulated = 0
            steps_at_epoch_start = step
            module.train()
            for batch in _loader(dataset, batches, collate_train, config.workers, config.seed * 1009 + epoch):
                position += 1
                if batch.failures:
                    n_failed += len(batch.failures)
                    failed_examples.extend(m for _, m in batch.failures[: max(0, 10 - len(failed_examples))])
                if len(batch) > 0:
                    indices = batch.indices
                    conditions = batch.conditions if data.policy is not None else (
                        [manifest_domains[i] for i in indices.tolist()] if manifest_domains else [None] * len(batch))
                    augment_log.add(conditions)
                    coeff = grl(step) if dann else 0.0
                    targets = {}
                    for column in data.domains:
                        if column == "domain" and data.policy is not None:
                            values = [lookup[column].get("clean" if c is None else c, -100) for c in conditions]
                            targets[column] = torch.tensor(values, dtype=torch.long, device=device)
                        else:
                            targets[column] = torch.from_numpy(targets_by_row[column][indices.numpy()]).to(device)
                    waves, lengths = batch.waves.to(device), batch.lengths.to(device)
                    labels = labels_by_row[indices].to(device)
                    if dann and not adversary:
                        adversary = _check_adversary(model, heads, waves, lengths, targets, upstream_groups,
                                                     group_grad_norms)
                    last_micro = accumulated + 1 == config.grad_accum or position == per_epoch
                    sync = net.no_sync() if (dist.world_size > 1 and not last_micro) else contextlib.nullcontext()
                    try:
                        with sync:
                            with _autocast(device, autocast):
                                out, task_loss, dom = net(waves, lengths, labels, targets, coeff)
                            loss = task_loss + (config.domain_loss_weight * dom.total if dom is not None else 0.0)
                            if not bool(torch.isfinite(loss.detach())):
                                ids = data.train["utt_id"].iloc[indices.numpy()].astype(str).tolist()
                                raise CmError(
                                    f"loss became {float(loss.detach())} at step {step} (epoch {epoch}, batch "
                                    f"{position - 1}; utterances {', '.join(ids[:8])}{' …' if len(ids) > 8 else ''})",
                                    "training stopped; checkpoints/last.pt is the last good state. Lower --lr, "
                                    "check these files, or raise --clip-grad")
                            (loss / config.grad_accum).backward()
                    except RuntimeError as exc:
                        if _is_oom(exc):
                            raise CmError(f"CUDA out of memory at step {step} with batch size {config.batch_size} "
                                          f"(longest utterance {int(lengths.max())} samples)",
                                          "lower --batch-size and raise --grad-accum to keep the effective batch, "
                                          "or lower --max-len") from None
                        raise
                    micro["task"].append(float(task_loss.detach()))
                    if dom is not None:
                        micro["dom"].append(float(dom.total.detach()))
                        micro["adv"].append(module.tap.norm)
                        for column in data.domains:
                            micro["cols"].setdefault(column, []).append(dom.losses[column])
                            micro["acc"].setdefault(column, []).append(dom.accuracies[column])
                    accumulated += 1
                if accumulated < config.grad_accum and position < per_epoch:
                    continue
                if accumulated == 0:
                    continue
                # ---- optimiser step
                lr = config.lr * cosine_with_warmup(step, warmup_steps=config.warmup_steps, total_steps=total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_mult", 1.0)
                if config.clip_grad:
                    torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.requires_grad], config.clip_grad)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                row = _row(step + 1, epoch, lr, grl(step) if dann else float("nan"), micro, data.domains)
                history.append(row)
                micro = {"task": [], "dom": [], "cols": {}, "acc": {}, "adv": []}
                accumulated = 0
                step += 1  # history's `step` counts optimiser steps done (1-based)
                advance(1)
                if on_step is not None:
                    on_step(row)
                if config.val_every and step % config.val_every == 0 and step < total_steps:
                    result = validate()
                    if result is not None:
                        record_validation(result, position, epoch)
                        if config.patience and bad_validations >= config.patience:
                            status, done = "early_stopped", True
                            break
                if step >= total_steps:
                    done = True
                    break
                if stop_requested(step):
                    save_last(position, epoch)
                    status, done = "interrupted", True
                    break
            if status == "interrupted":
                break
            if step == steps_at_epoch_start and status == "complete" and not done:
                raise CmError(f"epoch {epoch}: no training utterance could be read ({n_failed} failures, e.g. "
                              f"{'; '.join(failed_examples[:3])})", "check the audio paths and --data-root")
            finished_epoch = position >= per_epoch
            if finished_epoch:
                epoch, offset = epoch + 1, 0
            else:
                offset = position
            if status == "early_stopped":
                break
            result = validate() if (not config.val_every or step >= total_steps) else None
            if result is not None:
                record_validation(result, offset, epoch)
                if config.patience and bad_validations >= config.patience:
                    status = "early_stopped"
                    break
            else:
                save_last(offset, epoch)
            if stop_requested(step) and step < total_steps:
                status = "interrupted"
                break
    if status != "interrupted" and dist.is_main:
        save_last(offset, epoch)
        if data.dev is None or not (ckpt_dir / "best.pt").exists():
            shutil.copyfile(ckpt_dir / "last.pt", ckpt_dir / "best.pt")
    if n_failed:
        notes.append(f"{n_failed} training utterance(s) could not be read and were skipped")
    last = {k: v for k, v in (history[-1] if history else {}).items()}
    best_out = {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in best.items()}
    return TrainResult(run_dir, status, step, epoch, best_out, last, n_failed, failed_examples,
                       augment_log.to_dict(), adversary, notes, time.time() - started)


def _check_adversary(model, heads, waves, lengths, targets, upstream_groups, group_grad_norms) -> dict:
    """Which trainable groups the reversed gradient reaches, and its norm per unit lambda (eval-mode probe)."""
    from cm_cli.training.dann import domain_losses

    was = model.training
    model.eval()
    try:
        out = model(waves, lengths)
        rep = out.pre_logit if out.pre_logit is not None else out.pooled
        groups = upstream_groups(model, rep)
        dom = domain_losses(rep, heads, targets, 1.0)
        norms = group_grad_norms(groups, dom.total)
    finally:
        model.train(was)
    return {"groups": sorted(groups), "grad_norm_per_unit_lambda": norms,
            "n_params": int(sum(p.numel() for ps in groups.values() for p in ps))}


def _mean(values) -> float:
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else float("nan")


def _row(step, epoch, lr, lam, micro, domains) -> dict:
    row = {"step": step, "epoch": epoch, "lr": lr, "lambda": lam, "loss_task": _mean(micro["task"]),
           "loss_domain": _mean(micro["dom"]), "adv_grad_norm": _mean(micro["adv"]),
           "dev_eer": float("nan"), "dev_min_dcf": float("nan")}
    for column in domains:
        row[f"loss_domain_{column}"] = _mean(micro["cols"].get(column, []))
        row[f"domain_acc_{column}"] = _mean(micro["acc"].get(column, []))
    return row


def _write_history(history: list[dict], domains: dict, path: Path) -> None:
    import pandas as pd

    from cm_cli.core.artifacts import write_parquet

    columns = ["step", "epoch", "lr", "lambda", "loss_task", "loss_domain"]
    columns += [f"loss_domain_{c}" for c in domains] + [f"domain_acc_{c}" for c in domains]
    columns += ["adv_grad_norm", "dev_eer", "dev_min_dcf"]
    frame = pd.DataFrame(history, columns=None if history else columns)
    for column in columns:
        if column not in frame:
            frame[column] = float("nan")
    extra = [c for c in frame.columns if c not in columns]
    frame = frame[columns + extra]
    frame["step"] = frame["step"].astype("int64")
    frame["epoch"] = frame["epoch"].astype("int64")
    write_parquet(frame, path)
