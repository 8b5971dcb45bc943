"""Report block: train/test overlap as `cm eval --run` recorded it in metrics.json (``overlap``).

Why its own block: a result scored on speakers or source utterances the model was trained on is not a
held-out result, and the reader should see that next to the numbers rather than in a console warning.
"""

from __future__ import annotations

from typing import Sequence

from cm_cli.report.blocks import FigureDir, Note
from cm_cli.report.collect import EvalInfo
from cm_cli.report.tables import Table

__all__ = ["overlap_blocks"]


def overlap_blocks(evals: Sequence[EvalInfo], corpus: str, fig: FigureDir) -> list:
    import pandas as pd

    rows = []
    for e in evals:
        overlap = (e.metrics or {}).get("overlap")
        if not isinstance(overlap, dict):
            continue
        rows.append(
            {
                "System": e.label,
                "scored rows": str(overlap.get("n_scored", "–")),
                **{
                    f"same {k[:-1] if k != 'utterances' else 'utterance'}": str(overlap.get(k, "–"))
                    for k in ("speakers", "sources", "utterances")
                },
                "training rows": str(overlap.get("n_train", "–")),
            }
        )
    if not rows:
        return [
            Note(
                f"No train/test overlap recorded for {corpus}: `cm eval --run RUN_DIR --manifest M --out DIR` "
                "records it when the run's config.json names its manifest"
            )
        ]
    leaking = [r["System"] for r in rows if any(r[c] not in ("0", "–") for c in r if c.startswith("same "))]
    blocks: list = [
        Table(
            fig.table_name(f"overlap-{corpus}"),
            f"Scored rows of {corpus} sharing a speaker, a source utterance or the utterance itself with "
            "the run's training rows (cm eval --run, metrics.json overlap).",
            pd.DataFrame(rows),
        )
    ]
    if leaking:
        blocks.append(
            f"Not held out: {', '.join(leaking)} scored rows that share speakers or source utterances with "
            "their training rows; their numbers overstate performance on unseen speech."
        )
    return blocks
