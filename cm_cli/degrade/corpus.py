"""Degrading files and whole manifests: FLAC outputs, a degraded manifest, failures, shards, reruns.

Rows are streamed through a process pool one job (utterance x condition) at a
time, so memory does not grow with the manifest. Each output is written under a
temporary name, checked (its header must report the frames written, which a
disk-full truncation breaks), then renamed into place, and only then *committed*:
a line in the shard's journal ``.committed[.part-I-of-N].jsonl`` records its item
key (the spec, seed, sample rate, source utterance and the sha256 of the source
audio) and the output's size and sha256. A rerun reuses an item only when its
key and its file both match the journal; ``--force`` reuses nothing. A file that
cannot be read or coded is recorded in ``failures.parquet`` and the rest of the
corpus completes. SIGTERM stops after removing the item in progress (see
``cm_cli.core.signals``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.core.shard import Shard

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "FileResult",
    "CorpusResult",
    "degrade_file",
    "degrade_manifest",
    "Job",
    "plan_conditions",
    "item_key",
    "read_committed",
    "JOURNAL_GLOB",
]

JOURNAL_GLOB = ".committed*.jsonl"


@dataclass
class FileResult:
    output: Path
    spec: str
    sample_rate: int
    duration: float
    clipped: int
    warnings: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def degrade_file(
    source: str | Path,
    output: str | Path,
    spec: str,
    *,
    seed: int = 0,
    utt_id: str | None = None,
    sample_rate: int | None = None,
) -> FileResult:
    """Degrade one file (any format load_audio reads, downmixed) into ``output`` (format from its suffix)."""
    from cm_cli.data.audio import load_audio, save_audio
    from cm_cli.degrade.registry import apply_spec, validate_spec

    parsed = validate_spec(spec)
    source, output = Path(source), Path(output)
    samples, rate = load_audio(source, sample_rate=sample_rate)
    out, info = apply_spec(samples, rate, parsed, seed=seed, utt_id=utt_id or source.stem)
    clipped = save_audio(output, out, rate)
    warnings = list(info["warnings"])
    if clipped:
        warnings.append(f"{clipped} sample(s) clipped at full scale when writing {output.name}")
    return FileResult(output, parsed.canonical(), rate, len(out) / rate, clipped, warnings, info)


@dataclass(frozen=True)
class Job:
    """One output file: a source row under one condition."""

    row: dict
    spec: str  # canonical spec applied
    label: str  # domain label
    slug: str  # folder under audio/
    utt_id: str
    output: str
    source_path: str


@dataclass
class CorpusResult:
    out_dir: Path
    manifest: Path | None
    n_written: int = 0
    n_skipped: int = 0
    n_failed: int = 0
    n_clipped_files: int = 0
    n_clipped_samples: int = 0
    warnings: dict = field(default_factory=dict)
    failures: Path | None = None
    already_done: bool = False
    conditions: list = field(default_factory=list)
    redone: list = field(default_factory=list)  # outputs of a finished run found missing or changed, redone


def plan_conditions(specs: Sequence[str] = (), condition: str | None = None) -> list[str]:
    """Expand ``--chain`` values (each may be a '|' sweep) into canonical specs, in order."""
    from cm_cli.core.specs import expand_sweep
    from cm_cli.degrade.registry import validate_spec

    out: list[str] = []
    for text in specs:
        for spec in expand_sweep(text):
            validate_spec(spec)
            if spec.canonical() not in out:
                out.append(spec.canonical())
    if condition:
        from cm_cli.degrade.conditions import get_condition

        for spec in get_condition(condition).specs():
            validate_spec(spec)
    return out


def _jobs(
    rows: Iterator[dict],
    out_dir: Path,
    *,
    specs: Sequence[str],
    condition: str | None,
    policy,
    variants: int,
    seed: int,
    data_root: Path | None,
) -> Iterator[Job]:
    from cm_cli.core.specs import parse_spec
    from cm_cli.data.manifest import resolve_audio_path
    from cm_cli.degrade.conditions import pick_condition
    from cm_cli.degrade.noise import stable_rng
    from cm_cli.degrade.policy import draw

    audio = out_dir / "audio"
    for row in rows:
        source_id = str(row["utt_id"])
        source_path = str(resolve_audio_path(str(row["path"]), data_root))
        for text in specs:
            slug = parse_spec(text).slug()
            yield Job(
                row, text, text, slug, f"{source_id}__{slug}", str(audio / slug / f"{source_id}.flac"), source_path
            )
        if condition:
            spec = pick_condition(condition, seed=seed, utt_id=source_id)
            cid = condition.upper()
            yield Job(
                row,
                spec.canonical(),
                cid,
                cid,
                f"{source_id}__{cid}",
                str(audio / cid / f"{source_id}.flac"),
                source_path,
            )
        if policy is not None:
            for k in range(variants):
                spec, label = draw(policy, stable_rng(seed, source_id, "variant", k))
                slug = spec.slug()
                uid = f"{source_id}__{slug}__v{k}"
                yield Job(
                    row, spec.canonical(), label, slug, uid, str(audio / slug / f"{source_id}__v{k}.flac"), source_path
                )


_WORKER_STATE: dict[str, Any] = {}


def _init_worker(
    ffmpeg: str | None,
    sample_rate: int | None,
    seed: int,
    committed: dict | None = None,
    out_dir: str | None = None,
    in_pool: bool = False,
) -> None:
    from cm_cli.degrade.ffmpeg import set_preferred_ffmpeg

    if in_pool:
        from cm_cli.core.signals import raise_on_sigterm

        raise_on_sigterm()
    set_preferred_ffmpeg(ffmpeg)
    _WORKER_STATE.update(sample_rate=sample_rate, seed=seed, committed=committed or {}, out_dir=out_dir)


def item_key(
    *, spec: str, seed: int, sample_rate: int | None, source_utt_id: str, source_sha256: str | None, providers: str = ""
) -> str:
    """What an output depends on; an item is reused only when this matches its journal line.

    ``providers`` (registry.spec_providers) names the FFmpeg build coding each codec step, so switching
    between PyAV and a binary recomputes instead of reusing; it is left out of the key when empty."""
    fields = {
        "spec": spec,
        "seed": seed,
        "sample_rate": sample_rate,
        "source_utt_id": source_utt_id,
        "source_sha256": source_sha256,
    }
    if providers:
        fields["providers"] = providers
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _providers(spec: str) -> str:
    from cm_cli.degrade.registry import spec_providers

    try:
        return spec_providers(spec)
    except CmError:
        return ""  # an invalid spec fails below, where its error is reported for the item


def _candidates(specs: Sequence[str], condition: str | None, policy) -> list[str]:
    """Every spec a run may draw (specs, condition levels, policy entries)."""
    from cm_cli.degrade.conditions import get_condition

    candidates = list(specs)
    if condition:
        candidates += [s.canonical() for s in get_condition(condition).specs()]
    if policy is not None:
        candidates += [s.canonical() for entry in policy.entries for s in entry.candidates()]
    return candidates


def _run_providers(specs: Sequence[str], condition: str | None, policy) -> list[str]:
    """Provider and encoder of every codec step a run may draw (specs, condition levels, policy entries)."""
    candidates = _candidates(specs, condition, policy)
    return sorted({part for spec in candidates for part in _providers(spec).split(";") if part})


def _sha256(path: str | Path) -> str:
    from cm_cli.core.artifacts import sha256_file

    return sha256_file(Path(path))


def read_committed(out_dir: Path) -> dict[str, dict]:
    """Output path (relative to ``out_dir``) -> its last journal line, over every shard's journal."""
    committed: dict[str, dict] = {}
    for journal in sorted(out_dir.glob(JOURNAL_GLOB)):
        try:
            lines = journal.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill: that item is simply not committed
            if isinstance(entry, dict) and "output" in entry and "key" in entry:
                committed[str(entry["output"])] = entry
    return committed


