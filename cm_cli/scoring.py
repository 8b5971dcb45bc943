"""Scoring a trained countermeasure on a manifest: batch and streaming (sliding-window) inference.

Used by ``cm eval --run``, ``cm patch`` and ``cm demo`` so every number comes from the
same code path. Scores are fp32 ``logit[bona fide] - logit[spoof]`` (higher = more
bona fide, as in the ASVspoof evaluation packages). Audio is decoded at 16 kHz mono
(stereo and 48 kHz audio downmixed and resampled); an optional degradation spec is
applied on the fly, so stress sweeps need no rendered audio.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ScoringConfig", "LoadedModel", "ScoreResult", "load_scoring_model", "window_starts",
           "aggregate_scores", "score_frame", "score_cache_key", "AGGREGATES"]

AGGREGATES = ("mean", "min", "max", "median")


@dataclass(frozen=True)
class ScoringConfig:
    """Preprocessing that changes scores: part of the cache key."""

    batch_size: int = 16
    full_length: bool = False
    chunk_ms: float | None = None
    overlap_ms: float = 0.0
    aggregate: str = "mean"
    degrade: str | None = None  # canonical degradation spec applied before scoring
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise CmError(f"batch size must be at least 1, got {self.batch_size}")
        if self.aggregate not in AGGREGATES:
            raise CmError(f"unknown aggregate {self.aggregate!r}", f"choose one of {', '.join(AGGREGATES)}")
        if self.chunk_ms is not None:
            if self.chunk_ms <= 0:
                raise CmError(f"--chunk-ms must be positive, got {self.chunk_ms}")
            if not 0 <= self.overlap_ms < self.chunk_ms:
                raise CmError(f"--overlap-ms must be in [0, chunk-ms), got {self.overlap_ms}")


@dataclass
class LoadedModel:
    model: Any
    config: dict  # model_config of the checkpoint
    checkpoint: Path
    checkpoint_sha256: str
    run_dir: Path | None = None


@dataclass
class ScoreResult:
    scores: "pd.DataFrame"  # utt_id, score (+ n_windows in streaming mode)
    failures: list[dict] = field(default_factory=list)  # {utt_id, error}
    n_scored: int = 0


def load_scoring_model(source: str | Path, *, device: Any = "cpu") -> LoadedModel:
    """A model from a ``cm train`` run directory (its best checkpoint) or a checkpoint file."""
    from cm_cli.core.artifacts import sha256_file
    from cm_cli.models.checkpoint import load_weights, read_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    source = Path(source)
    if not source.exists():
        raise CmError(f"{source}: no such run directory or checkpoint", "give a `cm train` run dir or a .pt file")
    payload = read_checkpoint(source)
    path = Path(payload["path"])
    model = build_model(ModelConfig.from_dict(dict(payload["model_config"])))
    load_weights(model, payload)
    model = model.to(device).eval()
    run_dir = source if source.is_dir() else None
    return LoadedModel(model, dict(payload["model_config"]), path, sha256_file(path), run_dir)


def window_starts(n: int, chunk: int, hop: int) -> list[int]:
    """Starts of sliding windows covering all ``n`` samples, the tail included.

    Windows are ``chunk`` long; when the stride leaves a tail, one more window ends
    exactly at the last sample (overlapping its neighbour more), so no window is
    shorter than ``chunk`` and nothing is ever tiled. An utterance shorter than
    ``chunk`` is one window of its own length.
    """
    if n <= chunk:
        return [0]
    starts = list(range(0, n - chunk + 1, hop))
    if starts[-1] + chunk < n:
        starts.append(n - chunk)
    return starts


def aggregate_scores(values: Sequence[float], how: str) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float({"mean": np.mean, "min": np.min, "max": np.max, "median": np.median}[how](values))


def score_cache_key(checkpoint_sha256: str, config: ScoringConfig, manifest_sha256: str) -> str:
    """Scores are reused only for the same weights, preprocessing, precision and manifest."""
    text = json.dumps({"checkpoint": checkpoint_sha256, "scoring": asdict(config), "manifest": manifest_sha256},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _minimum_samples(model) -> int:
    """Fewest samples the backbone's front end accepts (its receptive field, at least 25 ms)."""
    backbone = getattr(model, "backbone", None)
    field = getattr(backbone, "receptive_field", None)
    return max(400, int(field) if isinstance(field, (int, float)) else 0)


