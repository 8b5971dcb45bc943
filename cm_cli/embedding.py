"""Layer-wise utterance embeddings of a manifest (``cm embed``) and the reader that loads one layer.

Probes, CKA and leave-one-attack-out analyses all start from the same table: one
row per utterance, one fixed-size vector column per layer of a backbone. Writing it
once, in length-sorted batches streamed to a Parquet file, keeps memory bounded by a
batch whatever the corpus size, and the reader pulls a single column so an analysis of
layer 6 never decodes layers 0-24.

Table (DESIGN.md): ``utt_id``, ``layer_00`` … ``layer_NN`` (SSL hidden states pooled
over each utterance's real frames; for AASIST/LCNN the pooled block outputs), float16
unless ``fp32``; then ``pooled`` and ``pre_logit`` when the model has a trained head (a
``cm train`` checkpoint, or the official AASIST weights). Rows are written in the
order they were computed (longest utterances first); join on ``utt_id``.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cm_cli.core.errors import CmError, UsageError
from cm_cli.core.shard import Shard

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "POOLINGS",
    "FLOAT16_MAX",
    "EmbedModel",
    "EmbedResult",
    "parse_layers",
    "resolve_embed_model",
    "embed_manifest",
    "list_layers",
    "load_layer",
    "embedding_files",
]

POOLINGS = ("mean", "meanstd")
FLOAT16_MAX = 65504.0
SAMPLE_RATE = 16000
_MAX_LISTED = 50  # ids listed in the summary for padded / fallback rows


# --------------------------------------------------------------------------- model resolution


@dataclass
class EmbedModel:
    """A model ready to embed, and what produced it (recorded in ``cm.json``)."""

    model: Any  # CountermeasureModel, in eval mode
    backbone: str
    backbone_id: str | None
    checkpoint: str | None
    trained_head: bool  # export pooled / pre_logit
    family: str
    receptive_field: int
    notes: list[str] = field(default_factory=list)


def _peek_checkpoint(path: Path) -> dict | None:
    """The ``torch.load(weights_only=True)`` payload if ``path`` is a cm checkpoint, else None."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CmError(f"cannot read checkpoint {path}: {first[:300]}",
                          "the file is corrupt, truncated or not a torch checkpoint") from None
    if isinstance(payload, dict) and "format" in payload and "model_config" in payload:
        return payload
    return None


def _receptive_field(model) -> int:
    backbone = model.backbone
    for candidate in (backbone, getattr(backbone, "ssl", None)):
        value = getattr(candidate, "receptive_field", None) if candidate is not None else None
        if isinstance(value, int) and value > 0:
            return value
    return 1


def _same_architecture(given: str, saved: str | None) -> bool:
    """Whether ``--backbone given`` names the architecture a checkpoint was trained with."""
    from cm_cli.models.registry import get_backbone
    from cm_cli.models.ssl import resolve_ssl_id

    if saved is None or given == saved:
        return given == saved
    if get_backbone(given).family != get_backbone(saved).family:
        return False
    if get_backbone(given).family != "ssl":
        return True
    a, b = resolve_ssl_id(given), resolve_ssl_id(saved)
    return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _is_cm_run(path: Path) -> bool:
    return path.is_dir() and any((path / sub).is_file() for sub in
                                 ("checkpoints/best.pt", "checkpoints/last.pt", "best.pt", "last.pt"))


