"""One run directory per trained model: config, checkpoints, history, provenance, resumption.

``train_run`` checks everything it can before writing anything (configuration,
manifest, augmentation encoders, domain columns, a resumable checkpoint), then trains
with ``cm_cli.training.loop.fit`` under an ``OutputDir`` of kind ``run``. A run
directory whose ``last.pt`` was made with the same configuration is continued (a
pre-empted job simply runs again); a different configuration is refused, showing
the difference, unless ``force``. ``train_seeds`` makes one run per seed.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

from cm_cli.core.errors import CmError
from cm_cli.training.config import TrainConfig, config_diff

__all__ = ["train_run", "train_seeds", "default_run_name", "RunOutcome", "input_fingerprint"]

from dataclasses import dataclass, field


@dataclass
class RunOutcome:
    run_dir: Path
    status: str
    summary: dict = field(default_factory=dict)
    resumed: bool = False
    skipped: bool = False


def default_run_name(config: TrainConfig, *, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{config.method}-{config.backbone}-seed{config.seed}-{stamp}"


def input_fingerprint(manifest: Path, config: TrainConfig, data) -> dict:
    """Content hashes and row counts of every table the run reads (recorded in config.json)."""
    from cm_cli.core.artifacts import sha256_file

    out = {
        "manifest": {
            "path": str(manifest.resolve()),
            "sha256": sha256_file(manifest),
            "n_train": len(data.train),
            "n_dev": 0 if data.dev is None else len(data.dev),
        }
    }
    for key in ("augment_manifest", "coded_dev_manifest"):
        path = getattr(config, key)
        if path:
            out[key] = {"path": str(path), "sha256": sha256_file(Path(path))}
    return out


def _input_differences(saved: dict, current: dict) -> list[str]:
    lines = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key) or {}, current.get(key) or {}
        if old.get("sha256") == new.get("sha256"):
            continue
        line = (
            f"{key} content differs ({old.get('path')} sha256 {str(old.get('sha256'))[:12]} -> "
            f"{new.get('path')} sha256 {str(new.get('sha256'))[:12]}"
        )
        if "n_train" in old or "n_train" in new:
            line += f"; train rows {old.get('n_train')} -> {new.get('n_train')}"
        lines.append(line + ")")
    return lines


def _load_resume(run_dir: Path, config: TrainConfig, *, force: bool, inputs: dict | None = None) -> dict:
    from cm_cli.core.artifacts import read_json
    from cm_cli.models.checkpoint import read_checkpoint

    last = run_dir / "checkpoints" / "last.pt"
    if not last.is_file():
        raise CmError(
            f"cannot resume: {last} does not exist",
            "start the run without resuming, or write to a run directory",
            option=("resume", "out"),
        )
    payload = read_checkpoint(last)
    if "training" not in payload or "train_config" not in payload:
        raise CmError(
            f"{last} is a cm checkpoint but not a resumable `cm train` state", "resume only runs made by `cm train`"
        )
    saved = payload["train_config"]
    recorded: dict = {}
    if (run_dir / "config.json").is_file():
        recorded = read_json(run_dir / "config.json")
        saved = recorded.get("train", saved)
    diff = config_diff(saved, config.to_dict())
    if inputs is not None and recorded.get("inputs"):
        diff += _input_differences(recorded["inputs"], inputs)
    if diff and not force:
        raise CmError(
            f"{run_dir} was trained with a different configuration or input: " + "; ".join(diff),
            "resume with the original options, or force it to continue with the new ones",
            option="force",
        )
    return payload


def train_run(
    config: TrainConfig,
    manifest: str | Path,
    run_dir: str | Path,
    *,
    data_root: str | Path,
    device: str = "cpu",
    resume: bool = False,
    force: bool = False,
    cache_dir: str | Path | None = None,
    stop_requested: Callable[[int], bool] | None = None,
    argv: Sequence[str] | None = None,
    dist=None,
    on_step=None,
    preset: str | None = None,
) -> RunOutcome:
    """Train one model into ``run_dir`` (see the module docstring); returns its outcome and summary."""
    from cm_cli.core.artifacts import OutputDir, write_json
    from cm_cli.training.data import load_training_data
    from cm_cli.training.loop import DistInfo, build_model_config, fit

    config.validate()
    dist = dist or DistInfo()
    run_dir = Path(run_dir)
    manifest = Path(manifest)
    if not manifest.exists():
        raise CmError(
            f"manifest {manifest} does not exist", "build one with `cm manifest`, or give another", option="manifest"
        )
    data = load_training_data(manifest, config)
    model_config = build_model_config(config)  # a bad backbone / pooling fails here, before any write
    inputs = input_fingerprint(manifest, config, data)
    if config.log_to:
        from cm_cli.training.tracking import check_trackers

        check_trackers(config.log_to)  # a tracker that is not installed fails before anything is written

    last = run_dir / "checkpoints" / "last.pt"
    payload = None
    if resume:
        payload = _load_resume(run_dir, config, force=force, inputs=inputs)
    elif last.is_file() and not force:
        try:
            payload = _load_resume(run_dir, config, force=False, inputs=inputs)
        except CmError as exc:
            raise CmError(
                f"{run_dir} already holds a run: {exc.message}",
                "write to another directory, resume it, or force it to start over",
                option=("out", "resume", "force"),
            ) from None
    options = {"train": config.to_dict(), "manifest": str(manifest.resolve())}
    options["train"] = {
        k: v for k, v in options["train"].items() if k not in ("workers", "log_every", "bf16", "log_to")
    }
    if not dist.is_main:
        result = fit(
            config,
            data,
            run_dir,
            data_root=data_root,
            device=device,
            resume=payload,
            stop_requested=stop_requested,
            cache_dir=cache_dir,
            dist=dist,
        )
        return RunOutcome(run_dir, result.status, result.summary(), resumed=payload is not None)
    with OutputDir(
        run_dir, "run", options=options, inputs=[manifest], force=force or resume, device=str(device), argv=argv
    ) as output:
        if output.done and (run_dir / "checkpoints" / "best.pt").is_file() and not resume:
            return RunOutcome(run_dir, "complete", dict(output.record.get("summary", {})), skipped=True)
        if force and payload is None:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
            (run_dir / "history.parquet").unlink(missing_ok=True)
        write_json(
            {
                "train": config.to_dict(),
                "model": model_config.to_dict(),
                "manifest": str(manifest.resolve()),
                "preset": preset,
                "data": data.summary(),
                "inputs": inputs,
                "seen_domains": data.seen_domains(),
                "augment_conditions": data.augment_conditions(),
            },
            run_dir / "config.json",
        )
        result = _fit_tracked(
            config,
            data,
            run_dir,
            output.record,
            model_config,
            data_root=data_root,
            device=device,
            resume=payload,
            stop_requested=stop_requested,
            cache_dir=cache_dir,
            dist=dist,
            on_step=on_step,
        )
        summary = result.summary()
        summary["resumed"] = payload is not None
        write_json(result.augmentation, run_dir / "augmentation.json")
        outputs = {
            "config": str(run_dir / "config.json"),
            "history": str(run_dir / "history.parquet"),
            "last": str(run_dir / "checkpoints" / "last.pt"),
            "best": str(run_dir / "checkpoints" / "best.pt"),
            "augmentation": str(run_dir / "augmentation.json"),
        }
        if result.status == "interrupted":
            output.record.update(status="interrupted", summary=summary, outputs=outputs)
            write_json(output.record, output.record_path)
        else:
            output.finish(outputs=outputs, summary=summary)
    return RunOutcome(run_dir, result.status, summary, resumed=payload is not None)


def _fit_tracked(config: TrainConfig, data, run_dir: Path, record: dict, model_config, **kwargs):
    """``fit`` with the run's experiment trackers (``--log-to``) open around it."""
    from cm_cli.training.loop import fit
    from cm_cli.training.tracking import open_trackers

    if not config.log_to:
        return fit(config, data, run_dir, **kwargs)
    trackers = open_trackers(
        config.log_to,
        run_dir,
        revision=record.get("git_revision"),
        config={
            **config.to_dict(),
            "model": model_config.to_dict(),
            "manifest": record.get("options", {}).get("manifest"),
        },
    )
    summary: dict = {"status": "failed"}
    try:
        result = fit(config, data, run_dir, tracker=trackers, **kwargs)
        summary = result.summary()
        return result
    finally:
        trackers.close(summary)


def train_seeds(config: TrainConfig, seeds: Sequence[int], manifest, out_dir, **kwargs) -> list[RunOutcome]:
    """One run per seed into ``out_dir/seed_<s>``; stops at the first interrupted run."""
    from dataclasses import replace

    outcomes = []
    for seed in seeds:
        outcome = train_run(replace(config, seed=int(seed)), manifest, Path(out_dir) / f"seed_{seed}", **kwargs)
        outcomes.append(outcome)
        if outcome.status == "interrupted":
            break
    return outcomes
