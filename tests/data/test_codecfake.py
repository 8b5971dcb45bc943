"""Codecfake on a synthetic copy in the authors' layout: manifest, label/audio disagreement, download, --list."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.errors import CmError
from cm_cli.data.manifests import prepare_corpus

LABELS = {
    "train": ["p225_001.wav real 0", "p225_001_C2.wav fake C2", "SSB00050001_C3.wav fake C3"],
    "dev": ["p226_002.wav real 0", "p226_002_C1.wav fake C1"],
    "C1": ["p227_003.wav real 0", "p227_003_C1.wav fake 1"],
    "C7": ["p228_004.wav real 0", "p228_004_c7.wav fake 7"],
    "A1": ["a1_0001.wav fake 0"],
}


def wav_bytes(seconds: float = 0.1) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, 0.1 * np.sin(np.arange(int(16000 * seconds)) / 5.0), 16000, format="WAV")
    return buffer.getvalue()


def members(labels=LABELS) -> dict[str, bytes]:
    out = {}
    for subset, rows in labels.items():
        out[f"Codecfake/label/{subset}.txt"] = ("\n".join(rows) + "\n").encode()
        folder = f"Codecfake/{subset}" if subset in ("train", "dev") else f"Codecfake/test/{subset}"
        for row in rows:
            out[f"{folder}/{row.split()[0]}"] = wav_bytes()
    return out


def make_copy(root: Path, labels=LABELS) -> Path:
    for name, data in members(labels).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_manifest_columns_from_the_label_files(tmp_path):
    root = make_copy(tmp_path / "codecfake")
    df = prepare_corpus("codecfake", root, data_root=tmp_path).set_index("utt_id")
    assert len(df) == 10 and set(df["corpus"]) == {"codecfake"}
    assert df["split"].value_counts().to_dict() == {"eval": 5, "train": 3, "dev": 2}
    c7 = df.loc["CF_C7_p228_004_c7"]
    assert (c7["label"], c7["codec"], c7["attack"], c7["subset"], c7["split"]) == ("spoof", "dac", "C7", "C7", "eval")
    assert (c7["codec_id"], c7["codec_q"], c7["domain"], c7["codec_type"]) == ("C7", "8", "dac", "7")
    assert c7["attack_family"] == "neural_codec"
    assert df.loc["CF_C1_p227_003_C1", "codec"] == "soundstream"
    real = df.loc["CF_C7_p228_004"]
    assert real["label"] == "bonafide" and pd.isna(real["codec"]) and real["domain"] == "clean"
    assert pd.isna(real["codec_id"]) and pd.isna(real["codec_q"])
    assert real["speaker"] == "p228" and real["source"] == "vctk" and real["language"] == "en"
    assert real["path"] == "codecfake/Codecfake/test/C7/p228_004.wav"
    train = df.loc["CF_train_SSB00050001_C3"]  # TYPE C3: the same codec as test set C3
    assert (train["codec"], train["codec_id"], train["attack"]) == ("funcodec", "C3", "C3")
    assert train["codec_q"] == "16" and train["speaker"] == "SSB0005" and train["source"] == "aishell3"
    alm = df.loc["CF_A1_a1_0001"]
    assert alm["attack"] == "A1" and pd.isna(alm["codec"]) and alm["attack_family"] == "audio_language_model"
    assert pd.isna(alm["speaker"]) and pd.isna(alm["codec_id"]) and alm["generator"] == "VALL-E"
    assert pd.isna(c7["generator"]) and pd.isna(real["generator"])


def test_codec_names_follow_the_papers_tables():
    """Test set Ci is codec method F0i (arXiv:2405.04880, Sec. III-E; Table I); the tables' cross-checks hold."""
    from cm_cli.data.corpora.codecfake import CODEC_SETS, CODECS, codec_id

    assert tuple(CODECS) == CODEC_SETS and len({c.name for c in CODECS.values()}) == 7
    # Table II's sub-conditions C3-1..C3-4 are FunCodec and C4-1..C4-3 EnCodec configurations
    assert (CODECS["C3"].name, CODECS["C4"].name) == ("funcodec", "encodec")
    # Table I: FunCodec 16 kHz 16 kbit/s 32 quantizers; DAC (F07, the unseen C7) 44 kHz 8 kbit/s 9 quantizers
    assert CODECS["C3"][1:] == (16000, 16.0, 32) and CODECS["C7"][1:] == (44100, 8.0, 9)
    # the codecs cm can also apply go by the degradation registry's names and rates, so a plan that holds
    # Codecfake's C7 out also removes cm's dac augmentation (cm loao --plan --group-by codec)
    from cm_cli.degrade.neural import CODECS as NEURAL
    from cm_cli.degrade.registry import REGISTRY

    for ident in ("C4", "C7"):
        assert CODECS[ident].name in NEURAL and CODECS[ident].name in REGISTRY
    assert [codec_id(t) for t in ("C3", "c3", "F03", "F3", "3", "C8", "F07 ")] == [
        "C3",
        "C3",
        "C3",
        "C3",
        None,
        None,
        "C7",
    ]


