"""``cm demo``: the whole study on the embedded toy corpus, through the same library calls as the commands.

toy corpus (with coded eval conditions) -> manifest -> pre-rendered augmentation ->
ERM and DANN training (LFCC-LCNN) -> per-codec evaluation and a noise stress sweep ->
embeddings of both runs -> loao, probe, cka, patch -> report. Every step writes its
usual artifacts under ``out`` and skips work that is already complete, so a rerun
(or a pre-empted job run again) only finishes what is missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cm_cli.core.errors import CmError

__all__ = ["DemoSettings", "DemoStep", "DemoResult", "run_demo", "DEMO_AUGMENT_POLICY", "DEMO_SWEEP"]

# Training-time domains: clean plus channel/codec conditions rendered before training.
# The toy eval set adds C05 (mp3), C08 (opus nb), C10 (speex nb) and gsm, of which only
# mp3 appears here: opus, speex and gsm are out-of-domain codecs for both runs.
DEMO_AUGMENT_POLICY = "clean:0.25, mp3:kbps=16|32:0.25, alaw:0.25, telephony:0.25"
DEMO_SWEEP = "noise:type=white:snr=20|10|5"


@dataclass
class DemoSettings:
    size: str = "small"
    seed: int = 0
    workers: int = 2
    epochs: int | None = None  # None: the presets' epochs
    variants: int = 1
    force: bool = False


@dataclass
class DemoStep:
    name: str
    seconds: float
    paths: dict[str, str]
    skipped: bool = False
    note: str = ""


@dataclass
class DemoResult:
    out: Path
    steps: list[DemoStep] = field(default_factory=list)

    @property
    def report_html(self) -> Path:
        return self.out / "report" / "report.html"

    def to_dict(self) -> dict:
        return {
            "out": str(self.out),
            "report_html": str(self.report_html),
            "report_md": str(self.out / "report" / "report.md"),
            "seconds": round(sum(s.seconds for s in self.steps), 1),
            "steps": [{"name": s.name, "seconds": round(s.seconds, 2), "skipped": s.skipped, "paths": s.paths,
                       **({"note": s.note} if s.note else {})} for s in self.steps],
        }


def _train_config(preset: str, *, seed: int, augment_manifest: Path, epochs: int | None):
    from cm_cli.core.presets import load_preset
    from cm_cli.training.config import TrainConfig

    options = dict(load_preset(preset, command="train").options)
    options.pop("augment", None)  # the demo trains on pre-rendered variants instead
    options.update(seed=seed, augment_manifest=str(augment_manifest))
    if "domain_column" in options:
        options["domain_columns"] = list(options.pop("domain_column"))
    if epochs is not None:
        options["epochs"] = epochs
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise CmError(f"preset {preset!r} has options the training library does not know: {', '.join(unknown)}")
    return TrainConfig(**options)


def run_demo(
    out: str | Path,
    *,
    data_root: str | Path,
    settings: DemoSettings = DemoSettings(),
    device: str = "cpu",
    torch_device: Any = "cpu",
    cache_dir: str | Path | None = None,
    on_step: Callable[[DemoStep], None] | None = None,
) -> DemoResult:
    """Run (or finish) the demo study into ``out``; ``on_step`` is called after each step."""
    from cm_cli.core.artifacts import ensure_writable_dir

    out = Path(out).resolve()
    data_root = Path(data_root).resolve()
    ensure_writable_dir(out)
    ensure_writable_dir(data_root)
    result = DemoResult(out)
    workers = max(1, settings.workers)

    def step(name: str, fn: Callable[[], tuple[dict, bool, str]]) -> None:
        start = time.perf_counter()
        paths, skipped, note = fn()
        done = DemoStep(name, time.perf_counter() - start, {k: str(v) for k, v in paths.items()}, skipped, note)
        result.steps.append(done)
        if on_step is not None:
            on_step(done)

    toy_root = data_root / "toy"

    def corpus():
        from cm_cli.data.corpora.toy import build_toy_corpus
        from cm_cli.degrade.toy_conditions import add_coded_eval_conditions

        info = build_toy_corpus(toy_root, size=settings.size, seed=settings.seed, force=settings.force,
                                workers=workers)
        added = add_coded_eval_conditions(toy_root, seed=settings.seed, workers=workers)
        n_added = sum(added.values())
        note = f"{info.n_files} files" + (f", {n_added} coded eval copies added" if n_added else "")
        return {"corpus": toy_root}, not info.built and n_added == 0, note

    step("toy corpus", corpus)

    manifest_dir = out / "manifest"

    def manifest():
        from cm_cli.data.manifests import make_manifest

        made = make_manifest("toy", manifest_dir, data_root=data_root, corpus_root=toy_root, validate=True,
                             seed=settings.seed, workers=workers, force=settings.force,
                             extra_options={"toy_size": settings.size})
        return {"manifest": made.path}, made.skipped, f"{made.n_rows} utterances"

    step("manifest", manifest)
    manifest_path = manifest_dir / "manifest.parquet"

    augment_dir = out / "augment"

    def augment():
        from cm_cli.degrade.corpus import degrade_manifest

        done = degrade_manifest(manifest_path, augment_dir, policy=DEMO_AUGMENT_POLICY, variants=settings.variants,
                                seed=settings.seed, workers=workers, split="train", data_root=data_root,
                                force=settings.force)
        return {"manifest": augment_dir / "manifest.parquet"}, done.already_done, f"{done.n_written} variants rendered"

    step("augmentation", augment)

    runs = {"erm": out / "runs" / "erm", "dann": out / "runs" / "dann"}
    presets = {"erm": "toy_lcnn_erm", "dann": "toy_lcnn_dann"}
    for method, run_dir in runs.items():
        def train(method=method, run_dir=run_dir):
            from cm_cli.training.run import train_run

            config = _train_config(presets[method], seed=settings.seed, augment_manifest=augment_dir / "manifest.parquet",
                                   epochs=settings.epochs)
            outcome = train_run(config, manifest_path, run_dir, data_root=data_root, device=torch_device,
                                cache_dir=cache_dir, force=settings.force, preset=presets[method])
            dev_eer = outcome.summary.get("best_dev_eer", outcome.summary.get("dev_eer"))
            note = f"{outcome.status}" + (f", best dev EER {100 * dev_eer:.2f}%" if isinstance(dev_eer, float) else "")
            return {"run": run_dir}, outcome.skipped, note

        step(f"train {method.upper()}", train)

    evals = {m: out / "eval" / m for m in runs}
    for method, run_dir in runs.items():
        def evaluate(method=method, run_dir=run_dir):
            from cm_cli.evaluation import evaluate_model

            compare = evals["erm"] / "metrics.json" if method == "dann" else None
            done = evaluate_model(run_dir, manifest_path, evals[method], split="eval", by=["codec", "attack"],
                                  in_domain=["clean"], bootstrap=200, compare=compare, data_root=data_root,
                                  cache_dir=cache_dir, device=device, torch_device=torch_device, seed=settings.seed,
                                  force=settings.force)
            overall = done.conditions[0].metrics["overall"]
            return {"eval": evals[method]}, done.skipped, f"EER {100 * overall['eer']:.2f}%, minDCF {overall['min_dcf']:.3f}"

        step(f"eval {method.upper()} per codec", evaluate)

    for method, run_dir in runs.items():
        def sweep(method=method, run_dir=run_dir):
            from cm_cli.evaluation import evaluate_model

            target = out / "sweep" / method
            done = evaluate_model(run_dir, manifest_path, target, split="eval", degrade=[DEMO_SWEEP], by=["attack"],
                                  data_root=data_root, cache_dir=cache_dir, device=device, torch_device=torch_device,
                                  seed=settings.seed, force=settings.force)
            return {"sweep": done.sweep or target}, done.skipped, f"{len(done.conditions)} conditions"

        step(f"stress sweep {method.upper()}", sweep)

    embeddings = {m: out / "embed" / m for m in runs}
    for method, run_dir in runs.items():
        def embed(method=method, run_dir=run_dir):
            from cm_cli.embedding import embed_manifest

            done = embed_manifest(manifest_path, embeddings[method], checkpoint=run_dir, split="eval",
                                  layers="all", data_root=data_root, device=torch_device, force=settings.force)
            return {"embeddings": done.path}, done.skipped, f"{done.n_rows} utterances"

        step(f"embed {method.upper()}", embed)

    def loao():
        from cm_cli.analysis.loao import LoaoConfig, run_loao

        summary = run_loao(embeddings["erm"], manifest=manifest_path, out=out / "loao",
                           config=LoaoConfig(seeds=(0, 1), n_boot=500, n_perm=1000), force=settings.force)
        return {"loao": out / "loao"}, bool(summary.get("skipped")), ""

    step("loao", loao)

    def probe():
        from cm_cli.analysis.probes import ProbeConfig, run_probes

        summary = run_probes([embeddings["erm"], embeddings["dann"]], manifest=manifest_path, out=out / "probe",
                             config=ProbeConfig(target="codec", folds=3, n_boot=300, max_iter=200,
                                                control_repeats=1, seed=settings.seed),
                             tags=["erm", "dann"], force=settings.force)
        return {"probes": out / "probe"}, bool(summary.get("skipped")), ""

    step("probe codec", probe)

    def cka():
        from cm_cli.analysis.cka import CkaConfig, run_cka

        summary = run_cka(embeddings["erm"], embeddings["dann"], out=out / "cka", config=CkaConfig(seed=settings.seed),
                          force=settings.force)
        return {"cka": out / "cka"}, bool(summary.get("skipped")), ""

    step("cka", cka)

    def patch():
        from cm_cli.analysis.patching import PatchConfig, run_patching

        summary = run_patching(runs["erm"], runs["dann"], manifest=manifest_path, out=out / "patch", data_root=data_root,
                               config=PatchConfig(split="eval", n_boot=300, seed=settings.seed), force=settings.force)
        return {"patching": out / "patch"}, bool(summary.get("skipped")), ""

    step("patch ERM <- DANN", patch)

    def report():
        from cm_cli.report.render import build_report

        built = build_report([out], out / "report", title="cm demo: ERM vs DANN on the toy corpus")
        return {"report_html": built.html, "report_md": built.markdown}, False, f"{len(built.figures)} figures"

    step("report", report)
    return result
