"""ASVspoof 5 protocols -> manifest, on a hand-made corpus tree in the exact on-disk layout."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.errors import CmError
from cm_cli.data.manifests import make_manifest, prepare_corpus, stratified_subset

TRAIN = [
    "T_0001 T_0000000001 F - - - - bonafide bonafide -",
    "T_0001 T_0000000002 F - - - AC1 A01 spoof -",
    "T_0002 T_0000000003 M - - - AC2 A02 spoof -",
]
DEV = ["D_0001 D_0000000001 M - - - - bonafide bonafide -", "D_0001 D_0000000002 M - - - AC1 A09 spoof -"]
EVAL = [
    "E_0001 E_0000000001 F - 0 - - bonafide bonafide -",
    "E_0001 E_0000000002 F C05 3 E_0000000001 - bonafide bonafide -",
    "E_0002 E_0000000003 M C01 1 E_0000000004 AC3 A17 spoof -",
]


def make_tree(root: Path, *, train=TRAIN, dev=DEV, evaluation=EVAL, eol="\n", audio=True) -> Path:
    proto = root / "ASVspoof5_protocols"
    proto.mkdir(parents=True)
    for name, rows in (
        ("ASVspoof5.train.tsv", train),
        ("ASVspoof5.dev.track_1.tsv", dev),
        ("ASVspoof5.eval.track_1.tsv", evaluation),
    ):
        (proto / name).write_bytes((eol.join(rows) + eol).encode())
    if audio:
        for folder, rows in (("flac_T", train), ("flac_D", dev), ("flac_E_eval", evaluation)):
            (root / folder).mkdir()
            for row in rows:
                sf.write(root / folder / f"{row.split()[1]}.flac", np.zeros(1600, dtype=np.float32), 16000)
    return root


def test_schema_nulls_domain_and_extra_columns(tmp_path):
    root = make_tree(tmp_path / "asvspoof5")
    df = prepare_corpus("asvspoof5", root, data_root=tmp_path)
    assert list(df.columns[:13]) == [
        "utt_id",
        "path",
        "label",
        "attack",
        "attack_family",
        "speaker",
        "split",
        "corpus",
        "codec",
        "codec_q",
        "domain",
        "duration",
        "sample_rate",
    ]
    assert {"gender", "codec_seed", "attack_tag"} <= set(df.columns)
    row = df.set_index("utt_id")
    assert pd.isna(row.loc["T_0000000001", "attack"]) and row.loc["T_0000000002", "attack"] == "A01"
    assert pd.isna(row.loc["E_0000000001", "codec"]) and pd.isna(row.loc["E_0000000001", "codec_q"])
    assert row.loc["E_0000000001", "domain"] == "clean"
    assert row.loc["E_0000000002", "codec"] == "C05" and row.loc["E_0000000002", "codec_q"] == "3"
    assert row.loc["E_0000000002", "domain"] == "C05"
    assert row.loc["E_0000000002", "codec_seed"] == "E_0000000001"
    assert row.loc["T_0000000001", "path"] == "asvspoof5/flac_T/T_0000000001.flac"
    assert sorted(df["split"].unique()) == ["dev", "eval", "train"]


def test_crlf_line_endings_are_accepted(tmp_path):
    root = make_tree(tmp_path / "asvspoof5", eol="\r\n", audio=False)
    df = prepare_corpus("asvspoof5", root, data_root=tmp_path)
    assert len(df) == 8 and not df["tmp"].astype(str).str.contains("\r").any() if "tmp" in df else True
    assert not df["label"].str.contains("\r").any()


def test_wrong_column_count_names_file_and_line(tmp_path):
    root = make_tree(tmp_path / "asvspoof5", train=TRAIN + ["T_0003 T_0000000009 F - - - - bonafide"], audio=False)
    with pytest.raises(CmError, match=r"ASVspoof5.train.tsv:4: expected 10 columns, found 8"):
        prepare_corpus("asvspoof5", root, data_root=tmp_path)


def test_unknown_key_value(tmp_path):
    root = make_tree(
        tmp_path / "asvspoof5", dev=DEV + ["D_0002 D_0000000003 M - - - - bonafide genuine -"], audio=False
    )
    with pytest.raises(CmError, match=r"dev.track_1.tsv:3: unknown KEY value 'genuine'"):
        prepare_corpus("asvspoof5", root, data_root=tmp_path)


def test_duplicate_utterance_ids(tmp_path):
    root = make_tree(tmp_path / "asvspoof5", dev=DEV + [DEV[0]], audio=False)
    with pytest.raises(CmError, match="duplicate utt_id.*D_0000000001"):
        prepare_corpus("asvspoof5", root, data_root=tmp_path)


def test_validate_probes_audio_and_missing_audio_is_an_error(tmp_path):
    root = make_tree(tmp_path / "asvspoof5")
    result = make_manifest("asvspoof5", tmp_path / "m", data_root=tmp_path, validate=True)
    df = pd.read_parquet(result.path)
    assert (df["sample_rate"] == 16000).all() and np.allclose(df["duration"], 0.1)
    (root / "flac_D" / "D_0000000002.flac").unlink()
    with pytest.raises(CmError, match="1 audio file.*missing.*D_0000000002"):
        make_manifest("asvspoof5", tmp_path / "m2", data_root=tmp_path, validate=True)
    assert not (tmp_path / "m2" / "manifest.parquet").exists()


def test_rerun_skips_and_other_options_refuse(tmp_path):
    make_tree(tmp_path / "asvspoof5", audio=False)
    first = make_manifest("asvspoof5", tmp_path / "m", data_root=tmp_path)
    assert not first.skipped and first.counts["splits"]["eval"]["n"] == 3
    again = make_manifest("asvspoof5", tmp_path / "m", data_root=tmp_path)
    assert again.skipped and again.counts == first.counts
    with pytest.raises(CmError, match="different options"):
        make_manifest("asvspoof5", tmp_path / "m", data_root=tmp_path, subset=4)


def test_stratified_subset_keeps_strata_and_is_seeded():
    rows = [
        {"split": s, "label": lab, "attack": a, "codec": None, "utt_id": f"{s}{lab}{a}{i}"}
        for s in ("train", "eval")
        for lab, a in (("bonafide", None), ("spoof", "A01"), ("spoof", "A02"))
        for i in range(50)
    ]
    df = pd.DataFrame(rows)
    sub = stratified_subset(df, 30, seed=1)
    assert len(sub) == 30
    assert sub.groupby(["split", "label", "attack"], dropna=False).size().tolist() == [5] * 6
    assert sub["utt_id"].tolist() == stratified_subset(df, 30, seed=1)["utt_id"].tolist()
    assert sub["utt_id"].tolist() != stratified_subset(df, 30, seed=2)["utt_id"].tolist()


def test_vectorised_protocol_parse_equals_the_row_reader(tmp_path):
    """The pandas C parse (corpus scale) gives the very fields of the file:line row reader."""
    from cm_cli.data.corpora.asvspoof5 import read_protocol, read_protocol_table

    path = tmp_path / "ASVspoof5.eval.track_1.tsv"
    lines = []
    for i in range(500):
        codec = "-" if i % 3 == 0 else f"C{1 + i % 11:02d}"
        lines.append(
            f"E_{i % 17:04d} E_{i:010d} {'F' if i % 2 else 'M'} {codec} {0 if codec == '-' else 1 + i % 5} "
            f"{'-' if codec == '-' else f'E_{i // 3:010d}'} AC{1 + i % 3} "
            f"{'bonafide' if i % 5 == 0 else f'A{17 + i % 16}'} "
            f"{'bonafide' if i % 5 == 0 else 'spoof'} -"
        )
    path.write_text("\r\n".join(lines) + "\r\n")
    table = read_protocol_table(path)
    assert table.values.tolist() == read_protocol(path)
    path.write_text("\n".join(lines[:3] + [lines[3] + " extra"] + lines[4:]) + "\n")
    with pytest.raises(CmError, match=r":4: expected 10 columns, found 11"):
        read_protocol_table(path)
    path.write_text("\n".join(lines[:7] + [" ".join(lines[7].split()[:9])] + lines[8:]) + "\n")
    with pytest.raises(CmError, match=r":8: expected 10 columns, found 9"):
        read_protocol_table(path)


def test_rerun_is_found_done_before_parsing_and_a_changed_protocol_is_rebuilt(tmp_path, monkeypatch):
    """A finished manifest is reused without parsing the protocols (seconds at 1M rows); an edited
    protocol at the same path is not "already complete"."""
    import cm_cli.data.manifests as manifests

    root = make_tree(tmp_path / "asvspoof5", audio=False)
    first = make_manifest("asvspoof5", tmp_path / "m", data_root=tmp_path)

    def no_parse(*args, **kwargs):
        raise AssertionError("the protocols were parsed for a finished manifest")

    with monkeypatch.context() as patch:
        patch.setattr(manifests, "prepare_corpus", no_parse)
        assert make_manifest("asvspoof5", tmp_path / "m", data_root=tmp_path).skipped
    eval_protocol = root / "ASVspoof5_protocols" / "ASVspoof5.eval.track_1.tsv"
    if not eval_protocol.exists():
        eval_protocol = root / "ASVspoof5.eval.track_1.tsv"
    lines = eval_protocol.read_text().splitlines()
    eval_protocol.write_text("\n".join(lines[:-1]) + "\n")
    again = make_manifest("asvspoof5", tmp_path / "m", data_root=tmp_path)
    assert not again.skipped and again.counts["splits"]["eval"]["n"] == first.counts["splits"]["eval"]["n"] - 1
