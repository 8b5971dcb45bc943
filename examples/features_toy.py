"""Worked example (docs/features.md): prosody features as a detector on the toy corpus, clean and coded.

Builds the small toy corpus with the demo's coded eval copies (C05, C08 seen by the
demo's augmentation; G.723.1, G.726 never seen), embeds every utterance with
``--backbone prosody`` (and, given ``--codec DIR``, ``--backbone reconstruction``), then
scores the eval trials two ways, both trained on clean train data only:

- a linear detector (standardised logistic regression; convex, so seeds change nothing):
  pooled EER of clean / seen / unseen trials with a 95% speaker-cluster bootstrap CI, next to
  the same detector on the minimal LFCC front end of docs/toy.md and on both together;
- ``cm train --features`` heads (3 seeds) scored by ``cm eval --run R --features DIR``:
  mean ± sd over seeds, as the demo reports the LFCC-LCNN; once on the raw table
  (``--feature-norm none``) and once standardised (``auto``, the default for feature sets).

Prints one JSON object. Library calls only (the commands' own functions), so it runs
without a shell:  python examples/features_toy.py --data-root /tmp/toy --out /tmp/features_toy
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from cm_cli.degrade.toy_conditions import DEFAULT_TOY_CONDITIONS, OUT_OF_DOMAIN, SEEN

NORMS = {"raw": "none", "standardised": "auto"}  # the example's head variants -> `cm train --feature-norm`


def group_of(domain: str) -> str:
    if domain.lower() in ("clean", "", "-", "none", "nan"):
        return "clean"
    if domain.lower() in {c.lower() for c in SEEN}:
        return "seen"
    if domain.lower() in {c.lower() for c in OUT_OF_DOMAIN}:
        return "unseen"
    raise SystemExit(f"unexpected eval domain {domain!r}")


def lfcc_table(manifest, data_root: Path) -> tuple:
    """(ids, X) of the minimal linear LFCC front end of docs/toy.md (tests/data/test_toy.py), full band."""
    import numpy as np

    from cm_cli.data.audio import load_audio
    from cm_cli.data.manifest import resolve_audio_path
    from tests.data.test_toy import lfcc_stats

    X = np.stack(
        [
            lfcc_stats(load_audio(resolve_audio_path(p, data_root), sample_rate=16000)[0].astype(np.float64))
            for p in manifest["path"].astype(str)
        ]
    )
    return manifest["utt_id"].astype(str).to_numpy(), X


def linear_detector(table: tuple, manifest, *, n_boot: int = 1000) -> dict:
    """Train on clean train rows, score eval rows; pooled EER per group with speaker-bootstrap CIs."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from cm_cli.metrics.summary import eer

    ids, X = table
    position = {u: i for i, u in enumerate(ids.tolist())}
    frame = manifest[manifest["utt_id"].astype(str).isin(position)].reset_index(drop=True)
    rows = np.array([position[u] for u in frame["utt_id"].astype(str)])
    bona = (frame["label"] == "bonafide").to_numpy()
    train = (frame["split"] == "train").to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(X[rows[train]], bona[train])
    evaluation = (frame["split"] == "eval").to_numpy()
    scores = model.decision_function(X[rows[evaluation]])
    part = frame[evaluation].assign(score=scores, group=frame.loc[evaluation, "domain"].astype(str).map(group_of))
    out = {}
    rng = np.random.default_rng(0)
    for name in ("clean", "seen", "unseen"):
        g = part[part["group"] == name]
        b, s = g.loc[g["label"] == "bonafide", "score"].to_numpy(), g.loc[g["label"] == "spoof", "score"].to_numpy()
        speakers = g["speaker"].astype(str).unique()
        draws = []
        for _ in range(n_boot):
            pick = rng.choice(speakers, size=len(speakers))
            sample = g.set_index("speaker").loc[pick]
            bb = sample.loc[sample["label"] == "bonafide", "score"].to_numpy()
            ss = sample.loc[sample["label"] == "spoof", "score"].to_numpy()
            if len(bb) and len(ss):
                draws.append(100 * eer(bb, ss))
        out[name] = {
            "eer": round(100 * float(eer(b, s)), 2),
            "ci": [round(float(np.percentile(draws, q)), 2) for q in (2.5, 97.5)],
            "n_bonafide": int(len(b)),
            "n_spoof": int(len(s)),
        }
    return out


