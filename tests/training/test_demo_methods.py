"""`cm demo --methods`: every offered method has a toy preset the training library accepts, and the verdict
compares each added method with ERM-aug (the study itself runs in tests/test_demo.py)."""

from __future__ import annotations

import pytest

from cm_cli.core.errors import UsageError
from cm_cli.recipes import demo


def test_default_study_stays_the_three_methods_and_names_are_checked():
    assert demo.demo_methods(None) == ("erm", "erm_aug", "dann")
    assert demo.demo_methods("erm,erm_aug,dann,sam,coral") == ("erm", "erm_aug", "dann", "sam", "coral")
    with pytest.raises(UsageError, match="unknown method 'adam'"):
        demo.demo_methods("erm,adam")


@pytest.mark.parametrize("method", list(demo.DEMO_PRESETS))
def test_every_demo_method_preset_builds_a_valid_config(method, tmp_path):
    config = demo._train_config(
        demo.DEMO_PRESETS[method], seed=1, augment_manifest=tmp_path / "m.parquet", epochs=1
    ).validate()
    expected = "erm" if method == "erm_aug" else method
    assert config.method == expected and config.epochs == 1
    if method in ("coral", "mmd", "groupdro", "dann"):
        assert config.domain_columns == ["domain"]


def test_verdict_compares_each_added_method_with_erm_aug():
    def stats(mean):
        return {"stats": {"unseen": {"mean": mean, "sd": 0.5, "n": 3}}}

    text = demo._verdict({"erm": stats(30.0), "erm_aug": stats(20.0), "sam": stats(10.0), "coral": stats(20.2)})
    assert "SAM lowers the never-seen-codec EER by 10.0 points against ERM-aug" in text
    assert "CORAL vs ERM-aug" in text and "does not show that CORAL adds to augmentation" in text