def test_label_file_naming_a_missing_file_is_one_line(tmp_path):
    root = make_copy(tmp_path / "codecfake")
    (root / "Codecfake/test/C1/p227_003.wav").unlink()
    with pytest.raises(CmError, match=r"C1.txt: lists p227_003.wav, which is not in .*test/C1$"):
        prepare_corpus("codecfake", root, data_root=tmp_path)


def test_bad_label_value(tmp_path):
    root = make_copy(tmp_path / "codecfake", {"dev": ["a.wav genuine 0"]})
    with pytest.raises(CmError, match=r"dev.txt:1: label 'genuine' is neither real nor fake"):
        prepare_corpus("codecfake", root, data_root=tmp_path)


def test_cli_manifest_and_missing_file_without_traceback(cm_env, run_cm):
    root = make_copy(cm_env / "data" / "codecfake")
    result = run_cm("--json", "manifest", "--corpus", "codecfake", "--out", cm_env / "m", "--validate")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_utterances"] == 10 and payload["splits"]["eval"]["codecs"] == {
        "dac": 1,
        "none": 3,
        "soundstream": 1,
    }
    record = json.loads((cm_env / "m" / "cm.json").read_text())
    fingerprinted = sorted(Path(i["path"]).name for i in record["inputs"])
    assert fingerprinted == ["A1.txt", "C1.txt", "C7.txt", "dev.txt", "train.txt"]
    (root / "Codecfake/dev/p226_002_C1.wav").unlink()
    failed = run_cm("manifest", "--corpus", "codecfake", "--out", cm_env / "m2")
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    assert "lists p226_002_C1.wav" in failed.stderr and not (cm_env / "m2" / "manifest.parquet").exists()


def test_download_from_a_local_mirror_then_manifest(cm_env, run_cm, monkeypatch):
    """The test-set archives served from 127.0.0.1 (Zenodo metadata too) unpack into the layout cm manifest reads."""
    from cm_cli.data.corpora.codecfake import ALM_SETS, CODEC_SETS
    from tests.data.test_download import FileServer, make_zip, md5

    files = members()
    archives = {}
    for subset in (*CODEC_SETS, *ALM_SETS):
        part = {k: v for k, v in files.items() if f"/{subset}/" in k or k.endswith(f"label/{subset}.txt")}
        archives[f"{subset}.zip"] = make_zip(part or {f"Codecfake/label/.{subset}": b""})
    with FileServer() as server:
        server.files.update(archives)
        for record, names in (("13838823", [n for n in archives if n != "C7.zip"]), ("11125029", ["C7.zip"])):
            server.json[f"/api/records/{record}"] = {
                "files": [{"key": n, "checksum": "md5:" + md5(archives[n]), "size": len(archives[n])} for n in names]
            }
        monkeypatch.setattr("cm_cli.data.corpora.fetch.ZENODO_API", server.url + "/api/records")
        result = run_cm("--json", "download", "codecfake", "--subset", "dev", "--base-url", server.url)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["files"]) == 10 and all(f["verified"] for f in payload["files"])
    made = run_cm("--json", "manifest", "--corpus", "codecfake", "--out", cm_env / "m")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["n_utterances"] == 5


