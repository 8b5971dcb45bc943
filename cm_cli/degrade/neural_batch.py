"""Corpus mode for neural codecs: on a GPU the jobs of a chunk share one batched model call.

Why: ``cm degrade`` runs one job per output file, and a neural codec called once per utterance
leaves a GPU idle between tiny calls. Before a chunk's jobs run, the chain of each job is
run up to its first neural step (the steps before it are deterministic per utterance and seed),
and those inputs are coded in one batch per (codec, model, level) by ``neural.prefetch``; each
job then recomputes its chain as before and its neural step finds the output waiting. Jobs
that fail, or whose output is reused, fall back to the per-file path, which reports them.

On the CPU a padded batch is slower (``neural.batching_pays`` has the measurements), so there
the default is one utterance per call, which also writes exactly what the one-file path writes
(DAC has no padding mask: a batch's zero tail reaches the last frames of its shorter utterances).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

from cm_cli.core.errors import CmError

__all__ = ["BATCH_SIZE", "default_batch_size", "has_neural_step", "prefetched_jobs"]

BATCH_SIZE = 16  # utterances per model call on an accelerator


def default_batch_size(device: str | None = None) -> int:
    """Utterances per codec call in corpus mode: ``BATCH_SIZE`` on a GPU, 1 on the CPU (``neural.batching_pays``)."""
    from cm_cli.degrade.neural import batching_pays, codec_device

    return BATCH_SIZE if batching_pays(codec_device(device)) else 1


def _first_neural(spec_text: str):
    from cm_cli.degrade.registry import REGISTRY, as_spec

    spec = as_spec(spec_text)
    for index, step in enumerate(spec.steps):
        deg = REGISTRY.get(step.name)
        if deg is not None and deg.kind == "neural":
            return spec, index
    return spec, None


def has_neural_step(specs: Iterable[str]) -> bool:
    try:
        return any(_first_neural(s)[1] is not None for s in specs)
    except CmError:
        return False  # an invalid spec is reported by its own job


def _prefetch_chunk(chunk: list, *, sample_rate: int | None, seed: int) -> None:
    from cm_cli.core.specs import Spec
    from cm_cli.data.audio import load_audio
    from cm_cli.degrade.neural import prefetch
    from cm_cli.degrade.registry import apply_spec, resolve_params

    items = []
    for job in chunk:
        spec, index = _first_neural(job.spec)
        if index is None or Path(job.output).exists():
            continue
        try:
            samples, rate = load_audio(job.source_path, sample_rate=sample_rate)
            x, _ = apply_spec(samples, rate, Spec(spec.steps[:index]), seed=seed, utt_id=str(job.row["utt_id"]))
        except Exception:  # the job's own run reports what is wrong with this file
            continue
        step = spec.steps[index]
        items.append((step.name, x, rate, resolve_params(step)))
    if items:
        try:
            prefetch(items)
        except CmError:
            pass  # missing weights etc.: every job raises it on its own, as one line each


def prefetched_jobs(
    jobs: Iterable, run_job: Callable, *, sample_rate: int | None, seed: int, batch_size: int | None = None
) -> Iterator[dict]:
    """``run_job`` over ``jobs`` in order, each chunk of ``batch_size`` prefetched through one batched codec call.

    ``batch_size`` None: ``default_batch_size()`` for the codecs' device; 1: no prefetch, each job codes its own.
    """
    batch_size = default_batch_size() if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise CmError(f"codec batch size must be at least 1, got {batch_size}", option="batch_size")
    if batch_size == 1:
        yield from (run_job(j) for j in jobs)
        return
    chunk: list = []
    for job in jobs:
        chunk.append(job)
        if len(chunk) >= batch_size:
            _prefetch_chunk(chunk, sample_rate=sample_rate, seed=seed)
            yield from (run_job(j) for j in chunk)
            chunk = []
    if chunk:
        _prefetch_chunk(chunk, sample_rate=sample_rate, seed=seed)
        yield from (run_job(j) for j in chunk)
