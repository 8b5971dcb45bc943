"""Activation patching: which part of a donor model (e.g. DANN) carries its difference from a base (e.g. ERM).

Both runs see the same audio. At each site (a named module's output, or the
layer-weighting vector) the base model runs with the donor's activation put in
its place through a forward hook; the change in EER/minDCF and in how well a
codec probe reads the final representation says what that site carries. A site
where the two runs compute identical activations (a shared frozen layer) is a
no-op, reported as such rather than as an effect.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = ["PATCH_COLUMNS", "PatchConfig", "Site", "patch_sites", "check_same_architecture", "compute_patching",
           "run_patching"]

PATCH_COLUMNS = ["site", "eer", "min_dcf", "delta_eer", "ci_low", "ci_high", "probe_acc", "noop"]
ARCHITECTURE_KEYS = ("backbone", "backbone_options", "layer", "pooling", "head_dims")


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

    def options(self) -> dict:
        return asdict(self)


@dataclass
class Site:
    """A patch site: ``module`` output (by dotted name), or ``param`` (the layer-weighting logits)."""

    name: str
    kind: str
    target: str


def _module_names(model) -> set[str]:
    return {name for name, _ in model.named_modules()}


def patch_sites(model) -> tuple[list[Site], list[str]]:
    """The sites of a CountermeasureModel (DESIGN.md layer names, layer weighting, pooled, projection)."""
    names = _module_names(model)
    sites: list[Site] = []
    notes: list[str] = []
    family = getattr(model, "family", None)
    layer_names = model.layer_names
    if family in ("ssl", "ssl_aasist"):
        ssl_prefix = "backbone.model" if family == "ssl" else "backbone.ssl.model"
        for i, layer in enumerate(layer_names):
            target = f"{ssl_prefix}.encoder.layers.{i - 1}" if i > 0 else None
            if target and target in names:
                sites.append(Site(layer, "module", target))
            else:
                notes.append(f"{layer}: no single module produces it; not patched")
    else:
        for layer, block in zip(layer_names, model.backbone.layer_names):
            candidates = [block, re.sub(r"_(\d+)$", r".\1", block), re.sub(r"_(\d+)$", r"s.\1", block)]
            found = next((f"backbone.{c}" for c in candidates if f"backbone.{c}" in names), None)
            if found:
                sites.append(Site(layer, "module", found))
            else:
                notes.append(f"{layer} ({block}): no module of that name; not patched")
    if getattr(model, "layer_weighting", None) is not None:
        sites.append(Site("layer_weighting", "param", "layer_weighting"))
    if "pooling" in names:
        sites.append(Site("pooled", "module", "pooling"))
    if "projection" in names:
        sites.append(Site("projection", "module", "projection"))
    return sites, notes


def check_same_architecture(base_config: dict, donor_config: dict, base_model, donor_model, *, base: str,
                            donor: str) -> None:
    """Different backbones/heads or parameter shapes -> CmError naming the first differences."""
    differences = [f"{k}: {base_config.get(k)!r} vs {donor_config.get(k)!r}" for k in ARCHITECTURE_KEYS
                   if base_config.get(k) != donor_config.get(k)]
    if not differences:
        a, b = base_model.state_dict(), donor_model.state_dict()
        keys = sorted(set(a) ^ set(b))
        shapes = sorted(k for k in set(a) & set(b) if tuple(a[k].shape) != tuple(b[k].shape))
        differences = [f"parameter {k} only in one run" for k in keys[:3]] + [f"parameter {k} has other shapes" for k in shapes[:3]]
    if differences:
        raise CmError(f"{base} and {donor} are runs of different architectures ({'; '.join(differences[:4])})",
                      "activation patching needs two runs of the same model configuration")


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


def _load_audio(frame: "pd.DataFrame", data_root, batch_size: int):
    from cm_cli.data.datasets import ManifestAudio

    dataset = ManifestAudio(frame, data_root=data_root)
    kept, failures, waves = [], [], []
    for i in range(len(dataset)):
        item = dataset[i]
        if item.wave is None:
            failures.append(item.error)
        else:
            kept.append(i)
            waves.append(item.wave)
    return kept, failures, [(kept[i:i + batch_size], waves[i:i + batch_size]) for i in range(0, len(kept), batch_size)]


def _probe_accuracy(X: "np.ndarray", frame: "pd.DataFrame", config: PatchConfig) -> float:
    import numpy as np

    from cm_cli.analysis.probes import ProbeConfig, prepare_probe_data, probe_layer

    probe_config = ProbeConfig(target=config.probe_target, group_by=config.probe_group_by, control_by=None,
                               folds=config.folds, control_repeats=1, seed=config.seed)
    data = prepare_probe_data(frame, config=probe_config)
    result = probe_layer(X, data, np.arange(len(frame)), layer="pre_logit", config=probe_config)
    return float((result.predicted == data.y).mean())


def compute_patching(base: str | Path, donor: str | Path, frame: "pd.DataFrame", *, data_root: str | Path | None,
                     config: PatchConfig = PatchConfig()) -> tuple["pd.DataFrame", dict]:
    """Score base, donor and base-with-donor-activation at every site; one PATCH_COLUMNS row each."""
    import numpy as np
    import pandas as pd
    import torch

    from cm_cli.metrics.summary import eer_and_min_dcf
    from cm_cli.core.progress import track
    from cm_cli.scoring import load_scoring_model

    loaded_base = load_scoring_model(base)
    loaded_donor = load_scoring_model(donor)
    base_model, donor_model = loaded_base.model, loaded_donor.model
    check_same_architecture(loaded_base.config, loaded_donor.config, base_model, donor_model, base=str(base),
                            donor=str(donor))
    sites, notes = patch_sites(base_model)
    if config.sites:
        wanted = [s.strip() for s in config.sites.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in {s.name for s in sites}]
        if unknown:
            raise CmError(f"no patch site(s) {', '.join(unknown)} in this model",
                          f"sites: {', '.join(s.name for s in sites)}")
        sites = [s for s in sites if s.name in wanted]
    if config.max_rows and len(frame) > config.max_rows:
        frame = frame.sample(n=config.max_rows, random_state=config.seed).sort_index()
    frame = frame.reset_index(drop=True)
    labels = frame["label"].astype(str)
    if (labels == "bonafide").sum() == 0 or (labels == "spoof").sum() == 0:
        raise CmError(f"patching needs bona fide and spoof rows (bona fide {int((labels == 'bonafide').sum())}, "
                      f"spoof {int((labels == 'spoof').sum())})", "use another --split")
    kept, failures, batches = _load_audio(frame, data_root, config.batch_size)
    if failures:
        notes.append(f"{len(failures)} utterance(s) could not be decoded and were skipped, e.g. {failures[0]}")
    if not kept:
        raise CmError("no utterance of the manifest could be decoded", "check --data-root and the manifest paths")
    module_sites = [s for s in sites if s.kind == "module"]
    variants = ["base", "donor", *[s.name for s in sites]]
    scores = {v: [] for v in variants}
    pre_logits = {v: [] for v in variants}
    noop = {s.name: True for s in sites}
    param_sites = [s for s in sites if s.kind == "param"]
    base_modules, donor_modules = dict(base_model.named_modules()), dict(donor_model.named_modules())
    for s in param_sites:
        noop[s.name] = all(torch.equal(p, q) for p, q in zip(base_modules[s.target].parameters(),
                                                             donor_modules[s.target].parameters()))
    for rows, waves in track(batches, description="patching"):
        batch, lengths = base_model.prepare_batch([torch.from_numpy(w) for w in waves])
        s_base, p_base, act_base = _run(base_model, batch, lengths, capture=module_sites)
        s_donor, p_donor, act_donor = _run(donor_model, batch, lengths, capture=module_sites)
        for name, s, p in (("base", s_base, p_base), ("donor", s_donor, p_donor)):
            scores[name].append(s)
            pre_logits[name].append(p)
        for site in module_sites:
            if not _equal(act_base[site.name], act_donor[site.name]):
                noop[site.name] = False
            s, p, _ = _run(base_model, batch, lengths, replace={site.target: act_donor[site.name]})
            scores[site.name].append(s)
            pre_logits[site.name].append(p)
        for site in param_sites:
            module = base_modules[site.target]
            saved = {k: v.clone() for k, v in module.state_dict().items()}
            module.load_state_dict(donor_modules[site.target].state_dict())
            try:
                s, p, _ = _run(base_model, batch, lengths)
            finally:
                module.load_state_dict(saved)
            scores[site.name].append(s)
            pre_logits[site.name].append(p)
    used = frame.iloc[kept].reset_index(drop=True)
    is_bona = (used["label"].astype(str) == "bonafide").to_numpy()
    all_scores = {v: np.concatenate(scores[v]) for v in variants}
    probe_note = None
    rng = np.random.default_rng(config.seed)
    draws = [rng.integers(0, len(used), len(used)) for _ in range(config.n_boot)]
    draws = [d for d in draws if is_bona[d].any() and (~is_bona[d]).any()]

    def eer_of(values: "np.ndarray", index: "np.ndarray | None" = None) -> float:
        v, b = (values, is_bona) if index is None else (values[index], is_bona[index])
        return eer_and_min_dcf(v[b], v[~b])[0]

    base_boot = np.array([eer_of(all_scores["base"], d) for d in draws])
    rows_out = []
    for variant in variants:
        values = all_scores[variant]
        eer, min_dcf = eer_and_min_dcf(values[is_bona], values[~is_bona])
        delta = eer - eer_and_min_dcf(all_scores["base"][is_bona], all_scores["base"][~is_bona])[0]
        if variant == "base" or noop.get(variant, False):
            low = high = 0.0
        else:
            diffs = np.array([eer_of(values, d) for d in draws]) - base_boot
            low, high = (float(np.quantile(100 * diffs, 0.025)), float(np.quantile(100 * diffs, 0.975)))
        try:
            probe_acc = _probe_accuracy(np.concatenate(pre_logits[variant]), used, config)
        except CmError as exc:
            probe_acc, probe_note = math.nan, f"codec probe not computed: {exc.message}"
        rows_out.append({"site": variant, "eer": 100 * eer, "min_dcf": min_dcf, "delta_eer": 100 * delta,
                         "ci_low": low, "ci_high": high, "probe_acc": probe_acc,
                         "noop": bool(noop.get(variant, False))})
    if probe_note:
        notes.append(probe_note)
    table = pd.DataFrame(rows_out, columns=PATCH_COLUMNS)
    summary = {
        "base": str(base), "donor": str(donor), "units": "EER and delta_eer in percentage points; delta vs base",
        "n_utterances": int(len(used)), "n_bonafide": int(is_bona.sum()), "n_spoof": int((~is_bona).sum()),
        "sites": [s.name for s in sites], "noop_sites": [s.name for s in sites if noop[s.name]],
        "probe_target": config.probe_target, "notes": notes,
    }
    return table, summary


def run_patching(base: str | Path, donor: str | Path, *, manifest: str | Path, out: str | Path,
                 data_root: str | Path | None, config: PatchConfig = PatchConfig(), force: bool = False,
                 argv: Sequence[str] | None = None) -> dict:
    """Patch every site and write patching.parquet and patching.json under ``out``."""
    from cm_cli.analysis._output import previous_summary, write_outputs
    from cm_cli.data.manifests import load_manifest

    options = {"base": str(base), "donor": str(donor), "manifest": str(manifest), **config.options()}
    done = previous_summary(out, "patching", options, force=force)
    if done is not None:
        return done
    frame = load_manifest(manifest, split=config.split)
    table, summary = compute_patching(base, donor, frame, data_root=data_root, config=config)
    return write_outputs(out, "patching", options, tables={"patching.parquet": table}, summary=summary,
                         summary_name="patching.json", inputs=[base, donor, manifest], force=force, argv=argv)
