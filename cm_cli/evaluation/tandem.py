"""The t-DCF and SASV blocks of metrics.json: ``cm eval --asv-scores`` and ``--sasv-scores``.

Plugged into ``EvalSettings.blocks``, so ``--scores`` and ``--run`` both report min t-DCF
(revised and legacy) the same way. The t-DCF is computed on the scores as given: it is a
minimum over thresholds, so any monotone score kind gives the same value.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["tdcf_block_maker", "sasv_metrics"]


def tdcf_block_maker(
    asv_path: str | Path, *, score_col: str | None = None, key_col: str | None = None, id_col: str | None = None
):
    """A block maker adding ``overall.min_tdcf``, ``overall.min_tdcf_legacy`` (and ``t_eer`` where the
    ASV trials pair with CM trials by id), the ``tdcf`` block, and t-DCF columns to each breakdown."""
    from cm_cli.evaluation.asv_scores import read_asv_scores

    asv = read_asv_scores(asv_path, score_col=score_col, key_col=key_col, id_col=id_col)

    def make(df: "pd.DataFrame", result: dict) -> dict[str, Any]:
        import numpy as np

        from cm_cli.metrics.tandem import tandem_metrics

        table = df[np.isfinite(df["score"].to_numpy(dtype=np.float64))]
        by_columns = list((result.get("by") or {}).keys())
        groups = {
            col: (
                table[col].astype(object).where(table[col].notna(), "none").to_numpy(),
                asv[col].astype(object).where(asv[col].notna(), "none").to_numpy() if col in asv.columns else None,
            )
            for col in by_columns
            if col in table.columns
        }
        paired = "utt_id" in asv.columns and "utt_id" in table.columns
        block = tandem_metrics(
            table["score"].to_numpy(),
            (table["label"] == "bonafide").to_numpy(),
            asv["key"].to_numpy(),
            asv["score"].to_numpy(),
            cm_ids=table["utt_id"].to_numpy() if paired else None,
            asv_ids=asv["utt_id"].to_numpy() if paired else None,
            groups=groups,
        )
        for col, values in block.pop("by", {}).items():
            for value, record in values.items():
                target = (result.get("by") or {}).get(col, {}).get(value)
                if target is not None:
                    target.update({k: v for k, v in record.items() if k.startswith("min_tdcf")})
        overall = {k: block[k] for k in ("min_tdcf", "min_tdcf_legacy", "t_eer") if k in block}
        tdcf = {**block["tdcf"], "asv_scores": str(asv_path), "n_asv_trials": int(len(asv))}
        return {"overall": overall, "tdcf": tdcf}

    return make


def sasv_metrics(path: str | Path, *, key: str | Path | None = None) -> dict:
    """ASVspoof 5 Track 2 metrics of a SASV score file: a-DCF, and with CM and ASV scores, t-EER and min t-DCF."""
    import numpy as np

    from cm_cli.evaluation.asv_scores import read_sasv_scores
    from cm_cli.metrics.sasv import a_dcf, t_eer
    from cm_cli.metrics.tdcf import min_tdcf

    df = read_sasv_scores(path, key=key)
    keys = df["key"].to_numpy().astype(str)
    block: dict[str, Any] = {
        "source": str(path),
        "n_trials": int(len(df)),
        "n": {k: int((keys == k).sum()) for k in ("target", "nontarget", "spoof")},
    }
    if "sasv_score" in df.columns:
        s = df["sasv_score"].to_numpy()
        result = a_dcf(s[keys == "target"], s[keys == "nontarget"], s[keys == "spoof"])
        block.update(
            {"a_dcf": result.min_a_dcf, "a_dcf_threshold": result.threshold, "a_dcf_params": result.to_dict()["costs"]}
        )
    if {"cm_score", "asv_score"} <= set(df.columns):
        block["t_eer"] = t_eer(df["cm_score"].to_numpy(), df["asv_score"].to_numpy(), keys)
        if "cm_label" in df.columns:
            bona = (df["cm_label"].astype(str) == "bonafide").to_numpy()
            cm = df["cm_score"].to_numpy(dtype=np.float64)
            tdcf = min_tdcf(cm[bona], cm[~bona], formulation="asvspoof5")
            block["min_tdcf"] = tdcf.min_tdcf
            block["tdcf"] = {k: v for k, v in tdcf.to_dict().items() if k != "min_tdcf"}
    if "a_dcf" not in block and "t_eer" not in block:
        raise CmError(f"{path}: nothing to evaluate (no sasv-score, nor cm-score and asv-score)")
    return block
