"""Deep CORAL (Sun & Saenko, ECCV 2016 workshops) between the domain groups of a batch.

For two groups with representations ``X_s`` (n_s x d) and ``X_t`` (n_t x d),
``C = (X^T X - (1^T X)^T (1^T X) / n) / (n - 1)`` (the unbiased covariance) and
``loss = ||C_s - C_t||_F^2 / (4 d^2)`` (Sun & Saenko eq. 1-3). cm's domains are many and
of unequal size within one batch: the covariance of every group is computed at once
from a one-hot group matrix, and the loss is the mean over all pairs of groups
(pairwise mean), summed over the ``--domain-column``s, times ``weight``. Groups with
fewer than two rows have no covariance: they are skipped and counted
(``coral_skipped``); with fewer than two usable groups the batch adds no term and logs
``loss_coral`` 0 (never NaN).
"""

from __future__ import annotations

from cm_cli.training.methods.base import Method, Option, Terms, group_onehot

__all__ = ["Coral", "group_covariances", "coral_loss"]


def group_covariances(x, onehot):
    """``[G, d, d]`` unbiased covariances and ``[G]`` counts of the groups of ``x`` ``[B, d]``."""
    import torch

    counts = onehot.sum(0)
    sums = onehot.t() @ x  # [G, d]
    second = torch.einsum("bg,bi,bj->gij", onehot, x, x)
    n = counts.clamp(min=1.0)[:, None, None]
    cov = (second - sums[:, :, None] * sums[:, None, :] / n) / (counts[:, None, None] - 1.0).clamp(min=1.0)
    return cov, counts


def coral_loss(x, target, n_groups: int):
    """(pairwise-mean CORAL loss, number of groups skipped for having < 2 rows) of ``x`` grouped by ``target``."""
    x = x.float()
    onehot, counts = group_onehot(target, n_groups)
    present = counts > 0
    usable = counts >= 2
    skipped = int((present & ~usable).sum())
    keep = usable.nonzero().flatten()
    if keep.numel() < 2:
        return None, skipped
    cov, _ = group_covariances(x, onehot[:, keep])
    d = x.shape[1]
    diff = (cov[:, None] - cov[None, :]).pow(2).sum(dim=(-1, -2)) / (4.0 * d * d)  # [G, G]
    g = keep.numel()
    upper = diff.triu(diagonal=1)
    return upper.sum() / (g * (g - 1) / 2), skipped


class Coral(Method):
    name = "coral"
    uses_domains = True
    options = (Option("weight", 1.0, 0.0, "weight of the CORAL term"),)

    def columns(self) -> list[str]:
        return ["loss_coral", "coral_skipped"]

    def terms(self, rep, targets, step, modules, tap=None) -> Terms:
        total, losses, skipped = rep.float().sum() * 0.0, [], 0
        for column, target in targets.items():
            loss, n_skipped = coral_loss(rep, target, len(self.domains[column]))
            skipped += n_skipped
            if loss is not None:
                total = total + loss
                losses.append(float(loss.detach()))
        stats = {"loss_coral": float(sum(losses)), "coral_skipped": float(skipped)}  # 0.0 when every pair was skipped
        return Terms(self.opts["weight"] * total, stats)
