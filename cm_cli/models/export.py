"""A trained model as a Hugging Face-style folder (``cm export``), and reading one back.

A run directory holds optimiser state, RNG state and paths of one machine; what a
colleague or the Hub needs is the weights, how to rebuild the network, how to feed it and
what it scored. The folder (format ``cm-export/1``) holds:

- ``model.safetensors``: the model's whole state dict (frozen pretrained weights included,
  so the folder is self-contained);
- ``config.json``: ``cm_format``, ``model_config`` (``ModelConfig.to_dict()``), the input it
  expects (``sample_rate``, ``length_policy``, ``score``: higher = more bona fide), the dev
  threshold and calibration of the checkpoint (``metrics``), and the run's own training
  record (``train``, ``data``, ``preset``, ``seen_domains``, ``augment_conditions``, content
  hashes of its inputs without their paths), so ``cm eval --run DIR`` reads seen domains
  and seed as it does from a run;
- ``README.md``: the model card (``cm_cli.models.card``) with a ``model-index`` block;
- ``cm.json``: provenance (kind ``model``), made portable: the folder is meant to travel, so
  paths are recorded relative to the run (or to the ``--search`` folder they were found in)
  and the build machine's host name is left out; the run's own ``cm.json`` is untouched.

``load_export`` rebuilds the model from such a folder; ``models.loading.load_model`` calls it
for a folder whose ``config.json`` says ``cm_format: cm-export/1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.kinds import register_kind

__all__ = [
    "EXPORT_FORMAT",
    "WEIGHTS_FILE",
    "CONFIG_FILE",
    "CARD_FILE",
    "ExportResult",
    "is_export_dir",
    "read_export_config",
    "export_config",
    "write_export",
    "export_run",
    "load_export",
    "portable_record",
    "hub_token",
    "push_export",
]

EXPORT_FORMAT = "cm-export/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
SCORE_DIRECTION = "logit[bonafide] - logit[spoof]: higher = more bona fide"
# run config.json entries carried into the exported config (paths of the training machine are left out)
_RUN_KEYS = ("train", "data", "preset", "seen_domains", "augment_conditions")

# `cm export`: a Hugging Face-style model folder (weights, config, model card); bulk, no report section
register_kind("model", bulk=True, order=0.0)


@dataclass
class ExportResult:
    """What ``export_run`` wrote: the folder, its files, and the evaluations its card lists."""

    out: Path
    files: list[str]
    evaluations: list[dict] = field(default_factory=list)
    done: bool = False  # an identical export was already there


def read_export_config(path: str | os.PathLike) -> dict | None:
    """The ``config.json`` of an exported folder, or None when ``path`` is not one."""
    import json

    config = Path(path).expanduser() / CONFIG_FILE
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("cm_format") == EXPORT_FORMAT else None


def is_export_dir(path: str | os.PathLike) -> bool:
    return Path(path).expanduser().is_dir() and read_export_config(path) is not None


def _inputs_without_paths(inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return {k: _inputs_without_paths(v) for k, v in inputs.items() if k != "path"}
    return inputs


def export_config(loaded, *, name: str | None = None) -> dict:
    """The exported ``config.json`` of a ``LoadedModel`` (see the module docstring)."""
    from cm_cli import __version__
    from cm_cli.models.registry import get_backbone

    if loaded.kind == "hf_classifier":
        raise CmError(
            f"{loaded.source} is a transformers audio classifier, not a cm model",
            "share its folder as it is: it already loads by hub id or path",
        )
    run = dict(loaded.train_config or {})
    model_config = loaded.config.to_dict()
    if get_backbone(model_config["backbone"]).weights == "file":
        model_config["backbone_id"] = None  # the weights travel in model.safetensors, not in a file to start from
    config = {
        "cm_format": EXPORT_FORMAT,
        "name": name,
        "model_config": model_config,
        "sample_rate": int(loaded.sample_rate),
        "length_policy": {"policy": loaded.policy.policy, "target_samples": loaded.policy.target},
        "score": SCORE_DIRECTION,
        "metrics": {"dev_eer_threshold": loaded.dev_threshold, "calibration": loaded.calibration},
        "source": {
            "kind": loaded.kind,
            "checkpoint": loaded.checkpoint.name,
            "checkpoint_sha256": loaded.checkpoint_sha256,
            "cm_version": __version__,
        },
    }
    config.update({k: run[k] for k in _RUN_KEYS if k in run})
    if "inputs" in run:
        config["inputs"] = _inputs_without_paths(run["inputs"])
    if loaded.init_seed is not None:
        config["seed"] = int(loaded.init_seed)
    return config


def _state_for_safetensors(model) -> dict:
    """A state dict safetensors accepts: contiguous CPU tensors, none sharing memory with another."""
    out, seen = {}, set()
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        pointer = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        out[key] = tensor.clone().contiguous() if pointer in seen or not tensor.is_contiguous() else tensor
        seen.add(pointer)
    return out


def write_export(loaded, out: str | os.PathLike, *, card: str, name: str | None = None) -> list[str]:
    """Write weights, config and card of ``loaded`` into ``out`` (each file atomically); returns the names."""
    from safetensors.torch import save_file

    from cm_cli.core.artifacts import atomic_path, file_mode, write_json

    out = Path(out)
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(_state_for_safetensors(loaded.model), str(tmp), metadata={"format": "pt", "cm_format": EXPORT_FORMAT})
        os.chmod(tmp, file_mode())  # safetensors writes a fresh file: give it the umask's mode like every artifact
    write_json(export_config(loaded, name=name), out / CONFIG_FILE)
    with atomic_path(out / CARD_FILE) as tmp:
        Path(tmp).write_text(card, encoding="utf-8")
    return [WEIGHTS_FILE, CONFIG_FILE, CARD_FILE]


def export_run(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    search: Sequence[str | os.PathLike] = (),
    name: str | None = None,
    licence: str | None = None,
    notes: str | None = None,
    force: bool = False,
) -> ExportResult:
    """Export a run (or checkpoint, or anything ``load_model`` reads) into ``out`` with its model card.

    The card lists every ``cm eval`` metrics directory found under the run and ``search``
    that scored this run (``cm_cli.models.card.find_evaluations``). ``licence`` and ``notes``
    go into the card. An output directory with other options needs ``force``.
    """
    from cm_cli.core.artifacts import OutputDir, write_json
    from cm_cli.models.card import find_evaluations, model_card
    from cm_cli.models.loading import load_model

    run, out = Path(run).expanduser(), Path(out).expanduser()
    if out.resolve() == run.resolve():
        raise CmError(
            f"the export folder {out} is the run itself", "give a new folder for the exported model", option="out"
        )
    loaded = load_model(run, device="cpu")
    roots = [run if run.is_dir() else run.parent, *map(Path, search)]
    evaluations = find_evaluations(loaded, roots)
    options = {
        "run": str(run.resolve()),
        "checkpoint_sha256": loaded.checkpoint_sha256,
        "name": name,
        "licence": licence,
        "notes": notes,
        "evaluations": [e["path"] for e in evaluations],
    }
    inputs = [loaded.checkpoint, *(Path(e["path"]) / "metrics.json" for e in evaluations)]
    with OutputDir(out, "model", options, inputs=inputs, force=force) as target:
        if target.done and (out / WEIGHTS_FILE).is_file():
            return ExportResult(out, [WEIGHTS_FILE, CONFIG_FILE, CARD_FILE], evaluations, done=True)
        config = export_config(loaded, name=name)
        card = model_card(config, evaluations, name=name or run.resolve().name, licence=licence, notes=notes)
        files = write_export(loaded, out, card=card, name=name)
        record = target.finish(outputs={"files": files}, summary={"evaluations": len(evaluations)})
        write_json(portable_record(record, roots), target.record_path)
    return ExportResult(out, files, evaluations)


def _portable_path(text: str, roots: Sequence[Path]) -> str:
    """An absolute path as its place inside the first root holding it (``<root name>/...``), else its name."""
    path = Path(text).expanduser()
    if not path.is_absolute():
        return text
    path = path.resolve()
    for root in roots:
        root = root.expanduser().resolve()
        if path == root or root in path.parents:
            return str(Path(root.name) / path.relative_to(root))
    return path.name


def _portable_arg(arg: str, roots: Sequence[Path]) -> str:
    if arg.startswith("-") and "=" in arg:  # --out=/abs/path
        flag, value = arg.split("=", 1)
        return f"{flag}={_portable_path(value, roots)}"
    return _portable_path(arg, roots)


def portable_record(record: dict, roots: Sequence[str | os.PathLike]) -> dict:
    """An exported folder's ``cm.json`` without the build machine: paths under ``roots`` (the run first)
    relative to them, other absolute paths as names, no host; the digests are kept, so an identical
    ``cm export`` on the same machine is still recognised as done."""
    roots = [Path(r) for r in roots]
    out = {k: v for k, v in record.items() if k != "host"}
    argv = list(record.get("argv") or [])
    out["argv"] = ["cm", *(_portable_arg(str(a), roots) for a in argv[1:])]
    options = dict(record.get("options") or {})
    if options.get("run"):
        options["run"] = _portable_path(options["run"], roots)
    options["evaluations"] = [_portable_path(e, roots) for e in options.get("evaluations") or []]
    out["options"] = options
    out["inputs"] = [
        {**f, "path": _portable_path(f["path"], roots)} if isinstance(f, dict) and f.get("path") else f
        for f in record.get("inputs") or []
    ]
    return out


def load_export(path: str | os.PathLike, *, overrides: dict | None = None):
    """(model, ModelConfig, config.json) of an exported folder; weights loaded strictly."""
    from safetensors.torch import load_file

    from cm_cli.models.model import ModelConfig, build_model

    path = Path(path).expanduser()
    config = read_export_config(path)
    if config is None:
        raise CmError(
            f"{path} is not a `cm export` folder (no config.json with cm_format {EXPORT_FORMAT})",
            "give a folder written by `cm export`",
        )
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CmError(f"{path} has no {WEIGHTS_FILE}", "the export is incomplete: run `cm export` again")
    model_config = ModelConfig.from_dict({**dict(config["model_config"]), **(overrides or {})})
    model = build_model(model_config)
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types
        raise CmError(
            f"cannot read {weights}: {str(exc).splitlines()[0][:200]}",
            "the file is corrupt or truncated: export or download it again",
        ) from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CmError(
            f"{weights} does not fit its own model_config: {len(missing)} missing, {len(unexpected)} "
            f"unexpected (e.g. {(list(missing) + list(unexpected))[:3]})",
            "the folder was edited or written by another version of cm",
        )
    return model, model_config, config


def hub_token(repo: str) -> str:
    """The configured Hugging Face token (``hf auth login`` or ``HF_TOKEN``); none -> one-line ``CmError``."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise CmError(
            f"cannot push to {repo}: no Hugging Face token is configured",
            "run `hf auth login` or set HF_TOKEN, then push again",
        )
    return token


