"""ERM, ERM + augmentation, DANN and the ``--features`` heads give the histories they gave before the
methods package existed (a regression reference: same seeds, same numbers).

``data/method_reference.json`` was written by the code of commit cb41223 (before the refactor) with
``cd WORKTREE && PYTHONPATH=$PWD OMP_NUM_THREADS=1 python tests/training/test_method_reference.py --write``
and holds, per run, every history column and the dev EER stored in ``checkpoints/best.pt``.
Values are compared to a relative 1e-6 (a changed draw, order or formula moves them by far more;
the runs use one torch thread, as the reference did: with two, losses move by ~5e-6 relative).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

REFERENCE = Path(__file__).parent / "data" / "method_reference.json"
AUG = "clean:0.4, alaw:0.3, telephony:0.3"
BASE = dict(backbone="lcnn", corpus="toy", epochs=2, batch_size=8, lr=1e-3, max_len=1.0, seed=5, warmup_steps=2)
RUNS = {
    "erm": dict(BASE),
    "erm_aug": dict(BASE, augment=AUG),
    "dann": dict(
        BASE,
        method="dann",
        augment=AUG,
        domain_columns=["domain"],
        lambda_schedule="ganin",
        lambda_max=0.3,
        domain_lr_mult=10.0,
        domain_hidden=0,
    ),
}
FEATURE_BASE = dict(backbone="lcnn", corpus="toy", epochs=2, batch_size=8, lr=3e-3, seed=4, warmup_steps=2)
FEATURE_RUNS = {
    "features_erm": dict(FEATURE_BASE),
    "features_dann": dict(
        FEATURE_BASE, method="dann", domain_columns=["speaker"], lambda_schedule="linear", lambda_max=0.5
    ),
}


def _toy(base: Path):
    from cm_cli.data.corpora.toy import build_toy_corpus
    from cm_cli.data.manifests import make_manifest

    build_toy_corpus(base / "toy", size="tiny", seed=0, workers=2)
    return base, make_manifest("toy", base / "manifest", data_root=base, corpus_root=base / "toy", workers=2).path


def _embed(root: Path, manifest: Path, base: Path) -> Path:
    from cm_cli.embedding import embed_manifest
    from cm_cli.models.ssl import save_tiny_ssl

    tiny = save_tiny_ssl("wavlm", base / "wavlm")
    embed_manifest(manifest, base / "emb", backbone=str(tiny), pooling="meanstd", data_root=root, batch_size=16)
    return base / "emb"


def _record(run_dir: Path) -> dict:
    import pandas as pd
    import torch

    history = pd.read_parquet(run_dir / "history.parquet")
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["metrics"]
    return {
        "history": {
            c: [None if isinstance(v, float) and math.isnan(v) else v for v in history[c].tolist()]
            for c in history.columns
        },
        "best_dev_eer": best.get("dev_eer"),
    }


def run_all(root: Path, manifest: Path, base: Path, names=None) -> dict:
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.features import train_features_run
    from cm_cli.training.run import train_run

    out = {}
    for name, kwargs in RUNS.items():
        if names is None or name in names:
            train_run(TrainConfig(**kwargs), manifest, base / name, data_root=root, cache_dir=base / "cache")
            out[name] = _record(base / name)
    wanted = [n for n in FEATURE_RUNS if names is None or n in names]
    if wanted:
        emb = _embed(root, manifest, base)
        for name in wanted:
            config = TrainConfig(**FEATURE_RUNS[name], features=str(emb))
            train_features_run(config, emb, manifest, base / name)
            out[name] = _record(base / name)
    return out


def _same(expected, got, name, column):
    assert len(expected) == len(got), (name, column)
    for i, (a, b) in enumerate(zip(expected, got)):
        if a is None:
            assert b is None or (isinstance(b, float) and math.isnan(b)), (name, column, i, b)
        else:
            assert b == pytest.approx(a, rel=1e-6, abs=1e-9), (name, column, i, a, b)


@pytest.fixture(scope="module")
def fresh(toy_tiny, tmp_path_factory):
    import torch

    root, manifest = toy_tiny
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the reference was written: a second BLAS thread moves losses by ~5e-6 relative
    try:
        return run_all(root, manifest, tmp_path_factory.mktemp("reference"))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", [*RUNS, *FEATURE_RUNS])
def test_history_matches_the_pre_refactor_reference(fresh, name):
    reference = json.loads(REFERENCE.read_text())[name]
    got = fresh[name]
    for column, values in reference["history"].items():
        assert column in got["history"], (name, column)
        _same(values, got["history"][column], name, column)
    _same([reference["best_dev_eer"]], [got["best_dev_eer"]], name, "best_dev_eer")


if __name__ == "__main__" and "--write" in sys.argv:
    import tempfile

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root, manifest = _toy(Path(tmp))
        REFERENCE.parent.mkdir(exist_ok=True)
        REFERENCE.write_text(json.dumps(run_all(root, manifest, Path(tmp)), indent=1) + "\n")
    print(REFERENCE)
