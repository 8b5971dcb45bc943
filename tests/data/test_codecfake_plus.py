"""CodecFake+ on a synthetic copy in the authors' protocol formats: manifest, taxonomy, missing audio, download."""

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

# the field layouts of the authors' metadata/ lists (ResponsibleGenAI/CodecFake-Source-Tracing), own rows
PROTOCOLS = {
    "metadata/training/train_mult_learn.txt": [
        "p260 p260_075 - REAL REAL REAL bonafide",
        "p260 p260_075_Encodec_24b24k - Trad TIME MVQ spoof",
        "p286 p286_132 - REAL REAL REAL bonafide",
        "p286 p286_132_SemantiCodec_1.40kbps_16k - SEM FREQ MVQ spoof",
    ],
    "metadata/training/dev_mult_learn.txt": [
        "p226 p226_261 - REAL REAL REAL bonafide",
        "p226 p226_261_wavtokenizer_small_320_24k_4096 - Trad FREQ SVQ spoof",
    ],
    "metadata/evaluation/CoRS_ALL.txt": [
        "p227 p227_260 - - bonafide",
        "p227 p227_260_Encodec_24b24k - - spoof",
        "p228 p228_241_SemantiCodec_1.40kbps_16k - - spoofs",  # as line 7554 of the authors' file is spelled
        "p228 p228_242_snac_24khz - - spoof",  # a codec no training list names: no taxonomy to fill in
    ],
    "metadata/evaluation/CoSG_ALL.txt": [
        "VIOLA audios_entts_ref_14 - bonafide",
        "VIOLA audios_entts_gen_14 - spoof",
        "MASKGCT MASKGCT_1_prompt - - bonafide",
        "MASKGCT MASKGCT_1_gen - MVQ spoof",
    ],
}


def wav_bytes(fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, 0.1 * np.sin(np.arange(1600) / 5.0), 16000, format=fmt)
    return buffer.getvalue()


def make_copy(root: Path, protocols=PROTOCOLS, flac: tuple[str, ...] = ("p227_260",)) -> Path:
    for name, lines in protocols.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("\n".join(lines) + "\n")
        for line in lines:
            fields = line.split()
            folder = root / ("SLMdemos_16k/" + fields[0] if "CoSG" in name else "all_data_16k")
            folder.mkdir(parents=True, exist_ok=True)
            ext = ".flac" if fields[1] in flac else ".wav"
            (folder / (fields[1] + ext)).write_bytes(wav_bytes("FLAC" if ext == ".flac" else "WAV"))
    return root


def test_manifest_rows_taxonomy_and_splits(tmp_path):
    root = make_copy(tmp_path / "codecfake_plus")
    df = prepare_corpus("codecfake_plus", root, data_root=tmp_path).set_index("utt_id")
    assert len(df) == 14 and df["split"].value_counts().to_dict() == {"eval": 8, "train": 4, "dev": 2}
    spoof = df.loc["CFP_p260_075_Encodec_24b24k"]
    assert (spoof["codec"], spoof["attack"], spoof["speaker"], spoof["subset"]) == (
        "Encodec_24b24k",
        "Encodec_24b24k",
        "p260",
        "cors",
    )
    assert (spoof["codec_aux"], spoof["codec_dec"], spoof["codec_vq"]) == ("Trad", "TIME", "MVQ")
    assert spoof["path"] == "codecfake_plus/all_data_16k/p260_075_Encodec_24b24k.wav"
    bona = df.loc["CFP_p260_075"]
    assert bona["label"] == "bonafide" and pd.isna(bona["codec"]) and pd.isna(bona["codec_vq"])
    assert bona["domain"] == "clean" and bona["source"] == "vctk"
    # CoRS_ALL carries no taxonomy: a codec's comes from the training lists; 'spoofs' is read as spoof
    typo = df.loc["CFP_p228_241_SemantiCodec_1.40kbps_16k"]
    assert typo["label"] == "spoof" and (typo["codec_aux"], typo["codec_dec"]) == ("SEM", "FREQ")
    assert pd.isna(df.loc["CFP_p228_242_snac_24khz", "codec_vq"])
    assert df.loc["CFP_p227_260", "path"].endswith(".flac")  # .flac first, as the authors' loaders look
    gen = df.loc["CFP_MASKGCT_MASKGCT_1_gen"]
    assert (gen["attack"], gen["generator"], gen["codec_vq"], gen["subset"]) == ("MASKGCT", "MASKGCT", "MVQ", "cosg")
    assert gen["attack_family"] == "audio_language_model" and pd.isna(gen["codec"]) and pd.isna(gen["speaker"])
    prompt = df.loc["CFP_VIOLA_audios_entts_ref_14"]
    assert prompt["label"] == "bonafide" and pd.isna(prompt["attack"]) and prompt["generator"] == "VIOLA"
    assert prompt["path"] == "codecfake_plus/SLMdemos_16k/VIOLA/audios_entts_ref_14.wav"