def resolve_embed_model(backbone: str | None, *, backbone_id: str | None = None,
                        checkpoint: str | os.PathLike | None = None) -> EmbedModel:
    """Build the model to embed with.

    - ``checkpoint`` = a ``cm train`` run directory or ``cm-checkpoint/1`` file: the model is
      rebuilt from its own config (``backbone``, when given, must match it; ``backbone_id``
      overrides where its frozen weights are read from) and pooled / pre_logit are exported.
    - ``backbone="aasist"`` with ``checkpoint`` (or ``backbone_id``) = an official AASIST
      state dict (the ASVspoof 5 baseline ``.pth``).
    - an SSL backbone (``wavlm``, ``w2v2``, ``xlsr``, ``hubert``, a hub id or a directory) with
      ``backbone_id`` pointing at other weights if wanted.
    """
    from cm_cli.models.checkpoint import load_model
    from cm_cli.models.model import ModelConfig, build_model
    from cm_cli.models.registry import get_backbone

    spec = get_backbone(backbone) if backbone else None  # unknown name -> CmError listing the registry
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if path.is_dir() and not _is_cm_run(path):
            raise CmError(f"{path} holds no checkpoints/best.pt or last.pt",
                          "give a `cm train` run directory, a cm checkpoint file or an AASIST .pth")
        if not path.exists():
            raise CmError(f"checkpoint {path} not found", "give a `cm train` run directory or a checkpoint file")
        payload = None if path.is_dir() else _peek_checkpoint(path)
        if path.is_dir() or payload is not None:
            if payload is not None and payload.get("format") != "cm-checkpoint/1":
                raise CmError(f"{path} has checkpoint format {payload.get('format')!r}, not cm-checkpoint/1",
                              "it was written by another version of cm")
            if payload is None:
                from cm_cli.models.checkpoint import read_checkpoint

                payload = read_checkpoint(path)
            saved = payload["model_config"].get("backbone")
            if backbone and not _same_architecture(backbone, saved):
                raise CmError(f"{path} holds a {saved!r} model, not {backbone!r}",
                              f"use --backbone {saved}, or leave --backbone out to use the checkpoint's own")
            model = load_model(path, overrides={"backbone_id": backbone_id} if backbone_id else None)
            config = model.config
            source = Path(payload.get("path", path)).resolve()
            del payload
            return EmbedModel(model, config.backbone, config.backbone_id, str(source), True,
                              config.family, _receptive_field(model))
        # a plain state dict: the official AASIST weights
        if spec is None:
            raise UsageError(f"{path} is not a cm checkpoint, so --backbone is needed to read it",
                             "e.g. --backbone aasist --checkpoint asvspoof5_aasist_baseline.pth")
        if spec.family != "aasist":
            raise CmError(f"{path} is not a cm checkpoint, and plain weight files are only read for --backbone aasist",
                          f"for {backbone} give the weights' model directory with --backbone-id, or a `cm train` run with --checkpoint")
        if backbone_id and Path(backbone_id).expanduser().resolve() != path.resolve():
            raise UsageError("give the AASIST weights once: --checkpoint or --backbone-id, not both")
        backbone_id = str(path)
    if spec is None:
        raise UsageError("no model to embed with", "give --backbone NAME, or --checkpoint with a `cm train` run")
    if spec.family == "ssl_aasist":
        raise CmError("ssl_aasist has a trained back end; embed it from a `cm train` run with --checkpoint RUN_DIR")
    if spec.family in ("aasist", "lcnn") and not backbone_id:
        raise CmError(f"--backbone {backbone} has no pretrained weights of its own; random weights embed nothing useful",
                      "give --checkpoint (the official AASIST .pth, or a `cm train` run directory)")
    if spec.family == "lcnn":
        raise CmError("lcnn weights come only from a `cm train` run", "give --checkpoint RUN_DIR")
    config = ModelConfig(backbone=backbone, backbone_id=backbone_id, trainable="frozen" if spec.family == "ssl" else "all",
                         layer="last", pooling="mean")
    model = build_model(config).eval()
    trained = spec.family == "aasist"
    return EmbedModel(model, backbone, config.backbone_id, str(Path(backbone_id).resolve()) if trained else None,
                      trained, spec.family, _receptive_field(model))


