"""One sentence per analysis saying what its numbers measure, so no table is read as more than it is.

The sentences come from the analysis outputs where they record them (``measures``,
``control_measures``, the CKA estimator, the patching alignment) and are inferred,
with a warning, for outputs written before cm recorded them.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from cm_cli.analysis.loao import FROZEN_MEASURES, RETRAIN_MEASURES

__all__ = ["FROZEN_MEASURES", "RETRAIN_MEASURES", "measures_line", "cka_estimator_text", "patching_alignment_text"]

_MINIBATCH = re.compile(r"^(biased|debiased)-minibatch(\d+)$")


def measures_line(what: str, text: str) -> str:
    """``**What this measures** (what): text.`` as one report paragraph."""
    text = str(text).rstrip(".")
    return f"**What this measures** ({what}): {text}."


def cka_estimator_text(estimator: str, summary: Mapping[str, Any] | None = None) -> str:
    """What a ``cka.parquet`` estimator name means; biased minibatch values (older cm) are flagged."""
    if summary and summary.get("measures") and str(summary.get("estimator")) == estimator:
        return str(summary["measures"])
    match = _MINIBATCH.match(estimator)
    if match and match.group(1) == "biased":
        return (
            f"linear CKA from the biased HSIC summed over minibatches of {match.group(2)} rows. WARNING: this "
            "estimator is inflated (independent 256-d representations score about 0.8 at batch 64); recompute "
            f"with `cm cka --batch-size {match.group(2)}`, which uses the unbiased HSIC"
        )
    if match:
        return (
            f"linear CKA from the unbiased HSIC (Song et al. 2012) accumulated over minibatches of "
            f"{match.group(2)} rows (Nguyen, Raghu & Kornblith 2021)"
        )
    if estimator == "biased":
        return "linear CKA from the biased HSIC (Kornblith et al. 2019) on all rows at once"
    if estimator == "debiased":
        return "linear CKA from the unbiased HSIC (Song et al. 2012) on all rows at once"
    return f"estimator {estimator!r} not recognised: read the producing command before comparing values"


def patching_alignment_text(summary: Mapping[str, Any] | None) -> str:
    """Whether base and donor shared an initialisation, as recorded by ``cm patch`` (``aligned``,
    ``alignment``, ``allow_unaligned``), and what that makes the patching effects mean."""
    summary = summary or {}
    alignment = summary.get("alignment")
    aligned = summary.get("aligned")
    if isinstance(alignment, Mapping):
        aligned = alignment.get("aligned", aligned)
        reason = alignment.get("reason") or alignment.get("basis") or ""
    else:
        reason = str(alignment) if alignment else ""
    reason = f" ({reason})" if reason else ""
    if aligned is True:
        return (
            f"base and donor share their initialisation{reason}: each patched site swaps in the donor's "
            "activation in an aligned representation, so a change in EER measures what that site carries"
        )
    if aligned is False:
        allowed = " (run with --allow-unaligned)" if summary.get("allow_unaligned") else ""
        return (
            f"UNALIGNED: base and donor do not share an initialisation{reason}{allowed}; activations are "
            "swapped between unaligned representations, so EER changes measure breakage as much as transfer"
        )
    return (
        "alignment not recorded (made before cm patch checked it): if base and donor were trained from "
        "independent initialisations, the effects measure breakage, not transfer"
    )
