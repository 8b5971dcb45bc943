"""The model zoo: names, the shipped toy detector, checksum-pinned downloads from 127.0.0.1, hub classifiers."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cm_cli.models import zoo


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve(tmp_path):
    """Serve a folder over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reference_wav(path: Path) -> Path:
    sf.write(path, zoo.reference_input(), 16000, subtype="FLOAT")  # float32 WAV: the samples exactly
    return path


def _score(run_cm, *args) -> list[float]:
    result = run_cm("--json", "eval", *args)
    assert result.exit_code == 0, result.output
    return [rec["score"] for rec in json.loads(result.stdout)["scores"]]


# ------------------------------------------------------------------ names


def test_unknown_name_is_one_line_listing_the_names(cm_env, run_cm, tmp_path):
    wav = _reference_wav(tmp_path / "ref.wav")
    result = run_cm("eval", "--model", "aasist_2077", "--audio", wav)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[0]
    assert "aasist_2077" in line and all(name in line for name in zoo.ZOO)
    assert "Traceback" not in result.output
    result = run_cm("download", "--model", "aasist_2077")
    assert result.exit_code == 1 and all(name in result.stderr for name in zoo.ZOO)


def test_list_models_names_licence_paper_and_input(cm_env, run_cm):
    result = run_cm("--json", "download", "--list-models")
    assert result.exit_code == 0, result.output
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert {"toy", "aasist", "aasist_2019", "aasist_l_2019", "xlsr_aasist_la", "xlsr_aasist_df"} <= set(models)
    for m in models.values():
        assert m["licence"] and m["paper"] and m["sample_rate"] == 16000 and m["length_policy"] and m["score"]
        assert m["sha256"] or m["kind"] == "packaged" or m["sha256_note"]  # unpinned entries say why
    assert models["toy"]["cached"] is True  # shipped
    human = run_cm("download", "--list-models")
    assert human.exit_code == 0 and "toy" in human.stdout and "aasist" in human.stdout


def test_both_model_and_run_is_a_usage_error(cm_env, run_cm, tmp_path):
    wav = _reference_wav(tmp_path / "ref.wav")
    result = run_cm("eval", "--model", "toy", "--run", tmp_path, "--audio", wav)
    assert result.exit_code == 2 and "not both" in result.stderr


# ------------------------------------------------------------------ the shipped toy detector


