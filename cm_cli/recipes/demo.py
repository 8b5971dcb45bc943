"""``cm demo``: a small study on the embedded toy corpus, through the same library calls as the commands.

Why a study and not a single run: one seed per method cannot tell a method's effect
from seed noise, and pooling every coded condition as "out of domain" mixes codecs
the augmentation covered with codecs it never saw. The demo therefore trains ERM
(no augmentation), ERM-aug (codec augmentation) and DANN (the same augmentation,
the augmentation conditions as domains) with several seeds each, and evaluates on
clean eval trials, coded copies under conditions the augmentation policy covers
(``DEMO_SEEN``) and coded copies under conditions it does not (``DEMO_UNSEEN``).

toy corpus (+ coded eval copies) -> manifest -> pre-rendered augmentation ->
training (method x seed) -> per-codec evaluation -> stress sweep, embeddings, codec
probe, CKA, LOAO and patching on the first seed's runs -> study summary -> report.
Layout (DESIGN.md contract 6): ``runs/<method>/seed_<s>/``, ``eval/<method>/seed_<s>/``.
Every step skips work that is already complete, so a rerun only finishes what is missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from cm_cli.core.errors import CmError
from cm_cli.degrade.toy_conditions import DEFAULT_TOY_CONDITIONS, SEEN, describe_condition

__all__ = [
    "DemoSettings",
    "DemoStep",
    "DemoResult",
    "run_demo",
    "DEMO_METHODS",
    "DEMO_PRESETS",
    "METHOD_LABELS",
    "demo_methods",
    "DEMO_AUGMENT_POLICY",
    "DEMO_EVAL_CONDITIONS",
    "DEMO_SEEN",
    "DEMO_UNSEEN",
    "DEMO_SWEEP",
    "group_of",
    "study_summary",
]

DEMO_METHODS = ("erm", "erm_aug", "dann")  # the default study (the demo's time budget)
# every method `cm demo --methods` can add: the toy presets of the training methods
DEMO_PRESETS = {
    "erm": "toy_lcnn_erm",
    "erm_aug": "toy_lcnn_erm_aug",
    "dann": "toy_lcnn_dann",
    "sam": "toy_lcnn_sam",
    "coral": "toy_lcnn_coral",
    "mmd": "toy_lcnn_mmd",
    "groupdro": "toy_lcnn_groupdro",
}
METHOD_LABELS = {
    "erm": "ERM",
    "erm_aug": "ERM-aug",
    "dann": "DANN",
    "sam": "SAM",
    "coral": "CORAL",
    "mmd": "MMD",
    "groupdro": "GroupDRO",
}
# Training-time augmentation (ERM-aug and DANN): clean plus two of the eval conditions.
# Its labels (clean, C05, C08) are the DANN domains and the run's seen_domains.
DEMO_AUGMENT_POLICY = "clean:0.4, C05:0.3, C08:0.3"
# Coded eval copies (cm_cli.degrade.toy_conditions, all encoded by PyAV on every install): C05 (mp3)
# and C08 (opus narrowband) are covered by the policy; G.723.1 and G.726 (narrowband) are not.
DEMO_EVAL_CONDITIONS = DEFAULT_TOY_CONDITIONS
DEMO_SEEN = SEEN
DEMO_UNSEEN = tuple(c for c in DEMO_EVAL_CONDITIONS if c not in DEMO_SEEN)
DEMO_SUMMARY = "summary.json"
DEMO_SWEEP = "noise:type=white:snr=20|5"


@dataclass
class DemoSettings:
    size: str = "small"
    seed: int = 0  # corpus seed; training seeds are seed, seed + 1, ...
    seeds: int = 3
    workers: int = 2
    epochs: int | None = None  # None: the presets' epochs
    variants: int = 1
    force: bool = False
    methods: tuple = DEMO_METHODS  # the study's methods (keys of DEMO_PRESETS)

    @property
    def train_seeds(self) -> list[int]:
        return [self.seed + i for i in range(max(1, int(self.seeds)))]


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
    summary: dict = field(default_factory=dict)

    @property
    def report_html(self) -> Path:
        return self.out / "report" / "report.html"

    def to_dict(self) -> dict:
        return {
            "out": str(self.out),
            "report_html": str(self.report_html),
            "report_md": str(self.out / "report" / "report.md"),
            "seconds": round(sum(s.seconds for s in self.steps), 1),
            "steps": [
                {
                    "name": s.name,
                    "seconds": round(s.seconds, 2),
                    "skipped": s.skipped,
                    "paths": s.paths,
                    **({"note": s.note} if s.note else {}),
                }
                for s in self.steps
            ],
            "summary": self.summary,
        }


def _train_config(preset: str, *, seed: int, augment_manifest: Path | None, epochs: int | None):
    from cm_cli.core.presets import load_preset
    from cm_cli.training.config import TrainConfig

    options = dict(load_preset(preset, command="train").options)
    had_augment = options.pop("augment", None) is not None  # the demo trains on pre-rendered variants instead
    options["seed"] = seed
    if had_augment:
        if augment_manifest is None:
            raise CmError(f"preset {preset!r} augments, but the demo has no augmented manifest for it")
        options["augment_manifest"] = str(augment_manifest)
    if "domain_column" in options:
        options["domain_columns"] = list(options.pop("domain_column"))
    if "method_option" in options:
        from cm_cli.training.methods.base import parse_method_options

        options["method_options"] = parse_method_options(options.pop("method_option"))
    if epochs is not None:
        options["epochs"] = epochs
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise CmError(f"preset {preset!r} has options the training library does not know: {', '.join(unknown)}")
    return TrainConfig(**options)


def demo_methods(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """The study's methods from ``erm,erm_aug,dann,sam,...`` (None: the default three); unknown names are an error."""
    from cm_cli.core.errors import UsageError

    if text is None:
        return DEMO_METHODS
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if str(n).strip()]
    unknown = [n for n in names if n not in DEMO_PRESETS]
    if unknown or not names:
        raise UsageError(
            f"the demo's methods: unknown method {unknown[0]!r}" if unknown else "the demo's method list is empty",
            f"choose from {', '.join(DEMO_PRESETS)}",
            option="methods",
        )
    return tuple(dict.fromkeys(names))


