"""Human output warns whatever the JSON notes: t-EER on a half-overlapping ASV file (issue 29 item 5)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def test_half_overlapping_asv_file_warns_in_human_output(cm_env, run_cm):
    rng = np.random.default_rng(0)
    n = 100
    keys = np.array(["target"] * n + ["nontarget"] * n + ["spoof"] * n)
    asv = np.where(keys == "target", rng.normal(3, 1, keys.size), rng.normal(0, 1, keys.size))
    ids = np.array([f"E_{i:05d}" for i in range(keys.size)])
    half = np.arange(keys.size) % 2 == 0  # the CM file scores every other trial only
    cm = np.where(keys == "spoof", rng.normal(0, 1, keys.size), rng.normal(2, 1, keys.size))
    cm_file, asv_file = cm_env / "cm.tsv", cm_env / "asv.tsv"
    pd.DataFrame(
        {"utt_id": ids[half], "score": cm[half], "key": np.where(keys[half] == "spoof", "spoof", "bonafide")}
    ).to_csv(cm_file, sep="\t", index=False)
    pd.DataFrame({"utt_id": ids, "key": keys, "score": asv}).to_csv(asv_file, sep="\t", index=False)
    args = [
        "eval",
        "--scores",
        cm_file,
        "--score-col",
        "score",
        "--label-col",
        "key",
        "--asv-scores",
        asv_file,
        "--asv-score-col",
        "score",
        "--asv-key-col",
        "key",
    ]
    noted = json.loads(run_cm("--json", *args).stdout)["tdcf"]
    assert (noted["t_eer_trials"], noted["t_eer_unpaired_asv_trials"]) == (150, 150)
    human = run_cm(*args)
    assert human.exit_code == 0, human.output
    assert "t-EER uses 150 of 300 ASV trials" in " ".join(human.stdout.split())


def test_labels_in_another_spelling_are_counted_and_warned(cm_env, run_cm):
    rng = np.random.default_rng(1)
    labels = np.array(["Bonafide"] * 3 + ["bonafide"] * 27 + ["SPOOF"] * 2 + ["spoof"] * 28)
    frame = pd.DataFrame(
        {
            "utt_id": [f"u{i}" for i in range(labels.size)],
            "label": labels,
            "score": np.where(
                np.char.lower(labels) == "spoof", rng.normal(0, 1, labels.size), rng.normal(2, 1, labels.size)
            ),
        }
    )
    frame.to_csv(cm_env / "s.tsv", sep="\t", index=False)
    payload = json.loads(run_cm("--json", "eval", "--scores", cm_env / "s.tsv", "--out", cm_env / "m").stdout)
    assert payload["overall"]["n_bonafide"] == 30 and payload["overall"]["n_spoof"] == 30
    note = payload["warnings"][0]
    assert "5 label(s)" in note and "'Bonafide' x3" in note and "'SPOOF' x2" in note and "exactly" in note
    assert json.loads((cm_env / "m" / "metrics.json").read_text())["warnings"][0] == note
    human = run_cm("eval", "--scores", cm_env / "s.tsv")
    assert "5 label(s)" in " ".join(human.stdout.split())
    exact = frame.assign(label=np.char.lower(labels))
    exact.to_csv(cm_env / "e.tsv", sep="\t", index=False)
    assert not [
        w
        for w in json.loads(run_cm("--json", "eval", "--scores", cm_env / "e.tsv").stdout)["warnings"]
        if "label(s)" in w
    ]