def _reusable(output: Path, key: str) -> bool:
    out_dir = _WORKER_STATE.get("out_dir")
    if not out_dir or not output.is_file():
        return False
    entry = _WORKER_STATE.get("committed", {}).get(os.path.relpath(output, out_dir))
    if not entry or entry.get("key") != key:
        return False
    return output.stat().st_size == entry.get("size") and _sha256(output) == entry.get("sha256")


def _write_checked(output: Path, samples: "np.ndarray", rate: int) -> int:
    """Write under a temporary name, check the header against what was written, then rename into place."""
    import soundfile as sf

    from cm_cli.core.artifacts import write_error
    from cm_cli.data.audio import save_audio

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.partial-{os.getpid()}{output.suffix}")
    try:
        clipped = save_audio(tmp, samples, rate)
        try:  # decode it back: a truncated file may keep a plausible header, its frames are what tell
            back, back_rate = sf.read(str(tmp), dtype="float32", always_2d=True)
            frames = len(back)
        except Exception:  # libsndfile raises several types on a cut file
            frames, back_rate = -1, rate
        if frames != len(samples) or int(back_rate) != rate:
            raise CmError(
                f"cannot write {output}: the file written is truncated ({max(frames, 0)} of "
                f"{len(samples)} frames decode back); is the disk full?"
            )
        os.replace(tmp, output)
    except OSError as exc:
        raise write_error(output, exc) from None
    finally:
        if tmp.exists():
            with _suppress():
                tmp.unlink()
    return clipped