def group_of(domain: str, seen: Sequence[str] = DEMO_SEEN) -> str:
    """Study group of an eval trial's domain: ``clean``, ``seen`` (policy-covered codec) or ``unseen``."""
    if domain in ("clean", "none", "-", ""):
        return "clean"
    return "seen" if domain in seen else "unseen"


def _group_eers(scores_path: Path, seen: Sequence[str]) -> dict[str, float]:
    """Pooled EER (%) of each study group from a scores.parquet (higher score = bona fide)."""
    import pandas as pd

    from cm_cli.metrics.summary import eer

    frame = pd.read_parquet(scores_path, columns=["score", "label", "domain"])
    groups = frame["domain"].astype(str).map(lambda d: group_of(d, seen))
    out: dict[str, float] = {}
    for name in ("clean", "seen", "unseen"):
        part = frame[groups == name]
        bona = part.loc[part["label"] == "bonafide", "score"].to_numpy(float)
        spoof = part.loc[part["label"] == "spoof", "score"].to_numpy(float)
        if len(bona) and len(spoof):
            out[name] = 100.0 * float(eer(bona, spoof))
    return out


def study_summary(
    eval_dirs: dict[str, dict[int, Path]], *, seen: Sequence[str] = DEMO_SEEN, family: Any = None
) -> dict:
    """Per method: clean/seen/unseen EER and relative gaps per seed, their mean and sd, and a plain paragraph.

    The verdict compares mean unseen gaps only when the difference exceeds the spread
    of the seeds; otherwise it says the evidence does not separate the methods. With
    ``family`` (``report.sections_seeds.SeedFamily``: the report's seed tests of this study, one
    Holm family) every comparison is also stated with its Holm-adjusted p-value.
    """
    import numpy as np

    methods: dict[str, dict] = {}
    for method, by_seed in eval_dirs.items():
        per_seed = {}
        for s, d in sorted(by_seed.items()):
            path = d / "scores.parquet"
            if not path.is_file():
                candidates = sorted(d.glob("*/scores.parquet"))
                path = candidates[0] if candidates else path
            if not path.is_file():
                continue
            eers = _group_eers(path, seen)
            if "clean" in eers:
                for g in ("seen", "unseen"):
                    if g in eers and eers["clean"] > 0:
                        eers[f"gap_{g}_rel"] = 100.0 * (eers[g] - eers["clean"]) / eers["clean"]
            per_seed[str(s)] = {k: round(v, 2) for k, v in eers.items()}
        stats = {}
        for key in ("clean", "seen", "unseen", "gap_seen_rel", "gap_unseen_rel"):
            values = [v[key] for v in per_seed.values() if key in v]
            if values:
                stats[key] = {
                    "mean": round(float(np.mean(values)), 2),
                    "sd": round(float(np.std(values, ddof=1)), 2) if len(values) > 1 else None,
                    "n": len(values),
                }
        methods[method] = {"per_seed": per_seed, "stats": stats}
    unseen = [c for c in DEMO_EVAL_CONDITIONS if c not in seen]
    named = (
        f"Policy-covered codecs: {', '.join(map(describe_condition, seen))}. Never-seen codecs: "
        f"{', '.join(map(describe_condition, unseen))}."
    )
    tests = list(family.all) if family is not None else []
    out = {
        "seen_conditions": list(seen),
        "unseen_conditions": unseen,
        "methods": methods,
        "text": named + "\n" + _verdict(methods, tests) + ("\n" + _family_text(tests) if tests else ""),
    }
    if tests:
        out["holm_family"] = {"name": tests[0].family, "size": len(tests), "tests": [_json_test(t) for t in tests]}
    return out


