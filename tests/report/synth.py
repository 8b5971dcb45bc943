"""Realistic synthetic artifacts of a small ERM-vs-DANN study, for the report tests.

Scores are drawn so that the planted structure is known: coded trials are harder,
DANN loses less on them than ERM, attack A04 is the hardest. Metrics files are
computed from those scores with ``cm_cli.metrics``, as ``cm eval`` would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cm_cli.metrics.summary import compute_metrics

ATTACKS = {"A01": "vocoder", "A02": "vocoder", "A03": "tts", "A04": "vc"}
CODECS = [None, "mp3", "opus", "alaw"]
LAYERS = [f"layer_{i:02d}" for i in range(4)] + ["pooled"]


def _record(path: Path, kind: str, options: dict, argv: list[str], inputs: list[dict] | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    record = {
        "kind": kind,
        "cm_version": "0.1.0",
        "git_revision": "0123456789abcdef0123",
        "argv": argv,
        "options": options,
        "options_digest": "x",
        "inputs": inputs or [],
        "started": "2025-01-01T00:00:00",
        "finished": "2025-01-01T00:10:00",
        "status": "complete",
        "host": "node1",
        "device": "cpu",
        "versions": {"python": "3.11", "torch": "2.13", "numpy": "2.0"},
    }
    (path / "cm.json").write_text(json.dumps(record))


def _history(method: str, steps: int = 40) -> pd.DataFrame:
    step = np.arange(1, steps + 1)
    nan = np.full(steps, np.nan)
    dev_eer = nan.copy()
    dev_eer[9::10] = np.linspace(0.2, 0.05 if method == "dann" else 0.08, len(dev_eer[9::10]))
    frame = pd.DataFrame(
        {
            "step": step,
            "epoch": (step - 1) // 10,
            "lr": np.full(steps, 1e-4),
            "lambda": 2 / (1 + np.exp(-10 * step / steps)) - 1 if method == "dann" else nan,
            "loss_task": 0.7 * np.exp(-step / 15) + 0.05,
            "loss_domain": 1.3 - 0.2 * step / steps if method == "dann" else nan,
            "loss_domain_codec": 1.3 - 0.2 * step / steps if method == "dann" else nan,
            "domain_acc_codec": 0.6 - 0.3 * step / steps if method == "dann" else nan,
            "adv_grad_norm": np.linspace(0.5, 0.1, steps) if method == "dann" else nan,
            "dev_eer": dev_eer,
            "dev_min_dcf": dev_eer * 3,
        }
    )
    return frame


def _scores(corpus: str, method: str, seed: int, n_bona: int = 240, n_per_attack: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed * 10 + (method == "dann"))
    rows = []
    codec_penalty = {None: 0.0, "mp3": 1.2, "opus": 0.9, "alaw": 1.5}
    robust = 0.4 if method == "dann" else 1.0
    for i in range(n_bona):
        codec = CODECS[i % len(CODECS)]
        rows.append(
            {
                "utt_id": f"B{i:05d}",
                "label": "bonafide",
                "attack": None,
                "attack_family": None,
                "codec": codec,
                "score": rng.normal(2.0 - robust * codec_penalty[codec], 1.0),
            }
        )
    for attack, family in ATTACKS.items():
        hardness = 1.8 if attack == "A04" else 0.0
        for i in range(n_per_attack):
            codec = CODECS[i % len(CODECS)]
            rows.append(
                {
                    "utt_id": f"{attack}_{i:05d}",
                    "label": "spoof",
                    "attack": attack,
                    "attack_family": family,
                    "codec": codec,
                    "score": rng.normal(-2.0 + hardness + robust * codec_penalty[codec] * 0.5, 1.0),
                }
            )
    frame = pd.DataFrame(rows)
    frame["domain"] = frame["codec"].fillna("clean")
    frame["corpus"] = corpus
    frame["split"] = "eval"
    frame["speaker"] = [f"S{i % 12:02d}" for i in range(len(frame))]
    frame["score"] = frame["score"].astype("float32")
    return frame


def _metrics_of(frame: pd.DataFrame) -> dict:
    bona = frame["label"] == "bonafide"
    return compute_metrics(frame.loc[bona, "score"].to_numpy(), frame.loc[~bona, "score"].to_numpy()).to_dict()


def write_eval(path: Path, frame: pd.DataFrame, run: Path, *, ci: bool = False) -> None:
    path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path / "scores.parquet", index=False)
    bona = frame[frame["label"] == "bonafide"]
    by: dict = {"codec": {}, "attack": {}}
    for codec, part in frame.groupby(frame["codec"].fillna("none")):
        by["codec"][codec] = _metrics_of(part)
    for attack, part in frame[frame["label"] == "spoof"].groupby("attack"):
        by["attack"][attack] = _metrics_of(pd.concat([bona, part]))
    metrics = {
        "overall": _metrics_of(frame),
        "by": by,
        "params": {"p_spoof": 0.05, "c_miss": 1.0, "c_fa": 10.0, "score_kind": "raw"},
    }
    if ci:
        eer = metrics["overall"]["eer"]
        metrics["ci"] = {"eer": [eer * 0.8, eer * 1.2], "min_dcf": {"low": 0.1, "high": 0.3}}
    (path / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame([{"codec": k, **v} for k, v in by["codec"].items()]).to_parquet(path / "metrics_by_codec.parquet")
    _record(
        path,
        "metrics",
        {"run": str(run), "manifest": "/data/m.parquet", "by": ["codec", "attack"]},
        ["cm", "eval", "--run", str(run), "--manifest", "/data/m.parquet", "--out", str(path)],
        inputs=[{"path": str(run / "checkpoints" / "best.pt"), "size": 1234, "sha256": "ab" * 32}],
    )


def write_run(path: Path, *, method: str, seed: int, corpus: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "checkpoints").mkdir(exist_ok=True)
    config = {
        "method": method,
        "backbone": "lcnn",
        "corpus": corpus,
        "seed": seed,
        "epochs": 4,
        "domain_columns": ["codec"] if method == "dann" else [],
    }
    (path / "config.json").write_text(json.dumps(config))
    _history(method).to_parquet(path / "history.parquet", index=False)
    _record(
        path,
        "run",
        {"preset": f"toy_lcnn_{method}", "manifest": f"/runs/manifests/{corpus}/manifest.parquet"},
        ["cm", "train", "--preset", f"toy_lcnn_{method}", "--out", str(path)],
    )
    return path


def write_sweep(path: Path, run: Path, *, method: str) -> None:
    rows = [{"condition": "clean", "parameter": None, "severity": None}]
    rows += [{"condition": f"mp3:kbps={k}", "parameter": "kbps", "severity": k} for k in (8, 16, 32, 64)]
    rows += [{"condition": f"noise:snr={s}:type=white", "parameter": "snr", "severity": s} for s in (0, 10, 20)]
    robust = 0.5 if method == "dann" else 1.0
    for row in rows:
        harm = (
            0.0
            if row["parameter"] is None
            else (8 / row["severity"] if row["parameter"] == "kbps" else (20 - row["severity"]) / 40)
        )
        row["eer"] = 0.03 + robust * 0.1 * harm
        row["min_dcf"] = 3 * row["eer"]
        for j, attack in enumerate(ATTACKS):
            row[f"eer_{attack}"] = row["eer"] * (1 + 0.3 * j)
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path / "sweep.parquet", index=False)
    for row in rows[1:3]:  # per-condition sets inside the sweep directory
        sub = path / row["condition"].replace(":", "_").replace("=", "")
        sub.mkdir()
        (sub / "metrics.json").write_text(json.dumps({"overall": {"eer": row["eer"], "min_dcf": row["min_dcf"]}}))
    _record(
        path,
        "metrics",
        {"run": str(run), "degrade": "mp3:kbps=8|16|32|64"},
        ["cm", "eval", "--run", str(run), "--degrade", "mp3:kbps=8|16|32|64", "--out", str(path)],
    )


def write_analyses(root: Path) -> None:
    rng = np.random.default_rng(0)
    rows, geo = [], []
    for layer in LAYERS:
        for attack in ATTACKS:
            base = 8.0 if attack == "A04" else 2.0
            for seed in (0, 1):
                gap = base + rng.normal(0, 0.5)
                rows.append(
                    {
                        "attack": attack,
                        "seed": seed,
                        "layer": layer,
                        "eer_seen": 3.0,
                        "eer_held_out": 3.0 + gap,
                        "gap": gap,
                        "n_bonafide": 60,
                        "n_spoof": 30,
                    }
                )
            geo.append(
                {
                    "attack": attack,
                    "layer": layer,
                    "d_bona": base + rng.normal(0, 1),
                    "cos_bona": rng.uniform(),
                    "d_near_spoof": rng.uniform(1, 3),
                    "bona_axis_proj": rng.normal(),
                }
            )
    loao = root / "loao"
    loao.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(loao / "loao.parquet", index=False)
    pd.DataFrame(geo).to_parquet(loao / "geometry.parquet", index=False)
    correlations = [
        {
            "layer": layer,
            "metric": m,
            "against": "gap_mean",
            "rho": 0.8,
            "ci_low": 0.2,
            "ci_high": 1.0,
            "p_permutation": 0.04,
        }
        for layer in LAYERS
        for m in ("d_bona", "cos_bona")
    ]
    (loao / "loao.json").write_text(json.dumps({"units": "points", "geometry_correlations": correlations}))
    _record(loao, "loao", {"layer": None}, ["cm", "loao", "emb", "--manifest", "m", "--out", str(loao)])

    probes = root / "probes"
    probes.mkdir(parents=True)
    prows = []
    for tag, drop in (("ERM", 0.0), ("DANN", 0.25)):
        for i, layer in enumerate(LAYERS):
            acc = 0.9 - drop * i / len(LAYERS)
            prows.append(
                {
                    "tag": tag,
                    "layer": layer,
                    "target": "codec",
                    "accuracy": acc,
                    "balanced_accuracy": acc,
                    "control_accuracy": 0.3,
                    "selectivity": acc - 0.3,
                    "chance_majority": 0.25,
                    "chance_uniform": 0.25,
                    "n": 720,
                    "folds": 5,
                    "ci_low": acc - 0.03,
                    "ci_high": acc + 0.03,
                }
            )
    pd.DataFrame(prows).to_parquet(probes / "probes.parquet", index=False)
    _record(probes, "probes", {"target": "codec"}, ["cm", "probe", "e", "--target", "codec", "--out", str(probes)])

    cka = root / "cka"
    cka.mkdir(parents=True)
    crows = [
        {
            "layer_a": a,
            "layer_b": b,
            "cka": float(np.exp(-abs(i - j)) * (0.95 if i == j else 1.0)),
            "estimator": "linear",
        }
        for i, a in enumerate(LAYERS)
        for j, b in enumerate(LAYERS)
    ]
    pd.DataFrame(crows).to_parquet(cka / "cka.parquet", index=False)
    _record(cka, "cka", {}, ["cm", "cka", "a", "b", "--out", str(cka)])

    patch = root / "patching"
    patch.mkdir(parents=True)
    sites = LAYERS + ["pre_logit"]
    prow = [
        {
            "site": s,
            "eer": 10.0 - i,
            "min_dcf": 0.3,
            "delta_eer": -1.0 * i,
            "ci_low": -1.0 * i - 0.5,
            "ci_high": -1.0 * i + 0.5,
            "probe_acc": 0.8,
            "noop": i == 0,
        }
        for i, s in enumerate(sites)
    ]
    pd.DataFrame(prow).to_parquet(patch / "patching.parquet", index=False)
    (patch / "patching.json").write_text(json.dumps({"units": "EER and delta_eer in percentage points; delta vs base"}))
    _record(patch, "patching", {}, ["cm", "patch", "--base", "r1", "--donor", "r2", "--out", str(patch)])


def make_study(root: Path, *, corpus: str = "toy", analyses: bool = True, seeds: tuple[int, ...] = (0, 1)) -> Path:
    """ERM (seeds) and DANN runs with evaluations and sweeps; analyses optional. Returns ``root``."""
    for method in ("erm", "dann"):
        for seed in seeds if method == "erm" else seeds[:1]:
            name = f"{method}_s{seed}"
            run = write_run(root / "runs" / name, method=method, seed=seed, corpus=corpus)
            write_eval(root / "eval" / name, _scores(corpus, method, seed), run, ci=method == "erm" and seed == 0)
            if seed == seeds[0]:
                write_sweep(root / "sweeps" / name, run, method=method)
    if analyses:
        write_analyses(root / "analysis")
    return root


def write_demo_layout(
    root: Path, *, seeds=(0, 1, 2), n_bona: int = 240, n_per_attack: int = 120, quality: dict | None = None
) -> Path:
    """DESIGN.md contract 6: DIR/runs/<method>/seed_<s>/ and DIR/eval/<method>/seed_<s>/metrics.json for erm,
    erm_aug and dann (erm_aug and dann share method names with other groups only through their directory),
    with contract-4 ood_gap.split. Planted: dann and erm_aug are clearly better than erm; dann == erm_aug in
    distribution. ``quality`` (method -> how much of the coded-trial penalty it keeps) adds methods."""
    quality = quality or {"erm": 1.0, "erm_aug": 0.4, "dann": 0.4}
    for index, method in enumerate(quality):
        extra = 0 if method in ("erm", "erm_aug", "dann") else 1000 * (index + 1)  # its own noise
        for seed in seeds:
            run = root / "runs" / method / f"seed_{seed}"
            run.mkdir(parents=True, exist_ok=True)
            (run / "checkpoints").mkdir(exist_ok=True)
            config = {
                "train": {
                    "method": {"erm_aug": "erm"}.get(method, method),
                    "backbone": "lcnn",
                    "corpus": "toy",
                    "seed": seed,
                    "augment": "aug_codec_basic" if method != "erm" else None,
                },
                "preset": f"toy_lcnn_{method}",
                "seen_domains": ["C01", "clean"] if method != "erm" else ["clean"],
            }
            (run / "config.json").write_text(json.dumps(config))
            _record(run, "run", {"preset": f"toy_lcnn_{method}"}, ["cm", "train", "--preset", f"toy_lcnn_{method}"])
            rng = np.random.default_rng(100 * seed + len(method) + extra)
            frame = _scores("toy", "erm", seed, n_bona=n_bona, n_per_attack=n_per_attack)
            frame["score"] = (
                frame["score"]
                + np.where(frame["label"] == "bonafide", 1.0 - quality[method], 0.0)
                + rng.normal(0, 0.3, len(frame))
            ).astype("float32")
            path = root / "eval" / method / f"seed_{seed}"
            write_eval(path, frame, run)
            metrics = json.loads((path / "metrics.json").read_text())
            gap = 10.0 * quality[method] + rng.normal(0, 0.5)
            metrics["ood_gap"] = {
                "column": "domain",
                "in_domain": ["clean"],
                "gap_abs_points": gap,
                "seen_domains": config["seen_domains"],
                "split": {"seen": {"gap_abs_points": gap / 2}, "unseen": {"gap_abs_points": gap}},
            }
            (path / "metrics.json").write_text(json.dumps(metrics))
    return root
