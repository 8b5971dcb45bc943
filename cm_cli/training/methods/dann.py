"""DANN (Ganin & Lempitsky 2015): domain classifiers behind a gradient reversal layer.

The heads and losses live in ``cm_cli.training.dann``; this module states the method:
one head per ``--domain-column`` on the representation, the reversal coefficient from
``--lambda-schedule``/``--lambda-max``/``--lambda-warmup``, the summed domain
cross-entropies weighted by ``--domain-loss-weight``.
"""

from __future__ import annotations

from cm_cli.training.methods.base import Method, Terms

__all__ = ["Dann"]


class Dann(Method):
    name = "dann"
    uses_domains = True
    adversarial = True

    def __init__(self, config, domains, *, total_steps: int = 1):
        from cm_cli.training.schedules import GrlSchedule

        super().__init__(config, domains, total_steps=total_steps)
        self.grl = GrlSchedule(config.lambda_schedule, config.lambda_max, total_steps, config.lambda_warmup)

    def build(self, rep_dim: int):
        from cm_cli.training.dann import build_domain_heads

        return build_domain_heads(rep_dim, self.domains, hidden=self.config.domain_hidden)

    def lam(self, step: int) -> float:
        return self.grl(step)

    def terms(self, rep, targets, step, modules, tap=None) -> Terms:
        from cm_cli.training.dann import domain_losses

        dom = domain_losses(rep, modules, targets, self.grl(step), tap=tap)
        return Terms(self.config.domain_loss_weight * dom.total, dom=dom)