def _json_test(test) -> dict:
    """A paired test as summary.json holds it (NaN, e.g. Hedges' g with one seed, as null)."""
    import math

    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in test.to_dict().items()}


def _family_text(tests) -> str:
    """Every comparison of the study's one Holm family, as the report's "Seeds and paired tests" computes it."""
    from cm_cli.report.seedstats import format_p

    def shown(p: float) -> str:
        text = format_p(p)
        return text if text.startswith("<") else f"= {text}"

    lines = [
        f'Paired seed-level tests, {tests[0].family} (the same tests as the report\'s "Seeds and paired tests"; '
        "a gap is EER on the codecs no method trained on minus clean EER, in points; B − A, lower is better):"
    ]
    for t in tests:
        a, b = METHOD_LABELS.get(t.a, t.a), METHOD_LABELS.get(t.b, t.b)
        verdict = "supported" if t.p_holm < 0.05 else "not supported"
        lines.append(
            f"- {b} − {a}, {t.metric}: {t.difference:+.2f} points ({100 * t.level:.0f}% CI [{t.ci_low:+.2f}, "
            f"{t.ci_high:+.2f}]), p {shown(t.p_value)}, Holm-adjusted p {shown(t.p_holm)}: a difference is "
            f"{verdict} at the 5% level."
        )
    return "\n".join(lines)


def _fmt(stat: dict | None, unit: str = "%") -> str:
    if not stat:
        return "n/a"
    sd = f" ± {stat['sd']:.1f}" if stat.get("sd") is not None else ""
    return f"{stat['mean']:.1f}{sd}{unit}"


