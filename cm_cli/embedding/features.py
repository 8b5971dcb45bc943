"""``cm embed --backbone prosody|reconstruction|transcript``: a feature set written as an embeddings table.

Why here: a feature set must land in the very layout ``cm embed`` writes for a backbone
(same writer, same resumable ``OutputDir``, shards, failures file and summary), so that
``cm probe``, ``cm loao``, ``cm cka`` and ``cm train --features`` read it unchanged. The
layout is described in ``cm_cli.featuresets.registry``: ``utt_id``, ``layer_NN`` float32
vectors, the same components as named columns, ``flag_*`` booleans; a set that writes
per-utterance records (transcripts) puts them in ``transcripts.jsonl`` beside the table.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from cm_cli.core.errors import CmError, UsageError
from cm_cli.core.shard import Shard
from cm_cli.embedding.extract import (
    EmbedResult,
    _crop,
    _reused,
    _write_failures,
    parse_layers,
)
from cm_cli.embedding.store import EmbeddingWriter, remove_stale_temps

__all__ = ["embed_feature_set", "SIDECAR_STEM"]

SAMPLE_RATE = 16000
SIDECAR_STEM = "transcripts"
_MAX_LISTED = 50


@dataclass
class _Tally:
    failures: list = field(default_factory=list)
    flags: dict = field(default_factory=dict)  # flag -> count
    flagged: dict = field(default_factory=dict)  # flag -> first ids
    nonfinite_rows: int = 0
    records: list = field(default_factory=list)
    t_forward: float = 0.0


def _columns(extractor, layers) -> tuple[list[str], dict[str, list[str]]]:
    names = list(extractor.layers)
    chosen = [names[i] for i in parse_layers(layers, len(names))]
    return chosen, {c: list(extractor.layers[c]) for c in chosen}


def _scalars(batch, columns: dict[str, list[str]], n: int) -> dict:
    """Named plain columns: each vector component, then the set's extra columns, then the flags."""
    import numpy as np

    out = {}
    for column, names in columns.items():
        for j, name in enumerate(names):
            out[name] = np.ascontiguousarray(batch.vectors[column][:, j], dtype=np.float32)
    for name, values in batch.extra.items():
        values = np.asarray(values)
        out[name] = (values.astype(object) if values.dtype.kind in "OUS" else values.astype(np.float32)).reshape(n)
    for name, values in batch.flags.items():
        out[name] = np.asarray(values, dtype=bool).reshape(n)
    return out


def _write_batch(extractor, writer, tally: _Tally, ids: list[str], waves: list, columns: dict, meta: dict) -> None:
    import numpy as np

    t0 = time.perf_counter()
    batch = extractor.extract(waves)
    tally.t_forward += time.perf_counter() - t0
    vectors = {}
    for column in columns:
        matrix = np.asarray(batch.vectors[column], dtype=np.float32)
        bad = ~np.isfinite(matrix).all(axis=1)
        if bad.any():  # a feature set promises finite values; never let NaN reach the readers
            tally.nonfinite_rows += int(bad.sum())
            matrix = np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)
        vectors[column] = matrix
    batch.vectors = vectors
    for name, values in batch.flags.items():
        hit = np.asarray(values, dtype=bool)
        tally.flags[name] = tally.flags.get(name, 0) + int(hit.sum())
        listed = tally.flagged.setdefault(name, [])
        listed.extend([u for u, h in zip(ids, hit) if h][: max(0, _MAX_LISTED - len(listed))])
    if batch.records is not None:
        tally.records.extend({"utt_id": u, **r} for u, r in zip(ids, batch.records))
    writer.write(ids, vectors, meta, _scalars(batch, columns, len(ids)))