def cm(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "cm_cli", "--json", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"cm {' '.join(args)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


def feature_heads(features: Path, manifest: Path, out: Path, seeds=(0, 1, 2), norm: str = "auto") -> dict:
    """``cm train --features --feature-norm NORM`` + ``cm eval --run --features`` per seed; pooled group EERs,
    mean ± sd."""
    import numpy as np
    import pandas as pd

    from cm_cli.metrics.summary import eer

    per_seed = {}
    cm(
        "train",
        "--features",
        str(features),
        "--manifest",
        str(manifest),
        "--out",
        str(out / "runs"),
        "--epochs",
        "20",
        "--seeds",
        ",".join(map(str, seeds)),
        "--feature-norm",
        norm,
    )
    for seed in seeds:
        run, scored = out / "runs" / f"seed_{seed}", out / "eval" / f"seed_{seed}"
        cm(
            "eval",
            "--run",
            str(run),
            "--features",
            str(features),
            "--manifest",
            str(manifest),
            "--split",
            "eval",
            "--out",
            str(scored),
        )
        frame = pd.read_parquet(scored / "scores.parquet")
        groups = frame["domain"].astype(str).map(group_of)
        per_seed[seed] = {}
        for name in ("clean", "seen", "unseen"):
            g = frame[groups == name]
            per_seed[seed][name] = 100 * float(
                eer(
                    g.loc[g["label"] == "bonafide", "score"].to_numpy(float),
                    g.loc[g["label"] == "spoof", "score"].to_numpy(float),
                )
            )
    summary = {
        name: {
            "mean": round(float(np.mean([v[name] for v in per_seed.values()])), 2),
            "sd": round(float(np.std([v[name] for v in per_seed.values()], ddof=1)), 2),
        }
        for name in ("clean", "seen", "unseen")
    }
    return {"per_seed": per_seed, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default="small")
    parser.add_argument("--codec", type=Path, help="a saved transformers DAC/EnCodec/Mimi directory")
    parser.add_argument("--no-heads", action="store_true", help="skip the cm train --features heads")
    args = parser.parse_args()

    from cm_cli.data.corpora.toy import build_toy_corpus
    from cm_cli.data.manifests import load_manifest, make_manifest
    from cm_cli.degrade.toy_conditions import add_coded_eval_conditions
    from cm_cli.embedding import embed_manifest

    toy = args.data_root / "toy"
    build_toy_corpus(toy, size=args.size, seed=0)
    add_coded_eval_conditions(toy, DEFAULT_TOY_CONDITIONS, seed=0)
    made = make_manifest("toy", args.out / "manifest", data_root=args.data_root, corpus_root=toy, validate=True, seed=0)
    manifest = load_manifest(made.path)
    report = {"manifest": str(made.path), "conditions": sorted(manifest["domain"].astype(str).unique().tolist())}
    sets = {"prosody": (None, args.out / "prosody")}
    if args.codec:
        sets["reconstruction"] = (str(args.codec), args.out / "reconstruction")
    import numpy as np

    from cm_cli.embedding import list_layers, load_layer

    lfcc = lfcc_table(manifest, args.data_root)
    report["lfcc_linear"] = linear_detector(lfcc, manifest)
    for name, (weights, directory) in sets.items():
        result = embed_manifest(made.path, directory, backbone=name, backbone_id=weights, data_root=args.data_root)
        layers = [load_layer(directory, layer) for layer in list_layers(directory)]
        table = (layers[0][0], np.concatenate([x for _, x in layers], axis=1))
        order = {u: i for i, u in enumerate(lfcc[0].tolist())}
        fused = (table[0], np.concatenate([table[1], lfcc[1][[order[u] for u in table[0].tolist()]]], axis=1))
        report[name] = {
            "flags": result.summary.get("flags"),
            "n_rows": result.n_rows,
            "utterances_per_second": result.summary.get("utterances_per_second"),
            "linear": linear_detector(table, manifest),
            "linear_with_lfcc": linear_detector(fused, manifest),
        }
        if not args.no_heads:
            report[name]["heads"] = {
                label: feature_heads(directory, made.path, args.out / name / label, norm=norm)
                for label, norm in NORMS.items()
            }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
