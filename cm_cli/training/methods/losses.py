"""The task losses of ``--loss``: cross-entropy and OC-Softmax (Zhang, Jiang & Duan, IEEE SPL 2021).

A criterion is ``criterion(logits, labels, weight=None, reduction="mean")`` with logits
``[B, 2]`` (index 1 bona fide), labels ``[B]`` (1 = bona fide) and optional class weights
``[2]`` (index 0 spoof); ``reduction="none"`` gives the per-row losses (GroupDRO).

OC-Softmax needs the model's score to be a cosine: ``--loss ocsoftmax`` builds the
model with ``score_head="cosine"`` (``cm_cli.models.heads.CosineScore``), whose logits
are ``[0, cos(x, w)]``, so ``score = logit[1] - logit[0] = cos(x, w)`` with ``w`` the learned
bona fide direction: higher = more bona fide, and every metric reads it unchanged. The
loss (paper eq. 4; official code yzyouzhang/AIR-ASVspoof ``loss.py``), with the paper's
bona fide label 0 written here as ``y = bona fide``:
``log(1 + exp(alpha * (m0 - s)))`` for bona fide rows and ``log(1 + exp(alpha * (s - m1)))``
for spoof rows, ``m0 = 0.9``, ``m1 = 0.2``, ``alpha = 20``.
"""

from __future__ import annotations

from cm_cli.core.errors import UsageError

__all__ = ["OC_M_BONAFIDE", "OC_M_SPOOF", "OC_ALPHA", "cross_entropy", "oc_softmax", "criterion", "score_head"]

OC_M_BONAFIDE = 0.9  # Zhang et al. 2021, m0
OC_M_SPOOF = 0.2  # m1
OC_ALPHA = 20.0  # scale alpha


def _reduce(per_row, labels, weight, reduction: str):
    if weight is not None:
        per_row = per_row * weight[labels]
    if reduction == "none":
        return per_row
    return per_row.sum() / weight[labels].sum() if weight is not None else per_row.mean()


def cross_entropy(logits, labels, weight=None, reduction: str = "mean"):
    import torch.nn.functional as F

    return F.cross_entropy(logits.float(), labels, weight=weight, reduction=reduction)


def oc_softmax(logits, labels, weight=None, reduction: str = "mean"):
    import torch.nn.functional as F

    from cm_cli.models.heads import score_from_logits

    score = score_from_logits(logits.float())
    margin = labels.float() * (OC_M_BONAFIDE - score) + (1 - labels.float()) * (score - OC_M_SPOOF)
    return _reduce(F.softplus(OC_ALPHA * margin), labels, weight, reduction)


_CRITERIA = {"ce": cross_entropy, "ocsoftmax": oc_softmax}
_SCORE_HEADS = {"ce": "linear", "ocsoftmax": "cosine"}


def criterion(name: str):
    if name not in _CRITERIA:
        raise UsageError(f"unknown loss {name!r}", f"choose one of {', '.join(_CRITERIA)}")
    return _CRITERIA[name]


def score_head(name: str) -> str:
    """The model score head a loss needs (``linear`` logits, or the ``cosine`` one-class score)."""
    criterion(name)
    return _SCORE_HEADS[name]
