"""Heads trained on cached pooled features (``cm train --features DIR``): no audio, no backbone.

With a frozen backbone every training step is a backbone forward, recomputed every
epoch. ``cm embed --pooling meanstd`` computes each utterance's per-layer mean and
standard deviation once; this module trains an ERM or DANN head on that cache:
a softmax-weighted sum of the layers' pooled statistics (one learned weight per
layer), a layer norm, a projection and the bona fide/spoof classifier, with the DANN
domain heads on the projection through the gradient reversal layer. Unlike the
frame-level heads of ``cm train`` (pooling learnt over frames of one chosen layer),
the temporal pooling here is fixed (mean and std) and happens before the layer
mixing. See docs/training.md for the arithmetic of the cache.

Feature-set tables (``cm embed --backbone prosody`` …) hold raw units (Hz, dB, ratios) whose
scales differ by orders of magnitude; the head's layer norm only rescales each row across its
features, so one large-unit column swamps the rest. ``--feature-norm`` standardises each input
column with the training rows' mean and sd (saved with the head, applied to validation and every
scored row); ``auto`` does so for feature-set tables only, so backbone-embedding heads are unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.models.checkpoint import FEATURE_HEAD_FORMAT

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "FEATURE_HEAD_FORMAT",
    "FeatureSet",
    "load_features",
    "load_feature_tables",
    "feature_paths",
    "train_features_run",
    "load_feature_head",
    "check_head_matches",
    "is_feature_run",
    "score_features",
    "feature_head_step",
    "FEATURE_NORMS",
    "feature_norm_columns",
    "fit_feature_norm",
    "apply_feature_norm",
]

# --feature-norm: auto standardises feature-set tables (raw units) and leaves backbone embeddings alone
FEATURE_NORMS = ("auto", "standardize", "none")


@dataclass
class FeatureSet:
    """Pooled per-layer features: ``values[i, l]`` is row ``ids[i]``'s vector at ``layers[l]``."""

    ids: np.ndarray  # (N,) str
    values: np.ndarray  # (N, L, D) float32
    layers: list[str]
    pooling: str | None
    backbone: dict | None = None  # the cache's cm.json backbone, backbone_id and checkpoint, where recorded
    # several tables joined on utt_id (load_feature_tables): (layers, width) of each, values (N, 1, sum L*D)
    groups: list | None = None
    absent_from: dict | None = None  # utt_id -> the table that lacks it (ids not in every table)
    # per table (one entry, or one per joined table): the feature set that wrote it (cm.feature_set), else None
    feature_sets: list | None = None

    def rows(self, utt_ids) -> np.ndarray:
        """Row positions of ``utt_ids``; ids without features are an error naming how many and one of them."""
        index = {u: i for i, u in enumerate(self.ids.tolist())}
        positions = np.array([index.get(str(u), -1) for u in utt_ids], dtype=np.int64)
        missing = [str(u) for u, p in zip(utt_ids, positions) if p < 0]
        if missing and self.absent_from:
            lacking = [u for u in missing if u in self.absent_from]
            if lacking:
                raise CmError(
                    f"{len(lacking)} manifest row(s) are missing from one of the feature tables, e.g. "
                    f"{lacking[0]} from {self.absent_from[lacking[0]]}",
                    "embed the same manifest into every feature table",
                    option="features",
                )
        if missing:
            raise CmError(
                f"{len(missing)} manifest row(s) have no features in the cache, e.g. {missing[0]}",
                "embed the same manifest (and the augmentation manifest's variants) with `cm embed --pooling meanstd`",
                option=("features", "augment_manifest"),
            )
        return positions


def load_features(path: str | Path) -> FeatureSet:
    """Every ``layer_NN`` column of a ``cm embed`` output as one (N, L, D) float32 array."""
    from cm_cli.core.artifacts import read_json
    from cm_cli.embedding import list_layers, read_layers

    path = Path(path)
    layers = [c for c in list_layers(path) if c.startswith("layer_")]
    if not layers:
        raise CmError(f"{path}: no layer_NN columns", "give the output directory of `cm embed --pooling meanstd`")
    ids, values = read_layers(path, layers)  # straight into one (N, L, D) float32 array: peak ~ the result
    record = path / "cm.json" if path.is_dir() else path.parent / "cm.json"
    options = (read_json(record).get("options") or {}) if record.is_file() else {}
    backbone = {k: options.get(k) for k in _BACKBONE_KEYS} if record.is_file() else None
    feature_sets = [options.get("feature_set") or _table_feature_set(path)]
    return FeatureSet(
        np.asarray(ids).astype(str), values, layers, options.get("pooling"), backbone, feature_sets=feature_sets
    )


