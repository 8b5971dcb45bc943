"""Detection metrics of the ASVspoof evaluation packages, exactly, plus breakdowns and intervals.

Scores: higher = more bona fide. Pure numpy, float64, one sort per set of trials.
Submodules: ``trials`` (sort once), ``det``, ``dcf``, ``hull`` (PAV/ROCCH), ``summary``
(``Metrics``), ``kinds`` (score kinds), ``breakdown``, ``ood`` (gap, seen/unseen split),
``clusters`` (bootstrap units), ``stats`` (the one resampling engine: bootstrap, seed tests),
``calibration``, ``collapse``, ``report`` (``evaluate_scores``).
"""

from cm_cli.metrics.dcf import CostParams, act_dcf, min_dcf
from cm_cli.metrics.det import DetCurve, det_curve
from cm_cli.metrics.kinds import ScoreKind, to_llr
from cm_cli.metrics.summary import Metrics, auc, cllr, compute_metrics, eer, eer_and_min_dcf, eer_rocch, min_cllr

__all__ = [
    "CostParams",
    "DetCurve",
    "Metrics",
    "ScoreKind",
    "act_dcf",
    "auc",
    "cllr",
    "compute_metrics",
    "det_curve",
    "eer",
    "eer_and_min_dcf",
    "eer_rocch",
    "min_cllr",
    "min_dcf",
    "to_llr",
]
