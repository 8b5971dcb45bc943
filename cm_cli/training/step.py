"""One training step for every method: micro-batch forward/backward, then the optimiser step.

``Stepper`` owns the pieces that change the weights: the train module (model and the
method's modules as one module, so DDP sees every trainable parameter), the method
(``cm_cli.training.methods``: its loss terms, its optional two-pass SAM/ASAM step), the
task loss (``--loss``), the optimiser, the step-indexed schedules and the micro-batch
statistics of the current step. The same Stepper trains audio models (``fit``) and
pooled-feature heads (``cm train --features``): only ``inputs`` (what a batch feeds the
model) differs.
"""

from __future__ import annotations

import contextlib

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.training.history import MicroStats, history_row
from cm_cli.training.state import TrainState

__all__ = [
    "Stepper",
    "train_module",
    "build_optimizer",
    "autocast",
    "is_oom",
    "check_adversary",
    "build_method",
    "method_modules",
    "representation_dim",
    "audio_inputs",
]


def representation(out):
    """The vector a method works on: the model's ``pre_logit``, else ``pooled``."""
    return out.pre_logit if out.pre_logit is not None else out.pooled


def train_module(model, heads, class_weight, method=None, criterion=None):
    """Model and method modules as one module: ``forward(inputs, labels, targets, step)`` ->
    (model output, task loss, ``Terms``)."""
    import torch
    from torch import nn

    from cm_cli.training.dann import GradTap
    from cm_cli.training.methods.base import Terms
    from cm_cli.training.methods.losses import cross_entropy

    class TrainModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.heads = heads
            self.method = method
            self.criterion = criterion or cross_entropy
            self.tap = GradTap()
            self.register_buffer(
                "class_weight", class_weight if class_weight is not None else torch.ones(2), persistent=False
            )

        def forward(self, inputs, labels, targets, step: int):
            out = self.model(*inputs)
            if self.method is None:
                return out, self.criterion(out.logits, labels, self.class_weight), Terms()
            task = self.method.task_loss(self.criterion, out.logits, labels, targets, self.class_weight, self.heads)
            terms = self.method.terms(representation(out), targets, step, self.heads, tap=self.tap)
            return out, task, terms

    return TrainModule()


def build_method(config, domains, total_steps: int):
    """The run's method object (``cm_cli.training.methods``) for ``config.method``."""
    from cm_cli.training.methods import get_method

    return get_method(config.method)(config, domains, total_steps=total_steps)


def representation_dim(model, device, inputs=None) -> int:
    """Width of the representation, from one eval-mode forward of a 1 s zero signal (or ``inputs``)."""
    import torch

    was_training = model.training
    with torch.no_grad():
        model.eval()
        inputs = inputs or (torch.zeros(1, 16000, device=device), torch.tensor([16000], device=device))
        probe = model(*inputs)
    model.train(was_training)
    return int(representation(probe).shape[-1])


def method_modules(method, model, device, *, rep_dim: int | None = None):
    """The method's extra modules on ``device`` (None when it builds none; the model is probed only if needed)."""
    from cm_cli.training.methods.base import Method

    if type(method).build is Method.build:
        return None
    module = method.build(rep_dim if rep_dim is not None else representation_dim(model, device))
    return None if module is None else module.to(device)


def audio_inputs(batch, device) -> tuple:
    """What an audio batch feeds the model: (waves, lengths) on ``device``."""
    return (batch.waves.to(device, non_blocking=True), batch.lengths.to(device, non_blocking=True))


