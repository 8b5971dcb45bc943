"""Scored trials as an ASVspoof challenge's official submission score file (``cm eval --export``).

Why: so cm's scores go to the official scorer or leaderboard unchanged. Scores are
written as given (higher = more bona fide, every challenge's convention), at full
float64 precision (``repr``), one line per trial, in the table's order:

- ``asvspoof5``: Track 1 CM score file of the ASVspoof 5 evaluation package
  (``evaluation-package/README.md``, read by ``util.load_tsv``: ``pd.read_csv(sep="\\t",
  header=0)``): a tab-separated file with the header ``filename<TAB>cm-score``.
- ``asvspoof2021``: the 2021 eval-package CM score file (``main.py --cm-score-file``,
  read by ``pd_tools.load_score``: ``pd.read_csv(sep=" ", names=["trial", "score"],
  skipinitialspace=True)``): ``TRIAL SCORE``, space-separated, no header.
- ``asvspoof2019``: the CM score file of the 2019 t-DCF package
  (``evaluate_tDCF_asvspoof19.py``: ``np.genfromtxt(..., dtype=str)``, columns id,
  source, key, score): ``TRIAL SYSTEM_ID KEY SCORE``, space-separated, no header;
  SYSTEM_ID is the attack (``-`` for bona fide and where unknown, as in the 2019 CM
  protocol), KEY is ``bonafide``/``spoof``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["EXPORT_FORMATS", "export_scores"]

EXPORT_FORMATS = ("asvspoof5", "asvspoof2021", "asvspoof2019")


def _text(value) -> str:
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()
    return text or "-"


def _check_token(values, what: str, target: Path) -> None:
    bad = next((v for v in values if any(c.isspace() for c in v)), None)
    if bad is not None:
        raise CmError(
            f"export {target}: {what} {bad!r} contains whitespace, which the official readers split on",
            "rename the trials (or the attack values) without spaces",
        )


def export_scores(df: "pd.DataFrame", fmt: str, target: str | Path, *, source: str = "scores") -> Path:
    """Write ``df`` (``utt_id``, ``score``; ``label`` and ``attack`` for 2019) in the official layout ``fmt``."""
    import numpy as np

    from cm_cli.core.artifacts import atomic_path

    target = Path(target)
    if fmt not in EXPORT_FORMATS:
        raise CmError(f"export format {fmt!r} is unknown", f"use one of {', '.join(EXPORT_FORMATS)}", option="export")
    if "utt_id" not in df.columns:
        raise CmError(
            f"{source}: no trial id column, so no submission file can name the trials",
            "give the scores an id column (utt_id, filename, ...) or name it",
            option="id_col",
        )
    scores = df["score"].to_numpy(dtype=np.float64)
    if not np.isfinite(scores).all():
        first = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise CmError(
            f"{source}: {int((~np.isfinite(scores)).sum())} scores are NaN or infinite (first: "
            f"{df['utt_id'].iloc[first]}); an official score file needs a number on every line"
        )
    ids = [_text(v) for v in df["utt_id"].tolist()]
    _check_token(ids, "trial id", target)
    values = [repr(float(v)) for v in scores.tolist()]
    if fmt == "asvspoof5":
        lines = ["filename\tcm-score", *(f"{i}\t{v}" for i, v in zip(ids, values))]
    elif fmt == "asvspoof2021":
        lines = [f"{i} {v}" for i, v in zip(ids, values)]
    else:
        if "label" not in df.columns:
            raise CmError(
                f"{source}: no labels, and the 2019 score file has a key column",
                "give the key file or a label column",
                option="key",
            )
        keys = [str(v) for v in df["label"].tolist()]
        attacks = [
            _text(v) if k == "spoof" else "-"
            for v, k in zip(df["attack"].tolist() if "attack" in df.columns else [None] * len(df), keys)
        ]
        _check_token(attacks, "attack", target)
        lines = [f"{i} {a} {k} {v}" for i, a, k, v in zip(ids, attacks, keys, values)]
    with atomic_path(target) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
