"""``cm eval --run R --features DIR``: evaluate a ``cm train --features`` head like any other run.

A feature head scores the pooled statistics a ``cm embed`` cache holds, not audio, so
there is one condition (the cache as embedded) and no degradation or streaming. Its
scores go through the same ``ConditionWriter`` and ``write_conditions`` as
``evaluate_model``: scores.parquet with the manifest's columns, the metrics directory
under the same ``EvalSettings`` (seen domains read from the run's config.json), and
cm.json provenance. Rows ``cm embed`` could not embed (its failures.parquet) become this
evaluation's failures, as unreadable audio does for ``evaluate_model``; rows missing
from the cache for any other reason are an error (the cache is not of this manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cm_cli.core.errors import CmError
from cm_cli.evaluation.model import ConditionWriter, ModelEvalResult, plan_conditions
from cm_cli.evaluation.settings import EvalSettings

__all__ = ["embed_failures", "evaluate_features"]


def embed_failures(features_dir: str | Path) -> dict[str, str]:
    """utt_id -> error of the rows ``cm embed`` recorded as failed in ``features_dir`` (every shard)."""
    import pandas as pd

    path = Path(features_dir)
    folder = path if path.is_dir() else path.parent
    out: dict[str, str] = {}
    for file in sorted(folder.glob("failures*.parquet")):
        frame = pd.read_parquet(file)
        if "utt_id" not in frame.columns:
            continue
        errors = frame["error"].astype(str) if "error" in frame.columns else pd.Series("", index=frame.index)
        out.update(zip(frame["utt_id"].astype(str), errors))
    return out


@dataclass
class _FeatureScores(ConditionWriter):
    """The head's scores of this shard's manifest rows, computed once (there is one condition)."""

    table: Any = None  # utt_id, score
    failures: list = None  # {utt_id, error} records

    def scores(self, condition):
        return self.table, list(self.failures or []), False


def _score_rows(source: Path, features_dir: Path, part, head, torch_device):
    """(scores, failures): rows the cache lacks because `cm embed` failed on them are failures,
    any other missing row is an error naming how many and the first."""
    from cm_cli.training.features import check_head_matches, feature_paths, load_feature_tables, score_features

    features = load_feature_tables(features_dir)
    check_head_matches(head[1], features, features_dir)
    present = set(features.ids.tolist())
    ids = part["utt_id"].astype(str).tolist()
    absent = [u for u in ids if u not in present]
    failed = {k: v for p in feature_paths(features_dir) for k, v in embed_failures(p).items()} if absent else {}
    unknown = [u for u in absent if u not in failed]
    if unknown:
        raise CmError(
            f"{len(unknown)} manifest row(s) of this split have no features in {features_dir}, e.g. {unknown[0]}",
            "embed this manifest and split with `cm embed --pooling meanstd` "
            "(and the backbone and layers the head was trained on)",
        )
    failures = [{"utt_id": u, "error": f"cm embed: {failed[u]}"} for u in absent]
    missing = set(absent)
    scores = score_features(
        source, features, utt_ids=[u for u in ids if u not in missing], device=torch_device, head=head
    )
    scores["score"] = scores["score"].astype("float32")  # the head's output precision, as score_frame writes
    return scores, failures


def evaluate_features(
    source: str | Path,
    features_dir: str | Path,
    manifest: str | Path,
    out_dir: str | Path,
    *,
    settings: EvalSettings | None = None,
    split: str | None = "eval",
    device: str = "cpu",
    torch_device: Any = "cpu",
    shard: Any = None,
    force: bool = False,
    by: Sequence[str] = (),
) -> ModelEvalResult:
    """Score ``manifest``'s ``split`` rows with the feature head ``source`` from the cache
    ``features_dir`` and write the evaluation directory ``out_dir`` (see the module docstring)."""
    from cm_cli.core.artifacts import sha256_file
    from cm_cli.core.shard import Shard
    from cm_cli.evaluation.model import _manifest_rows, _manifest_sha, write_conditions
    from cm_cli.evaluation.settings import seen_domains_of_run
    from cm_cli.training.features import feature_paths, load_feature_head

    source, manifest, out_dir = Path(source), Path(manifest), Path(out_dir)
    paths = feature_paths(features_dir)  # several tables of a fused head: joined by ","
    for path in paths:
        if not path.exists():
            raise CmError(
                f"feature table {path} does not exist", "give the output directory of `cm embed`", option="features"
            )
    features_dir = paths[0] if len(paths) == 1 else ",".join(str(p) for p in paths)
    shard = shard or Shard()
    settings = settings or EvalSettings(by=tuple(by))
    frame = _manifest_rows(manifest, split, settings.by)
    head = load_feature_head(source, device=torch_device)
    checkpoint = Path(head[1]["path"])
    settings = settings.with_seen(seen_domains_of_run(source, required=False))
    manifest_sha = _manifest_sha(manifest)
    options = {
        "run": str(source.resolve()),
        "checkpoint_sha256": sha256_file(checkpoint),
        "scoring": "feature_head",
        "features": ",".join(str(p.resolve()) for p in paths),
        "manifest": str(manifest.resolve()),
        "manifest_sha256": manifest_sha,
        "split": split,
        **settings.options(),
    }
    part = frame.iloc[shard.select(list(range(len(frame))))].reset_index(drop=True)
    scores, failures = _score_rows(source, features_dir, part, head, torch_device)
    scorer = _FeatureScores(source=source, part=part, settings=settings, shard=shard, table=scores, failures=failures)
    return write_conditions(
        scorer,
        plan_conditions(),
        out_dir,
        options=options,
        inputs=[manifest, checkpoint, *paths, *settings.inputs()],
        device=device,
        force=force,
    )