def _rows(
    extractor,
    frame,
    writer,
    *,
    columns: dict,
    data_root,
    batch_size: int,
    workers: int,
    max_samples: int | None,
    meta: dict,
) -> _Tally:
    import numpy as np

    from cm_cli.core.progress import task
    from cm_cli.data.manifest import resolve_audio_path
    from cm_cli.models.inference import iter_audio_batches

    utt_ids = frame["utt_id"].astype(str).tolist()
    tally = _Tally(flags={f: 0 for f in extractor.flags})
    with task(len(frame), "embed") as advance:
        for batch in iter_audio_batches(frame, data_root=data_root, batch_size=batch_size, workers=workers):
            rows = list(batch.indices)
            waves = [_crop(w, max_samples).numpy() for w in batch.waves]
            for row, message in batch.failures:
                path = resolve_audio_path(str(frame["path"].iloc[row]), data_root)
                if _empty_clip(path):  # a 0-length clip is a flagged row, not a failure
                    rows.append(row)
                    waves.append(np.zeros(0, dtype=np.float32))
                else:
                    tally.failures.append({"utt_id": utt_ids[row], "path": str(path), "error": message})
            if rows:
                _write_batch(extractor, writer, tally, [utt_ids[r] for r in rows], waves, columns, meta)
            advance(len(batch.indices) + len(batch.failures))
    if writer.writer is None:  # nothing decodable: an empty table with the right columns
        empty = extractor.extract([])
        writer.write([], {c: empty.vectors[c] for c in columns}, meta, _scalars(empty, columns, 0))
    return tally


def _empty_clip(path: Path) -> bool:
    """Whether ``path`` is an audio file holding no samples (0 bytes, or a header with 0 frames)."""
    try:
        if path.stat().st_size == 0:
            return True
        import soundfile as sf

        return sf.info(str(path)).frames == 0
    except (OSError, RuntimeError):  # missing or unreadable (soundfile errors are RuntimeError): a real failure
        return False


def _write_records(records: list, path: Path) -> Path | None:
    """The set's per-utterance records (transcripts) as JSONL, atomically; a stale file is removed."""
    if not records:
        path.unlink(missing_ok=True)
        return None
    from cm_cli.core.artifacts import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return path


def _summary(
    name: str,
    extractor,
    tally: _Tally,
    result: EmbedResult,
    columns: dict,
    *,
    backbone_id,
    batch_size: int,
    max_seconds,
    shard: Shard,
    seconds: float,
    fail_name: str,
    device,
) -> dict:
    notes = []
    for flag, count in tally.flags.items():
        if count:
            notes.append(
                f"{count} utterance(s) have {flag} set: features they lack are 0 (never NaN); see the {flag} column"
            )
    if tally.nonfinite_rows:
        notes.append(f"{tally.nonfinite_rows} row(s) had non-finite values, replaced by 0")
    if tally.failures:
        notes.append(f"{len(tally.failures)} utterance(s) failed and are listed in {fail_name}")
    return {
        "backbone": name,
        "feature_set": name,
        "backbone_id": backbone_id,
        "checkpoint": None,
        "family": "features",
        "pooling": "none",
        "dtype": "float32",
        "layers": list(columns),
        "dims": {c: len(n) for c, n in columns.items()},
        "feature_names": columns,
        "flags": dict(tally.flags),
        "flagged": dict(tally.flagged),
        "n_rows": result.n_rows,
        "n_failed": result.n_failed,
        "n_nonfinite_replaced": tally.nonfinite_rows,
        "info": dict(getattr(extractor, "info", {})),
        "max_seconds": max_seconds,
        "batch_size": batch_size,
        "device": str(device),
        "shard": str(shard),
        "seconds": round(seconds, 3),
        "forward_seconds": round(tally.t_forward, 3),
        "utterances_per_second": round(result.n_rows / seconds, 3) if seconds > 0 else None,
        "notes": notes,
    }


def _backbone_text(backbone_id: str | None) -> str | None:
    if backbone_id and Path(backbone_id).expanduser().exists():
        return str(Path(backbone_id).expanduser().resolve())
    return backbone_id


