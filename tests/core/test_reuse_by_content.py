"""Skip-if-done keyed on input content, through `cm embed` (issue 19 item 1: it keyed on the manifest path)."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.artifacts import read_table, write_parquet


def _manifest(root, ids):
    rows = []
    for i, utt in enumerate(ids):
        path = root / f"{utt}.flac"
        sf.write(path, (0.1 * np.random.default_rng(i).standard_normal(8000)).astype(np.float32), 16000)
        rows.append(
            {
                "utt_id": utt,
                "path": str(path),
                "label": "bonafide" if i % 2 else "spoof",
                "split": "eval",
                "corpus": "toy",
                "speaker": "s",
            }
        )
    from cm_cli.data.manifest import normalise_manifest

    write_parquet(normalise_manifest(pd.DataFrame(rows)), root / "manifest.parquet")
    return root / "manifest.parquet"


def test_embed_redoes_a_manifest_rewritten_at_the_same_path(cm_env, run_cm):
    torch = pytest.importorskip("torch")
    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    torch.manual_seed(0)
    run = cm_env / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")))
    manifest = _manifest(cm_env, ["a0", "a1", "a2"])
    args = ("--json", "embed", "-m", manifest, "--checkpoint", run, "--out", cm_env / "emb", "--workers", "0")
    first = run_cm(*args)
    assert first.exit_code == 0, first.output
    assert json.loads(run_cm(*args).stdout)["skipped"]  # same content: reused
    _manifest(cm_env, ["b0", "b1"])  # another manifest written at the same path
    again = json.loads(run_cm(*args).stdout)
    assert not again["skipped"] and again["n_rows"] == 2
    assert sorted(read_table(cm_env / "emb", name="embeddings").utt_id) == ["b0", "b1"]