def _table_feature_set(path: Path) -> str | None:
    """The ``cm.feature_set`` Parquet metadata a feature-set table carries (cm_cli.embedding.features), else None."""
    import pyarrow.parquet as pq

    from cm_cli.embedding import embedding_files

    metadata = pq.read_schema(embedding_files(path)[0]).metadata or {}
    value = metadata.get(b"cm.feature_set")
    return value.decode() if value else None


def feature_paths(spec) -> list[Path]:
    """The tables of a ``--features`` value: one path, several joined by ``,``, or a list."""
    items = spec if isinstance(spec, (list, tuple)) else str(spec).split(",")
    return [Path(str(p).strip()) for p in items if str(p).strip()]


def load_feature_tables(spec) -> FeatureSet:
    """One table (``load_features``) or several joined on ``utt_id`` (inner join, in the first table's order)
    and concatenated: each table keeps its layers (mixed by its own learned weights in the head)."""
    paths = feature_paths(spec)
    if len(paths) == 1:
        return load_features(paths[0])
    tables = [load_features(p) for p in paths]
    common = set(tables[0].ids.tolist())
    for t in tables[1:]:
        common &= set(t.ids.tolist())
    ids = np.array([u for u in tables[0].ids.tolist() if u in common], dtype=str)
    absent = {}
    for path, t in zip(paths, tables):
        for u in set().union(*(set(o.ids.tolist()) for o in tables)) - set(t.ids.tolist()):
            absent.setdefault(u, str(path))
    parts, layers, groups = [], [], []
    for i, t in enumerate(tables):
        index = {u: k for k, u in enumerate(t.ids.tolist())}
        values = t.values[np.array([index[u] for u in ids], dtype=np.int64)]
        parts.append(values.reshape(len(ids), -1))
        layers += [f"t{i}/{name}" for name in t.layers]
        groups.append((int(values.shape[1]), int(values.shape[2])))
    values = np.concatenate(parts, axis=1)[:, None, :].astype(np.float32)
    backbone = {k: "+".join(str((t.backbone or {}).get(k)) for t in tables) for k in _BACKBONE_KEYS}
    pooling = "+".join(str(t.pooling) for t in tables)
    feature_sets = [(t.feature_sets or [None])[0] for t in tables]
    return FeatureSet(ids, values, layers, pooling, backbone, groups, absent, feature_sets)


def feature_norm_columns(features: FeatureSet, mode: str = "auto") -> np.ndarray | None:
    """Which input elements (shape ``values.shape[1:]``) ``mode`` standardises, or None for none:
    ``standardize`` all, ``none`` none, ``auto`` those of the tables a feature set wrote."""
    if mode not in FEATURE_NORMS:
        raise CmError(
            f"feature normalisation {mode!r} is unknown",
            f"use one of {', '.join(FEATURE_NORMS)}",
            option="feature_norm",
        )
    shape = features.values.shape[1:]
    if mode == "none":
        return None
    if mode == "standardize":
        return np.ones(shape, dtype=bool)
    kinds = features.feature_sets or [None]
    if not any(kinds):
        return None
    if not features.groups:
        return np.ones(shape, dtype=bool)
    mask, start = np.zeros(shape, dtype=bool), 0
    for (n, d), kind in zip(features.groups, kinds):
        mask[..., start : start + n * d] = bool(kind)
        start += n * d
    return mask


def fit_feature_norm(x_train: np.ndarray, columns: np.ndarray | None) -> dict | None:
    """``{"mean", "scale"}`` (float32, shape ``x_train.shape[1:]``) from the training rows: mean 0 and
    scale 1 outside ``columns``, and for constant columns (nothing to scale); None when ``columns`` is None."""
    if columns is None:
        return None
    x = np.asarray(x_train, dtype=np.float64)
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1:])
    sd = x.std(axis=0) if len(x) else np.ones(x.shape[1:])
    scale = np.where(sd > 1e-12 * np.maximum(1.0, np.abs(mean)), sd, 1.0)
    mean, scale = np.where(columns, mean, 0.0), np.where(columns, scale, 1.0)
    return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}


def apply_feature_norm(values: np.ndarray, norm: dict | None) -> np.ndarray:
    """``values`` standardised by a ``fit_feature_norm`` result (the very same array when ``norm`` is None)."""
    if norm is None:
        return values
    mean, scale = (np.asarray(norm[k], dtype=np.float64) for k in ("mean", "scale"))
    return ((np.asarray(values, dtype=np.float64) - mean) / scale).astype(np.float32)