def _verdict(methods: dict[str, dict], tests: Sequence[Any] = ()) -> str:
    """The seed-spread rule for each comparison the demo is about, with the Holm-adjusted p of its paired
    gap test where ``tests`` (the study's Holm family) has one."""
    from cm_cli.report.seedstats import format_p

    names = {m: METHOD_LABELS.get(m, m) for m in methods}
    gap_tests = {frozenset((t.a, t.b)): t for t in tests if t.metric != "EER"}

    def tested(a: str, b: str) -> str:
        t = gap_tests.get(frozenset((a, b)))
        if t is None:
            return ""
        p = format_p(t.p_holm)
        return (
            f" Paired test of the {t.metric}: {t.difference:+.2f} points ({METHOD_LABELS.get(t.b, t.b)} − "
            f"{METHOD_LABELS.get(t.a, t.a)}), Holm-adjusted p {p if p.startswith('<') else '= ' + p} "
            f"({'supported' if t.p_holm < 0.05 else 'not supported'} at the 5% level; the Holm family of "
            f"{len(tests)} comparisons below)."
        )

    lines = []
    for m, info in methods.items():
        s = info["stats"]
        lines.append(
            f"{names.get(m, m)}: EER clean {_fmt(s.get('clean'))}, policy-covered codecs "
            f"{_fmt(s.get('seen'))}, never-seen codecs {_fmt(s.get('unseen'))} "
            f"(relative gap {_fmt(s.get('gap_unseen_rel'), ' %')} on never-seen codecs)."
        )

    def compare(a: str, b: str, what: str) -> str | None:
        sa, sb = methods.get(a, {}).get("stats", {}), methods.get(b, {}).get("stats", {})
        if "unseen" not in sa or "unseen" not in sb:
            return None
        diff = sb["unseen"]["mean"] - sa["unseen"]["mean"]
        spread = max((x["unseen"].get("sd") or 0.0) for x in (sa, sb))
        n = min(sa["unseen"]["n"], sb["unseen"]["n"])
        if n < 2:
            return (
                f"{names[b]} vs {names[a]} on never-seen codecs: {diff:+.1f} EER points from one seed each; "
                f"one seed cannot tell whether {what}."
            )
        if abs(diff) <= 2 * spread:
            return (
                f"{names[b]} vs {names[a]} on never-seen codecs: {diff:+.1f} EER points, within twice the "
                f"seed spread ({spread:.1f}); the evidence does not show that {what}."
            )
        direction = "lowers" if diff < 0 else "raises"
        return (
            f"{names[b]} {direction} the never-seen-codec EER by {abs(diff):.1f} points against {names[a]} "
            f"(more than twice the seed spread of {spread:.1f}); see the report's paired tests."
        )

    pairs = [("erm", "erm_aug", "codec augmentation helps")]
    pairs += [("erm_aug", m, f"{names[m]} adds to augmentation") for m in methods if m not in ("erm", "erm_aug")]
    for a, b, what in pairs:
        line = compare(a, b, what)
        if line:
            lines.append(line + tested(a, b))
    return "\n".join(lines)