def _suppress():
    import contextlib

    return contextlib.suppress(OSError)


def _run_job(job: Job) -> dict:
    """Returns {'row': ..., 'commit': ...} on success or reuse, {'failure': ...} on error; never raises
    (a SIGTERM's ``Terminated``/``WorkerStop`` are not ``Exception``s and pass through)."""
    import soundfile as sf

    from cm_cli.data.audio import load_audio
    from cm_cli.degrade.registry import apply_spec

    output = Path(job.output)
    result: dict = {"warnings": [], "clipped": 0, "skipped": False}
    source_id = str(job.row["utt_id"])
    try:
        try:
            source_hash = _sha256(job.source_path)
        except OSError:
            source_hash = None  # load_audio below says what is wrong with the source
        key = item_key(
            spec=job.spec,
            seed=_WORKER_STATE.get("seed", 0),
            sample_rate=_WORKER_STATE.get("sample_rate"),
            source_utt_id=source_id,
            source_sha256=source_hash,
            providers=_providers(job.spec),
        )
        if source_hash is not None and _reusable(output, key):
            info = sf.info(str(output))
            rate, frames = int(info.samplerate), int(info.frames)
            result["skipped"] = True
        else:
            samples, rate = load_audio(job.source_path, sample_rate=_WORKER_STATE.get("sample_rate"))
            out, info = apply_spec(samples, rate, job.spec, seed=_WORKER_STATE.get("seed", 0), utt_id=source_id)
            result["clipped"] = _write_checked(output, out, rate)
            result["warnings"] = list(info["warnings"])
            frames = len(out)
            if source_hash is not None:
                result["commit"] = {
                    "output": os.path.relpath(output, _WORKER_STATE.get("out_dir") or "."),
                    "key": key,
                    "size": output.stat().st_size,
                    "sha256": _sha256(output),
                }
    except CmError as exc:
        return {"failure": _failure(job, exc.message)}
    except Exception as exc:  # an unexpected decoder/library error on one file must not stop the corpus
        return {"failure": _failure(job, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")}
    result["row"] = _output_row(job, rate, frames)
    return result


def _failure(job: Job, message: str) -> dict:
    return {
        "utt_id": job.utt_id,
        "source_utt_id": str(job.row["utt_id"]),
        "path": job.source_path,
        "degradation": job.spec,
        "error": message,
    }


def _output_row(job: Job, rate: int, frames: int) -> dict:
    from cm_cli.degrade.conditions import condition_fields, spec_bitrate_kbps
    from cm_cli.degrade.registry import codec_fields

    row = dict(job.row)
    codec, codec_q = codec_fields(job.spec)
    fields = condition_fields(job.label, job.spec)
    if fields is not None:  # ASVspoof 5 condition: CODEC is its id, CODEC_Q its ordinal level, as in the corpus
        codec, codec_q = fields
    bitrate = spec_bitrate_kbps(job.spec)
    row.update(
        utt_id=job.utt_id,
        source_utt_id=str(job.row["utt_id"]),
        path=job.output,
        degradation=job.spec,
        domain=job.label,
        codec=codec,
        codec_q=codec_q,
        bitrate_kbps=bitrate,
        duration=frames / rate if rate else None,
        sample_rate=rate,
    )
    return row


def degrade_manifest(
    manifest: str | Path,
    out_dir: str | Path,
    *,
    specs: Sequence[str] = (),
    condition: str | None = None,
    policy: "str | Any | None" = None,
    variants: int = 1,
    seed: int = 0,
    workers: int = 1,
    shard: Shard | None = None,
    split: str | None = None,
    data_root: str | Path | None = None,
    sample_rate: int | None = None,
    ffmpeg: str | None = None,
    force: bool = False,
    verify: bool = False,
    options: dict | None = None,
    batch_size: int | None = None,
) -> CorpusResult:
    """Degrade every row of ``manifest`` under each spec / the condition / ``variants`` policy draws.

    A rerun of a finished job first re-checks its committed outputs against the journal:
    existence and size always, the sha256 too with ``verify``; an output deleted or
    changed since is redone (``CorpusResult.redone``) instead of "already complete".
    ``batch_size``: utterances per neural-codec call (None: 16 on a GPU, 1 on the CPU;
    ``neural_batch``); a speed setting, so it is recorded in the summary, not the options."""
    from cm_cli.core.artifacts import OutputDir, write_parquet
    from cm_cli.data.manifests import load_manifest
    from cm_cli.degrade.policy import load_policy

    out_dir = Path(out_dir).expanduser().resolve()
    shard = shard or Shard()
    canonical = plan_conditions(specs, condition)
    policy_obj = load_policy(policy) if policy is not None else None
    if not canonical and not condition and policy_obj is None:
        raise CmError(
            "nothing to do: no degradation chain, codec, condition or policy given",
            option=("chain", "codec", "condition", "policy"),
        )
    if variants < 1:
        raise CmError(f"variants per utterance must be at least 1, got {variants}", option="variants")
    if batch_size is not None and batch_size < 1:
        raise CmError(f"codec batch size must be at least 1, got {batch_size}", option="batch_size")
    df = load_manifest(Path(manifest), split=split)
    rows_all = df.to_dict("records")
    del df
    lo, hi = shard.bounds(len(rows_all))
    rows = rows_all[lo:hi]
    del rows_all
    n_jobs = len(rows) * (len(canonical) + (1 if condition else 0) + (variants if policy_obj is not None else 0))
    opts = dict(options or {})
    opts.update(
        specs=canonical,
        condition=condition,
        policy=policy_obj.canonical() if policy_obj else None,
        variants=variants if policy_obj else None,
        seed=seed,
        sample_rate=sample_rate,
        split=split,
    )
    if ffmpeg:
        from cm_cli.degrade.ffmpeg import set_preferred_ffmpeg

        set_preferred_ffmpeg(ffmpeg)  # the providers recorded below are the ones the workers will use
    providers = _run_providers(canonical, condition, policy_obj)
    if providers:  # an output directory is never completed by a different FFmpeg build than it was begun with
        opts["codec_providers"] = providers
    part_name = "manifest.parquet" if shard.is_whole else shard.part_name()
    fail_name = "failures.parquet" if shard.is_whole else shard.part_name("failures")
    result = CorpusResult(
        out_dir, out_dir / part_name, conditions=canonical + ([condition.upper()] if condition else [])
    )
    with OutputDir(out_dir, kind="degraded", options=opts, inputs=[manifest], force=force, shard=shard) as target:
        if target.done and (out_dir / part_name).is_file():
            summary = target.record.get("summary", {})
            result.redone = _damaged_outputs(out_dir, out_dir / part_name, checksum=verify)
            if not summary.get("n_failed") and not result.redone:
                result.already_done = True
                result.n_skipped = int(summary.get("n_rows", 0))
                return result
            target.done = False  # retry the failed files; finished ones are skipped below
        journal_name = ".committed.jsonl" if shard.is_whole else f".committed.part-{shard.index}-of-{shard.count}.jsonl"
        committed = {} if force else read_committed(out_dir)
        jobs = _jobs(
            iter(rows),
            out_dir,
            specs=canonical,
            condition=condition,
            policy=policy_obj,
            variants=variants,
            seed=seed,
            data_root=Path(data_root) if data_root else None,
        )
        init = (ffmpeg, sample_rate, seed, committed, str(out_dir))
        from cm_cli.degrade.neural_batch import has_neural_step

        # neural codecs run in this process on --device (batched on a GPU: neural_batch), not in N model copies
        codec_batch = None
        if has_neural_step(_candidates(canonical, condition, policy_obj)):
            from cm_cli.degrade.neural import codec_device
            from cm_cli.degrade.neural_batch import default_batch_size

            device = codec_device()
            workers, codec_batch = 0, {"device": device, "batch_size": batch_size or default_batch_size(device)}
        else:
            workers = max(1, workers)
        out_rows, failures = _run_jobs(
            jobs,
            n_jobs,
            init,
            workers,
            out_dir / journal_name,
            committed,
            force,
            result,
            batch_size=codec_batch["batch_size"] if codec_batch else None,
        )
        result.n_failed = len(failures)
        write_parquet(_degraded_table(out_rows), out_dir / part_name)
        fail_path = _write_failures(failures, out_dir / fail_name, result)
        target.finish(
            outputs={"manifest": str(out_dir / part_name), "failures": str(fail_path) if failures else None},
            summary={
                "n_rows": len(out_rows),
                "n_written": result.n_written,
                "n_skipped": result.n_skipped,
                "n_failed": result.n_failed,
                "clipped_files": result.n_clipped_files,
                "warnings": result.warnings,
                **({"neural_codecs": codec_batch} if codec_batch else {}),
            },
        )
    return result


def _damaged_outputs(out_dir: Path, table_path: Path, *, checksum: bool) -> list[str]:
    """Outputs listed in a finished table that are missing, or differ in size (or sha256) from their journal line."""
    import pandas as pd

    try:
        paths = pd.read_parquet(table_path, columns=["path"])["path"].astype(str).tolist()
    except Exception:  # noqa: BLE001 - an unreadable table: everything is redone
        return [str(table_path)]
    committed = read_committed(out_dir)
    damaged = []
    for path in paths:
        rel = os.path.relpath(path, out_dir)
        entry = committed.get(rel)
        target = Path(path)
        if not target.is_file():
            damaged.append(rel)
        elif entry is not None and (
            target.stat().st_size != entry.get("size") or (checksum and _sha256(target) != entry.get("sha256"))
        ):
            damaged.append(rel)
    return damaged


def _degraded_table(out_rows: list[dict]) -> "pd.DataFrame":
    """The degraded manifest: the schema, ``source_utt_id``/``degradation`` always, ``bitrate_kbps`` numeric."""
    import pandas as pd

    from cm_cli.data.manifest import normalise_manifest

    table = (
        normalise_manifest(pd.DataFrame(out_rows)) if out_rows else normalise_manifest(pd.DataFrame(columns=["utt_id"]))
    )
    for column in ("source_utt_id", "degradation"):
        if column not in table.columns:
            table[column] = pd.Series(dtype="string")
    table["bitrate_kbps"] = pd.to_numeric(
        table.get("bitrate_kbps", pd.Series(index=table.index, dtype="float64")), errors="coerce"
    ).astype("Float64")
    return table


def _write_failures(failures: list[dict], fail_path: Path, result: CorpusResult) -> Path:
    """``failures.parquet`` when items failed; a stale one from an earlier run is removed."""
    import pandas as pd

    from cm_cli.core.artifacts import write_parquet

    if failures:
        write_parquet(pd.DataFrame(failures), fail_path)
        result.failures = fail_path
    elif fail_path.exists():
        fail_path.unlink()
    return fail_path


def _run_jobs(
    jobs: Iterator[Job],
    n_jobs: int,
    init: tuple,
    workers: int,
    journal_path: Path,
    committed: dict,
    force: bool,
    result: CorpusResult,
    *,
    batch_size: int | None = None,
) -> tuple[list[dict], list[dict]]:
    """Run the jobs, committing each finished file to the journal.

    ``workers`` >= 1: in that many worker processes, so a native abort inside a codec is a
    failure entry, never the end of the job (``-j 1`` too: one worker); 0: in this process
    (neural codecs, batched on the model's device).
    """
    from cm_cli.core.artifacts import write_error
    from cm_cli.core.progress import track
    from cm_cli.core.signals import stop_on_sigterm

    out_rows: list[dict] = []
    failures: list[dict] = []
    commits: list[dict] = []
    if workers <= 0:
        from cm_cli.degrade.neural_batch import prefetched_jobs

        _init_worker(*init)
        results = prefetched_jobs(jobs, _run_job, sample_rate=init[1], seed=init[2], batch_size=batch_size)
    else:
        results = _pool_results(jobs, init, workers)
    try:
        with stop_on_sigterm("cm degrade"), open(journal_path, "w" if force else "a", encoding="utf-8") as journal:
            for item in track(results, total=n_jobs, description="degrade"):
                if "commit" in item:
                    journal.write(json.dumps(item["commit"]) + "\n")
                    journal.flush()
                    commits.append(item["commit"])
                if "failure" in item:
                    failures.append(item["failure"])
                    continue
                out_rows.append(item["row"])
                _count(result, item)
    except OSError as exc:
        raise write_error(journal_path, exc) from None
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # a pool generator stopped early terminates its workers
    _compact_journal(journal_path, out_rows, committed, commits, result.out_dir)
    return out_rows, failures


def _pool_results(jobs: Iterator[Job], init: tuple, workers: int) -> Iterator[dict]:
    """``_run_job`` results in job order from ``workers`` processes, surviving a worker that dies.

    ``multiprocessing.Pool.imap`` waits forever for the result of a worker killed by a
    native abort (LAME's assertion on NaN input exits 134). A ``ProcessPoolExecutor``
    instead breaks (``BrokenProcessPool``): the jobs then in flight are each rerun alone
    in a process of their own, so the one that kills its process becomes a failure
    entry and the others their results; a fresh pool takes the rest.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")

    def start() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=init + (True,))

    pool = start()
    pending: deque = deque()
    source = iter(jobs)
    finished = False
    try:
        while True:
            while len(pending) < 4 * workers:
                job = next(source, None)
                if job is None:
                    break
                try:
                    pending.append((job, pool.submit(_run_job, job)))
                except BrokenProcessPool:
                    pending.append((job, None))
                    break
            if not pending:
                finished = True
                return
            job, future = pending.popleft()
            try:
                if future is None:
                    raise BrokenProcessPool("pool broken before submission")
                yield future.result()
                continue
            except (BrokenProcessPool, SystemExit):  # a worker died (or was stopped) under one of these jobs
                suspects = [(job, None)] + list(pending)
                pending.clear()
            _stop_pool(pool)
            for suspect, _ in suspects:
                _remove_partials(suspect)  # what a dead worker was writing
            pool = start()
            for suspect, done in suspects:
                if done is not None and done.done() and not done.cancelled() and done.exception() is None:
                    yield done.result()
                else:
                    yield _run_isolated(suspect, init, context)
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _stop_pool(pool)


def _stop_pool(pool) -> None:
    """Terminate a pool's workers (SIGTERM: each removes its temporary file) and reap them."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with _suppress():
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _remove_partials(job: Job) -> None:
    output = Path(job.output)
    for leftover in output.parent.glob(f".{output.stem}.partial-*{output.suffix}"):
        with _suppress():
            leftover.unlink()


def _isolated_main(conn, job: Job, init: tuple) -> None:
    _init_worker(*init, True)
    try:
        conn.send(_run_job(job))
    finally:
        conn.close()


def _run_isolated(job: Job, init: tuple, context) -> dict:
    """``_run_job(job)`` in a process of its own; its death (a native abort) is a failure entry for this job."""
    import signal

    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_isolated_main, args=(send, job, init), daemon=True)
    process.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError:
        result = None
    finally:
        receive.close()
        process.join()
    if result is not None:
        return result
    code = process.exitcode
    signalled = code is not None and code < 0 and -code in signal.valid_signals()
    how = f"killed by {signal.Signals(-code).name}" if signalled else f"exit code {code}"
    _remove_partials(job)
    return {"failure": _failure(job, f"the process coding this item died ({how}): a crash inside a decoder or codec")}


def _count(result: CorpusResult, item: dict) -> None:
    if item["skipped"]:
        result.n_skipped += 1
    else:
        result.n_written += 1
    if item["clipped"]:
        result.n_clipped_files += 1
        result.n_clipped_samples += int(item["clipped"])
    for warning in item["warnings"]:
        key = warning.split(":", 1)[0] + ": " + warning.split(":", 1)[-1].strip()
        result.warnings[key] = result.warnings.get(key, 0) + 1


def _compact_journal(path: Path, rows: list[dict], committed: dict, commits: list[dict], out_dir: Path) -> None:
    """Rewrite the shard's journal with one line per output of this run (reused or new), atomically."""
    from cm_cli.core.artifacts import atomic_path

    latest = {**committed, **{c["output"]: c for c in commits}}
    lines = []
    for row in rows:
        entry = latest.get(os.path.relpath(str(row["path"]), out_dir))
        if entry is not None:
            lines.append(json.dumps(entry))
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
