"""One evaluation library for ``cm eval``: readers, settings, the metrics-directory writer.

``readers`` turns anyone's score/key files into one table; ``settings.EvalSettings``
holds every option that shapes the metrics, for ``--scores`` and ``--run`` alike;
``writer`` writes the metrics directory; ``model`` scores a trained model on a
manifest per condition; ``audio`` scores audio files directly. The metrics
themselves live in ``cm_cli.metrics`` (pure, no I/O).
"""

from cm_cli.evaluation.model import Condition, ConditionResult, ModelEvalResult, evaluate_model, plan_conditions
from cm_cli.evaluation.settings import EvalSettings

__all__ = ["Condition", "ConditionResult", "EvalSettings", "ModelEvalResult", "evaluate_model", "plan_conditions"]
