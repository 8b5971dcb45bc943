"""Multi-kernel MMD (Long et al., ICML 2015, DAN) between the domain groups of a batch.

Kernel: the mean of Gaussian kernels ``k(x, y) = exp(-||x - y||^2 / (2^k * s))`` for
``k = -3..1`` where ``s`` is the mean squared distance between the batch's rows
(detached): the bandwidth family of tllib's ``dan.py`` (``GaussianKernel(alpha=2**k)``),
averaged instead of summed so ``k(x, x) = 1``. Estimate per pair of groups a, b, from one
``[B, B]`` kernel matrix ``K`` and a one-hot group matrix (no equal-size assumption, no
Python loops over rows):
- ``biased`` (default): the V-statistic ``MMD_b^2`` of Gretton et al. (JMLR 2012, section 2.2),
  ``sum_{i,j in a} k / n_a^2 + sum_{i,j in b} k / n_b^2 - 2 sum_{i in a, j in b} k / (n_a n_b)``,
  the squared RKHS distance ``||mu_a - mu_b||^2`` between the groups' mean embeddings
  (the plug-in estimate of DAN's MK-MMD, the formula in tllib's ``dan.py`` docstring), so
  it is >= 0 by construction; it equals the U-statistic plus ``(1 - u_a)/n_a + (1 - u_b)/n_b``
  (``u``: a group's mean kernel over pairs ``i != j``), an ``O(1/n)`` bias.
- ``unbiased``: the U-statistic ``MMD_u^2`` (Gretton et al. eq. 3), the same sums over
  ``i != j`` within a group divided by ``n (n - 1)``; unbiased but negative whenever the
  groups are alike (at a batch's small per-group counts, in about half of the steps).
The term is the mean over all pairs of groups (pairwise mean), summed over the
``--domain-column``s, times ``weight``. Groups with fewer than two rows are skipped and
counted (``mmd_skipped``); with fewer than two usable groups the batch adds no term and
logs ``loss_mmd`` 0.
"""

from __future__ import annotations

from cm_cli.training.methods.base import Method, Option, Terms, group_onehot

__all__ = ["Mmd", "mmd_loss", "KERNEL_POWERS", "ESTIMATORS"]

KERNEL_POWERS = (-3, -2, -1, 0, 1)  # tllib dan.py: GaussianKernel(alpha=2 ** k) for k in range(-3, 2)
ESTIMATORS = ("biased", "unbiased")


def mmd_loss(x, target, n_groups: int, estimator: str = "biased"):
    """(pairwise-mean multi-kernel MMD^2, groups skipped) of ``x`` ``[B, d]`` grouped by ``target``."""
    import torch

    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    x = x.float()
    onehot, counts = group_onehot(target, n_groups)
    present, usable = counts > 0, counts >= 2
    skipped = int((present & ~usable).sum())
    keep = usable.nonzero().flatten()
    if keep.numel() < 2:
        return None, skipped
    onehot, counts = onehot[:, keep], counts[keep]
    rows = onehot.sum(1) > 0
    x, onehot = x[rows], onehot[rows]
    sq = torch.cdist(x, x).pow(2)
    scale = sq.detach().sum() / max(1, x.shape[0] * (x.shape[0] - 1))
    kernel = sum(torch.exp(-sq / (2.0**k * scale.clamp(min=1e-12))) for k in KERNEL_POWERS) / len(KERNEL_POWERS)
    if estimator == "biased":
        means = onehot / counts[None, :]  # [B, G]: each group's mean-embedding weights
        inner = means.t() @ kernel @ means  # [G, G]: <mu_a, mu_b>
        within = torch.diagonal(inner)
        pair = within[:, None] + within[None, :] - 2.0 * inner
    else:
        kernel = kernel - torch.diag(torch.diagonal(kernel))  # i != j
        sums = onehot.t() @ kernel @ onehot  # [G, G]
        within = torch.diagonal(sums) / (counts * (counts - 1))
        cross = sums / (counts[:, None] * counts[None, :])
        pair = within[:, None] + within[None, :] - 2.0 * cross
    g = keep.numel()
    return pair.triu(diagonal=1).sum() / (g * (g - 1) / 2), skipped


class Mmd(Method):
    name = "mmd"
    uses_domains = True
    options = (
        Option("weight", 1.0, 0.0, "weight of the MMD term"),
        Option("estimator", "biased", help="biased (V-statistic, >= 0) or unbiased (U-statistic)", choices=ESTIMATORS),
    )

    def columns(self) -> list[str]:
        return ["loss_mmd", "mmd_skipped"]

    def terms(self, rep, targets, step, modules, tap=None) -> Terms:
        total, losses, skipped = rep.float().sum() * 0.0, [], 0
        for column, target in targets.items():
            loss, n_skipped = mmd_loss(rep, target, len(self.domains[column]), self.opts["estimator"])
            skipped += n_skipped
            if loss is not None:
                total = total + loss
                losses.append(float(loss.detach()))
        stats = {"loss_mmd": float(sum(losses)), "mmd_skipped": float(skipped)}  # 0.0 when every pair was skipped
        return Terms(self.opts["weight"] * total, stats)