def _forward_scores(model, waves: list, *, device, full_length: bool, streaming: bool) -> np.ndarray:
    import torch

    from cm_cli.models.length import LengthPolicy, apply_length_policy

    minimum = _minimum_samples(model)
    if any(int(w.shape[-1]) < minimum for w in waves):
        # shorter than the front end can analyse: zero-pad (never tile) to its receptive field
        waves = [torch.nn.functional.pad(w, (0, max(0, minimum - int(w.shape[-1])))) for w in waves]
    policy = model.config.length
    if full_length or streaming:
        # streaming windows and --full-length never tile audio: pad with zeros where a
        # fixed input size is required, else score at the natural length
        if policy.policy == "full" or policy.target is None:
            policy = LengthPolicy("full")
        else:
            policy = LengthPolicy("zero", max(policy.target, max(int(w.shape[-1]) for w in waves)))
        batch, lengths = apply_length_policy(waves, policy)
    else:
        batch, lengths = model.prepare_batch(waves)
    with torch.inference_mode():
        out = model(batch.to(device), lengths.to(device))
    return out.score.float().cpu().numpy().astype(np.float64)


def score_frame(
    loaded: LoadedModel,
    frame: "pd.DataFrame",
    *,
    data_root: str | Path | None,
    config: ScoringConfig = ScoringConfig(),
    device: Any = "cpu",
    seed: int = 0,
) -> ScoreResult:
    """Score every row of a manifest frame; undecodable rows are listed in ``failures``."""
    import pandas as pd

    from cm_cli.core.progress import task
    from cm_cli.data.datasets import ManifestAudio, bucket_batches, collate_audio

    transform = None
    if config.degrade:
        from cm_cli.degrade.registry import apply_spec, validate_spec

        spec = validate_spec(config.degrade)
        utt_ids = frame["utt_id"].astype(str).tolist()

        def transform(wave: np.ndarray, index: int) -> np.ndarray:
            out, _ = apply_spec(wave, 16000, spec, seed=seed, utt_id=utt_ids[index])
            return out

    dataset = ManifestAudio(frame, data_root=data_root, transform=transform)
    batches = bucket_batches(dataset.durations(), config.batch_size, shuffle=False)
    streaming = config.chunk_ms is not None
    chunk = int(round((config.chunk_ms or 0) * 16))
    hop = chunk - int(round(config.overlap_ms * 16)) if streaming else 0
    scores = np.full(len(dataset), np.nan)
    n_windows = np.zeros(len(dataset), dtype=np.int64)
    failures: list[dict] = []
    model = loaded.model
    with task(len(dataset), "scoring") as advance:
        for indices in batches:
            batch = collate_audio([dataset[i] for i in indices])
            failures.extend({"utt_id": str(frame["utt_id"].iloc[i]), "error": msg} for i, msg in batch.failures)
            if len(batch):
                waves = [batch.waves[r, : int(batch.lengths[r])] for r in range(len(batch))]
                if not streaming:
                    values = _forward_scores(model, waves, device=device, full_length=config.full_length, streaming=False)
                    scores[batch.indices.numpy()] = values
                    n_windows[batch.indices.numpy()] = 1
                else:
                    owners, windows = [], []
                    for row, wave in zip(batch.indices.tolist(), waves):
                        for start in window_starts(int(wave.shape[-1]), chunk, hop):
                            owners.append(row)
                            windows.append(wave[start:start + chunk])
                    values = np.concatenate([
                        _forward_scores(model, windows[i:i + config.batch_size], device=device, full_length=True, streaming=True)
                        for i in range(0, len(windows), config.batch_size)
                    ])
                    per_row: dict[int, list[float]] = {}
                    for row, value in zip(owners, values):
                        per_row.setdefault(row, []).append(value)
                    for row, vals in per_row.items():
                        scores[row] = aggregate_scores(vals, config.aggregate)
                        n_windows[row] = len(vals)
            advance(len(indices))
    ok = ~np.isnan(scores)
    out = pd.DataFrame({"utt_id": frame["utt_id"].astype(str).to_numpy()[ok], "score": scores[ok].astype(np.float32)})
    if streaming:
        out["n_windows"] = n_windows[ok]
    if not np.isfinite(out["score"]).all():
        bad = out.loc[~np.isfinite(out["score"]), "utt_id"].tolist()
        raise CmError(f"the model produced non-finite scores for {len(bad)} utterance(s), e.g. {bad[0]}",
                      "the checkpoint may have diverged; evaluate an earlier checkpoint")
    return ScoreResult(out, failures, int(ok.sum()))
