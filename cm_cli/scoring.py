"""Scoring a trained countermeasure on a manifest: whole utterances, or sliding windows (streaming).

Used by ``cm eval --run`` and ``cm demo``; batches and padding come from
``cm_cli.models.inference`` (the model's own length policy), as in training validation,
``cm embed`` and ``cm patch``. Scores are fp32 ``logit[bona fide] - logit[spoof]``
(higher = more bona fide, as in the ASVspoof evaluation packages). Audio is decoded at
16 kHz mono (stereo and 48 kHz audio downmixed and resampled); an optional degradation
spec is applied on the fly, so stress sweeps need no rendered audio. A row whose audio
has fewer samples than the model's receptive field (``models.inference.minimum_samples``)
is scored from padding (or tiling) and flagged ``short``, never silently.

Streaming (``chunk_ms``): each utterance is cut into windows of ``chunk_ms`` with
``overlap_ms`` overlap (a tail window ends at the last sample; an utterance shorter
than a window is one window of its own length); every window is fitted by the model's
length policy exactly as a whole utterance of that length would be (a repeat-policy
model tiles a 0.5 s window to its 64,600 samples) but never cropped, and the window
scores are aggregated (mean, min, max, median). ``causal_windows = K`` scores only the
first K windows, i.e. what a detector that decides after K windows has heard.
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

__all__ = [
    "ScoringConfig",
    "ScoreResult",
    "window_starts",
    "aggregate_scores",
    "score_frame",
    "score_cache_key",
    "AGGREGATES",
]

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
    causal_windows: int | None = None  # streaming: aggregate only the first K windows

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise CmError(f"batch size must be at least 1, got {self.batch_size}")
        if self.aggregate not in AGGREGATES:
            raise CmError(f"unknown aggregate {self.aggregate!r}", f"choose one of {', '.join(AGGREGATES)}")
        if self.chunk_ms is not None:
            if self.chunk_ms <= 0:
                raise CmError(f"chunk length must be positive, got {self.chunk_ms} ms", option="chunk_ms")
            if not 0 <= self.overlap_ms < self.chunk_ms:
                raise CmError(f"overlap must be in [0, chunk length), got {self.overlap_ms} ms", option="overlap_ms")
        if self.causal_windows is not None:
            if self.chunk_ms is None:
                raise CmError(
                    "causal windows need streaming windows: give a chunk length as well",
                    option=("causal_windows", "chunk_ms"),
                )
            if self.causal_windows < 1:
                raise CmError(f"causal windows must be at least 1, got {self.causal_windows}")


@dataclass
class ScoreResult:
    scores: "pd.DataFrame"  # utt_id, score (+ n_windows in streaming mode), short
    failures: list[dict] = field(default_factory=list)  # {utt_id, error}
    n_scored: int = 0


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
    text = json.dumps(
        {"checkpoint": checkpoint_sha256, "scoring": asdict(config), "manifest": manifest_sha256}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _degrader(frame: "pd.DataFrame", spec_text: str | None, seed: int):
    """The on-the-fly degradation as a dataset transform (seeded per utterance), or None."""
    if not spec_text:
        return None
    from cm_cli.degrade.registry import apply_spec, validate_spec

    spec = validate_spec(spec_text)
    utt_ids = frame["utt_id"].astype(str).tolist()

    def transform(wave: np.ndarray, index: int) -> np.ndarray:
        out, _ = apply_spec(wave, 16000, spec, seed=seed, utt_id=utt_ids[index])
        return out

    return transform


def _window_scores(model, batch, config: ScoringConfig, *, device) -> dict[int, list[float]]:
    """Per row of ``batch``: the scores of its (first ``causal_windows``) sliding windows."""
    from cm_cli.models.inference import forward_scores

    chunk = int(round(config.chunk_ms * 16))
    hop = chunk - int(round(config.overlap_ms * 16))
    owners, windows = [], []
    for row, wave in zip(batch.indices, batch.waves):
        starts = window_starts(int(wave.shape[-1]), chunk, hop)[: config.causal_windows]
        for start in starts:
            owners.append(row)
            windows.append(wave[start : start + chunk])
    values = np.concatenate(
        [
            forward_scores(model, windows[i : i + config.batch_size], device=device, keep_long=True)
            for i in range(0, len(windows), config.batch_size)
        ]
    )
    per_row: dict[int, list[float]] = {}
    for row, value in zip(owners, values):
        per_row.setdefault(row, []).append(value)
    return per_row


def score_frame(
    loaded: Any,
    frame: "pd.DataFrame",
    *,
    data_root: str | Path | None,
    config: ScoringConfig = ScoringConfig(),
    device: Any = "cpu",
    seed: int = 0,
    workers: int = 0,
) -> ScoreResult:
    """Score every row of a manifest frame with a ``LoadedModel`` (or a bare model); failures listed."""
    import pandas as pd

    from cm_cli.core.progress import task
    from cm_cli.models.inference import forward_scores, iter_audio_batches, minimum_samples

    model = getattr(loaded, "model", loaded)
    streaming = config.chunk_ms is not None
    minimum = minimum_samples(model)
    short = np.zeros(len(frame), dtype=bool)  # fewer real samples than the receptive field: scored from padding
    scores = np.full(len(frame), np.nan)
    n_windows = np.zeros(len(frame), dtype=np.int64)
    failures: list[dict] = []
    batches = iter_audio_batches(
        frame,
        data_root=data_root,
        batch_size=config.batch_size,
        transform=_degrader(frame, config.degrade, seed),
        workers=workers,
    )
    with task(len(frame), "scoring") as advance:
        for batch in batches:
            failures.extend({"utt_id": str(frame["utt_id"].iloc[i]), "error": msg} for i, msg in batch.failures)
            short[batch.indices] = [int(w.shape[-1]) < minimum for w in batch.waves]
            if batch.indices and not streaming:
                scores[batch.indices] = forward_scores(model, batch.waves, device=device, keep_long=config.full_length)
                n_windows[batch.indices] = 1
            elif batch.indices:
                for row, vals in _window_scores(model, batch, config, device=device).items():
                    scores[row] = aggregate_scores(vals, config.aggregate)
                    n_windows[row] = len(vals)
            advance(len(batch.indices) + len(batch.failures))
    ok = n_windows > 0  # scored rows (a NaN score is the model's, reported below, not a failure)
    out = pd.DataFrame({"utt_id": frame["utt_id"].astype(str).to_numpy()[ok], "score": scores[ok].astype(np.float32)})
    if streaming:
        out["n_windows"] = n_windows[ok]
    out["short"] = short[ok]
    if not np.isfinite(out["score"]).all():
        bad = out.loc[~np.isfinite(out["score"]), "utt_id"].tolist()
        raise CmError(
            f"the model produced non-finite scores for {len(bad)} utterance(s), e.g. {bad[0]}",
            "the checkpoint may have diverged; evaluate an earlier checkpoint",
        )
    return ScoreResult(out, failures, int(ok.sum()))