def test_list_shows_codecfake_and_its_licence(cm_env, run_cm):
    result = run_cm("--json", "download", "--list")
    entry = next(c for c in json.loads(result.stdout)["corpora"] if c["corpus"] == "codecfake")
    assert "non-commercial" in entry["licence"] and "no derivatives" in entry["licence"]
    names = [f["name"] for f in entry["files"]]
    # the README's records since 2024-09-28: train_split.zip + .z01-.z16 (not the May 2024 .z19)
    assert {"C7.zip", "train_split.zip", "train_split.z16", "dev_split.z02"} <= set(names)
    assert "train_split.z17" not in names and len(names) == len(set(names)) == 10 + 3 + 17
    human = run_cm("download", "--list")
    assert "codecfake" in human.stdout


def test_protocol_and_audio_dir_point_at_a_copy_anywhere(tmp_path):
    root = make_copy(tmp_path / "elsewhere")
    label = root / "Codecfake" / "label" / "C7.txt"
    for audio_dir in (root / "Codecfake", root / "Codecfake" / "test" / "C7"):
        df = prepare_corpus(
            "codecfake", tmp_path / "nowhere", data_root=tmp_path / "data", protocol=[label], audio_dir=audio_dir
        )
        assert list(df["utt_id"]) == ["CF_C7_p228_004", "CF_C7_p228_004_c7"] and set(df["codec"].dropna()) == {"dac"}
        assert df["path"].str.startswith(str((root / "Codecfake" / "test" / "C7").resolve())).all()
    df = prepare_corpus("codecfake", tmp_path / "nowhere", data_root=tmp_path, protocol=[label])
    assert len(df) == 2  # the audio found beside the label folder


def test_plan_by_codec_meets_cms_own_dac_augmentation_under_one_name(tmp_path):
    """Codecfake's unseen C7 is DAC; a policy that augments with cm's dac lets training see it, so the
    codec plan holds out ``dac`` by removing that entry, and the codecs training rows show (C1-C3) by
    removing their rows."""
    from cm_cli.analysis.loao import plan_loao
    from cm_cli.data.manifests import load_manifest

    labels = {
        **LABELS,
        "train": LABELS["train"] + ["p225_009_C1.wav fake C1"],
        "C2": ["p229_005.wav real 0", "p229_005_c2.wav fake 2"],
        "C3": ["p230_006.wav real 0", "p230_006_c3.wav fake 3"],
    }
    root = make_copy(tmp_path / "codecfake", labels)
    df = prepare_corpus("codecfake", root, data_root=tmp_path)
    path = tmp_path / "manifest.parquet"
    df.to_parquet(path, index=False)
    plan_loao(
        path,
        load_manifest(path),
        out=tmp_path / "plan",
        train_preset="toy_lcnn_erm",
        group_by="codec",
        train_args="--augment 'clean:0.5, dac:rate=44:0.5'",
    )
    record = json.loads((tmp_path / "plan" / "loao_plan.json").read_text())
    held = {h["group"]: h for h in record["held_out"]}
    assert sorted(held) == ["dac", "funcodec", "soundstream", "speechtokenizer"]
    counts = df["codec"].value_counts()
    assert held["dac"]["augment_removed"] == ["dac:rate=44:0.5"] and held["dac"]["rows_removed"] == counts["dac"]
    for name in ("funcodec", "soundstream", "speechtokenizer"):
        assert held[name]["rows_removed"] == counts[name] and "augment_removed" not in held[name]
