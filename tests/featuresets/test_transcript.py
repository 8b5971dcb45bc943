"""Transcript features: text measures with known answers, a tiny Whisper rigged to a known decoding, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cm_cli.featuresets.transcript import FEATURES, save_tiny_whisper, text_features


def test_text_features_known_answers():
    f = text_features("Um, I I went to the sto- store, uh, the store", 4.0)
    # words: um i i went to the sto- store uh the store  (11)
    assert f["n_words"] == 11 and f["words_per_s"] == 11 / 4
    assert f["filler_rate"] == pytest.approx(2 / 11) and f["repetition_rate"] == pytest.approx(1 / 11)
    assert f["cutoff_rate"] == pytest.approx(1 / 11) and f["disfluency_rate"] == pytest.approx(4 / 11)
    assert f["type_token_ratio"] == pytest.approx(8 / 11)
    assert f["trigram_repeat"] == 0.0
    loop = text_features("the cat sat " * 5, 3.0)
    assert loop["trigram_repeat"] == pytest.approx(1 - 3 / 13) and loop["compression_ratio"] > 2.0
    empty = text_features("", 1.0)
    assert all(v == 0.0 for v in empty.values())


@pytest.fixture(scope="module")
def whisper_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("whisper")
    return save_tiny_whisper(root / "random"), save_tiny_whisper(root / "rigged", rig=True)


def test_rigged_whisper_decodes_the_planted_answer(whisper_dirs):
    from cm_cli.featuresets.registry import get_feature_set

    extractor = get_feature_set("transcript").build(str(whisper_dirs[1]), options={"max_tokens": 10})
    rng = np.random.default_rng(0)
    batch = extractor.extract([0.1 * rng.standard_normal(16000).astype(np.float32)])
    record = batch.records[0]
    assert record["language"] == "de" and record["language_prob"] > 0.99
    assert record["text"].split() == ["um"] * 10 and record["hit_token_limit"]
    values = dict(zip(FEATURES, batch.vectors["layer_00"][0].tolist()))
    assert values["filler_rate"] == 1.0 and values["repetition_rate"] == pytest.approx(0.9)
    assert values["words_per_s"] == pytest.approx(10.0) and values["logprob_mean"] > -0.01
    assert batch.extra["language"].tolist() == ["de"]


def test_greedy_log_probs_match_a_full_forward(whisper_dirs):
    """The cached step-by-step decoding gives the log-probabilities of one uncached forward pass."""
    import torch

    from cm_cli.featuresets.registry import get_feature_set
    from cm_cli.featuresets.transcript import load_whisper

    extractor = get_feature_set("transcript").build(str(whisper_dirs[0]), options={"max_tokens": 6})
    wave = 0.1 * np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    result = extractor._decode([wave], [1.0])[0]
    model, processor = load_whisper(str(whisper_dirs[0].resolve()), "cpu")
    v = extractor.vocab
    prompt = [v.sot, v.languages[result["language"]], v.transcribe, v.no_timestamps]
    features = processor.feature_extractor([wave], sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        ids = torch.tensor([prompt + result["tokens"]])
        logits = model(input_features=features, decoder_input_ids=ids).logits[0]
    logits = logits.float().clone()
    logits[:, torch.from_numpy(v.suppress)] = -float("inf")
    logp = torch.log_softmax(logits, dim=-1)
    expected = [float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(result["tokens"])]
    assert len(expected) == 6 and np.allclose(result["logprobs"], expected, atol=1e-4)


def test_embed_transcript_cli(cm_env, run_cm, whisper_dirs):
    import pandas as pd

    from tests.commands.test_embed import _prosody_world

    manifest = _prosody_world(cm_env / "audio", n_speakers=1, per_label=2)
    result = run_cm(
        "--json",
        "embed",
        "--manifest",
        manifest,
        "--backbone",
        "transcript",
        "--backbone-id",
        whisper_dirs[1],
        "--out",
        cm_env / "tr",
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(cm_env / "tr" / "embeddings.parquet")
    assert set(table["utt_id"]) == set(pd.read_parquet(manifest)["utt_id"]) and "language" in table.columns
    lines = [json.loads(line) for line in (cm_env / "tr" / "transcripts.jsonl").read_text().splitlines()]
    assert {r["utt_id"] for r in lines} == set(table["utt_id"])
    decoded = [r for r in lines if r["decoded"]]
    assert decoded and all(r["language"] == "de" and set(r["text"].split()) == {"um"} for r in decoded)
    assert json.loads(result.stdout)["flags"]["flag_short"] == 2
    missing = run_cm(
        "embed", "-m", manifest, "--backbone", "transcript", "--backbone-id", cm_env / "none", "--out", cm_env / "t2"
    )
    assert missing.exit_code == 1 and "whisper-tiny" in missing.stderr and not (cm_env / "t2").exists()
