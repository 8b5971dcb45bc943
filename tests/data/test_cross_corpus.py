"""In-the-Wild and MLAAD (+ M-AILABS) in their exact layouts -> the one manifest schema, through `cm manifest`."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.data.corpora.in_the_wild import read_meta


def _wav(path, seconds=0.2, rate=16000):
    import numpy as np
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * rate)) / 7.0), rate)
    return path


def _itw(root):
    rel = root / "release_in_the_wild"
    rel.mkdir(parents=True)
    (rel / "meta.csv").write_text(
        "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n"
        '2.wav,"Obama, Barack",bona-fide\n'
    )
    for i in range(3):
        _wav(rel / f"{i}.wav")
    return rel


def test_in_the_wild_manifest_from_meta_csv(cm_env, run_cm):
    rel = _itw(cm_env / "elsewhere")
    result = run_cm(
        "--json",
        "manifest",
        "--corpus",
        "in_the_wild",
        "--protocol",
        rel / "meta.csv",
        "--audio-dir",
        rel,
        "--out",
        cm_env / "itw",
        "--validate",
    )
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(cm_env / "itw" / "manifest.parquet")
    assert df["label"].tolist() == ["spoof", "bonafide", "bonafide"]
    assert df["speaker"].tolist() == ["Alec Guinness", "Alec Guinness", "Obama, Barack"]
    assert set(df["corpus"]) == {"in_the_wild"} and set(df["split"]) == {"eval"}
    assert df["attack"].isna().all() and (df["language"] == "en").all() and df["duration"].notna().all()
    payload = json.loads(result.stdout)
    assert payload["corpus"] == "in_the_wild"


def test_in_the_wild_from_the_data_root_layout(cm_env, run_cm):
    _itw(cm_env / "data" / "in_the_wild")
    result = run_cm("manifest", "--corpus", "in_the_wild", "--out", cm_env / "itw2")
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(cm_env / "itw2" / "manifest.parquet")) == 3


def test_in_the_wild_bad_rows(tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("file,speaker,label\n0.wav,A,fake\n")
    with pytest.raises(CmError, match=r"meta.csv:2: label 'fake'"):
        read_meta(meta)
    meta.write_text("name,who,label\n")
    with pytest.raises(CmError, match="expected the header file,speaker,label"):
        read_meta(meta)


def test_mlaad_with_mailabs(cm_env, run_cm):
    root = cm_env / "data" / "mlaad"
    model_dir = root / "mlaad_v5" / "fake" / "de" / "tts_models_de_thorsten_vits"
    model_dir.mkdir(parents=True)
    (model_dir / "meta.csv").write_text(
        "path|original_file|language|is_original_language|duration|training_data|model_name|architecture|transcript\n"
        "./fake/de/tts_models_de_thorsten_vits/a1.wav|x.wav|de|True|0.2|thorsten|tts_models/de/thorsten/vits|vits|Hallo\n"
        "./fake/de/tts_models_de_thorsten_vits/a2.wav|y.wav|de|True|0.2|thorsten|tts_models/de/thorsten/vits|vits|Welt\n"
    )
    _wav(model_dir / "a1.wav"), _wav(model_dir / "a2.wav")
    _wav(root / "de_DE" / "by_book" / "female" / "eva_k" / "grune_haus" / "wavs" / "grune_haus_01_f000001.wav")
    result = run_cm("manifest", "--corpus", "mlaad", "--out", cm_env / "ml", "--validate")
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(cm_env / "ml" / "manifest.parquet").set_index("utt_id")
    spoof = df[df["label"] == "spoof"]
    assert len(spoof) == 2 and set(spoof["attack"]) == {"tts_models/de/thorsten/vits"}
    assert set(spoof["attack_family"]) == {"vits"} and set(df["language"]) == {"de"}
    bona = df[df["label"] == "bonafide"]
    assert bona["speaker"].tolist() == ["eva_k"] and bona["duration"].notna().all()


def test_in_the_wild_download_from_a_mirror_then_manifest(cm_env, run_cm):
    """The release zip served from 127.0.0.1 unpacks into the layout `cm manifest --corpus in_the_wild` reads."""
    import io

    import numpy as np
    import soundfile as sf

    from tests.data.test_download import FileServer, make_zip

    def wav_bytes() -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, 0.1 * np.sin(np.arange(3200) / 5.0), 16000, format="WAV")
        return buffer.getvalue()

    archive = make_zip(
        {
            "release_in_the_wild/meta.csv": b"file,speaker,label\n0.wav,A,spoof\n1.wav,B,bona-fide\n",
            "release_in_the_wild/0.wav": wav_bytes(),
            "release_in_the_wild/1.wav": wav_bytes(),
        }
    )
    with FileServer() as server:
        server.files["release_in_the_wild.zip"] = archive
        result = run_cm("--json", "download", "in_the_wild", "--base-url", server.url)
    assert result.exit_code == 0, result.output
    assert any("no published checksum" in w or "size only" in w for w in json.loads(result.stdout)["warnings"])
    made = run_cm("manifest", "--corpus", "in_the_wild", "--validate", "--out", cm_env / "itw")
    assert made.exit_code == 0, made.output
    df = pd.read_parquet(cm_env / "itw" / "manifest.parquet")
    assert df["label"].tolist() == ["spoof", "bonafide"] and df["sample_rate"].tolist() == [16000, 16000]
