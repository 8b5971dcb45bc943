"""The ASVspoof 5 conditions table: levels as in the real protocol, uniform level draws, CODEC/CODEC_Q/bitrate_kbps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cm_cli.core.errors import CmError
from cm_cli.degrade.conditions import (
    CONDITIONS,
    condition_fields,
    get_condition,
    pick_condition,
    pick_level,
    spec_bitrate_kbps,
)
from cm_cli.degrade.registry import validate_spec

FIXTURES = Path(__file__).resolve().parents[2].parent.parent / "shared" / "fixtures" / "scores"


def _protocol_levels() -> dict[str, set[str]]:
    files = sorted(Path("/work/shared/fixtures/scores").glob("*.tsv")) or sorted(FIXTURES.glob("*.tsv"))
    if not files:
        pytest.skip("no real ASVspoof 5 score fixtures here")
    table = pd.read_csv(files[0], sep="\t", dtype=str, usecols=["codec", "codec_q"])
    table = table[table["codec"].str.match(r"^C\d\d$", na=False)]
    return {codec: set(group["codec_q"]) for codec, group in table.groupby("codec")}


def test_every_condition_has_the_levels_the_real_protocol_has():
    real = _protocol_levels()
    assert set(real) == set(CONDITIONS)  # C01-C11, no more, no fewer
    for cid, condition in CONDITIONS.items():
        assert {str(level.q) for level in condition.levels} == real[cid], cid
    assert (
        all(len(c.levels) == 5 for cid, c in CONDITIONS.items() if cid != "C11") and len(CONDITIONS["C11"].levels) == 8
    )


def test_levels_are_valid_specs_ordered_by_bitrate():
    for cid, condition in CONDITIONS.items():
        assert [level.q for level in condition.levels] == list(range(1, len(condition.levels) + 1))
        for level in condition.levels:
            validate_spec(level.spec, check_available=False)
            assert spec_bitrate_kbps(level.spec) == level.kbps, (cid, level)
        rates = [level.kbps for level in condition.levels]
        if cid != "C11":
            assert rates == sorted(rates) and len(set(rates)) == len(rates), cid


def test_published_ranges_are_the_level_endpoints():
    # the database paper's ranges (docs/degrade.md); C05's 45 is not a Layer III bitrate, LAME codes it at 48
    ends = {
        "C01": (6, 30),
        "C02": (6.6, 23.05),
        "C03": (5.75, 34.2),
        "C04": (1.5, 24),
        "C05": (48, 256),
        "C06": (16, 128),
        "C07": (1.5, 24),
        "C08": (4, 20),
        "C09": (4.75, 12.2),
        "C10": (3.95, 24.6),
    }
    for cid, (low, high) in ends.items():
        levels = CONDITIONS[cid].levels
        assert (levels[0].kbps, levels[-1].kbps) == (low, high), cid
    assert [lv.kbps for lv in CONDITIONS["C01"].levels[:2]] == [6, 12]  # codec.config.csv rows C1/1 and C1/2


def test_c05_switches_mpeg_version_inside_the_condition():
    from cm_cli.degrade.codecs import _mp3_rate

    rates = [_mp3_rate(16000, {"kbps": level.kbps}) for level in CONDITIONS["C05"].levels]
    assert rates == [16000, 16000, 16000, 44100, 44100]


def test_level_draw_is_uniform_and_reproducible():
    n = 6000
    for cid in ("C05", "C11"):
        k = len(get_condition(cid).levels)
        counts = np.bincount([pick_level(cid, seed=0, utt_id=f"E_{i:07d}").q - 1 for i in range(n)], minlength=k)
        expected = n / k
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 25.0, (cid, counts)  # df 4 / 7: p(chi2 > 25) < 1e-3
    assert pick_level("c07", seed=3, utt_id="x") == pick_level("C07", seed=3, utt_id="x")
    assert [s.name for s in pick_condition("C07", seed=0, utt_id="x").steps] == ["mp3", "encodec"]
    assert len({pick_level("C05", seed=s, utt_id="x").q for s in range(40)}) == 5  # the seed matters


def test_unknown_condition_names_the_valid_ones():
    with pytest.raises(CmError, match="unknown condition") as err:
        get_condition("C12")
    assert "C11" in err.value.hint


def test_condition_fields_and_bitrates():
    level = CONDITIONS["C07"].level(2)
    assert condition_fields("C07", level.spec) == ("C07", "2")
    assert spec_bitrate_kbps(level.spec) == 3.0  # the delivered (EnCodec) stream
    assert condition_fields("mp3:kbps=32", "mp3:kbps=32") is None
    assert spec_bitrate_kbps("mp3:kbps=32") == 32.0
    assert spec_bitrate_kbps("telephony") is None
    assert spec_bitrate_kbps("g722") == 64.0 and spec_bitrate_kbps("gsm") == 13.0 and spec_bitrate_kbps("alaw") == 64.0
    assert spec_bitrate_kbps("bluetooth:mode=msbc") == 60.8 and spec_bitrate_kbps("bluetooth:mode=sbc:kbps=96") == 96.0


def test_degraded_manifest_columns(tmp_path):
    from cm_cli.core.artifacts import read_table
    from cm_cli.degrade.corpus import degrade_manifest

    from .test_corpus import make_manifest

    manifest = make_manifest(tmp_path / "src", n=6, bad=False)
    done = degrade_manifest(manifest, tmp_path / "cond", condition="C09", seed=4)
    table = read_table(done.manifest)
    assert set(table["codec"]) == {"C09"} and set(table["domain"]) == {"C09"}
    for _, row in table.iterrows():
        level = pick_level("C09", seed=4, utt_id=row["source_utt_id"])
        assert row["codec_q"] == str(level.q) and row["bitrate_kbps"] == level.kbps
        assert row["degradation"] == level.parsed().canonical()
    assert str(table["bitrate_kbps"].dtype).lower().startswith("float")
    adhoc = read_table(degrade_manifest(manifest, tmp_path / "adhoc", specs=["mp3:kbps=32", "telephony"]).manifest)
    mp3 = adhoc[adhoc["degradation"] == "mp3:kbps=32"]
    assert set(mp3["codec"]) == {"mp3"} and set(mp3["codec_q"]) == {"32"} and set(mp3["bitrate_kbps"]) == {32.0}
    assert adhoc[adhoc["degradation"] == "telephony"]["bitrate_kbps"].isna().all()


def test_policy_condition_entries_write_the_level(tmp_path):
    from cm_cli.core.artifacts import read_table
    from cm_cli.degrade.corpus import degrade_manifest

    from .test_corpus import make_manifest

    manifest = make_manifest(tmp_path / "src", n=4, bad=False)
    table = read_table(degrade_manifest(manifest, tmp_path / "pol", policy="C09:1", variants=2, seed=1).manifest)
    assert len(table) == 8 and set(table["codec"]) == {"C09"}
    levels = {str(level.q): level for level in CONDITIONS["C09"].levels}
    for _, row in table.iterrows():
        level = levels[row["codec_q"]]
        assert row["degradation"] == level.parsed().canonical() and row["bitrate_kbps"] == level.kbps