# what of a cache's cm.json names the network its features came from
_BACKBONE_KEYS = ("backbone", "backbone_id", "checkpoint")


class FeatureOutput(NamedTuple):
    """A feature head's output, laid out like ``ModelOutput``'s first four fields (``[1]`` is the score)."""

    logits: Any
    score: Any
    pooled: Any
    pre_logit: Any


def _head_module(n_layers: int, dim: int, hidden: int, dropout: float, score_head: str = "linear", groups=None):
    import torch
    from torch import nn

    from cm_cli.models.heads import CosineScore, score_from_logits

    if groups:
        return _fused_head_module(groups, hidden, dropout, score_head)

    class FeatureHead(nn.Module):
        """(B, L, D) pooled statistics -> softmax layer mix -> norm -> projection -> 2 logits."""

        def __init__(self):
            super().__init__()
            self.layer_logits = nn.Parameter(torch.zeros(n_layers))
            self.norm = nn.LayerNorm(dim)
            self.projection = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
            self.classifier = CosineScore(hidden) if score_head == "cosine" else nn.Linear(hidden, 2)

        def forward(self, x):
            weights = torch.softmax(self.layer_logits, dim=0)
            mixed = (x * weights[None, :, None]).sum(dim=1)
            pre_logit = self.projection(self.norm(mixed))
            logits = self.classifier(pre_logit)
            return FeatureOutput(logits, score_from_logits(logits), mixed, pre_logit)

    return FeatureHead()


def _fused_head_module(groups, hidden: int, dropout: float, score_head: str):
    import torch
    from torch import nn

    from cm_cli.models.heads import CosineScore, score_from_logits

    groups = [(int(n), int(d)) for n, d in groups]

    class FusedFeatureHead(nn.Module):
        """(B, 1, sum L_i D_i) of several tables -> each table's own layer mix and norm -> concatenated -> as above."""

        def __init__(self):
            super().__init__()
            self.layer_logits = nn.ParameterList([nn.Parameter(torch.zeros(n)) for n, _ in groups])
            self.norms = nn.ModuleList([nn.LayerNorm(d) for _, d in groups])
            total = sum(d for _, d in groups)
            self.projection = nn.Sequential(nn.Linear(total, hidden), nn.ReLU(), nn.Dropout(dropout))
            self.classifier = CosineScore(hidden) if score_head == "cosine" else nn.Linear(hidden, 2)

        def forward(self, x):
            x = x.reshape(x.shape[0], -1)
            mixed, start = [], 0
            for (n, d), logits, norm in zip(groups, self.layer_logits, self.norms):
                part = x[:, start : start + n * d].reshape(-1, n, d)
                start += n * d
                mixed.append(norm((part * torch.softmax(logits, dim=0)[None, :, None]).sum(dim=1)))
            fused = torch.cat(mixed, dim=-1)
            pre_logit = self.projection(fused)
            logits = self.classifier(pre_logit)
            return FeatureOutput(logits, score_from_logits(logits), fused, pre_logit)

    return FusedFeatureHead()


def _hidden(config) -> int:
    head = str(config.head or "256").split(",")[0].strip()
    return 256 if head in ("", "none") else int(head)


def _frames(config, manifest: Path, features: FeatureSet):
    """(train rows, train positions, dev rows or None, dev positions, data) joined to the feature cache."""
    from cm_cli.training.data import load_training_data

    data = load_training_data(manifest, config, check_available=False)
    train_pos = features.rows(data.train["utt_id"].astype(str).tolist())
    dev_pos = None if data.dev is None else features.rows(data.dev["utt_id"].astype(str).tolist())
    return data, train_pos, dev_pos


def _score(head, values: np.ndarray, device, batch: int = 1024) -> np.ndarray:
    import torch

    was = head.training
    head.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(values), batch):
            x = torch.from_numpy(values[start : start + batch]).to(device)
            out.append(head(x)[1].float().cpu().numpy())
    head.train(was)
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


