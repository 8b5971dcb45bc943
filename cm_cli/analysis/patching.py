"""Activation patching: which part of a donor model (e.g. DANN) carries its difference from a base (e.g. ERM).

Both runs see the same audio. At each site (a named module's output, or the
layer-weighting vector) the base model runs with the donor's activation put in
its place through a forward hook; the change in EER/minDCF and in how well a
codec probe reads the final representation says what that site carries. A site
where the two runs compute identical activations (a shared frozen layer) is a
no-op, reported as such rather than as an effect.

Patching is meaningful only between models whose representations are aligned, i.e.
that share their initialisation: the same pretrained backbone, or the same init seed
(the run's ``config.json``) from the same configuration. Two models trained from
different random initialisations compute unrelated features at the same site, and
putting one's activation into the other measures breakage (toy LCNN ERM -> DANN: +5 to
+7 EER points at every layer). Such pairs are refused unless ``allow_unaligned``, and
then flagged ``aligned: false`` in ``patching.parquet`` and ``patching.json``. The EER
change intervals are paired bootstraps over speakers (``cluster_by``), since trials of
one speaker are not independent; a null key is a cluster of its own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cm_cli.core.errors import CmError
from cm_cli.core.kinds import register_kind

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "PATCH_COLUMNS",
    "PatchConfig",
    "Site",
    "patch_sites",
    "check_same_architecture",
    "alignment",
    "cluster_draws",
    "compute_patching",
    "run_patching",
]

PATCH_COLUMNS = ["site", "eer", "min_dcf", "delta_eer", "ci_low", "ci_high", "probe_acc", "noop", "aligned"]
ARCHITECTURE_KEYS = ("backbone", "backbone_options", "layer", "pooling", "head_dims")

# the artifact kind this module makes, with its report section (cm_cli.core.kinds)
register_kind(
    "patching",
    title="Activation patching",
    command="`cm patch --base RUN --donor RUN --manifest M --out DIR`",
    marker="patching.parquet",
    tables=("patching",),
    missing="patching results",
    section="cm_cli.report.sections_analysis:patching_blocks",
    order=40,
)


@dataclass
class PatchConfig:
    sites: str | None = None  # comma list of site names; None = every site the model has
    split: str | None = None
    batch_size: int = 16
    probe_target: str = "codec"
    probe_group_by: str | None = "speaker"
    folds: int = 3
    n_boot: int = 500
    seed: int = 0
    max_rows: int | None = None
    allow_unaligned: bool = False
    cluster_by: str | None = "speaker"  # bootstrap unit of the EER-change intervals (None: trials)

    def options(self) -> dict:
        return asdict(self)


@dataclass
class Site:
    """A patch site: ``module`` output (by dotted name), or ``param`` (the layer-weighting logits)."""

    name: str
    kind: str
    target: str


def patch_sites(model) -> tuple[list[Site], list[str]]:
    """The sites of a CountermeasureModel: its backbone bundle's (``layer_00`` …, ``pooled``, ``projection``),
    plus the layer-weighting vector where the model has one."""
    dotted = {id(module): name for name, module in model.named_modules()}
    sites: list[Site] = []
    notes: list[str] = []
    for name, module in model.bundle.patch_sites(model).items():
        if name == "pooled" and getattr(model, "layer_weighting", None) is not None:
            sites.append(Site("layer_weighting", "param", "layer_weighting"))
        if id(module) in dotted:
            sites.append(Site(name, "module", dotted[id(module)]))
        else:
            notes.append(f"{name}: its module is not part of the model; not patched")
    if getattr(model, "layer_weighting", None) is not None and "layer_weighting" not in {s.name for s in sites}:
        sites.append(Site("layer_weighting", "param", "layer_weighting"))
    return sites, notes


def check_same_architecture(
    base_config: dict, donor_config: dict, base_model, donor_model, *, base: str, donor: str
) -> None:
    """Different backbones/heads or parameter shapes -> CmError naming the first differences."""
    differences = [
        f"{k}: {base_config.get(k)!r} vs {donor_config.get(k)!r}"
        for k in ARCHITECTURE_KEYS
        if base_config.get(k) != donor_config.get(k)
    ]
    if not differences:
        a, b = base_model.state_dict(), donor_model.state_dict()
        keys = sorted(set(a) ^ set(b))
        shapes = sorted(k for k in set(a) & set(b) if tuple(a[k].shape) != tuple(b[k].shape))
        differences = [f"parameter {k} only in one run" for k in keys[:3]] + [
            f"parameter {k} has other shapes" for k in shapes[:3]
        ]
    if differences:
        raise CmError(
            f"{base} and {donor} are runs of different architectures ({'; '.join(differences[:4])})",
            "activation patching needs two runs of the same model configuration",
        )


def _detach(output: Any) -> Any:
    import torch

    if torch.is_tensor(output):
        return output.detach().clone()
    if isinstance(output, tuple):
        return tuple(_detach(o) for o in output)
    if isinstance(output, list):
        return [_detach(o) for o in output]
    return output


def _equal(a: Any, b: Any) -> bool:
    import torch

    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _run(model, batch, lengths, *, capture: Sequence[Site] = (), replace: dict[str, Any] | None = None):
    """Forward once: returns (scores, pre_logit, {site: output}) with optional output replacement."""
    import torch

    modules = dict(model.named_modules())
    captured: dict[str, Any] = {}
    handles = []
    for site in capture:

        def keep(module, inputs, output, _name=site.name):
            captured[_name] = _detach(output)

        handles.append(modules[site.target].register_forward_hook(keep))
    for target, value in (replace or {}).items():
        handles.append(modules[target].register_forward_hook(lambda module, inputs, output, _v=value: _v))
    try:
        with torch.inference_mode():
            out = model(batch, lengths)
    finally:
        for handle in handles:
            handle.remove()
    return out.score.float().cpu().numpy().astype("float64"), out.pre_logit.float().cpu().numpy(), captured


def _probe_accuracy(X: "np.ndarray", frame: "pd.DataFrame", config: PatchConfig) -> float:
    import numpy as np

    from cm_cli.analysis.probes import ProbeConfig, prepare_probe_data, probe_layer

    probe_config = ProbeConfig(
        target=config.probe_target,
        group_by=config.probe_group_by,
        control_by=None,
        folds=config.folds,
        control_repeats=1,
        seed=config.seed,
    )
    data = prepare_probe_data(frame, config=probe_config)
    result = probe_layer(X, data, np.arange(len(frame)), layer="pre_logit", config=probe_config)
    return float((result.predicted == data.y).mean())


def alignment(base, donor) -> dict:
    """Whether two ``LoadedModel``s share their initialisation, and on what grounds."""
    if base.checkpoint_sha256 == donor.checkpoint_sha256:
        return {"aligned": True, "basis": "same weights"}
    a, b = base.config.backbone_id, donor.config.backbone_id
    if a is not None and a == b:
        return {"aligned": True, "basis": f"same pretrained backbone {a}"}
    if base.init_seed is not None and base.init_seed == donor.init_seed:
        return {"aligned": True, "basis": f"same init seed {base.init_seed}"}
    seeds = [m.init_seed for m in (base, donor)]
    if None in seeds:
        why = (
            "no pretrained backbone, and the init seed of "
            + ("either run" if seeds == [None, None] else ("the base" if seeds[0] is None else "the donor"))
            + " is unknown"
        )
    else:
        why = f"no pretrained backbone, and init seeds {seeds[0]} and {seeds[1]} differ"
    return {"aligned": False, "basis": why}


def cluster_draws(keys, n_boot: int, rng) -> list:
    """Bootstrap resamples as row positions (each drawn cluster's rows once per draw): the row view of
    ``metrics.stats.draw_counts`` over ``metrics.clusters.cluster_codes`` (a null key is its own cluster)."""
    import numpy as np

    from cm_cli.metrics.clusters import cluster_codes
    from cm_cli.metrics.stats import draw_counts

    codes, k = cluster_codes(keys)
    rows = np.arange(len(codes))
    return [np.repeat(rows, c[codes]) for counts in draw_counts(k, n_boot, rng) for c in counts]


def _load_pair(base, donor, config: PatchConfig, device):
    """Both models on ``device``, checked for architecture and alignment; their sites and notes."""
    from cm_cli.models.loading import load_model

    loaded_base, loaded_donor = load_model(base, device=device), load_model(donor, device=device)
    check_same_architecture(
        loaded_base.config.to_dict(),
        loaded_donor.config.to_dict(),
        loaded_base.model,
        loaded_donor.model,
        base=str(base),
        donor=str(donor),
    )
    aligned = alignment(loaded_base, loaded_donor)
    if not aligned["aligned"] and not config.allow_unaligned:
        raise CmError(
            f"{base} and {donor} do not share their initialisation ({aligned['basis']}), so their "
            "activations are not comparable site by site",
            "patch runs from the same pretrained backbone or the same seed, "
            "or allow unaligned pairs (the output is then flagged aligned: false)",
            option="allow_unaligned",
        )
    sites, notes = patch_sites(loaded_base.model)
    if config.sites:
        wanted = [s.strip() for s in config.sites.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in {s.name for s in sites}]
        if unknown:
            raise CmError(
                f"no patch site(s) {', '.join(unknown)} in this model", f"sites: {', '.join(s.name for s in sites)}"
            )
        sites = [s for s in sites if s.name in wanted]
    if not aligned["aligned"]:
        notes.append(f"base and donor are not aligned ({aligned['basis']}): effects may measure breakage, not transfer")
    return loaded_base.model, loaded_donor.model, sites, notes, aligned


def _patched_runs(base_model, donor_model, sites, frame, *, data_root, batch_size: int, device, workers: int = 0):
    """Scores and pre-logits of base, donor and each patched variant, by row; no-op flags; decoding failures."""
    import numpy as np
    import torch

    from cm_cli.core.progress import task
    from cm_cli.models.inference import iter_audio_batches, model_inputs

    module_sites = [s for s in sites if s.kind == "module"]
    param_sites = [s for s in sites if s.kind == "param"]
    variants = ["base", "donor", *[s.name for s in sites]]
    scores = {v: [] for v in variants}
    pre_logits = {v: [] for v in variants}
    order: list[int] = []
    failures: list[str] = []
    base_modules, donor_modules = dict(base_model.named_modules()), dict(donor_model.named_modules())
    noop = {s.name: True for s in sites}
    for s in param_sites:
        noop[s.name] = all(
            torch.equal(p, q) for p, q in zip(base_modules[s.target].parameters(), donor_modules[s.target].parameters())
        )

    def record(name, result):
        scores[name].append(result[0])
        pre_logits[name].append(result[1])

    with task(len(frame), "patching") as advance:
        for audio in iter_audio_batches(frame, data_root=data_root, batch_size=batch_size, workers=workers):
            failures.extend(message for _, message in audio.failures)
            for group in model_inputs(base_model, audio.waves):
                batch, lengths = group.batch.to(device), group.lengths.to(device)
                order.extend(audio.indices[p] for p in group.positions)
                *base_out, act_base = _run(base_model, batch, lengths, capture=module_sites)
                *donor_out, act_donor = _run(donor_model, batch, lengths, capture=module_sites)
                record("base", base_out)
                record("donor", donor_out)
                for site in module_sites:
                    if not _equal(act_base[site.name], act_donor[site.name]):
                        noop[site.name] = False
                    record(site.name, _run(base_model, batch, lengths, replace={site.target: act_donor[site.name]}))
                for site in param_sites:
                    module = base_modules[site.target]
                    saved = {k: v.clone() for k, v in module.state_dict().items()}
                    module.load_state_dict(donor_modules[site.target].state_dict())
                    try:
                        record(site.name, _run(base_model, batch, lengths))
                    finally:
                        module.load_state_dict(saved)
            advance(len(audio.indices) + len(audio.failures))
    rank = np.argsort(np.asarray(order, dtype=np.int64), kind="stable")
    kept = np.asarray(order, dtype=np.int64)[rank]
    scores = {v: np.concatenate(x)[rank] if x else np.zeros(0) for v, x in scores.items()}
    pre_logits = {v: np.concatenate(x)[rank] if x else np.zeros((0, 0)) for v, x in pre_logits.items()}
    return kept, scores, pre_logits, noop, failures


def _site_rows(used, scores: dict, pre_logits: dict, noop: dict, config: PatchConfig, aligned: bool):
    """One PATCH_COLUMNS row per variant, with paired (clustered) bootstrap intervals; bootstrap unit."""
    import numpy as np

    from cm_cli.metrics.clusters import cluster_codes
    from cm_cli.metrics.stats import bootstrap_eers, percentile_interval
    from cm_cli.metrics.summary import eer_and_min_dcf

    is_bona = (used["label"].astype(str) == "bonafide").to_numpy()
    unit, keys = "trial", None
    if config.cluster_by and config.cluster_by in used.columns and used[config.cluster_by].notna().any():
        unit, keys = config.cluster_by, used[config.cluster_by].to_numpy(dtype=object)
    variants = list(scores)
    boot = bootstrap_eers([scores[v] for v in variants], is_bona, keys, n_boot=config.n_boot, seed=config.seed)
    boot = 100 * boot[np.isfinite(boot).all(axis=1)]  # a resample without bona fide or spoof has no EER
    base_eer = eer_and_min_dcf(scores["base"][is_bona], scores["base"][~is_bona])[0]
    rows, probe_note = [], None
    for column, (variant, values) in enumerate(scores.items()):
        eer, min_dcf = eer_and_min_dcf(values[is_bona], values[~is_bona])
        if variant == "base" or noop.get(variant, False) or not len(boot):
            low = high = 0.0 if variant == "base" or noop.get(variant, False) else float("nan")
        else:
            low, high = percentile_interval(boot[:, column] - boot[:, variants.index("base")], 0.95)
        try:
            probe_acc = _probe_accuracy(pre_logits[variant], used, config)
        except CmError as exc:
            probe_acc, probe_note = math.nan, f"codec probe not computed: {exc.message}"
        rows.append(
            {
                "site": variant,
                "eer": 100 * eer,
                "min_dcf": min_dcf,
                "delta_eer": 100 * (eer - base_eer),
                "ci_low": low,
                "ci_high": high,
                "probe_acc": probe_acc,
                "noop": bool(noop.get(variant, False)),
                "aligned": bool(aligned),
            }
        )
    n_clusters = cluster_codes(keys)[1] if keys is not None else len(used)
    return (
        rows,
        probe_note,
        {
            "cluster_by": unit if unit != "trial" else None,
            "unit": unit,
            "n_clusters": n_clusters,
            "n_resamples": int(len(boot)),
        },
    )


def compute_patching(
    base: str | Path,
    donor: str | Path,
    frame: "pd.DataFrame",
    *,
    data_root: str | Path | None,
    config: PatchConfig = PatchConfig(),
    device: Any = "cpu",
    workers: int = 0,
) -> tuple["pd.DataFrame", dict]:
    """Score base, donor and base-with-donor-activation at every site on ``device``; one PATCH_COLUMNS row each."""
    import pandas as pd
    import torch

    device = torch.device(device)
    base_model, donor_model, sites, notes, aligned = _load_pair(base, donor, config, device)
    if config.max_rows and len(frame) > config.max_rows:
        frame = frame.sample(n=config.max_rows, random_state=config.seed).sort_index()
    frame = frame.reset_index(drop=True)
    labels = frame["label"].astype(str)
    if (labels == "bonafide").sum() == 0 or (labels == "spoof").sum() == 0:
        raise CmError(
            f"patching needs bona fide and spoof rows (bona fide {int((labels == 'bonafide').sum())}, "
            f"spoof {int((labels == 'spoof').sum())})",
            "use another split",
            option="split",
        )
    kept, scores, pre_logits, noop, failures = _patched_runs(
        base_model,
        donor_model,
        sites,
        frame,
        data_root=data_root,
        batch_size=config.batch_size,
        device=device,
        workers=workers,
    )
    if failures:
        notes.append(f"{len(failures)} utterance(s) could not be decoded and were skipped, e.g. {failures[0]}")
    if not len(kept):
        raise CmError(
            "no utterance of the manifest could be decoded",
            "check the data root and the manifest paths",
            option=("data_root", "manifest"),
        )
    used = frame.iloc[kept].reset_index(drop=True)
    rows, probe_note, ci = _site_rows(used, scores, pre_logits, noop, config, aligned["aligned"])
    if probe_note:
        notes.append(probe_note)
    is_bona = (used["label"].astype(str) == "bonafide").to_numpy()
    summary = {
        "base": str(base),
        "donor": str(donor),
        "units": "EER and delta_eer in percentage points; delta vs base",
        "aligned": aligned["aligned"],
        "alignment": aligned["basis"],
        "ci": ci,
        "device": str(device),
        "n_utterances": int(len(used)),
        "n_bonafide": int(is_bona.sum()),
        "n_spoof": int((~is_bona).sum()),
        "sites": [s.name for s in sites],
        "noop_sites": [s.name for s in sites if noop[s.name]],
        "probe_target": config.probe_target,
        "notes": notes,
    }
    return pd.DataFrame(rows, columns=PATCH_COLUMNS), summary


def run_patching(
    base: str | Path,
    donor: str | Path,
    *,
    manifest: str | Path,
    out: str | Path,
    data_root: str | Path | None,
    config: PatchConfig = PatchConfig(),
    force: bool = False,
    argv: Sequence[str] | None = None,
    device: Any = "cpu",
    workers: int = 0,
) -> dict:
    """Patch every site and write patching.parquet and patching.json under ``out``."""
    from cm_cli.analysis._output import previous_summary, write_outputs
    from cm_cli.data.manifests import load_manifest

    options = {"base": str(base), "donor": str(donor), "manifest": str(manifest), **config.options()}
    done = previous_summary(out, "patching", options, force=force)
    if done is not None:
        return done
    frame = load_manifest(manifest, split=config.split)
    table, summary = compute_patching(
        base, donor, frame, data_root=data_root, config=config, device=device, workers=workers
    )
    return write_outputs(
        out,
        "patching",
        options,
        tables={"patching.parquet": table},
        summary=summary,
        summary_name="patching.json",
        inputs=[base, donor, manifest],
        force=force,
        argv=argv,
    )