@dataclass
class _Study:
    """One demo study: where it writes, what it runs on, and one method per step (each skips finished work)."""

    out: Path
    data_root: Path
    settings: DemoSettings
    device: str
    torch_device: Any
    cache_dir: str | Path | None
    on_step: Callable[[DemoStep], None] | None
    result: DemoResult = field(init=False)

    def __post_init__(self) -> None:
        self.result = DemoResult(self.out)
        self.workers = max(1, self.settings.workers)
        self.seeds = self.settings.train_seeds
        self.first = self.seeds[0]
        self.toy_root = self.data_root / "toy"
        self.manifest_path = self.out / "manifest" / "manifest.parquet"
        self.augment_dir = self.out / "augment"
        self.methods = tuple(self.settings.methods)
        self.runs = {m: {s: self.out / "runs" / m / f"seed_{s}" for s in self.seeds} for m in self.methods}
        self.evals = {m: {s: self.out / "eval" / m / f"seed_{s}" for s in self.seeds} for m in self.methods}
        self.embeddings = {m: self.out / "embed" / m / f"seed_{self.first}" for m in self.methods}

    def step(self, name: str, fn: Callable[[], tuple[dict, bool, str]]) -> None:
        start = time.perf_counter()
        paths, skipped, note = fn()
        done = DemoStep(name, time.perf_counter() - start, {k: str(v) for k, v in paths.items()}, skipped, note)
        self.result.steps.append(done)
        if self.on_step is not None:
            self.on_step(done)

    def corpus(self):
        from cm_cli.data.corpora.toy import build_toy_corpus
        from cm_cli.degrade.toy_conditions import add_coded_eval_conditions

        s = self.settings
        info = build_toy_corpus(self.toy_root, size=s.size, seed=s.seed, force=s.force, workers=self.workers)
        added = add_coded_eval_conditions(self.toy_root, DEMO_EVAL_CONDITIONS, seed=s.seed, workers=self.workers)
        n_added = sum(added.values())
        note = f"{info.n_files} files" + (f", {n_added} coded eval copies added" if n_added else "")
        return {"corpus": self.toy_root}, not info.built and n_added == 0, note

    def manifest(self):
        from cm_cli.data.manifests import make_manifest

        made = make_manifest(
            "toy",
            self.manifest_path.parent,
            data_root=self.data_root,
            corpus_root=self.toy_root,
            validate=True,
            seed=self.settings.seed,
            workers=self.workers,
            force=self.settings.force,
            extra_options={"toy_size": self.settings.size},
        )
        return {"manifest": made.path}, made.skipped, f"{made.n_rows} utterances"

    def augment(self):
        from cm_cli.degrade.corpus import degrade_manifest

        s = self.settings
        done = degrade_manifest(
            self.manifest_path,
            self.augment_dir,
            policy=DEMO_AUGMENT_POLICY,
            variants=s.variants,
            seed=s.seed,
            workers=self.workers,
            split="train",
            data_root=self.data_root,
            force=s.force,
        )
        note = f"{done.n_written} variants rendered"
        return {"manifest": self.augment_dir / "manifest.parquet"}, done.already_done, note

    def train(self, method: str, seed: int):
        from cm_cli.training.run import train_run

        config = _train_config(
            DEMO_PRESETS[method],
            seed=seed,
            augment_manifest=self.augment_dir / "manifest.parquet",
            epochs=self.settings.epochs,
        )
        outcome = train_run(
            config,
            self.manifest_path,
            self.runs[method][seed],
            data_root=self.data_root,
            device=self.torch_device,
            cache_dir=self.cache_dir,
            force=self.settings.force,
            preset=DEMO_PRESETS[method],
        )
        dev_eer = outcome.summary.get("best_dev_eer", outcome.summary.get("dev_eer"))
        note = f"{outcome.status}" + (f", best dev EER {100 * dev_eer:.2f}%" if isinstance(dev_eer, float) else "")
        return {"run": self.runs[method][seed]}, outcome.skipped, note

    def evaluate(self, method: str, seed: int):
        from cm_cli.evaluation import evaluate_model

        # no per-run `compare`: it names a seed-specific file, which would keep `cm report` from
        # grouping seed replicates; the methods are compared over seeds in the summary and report
        done = evaluate_model(
            self.runs[method][seed],
            self.manifest_path,
            self.evals[method][seed],
            split="eval",
            by=["codec", "attack"],
            in_domain=["clean"],
            bootstrap=200,
            data_root=self.data_root,
            cache_dir=self.cache_dir,
            device=self.device,
            torch_device=self.torch_device,
            seed=self.settings.seed,
            force=self.settings.force,
        )
        overall = done.conditions[0].metrics["overall"]
        return (
            {"eval": self.evals[method][seed]},
            done.skipped,
            f"EER {100 * overall['eer']:.2f}%, minDCF {overall['min_dcf']:.3f}",
        )

    def summarise(self):
        from cm_cli.core.artifacts import atomic_path, write_json
        from cm_cli.report.sections_seeds import study_families

        # the report's own seed tests of everything under OUT (so after the sweeps): one Holm family
        families = study_families([self.out])
        family = families.get("toy", next(iter(families.values()), None))
        summary = study_summary(self.evals, family=family)
        write_json(summary, self.out / DEMO_SUMMARY)
        with atomic_path(self.out / "summary.md") as tmp:
            tmp.write_text(
                "# What the demo study shows\n\n" + summary["text"].replace("\n", "\n\n") + "\n", encoding="utf-8"
            )
        self.result.summary = summary
        return {"summary": self.out / DEMO_SUMMARY}, False, ""

    def sweep(self, method: str):
        from cm_cli.evaluation import evaluate_model

        target = self.out / "sweep" / method / f"seed_{self.first}"
        done = evaluate_model(
            self.runs[method][self.first],
            self.manifest_path,
            target,
            split="eval",
            degrade=[DEMO_SWEEP],
            by=["attack"],
            data_root=self.data_root,
            cache_dir=self.cache_dir,
            device=self.device,
            torch_device=self.torch_device,
            seed=self.settings.seed,
            force=self.settings.force,
        )
        return {"sweep": done.sweep or target}, done.skipped, f"{len(done.conditions)} conditions"

    def embed(self, method: str):
        from cm_cli.embedding import embed_manifest

        done = embed_manifest(
            self.manifest_path,
            self.embeddings[method],
            checkpoint=self.runs[method][self.first],
            split="eval",
            layers="all",
            data_root=self.data_root,
            device=self.torch_device,
            force=self.settings.force,
        )
        return {"embeddings": done.path}, done.skipped, f"{done.n_rows} utterances"

    def loao(self):
        from cm_cli.analysis.loao import LoaoConfig, run_loao

        summary = run_loao(
            self.embeddings["erm"],
            manifest=self.manifest_path,
            out=self.out / "loao",
            config=LoaoConfig(seeds=(0, 1), n_boot=500, n_perm=1000),
            force=self.settings.force,
        )
        return {"loao": self.out / "loao"}, bool(summary.get("skipped")), ""

    def probe(self):
        from cm_cli.analysis.probes import ProbeConfig, run_probes

        # the same augmentation with and without the adversary: is there less codec information left?
        summary = run_probes(
            [self.embeddings["erm_aug"], self.embeddings["dann"]],
            manifest=self.manifest_path,
            out=self.out / "probe",
            config=ProbeConfig(
                target="codec", folds=3, n_boot=300, max_iter=200, control_repeats=1, seed=self.settings.seed
            ),
            tags=["erm_aug", "dann"],
            force=self.settings.force,
        )
        return {"probes": self.out / "probe"}, bool(summary.get("skipped")), ""

    def cka(self):
        from cm_cli.analysis.cka import CkaConfig, run_cka

        summary = run_cka(
            self.embeddings["erm_aug"],
            self.embeddings["dann"],
            out=self.out / "cka",
            config=CkaConfig(seed=self.settings.seed),
            force=self.settings.force,
        )
        return {"cka": self.out / "cka"}, bool(summary.get("skipped")), ""

    def patch(self):
        from cm_cli.analysis.patching import PatchConfig, run_patching

        # same training seed -> same initial weights (the model is built right after seeding;
        # DANN's heads come afterwards), so the two representations share their initialisation
        config = PatchConfig(split="eval", n_boot=300, seed=self.settings.seed, max_rows=300)
        summary = run_patching(
            self.runs["erm_aug"][self.first],
            self.runs["dann"][self.first],
            manifest=self.manifest_path,
            out=self.out / "patch",
            data_root=self.data_root,
            config=config,
            force=self.settings.force,
        )
        return {"patching": self.out / "patch"}, bool(summary.get("skipped")), ""

    def report(self):
        from cm_cli.report.render import build_report

        built = build_report([self.out], self.out / "report", title="cm demo: ERM vs ERM-aug vs DANN on the toy corpus")
        return {"report_html": built.html, "report_md": built.markdown}, False, f"{len(built.figures)} figures"


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

    out, data_root = Path(out).resolve(), Path(data_root).resolve()
    ensure_writable_dir(out)
    ensure_writable_dir(data_root)
    study = _Study(out, data_root, settings, device, torch_device, cache_dir, on_step)
    label = METHOD_LABELS
    study.step("toy corpus", study.corpus)
    study.step("manifest", study.manifest)
    study.step("augmentation", study.augment)
    for kind, fn in (("train", study.train), ("eval", study.evaluate)):
        for method in study.methods:
            for seed in study.seeds:
                study.step(f"{kind} {label[method]} seed {seed}", lambda fn=fn, m=method, s=seed: fn(m, s))
    analysed = [m for m in DEMO_METHODS if m in study.methods]  # the analyses compare today's three methods
    for method in analysed:
        study.step(f"stress sweep {label[method]}", lambda m=method: study.sweep(m))
    for method in analysed:
        study.step(f"embed {label[method]}", lambda m=method: study.embed(m))
    if "erm" in study.methods:
        study.step("loao", study.loao)
    if {"erm_aug", "dann"} <= set(study.methods):
        study.step("probe codec ERM-aug vs DANN", study.probe)
        study.step("cka ERM-aug vs DANN", study.cka)
        study.step("patch ERM-aug <- DANN", study.patch)
    study.step("study summary", study.summarise)  # last but the report: it quotes the report's Holm family
    study.step("report", study.report)
    return study.result
