"""One evaluation library for ``cm eval``: readers, settings, the metrics-directory writer.

``readers`` turns anyone's score/key files into one table; ``settings.EvalSettings``
holds every option that shapes the metrics, for ``--scores`` and ``--run`` alike;
``writer`` writes the metrics directory; ``model`` scores a trained model on a
manifest per condition; ``features`` scores a ``cm train --features`` head from a
``cm embed`` cache through the same writer; ``audio`` scores audio files directly. The metrics
themselves live in ``cm_cli.metrics`` (pure, no I/O).
"""

from cm_cli.evaluation.features import evaluate_features
from cm_cli.evaluation.model import Condition, ConditionResult, ModelEvalResult, evaluate_model, plan_conditions
from cm_cli.evaluation.settings import EvalSettings

__all__ = [
    "Condition",
    "ConditionResult",
    "EvalSettings",
    "ModelEvalResult",
    "evaluate_features",
    "evaluate_model",
    "plan_conditions",
]
