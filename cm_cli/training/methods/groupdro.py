"""Group DRO (Sagawa et al., ICLR 2020, Algorithm 1): minimise the worst domain group's loss.

Groups are the values of the first ``--domain-column``. Each batch: the mean task loss
``L_g`` of every group present, then the exponentiated-gradient update
``q_g <- q_g * exp(step * L_g)``, ``q <- q / sum(q)`` (groups absent from the batch keep
their factor 1, as in the authors' ``loss.py`` where their loss is 0), and the loss
``sum_g q_g L_g``. ``q`` starts uniform and is a buffer of the method's module, so it is
saved in checkpoints and restored bit-exactly on resume. Default step size 0.01 (the
authors' ``--robust_step_size``). Rows of unknown group are left out of the loss.
"""

from __future__ import annotations

from cm_cli.training.methods.base import Method, Option, Terms, group_onehot

__all__ = ["GroupDro", "dro_update"]


def dro_update(q, group_losses, present, step_size: float):
    """The new group weights after one exponentiated-gradient step (a new tensor)."""
    import torch

    factor = torch.where(present, torch.exp(step_size * group_losses.detach()), torch.ones_like(q))
    q = q * factor
    return q / q.sum()


class GroupDro(Method):
    name = "groupdro"
    uses_domains = True
    options = (Option("step", 0.01, 0.0, "exponentiated-gradient step size of the group weights"),)

    def __init__(self, config, domains, *, total_steps: int = 1):
        super().__init__(config, domains, total_steps=total_steps)
        self.column = next(iter(self.domains))
        self.values = list(self.domains[self.column])
        self._last: dict = {}

    def build(self, rep_dim: int):
        import torch
        from torch import nn

        module = nn.Module()
        module.register_buffer("q", torch.full((len(self.values),), 1.0 / len(self.values)))
        return module

    def columns(self) -> list[str]:
        return ["loss_dro"] + [f"dro_q_{v}" for v in self.values]

    def task_loss(self, criterion, logits, labels, targets, weight, modules):
        import torch

        per_row = criterion(logits, labels, weight, reduction="none")
        onehot, counts = group_onehot(targets[self.column], len(self.values))
        present = counts > 0
        if not bool(present.any()):
            return per_row.mean()
        group_losses = (onehot.t() @ per_row) / counts.clamp(min=1.0)
        if not self.replaying:  # SAM's second pass reuses the step's weights
            with torch.no_grad():
                modules.q.copy_(dro_update(modules.q, group_losses, present, self.opts["step"]))
        loss = (modules.q * group_losses).sum()
        if self.replaying:
            return loss
        self._last = {
            "loss_dro": float(loss.detach()),
            **{f"dro_q_{v}": float(q) for v, q in zip(self.values, modules.q.tolist())},
        }
        return loss

    def terms(self, rep, targets, step, modules, tap=None) -> Terms:
        stats, self._last = self._last, {}
        return Terms(0.0, stats)
