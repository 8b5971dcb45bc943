"""One way to load a trained countermeasure: ``load_model(source)`` for every kind of weights cm reads.

``cm eval``, ``cm embed``, ``cm patch``, ``cm demo`` and training resumption all start
from a run directory or a weights file. Reading them in one place keeps the error for a
bad file, the choice of checkpoint inside a run directory and the provenance recorded
(sha256, run config, dev threshold) the same everywhere. Kinds:

- ``run``: a ``cm train`` run directory (``checkpoints/best.pt``, else ``last.pt``; its
  ``config.json`` becomes ``train_config``);
- ``checkpoint``: a ``cm-checkpoint/1`` file;
- ``aasist_official``: the ASVspoof 5 AASIST baseline state dict (``.pth``);
- ``ssl_aasist``: the SSL_Anti-spoofing XLS-R + AASIST state dict (``ssl_model.model.*`` keys;
  ``backbone_id`` names the transformers XLS-R model it is read into);
- ``exported`` / ``zoo`` / ``hf_classifier``: a ``cm export`` folder, a ``cm download --model``
  zoo folder, a transformers audio-classification folder (``cm_cli.models.zoo.open_packaged``).

A ``cm train --features`` head has no audio front end: ``open_weights`` refuses it with
the command that scores it, and ``cm_cli.training.features.load_feature_head`` reads it
through the same ``find_run_checkpoint`` and ``read_torch_file`` (both live with the
checkpoint formats in ``cm_cli.models.checkpoint``, below training and loading alike).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cm_cli.core.errors import CmError
from cm_cli.models.checkpoint import (
    CHECKPOINT_FORMAT,
    FEATURE_HEAD_FORMAT,
    RUN_CHECKPOINTS,
    find_run_checkpoint,
    read_torch_file,
)

__all__ = [
    "LOAD_KINDS",
    "LoadedModel",
    "Weights",
    "RUN_CHECKPOINTS",
    "find_run_checkpoint",
    "read_torch_file",
    "open_weights",
    "load_model",
]

LOAD_KINDS = ("run", "checkpoint", "aasist_official", "ssl_aasist", "exported", "zoo", "hf_classifier")


@dataclass
class LoadedModel:
    """A model ready for inference and what it came from (recorded in every artifact made with it)."""

    model: Any  # CountermeasureModel in eval mode, on the requested device
    config: Any  # ModelConfig
    policy: Any  # LengthPolicy the model was trained with (config.length)
    sample_rate: int
    source: Path  # what was asked for: run directory or weights file
    kind: str  # one of LOAD_KINDS
    checkpoint: Path  # the weights file actually read
    checkpoint_sha256: str
    run_dir: Path | None = None
    train_config: dict | None = None  # the run's config.json
    dev_threshold: float | None = None  # checkpoint metrics["dev_eer_threshold"]
    calibration: dict | None = None  # checkpoint metrics["calibration"]
    init_seed: int | None = None  # seed the run's weights were initialised with, where known


@dataclass
class Weights:
    """A weights file read but not yet built into a model: what ``open_weights`` found."""

    source: Path
    path: Path
    payload: Any
    kind: str


def _is_ssl_aasist_state(state: Any) -> bool:
    return isinstance(state, dict) and any(str(k).startswith(("ssl_model.", "module.ssl_model.")) for k in state)


def _official_aasist(state: dict, path: Path, overrides: dict):
    from cm_cli.models.model import ModelConfig, build_model

    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    config = ModelConfig.from_dict({"backbone": "aasist", **overrides, "backbone_id": None})
    model = build_model(config)
    try:
        model.backbone.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CmError(
            f"{path} is not an AASIST checkpoint of this configuration (nor a cm checkpoint): "
            f"{str(exc).strip().splitlines()[0][:200]}",
            "give a `cm train` run, a cm checkpoint, the official AASIST .pth or an SSL-AASIST checkpoint",
        ) from None
    config.backbone_id = str(path)  # recorded: where the weights came from
    return model, config


def _ssl_aasist(state: dict, overrides: dict):
    from cm_cli.models.model import ModelConfig, build_model
    from cm_cli.models.ssl_aasist import load_ssl_aasist_checkpoint

    config = ModelConfig.from_dict({"backbone": "ssl_aasist", **overrides})
    model = build_model(config)
    load_ssl_aasist_checkpoint(model.backbone, state)
    return model, config


def _cm_checkpoint(payload: dict, path: Path, overrides: dict):
    from cm_cli.models.checkpoint import check_payload, load_weights
    from cm_cli.models.model import ModelConfig, build_model

    check_payload(payload, path)
    payload["path"] = str(path)
    config = ModelConfig.from_dict({**dict(payload["model_config"]), **overrides})
    model = build_model(config)
    load_weights(model, payload)
    return model, config


def open_weights(source: str | os.PathLike) -> Weights:
    """Read ``source`` once and tell its kind (``LOAD_KINDS``) before any model is built."""
    from cm_cli.models.zoo import open_packaged  # zoo, `cm export` and transformers classifier folders

    packaged = open_packaged(source)
    if packaged is not None:
        return packaged
    source = Path(source).expanduser()
    path = find_run_checkpoint(source)
    payload = read_torch_file(path)
    if isinstance(payload, dict) and "format" in payload:
        if payload.get("format") == FEATURE_HEAD_FORMAT:
            raise CmError(
                f"{source} is a feature-head run (`cm train --features`): it scores `cm embed` features, not audio",
                f"evaluate it with `cm eval --run {source} --features EMB_DIR --manifest M`",
            )
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise CmError(
                f"{path} has checkpoint format {payload.get('format')!r}, not {CHECKPOINT_FORMAT}",
                "it was written by another version of cm",
            )
        kind = "run" if source.is_dir() else "checkpoint"
    elif source.is_dir():
        raise CmError(
            f"{path} is not a cm checkpoint, so {source} is not a `cm train` run",
            "give the weights file itself for official AASIST or SSL-AASIST checkpoints",
        )
    elif _is_ssl_aasist_state(payload):
        kind = "ssl_aasist"
    elif isinstance(payload, dict):
        kind = "aasist_official"
    else:
        raise CmError(
            f"{path} holds a {type(payload).__name__}, not a checkpoint",
            "give a `cm train` run, a cm checkpoint, the official AASIST .pth or an SSL-AASIST checkpoint",
        )
    return Weights(source, path, payload, kind)


def _seed(run_json: dict | None, train_config: dict | None) -> int | None:
    for candidate in ((run_json or {}).get("train"), train_config):
        if isinstance(candidate, dict) and candidate.get("seed") is not None:
            return int(candidate["seed"])
    return None


def load_model(
    source: "str | os.PathLike | Weights", *, device: Any = "cpu", overrides: dict | None = None
) -> LoadedModel:
    """Load ``source`` (run dir, cm checkpoint, official AASIST or SSL-AASIST weights) in eval mode on ``device``.

    ``source`` may also be what ``open_weights`` returned. ``overrides`` replaces
    ``model_config`` entries before the model is built (e.g. ``{"backbone_id": DIR}`` to
    read frozen SSL weights from elsewhere, or the XLS-R directory of an SSL-AASIST checkpoint).
    """
    from cm_cli.core.artifacts import read_json, sha256_file
    from cm_cli.data.datasets import SAMPLE_RATE

    weights = source if isinstance(source, Weights) else open_weights(source)
    if weights.kind in ("exported", "zoo", "hf_classifier"):
        from cm_cli.models.zoo import load_packaged

        return load_packaged(weights, device=device, overrides=overrides)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    payload, path = weights.payload, weights.path
    metrics: dict = {}
    train_config = None
    if weights.kind in ("run", "checkpoint"):
        model, config = _cm_checkpoint(payload, path, overrides)
        metrics = dict(payload.get("metrics") or {})
        train_config = payload.get("train_config")
    elif weights.kind == "ssl_aasist":
        model, config = _ssl_aasist(payload, overrides)
    else:
        model, config = _official_aasist(payload, path, overrides)
    weights.payload = None  # the state dicts are in the model now
    run_dir = weights.source if weights.kind == "run" else None
    run_json = (
        read_json(run_dir / "config.json") if run_dir is not None and (run_dir / "config.json").is_file() else None
    )
    threshold = metrics.get("dev_eer_threshold")
    return LoadedModel(
        model=model.to(device).eval(),
        config=config,
        policy=config.length,
        sample_rate=SAMPLE_RATE,
        source=weights.source,
        kind=weights.kind,
        checkpoint=path,
        checkpoint_sha256=sha256_file(path),
        run_dir=run_dir,
        train_config=run_json if run_json is not None else ({"train": train_config} if train_config else None),
        dev_threshold=None if threshold is None else float(threshold),
        calibration=metrics.get("calibration"),
        init_seed=_seed(run_json, train_config),
    )
