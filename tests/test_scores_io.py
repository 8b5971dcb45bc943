"""Reading external score and key files: formats, protocol keys, joins and their errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.evaluation.readers import ScoreColumns, join_key, load_scores, read_key, read_scores


def test_fixture_tsv_with_integer_label_compared_as_text(fixtures_dir):
    df = load_scores(
        fixtures_dir / "scores" / "asvspoof5_eval50k_w2v2_erm.tsv", ScoreColumns(label_col="y_task", bonafide_value="0")
    )
    assert len(df) == 50000
    assert (df.label == "bonafide").sum() == 10183
    assert df.utt_id.iloc[0] == "E_0002302238" and df.score.dtype == np.float64


def test_csv_and_parquet_and_integer_column(tmp_path):
    frame = pd.DataFrame({"utt_id": ["a", "b", "c"], "score": [0.5, -1.0, 2.0], "y": [0, 1, 0]})
    frame.to_csv(tmp_path / "s.csv", index=False)
    frame.to_parquet(tmp_path / "s.parquet")
    for name in ("s.csv", "s.parquet"):
        df = read_scores(tmp_path / name, ScoreColumns(label_col="y", bonafide_value="0"))
        assert df.label.tolist() == ["bonafide", "spoof", "bonafide"]
    floaty = frame.assign(y=[0.0, 1.0, None])
    floaty.to_parquet(tmp_path / "f.parquet")
    with pytest.raises(CmError, match="missing value"):
        read_scores(tmp_path / "f.parquet", ScoreColumns(label_col="y", bonafide_value="0"))


def test_official_score_file_with_key(tmp_path):
    (tmp_path / "score.txt").write_text("LA_E_1 1.5\nLA_E_2 -0.5\nLA_E_3 0.25\n")
    (tmp_path / "key.txt").write_text("filename\tcm-label\nLA_E_1\tbonafide\nLA_E_2\tspoof\nLA_E_3\tspoof\n")
    df = load_scores(tmp_path / "score.txt", key=tmp_path / "key.txt")
    assert df.set_index("utt_id").label.to_dict() == {"LA_E_1": "bonafide", "LA_E_2": "spoof", "LA_E_3": "spoof"}
    # official header form too
    (tmp_path / "score.tsv").write_text("filename\tcm-score\nLA_E_1\t1.5\nLA_E_2\t-0.5\nLA_E_3\t0.25\n")
    df = load_scores(tmp_path / "score.tsv", key=tmp_path / "key.txt")
    assert df.score.tolist() == [1.5, -0.5, 0.25]


@pytest.mark.parametrize(
    "lines,expect",
    [
        # ASVspoof 5 protocol (10 columns)
        (
            ["E_0001 E_001 F C04 2 E_9 AC2 A18 spoof -", "E_0002 E_002 M - 0 - - bonafide bonafide -"],
            {"codec": ["C04", None], "attack": ["A18", "bonafide"]},
        ),
        # ASVspoof 2019 LA (5 columns)
        (["LA_0039 E_001 - A11 spoof", "LA_0040 E_002 - - bonafide"], {"attack": ["A11", None]}),
        # ASVspoof 2021 LA key (8 columns)
        (
            ["LA_0009 E_001 alaw ita_tx A07 spoof notrim eval", "LA_0010 E_002 none loc bonafide bonafide notrim eval"],
            {"codec": ["alaw", "none"]},
        ),
        # ASVspoof 2021 DF key (13 columns)
        (
            [
                "LA_0043 E_001 mp3m4a asvspoof A09 spoof notrim eval traditional_vocoder - - - -",
                "LA_0044 E_002 nocodec vcc2020 - bonafide notrim eval bonafide - - - -",
            ],
            {"codec": ["mp3m4a", "nocodec"]},
        ),
    ],
)
def test_protocol_files_as_keys(tmp_path, lines, expect):
    (tmp_path / "key").write_text("\n".join(lines) + "\n")
    key = read_key(tmp_path / "key")
    assert key.utt_id.tolist() == ["E_001", "E_002"]
    assert key.label.tolist() == ["spoof", "bonafide"]
    for column, values in expect.items():
        assert key[column].tolist() == values


def test_join_errors_name_counts_and_examples(tmp_path):
    scores = pd.DataFrame({"utt_id": ["a", "b", "b"], "score": [1.0, 2.0, 3.0]})
    key = pd.DataFrame({"utt_id": ["a", "b"], "label": ["bonafide", "spoof"]})
    with pytest.raises(CmError, match="1 duplicate id"):
        join_key(scores, key)
    scores = pd.DataFrame({"utt_id": ["a", "c", "d"], "score": [1.0, 2.0, 3.0]})
    with pytest.raises(
        CmError, match=r"2 scored id\(s\) missing from key \(e.g. c, d\); 1 key id\(s\) without a score"
    ):
        join_key(scores, key)


def test_file_errors(tmp_path):
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(CmError, match="empty file"):
        read_scores(tmp_path / "empty.tsv")
    (tmp_path / "x.csv").write_text("utt,val,lab\na,1,bonafide\n")
    with pytest.raises(CmError) as info:
        read_scores(tmp_path / "x.csv")
    assert "no score column" in info.value.message and "utt, val, lab" in info.value.hint
    with pytest.raises(CmError, match="no score column 'nope'"):
        read_scores(tmp_path / "x.csv", ScoreColumns(score_col="nope"))
    (tmp_path / "y.csv").write_text("utt_id,score,label\na,1,bonafide\nb,2,fake\n")
    with pytest.raises(CmError, match="unknown label value.*'fake'"):
        read_scores(tmp_path / "y.csv")
    with pytest.raises(CmError, match="only one class"):
        read_scores(tmp_path / "y.csv", ScoreColumns(bonafide_value="genuine"))
    with pytest.raises(CmError, match="no such file"):
        read_scores(tmp_path / "missing.csv")


def test_fast_reader_keeps_text_ids_bom_crlf_and_gzip(tmp_path):
    """The pyarrow CSV path reads what the pandas path read: ids as text (leading zeros kept), a BOM and
    CRLF line ends, gzip; a ragged file falls back to pandas and its one-line error."""
    import gzip

    from cm_cli.evaluation.readers import read_any_table, read_scores

    path = tmp_path / "s.tsv"
    path.write_bytes(b"\xef\xbb\xbffilename\tcm-score\r\n007\t0.5\r\n010\t-1e-3\r\n")
    df = read_scores(path, labels=False)
    assert list(df["utt_id"]) == ["007", "010"] and list(df["score"]) == [0.5, -0.001]
    packed = tmp_path / "s.tsv.gz"
    packed.write_bytes(gzip.compress(b"filename\tcm-score\nE_1\t1.25\n"))
    assert read_scores(packed, labels=False)["score"].tolist() == [1.25]
    ragged = tmp_path / "r.tsv"
    ragged.write_text("filename\tcm-score\nE_1\t1.0\nE_2\t2.0\textra\n")
    with pytest.raises(CmError, match="not a readable score/key table"):
        read_any_table(ragged)
