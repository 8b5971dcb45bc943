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


def test_summary_states_the_reports_holm_family_of_every_method(tmp_path):
    """Issue 24 item 5: the summary quotes every comparison of the report's one Holm family (4 methods: 6 EER and
    6 unseen-codec gap comparisons), with the same adjusted p-values the report prints."""
    from cm_cli.report.render import build_report
    from cm_cli.report.sections_seeds import study_families
    from cm_cli.report.seedstats import format_p
    from tests.report.synth import write_demo_layout

    quality = {"erm": 1.0, "erm_aug": 0.4, "dann": 0.4, "sam": 0.1}
    root = write_demo_layout(tmp_path / "demo", quality=quality)
    family = study_families([root])["toy"]
    assert len(family.tests) == 6 and len(family.gap_tests) == 6
    assert family.name.startswith("one Holm family of 12 seed-level comparisons on toy")
    dirs = {m: {s: root / "eval" / m / f"seed_{s}" for s in (0, 1, 2)} for m in quality}
    summary = demo.study_summary(dirs, family=family)
    assert summary["holm_family"]["size"] == 12 and summary["holm_family"]["name"] == family.name
    lines = [line for line in summary["text"].splitlines() if line.startswith("- ")]
    assert len(lines) == 12
    for test, line in zip(family.all, lines):
        p = format_p(test.p_holm)
        assert f"Holm-adjusted p {p if p.startswith('<') else '= ' + p}" in line
        assert line.startswith(f"- {demo.METHOD_LABELS[test.b]} − {demo.METHOD_LABELS[test.a]}, {test.metric}")
    # the comparisons the verdict is about carry the gap test's adjusted p as well
    sam_line = next(line for line in summary["text"].splitlines() if line.startswith("SAM "))
    assert "Paired test of the unseen-codec gap" in sam_line and "the Holm family of 12 comparisons below" in sam_line
    # the report prints the same family: its label and the same adjusted p-values
    text = build_report([root], tmp_path / "report").markdown.read_text()
    assert family.name in text
    rows = [line for line in text.splitlines() if line.endswith(" 3/3 |")]
    assert len(rows) == 12
    for test, row in zip(family.all, rows):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:2] == [test.a, test.b] and cells[8] == format_p(test.p_holm)
