"""``cm eval --run RUN --audio PATH...``: score audio files directly with a trained model.

Files or folders (searched recursively for ``AUDIO_SUFFIXES``), any container PyAV decodes, any sample rate,
stereo mixed to mono and resampled to the model's rate. Each file gets a score
(higher = more bona fide) and a decision against the run's dev EER threshold
(checkpoint ``metrics["dev_eer_threshold"]``) or ``--threshold``; where the run has a
calibration, ``p_bonafide`` is its LLR turned into a probability at equal priors.
With ``chunk_ms`` each file also gets per-window scores.

Refused, each as a ``failures`` entry and never a score: files the one audio intake
refuses (NaN/Inf samples, a truncated WAV, not audio), files shorter than the model's
receptive field (``models.inference.minimum_samples``, at least 25 ms: a score on
them would mostly measure padding, whatever the length policy), and any file whose
score comes out non-finite. When no file could be scored the call raises instead.

Long files (over ``WHOLE_FILE_MAX_S`` seconds, from the header) are decoded as a
stream and scored in consecutive windows, so memory does not grow with duration: a
window is the model's fixed input length (its length policy's target, e.g. 64,600
samples for AASIST) or ``FULL_POLICY_WINDOW_S`` seconds for a ``full``-policy model, or
the ``chunk_ms`` window when given; the last window ends at the last sample. The file's
score is the mean of its window scores (the streaming ``mean`` aggregation), and
``windows_scored`` counts them. Windows are batched up to ``batch_size`` windows or
``batch_size x BATCH_SECONDS`` of audio, so the model's activations are bounded too.
Shorter files are scored whole, as a manifest row is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["AUDIO_SUFFIXES", "AudioScores", "find_audio", "load_model_for_audio", "score_audio", "plot_windows"]

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".webm", ".mp4", ".aac", ".amr")  # PyAV decodes all
WHOLE_FILE_MAX_S = 60.0  # longer files are scored in windows (module docstring)
FULL_POLICY_WINDOW_S = 20.0  # window for models that take any length (SSL front ends)
BATCH_SECONDS = 4.0  # a long file's forward passes hold at most batch_size x this much audio


@dataclass
class AudioScores:
    """Per-file scores (``path, duration, score, decision`` and ``p_bonafide`` when calibrated),
    per-window scores (``path, start_s, end_s, score``) when chunked, and unreadable files."""

    table: "pd.DataFrame"
    failures: list[dict] = field(default_factory=list)  # {path, error}
    windows: "pd.DataFrame | None" = None
    threshold: float | None = None
    threshold_source: str | None = None  # "option", "dev_eer" or None (no decision)
    calibration: dict | None = None

    def to_dict(self) -> dict:
        per_file = self.table.to_dict("records")
        if self.windows is not None:
            grouped = {p: g[["start_s", "end_s", "score"]].to_dict("records") for p, g in self.windows.groupby("path")}
            for rec in per_file:
                rec["windows"] = grouped.get(rec["path"], [])
        return {
            "scores": per_file,
            "failures": self.failures,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "calibrated": self.calibration is not None,
        }


def find_audio(paths: Sequence[str | Path]) -> tuple[list[Path], list[dict]]:
    """Files named directly, and audio files under folders (recursively, sorted); missing paths
    are returned as failures."""
    files: list[Path] = []
    missing: list[dict] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            missing.append({"path": str(path), "error": "no such file or directory"})
    return list(dict.fromkeys(files)), missing


def load_model_for_audio(source: str | Path, *, device: Any = "cpu"):
    """The model through the one model path (run dir, cm checkpoint, official AASIST or
    SSL-AASIST checkpoint); any failure is one line."""
    from cm_cli.models.loading import load_model

    try:
        return load_model(source, device=device)
    except CmError as exc:
        raise CmError(f"cannot load a model from {source}: {exc.message}", exc.hint, option=exc.option) from None
    except Exception as exc:  # weights torch cannot rebuild
        raise CmError(
            f"cannot load a model from {source}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from None


def _p_bonafide(scores, calibration: dict):
    import numpy as np

    llr = (
        float(calibration["slope"]) * np.asarray(scores, dtype=np.float64)
        + float(calibration["offset"])
        - float(calibration.get("prior_log_odds", 0.0))
    )
    return 1.0 / (1.0 + np.exp(-llr))


def _windows(wave, rate: int, chunk_ms: float, overlap_ms: float) -> list[tuple[float, float, Any]]:
    from cm_cli.scoring import window_starts

    chunk = int(round(chunk_ms * rate / 1000))
    hop = chunk - int(round(overlap_ms * rate / 1000))
    return [
        (s / rate, min(s + chunk, int(wave.shape[-1])) / rate, wave[s : s + chunk])
        for s in window_starts(int(wave.shape[-1]), chunk, hop)
    ]


def _long_window(loaded, rate: int) -> int:
    from cm_cli.models.inference import inference_policy

    policy = inference_policy(loaded.model)
    if policy.policy != "full" and policy.target:
        return int(policy.target)
    return int(round(FULL_POLICY_WINDOW_S * rate))


def _score_long(
    loaded, path: Path, *, rate: int, window: int, hop: int, batch_size: int, device: Any, minimum: int
) -> tuple[float, float, list[dict]]:
    """Mean window score, duration and window rows of a long file, decoded as a stream (bounded memory)."""
    import numpy as np
    import torch

    from cm_cli.data.audio import iter_audio_windows, require_min_samples
    from cm_cli.models.inference import forward_scores

    spans: list[tuple[int, Any]] = []
    rows: list[dict] = []
    end = 0

    def flush() -> None:
        values = forward_scores(loaded.model, [w for _, w in spans], device=device, keep_long=True)
        rows.extend(
            {"path": str(path), "start_s": s / rate, "end_s": (s + int(w.shape[-1])) / rate, "score": float(v)}
            for (s, w), v in zip(spans, values)
        )
        spans.clear()

    budget = batch_size * int(round(BATCH_SECONDS * rate))  # samples per forward pass, whatever the window
    for start, wave in iter_audio_windows(path, sample_rate=rate, window=window, hop=hop):
        require_min_samples(len(wave), minimum, rate, path)
        spans.append((start, torch.from_numpy(np.ascontiguousarray(wave))))
        end = max(end, start + len(wave))
        if len(spans) >= batch_size or sum(int(w.shape[-1]) for _, w in spans) >= budget:
            flush()
    if spans:
        flush()
    scores = np.array([r["score"] for r in rows], dtype=np.float64)
    return float(scores.mean()), end / rate, rows


def score_audio(
    loaded,
    files: Sequence[Path],
    *,
    threshold: float | None = None,
    chunk_ms: float | None = None,
    overlap_ms: float = 0.0,
    full_length: bool = False,
    batch_size: int = 16,
    device: Any = "cpu",
    whole_file_max_s: float = WHOLE_FILE_MAX_S,
) -> AudioScores:
    """Score each file (and each window with ``chunk_ms``) with a ``models.loading.LoadedModel``;
    see the module docstring."""
    import math

    import numpy as np
    import pandas as pd
    import torch

    from cm_cli.core.progress import task
    from cm_cli.data.audio import audio_duration, load_audio, require_min_samples
    from cm_cli.models.inference import forward_scores, minimum_samples

    if chunk_ms is not None and (chunk_ms <= 0 or not 0 <= overlap_ms < chunk_ms):
        raise CmError(
            f"chunk {chunk_ms:g} ms with overlap {overlap_ms:g} ms: need chunk > overlap >= 0",
            option=("chunk_ms", "overlap_ms"),
        )
    rate = int(loaded.sample_rate)
    minimum = minimum_samples(loaded.model)
    rows: list[dict] = []
    window_rows: list[dict] = []
    failures: list[dict] = []

    def fail(path: Path, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, CmError) else f"{type(exc).__name__}: {exc}"[:300]
        failures.append({"path": str(path), "error": message})

    def add(path: Path, duration: float, value: float, windows: list[dict], n_windows: int | None) -> None:
        if not math.isfinite(value) or any(not math.isfinite(w["score"]) for w in windows):
            failures.append({"path": str(path), "error": "the model gave a non-finite score; not reported"})
            return
        rows.append(
            {
                "path": str(path),
                "duration": duration,
                "score": value,
                **({"windows_scored": n_windows} if n_windows is not None else {}),
            }
        )
        window_rows.extend(windows)

    with task(len(files), "scoring audio") as advance:
        for start in range(0, len(files), batch_size):
            batch: list[tuple[Path, Any]] = []
            for path in files[start : start + batch_size]:
                try:
                    seconds = audio_duration(path)
                    if seconds is not None and seconds > whole_file_max_s:
                        if chunk_ms is not None:
                            window = int(round(chunk_ms * rate / 1000))
                            hop = window - int(round(overlap_ms * rate / 1000))
                        else:
                            window = hop = _long_window(loaded, rate)
                        value, duration, spans = _score_long(
                            loaded,
                            path,
                            rate=rate,
                            window=window,
                            hop=hop,
                            batch_size=batch_size,
                            device=device,
                            minimum=minimum,
                        )
                        add(path, duration, value, spans if chunk_ms is not None else [], len(spans))
                        continue
                    wave, _ = load_audio(path, sample_rate=rate, mono=True)
                    require_min_samples(len(wave), minimum, rate, path)
                except Exception as exc:  # CmError, or a decoder crash on a corrupt file
                    fail(path, exc)
                    continue
                batch.append((path, torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))))
            if batch:
                values = forward_scores(loaded.model, [w for _, w in batch], device=device, keep_long=full_length)
                for (path, wave), value in zip(batch, values):
                    spans = []
                    if chunk_ms is not None:
                        pieces = _windows(wave, rate, chunk_ms, overlap_ms)
                        scores = np.concatenate(
                            [
                                forward_scores(
                                    loaded.model,
                                    [w for _, _, w in pieces[i : i + batch_size]],
                                    device=device,
                                    keep_long=True,
                                )
                                for i in range(0, len(pieces), batch_size)
                            ]
                        )
                        spans = [
                            {"path": str(path), "start_s": s, "end_s": e, "score": float(v)}
                            for (s, e, _), v in zip(pieces, scores)
                        ]
                    add(path, wave.shape[-1] / rate, float(value), spans, None)
            advance(min(batch_size, len(files) - start))
    if not rows and failures:
        first = failures[0]
        raise CmError(
            f"no file could be scored ({len(failures)} refused; first: {first['error']})",
            "every file was unreadable, too short, or had NaN/Inf samples",
        )
    columns = ["path", "duration", "score"] + (["windows_scored"] if any("windows_scored" in r for r in rows) else [])
    table = pd.DataFrame(rows, columns=columns)
    if "windows_scored" in table:  # None for files scored whole (object dtype: no NaN in JSON)
        table["windows_scored"] = pd.Series([r.get("windows_scored") for r in rows], dtype=object)
    dev_threshold = loaded.dev_threshold
    used, source = (
        (threshold, "option")
        if threshold is not None
        else (dev_threshold, "dev_eer" if dev_threshold is not None else None)
    )
    table["decision"] = [None if used is None else ("bonafide" if s >= used else "spoof") for s in table["score"]]
    calibration = loaded.calibration
    usable = calibration if isinstance(calibration, dict) and {"slope", "offset"} <= set(calibration) else None
    if usable is not None:
        table["p_bonafide"] = _p_bonafide(table["score"], usable)
    windows = pd.DataFrame(window_rows, columns=["path", "start_s", "end_s", "score"]) if chunk_ms is not None else None
    return AudioScores(table, failures, windows, used, source, usable)


def plot_windows(result: AudioScores, path: str | Path) -> Path:
    """Per-window scores over time, one line per file, with the decision threshold."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name, group in result.windows.groupby("path", sort=False):
        ax.plot(0.5 * (group["start_s"] + group["end_s"]), group["score"], marker=".", label=Path(name).name)
    if result.threshold is not None:
        ax.axhline(
            result.threshold, color="k", linestyle="--", linewidth=1, label=f"threshold ({result.threshold_source})"
        )
    ax.set_xlabel("time (s, window centre)")
    ax.set_ylabel("score (higher = bona fide)")
    if len(ax.get_legend_handles_labels()[0]) <= 12:
        ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