def test_missing_audio_and_bad_rows_are_one_line(tmp_path):
    root = make_copy(tmp_path / "codecfake_plus")
    (root / "SLMdemos_16k/VIOLA/audios_entts_gen_14.wav").unlink()
    with pytest.raises(CmError, match=r"CoSG_ALL.txt: lists audios_entts_gen_14, which is not in .*VIOLA"):
        prepare_corpus("codecfake_plus", root, data_root=tmp_path)
    (root / "SLMdemos_16k/VIOLA/audios_entts_gen_14.wav").write_bytes(wav_bytes())
    (root / "all_data_16k/p228_242_snac_24khz.wav").unlink()  # listed by CoRS_ALL, after the training lists
    with pytest.raises(CmError, match=r"CoRS_ALL.txt: lists p228_242_snac_24khz, which is not in .*all_data_16k"):
        prepare_corpus("codecfake_plus", root, data_root=tmp_path)
    bad = dict(PROTOCOLS)
    bad["metadata/training/dev_mult_learn.txt"] = ["p226 p226_261 - REAL REAL bonafide"]
    with pytest.raises(CmError, match=r"dev_mult_learn.txt:1: expected 7 .* found 6"):
        prepare_corpus("codecfake_plus", make_copy(tmp_path / "b", bad), data_root=tmp_path)
    bad["metadata/training/dev_mult_learn.txt"] = ["p226 p226_261 - REAL REAL REAL genuine"]
    with pytest.raises(CmError, match=r"label 'genuine' is neither bonafide nor spoof"):
        prepare_corpus("codecfake_plus", make_copy(tmp_path / "c", bad), data_root=tmp_path)
    with pytest.raises(CmError, match=r"none of train_mult_learn.txt"):
        prepare_corpus("codecfake_plus", tmp_path / "empty", data_root=tmp_path)


def test_balanced_list_by_protocol_replaces_the_default_and_twice_is_refused(tmp_path):
    root = make_copy(tmp_path / "codecfake_plus")
    balanced = root / "metadata/training/train_mult_learn_bal_vq.txt"
    balanced.write_text("p260 p260_075 - REAL REAL REAL bonafide\np260 p260_075_Encodec_24b24k - Trad TIME MVQ spoof\n")
    cors_all = root / "metadata/evaluation/CoRS_ALL.txt"
    df = prepare_corpus("codecfake_plus", root, data_root=tmp_path, protocol=[balanced, cors_all])
    assert df["split"].value_counts().to_dict() == {"eval": 4, "train": 2}
    with pytest.raises(CmError, match="listed twice"):
        prepare_corpus(
            "codecfake_plus",
            root,
            data_root=tmp_path,
            protocol=[root / "metadata/training/train_mult_learn.txt", balanced],
        )
    with pytest.raises(CmError, match="not a CodecFake\\+ protocol file name"):
        prepare_corpus("codecfake_plus", root, data_root=tmp_path, protocol=[root / "SLMdemos_16k" / "x.txt"])


def test_cli_manifest_fingerprints_the_lists_and_loao_plans_by_codec(cm_env, run_cm):
    make_copy(cm_env / "data" / "codecfake_plus")
    result = run_cm("--json", "manifest", "--corpus", "codecfake_plus", "--out", cm_env / "m", "--validate")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_utterances"] == 14
    record = json.loads((cm_env / "m" / "cm.json").read_text())
    assert sorted(Path(i["path"]).name for i in record["inputs"]) == [
        "CoRS_ALL.txt",
        "CoSG_ALL.txt",
        "dev_mult_learn.txt",
        "train_mult_learn.txt",
    ]
    plan = run_cm(
        "loao",
        "--plan",
        "--group-by",
        "codec",
        "--manifest",
        cm_env / "m" / "manifest.parquet",
        "--train-preset",
        "toy_lcnn_erm",
        "--out",
        cm_env / "plan",
    )
    assert plan.exit_code == 0, plan.output
    held = {h["group"] for h in json.loads((cm_env / "plan" / "loao_plan.json").read_text())["held_out"]}
    assert held == {"Encodec_24b24k", "SemantiCodec_1.40kbps_16k"}  # in training and in eval; snac only in eval
    # the paper's taxonomy level: hold out every codec with a frequency-domain decoder at once
    by_decoder = run_cm(
        "loao",
        "--plan",
        "--group-by",
        "codec_dec",
        "--manifest",
        cm_env / "m" / "manifest.parquet",
        "--train-preset",
        "toy_lcnn_erm",
        "--out",
        cm_env / "plan_dec",
    )
    assert by_decoder.exit_code == 0, by_decoder.output
    record = json.loads((cm_env / "plan_dec" / "loao_plan.json").read_text())
    assert {h["group"] for h in record["held_out"]} == {"FREQ", "TIME"}


