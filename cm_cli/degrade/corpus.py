"""Degrading files and whole manifests: FLAC outputs, a degraded manifest, failures, shards, reruns.

Rows are streamed through a process pool one job (utterance x condition) at a
time, so memory does not grow with the manifest; each output is written
atomically and a rerun skips files already there. A file that cannot be read or
coded is recorded in ``failures.parquet`` and the rest of the corpus completes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.core.shard import Shard

__all__ = ["FileResult", "CorpusResult", "degrade_file", "degrade_manifest", "Job", "plan_conditions"]


@dataclass
class FileResult:
    output: Path
    spec: str
    sample_rate: int
    duration: float
    clipped: int
    warnings: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def degrade_file(source: str | Path, output: str | Path, spec: str, *, seed: int = 0, utt_id: str | None = None,
                 sample_rate: int | None = None) -> FileResult:
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


def plan_conditions(specs: Sequence[str] = (), condition: str | None = None) -> list[str]:
    """Expand ``--chain`` values (each may be a '|' sweep) into canonical specs, in order."""
    from cm_cli.degrade.registry import validate_spec
    from cm_cli.core.specs import expand_sweep

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


def _jobs(rows: Iterator[dict], out_dir: Path, *, specs: Sequence[str], condition: str | None, policy, variants: int,
          seed: int, data_root: Path | None) -> Iterator[Job]:
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
            yield Job(row, text, text, slug, f"{source_id}__{slug}", str(audio / slug / f"{source_id}.flac"), source_path)
        if condition:
            spec = pick_condition(condition, seed=seed, utt_id=source_id)
            cid = condition.upper()
            yield Job(row, spec.canonical(), cid, cid, f"{source_id}__{cid}", str(audio / cid / f"{source_id}.flac"), source_path)
        if policy is not None:
            for k in range(variants):
                spec, label = draw(policy, stable_rng(seed, source_id, "variant", k))
                slug = spec.slug()
                uid = f"{source_id}__{slug}__v{k}"
                yield Job(row, spec.canonical(), label, slug, uid, str(audio / slug / f"{source_id}__v{k}.flac"), source_path)


_WORKER_STATE: dict[str, Any] = {}


def _init_worker(ffmpeg: str | None, sample_rate: int | None, seed: int) -> None:
    from cm_cli.degrade.ffmpeg import set_preferred_ffmpeg

    set_preferred_ffmpeg(ffmpeg)
    _WORKER_STATE.update(sample_rate=sample_rate, seed=seed)


def _run_job(job: Job) -> dict:
    """Returns {'row': ...} on success or skip, {'failure': ...} on error; never raises."""
    import soundfile as sf

    from cm_cli.data.audio import load_audio, save_audio
    from cm_cli.degrade.registry import apply_spec

    output = Path(job.output)
    result: dict = {"warnings": [], "clipped": 0, "skipped": False}
    try:
        if output.is_file():
            info = sf.info(str(output))
            rate, frames = int(info.samplerate), int(info.frames)
            result["skipped"] = True
        else:
            samples, rate = load_audio(job.source_path, sample_rate=_WORKER_STATE.get("sample_rate"))
            source_id = str(job.row["utt_id"])
            out, info = apply_spec(samples, rate, job.spec, seed=_WORKER_STATE.get("seed", 0), utt_id=source_id)
            result["clipped"] = save_audio(output, out, rate)
            result["warnings"] = list(info["warnings"])
            frames = len(out)
    except CmError as exc:
        return {"failure": _failure(job, exc.message)}
    except Exception as exc:  # an unexpected decoder/library error on one file must not stop the corpus
        return {"failure": _failure(job, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")}
    result["row"] = _output_row(job, rate, frames)
    return result


def _failure(job: Job, message: str) -> dict:
    return {"utt_id": job.utt_id, "source_utt_id": str(job.row["utt_id"]), "path": job.source_path,
            "degradation": job.spec, "error": message}


def _output_row(job: Job, rate: int, frames: int) -> dict:
    from cm_cli.degrade.conditions import condition_fields, spec_bitrate_kbps
    from cm_cli.degrade.registry import codec_fields

    row = dict(job.row)
    codec, codec_q = codec_fields(job.spec)
    fields = condition_fields(job.label, job.spec)
    if fields is not None:  # ASVspoof 5 condition: CODEC is its id, CODEC_Q its ordinal level, as in the corpus
        codec, codec_q = fields
    bitrate = spec_bitrate_kbps(job.spec)
    row.update(utt_id=job.utt_id, source_utt_id=str(job.row["utt_id"]), path=job.output, degradation=job.spec,
               domain=job.label, codec=codec, codec_q=codec_q, bitrate_kbps=bitrate,
               duration=frames / rate if rate else None, sample_rate=rate)
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
    options: dict | None = None,
) -> CorpusResult:
    """Degrade every row of ``manifest`` under each spec / the condition / ``variants`` policy draws."""
    import multiprocessing

    from cm_cli.core.artifacts import OutputDir, write_parquet
    from cm_cli.core.progress import track
    from cm_cli.data.manifests import load_manifest
    from cm_cli.degrade.policy import load_policy

    out_dir = Path(out_dir).expanduser().resolve()
    shard = shard or Shard()
    canonical = plan_conditions(specs, condition)
    policy_obj = load_policy(policy) if policy is not None else None
    if not canonical and not condition and policy_obj is None:
        raise CmError("nothing to do: give --chain/--codec, --condition or --policy")
    if variants < 1:
        raise CmError(f"--variants {variants} must be at least 1")
    df = load_manifest(Path(manifest), split=split)
    rows_all = df.to_dict("records")
    del df
    lo, hi = shard.bounds(len(rows_all))
    rows = rows_all[lo:hi]
    del rows_all
    n_jobs = len(rows) * (len(canonical) + (1 if condition else 0) + (variants if policy_obj is not None else 0))
    opts = dict(options or {})
    opts.update(specs=canonical, condition=condition, policy=policy_obj.canonical() if policy_obj else None,
                variants=variants if policy_obj else None, seed=seed, sample_rate=sample_rate, split=split)
    part_name = "manifest.parquet" if shard.is_whole else shard.part_name()
    fail_name = "failures.parquet" if shard.is_whole else shard.part_name("failures")
    result = CorpusResult(out_dir, out_dir / part_name, conditions=canonical + ([condition.upper()] if condition else []))
    with OutputDir(out_dir, kind="degraded", options=opts, inputs=[manifest], force=force, shard=shard) as target:
        if target.done and (out_dir / part_name).is_file():
            summary = target.record.get("summary", {})
            if not summary.get("n_failed"):
                result.already_done = True
                result.n_skipped = int(summary.get("n_rows", 0))
                return result
            target.done = False  # retry the failed files; finished ones are skipped below
        jobs = _jobs(iter(rows), out_dir, specs=canonical, condition=condition, policy=policy_obj,
                     variants=variants, seed=seed, data_root=Path(data_root) if data_root else None)
        out_rows: list[dict] = []
        failures: list[dict] = []
        init = (ffmpeg, sample_rate, seed)
        if workers <= 1:
            _init_worker(*init)
            results = map(_run_job, jobs)
            pool = None
        else:
            context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            pool = context.Pool(workers, initializer=_init_worker, initargs=init, maxtasksperchild=2000)
            results = pool.imap(_run_job, jobs, chunksize=2)
        try:
            for item in track(results, total=n_jobs, description="degrade"):
                if "failure" in item:
                    failures.append(item["failure"])
                    continue
                out_rows.append(item["row"])
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
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        result.n_failed = len(failures)
        import pandas as pd

        from cm_cli.data.manifest import normalise_manifest

        table = normalise_manifest(pd.DataFrame(out_rows)) if out_rows else normalise_manifest(pd.DataFrame(columns=["utt_id"]))
        for column in ("source_utt_id", "degradation"):
            if column not in table.columns:
                table[column] = pd.Series(dtype="string")
        table["bitrate_kbps"] = pd.to_numeric(table.get("bitrate_kbps", pd.Series(index=table.index, dtype="float64")),
                                              errors="coerce").astype("Float64")
        write_parquet(table, out_dir / part_name)
        fail_path = out_dir / fail_name
        if failures:
            write_parquet(pd.DataFrame(failures), fail_path)
            result.failures = fail_path
        elif fail_path.exists():
            fail_path.unlink()
        target.finish(outputs={"manifest": str(out_dir / part_name), "failures": str(fail_path) if failures else None},
                      summary={"n_rows": len(out_rows), "n_written": result.n_written, "n_skipped": result.n_skipped,
                               "n_failed": result.n_failed, "clipped_files": result.n_clipped_files,
                               "warnings": result.warnings})
    return result
