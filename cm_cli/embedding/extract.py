"""Layer-wise utterance embeddings of a manifest (``cm embed``): which model, and the embedding loop.

Probes, CKA and leave-one-attack-out analyses all start from the same table: one
row per utterance, one fixed-size vector column per layer of a backbone. Writing it
once, in length-sorted batches streamed to a Parquet file (``store``), keeps memory
bounded whatever the corpus size. Trained models come from ``models.loading`` and
their inputs from ``models.inference`` (the model's own length policy), so an
utterance is embedded from exactly the input ``cm eval`` scores.

Table (DESIGN.md): ``utt_id``, ``layer_00`` … ``layer_NN`` (SSL hidden states pooled
over each utterance's real frames; for AASIST/LCNN the pooled block outputs), float16
unless ``fp32``; then ``pooled`` and ``pre_logit`` when the model has a trained head (a
``cm train`` checkpoint, or the official AASIST weights). Rows are written in the
order they were computed (longest utterances first); join on ``utt_id``. The boolean
``short`` column flags utterances with fewer samples than the model's receptive field
(``models.inference.minimum_samples``): they are embedded from padding (zero-padded, or
tiled under a ``repeat`` length policy), counted in the summary and noted, never silently.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cm_cli.core.errors import CmError, UsageError
from cm_cli.core.shard import Shard
from cm_cli.embedding.store import FLOAT16_MAX, remove_stale_temps
from cm_cli.embedding.store import EmbeddingWriter as _Writer

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = ["POOLINGS", "EmbedModel", "EmbedResult", "parse_layers", "resolve_embed_model", "embed_manifest"]

POOLINGS = ("mean", "meanstd")
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


def _same_architecture(given: str, saved: str | None) -> bool:
    """Whether ``--backbone given`` names the architecture (and pretrained weights) a checkpoint was made with."""
    from cm_cli.models.registry import get_backbone

    if saved is None or given == saved:
        return given == saved
    a, b = get_backbone(given), get_backbone(saved)
    if a.module != b.module:
        return False
    if a.default_id is None or b.default_id is None:
        return a.default_id == b.default_id
    return a.default_id == b.default_id or (
        Path(a.default_id).expanduser().resolve() == Path(b.default_id).expanduser().resolve()
    )


def _frame_layers(net) -> bool:
    """Whether the backbone's layers are frame sequences (pooled by ``--pooling``) rather than pooled blocks."""
    import torch

    from cm_cli.models.inference import model_inputs

    group = model_inputs(net, [torch.zeros(net.receptive_field)])[0]
    device = next(net.parameters()).device
    with torch.inference_mode():
        states = net.bundle.forward_layers(net, group.batch.to(device), group.lengths.to(device))
    return states.frame_lengths is not None


def _from_weights(backbone: str | None, spec, backbone_id: str | None, checkpoint) -> EmbedModel:
    """An ``EmbedModel`` from a run, cm checkpoint, official AASIST or SSL-AASIST weights file."""
    from cm_cli.models.loading import load_model, open_weights

    weights = open_weights(checkpoint)
    if weights.kind in ("run", "checkpoint"):
        saved = weights.payload["model_config"].get("backbone")
        if backbone and not _same_architecture(backbone, saved):
            raise CmError(
                f"{weights.path} holds a {saved!r} model, not {backbone!r}",
                f"name the backbone {saved}, or leave it out to use the checkpoint's own",
                option="backbone",
            )
        overrides = {"backbone_id": backbone_id}
    elif weights.kind == "ssl_aasist":
        overrides = {"backbone_id": backbone_id}  # the XLS-R the fairseq weights are read into
    elif weights.kind in ("exported", "zoo", "hf_classifier"):  # folders that say how to build their model
        overrides = {}
    else:  # a plain state dict: the official AASIST weights
        if spec is None:
            raise UsageError(
                f"{weights.path} is not a cm checkpoint, so the backbone it was trained as is needed to read it",
                "e.g. backbone aasist with the weights asvspoof5_aasist_baseline.pth",
                option="backbone",
            )
        if not _same_architecture(backbone, "aasist"):
            raise CmError(
                f"{weights.path} is not a cm checkpoint, and plain weight files are only read for the aasist backbone",
                f"for {backbone} give the weights' model directory as the backbone id, or a `cm train` run as the "
                "checkpoint",
                option=("backbone_id", "checkpoint"),
            )
        if backbone_id and Path(backbone_id).expanduser().resolve() != weights.path.resolve():
            raise UsageError(
                "the AASIST weights were given twice, as the checkpoint and as a different backbone id",
                "give them once",
                option=("checkpoint", "backbone_id"),
            )
        overrides = {}
    loaded = load_model(weights, overrides=overrides)
    config = loaded.config
    return EmbedModel(
        loaded.model,
        config.backbone,
        config.backbone_id,
        str(loaded.checkpoint.resolve()),
        True,
        loaded.model.family,
        int(loaded.model.receptive_field),
    )