class _RowBatch:
    """A minibatch of cached rows: what the Stepper reads of a batch (``indices``, ``len``)."""

    def __init__(self, rows: np.ndarray):
        import torch

        self.indices = torch.from_numpy(np.asarray(rows, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.indices.numel())


class _FeatureTrainer:
    """Shuffled minibatches of cached features through the run's ``Stepper``, with ``fit``'s selection."""

    def __init__(self, config, data, features: FeatureSet, train_pos, dev_pos, device):
        import torch

        from cm_cli.training.methods.losses import criterion, score_head
        from cm_cli.training.state import TrainState
        from cm_cli.training.step import (
            Stepper,
            build_method,
            build_optimizer,
            method_modules,
            train_module,
        )

        torch.manual_seed(config.seed)
        self.config, self.data, self.device = config, data, device
        x_train = features.values[train_pos]
        self.norm_mode = getattr(config, "feature_norm", "auto") or "auto"
        self.norm = fit_feature_norm(x_train, feature_norm_columns(features, self.norm_mode))
        self.x_train = apply_feature_norm(x_train, self.norm)
        self.x_dev = None if dev_pos is None else apply_feature_norm(features.values[dev_pos], self.norm)
        n_layers, dim = features.values.shape[1:]
        hidden = _hidden(config)
        self.head = _head_module(
            n_layers,
            dim,
            hidden,
            float(config.model_options.get("dropout", 0.1)),
            score_head(config.loss),
            features.groups,
        ).to(device)
        self.per_epoch = max(1, math.ceil(len(train_pos) / config.batch_size))
        total_steps = config.max_steps or config.epochs * max(1, math.ceil(self.per_epoch / config.grad_accum))
        self.state = TrainState(total_steps=total_steps)
        method = build_method(config, data.domains, total_steps)
        self.heads = method_modules(method, self.head, device, rep_dim=hidden)
        self.module = train_module(self.head, self.heads, None, method, criterion(config.loss)).to(device)
        self.optimizer = build_optimizer(self.module, config)
        x_train = self.x_train
        self.stepper = Stepper(
            config,
            data,
            model=self.head,
            heads=self.heads,
            module=self.module,
            net=self.module,
            optimizer=self.optimizer,
            device=device,
            world_size=1,
            total_steps=total_steps,
            method=method,
            inputs=lambda batch: (torch.from_numpy(x_train[batch.indices.numpy()]).to(device),),
        )

    def _step(self, rows: np.ndarray, *, last: bool = True) -> None:
        """One micro-batch of ``rows``; the optimiser steps after ``--grad-accum`` of them or at ``last``."""
        batch = _RowBatch(rows)
        stepper, state = self.stepper, self.state
        stepper.backward(batch, stepper.conditions(batch), state, last_micro=last, position=state.offset + 1)
        state.offset += 1
        if stepper.accumulated >= self.config.grad_accum or last:
            stepper.step(state)

    def validate(self) -> dict | None:
        from cm_cli.training.history import record_dev
        from cm_cli.training.selection import dev_result

        if self.x_dev is None:
            return None
        is_bona = self.data.dev["label"].astype(str).to_numpy() == "bonafide"
        result = dev_result(_score(self.head, self.x_dev, self.device), is_bona)
        result["improved"] = self.state.select(result)
        record_dev(self.state.history[-1], result)
        return result

    def run(self, save) -> None:
        """Epochs of shuffled minibatches; validate and ``save(improved)`` after each epoch."""
        config, state = self.config, self.state
        self.module.train()
        while state.step < state.total_steps and state.status == "complete":
            order = np.random.default_rng([config.seed, state.epoch]).permutation(len(self.x_train))
            starts = range(0, len(order), config.batch_size)
            state.offset = 0
            for start in starts:
                self._step(order[start : start + config.batch_size], last=start + config.batch_size >= len(order))
                if state.step >= state.total_steps:
                    break
            state.epoch += 1
            result = self.validate()
            save(bool(result and result["improved"]))
            if state.out_of_patience(config.patience):
                state.status = "early_stopped"
            if config.max_steps is None and state.epoch >= config.epochs:
                break


def feature_head_step(config, data, features: FeatureSet, *, device="cpu"):
    """``step(rows)``: one ``cm train --features`` optimiser step on ``features.values[rows]`` (training rows =
    ``data.train``, in order), the very step a run takes, so a benchmark can time it without a run directory."""
    import torch

    return _FeatureTrainer(config, data, features, np.arange(len(features.ids)), None, torch.device(device))._step


def _save(trainer: _FeatureTrainer, path: Path, features: FeatureSet, features_dir: Path) -> None:
    import torch

    from cm_cli.core.artifacts import atomic_path
    from cm_cli.training.methods.losses import score_head

    state = trainer.state
    payload = {
        "format": FEATURE_HEAD_FORMAT,
        "layers": features.layers,
        "dim": int(features.values.shape[2]),
        "hidden": _hidden(trainer.config),
        "pooling": features.pooling,
        "features": str(features_dir),
        "groups": features.groups,
        "backbone": features.backbone,
        "feature_norm": _norm_payload(trainer),
        "state_dict": {k: v.detach().cpu() for k, v in trainer.head.state_dict().items()},
        "heads": None if trainer.heads is None else trainer.heads.state_dict(),
        "score_head": score_head(trainer.config.loss),
        "step": state.step,
        "epoch": state.epoch,
        "train_config": trainer.config.to_dict(),
        "metrics": dict(state.history[-1]) if state.history else {},
    }
    with atomic_path(path, suffix=".pt.tmp") as tmp:
        torch.save(payload, tmp)


def _norm_payload(trainer: _FeatureTrainer) -> dict:
    """The checkpoint's record of the input standardisation (mode asked; mean and scale, or None)."""
    import torch

    norm = trainer.norm
    return {
        "mode": trainer.norm_mode,
        "mean": None if norm is None else torch.from_numpy(norm["mean"]),
        "scale": None if norm is None else torch.from_numpy(norm["scale"]),
    }


def _payload_norm(payload: dict) -> dict | None:
    """The (mean, scale) a checkpoint saved, as numpy; None for heads trained without standardisation."""
    saved = payload.get("feature_norm") or {}
    if saved.get("mean") is None:
        return None
    return {k: np.asarray(saved[k].cpu().numpy() if hasattr(saved[k], "cpu") else saved[k]) for k in ("mean", "scale")}


def train_features_run(
    config,
    features_dir: str | Path,
    manifest: str | Path,
    run_dir: str | Path,
    *,
    device: str = "cpu",
    force: bool = False,
    argv=None,
    preset: str | None = None,
):
    """Train a head on a feature cache into ``run_dir`` (config.json, history.parquet, checkpoints/)."""
    import shutil

    import torch

    from cm_cli.core.artifacts import OutputDir, write_json
    from cm_cli.training.history import write_history
    from cm_cli.training.run import RunOutcome, input_fingerprint

    config.validate()
    paths = feature_paths(features_dir)
    run_dir, manifest = Path(run_dir), Path(manifest)
    features_dir = ",".join(str(p.resolve()) for p in paths)
    if not manifest.exists():
        raise CmError(f"manifest {manifest} does not exist", "build one with `cm manifest`", option="manifest")
    for path in paths:
        if not path.exists():
            raise CmError(
                f"feature table {path} does not exist", "give the output directory of `cm embed`", option="features"
            )
    features = load_feature_tables(paths)
    data, train_pos, dev_pos = _frames(config, manifest, features)
    options = {"train": config.to_dict(), "manifest": str(manifest.resolve()), "features": features_dir}
    started = time.time()
    with OutputDir(
        run_dir, "run", options=options, inputs=[manifest], force=force, device=str(device), argv=argv
    ) as output:
        if output.done and (run_dir / "checkpoints" / "best.pt").is_file():
            return RunOutcome(run_dir, "complete", dict(output.record.get("summary", {})), skipped=True)
        write_json(
            {
                "train": config.to_dict(),
                "model": {
                    "kind": "feature_head",
                    "layers": features.layers,
                    "pooling": features.pooling,
                    "feature_norm": config.feature_norm,
                },
                "manifest": str(manifest.resolve()),
                "features": features_dir,
                "preset": preset,
                "data": data.summary(),
                "inputs": input_fingerprint(manifest, config, data),
                "seen_domains": data.seen_domains(),
                "augment_conditions": data.augment_conditions(),
            },
            run_dir / "config.json",
        )
        trainer = _FeatureTrainer(config, data, features, train_pos, dev_pos, torch.device(device))
        ckpt = run_dir / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)

        def save(improved: bool) -> None:
            _save(trainer, ckpt / "last.pt", features, features_dir)
            write_history(
                trainer.state.history, data.domains, run_dir / "history.parquet", trainer.stepper.extra_columns
            )
            if improved or not (ckpt / "best.pt").is_file():
                shutil.copyfile(ckpt / "last.pt", ckpt / "best.pt")

        trainer.run(save)
        summary = _summary(trainer, run_dir, time.time() - started)
        output.finish(
            outputs={
                "config": str(run_dir / "config.json"),
                "history": str(run_dir / "history.parquet"),
                "best": str(ckpt / "best.pt"),
                "last": str(ckpt / "last.pt"),
            },
            summary=summary,
        )
    return RunOutcome(run_dir, trainer.state.status, summary)


