"""The corpus registry: every corpus builds the manifest it built before the registry existed.

The sha256 digests below were computed with the if-chain code (commit cb41223, before the registry)
on the same synthetic layouts; a corpus moved onto the registry must still produce them, and must
still fingerprint the same protocol files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.data.test_protocols import DF21, LA19, LA21, write


def _asvspoof5(root: Path) -> dict:
    from tests.data.test_asvspoof5_manifest import make_tree

    make_tree(root, audio=False)
    return {}


def _la21(root: Path) -> dict:
    write(root / "keys/LA/CM/trial_metadata.txt", LA21)
    (root / "ASVspoof2021_LA_eval/flac").mkdir(parents=True)
    return {"phase": "all"}


def _df21(root: Path) -> dict:
    write(root / "keys/DF/CM/trial_metadata.txt", DF21)
    return {"phase": "all"}


def _la19(root: Path) -> dict:
    for name, rows in LA19.items():
        write(root / "LA" / "ASVspoof2019_LA_cm_protocols" / name, rows)
    write(
        root / "LA" / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt",
        ["bonafide target 1.5", "A11 spoof 0.2"],
    )
    return {}


def _itw(root: Path) -> dict:
    rel = root / "release_in_the_wild"
    rel.mkdir(parents=True)
    (rel / "meta.csv").write_text(
        "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n"
        '2.wav,"Obama, Barack",bona-fide\n'
    )
    return {}


def _mlaad(root: Path) -> dict:
    model_dir = root / "mlaad_v5" / "fake" / "de" / "tts_models_de_thorsten_vits"
    model_dir.mkdir(parents=True)
    (model_dir / "meta.csv").write_text(
        "path|original_file|language|is_original_language|duration|training_data|model_name|architecture|transcript\n"
        "./fake/de/tts_models_de_thorsten_vits/a1.wav|x.wav|de|True|0.2|thorsten|tts_models/de/thorsten/vits|vits|"
        "Hallo\n"
    )
    wavs = root / "de_DE" / "by_book" / "female" / "eva_k" / "grune_haus" / "wavs"
    wavs.mkdir(parents=True)
    (wavs / "grune_haus_01_f000001.wav").write_bytes(b"")
    return {}


# corpus -> (layout builder, sha256 of the manifest's content, protocol files relative to the corpus root)
_A5 = [f"ASVspoof5_protocols/ASVspoof5.{s}.tsv" for s in ("train", "dev.track_1", "eval.track_1")]
BEFORE = {
    "asvspoof5": (_asvspoof5, "d53c2dfca80ad44af3a43554cc333332ba1d4187c07b769c9de2e9da0a51e306", _A5),
    "toy": (_asvspoof5, "426736f7deeeb267002c15594ea7e2938ce555749e826e525f7effadadfcf2cc", _A5),
    "asvspoof2021_la": (
        _la21,
        "3a99a34dd56032823698a379d6a3163c121fc57b93569f83e915d832626710dd",
        ["keys/LA/CM/trial_metadata.txt"],
    ),
    "asvspoof2021_df": (
        _df21,
        "7804232e12496770c374c2594c2f17a84220ca0d63d3a470180c3aed29894d9c",
        ["keys/DF/CM/trial_metadata.txt"],
    ),
    "asvspoof2019_la": (
        _la19,
        "53ec0f379cb38dd5e6c6efb509aa4d9871ed1f0339355be361502296ceb77a6b",
        [f"LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{s}.txt" for s in ("train.trn", "dev.trl", "eval.trl")],
    ),
    "in_the_wild": (
        _itw,
        "2e0b741f09fb739646a0950ad972249ab8b32ac8ddf8ed94378e09ff316cee50",
        ["release_in_the_wild/meta.csv"],
    ),
    "mlaad": (_mlaad, "c890242d227d8e0a93a101eb03634d1e3985be9d7989337f3b847ff8b3b4189c", None),
}
_ASV = {"asvspoof2019_la": {"eval": "LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"}}


def content_digest(df: pd.DataFrame) -> str:
    """sha256 of the column names, dtypes and every value (nulls as None), in row order."""
    values = df.astype(object).where(df.notna(), None).values.tolist()
    text = json.dumps({"columns": list(df.columns), "dtypes": [str(t) for t in df.dtypes], "rows": values}, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def build(corpus: str, tmp_path: Path):
    from cm_cli.data.manifests import prepare_corpus, protocol_files

    root = tmp_path / corpus
    root.mkdir()
    kwargs = BEFORE[corpus][0](root)
    df = prepare_corpus(corpus, root, data_root=tmp_path, **kwargs)
    files = protocol_files(corpus, root, kwargs)
    rel = None if files is None else [Path(f).relative_to(root).as_posix() for f in files]
    return df, rel


@pytest.mark.parametrize("corpus", sorted(BEFORE))
def test_manifest_is_byte_identical_to_the_if_chain_code(corpus, tmp_path):
    df, rel = build(corpus, tmp_path)
    assert content_digest(df) == BEFORE[corpus][1]
    assert rel == BEFORE[corpus][2]
    from cm_cli.data.manifests import asv_score_files

    found = asv_score_files(corpus, tmp_path / corpus)
    assert {k: Path(v).relative_to((tmp_path / corpus).resolve()).as_posix() for k, v in found.items()} == _ASV.get(
        corpus, {}
    )


def test_every_registered_corpus_is_pinned_or_tested_here():
    from cm_cli.data.corpora.registry import CORPORA, corpus_specs
    from cm_cli.data.manifest import CORPORA as SCHEMA_CORPORA

    assert CORPORA == SCHEMA_CORPORA
    assert set(CORPORA) == set(BEFORE) | {"codecfake", "codecfake_plus"}  # tests/data/test_codecfake*.py
    for spec in corpus_specs():
        assert spec.protocol_files is not None or spec.scanned, spec.name
        assert spec.labels and spec.splits and spec.title


def test_a_corpus_that_forgets_its_protocol_files_is_refused():
    from cm_cli.core.errors import CmError
    from cm_cli.data.corpora.registry import CorpusSpec

    with pytest.raises(CmError, match="declares no protocol files"):
        CorpusSpec(name="forgetful", title="t", prepare=lambda root, **_: None)
    assert CorpusSpec(name="scan", title="t", prepare=lambda root, **_: None, scanned=True).scanned


def test_unknown_corpus_is_one_line():
    from cm_cli.core.errors import CmError
    from cm_cli.data.manifests import prepare_corpus

    with pytest.raises(CmError, match="unknown corpus 'nope'") as info:
        prepare_corpus("nope", Path("."), data_root=Path("."))
    assert "codecfake" in info.value.hint