@pytest.fixture
def unsized_source(monkeypatch):
    """The corpus's download record without its pinned sizes: the copies a test serves are synthetic."""
    import dataclasses

    from cm_cli.data.corpora import codecfake_plus
    from cm_cli.data.corpora.sources import CORPUS_SOURCES

    source = codecfake_plus.CODECFAKE_PLUS
    unsized = tuple(dataclasses.replace(f, size=None) for f in source.files)
    monkeypatch.setitem(CORPUS_SOURCES, "codecfake_plus", dataclasses.replace(source, files=unsized))


def test_download_protocols_from_a_local_mirror_then_manifest(cm_env, run_cm, unsized_source):
    """The protocol lists land in downloads/, where cm manifest finds them; the audio folders are the user's."""
    from tests.data.test_download import FileServer

    root = make_copy(cm_env / "data" / "codecfake_plus")
    served = {Path(name).name: (root / name).read_bytes() for name in PROTOCOLS}
    for name in PROTOCOLS:
        (root / name).unlink()
    with FileServer() as server:
        server.files.update(served)
        result = run_cm("--json", "download", "codecfake_plus", "--subset", "protocols", "--base-url", server.url)
    assert result.exit_code == 0, result.output
    names = sorted(f["name"] for f in json.loads(result.stdout)["files"])
    assert names == sorted(served)
    made = run_cm("--json", "manifest", "--corpus", "codecfake_plus", "--out", cm_env / "m")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["n_utterances"] == 14


def test_list_shows_codecfake_plus_with_its_licence_and_pinned_lists(cm_env, run_cm):
    result = run_cm("--json", "download", "--list")
    entry = next(c for c in json.loads(result.stdout)["corpora"] if c["corpus"] == "codecfake_plus")
    assert "MIT" in entry["licence"]
    from cm_cli.data.corpora.codecfake_plus import CODECFAKE_PLUS

    urls = [f.url for f in CODECFAKE_PLUS.files_for("protocols")]
    assert len(urls) == 4 and all("/91516e0e1d8f73ab802e998079fd3fc6c82f9149/" in u for u in urls)
    assert all(f.size for f in CODECFAKE_PLUS.files_for("protocols"))


def test_audio_dir_is_the_parent_or_the_cors_folder_itself(tmp_path):
    root = make_copy(tmp_path / "elsewhere")
    lists = [root / "metadata/training/train_mult_learn.txt", root / "metadata/evaluation/CoSG_ALL.txt"]
    df = prepare_corpus("codecfake_plus", tmp_path / "nowhere", data_root=tmp_path, protocol=lists, audio_dir=root)
    assert len(df) == 8 and df["path"].str.startswith("elsewhere/").all()
    cors = [root / "metadata/training/train_mult_learn.txt"]
    alone = prepare_corpus(
        "codecfake_plus", tmp_path / "nowhere", data_root=tmp_path, protocol=cors, audio_dir=root / "all_data_16k"
    )
    assert alone["path"].str.startswith("elsewhere/all_data_16k/").all()


def test_dev_subset_unpacks_the_cosg_archive_into_the_layout_the_manifest_reads(cm_env, run_cm, unsized_source):
    """--subset dev adds the CoSG tar.xz (unpacked in place: SLMdemos_16k/MODEL/); a CoSG-only manifest from it."""
    import tarfile

    from tests.data.test_download import FileServer

    staged = make_copy(cm_env / "staged")
    served = {Path(name).name: (staged / name).read_bytes() for name in PROTOCOLS}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        tar.add(staged / "SLMdemos_16k", arcname="SLMdemos_16k")
    served["CodecFake_plus_CoSG.tar.xz"] = buffer.getvalue()
    with FileServer() as server:
        server.files.update(served)
        result = run_cm("--json", "download", "codecfake_plus", "--subset", "dev", "--base-url", server.url)
    assert result.exit_code == 0, result.output
    root = cm_env / "data" / "codecfake_plus"
    assert (root / "SLMdemos_16k" / "MASKGCT" / "MASKGCT_1_gen.wav").is_file()
    made = run_cm(
        "--json",
        "manifest",
        "--corpus",
        "codecfake_plus",
        "--protocol",
        root / "downloads" / "CoSG_ALL.txt",
        "--out",
        cm_env / "m",
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["n_utterances"] == 4