def push_export(
    folder: str | os.PathLike,
    repo: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool = False,
    revision: str | None = None,
) -> str:
    """Upload an exported folder to a Hub model repository (created when absent); returns the repo URL.

    Needs a token (default: the configured one, ``hub_token``); ``endpoint`` is the Hub
    API (default ``HF_ENDPOINT`` or huggingface.co).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    if not is_export_dir(folder):
        raise CmError(f"{folder} is not a `cm export` folder", "run `cm export RUN --out DIR` first")
    token = token or hub_token(repo)
    api = HfApi(endpoint=endpoint, token=token)
    try:
        url = api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo,
            repo_type="model",
            folder_path=str(folder),
            revision=revision,
            commit_message="cm export",
            ignore_patterns=[".*", "*.lock"],
        )
    except HfHubHTTPError as exc:
        raise CmError(
            f"cannot push to {repo}: {str(exc).splitlines()[0][:200]}",
            "check the repository name and that your token may write to it",
        ) from None
    except ValueError as exc:  # e.g. the Hub refused the card's metadata
        raise CmError(
            f"cannot push to {repo}: {str(exc).splitlines()[0][:200]}",
            "check the repository name, the endpoint and README.md's metadata block",
        ) from None
    except OSError as exc:
        raise CmError(f"cannot push to {repo}: {exc}", "check network access to the Hub endpoint") from None
    return str(url)