def build_optimizer(module, config):
    """AdamW: weight decay on matrices only; domain heads at ``domain_lr_mult`` times the rate."""
    import torch

    decay, no_decay, head_params = [], [], []
    for name, p in module.named_parameters():
        if p.requires_grad:
            (head_params if name.startswith("heads.") else decay if p.dim() >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise CmError("the model has no trainable parameters", "unfreeze layers", option="trainable")
    groups = [
        {"params": decay, "weight_decay": config.weight_decay, "lr_mult": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0},
    ]
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


def check_adversary(model, heads, inputs, targets) -> dict:
    """Which trainable groups the reversed gradient reaches, and its norm per unit lambda (eval-mode probe)."""
    from cm_cli.training.dann import domain_losses, group_grad_norms, upstream_groups

    was = model.training
    model.eval()
    try:
        out = model(*inputs)
        rep = representation(out)
        groups = upstream_groups(model, rep)
        dom = domain_losses(rep, heads, targets, 1.0)
        norms = group_grad_norms(groups, dom.total)
    finally:
        model.train(was)
    return {
        "groups": sorted(groups),
        "grad_norm_per_unit_lambda": norms,
        "n_params": int(sum(p.numel() for ps in groups.values() for p in ps)),
    }


class Stepper:
    """Accumulates micro-batches and takes optimiser steps; schedules are functions of ``state.step``."""

    def __init__(
        self,
        config,
        data,
        *,
        model,
        heads,
        module,
        net,
        optimizer,
        device,
        world_size: int,
        total_steps: int,
        method=None,
        inputs=None,
    ):
        import torch

        from cm_cli.training.data import domain_targets
        from cm_cli.training.methods.sam import ASAM_RHO, SAM_RHO, SharpnessStep

        self.config, self.data, self.model, self.heads = config, data, model, heads
        self.module, self.net, self.optimizer, self.device = module, net, optimizer, device
        self.world_size, self.total_steps = world_size, total_steps
        self.method = method or module.method or build_method(config, data.domains, total_steps)
        if module.method is None:  # a train module built without its method (older callers): give it the run's
            module.method = self.method
        self.inputs = inputs or (lambda batch: audio_inputs(batch, device))
        self.extra_columns = self.method.columns()
        self.targets_by_row = domain_targets(data.train, data.domains, data.policy) if data.domains else {}
        self.labels_by_row = torch.from_numpy(
            (data.train["label"].astype(str).to_numpy() == "bonafide").astype(np.int64)
        )
        on_manifest = config.augment_manifest and "domain" in data.train
        self.manifest_domains = data.train["domain"].astype(str).tolist() if on_manifest else None
        self.lookup = {c: {v: i for i, v in enumerate(vals)} for c, vals in data.domains.items()}
        kind = self.method.sharpness or (("asam" if config.sam_adaptive else "sam") if config.sam_rho else None)
        rho = config.sam_rho or (ASAM_RHO if kind == "asam" else SAM_RHO)
        self.sharpness = SharpnessStep(rho, adaptive=kind == "asam") if kind else None
        self.pending: list = []  # the step's micro-batches, replayed by the second SAM pass
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

    def _forward_backward(self, inputs, labels, targets, state: TrainState, *, last_micro: bool, check=None):
        import torch

        no_sync = self.world_size > 1 and not last_micro
        with self.net.no_sync() if no_sync else contextlib.nullcontext():
            with autocast(self.device, self.config.bf16):
                _, task_loss, terms = self.net(inputs, labels, targets, state.step)
            loss = task_loss + terms.total
            if check is not None and not bool(torch.isfinite(loss.detach())):
                check(loss)
            (loss / self.config.grad_accum).backward()
        return task_loss, terms

    def backward(self, batch, conditions, state: TrainState, *, last_micro: bool, position: int) -> None:
        """Forward and backward of one micro-batch (gradients accumulate until ``step``)."""
        targets = self._targets(batch, conditions)
        inputs = self.inputs(batch)
        labels = self.labels_by_row[batch.indices].to(self.device, non_blocking=True)
        if self.method.adversarial and not state.adversary:
            state.adversary = check_adversary(self.model, self.heads, inputs, targets)
        try:
            task_loss, terms = self._forward_backward(
                inputs,
                labels,
                targets,
                state,
                last_micro=last_micro,
                check=lambda loss: self._non_finite(loss, batch, state, position),
            )
        except RuntimeError as exc:
            if is_oom(exc):
                longest = int(inputs[1].max()) if len(inputs) > 1 else int(inputs[0].shape[-1])
                raise CmError(
                    f"CUDA out of memory at step {state.step} with batch size {self.config.batch_size} "
                    f"(longest utterance {longest} samples)",
                    "lower the batch size and raise gradient accumulation to keep the effective batch, or lower "
                    "the maximum length",
                    option=("batch_size", "grad_accum", "max_len"),
                ) from None
            raise
        if self.sharpness is not None:
            self.pending.append((inputs, labels, targets, last_micro))
        self.micro.add(
            float(task_loss.detach()), terms.dom, self.module.tap.norm if terms.dom is not None else None, terms.stats
        )
        self.accumulated += 1

    def _non_finite(self, loss, batch, state: TrainState, position: int) -> None:
        ids = self.data.train["utt_id"].iloc[batch.indices.numpy()].astype(str).tolist()
        raise CmError(
            f"loss became {float(loss.detach())} at step {state.step} (epoch {state.epoch}, batch "
            f"{position - 1}; utterances {', '.join(ids[:8])}{' …' if len(ids) > 8 else ''})",
            "training stopped; checkpoints/last.pt is the last good state. Lower the learning rate, "
            "check these files, or raise the gradient clipping norm",
            option=("lr", "clip_grad"),
        )

    def _sharpness_pass(self, state: TrainState) -> None:
        """SAM/ASAM: move to ``w + e``, recompute the step's gradients there, come back (methods.sam)."""
        from cm_cli.training.methods.sam import frozen_batchnorm_stats

        self.sharpness.perturb(self.module.named_parameters())
        self.optimizer.zero_grad(set_to_none=True)
        self.method.replaying = True
        try:
            with frozen_batchnorm_stats(self.module):
                for inputs, labels, targets, last_micro in self.pending:
                    self._forward_backward(inputs, labels, targets, state, last_micro=last_micro)
        finally:
            self.method.replaying = False
            self.sharpness.restore()
            self.pending = []

    def step(self, state: TrainState) -> dict:
        """Apply the accumulated gradients at the scheduled rate; append and return the history row."""
        import torch

        from cm_cli.training.schedules import cosine_with_warmup

        config = self.config
        lr = config.lr * cosine_with_warmup(state.step, warmup_steps=config.warmup_steps, total_steps=self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        if self.sharpness is not None:
            self._sharpness_pass(state)
        if config.clip_grad:
            torch.nn.utils.clip_grad_norm_([p for p in self.module.parameters() if p.requires_grad], config.clip_grad)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        lam = self.method.lam(state.step)
        row = history_row(state.step + 1, state.epoch, lr, lam, self.micro, self.data.domains, self.extra_columns)
        state.history.append(row)
        self.micro = MicroStats()
        self.accumulated = 0
        state.step += 1  # history's `step` counts optimiser steps done (1-based)
        return row