def embed_feature_set(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    name: str,
    backbone_id: str | None = None,
    layers: str | Sequence[int] | None = "all",
    split: str | None = None,
    batch_size: int = 8,
    max_seconds: float | None = None,
    shard: Shard | None = None,
    data_root: str | os.PathLike | None = None,
    device: Any = "cpu",
    workers: int = 0,
    force: bool = False,
    options: dict | None = None,
    feature_options: dict | None = None,
) -> EmbedResult:
    """Compute feature set ``name`` for every row of ``manifest`` (this shard's slice) into ``out_dir``.

    Missing or unusable weights fail before the output directory is created. Rows that
    cannot be decoded go to ``failures.parquet`` like ``cm embed``'s; every other row gets
    finite features (silent, 0-length or sub-frame clips are flagged, not dropped).
    """
    from cm_cli.core.artifacts import OutputDir
    from cm_cli.data.manifests import load_manifest
    from cm_cli.featuresets.registry import get_feature_set

    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}", option="batch_size")
    if max_seconds is not None and max_seconds <= 0:
        raise UsageError(f"max seconds must be positive, got {max_seconds}", option="max_seconds")
    spec = get_feature_set(name)
    shard = shard or Shard()
    manifest = Path(manifest)
    out_dir = Path(out_dir).expanduser().resolve()
    frame = load_manifest(manifest, split=split)
    frame = frame.iloc[slice(*shard.bounds(len(frame)))].reset_index(drop=True)
    extractor = spec.build(backbone_id, device=device, options=feature_options)
    columns_list, columns = _columns(extractor, layers)
    backbone_text = _backbone_text(backbone_id)
    table_name = "embeddings.parquet" if shard.is_whole else shard.part_name()
    fail_name = "failures.parquet" if shard.is_whole else shard.part_name("failures")
    sidecar_name = f"{SIDECAR_STEM}.jsonl" if shard.is_whole else shard.part_name(SIDECAR_STEM, "jsonl")
    target_path, fail_path, sidecar = out_dir / table_name, out_dir / fail_name, out_dir / sidecar_name
    record_options = {
        **(options or {}),
        "manifest": str(manifest.resolve()),
        "backbone": name,
        "backbone_id": backbone_text,
        "checkpoint": None,
        "layers": layers if isinstance(layers, str) or layers is None else list(layers),
        "pooling": "none",
        "split": split,
        "max_seconds": max_seconds,
        "dtype": "float32",
        "feature_options": dict(feature_options or {}),
    }
    inputs = [manifest] + _weight_files(backbone_text)
    result = EmbedResult(out_dir, target_path)
    meta = {
        "cm.backbone": name,
        "cm.feature_set": name,
        "cm.pooling": "none",
        "cm.dtype": "float32",
        "cm.feature_names": json.dumps(columns),
    }
    max_samples = int(round(max_seconds * SAMPLE_RATE)) if max_seconds else None
    with OutputDir(
        out_dir, kind="embeddings", options=record_options, inputs=inputs, force=force, shard=shard, device=str(device)
    ) as target:
        if target.done and target_path.is_file():
            return _reused(result, target.record, fail_path)
        remove_stale_temps(out_dir, [table_name, fail_name, sidecar_name])
        writer = EmbeddingWriter(target_path, value_type="float32")
        t_start = time.perf_counter()
        try:
            tally = _rows(
                extractor,
                frame,
                writer,
                columns=columns,
                data_root=data_root,
                batch_size=batch_size,
                workers=workers,
                max_samples=max_samples,
                meta=meta,
            )
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        result.failures = _write_failures(tally.failures, fail_path)
        records = _write_records(tally.records, sidecar)
        result.n_rows, result.n_failed = writer.n_rows, len(tally.failures)
        result.summary = _summary(
            name,
            extractor,
            tally,
            result,
            columns,
            backbone_id=backbone_text,
            batch_size=batch_size,
            max_seconds=max_seconds,
            shard=shard,
            seconds=time.perf_counter() - t_start,
            fail_name=fail_path.name,
            device=device,
        )
        if columns_list != list(extractor.layers):
            result.summary["notes"].append(f"layers {', '.join(columns_list)} of {', '.join(extractor.layers)}")
        target.finish(
            outputs={
                "embeddings": str(target_path),
                "failures": str(fail_path) if tally.failures else None,
                SIDECAR_STEM: str(records) if records else None,
            },
            summary=result.summary,
        )
    return result


def _weight_files(backbone_text: str | None) -> list:
    """The weight files of a local model directory, hashed into the record so new weights redo the table."""
    if not backbone_text:
        return []
    path = Path(backbone_text)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".json"))
    raise CmError(f"backbone id {backbone_text}: no such file or directory", option="backbone_id")