def _summary(trainer: _FeatureTrainer, run_dir: Path, seconds: float) -> dict:
    from cm_cli.training.loop import TrainResult

    state = trainer.state
    validated = [r for r in state.history if not math.isnan(r.get("dev_eer", float("nan")))]
    last_dev = {k: v for k, v in validated[-1].items() if k.startswith("dev_")} if validated else {}
    notes = list(trainer.config.notes) + ([trainer.data.dev_note] if trainer.data.dev_note else [])
    result = TrainResult(
        run_dir,
        state.status,
        state.step,
        state.epoch,
        state.best_summary(),
        dict(state.history[-1]) if state.history else {},
        0,
        [],
        {},
        {},
        notes,
        seconds,
        last_dev,
    )
    return {**result.summary(), "features": True}


def is_feature_run(source: str | Path) -> bool | None:
    """Whether ``source`` (a run directory or a checkpoint inside one) is a ``cm train --features`` run,
    from the run's config.json (no checkpoint is read); None when no run config is found."""
    from cm_cli.core.artifacts import read_json

    path = Path(source).expanduser()
    candidates = (
        [path / "config.json"] if path.is_dir() else [path.parent / "config.json", path.parent.parent / "config.json"]
    )
    config_path = next((p for p in candidates if p.is_file()), None)
    if config_path is None:
        return None
    try:
        config = read_json(config_path)
    except CmError:
        return None
    if "train" not in config and "model" not in config:
        return None  # some other config.json
    model = config.get("model")
    return isinstance(model, dict) and model.get("kind") == "feature_head"


