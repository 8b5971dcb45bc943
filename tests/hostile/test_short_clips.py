"""A clip shorter than the receptive field in manifest mode: scored or embedded, but flagged (issue 29 item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from cm_cli.core.artifacts import write_parquet
from cm_cli.data.manifest import normalise_manifest
from tests.hostile.media import tone


def _manifest(root: Path, name: str, *, tiny: bool) -> Path:
    rows = []
    for i in range(4):
        sf.write(root / f"u{i}.wav", tone(0.4 + 0.1 * i, freq=150.0 + 50 * i), 16000)
        rows.append({"utt_id": f"u{i}", "path": f"u{i}.wav", "label": "bonafide" if i % 2 else "spoof"})
    if tiny:  # 10 ms: below every front end's receptive field (at least 400 samples = 25 ms)
        sf.write(root / "tiny.wav", tone(0.01), 16000)
        rows.append({"utt_id": "tiny", "path": "tiny.wav", "label": "bonafide"})
    for row in rows:
        row.update(attack=None if row["label"] == "bonafide" else "A01", speaker="s", split="eval", corpus="toy")
        row.update(codec=None, codec_q=None, domain="clean")
    manifest = root / name
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    return manifest


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    root = tmp_path_factory.mktemp("short")
    torch.manual_seed(0)
    run = root / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")))
    return root, run, _manifest(root, "with_tiny.parquet", tiny=True), _manifest(root, "plain.parquet", tiny=False)


def test_embed_flags_a_10ms_clip_short_and_leaves_other_rows_unchanged(setup, run_cm, cm_env):
    from cm_cli.embedding import load_layer, read_utt_ids

    root, run, with_tiny, plain = setup
    out, ref = cm_env / "emb", cm_env / "emb_plain"
    common = ["--data-root", root, "embed", "--checkpoint", run, "--fp32"]
    result = run_cm(*common, "--manifest", with_tiny, "--out", out)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "1 utterance(s) shorter than the front end's receptive field" in text and "'short' column" in text
    table = pq.read_table(out / "embeddings.parquet", columns=["utt_id", "short"]).to_pandas().set_index("utt_id")
    assert table["short"].dtype == bool and table.index[table["short"]].tolist() == ["tiny"]
    summary = json.loads((out / "cm.json").read_text())["summary"]
    assert summary["n_short"] == 1 and summary["short"] == ["tiny"]
    assert run_cm(*common, "--manifest", plain, "--out", ref).exit_code == 0
    assert not pq.read_table(ref / "embeddings.parquet", columns=["short"]).column("short").to_numpy().any()
    ids, x = load_layer(out, "pooled")
    ids_ref, x_ref = load_layer(ref, "pooled")
    assert list(read_utt_ids(out)).count("tiny") == 1
    order = {u: i for i, u in enumerate(ids)}
    np.testing.assert_array_equal(x[[order[u] for u in ids_ref]], x_ref)  # normal rows: same numbers as before


def test_eval_run_on_a_manifest_flags_a_10ms_clip_in_json_too(setup, run_cm, cm_env):
    root, run, with_tiny, _ = setup
    out = cm_env / "ev"
    result = run_cm("--data-root", root, "--json", "eval", "--run", run, "--manifest", with_tiny, "--out", out)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["condition"]["n_short"] == 1
    assert any("shorter than the model's receptive field" in w for w in payload["warnings"])
    scores = pd.read_parquet(out / "scores.parquet").set_index("utt_id")
    assert scores["short"].to_dict() == {"u0": False, "u1": False, "u2": False, "u3": False, "tiny": True}
    assert np.isfinite(scores["score"]).all()


def test_scores_cached_before_the_short_column_existed_are_scored_again(setup, run_cm, cm_env):
    root, run, with_tiny, _ = setup
    args = ["--data-root", root, "eval", "--run", run, "--manifest", with_tiny]
    assert run_cm(*args, "--out", cm_env / "first").exit_code == 0
    [cached] = [p for p in (cm_env / "cache" / "scores").glob("*.parquet") if not p.name.endswith(".failures.parquet")]
    old = pd.read_parquet(cached)
    write_parquet(old.drop(columns=["short"]).assign(score=old["score"] + 1.0), cached)  # an old-format entry
    assert run_cm(*args, "--out", cm_env / "second").exit_code == 0
    scores = pd.read_parquet(cm_env / "second" / "scores.parquet").set_index("utt_id")
    assert scores["short"].sum() == 1  # rescored, not read from the old entry (whose scores were shifted)
    first = pd.read_parquet(cm_env / "first" / "scores.parquet").set_index("utt_id")
    np.testing.assert_array_equal(scores.loc[first.index, "score"].to_numpy(), first["score"].to_numpy())
