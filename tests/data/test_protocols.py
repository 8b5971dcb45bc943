"""ASVspoof 2019 LA and 2021 LA/DF protocol parsers, on small files in each exact published format."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.data.manifests import prepare_corpus
from cm_cli.data.taxonomy import attack_families

LA21 = [
    "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
    "LA_0020 LA_E_7294490 g722 loc_tx bonafide bonafide notrim eval",
    "LA_0020 LA_E_1000003 none loc_tx bonafide bonafide notrim progress",
    "LA_0031 LA_E_1000004 opus sin_tx A19 spoof trim hidden",
    "LA_0031 LA_E_1000005 none loc_tx A13 spoof notrim eval",
]
DF21 = [
    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
    "LA_0023 DF_E_2000012 low_mp3 asvspoof bonafide bonafide notrim eval bonafide - - - -",
    "TEF2 DF_E_2000013 high_m4a vcc2020 Task1-team20 spoof notrim eval unknown - - - -",
    "LA_0024 DF_E_2000014 mp3m4a asvspoof A10 spoof trim hidden neural_vocoder_autoregressive - - - -",
]
LA19 = {
    "ASVspoof2019.LA.cm.train.trn.txt": ["LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1271820 - A01 spoof"],
    "ASVspoof2019.LA.cm.dev.trl.txt": ["LA_0069 LA_D_1047731 - - bonafide", "LA_0069 LA_D_1105538 - A05 spoof"],
    "ASVspoof2019.LA.cm.eval.trl.txt": ["LA_0039 LA_E_2834763 - A11 spoof", "LA_0014 LA_E_8877452 - - bonafide"],
}


def write(path: Path, rows: list[str], *, eol: str = "\n", gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (eol.join(rows) + eol).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def la21_tree(root: Path, rows=LA21, **kw) -> Path:
    write(root / "keys/LA/CM/trial_metadata.txt", rows, **kw)
    (root / "ASVspoof2021_LA_eval/flac").mkdir(parents=True)
    return root


def test_2021_la_eval_phase_bonafide_rows_and_columns(tmp_path):
    root = la21_tree(tmp_path / "asvspoof2021_la")
    df = prepare_corpus("asvspoof2021_la", root, data_root=tmp_path).set_index("utt_id")
    assert sorted(df.index) == ["LA_E_1000005", "LA_E_7294490", "LA_E_9332881"]
    bona = df.loc["LA_E_7294490"]
    assert bona["label"] == "bonafide" and pd.isna(bona["attack"]) and pd.isna(bona["attack_family"])
    assert bona["codec"] == "g722" and bona["domain"] == "g722" and bona["transmission"] == "loc_tx"
    spoof = df.loc["LA_E_9332881"]
    assert spoof["attack"] == "A07" and spoof["attack_family"] == attack_families("asvspoof2021_la")["A07"]
    assert spoof["codec"] == "alaw" and spoof["trim"] == "notrim" and spoof["phase"] == "eval"
    uncoded = df.loc["LA_E_1000005"]
    assert pd.isna(uncoded["codec"]) and uncoded["domain"] == "clean"
    assert set(df["split"]) == {"eval"} and set(df["corpus"]) == {"asvspoof2021_la"}
    assert spoof["path"] == "asvspoof2021_la/ASVspoof2021_LA_eval/flac/LA_E_9332881.flac"


@pytest.mark.parametrize(
    "phase,expected",
    [("progress", ["LA_E_1000003"]), ("hidden", ["LA_E_1000004"]), ("all", sorted(r.split()[1] for r in LA21))],
)
def test_2021_la_other_phases(tmp_path, phase, expected):
    root = la21_tree(tmp_path / "asvspoof2021_la")
    df = prepare_corpus("asvspoof2021_la", root, data_root=tmp_path, phase=phase)
    assert sorted(df["utt_id"]) == expected
    if phase == "hidden":
        assert df.loc[0, "trim"] == "trim"


def test_2021_la_gzip_and_crlf_keys(tmp_path):
    root = la21_tree(tmp_path / "asvspoof2021_la", eol="\r\n")
    (root / "keys/LA/CM/trial_metadata.txt").unlink()
    write(root / "keys/LA/CM/trial_metadata.txt.gz", LA21, eol="\r\n", gz=True)
    df = prepare_corpus("asvspoof2021_la", root, data_root=tmp_path, phase="all")
    assert len(df) == 5 and not df["phase"].str.contains("\r").any()


def test_2021_la_wrong_column_count_names_file_and_line(tmp_path):
    root = la21_tree(tmp_path / "asvspoof2021_la", rows=LA21[:2] + ["LA_0001 LA_E_1 alaw ita_tx A07 spoof eval"])
    with pytest.raises(CmError, match=r"trial_metadata.txt:3: expected 8 columns, found 7"):
        prepare_corpus("asvspoof2021_la", root, data_root=tmp_path)


def test_2021_la_phase_with_no_rows_is_a_clear_error(tmp_path):
    root = la21_tree(tmp_path / "asvspoof2021_la", rows=LA21[:1])
    with pytest.raises(CmError, match=r"no rows in phase 'hidden' \(phases present: eval\)"):
        prepare_corpus("asvspoof2021_la", root, data_root=tmp_path, phase="hidden")


def test_2021_df_trailing_columns_vocoder_and_source(tmp_path):
    root = tmp_path / "asvspoof2021_df"
    write(root / "keys/DF/CM/trial_metadata.txt", DF21)
    df = prepare_corpus("asvspoof2021_df", root, data_root=tmp_path, phase="all").set_index("utt_id")
    assert not [c for c in df.columns if c.startswith("df_col")]  # all "-": dropped
    assert df.loc["DF_E_2000011", "vocoder"] == "traditional_vocoder" and df.loc["DF_E_2000011", "source"] == "asvspoof"
    assert pd.isna(df.loc["DF_E_2000011", "codec"]) and df.loc["DF_E_2000011", "domain"] == "clean"
    assert df.loc["DF_E_2000012", "label"] == "bonafide" and pd.isna(df.loc["DF_E_2000012", "attack"])
    assert df.loc["DF_E_2000013", "attack"] == "Task1-team20" and pd.isna(df.loc["DF_E_2000013", "attack_family"])
    assert df.loc["DF_E_2000014", "codec"] == "mp3m4a" and df.loc["DF_E_2000014", "attack_family"] == "neural_waveform"
    assert df.loc["DF_E_2000014", "path"].endswith("ASVspoof2021_DF_eval/flac/DF_E_2000014.flac")


def test_2021_df_filled_trailing_columns_are_kept(tmp_path):
    root = tmp_path / "asvspoof2021_df"
    write(root / "keys/DF/CM/trial_metadata.txt", [DF21[1].replace("- - - -", "x - - -")])
    df = prepare_corpus("asvspoof2021_df", root, data_root=tmp_path)
    assert df.loc[0, "df_col10"] == "x" and "df_col11" not in df.columns


def test_2019_la_default_layout_all_splits(tmp_path):
    la = tmp_path / "asvspoof2019_la" / "LA"
    for name, rows in LA19.items():
        write(la / "ASVspoof2019_LA_cm_protocols" / name, rows)
    df = prepare_corpus("asvspoof2019_la", tmp_path / "asvspoof2019_la", data_root=tmp_path).set_index("utt_id")
    assert df["split"].value_counts().to_dict() == {"train": 2, "dev": 2, "eval": 2}
    assert df.loc["LA_T_1271820", "attack"] == "A01" and df.loc["LA_T_1271820", "attack_family"] == "neural_waveform"
    assert pd.isna(df.loc["LA_T_1138215", "attack"]) and df.loc["LA_T_1138215", "domain"] == "clean"
    assert df.loc["LA_E_2834763", "attack_family"] == "griffin_lim"
    assert df.loc["LA_D_1105538", "path"] == "asvspoof2019_la/LA/ASVspoof2019_LA_dev/flac/LA_D_1105538.flac"


def test_2019_la_single_protocol_with_flat_audio_dir(tmp_path):
    proto = write(
        tmp_path / "p" / "ASVspoof2019.LA.cm.eval.trl.txt", LA19["ASVspoof2019.LA.cm.eval.trl.txt"], eol="\r\n"
    )
    audio = tmp_path / "audio"
    (audio / "flac").mkdir(parents=True)
    df = prepare_corpus(
        "asvspoof2019_la", tmp_path, data_root=tmp_path / "elsewhere", protocol=[proto], audio_dir=audio
    )
    assert set(df["split"]) == {"eval"}
    assert df.loc[0, "path"] == f"{(audio / 'flac').resolve()}/LA_E_2834763.flac"


def test_2019_la_bad_row_and_bad_key(tmp_path):
    proto = write(tmp_path / "ASVspoof2019.LA.cm.dev.trl.txt", ["LA_0069 LA_D_1047731 - bonafide"])
    with pytest.raises(CmError, match=r"dev.trl.txt:1: expected 5 columns, found 4"):
        prepare_corpus("asvspoof2019_la", tmp_path, data_root=tmp_path, protocol=[proto])
    proto = write(tmp_path / "ASVspoof2019.LA.cm.dev.trl.txt", ["LA_0069 LA_D_1047731 - - genuine"])
    with pytest.raises(CmError, match=r"dev.trl.txt:1: unknown key 'genuine'"):
        prepare_corpus("asvspoof2019_la", tmp_path, data_root=tmp_path, protocol=[proto])


def test_2019_la_missing_layout_has_a_hint(tmp_path):
    with pytest.raises(CmError, match="no ASVspoof 2019 LA CM protocols") as info:
        prepare_corpus("asvspoof2019_la", tmp_path, data_root=tmp_path)
    assert "cm download asvspoof2019_la" in info.value.hint


def test_asvspoof5_uncoded_eval_codec_q_zero(tmp_path):
    proto = tmp_path / "asvspoof5" / "ASVspoof5_protocols"
    write(proto / "ASVspoof5.train.tsv", ["T_0001 T_0000000001 F - - - - bonafide bonafide -"])
    write(proto / "ASVspoof5.dev.track_1.tsv", ["D_0001 D_0000000001 M - - - AC1 A09 spoof -"])
    write(
        proto / "ASVspoof5.eval.track_1.tsv",
        [
            "E_0001 E_0000000001 F - 0 - - bonafide bonafide -",
            "E_0002 E_0000000002 M C01 1 E_0000000009 AC3 A17 spoof -",
        ],
        eol="\r\n",
    )
    df = prepare_corpus("asvspoof5", tmp_path / "asvspoof5", data_root=tmp_path).set_index("utt_id")
    assert pd.isna(df.loc["E_0000000001", "codec_q"]) and df.loc["E_0000000001", "domain"] == "clean"
    assert df.loc["E_0000000002", "codec_q"] == "1" and df.loc["E_0000000002", "attack"] == "A17"


def test_taxonomy_tables_are_well_formed():
    from cm_cli.data.taxonomy import TAXONOMY_DIR, attack_descriptions

    for corpus, ids in (
        ("asvspoof2019_la", range(1, 20)),
        ("asvspoof2021_la", range(7, 20)),
        ("asvspoof2021_df", range(7, 20)),
        ("asvspoof5", range(1, 33)),
    ):
        described = attack_descriptions(corpus)
        assert sorted(described) == [f"A{i:02d}" for i in ids], corpus
        for line in (TAXONOMY_DIR / f"{corpus}.tsv").read_text().splitlines():
            if line and not line.startswith("#"):
                assert len(line.split("\t")) == 3, line
    assert attack_families("asvspoof2021_la") == {
        k: v for k, v in attack_families("asvspoof2019_la").items() if int(k[1:]) >= 7
    }