def test_toy_scores_a_file_with_an_empty_cache_and_no_network(cm_env, run_cm, offline, tmp_path):
    t = np.arange(24000) / 16000
    sf.write(tmp_path / "clip.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000)
    assert not (cm_env / "cache").exists()
    result = run_cm("--json", "eval", "--model", "toy", "--audio", tmp_path / "clip.wav", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["scores"]) == 1 and math.isfinite(payload["scores"][0]["score"])
    assert payload["threshold_source"] == "dev_eer"  # the toy ships its dev EER threshold
    assert (tmp_path / "out" / "scores.parquet").is_file()


def test_toy_folder_is_small_self_described_and_matches_its_reference_score():
    import torch

    from cm_cli.models.inference import forward_scores
    from cm_cli.models.loading import load_model

    folder = zoo.toy_dir()
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size < 1_000_000
    card = (folder / "README.md").read_text()
    assert "model-index" in card and "toy" in card.lower() and "synthetic" in card
    config = json.loads((folder / "config.json").read_text())
    assert config["cm_format"] == "cm-export/1" and config["train"]["corpus"] == "toy"
    record = json.loads((folder / "cm.json").read_text())  # travels: no build machine in its provenance
    assert "host" not in record and record["argv"][0] == "cm"
    assert not any(str(v).startswith("/") for v in [*record["argv"], *record["options"]["evaluations"]])
    assert not any(f["path"].startswith("/") for f in record["inputs"])
    card_codecs = {line.split("codec=")[1].strip() for line in card.splitlines() if "group: codec=" in line}
    assert {"g723_1", "g726"} <= card_codecs  # trained and evaluated on the current toy corpus's never-seen codecs
    loaded = load_model(folder)
    score = forward_scores(loaded.model, [torch.from_numpy(zoo.reference_input())])[0]
    assert score == pytest.approx(zoo.reference_score(zoo.ZOO["toy"]), abs=zoo.REFERENCE_TOLERANCE)


# ------------------------------------------------------------------ downloads from 127.0.0.1


def test_aasist_from_a_local_copy_is_verified_and_gives_its_reference_score(
    cm_env, run_cm, fixtures_dir, serve, tmp_path
):
    folder, url = serve
    entry = zoo.ZOO["aasist"]
    shutil.copy(fixtures_dir / "aasist" / "asvspoof5_aasist_baseline.pth", folder / entry.filename)
    not_yet = run_cm("eval", "--model", "aasist", "--audio", _reference_wav(tmp_path / "ref.wav"))
    assert not_yet.exit_code == 1 and "cm download --model aasist" in not_yet.stderr
    result = run_cm("--json", "download", "--model", "aasist", "--base-url", url)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["verified"] is True and record["sha256"] == entry.sha256 and record["status"] == "downloaded"
    assert _sha(Path(record["path"]) / entry.filename) == entry.sha256
    again = run_cm("--json", "download", "--model", "aasist", "--base-url", url)
    assert json.loads(again.stdout)["status"] == "present"
    [score] = _score(run_cm, "--model", "aasist", "--audio", tmp_path / "ref.wav")
    assert score == pytest.approx(entry.reference_score, abs=zoo.REFERENCE_TOLERANCE)


def test_checksum_mismatch_removes_the_file_and_names_the_source(cm_env, run_cm, serve):
    folder, url = serve
    (folder / zoo.ZOO["aasist_2019"].filename).write_bytes(b"not the published weights")
    result = run_cm("download", "--model", "aasist_2019", "--base-url", url)
    assert result.exit_code == 1
    assert "sha256 mismatch" in result.stderr and f"{url}/AASIST.pth" in result.stderr
    assert not (cm_env / "cache" / "zoo" / "aasist_2019").exists()


def test_aasist_l_entry_builds_its_own_architecture(cm_env, run_cm, serve, tmp_path, monkeypatch):
    """A random-initialised AASIST-L file, its checksum pinned here, served locally: the entry's config must fit it."""
    import torch

    from cm_cli.models.aasist import AASISTConfig, build_aasist
    from cm_cli.models.heads import score_from_logits

    folder, url = serve
    torch.manual_seed(0)
    net = build_aasist(AASISTConfig.from_dict(zoo.AASIST_L_OPTIONS)).eval()
    assert sum(p.numel() for p in net.parameters()) == 85306  # AASIST-L, Jung et al. 2022: 85 k parameters
    path = folder / "AASIST-L.pth"
    torch.save(net.state_dict(), path)
    monkeypatch.setitem(
        zoo.ZOO,
        "aasist_l_2019",
        dataclasses.replace(zoo.ZOO["aasist_l_2019"], sha256=_sha(path), size=path.stat().st_size),
    )
    assert run_cm("download", "--model", "aasist_l_2019", "--base-url", url).exit_code == 0
    with torch.inference_mode():
        logits = net.forward_layers(torch.from_numpy(zoo.reference_input())[None]).logits
    expected = float(score_from_logits(logits)[0])
    [score] = _score(run_cm, "--model", "aasist_l_2019", "--audio", _reference_wav(tmp_path / "ref.wav"))
    assert score == pytest.approx(expected, abs=1e-4)


def test_unpinned_ssl_aasist_entry_records_its_checksum_and_loads_without_fairseq(
    cm_env, run_cm, tmp_path, monkeypatch
):
    """A tiny XLS-R + AASIST in the published (fairseq-named) layout, placed by hand: recorded, converted, scored."""
    import torch

    from cm_cli.models.ssl import SSLBackbone, load_ssl_model, save_tiny_ssl
    from cm_cli.models.ssl_aasist import build_ssl_aasist
    from tests.models.test_ssl_aasist import _to_fairseq

    entry = zoo.ZOO["xlsr_aasist_la"]
    assert entry.sha256 is None and "verified offline" in entry.sha256_note
    result = run_cm("download", "--model", "xlsr_aasist_la")
    assert result.exit_code == 1 and "drive.google.com" in result.output and "--base-url" in result.output
    save_tiny_ssl("xlsr", tmp_path / "src", seed=1)
    save_tiny_ssl("xlsr", tmp_path / "dst", seed=2)  # the XLS-R the published weights are read into
    torch.manual_seed(0)
    source = build_ssl_aasist(SSLBackbone(load_ssl_model(str(tmp_path / "src")))).eval()
    published = {"ssl_model.model." + _to_fairseq(k): v for k, v in source.ssl.model.state_dict().items()}
    published.update(source.backend.state_dict())
    manual = tmp_path / "manual"
    manual.mkdir()
    torch.save(published, manual / entry.filename)
    monkeypatch.setitem(
        zoo.ZOO, "xlsr_aasist_la", dataclasses.replace(entry, model_config={"backbone_id": str(tmp_path / "dst")})
    )
    result = run_cm("--json", "download", "--model", "xlsr_aasist_la", "--base-url", manual)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["verified"] is False and record["sha256"] == _sha(manual / entry.filename)
    with torch.inference_mode():
        logits = source(torch.from_numpy(zoo.reference_input())[None])
    [score] = _score(run_cm, "--model", "xlsr_aasist_la", "--audio", _reference_wav(tmp_path / "ref.wav"))
    assert score == pytest.approx(float(logits[0, 1] - logits[0, 0]), abs=1e-4)


@pytest.mark.network
@pytest.mark.parametrize("name", ["aasist", "aasist_2019", "aasist_l_2019"])
def test_official_release_matches_pin_and_reference(cm_env, run_cm, tmp_path, name):
    assert run_cm("download", "--model", name).exit_code == 0
    [score] = _score(run_cm, "--model", name, "--audio", _reference_wav(tmp_path / "ref.wav"))
    assert score == pytest.approx(zoo.ZOO[name].reference_score, abs=zoo.REFERENCE_TOLERANCE)


# ------------------------------------------------------------------ transformers audio classifiers


def _tiny_classifier(folder: Path, labels: list[str]) -> Path:
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={v: i for i, v in enumerate(labels)},
        classifier_proj_size=8,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    transformers.Wav2Vec2ForSequenceClassification(config).eval().save_pretrained(folder)
    return folder


def _logits(folder: Path, wave: np.ndarray) -> np.ndarray:
    import torch
    import transformers

    model = transformers.AutoModelForAudioClassification.from_pretrained(folder).eval()
    with torch.inference_mode():
        return model(input_values=torch.from_numpy(wave)[None]).logits[0].numpy().astype(np.float64)


def test_hub_classifier_with_a_bonafide_label_scores_its_log_odds(cm_env, run_cm, tmp_path):
    folder = _tiny_classifier(tmp_path / "clf", ["spoof", "bonafide"])
    wav = _reference_wav(tmp_path / "ref.wav")
    logits = _logits(folder, zoo.reference_input())
    [score] = _score(run_cm, "--run", folder, "--audio", wav)
    assert score == pytest.approx(logits[1] - logits[0], abs=1e-4)
    [same] = _score(run_cm, "--model", folder, "--audio", wav)
    assert same == pytest.approx(score, abs=1e-6)
    short = tmp_path / "short.wav"  # batched with a longer file (right-padded, masked): scores as it does alone
    sf.write(short, zoo.reference_input()[:9000], 16000, subtype="FLOAT")
    together = _score(run_cm, "--run", folder, "--audio", wav, short, "--batch-size", "2")
    [alone] = _score(run_cm, "--run", folder, "--audio", short)
    assert sorted(together) == pytest.approx(sorted([score, alone]), abs=1e-4)


def test_hub_classifier_without_a_bonafide_label_needs_one(cm_env, run_cm, tmp_path):
    folder = _tiny_classifier(tmp_path / "clf3", ["fake", "real", "partial"])
    wav = _reference_wav(tmp_path / "ref.wav")
    refused = run_cm("eval", "--run", folder, "--audio", wav)
    assert refused.exit_code == 1 and "--bonafide-label" in refused.stderr
    assert "fake, real, partial" in refused.stderr and "Traceback" not in refused.output
    wrong = run_cm("eval", "--model", folder, "--bonafide-label", "human", "--audio", wav)
    assert wrong.exit_code == 1 and "not a label" in wrong.stderr
    logits = _logits(folder, zoo.reference_input())
    [score] = _score(run_cm, "--model", folder, "--bonafide-label", "real", "--audio", wav)
    others = np.logaddexp(logits[0], logits[2])
    assert score == pytest.approx(logits[1] - others, abs=1e-4)


# ------------------------------------------------------------------ --model in the other commands


def test_model_option_in_embed_eval_manifest_and_patch(cm_env, run_cm, tmp_path):
    import pandas as pd

    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    rng = np.random.default_rng(1)
    rows = []
    for i in range(6):
        label = "bonafide" if i % 2 else "spoof"
        sf.write(tmp_path / f"u{i}.wav", (0.2 * rng.standard_normal(12000)).astype(np.float32), 16000)
        rows.append(
            {
                "utt_id": f"u{i}",
                "path": str(tmp_path / f"u{i}.wav"),
                "label": label,
                "attack": None if label == "bonafide" else "A01",
                "speaker": "s",
                "split": "eval",
                "corpus": "toy",
                "codec": None,
                "codec_q": None,
                "domain": "clean",
            }
        )
    manifest = tmp_path / "m.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    result = run_cm(
        "--json", "embed", "--model", "toy", "--manifest", manifest, "--split", "eval", "--out", tmp_path / "emb"
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "emb" / "embeddings.parquet")
    assert len(table) == 6 and {"pooled", "pre_logit"} <= set(table.columns)
    result = run_cm("--json", "eval", "--model", "toy", "--manifest", manifest, "--out", tmp_path / "ev")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overall"]["n_bonafide"] == 3
    scored = pd.read_parquet(tmp_path / "ev" / "scores.parquet")
    [direct] = _score(run_cm, "--model", "toy", "--audio", tmp_path / "u0.wav")
    assert float(scored.set_index("utt_id").loc["u0", "score"]) == pytest.approx(direct, abs=1e-5)
    planned = run_cm(
        "--json",
        "--dry-run",
        "patch",
        "--base-model",
        "toy",
        "--donor-model",
        "toy",
        "--manifest",
        manifest,
        "--out",
        tmp_path / "patch",
    )
    assert planned.exit_code == 0, planned.output
    assert str(zoo.toy_dir()) in planned.stdout