def load_feature_head(run: str | Path, *, device: str = "cpu"):
    """(head module in eval mode, checkpoint payload) of a ``--features`` run directory or checkpoint."""
    from cm_cli.models.loading import find_run_checkpoint, read_torch_file

    path = find_run_checkpoint(run)
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FEATURE_HEAD_FORMAT:
        raise CmError(
            f"{path} is not a feature-head checkpoint (it scores audio, not `cm embed` features)",
            "score it without the feature cache; feature heads come from `cm train --features DIR`",
            option="features",
        )
    head = _head_module(
        len(payload["layers"]),
        payload["dim"],
        payload["hidden"],
        0.0,
        payload.get("score_head", "linear"),
        payload.get("groups"),
    )
    head.load_state_dict(payload["state_dict"])
    payload["path"] = str(path)
    return head.to(device).eval(), payload


def check_head_matches(payload: dict, features: FeatureSet, features_dir: str | Path) -> None:
    """The cache holds the layers, width and backbone the head was trained on, else a one-line error."""
    hint = "embed with the backbone and layers the head was trained on"
    if features.layers != list(payload["layers"]):
        raise CmError(
            f"{features_dir}: layers {features.layers[:3]}… differ from the head's {payload['layers'][:3]}…", hint
        )
    width = int(features.values.shape[2])
    if width != int(payload["dim"]):
        raise CmError(f"{features_dir}: features are {width} wide, the head was trained on {payload['dim']}", hint)
    trained, given = payload.get("backbone"), features.backbone
    if trained and given:
        differ = [k for k in _BACKBONE_KEYS if trained.get(k) != given.get(k)]
        if differ:
            k = differ[0]
            raise CmError(
                f"{features_dir}: embedded with {k} {given.get(k)!r}, the head was trained on features "
                f"of {trained.get(k)!r}",
                hint,
            )


def score_features(
    run: str | Path, features_dir: "str | Path | FeatureSet", *, utt_ids=None, device: str = "cpu", head=None
) -> "pd.DataFrame":
    """``utt_id``, ``score`` (higher = more bona fide) for every row of a feature cache (a
    directory, or a ``FeatureSet`` already loaded), or for ``utt_ids`` in their order (ids
    without features are an error). ``head``: what ``load_feature_head(run)`` returned."""
    import pandas as pd

    head, payload = head or load_feature_head(run, device=device)
    if isinstance(features_dir, FeatureSet):
        features, where = features_dir, "the feature cache"
    else:
        features, where = load_feature_tables(features_dir), features_dir
    check_head_matches(payload, features, where)
    if utt_ids is None:
        ids, values = features.ids, features.values
    else:
        ids = np.asarray([str(u) for u in utt_ids], dtype=str)
        values = features.values[features.rows(ids.tolist())]
    values = apply_feature_norm(values, _payload_norm(payload))
    return pd.DataFrame({"utt_id": ids, "score": _score(head, values, device)})