def parse_layers(text: str | Sequence[int] | None, n_layers: int) -> list[int]:
    """``all`` / ``None`` -> every index; ``"0,6,12"`` (negatives count from the end) -> those, in order."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "all")):
        return list(range(n_layers))
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[int] = []
    for item in items:
        raw = str(item).strip()
        if raw.startswith("layer_"):
            raw = raw[len("layer_"):]
        try:
            index = int(raw)
        except ValueError:
            raise UsageError(f"--layers {text!r}: {item!r} is not a layer number", "use all, or numbers like 0,6,12") from None
        if index < 0:
            index += n_layers
        if not 0 <= index < n_layers:
            raise UsageError(f"--layers {text!r}: layer {item} is out of range", f"this backbone has layers 0..{n_layers - 1}")
        if index not in out:
            out.append(index)
    return out


# --------------------------------------------------------------------------- embedding


@dataclass
class EmbedResult:
    out_dir: Path
    path: Path  # embeddings.parquet or this shard's part
    skipped: bool = False  # a complete run with the same options was already there
    n_rows: int = 0
    n_failed: int = 0
    failures: Path | None = None
    summary: dict = field(default_factory=dict)


def _amp_dtype(amp: str, device):
    import torch

    if amp == "none" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp in ("bf16", "fp16"):
        return torch.bfloat16 if amp == "bf16" else torch.float16
    raise UsageError(f"unknown amp mode {amp!r}", "use auto, bf16, fp16 or none")


def _sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


class _Writer:
    """Streams batches into a temporary Parquet file that becomes ``target`` only on ``commit``."""

    def __init__(self, target: Path, *, value_type: str):
        self.target = target
        self.value_type = value_type
        self.writer = None
        self.schema = None
        self.tmp: Path | None = None
        self.n_rows = 0

    def _open(self, columns: dict[str, int], metadata: dict[str, str]) -> None:
        import tempfile

        import pyarrow as pa
        import pyarrow.parquet as pq

        value = pa.float16() if self.value_type == "float16" else pa.float32()
        fields = [pa.field("utt_id", pa.string(), nullable=False)]
        fields += [pa.field(name, pa.list_(value, dim)) for name, dim in columns.items()]
        self.schema = pa.schema(fields, metadata={k.encode(): v.encode() for k, v in metadata.items()})
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        os.close(fd)
        self.tmp = Path(name)
        self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")

    def write(self, utt_ids: Sequence[str], arrays: dict[str, "np.ndarray"], metadata: dict[str, str]) -> None:
        import numpy as np
        import pyarrow as pa

        if self.writer is None:
            self._open({name: int(a.shape[1]) for name, a in arrays.items()}, metadata)
        dtype = np.float16 if self.value_type == "float16" else np.float32
        columns = [pa.array(list(utt_ids), type=pa.string())]
        for name in self.schema.names[1:]:
            matrix = np.ascontiguousarray(arrays[name], dtype=dtype)
            columns.append(pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1]))
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self.n_rows += len(utt_ids)

    def commit(self) -> None:
        self.writer.close()
        self.writer = None
        os.replace(self.tmp, self.target)
        self.tmp = None

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.tmp = None


def _remove_stale_temps(out_dir: Path, names: Sequence[str]) -> None:
    """Temporary files of a killed earlier attempt (we hold the lock, so none is live)."""
    for name in names:
        for stale in out_dir.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


def _crop(wave, max_samples: int | None):
    if max_samples is None or wave.shape[-1] <= max_samples:
        return wave
    start = (wave.shape[-1] - max_samples) // 2
    return wave[start:start + max_samples]


def embed_manifest(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    backbone: str | None = None,
    backbone_id: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    layers: str | Sequence[int] | None = "all",
    pooling: str = "mean",
    split: str | None = None,
    batch_size: int = 8,
    max_seconds: float | None = None,
    fp32: bool = False,
    amp: str = "auto",
    shard: Shard | None = None,
    data_root: str | os.PathLike | None = None,
    device: Any = "cpu",
    workers: int = 0,
    force: bool = False,
    options: dict | None = None,
    model: EmbedModel | None = None,
) -> EmbedResult:
    """Embed every row of ``manifest`` (this shard's slice) into ``out_dir``; see the module docstring.

    ``amp``: ``auto`` = bf16 (fp16 where bf16 is unsupported) autocast on CUDA, none on CPU.
    Rows whose outputs are not finite under autocast are recomputed in fp32; rows still not
    finite, and rows whose audio cannot be decoded, go to ``failures.parquet``.
    """
    import numpy as np
    import torch

    from cm_cli.core.artifacts import OutputDir, write_parquet
    from cm_cli.core.progress import task
    from cm_cli.data.datasets import BucketBatchSampler, ManifestAudio, make_loader
    from cm_cli.data.manifests import load_manifest

    if pooling not in POOLINGS:
        raise UsageError(f"unknown pooling {pooling!r}", f"choose one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if max_seconds is not None and max_seconds <= 0:
        raise UsageError(f"--max-seconds must be positive, got {max_seconds}")
    shard = shard or Shard()
    manifest = Path(manifest)
    out_dir = Path(out_dir).expanduser().resolve()
    device = torch.device(device)
    frame = load_manifest(manifest, split=split)
    lo, hi = shard.bounds(len(frame))
    frame = frame.iloc[lo:hi].reset_index(drop=True)

    # cheap checks of the model spec before anything is created on disk
    if model is None:
        from cm_cli.models.registry import get_backbone

        if backbone:
            get_backbone(backbone)
    value_type = "float32" if fp32 else "float16"
    name = "embeddings.parquet" if shard.is_whole else shard.part_name()
    fail_name = "failures.parquet" if shard.is_whole else shard.part_name("failures")
    target_path, fail_path = out_dir / name, out_dir / fail_name
    checkpoint_text = str(Path(checkpoint).expanduser().resolve()) if checkpoint else None
    record_options = dict(options or {})
    record_options.update(manifest=str(manifest.resolve()), backbone=backbone, backbone_id=backbone_id,
                          checkpoint=checkpoint_text, layers=layers if isinstance(layers, str) or layers is None else list(layers),
                          pooling=pooling, split=split, max_seconds=max_seconds, dtype=value_type)
    result = EmbedResult(out_dir, target_path)
    inputs = [manifest] + ([checkpoint_text] if checkpoint_text and Path(checkpoint_text).exists() else [])

    if model is None:
        model = resolve_embed_model(backbone, backbone_id=backbone_id, checkpoint=checkpoint)
    net = model.model.to(device).eval()
    layer_index = parse_layers(layers, len(net.layer_names))

    with OutputDir(out_dir, kind="embeddings", options=record_options, inputs=inputs, force=force, shard=shard,
                   device=str(device)) as target:
        if target.done and target_path.is_file():
            result.skipped = True
            result.summary = dict(target.record.get("summary", {}))
            result.n_rows = int(result.summary.get("n_rows", 0))
            result.n_failed = int(result.summary.get("n_failed", 0))
            result.failures = fail_path if fail_path.is_file() else None
            return result
        _remove_stale_temps(out_dir, [name, fail_name])
        dataset = ManifestAudio(frame, data_root=data_root)
        sampler = BucketBatchSampler(dataset.durations(), batch_size, shuffle=False)
        loader = make_loader(dataset, sampler, workers=workers)
        amp_dtype = None if fp32 and amp == "auto" else _amp_dtype(amp, device)
        max_samples = int(round(max_seconds * SAMPLE_RATE)) if max_seconds else None
        rf = model.receptive_field
        pad_short = net.config.length.policy != "repeat"  # repeat padding already tiles short audio to full length
        utt_ids = frame["utt_id"].astype(str).tolist()
        paths = [str(p) for p in dataset.paths]
        wanted = [net.layer_names[i] for i in layer_index]
        extra = ["pooled", "pre_logit"] if model.trained_head else []
        meta = {"cm.backbone": model.backbone, "cm.pooling": pooling, "cm.dtype": value_type}
        writer = _Writer(target_path, value_type=value_type)
        failures: list[dict] = []
        padded: list[str] = []
        fallback: list[str] = []
        clipped_rows = 0
        dims: dict[str, int] = {}
        t_forward = 0.0
        t_start = time.perf_counter()

        def run(waves, lengths, dtype):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = net.embed(waves, lengths, pooling=pooling, layers=layer_index)
            return {k: v.float() for k, v in out.items()}

        try:
            with task(len(dataset), "embed") as advance, torch.inference_mode():
                for batch in loader:
                    for row, message in batch.failures:
                        failures.append({"utt_id": utt_ids[row], "path": paths[row], "error": message})
                    if len(batch) == 0:
                        advance(len(batch.failures))
                        continue
                    rows = batch.indices.tolist()
                    waves = [_crop(batch.waves[i, : int(batch.lengths[i])], max_samples) for i in range(len(rows))]
                    short = [j for j, w in enumerate(waves) if w.shape[-1] < rf] if pad_short else []
                    for j in short:  # too short for one frame of the front end: zero-pad to its receptive field
                        waves[j] = torch.nn.functional.pad(waves[j], (0, rf - waves[j].shape[-1]))
                        padded.append(utt_ids[rows[j]])
                    wave, lengths = net.prepare_batch(waves)
                    wave, lengths = wave.to(device, non_blocking=True), lengths.to(device)
                    t0 = time.perf_counter()
                    out = run(wave, lengths, amp_dtype)
                    bad = _nonfinite_rows(out)
                    if bad.any() and amp_dtype is not None:
                        again = run(wave, lengths, None)
                        for key in out:
                            out[key][bad] = again[key][bad]
                        fallback.extend(utt_ids[rows[j]] for j in bad.nonzero().flatten().tolist())
                        bad = _nonfinite_rows(out)
                    _sync(device)
                    t_forward += time.perf_counter() - t0
                    keep = (~bad).nonzero().flatten().tolist()
                    for j in bad.nonzero().flatten().tolist():
                        failures.append({"utt_id": utt_ids[rows[j]], "path": paths[rows[j]],
                                         "error": "non-finite embedding even in fp32"})
                    if keep:
                        arrays = {}
                        for i, layer_name in zip(layer_index, wanted):
                            arrays[layer_name] = out[f"layer_{i:02d}"][keep].cpu().numpy()
                        for key in extra:
                            arrays[key] = out[key][keep].cpu().numpy()
                        if value_type == "float16":
                            over = np.zeros(len(keep), dtype=bool)
                            for key, a in arrays.items():
                                row_over = (np.abs(a) > FLOAT16_MAX).any(axis=1)
                                if row_over.any():
                                    over |= row_over
                                    np.clip(a, -FLOAT16_MAX, FLOAT16_MAX, out=a)
                            clipped_rows += int(over.sum())
                        dims = {k: int(a.shape[1]) for k, a in arrays.items()}
                        writer.write([utt_ids[rows[j]] for j in keep], arrays, meta)
                    advance(len(batch) + len(batch.failures))
            if writer.writer is None:  # nothing decodable: still write an empty table with the right columns
                dims = _dims_from_dummy(net, rf, layer_index, wanted, extra, pooling)
                writer.write([], {k: np.zeros((0, d), dtype=np.float32) for k, d in dims.items()}, meta)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        total = time.perf_counter() - t_start
        import pandas as pd

        if failures:
            write_parquet(pd.DataFrame(failures, columns=["utt_id", "path", "error"]), fail_path)
            result.failures = fail_path
        elif fail_path.exists():
            fail_path.unlink()
        result.n_rows, result.n_failed = writer.n_rows, len(failures)
        notes = list(model.notes)
        if pooling != "mean" and model.family not in ("ssl", "ssl_aasist"):
            notes.append(f"--pooling {pooling} has no effect on {model.family}: its layers are pooled block outputs")
        if padded:
            notes.append(f"{len(padded)} utterance(s) shorter than the front end's receptive field ({rf} samples) were zero-padded to it")
        if fallback:
            notes.append(f"{len(fallback)} utterance(s) gave non-finite outputs under {str(amp_dtype).replace('torch.', '')} autocast and were recomputed in fp32")
        if clipped_rows:
            notes.append(f"{clipped_rows} row(s) had values beyond the float16 range and were clipped to ±{FLOAT16_MAX:g}; rerun with --fp32 to keep them exact")
        if failures:
            notes.append(f"{len(failures)} utterance(s) failed and are listed in {fail_path.name}")
        result.summary = {
            "backbone": model.backbone, "backbone_id": model.backbone_id, "checkpoint": model.checkpoint,
            "family": model.family, "pooling": pooling, "dtype": value_type, "layers": list(dims),
            "dims": dims, "n_layers_backbone": len(net.layer_names), "receptive_field": rf,
            "n_rows": result.n_rows, "n_failed": result.n_failed, "n_padded_short": len(padded),
            "padded_short": padded[:_MAX_LISTED], "n_fp32_fallback": len(fallback), "fp32_fallback": fallback[:_MAX_LISTED],
            "n_clipped_fp16": clipped_rows, "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "none",
            "max_seconds": max_seconds, "batch_size": batch_size, "device": str(device), "shard": str(shard),
            "seconds": round(total, 3), "forward_seconds": round(t_forward, 3),
            "utterances_per_second": round(result.n_rows / total, 3) if total > 0 else None,
            "notes": notes,
        }
        target.finish(outputs={"embeddings": str(target_path), "failures": str(fail_path) if failures else None},
                      summary=result.summary)
    return result


def _nonfinite_rows(out: dict):
    import torch

    bad = None
    for value in out.values():
        rows = ~torch.isfinite(value).all(dim=1)
        bad = rows if bad is None else bad | rows
    return bad.cpu()


def _dims_from_dummy(net, rf: int, layer_index, wanted, extra, pooling) -> dict[str, int]:
    import torch

    wave, lengths = net.prepare_batch([torch.zeros(max(rf, SAMPLE_RATE))])
    device = next(net.parameters()).device
    out = net.embed(wave.to(device), lengths.to(device), pooling=pooling, layers=layer_index)
    dims = {name: int(out[f"layer_{i:02d}"].shape[1]) for i, name in zip(layer_index, wanted)}
    dims.update({key: int(out[key].shape[1]) for key in extra})
    return dims


# --------------------------------------------------------------------------- reader


def embedding_files(path: str | os.PathLike) -> list[Path]:
    """``embeddings.parquet``, or the complete set of parts of a sharded run, for a file or directory."""
    from cm_cli.core.artifacts import find_parts

    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise CmError(f"{path}: no such file or directory", "give an embeddings.parquet or the output directory of `cm embed`")
    if (path / "embeddings.parquet").is_file():
        return [path / "embeddings.parquet"]
    parts = find_parts(path)
    if not parts:
        raise CmError(f"{path}: no embeddings.parquet or part-*-of-*.parquet files",
                      "point at the output directory of `cm embed`")
    return parts


def _schema(file: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(file)
    except (OSError, pa.ArrowInvalid) as exc:
        raise CmError(f"{file}: not a readable Parquet file ({exc})") from None


def list_layers(path: str | os.PathLike) -> list[str]:
    """Vector column names (``layer_00`` …, ``pooled``, ``pre_logit``) in file order."""
    import pyarrow as pa

    schema = _schema(embedding_files(path)[0])
    if "utt_id" not in schema.names:
        raise CmError(f"{path}: no utt_id column, so this is not an embeddings table",
                      f"columns found: {', '.join(schema.names[:12])}")
    return [f.name for f in schema if f.name != "utt_id" and (pa.types.is_fixed_size_list(f.type) or pa.types.is_list(f.type)
                                                            or pa.types.is_large_list(f.type))]


def load_layer(path: str | os.PathLike, layer: str | int) -> tuple["np.ndarray", "np.ndarray"]:
    """``(utt_ids, X)`` of one layer: ids as a str array, ``X`` float32 ``(N, D)``; other columns are not read.

    ``layer`` is a column name or a layer number (``6`` -> ``layer_06``).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = embedding_files(path)
    available = list_layers(path)
    column = f"layer_{int(layer):02d}" if isinstance(layer, int) or str(layer).isdigit() else str(layer)
    if column not in available:
        raise CmError(f"{path}: no layer {layer!r}", f"layers found: {', '.join(available)}")
    ids, blocks = [], []
    width = None
    for file in files:
        table = pq.read_table(file, columns=["utt_id", column])
        array = table.column(column).combine_chunks()
        if isinstance(array, pa.ChunkedArray):  # empty tables combine to a chunked array in some versions
            array = pa.concat_arrays(array.chunks) if array.num_chunks else pa.array([], type=array.type)
        size = array.type.list_size if pa.types.is_fixed_size_list(array.type) else None
        values = array.flatten().to_numpy(zero_copy_only=False)
        if size is None:
            size = values.size // max(len(array), 1)
        if width is not None and size != width:
            raise CmError(f"{file}: {column} has width {size}, other parts {width}", "the parts come from different runs")
        width = size
        blocks.append(np.asarray(values, dtype=np.float32).reshape(len(array), size))
        ids.append(table.column("utt_id").to_numpy(zero_copy_only=False).astype(str))
    return np.concatenate(ids), np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