def resolve_embed_model(
    backbone: str | None, *, backbone_id: str | None = None, checkpoint: str | os.PathLike | None = None
) -> EmbedModel:
    """Build the model to embed with.

    - ``checkpoint`` = a ``cm train`` run directory or ``cm-checkpoint/1`` file: the model is
      rebuilt from its own config (``backbone``, when given, must match it; ``backbone_id``
      overrides where its frozen weights are read from) and pooled / pre_logit are exported;
      an SSL-AASIST checkpoint likewise (``backbone_id``: the XLS-R model directory).
    - ``backbone="aasist"`` with ``checkpoint`` (or ``backbone_id``) = an official AASIST
      state dict (the ASVspoof 5 baseline ``.pth``).
    - an SSL backbone (``wavlm``, ``w2v2``, ``xlsr``, ``hubert``, a hub id or a directory) with
      ``backbone_id`` pointing at other weights if wanted.
    """
    from cm_cli.models.model import ModelConfig, build_model
    from cm_cli.models.registry import get_backbone

    spec = get_backbone(backbone) if backbone else None  # unknown name -> CmError listing the registry
    if checkpoint is None and spec is not None and spec.default_id is None and backbone_id:
        checkpoint, backbone_id = backbone_id, None  # --backbone aasist --backbone-id WEIGHTS.pth
    if checkpoint is not None:
        return _from_weights(backbone, spec, backbone_id, checkpoint)
    if spec is None:
        raise UsageError(
            "no model to embed with",
            "name a backbone, or give a `cm train` run as the checkpoint",
            option=("backbone", "checkpoint"),
        )
    if spec.default_id is None:
        raise CmError(
            f"backbone {backbone} has no pretrained weights of its own; random weights embed nothing useful",
            "give a checkpoint (the official AASIST .pth, or a `cm train` run directory)",
            option="checkpoint",
        )
    if not spec.cm_head:
        raise CmError(
            f"{backbone} has a trained back end; embed it from a `cm train` run or its checkpoint",
            option="checkpoint",
        )
    config = ModelConfig(backbone=backbone, backbone_id=backbone_id, trainable="frozen", layer="last", pooling="mean")
    model = build_model(config).eval()
    return EmbedModel(model, backbone, config.backbone_id, None, False, model.family, int(model.receptive_field))


