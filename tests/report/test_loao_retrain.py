"""The full-retraining LOAO table names what the plan held out: codecs for `cm loao --plan --group-by codec`,
attacks for the default plan (loao_plan.json records group_by)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cm_cli.analysis.loao import plan_loao
from cm_cli.data.manifests import load_manifest
from cm_cli.report.render import build_report
from tests.analysis.synth import write_manifest


def _rows() -> pd.DataFrame:
    records = []
    for s in range(8):
        for codec in ("K1", "K2"):
            for i, attack in enumerate((None, "A01", None, "A02")):
                records.append(
                    {
                        "utt_id": f"S{s}_{codec}_{i}",
                        "label": "bonafide" if attack is None else "spoof",
                        "attack": attack,
                        "speaker": f"S{s}",
                        "codec": codec,
                        "domain": codec,
                        "split": "eval" if s < 3 else "train",
                    }
                )
    return pd.DataFrame(records)


@pytest.mark.parametrize("group_by, groups", [("codec", ("K1", "K2")), ("attack", ("A01", "A02"))])
def test_retrain_table_is_headed_by_the_plans_group(tmp_path, group_by, groups):
    manifest = write_manifest(tmp_path / "manifest.parquet", _rows())
    plan_loao(manifest, load_manifest(manifest), out=tmp_path / "plan", train_preset="toy_lcnn_erm", group_by=group_by)
    record = json.loads((tmp_path / "plan" / "loao_plan.json").read_text())
    assert record["group_by"] == group_by
    planted = {"seen": 10.0, f"heldout_{groups[0]}": 25.0, f"heldout_{groups[1]}": 40.0}
    for name, eer in planted.items():  # each run's `cm eval --by <group_by>` result, planted
        folder = tmp_path / "plan" / "runs" / name / "eval"
        folder.mkdir(parents=True)
        by = {g: {"eer": eer / 100, "n_spoof": 8} for g in groups}
        (folder / "metrics.json").write_text(json.dumps({"by": {group_by: by}}))
    text = build_report([tmp_path / "plan"], tmp_path / "report").markdown.read_text()
    noun = {"codec": "codec", "attack": "attack"}[group_by]
    other = {"codec": "attack", "attack": "codec"}[group_by]
    assert f"Per held-out {noun}: EER (%)" in text and f"Per held-out {other}" not in text
    header = next(line for line in text.splitlines() if "EER all seen (%)" in line)
    assert header.split("|")[1].strip() == noun.capitalize()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith(f"| {groups[0][0]}")}
    assert "+15.00" in rows[groups[0]] and "+30.00" in rows[groups[1]]  # held out minus all seen, points
    if group_by == "codec":
        assert "detection of an attack" not in text and "under a codec the whole detector" in text
    else:
        assert "detection of an attack the whole detector" in text
