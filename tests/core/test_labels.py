"""The one label map (issue 18 audit): every corpus's spelling, one answer, unknown values named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.core.labels import ASVSPOOF_KEYS, IN_THE_WILD_LABELS, is_bonafide, label_class, label_classes


@pytest.mark.parametrize(
    "text, expected",
    [
        ("bonafide", "bonafide"),
        ("spoof", "spoof"),  # ASVspoof 2019/2021/5 keys, official packages
        ("bona-fide", "bonafide"),  # In-the-Wild meta.csv
        ("Bonafide", "bonafide"),
        (" SPOOF ", "spoof"),
        ("Bona-Fide", "bonafide"),  # score files made by anyone
    ],
)
def test_every_corpus_spelling_maps_to_one_class(text, expected):
    assert label_class(text) == expected
    assert label_classes([text, "spoof" if expected == "bonafide" else "bonafide"], source="s").tolist()[0] == expected


@pytest.mark.parametrize("text", ["genuine", "real", "fake", "bona fide", "1", "0", "true", "", None])
def test_guesses_are_not_made(text):
    # numbers mean bona fide in some toolkits and spoof in others; other words are not in any protocol
    assert label_class(text) is None


def test_official_protocol_keys_are_exact():
    assert label_class("bonafide", ASVSPOOF_KEYS, exact=True) == "bonafide"
    assert label_class("Bonafide", ASVSPOOF_KEYS, exact=True) is None
    assert label_class("bona-fide", ASVSPOOF_KEYS, exact=True) is None
    assert label_class("bona-fide", IN_THE_WILD_LABELS) == "bonafide"


def test_unknown_and_missing_labels_are_errors_naming_the_value():
    with pytest.raises(CmError, match=r"keys\.csv: unknown label value\(s\) 'genuine', 'real' in column 'key'") as info:
        label_classes(["bonafide", "genuine", "real", "spoof"], source="keys.csv", column="key")
    assert info.value.option == ("bonafide_value",) and "name the bona fide value" in info.value.hint
    with pytest.raises(CmError, match="unknown label value.*missing values"):
        label_classes(pd.Series(["bonafide", None, "spoof"]), source="s")
    with pytest.raises(CmError, match="unknown label value.*'1'"):
        is_bonafide(["1", "0"], source="s")


def test_a_named_bona_fide_value_makes_every_other_value_spoof():
    got = label_classes(["0", "1", "1"], source="s", bonafide_value="0")
    assert got.tolist() == ["bonafide", "spoof", "spoof"]
    with pytest.raises(CmError, match="only one class"):
        label_classes(["1", "1"], source="s", bonafide_value="0")
    with pytest.raises(CmError, match=r"1 missing value\(s\) in label column 'label' \(first at row 1\)"):
        label_classes(pd.Series(["0", None]), source="s", bonafide_value="0")


def test_is_bonafide_mask():
    mask = is_bonafide(pd.Series(["bona-fide", "spoof", "bonafide"]), source="s")
    assert mask.dtype == bool and mask.tolist() == [True, False, True]


def test_readers_metrics_and_report_agree(tmp_path):
    # the readers (score/key files), the metrics (evaluate_scores) and the report's mask use the one map
    from cm_cli.evaluation.readers import read_scores
    from cm_cli.metrics.report import evaluate_scores
    from cm_cli.report.evaldata import bona_mask

    (tmp_path / "itw.csv").write_text("file,score,label\na.wav,2,bona-fide\nb.wav,1,spoof\nc.wav,0,Spoof\n")
    table = read_scores(tmp_path / "itw.csv")
    assert table["label"].tolist() == ["bonafide", "spoof", "spoof"]
    df = pd.DataFrame({"score": [2.0, 1.0, 0.0], "label": ["bona-fide", "spoof", "spoof"]})
    assert evaluate_scores(df)["overall"]["eer"] == 0.0
    assert bona_mask(df["label"]).tolist() == [True, False, False]
    with pytest.raises(CmError, match="unknown label value.*'genuine'"):
        bona_mask(pd.Series(["genuine", "spoof"]))  # was silently spoof
    with pytest.raises(CmError, match="unknown label value.*'real'"):
        evaluate_scores(pd.DataFrame({"score": [1.0, 0.0], "label": ["real", "spoof"]}))
    assert np.array_equal(is_bonafide(df["label"], source="s"), bona_mask(df["label"]))
