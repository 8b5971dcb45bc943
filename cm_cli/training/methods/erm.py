"""Empirical risk minimisation: the task loss alone (the base ``Method``)."""

from __future__ import annotations

from cm_cli.training.methods.base import Method

__all__ = ["Erm"]


class Erm(Method):
    name = "erm"