def parse_layers(text: str | Sequence[int] | None, n_layers: int) -> list[int]:
    """``all`` / ``None`` -> every index; ``"0,6,12"`` (negatives count from the end) -> those, in order."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "all")):
        return list(range(n_layers))
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[int] = []
    for item in items:
        raw = str(item).strip()
        if raw.startswith("layer_"):
            raw = raw[len("layer_") :]
        try:
            index = int(raw)
        except ValueError:
            raise UsageError(
                f"layers {text!r}: {item!r} is not a layer number", "use all, or numbers like 0,6,12", option="layers"
            ) from None
        if index < 0:
            index += n_layers
        if not 0 <= index < n_layers:
            raise UsageError(
                f"layers {text!r}: layer {item} is out of range",
                f"this backbone has layers 0..{n_layers - 1}",
                option="layers",
            )
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


def _crop(wave, max_samples: int | None):
    if max_samples is None or wave.shape[-1] <= max_samples:
        return wave
    start = (wave.shape[-1] - max_samples) // 2
    return wave[start : start + max_samples]


@dataclass
class _Plan:
    """Everything the loop needs, fixed before the output directory is opened."""

    frame: Any
    net: Any
    model: EmbedModel
    layer_index: list[int]
    columns: list[str]  # layer columns, then pooled / pre_logit
    value_type: str
    pooling: str
    device: Any
    amp_dtype: Any
    max_samples: int | None
    minimum: int  # inputs shorter than this are zero-padded (unless the policy tiles them)


@dataclass
class _Tally:
    failures: list = field(default_factory=list)
    padded: list = field(default_factory=list)
    short: list = field(default_factory=list)  # fewer samples than the receptive field, whatever the policy
    fallback: list = field(default_factory=list)
    clipped_rows: int = 0
    dims: dict = field(default_factory=dict)
    t_forward: float = 0.0


def _forward_batch(plan: _Plan, waves: list) -> tuple[dict, Any, Any]:
    """Embeddings of ``waves`` in order (fp32 tensors), rows not finite under autocast, rows recomputed in fp32."""
    import torch

    from cm_cli.models.inference import model_inputs

    def run(group, dtype):
        with torch.autocast(plan.device.type, dtype=dtype, enabled=dtype is not None):
            out = plan.net.embed(
                group.batch.to(plan.device, non_blocking=True),
                group.lengths.to(plan.device),
                pooling=plan.pooling,
                layers=plan.layer_index,
            )
        return {k: v.float() for k, v in out.items()}

    merged: dict = {}
    bad_all = torch.zeros(len(waves), dtype=torch.bool)
    again_all = torch.zeros(len(waves), dtype=torch.bool)
    for group in model_inputs(plan.net, waves):
        out = run(group, plan.amp_dtype)
        bad = _nonfinite_rows(out)
        if bad.any() and plan.amp_dtype is not None:
            again = run(group, None)
            for key in out:
                out[key][bad.to(out[key].device)] = again[key][bad.to(out[key].device)]
            again_all[group.positions] = bad
            bad = _nonfinite_rows(out)
        bad_all[group.positions] = bad
        for key, value in out.items():
            if key not in merged:
                merged[key] = torch.empty((len(waves), value.shape[1]), dtype=torch.float32)
            merged[key][group.positions] = value.cpu()
    return merged, bad_all, again_all


def _store_batch(
    plan: _Plan, tally: _Tally, writer, ids: list[str], out: dict, keep: list[int], meta: dict, short
) -> None:
    import numpy as np

    arrays = {name: out[f"layer_{i:02d}"][keep].numpy() for i, name in zip(plan.layer_index, plan.columns)}
    for key in plan.columns[len(plan.layer_index) :]:
        arrays[key] = out[key][keep].numpy()
    if plan.value_type == "float16":
        over = np.zeros(len(keep), dtype=bool)
        for a in arrays.values():
            row_over = (np.abs(a) > FLOAT16_MAX).any(axis=1)
            if row_over.any():
                over |= row_over
                np.clip(a, -FLOAT16_MAX, FLOAT16_MAX, out=a)
        tally.clipped_rows += int(over.sum())
    tally.dims = {k: int(a.shape[1]) for k, a in arrays.items()}
    writer.write([ids[j] for j in keep], arrays, meta, {"short": np.asarray(short, dtype=bool)[keep]})


def _embed_rows(plan: _Plan, writer, *, data_root, batch_size: int, workers: int) -> _Tally:
    """Run the model over every row of ``plan.frame`` into ``writer``; failures and notes tallied."""
    import torch

    from cm_cli.core.progress import task
    from cm_cli.data.manifest import resolve_audio_path
    from cm_cli.models.inference import iter_audio_batches

    frame = plan.frame
    utt_ids = frame["utt_id"].astype(str).tolist()
    tally = _Tally()
    tiles = plan.net.config.length.policy == "repeat"  # repeat padding tiles short audio instead
    meta = {"cm.backbone": plan.model.backbone, "cm.pooling": plan.pooling, "cm.dtype": plan.value_type}
    with task(len(frame), "embed") as advance, torch.inference_mode():
        for batch in iter_audio_batches(frame, data_root=data_root, batch_size=batch_size, workers=workers):
            for row, message in batch.failures:
                path = str(resolve_audio_path(str(frame["path"].iloc[row]), data_root))
                tally.failures.append({"utt_id": utt_ids[row], "path": path, "error": message})
            if batch.indices:
                waves = [_crop(w, plan.max_samples) for w in batch.waves]
                short = [int(w.shape[-1]) < plan.minimum for w in waves]
                if not tiles:
                    tally.padded.extend(utt_ids[r] for r, s in zip(batch.indices, short) if s)
                t0 = time.perf_counter()
                out, bad, again = _forward_batch(plan, waves)
                _sync(plan.device)
                tally.t_forward += time.perf_counter() - t0
                rows = batch.indices
                tally.fallback.extend(utt_ids[rows[j]] for j in again.nonzero().flatten().tolist())
                for j in bad.nonzero().flatten().tolist():
                    path = str(resolve_audio_path(str(frame["path"].iloc[rows[j]]), data_root))
                    tally.failures.append(
                        {"utt_id": utt_ids[rows[j]], "path": path, "error": "non-finite embedding even in fp32"}
                    )
                keep = (~bad).nonzero().flatten().tolist()
                tally.short.extend(utt_ids[rows[j]] for j in keep if short[j])
                if keep:
                    _store_batch(plan, tally, writer, [utt_ids[r] for r in rows], out, keep, meta, short)
            advance(len(batch.indices) + len(batch.failures))
    if writer.writer is None:  # nothing decodable: still write an empty table with the right columns
        import numpy as np

        tally.dims = _dims_from_dummy(plan)
        empty = {k: np.zeros((0, d), dtype=np.float32) for k, d in tally.dims.items()}
        writer.write([], empty, meta, {"short": np.zeros(0, dtype=bool)})
    return tally


def _summary(
    plan: _Plan,
    tally: _Tally,
    result: EmbedResult,
    *,
    fail_name: str,
    max_seconds,
    batch_size: int,
    shard: Shard,
    seconds: float,
) -> dict:
    model, net = plan.model, plan.net
    notes = list(model.notes)
    if plan.pooling != "mean" and not _frame_layers(net):
        notes.append(f"--pooling {plan.pooling} has no effect on {model.family}: its layers are pooled block outputs")
    if tally.short:
        how = "zero-padded to it" if tally.padded else "tiled to the model's input length (repeat policy)"
        notes.append(
            f"{len(tally.short)} utterance(s) shorter than the front end's receptive field "
            f"({plan.minimum} samples = {1000 * plan.minimum / SAMPLE_RATE:g} ms) were {how}: their embeddings "
            "mostly describe padding (flagged in the 'short' column)"
        )
    amp = str(plan.amp_dtype).replace("torch.", "") if plan.amp_dtype else "none"
    if tally.fallback:
        notes.append(
            f"{len(tally.fallback)} utterance(s) gave non-finite outputs under {amp} autocast "
            "and were recomputed in fp32"
        )
    if tally.clipped_rows:
        notes.append(
            f"{tally.clipped_rows} row(s) had values beyond the float16 range and were clipped to "
            f"±{FLOAT16_MAX:g}; rerun with --fp32 to keep them exact"
        )
    if tally.failures:
        notes.append(f"{len(tally.failures)} utterance(s) failed and are listed in {fail_name}")
    return {
        "backbone": model.backbone,
        "backbone_id": model.backbone_id,
        "checkpoint": model.checkpoint,
        "family": model.family,
        "pooling": plan.pooling,
        "dtype": plan.value_type,
        "layers": list(tally.dims),
        "dims": tally.dims,
        "n_layers_backbone": len(net.layer_names),
        "receptive_field": model.receptive_field,
        "length_policy": net.config.length.policy,
        "target_samples": net.config.length.target,
        "n_rows": result.n_rows,
        "n_failed": result.n_failed,
        "n_padded_short": len(tally.padded),
        "padded_short": tally.padded[:_MAX_LISTED],
        "n_short": len(tally.short),
        "short": tally.short[:_MAX_LISTED],
        "n_fp32_fallback": len(tally.fallback),
        "fp32_fallback": tally.fallback[:_MAX_LISTED],
        "n_clipped_fp16": tally.clipped_rows,
        "amp": amp,
        "max_seconds": max_seconds,
        "batch_size": batch_size,
        "device": str(plan.device),
        "shard": str(shard),
        "seconds": round(seconds, 3),
        "forward_seconds": round(tally.t_forward, 3),
        "utterances_per_second": round(result.n_rows / seconds, 3) if seconds > 0 else None,
        "notes": notes,
    }


def _reused(result: EmbedResult, record: dict, fail_path: Path) -> EmbedResult:
    """The result of a complete earlier run with the same options."""
    result.skipped = True
    result.summary = dict(record.get("summary", {}))
    result.n_rows = int(result.summary.get("n_rows", 0))
    result.n_failed = int(result.summary.get("n_failed", 0))
    result.failures = fail_path if fail_path.is_file() else None
    return result


def _write_failures(failures: list, fail_path: Path) -> Path | None:
    """``failures.parquet`` when rows failed; a stale one from an earlier attempt is removed."""
    if not failures:
        fail_path.unlink(missing_ok=True)
        return None
    import pandas as pd

    from cm_cli.core.artifacts import write_parquet

    write_parquet(pd.DataFrame(failures, columns=["utt_id", "path", "error"]), fail_path)
    return fail_path


def _check_args(pooling: str, batch_size: int, max_seconds: float | None, backbone: str | None, model) -> None:
    if pooling not in POOLINGS:
        raise UsageError(f"unknown pooling {pooling!r}", f"choose one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}", option="batch_size")
    if max_seconds is not None and max_seconds <= 0:
        raise UsageError(f"the crop length must be positive seconds, got {max_seconds}", option="max_seconds")
    if model is None and backbone:
        from cm_cli.models.registry import get_backbone

        get_backbone(backbone)  # an unknown name fails before anything is created on disk


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
    feature_options: dict | None = None,
) -> EmbedResult:
    """Embed every row of ``manifest`` (this shard's slice) into ``out_dir``; see the module docstring.

    ``amp``: ``auto`` = bf16 (fp16 where bf16 is unsupported) autocast on CUDA, none on CPU; rows not
    finite under autocast are recomputed in fp32, rows still not finite or undecodable go to failures.
    ``backbone`` naming a feature set (``cm_cli.featuresets``: prosody, reconstruction, transcript)
    computes that set instead (``embedding.features``; ``feature_options`` are its settings).
    """
    import torch

    from cm_cli.core.artifacts import OutputDir
    from cm_cli.data.manifests import load_manifest
    from cm_cli.featuresets.registry import is_feature_set
    from cm_cli.models.inference import minimum_samples

    if is_feature_set(backbone) and (checkpoint is not None or model is not None):
        raise UsageError(
            f"{backbone} is a feature set: it takes no checkpoint",
            "leave the checkpoint out (feature sets take their weights, if any, from the backbone id)",
            option=("checkpoint", "backbone_id"),
        )
    if is_feature_set(backbone):
        from cm_cli.embedding.features import embed_feature_set

        return embed_feature_set(
            manifest,
            out_dir,
            name=backbone,
            backbone_id=backbone_id,
            layers=layers,
            split=split,
            batch_size=batch_size,
            max_seconds=max_seconds,
            shard=shard,
            data_root=data_root,
            device=device,
            workers=workers,
            force=force,
            options=options,
            feature_options=feature_options,
        )
    _check_args(pooling, batch_size, max_seconds, backbone, model)
    shard = shard or Shard()
    manifest = Path(manifest)
    out_dir = Path(out_dir).expanduser().resolve()
    device = torch.device(device)
    frame = load_manifest(manifest, split=split)
    frame = frame.iloc[slice(*shard.bounds(len(frame)))].reset_index(drop=True)
    value_type = "float32" if fp32 else "float16"
    name = "embeddings.parquet" if shard.is_whole else shard.part_name()
    fail_name = "failures.parquet" if shard.is_whole else shard.part_name("failures")
    target_path, fail_path = out_dir / name, out_dir / fail_name
    checkpoint_text = str(Path(checkpoint).expanduser().resolve()) if checkpoint else None
    record_options = {
        **(options or {}),
        "manifest": str(manifest.resolve()),
        "backbone": backbone,
        "backbone_id": backbone_id,
        "checkpoint": checkpoint_text,
        "layers": layers if isinstance(layers, str) or layers is None else list(layers),
        "pooling": pooling,
        "split": split,
        "max_seconds": max_seconds,
        "dtype": value_type,
    }
    result = EmbedResult(out_dir, target_path)
    inputs = [manifest] + ([checkpoint_text] if checkpoint_text and Path(checkpoint_text).exists() else [])
    if model is None:
        model = resolve_embed_model(backbone, backbone_id=backbone_id, checkpoint=checkpoint)
    net = model.model.to(device).eval()
    layer_index = parse_layers(layers, len(net.layer_names))
    plan = _Plan(
        frame,
        net,
        model,
        layer_index,
        [net.layer_names[i] for i in layer_index] + (["pooled", "pre_logit"] if model.trained_head else []),
        value_type,
        pooling,
        device,
        None if fp32 and amp == "auto" else _amp_dtype(amp, device),
        int(round(max_seconds * SAMPLE_RATE)) if max_seconds else None,
        minimum_samples(net),
    )

    with OutputDir(
        out_dir, kind="embeddings", options=record_options, inputs=inputs, force=force, shard=shard, device=str(device)
    ) as target:
        if target.done and target_path.is_file():
            return _reused(result, target.record, fail_path)
        remove_stale_temps(out_dir, [name, fail_name])
        writer = _Writer(target_path, value_type=value_type)
        t_start = time.perf_counter()
        try:
            tally = _embed_rows(plan, writer, data_root=data_root, batch_size=batch_size, workers=workers)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        result.failures = _write_failures(tally.failures, fail_path)
        result.n_rows, result.n_failed = writer.n_rows, len(tally.failures)
        result.summary = _summary(
            plan,
            tally,
            result,
            fail_name=fail_path.name,
            max_seconds=max_seconds,
            batch_size=batch_size,
            shard=shard,
            seconds=time.perf_counter() - t_start,
        )
        target.finish(
            outputs={"embeddings": str(target_path), "failures": str(fail_path) if tally.failures else None},
            summary=result.summary,
        )
    return result


def _nonfinite_rows(out: dict):
    import torch

    bad = None
    for value in out.values():
        rows = ~torch.isfinite(value).all(dim=1)
        bad = rows if bad is None else bad | rows
    return bad.cpu()


def _dims_from_dummy(plan: _Plan) -> dict[str, int]:
    import torch

    from cm_cli.models.inference import model_inputs

    group = model_inputs(plan.net, [torch.zeros(max(plan.minimum, SAMPLE_RATE))])[0]
    out = plan.net.embed(
        group.batch.to(plan.device), group.lengths.to(plan.device), pooling=plan.pooling, layers=plan.layer_index
    )
    dims = {name: int(out[f"layer_{i:02d}"].shape[1]) for i, name in zip(plan.layer_index, plan.columns)}
    dims.update({key: int(out[key].shape[1]) for key in plan.columns[len(plan.layer_index) :]})
    return dims
