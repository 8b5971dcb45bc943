"""The training history: one schema for the rows ``fit`` appends and the ``history.parquet`` it writes.

``HISTORY_COLUMNS`` is the fixed part of every history table, in order; a DANN run
adds two columns per domain column (``loss_domain_<c>``, ``domain_acc_<c>``) right
after ``loss_domain``, and a method adds its own columns (``Method.columns()``, e.g.
``loss_coral``) right after ``adv_grad_norm``. ``history_columns`` gives the exact list
written, and rows never carry a key outside it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

__all__ = [
    "HISTORY_COLUMNS",
    "DEV_COLUMNS",
    "history_columns",
    "history_row",
    "record_dev",
    "write_history",
    "MicroStats",
]

# the columns every run writes, in order (dev_* are NaN on rows without a validation)
HISTORY_COLUMNS = (
    "step",
    "epoch",
    "lr",
    "lambda",
    "loss_task",
    "loss_domain",
    "adv_grad_norm",
    "dev_eer",
    "dev_min_dcf",
    "dev_eer_threshold",
    "dev_coded_eer",
    "dev_coded_min_dcf",
)
DEV_COLUMNS = ("dev_eer", "dev_min_dcf", "dev_eer_threshold", "dev_coded_eer", "dev_coded_min_dcf")


def history_columns(domains: Iterable[str] = (), extra: Iterable[str] = ()) -> list[str]:
    """Every column of a run's history table, in the order written (``extra``: the method's columns)."""
    domains = list(domains)
    head = list(HISTORY_COLUMNS[:6])
    per_domain = [f"loss_domain_{c}" for c in domains] + [f"domain_acc_{c}" for c in domains]
    return head + per_domain + [HISTORY_COLUMNS[6]] + list(extra) + list(HISTORY_COLUMNS[7:])


def _mean(values) -> float:
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else float("nan")


class MicroStats:
    """Losses and accuracies of the micro-batches of one optimiser step."""

    def __init__(self) -> None:
        self.task: list[float] = []
        self.dom: list[float] = []
        self.adv: list[float] = []
        self.cols: dict[str, list[float]] = {}
        self.acc: dict[str, list[float]] = {}
        self.extra: dict[str, list[float]] = {}

    def add(self, task: float, dom=None, adv: float | None = None, extra: Mapping[str, float] | None = None) -> None:
        self.task.append(task)
        for column, value in (extra or {}).items():
            self.extra.setdefault(column, []).append(float(value))
        if dom is not None:
            self.dom.append(float(dom.total.detach()))
            self.adv.append(float("nan") if adv is None else adv)
            for column, value in dom.losses.items():
                self.cols.setdefault(column, []).append(value)
            for column, value in dom.accuracies.items():
                self.acc.setdefault(column, []).append(value)


def history_row(
    step: int, epoch: int, lr: float, lam: float, micro: MicroStats, domains: Iterable[str], extra: Iterable[str] = ()
) -> dict:
    """One optimiser step's row: every column of ``history_columns(domains, extra)``, dev columns NaN."""
    row = {
        "step": step,
        "epoch": epoch,
        "lr": lr,
        "lambda": lam,
        "loss_task": _mean(micro.task),
        "loss_domain": _mean(micro.dom),
        "adv_grad_norm": _mean(micro.adv),
    }
    for column in domains:
        row[f"loss_domain_{column}"] = _mean(micro.cols.get(column, []))
        row[f"domain_acc_{column}"] = _mean(micro.acc.get(column, []))
    extra = list(extra)
    for column in extra:
        row[column] = _mean(micro.extra.get(column, []))
    row.update({c: float("nan") for c in DEV_COLUMNS})
    return {c: row[c] for c in history_columns(domains, extra)}


def record_dev(row: dict, result: Mapping[str, float]) -> None:
    """Put a validation result (``dev_*`` keys) into a history row; other keys are ignored."""
    for column in DEV_COLUMNS:
        if column in result:
            row[column] = float(result[column])


def write_history(history: list[dict], domains: Iterable[str], path: Path, extra: Iterable[str] = ()) -> None:
    """``history.parquet`` with exactly ``history_columns(domains, extra)``."""
    import pandas as pd

    from cm_cli.core.artifacts import write_parquet

    columns = history_columns(domains, extra)
    frame = pd.DataFrame([{c: r.get(c, float("nan")) for c in columns} for r in history], columns=columns)
    for column in columns[2:]:
        frame[column] = frame[column].astype("float64")
    frame["step"] = frame["step"].astype("int64")
    frame["epoch"] = frame["epoch"].astype("int64")
    write_parquet(frame, path)
