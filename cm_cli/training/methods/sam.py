"""Sharpness-aware minimisation: SAM (Foret et al., ICLR 2021) and ASAM (Kwon et al., ICML 2021).

An optimiser-step wrapper, not a loss: with the gradient ``g`` of the method's whole
loss at ``w`` (domain terms included), move to ``w + e``, take the gradient there, go
back to ``w`` and let the base optimiser (AdamW) step with that second gradient.
- SAM: ``e = rho * g / ||g||`` (Foret et al. eq. 2; default rho 0.05, the paper's and
  the reference implementation's default).
- ASAM: ``e = rho * T^2 g / ||T g||`` with ``T = |w| + eta`` on weight tensors and ``T = 1``
  on biases and other vectors (Kwon et al. eq. 9 and the official SamsungLabs/ASAM
  ``ascent_step``; defaults rho 0.5, eta 0.01 from that repository's example).
``||.||`` is the L2 norm over every trainable parameter that has a gradient (+1e-12).
BatchNorm running statistics are updated by the first pass only (momentum 0 in the
second). ``--method sam`` / ``asam`` are ERM with this step; ``--sam-rho R`` wraps any
other method (``--sam-adaptive`` for ASAM), e.g. DANN or CORAL.
"""

from __future__ import annotations

import contextlib

from cm_cli.training.methods.base import Method

__all__ = ["Sam", "Asam", "SharpnessStep", "SAM_RHO", "ASAM_RHO", "ASAM_ETA", "frozen_batchnorm_stats"]

SAM_RHO = 0.05  # Foret et al. 2021, the reference implementation's default
ASAM_RHO = 0.5  # Kwon et al. 2021, SamsungLabs/ASAM example default
ASAM_ETA = 0.01  # same source


class Sam(Method):
    name = "sam"
    sharpness = "sam"


class Asam(Method):
    name = "asam"
    sharpness = "asam"


class SharpnessStep:
    """``perturb`` (after the first backward) and ``restore`` (after the second) around the base step."""

    def __init__(self, rho: float, *, adaptive: bool = False, eta: float = ASAM_ETA):
        self.rho, self.adaptive, self.eta = float(rho), bool(adaptive), float(eta)
        self._saved: list = []

    def perturb(self, named_params) -> float:
        """Move every parameter with a gradient to ``w + e``; returns ``||g||`` (``||T g||`` for ASAM)."""
        import torch

        with torch.no_grad():
            items = [(n, p) for n, p in named_params if p.requires_grad and p.grad is not None]
            scales = [(p.abs() + self.eta) if self.adaptive and p.dim() > 1 else None for _, p in items]
            scaled = [p.grad if t is None else p.grad * t for (_, p), t in zip(items, scales)]
            norm = torch.norm(torch.stack([g.float().norm(2) for g in scaled]), 2) if scaled else torch.zeros(())
            factor = self.rho / (float(norm) + 1e-12)
            self._saved = []
            for (_, p), t, g in zip(items, scales, scaled):
                self._saved.append((p, p.detach().clone()))
                e = (g if t is None else g * t) * factor
                p.add_(e.to(p.dtype))
        return float(norm)

    def restore(self) -> None:
        """Put back the exact weights ``perturb`` moved (a copy, not a subtraction)."""
        import torch

        with torch.no_grad():
            for p, old in self._saved:
                p.copy_(old)
        self._saved = []


@contextlib.contextmanager
def frozen_batchnorm_stats(module):
    """BatchNorm layers keep their running statistics (momentum 0) inside the block."""
    from torch.nn.modules.batchnorm import _BatchNorm

    saved = [(m, m.momentum) for m in module.modules() if isinstance(m, _BatchNorm)]
    for m, _ in saved:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum
