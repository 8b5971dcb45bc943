"""One training step: micro-batch forward/backward (ERM or DANN), then the optimiser step.

``Stepper`` owns the pieces that change the weights: the train module (model and
domain heads as one module, so DDP sees every trainable parameter), the optimiser,
the step-indexed schedules and the micro-batch statistics of the current step.
"""

from __future__ import annotations

import contextlib

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.training.history import MicroStats, history_row
from cm_cli.training.state import TrainState

__all__ = ["Stepper", "train_module", "build_optimizer", "autocast", "is_oom", "check_adversary"]


def train_module(model, heads, class_weight):
    """Model and domain heads as one module returning (model output, task loss, domain losses or None)."""
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


def build_optimizer(module, config):
    """AdamW: weight decay on matrices only; domain heads at ``domain_lr_mult`` times the rate."""
    import torch

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
    return torch.optim.AdamW(groups, lr=config.lr)


def autocast(device, enabled: bool):
    import torch

    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower() and "CUDA" in str(exc)


def check_adversary(model, heads, waves, lengths, targets) -> dict:
    """Which trainable groups the reversed gradient reaches, and its norm per unit lambda (eval-mode probe)."""
    from cm_cli.training.dann import domain_losses, group_grad_norms, upstream_groups

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


class Stepper:
    """Accumulates micro-batches and takes optimiser steps; schedules are functions of ``state.step``."""

    def __init__(self, config, data, *, model, heads, module, net, optimizer, device, world_size: int,
                 total_steps: int):
        import torch

        from cm_cli.training.data import domain_targets
        from cm_cli.training.schedules import GrlSchedule

        self.config, self.data, self.model, self.heads = config, data, model, heads
        self.module, self.net, self.optimizer, self.device = module, net, optimizer, device
        self.world_size, self.total_steps = world_size, total_steps
        self.dann = heads is not None
        self.grl = GrlSchedule(config.lambda_schedule, config.lambda_max, total_steps, config.lambda_warmup)
        self.targets_by_row = domain_targets(data.train, data.domains, data.policy) if self.dann else {}
        self.labels_by_row = torch.from_numpy(
            (data.train["label"].astype(str).to_numpy() == "bonafide").astype(np.int64))
        on_manifest = config.augment_manifest and "domain" in data.train
        self.manifest_domains = data.train["domain"].astype(str).tolist() if on_manifest else None
        self.lookup = {c: {v: i for i, v in enumerate(vals)} for c, vals in data.domains.items()}
        self.micro = MicroStats()
        self.accumulated = 0

    def conditions(self, batch) -> list:
        """The domain condition of each row: the on-the-fly draw, the variant's domain, or None (clean)."""
        if self.data.policy is not None:
            return batch.conditions
        if self.manifest_domains:
            return [self.manifest_domains[i] for i in batch.indices.tolist()]
        return [None] * len(batch)

    def _targets(self, batch, conditions) -> dict:
        import torch

        targets = {}
        for column in self.data.domains:
            if column == "domain" and self.data.policy is not None:
                values = [self.lookup[column].get("clean" if c is None else c, -100) for c in conditions]
                targets[column] = torch.tensor(values, dtype=torch.long, device=self.device)
            else:
                rows = self.targets_by_row[column][batch.indices.numpy()]
                targets[column] = torch.from_numpy(rows).to(self.device)
        return targets

    def backward(self, batch, conditions, state: TrainState, *, last_micro: bool, position: int) -> None:
        """Forward and backward of one micro-batch (gradients accumulate until ``step``)."""
        import torch

        targets = self._targets(batch, conditions)
        waves = batch.waves.to(self.device, non_blocking=True)
        lengths = batch.lengths.to(self.device, non_blocking=True)
        labels = self.labels_by_row[batch.indices].to(self.device, non_blocking=True)
        if self.dann and not state.adversary:
            state.adversary = check_adversary(self.model, self.heads, waves, lengths, targets)
        coeff = self.grl(state.step) if self.dann else 0.0
        no_sync = self.world_size > 1 and not last_micro
        try:
            with self.net.no_sync() if no_sync else contextlib.nullcontext():
                with autocast(self.device, self.config.bf16):
                    _, task_loss, dom = self.net(waves, lengths, labels, targets, coeff)
                loss = task_loss + (self.config.domain_loss_weight * dom.total if dom is not None else 0.0)
                if not bool(torch.isfinite(loss.detach())):
                    self._non_finite(loss, batch, state, position)
                (loss / self.config.grad_accum).backward()
        except RuntimeError as exc:
            if is_oom(exc):
                raise CmError(f"CUDA out of memory at step {state.step} with batch size {self.config.batch_size} "
                              f"(longest utterance {int(lengths.max())} samples)",
                              "lower --batch-size and raise --grad-accum to keep the effective batch, "
                              "or lower --max-len") from None
            raise
        self.micro.add(float(task_loss.detach()), dom, self.module.tap.norm if dom is not None else None)
        self.accumulated += 1

    def _non_finite(self, loss, batch, state: TrainState, position: int) -> None:
        ids = self.data.train["utt_id"].iloc[batch.indices.numpy()].astype(str).tolist()
        raise CmError(
            f"loss became {float(loss.detach())} at step {state.step} (epoch {state.epoch}, batch "
            f"{position - 1}; utterances {', '.join(ids[:8])}{' …' if len(ids) > 8 else ''})",
            "training stopped; checkpoints/last.pt is the last good state. Lower --lr, "
            "check these files, or raise --clip-grad")

    def step(self, state: TrainState) -> dict:
        """Apply the accumulated gradients at the scheduled rate; append and return the history row."""
        import torch

        from cm_cli.training.schedules import cosine_with_warmup

        config = self.config
        lr = config.lr * cosine_with_warmup(state.step, warmup_steps=config.warmup_steps,
                                            total_steps=self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        if config.clip_grad:
            torch.nn.utils.clip_grad_norm_([p for p in self.module.parameters() if p.requires_grad],
                                           config.clip_grad)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        lam = self.grl(state.step) if self.dann else float("nan")
        row = history_row(state.step + 1, state.epoch, lr, lam, self.micro, self.data.domains)
        state.history.append(row)
        self.micro = MicroStats()
        self.accumulated = 0
        state.step += 1  # history's `step` counts optimiser steps done (1-based)
        return row
