"""`cm manifest` for ASVspoof 2019 LA and 2021 LA/DF: explicit --protocol/--audio-dir and the data-root layout."""

from __future__ import annotations

import json

import pandas as pd

from tests.data.test_protocols import DF21, LA19, LA21, write


def test_2021_la_with_protocol_and_audio_dir_outside_the_data_root(cm_env, run_cm):
    keys = write(cm_env / "elsewhere" / "trial_metadata.txt", LA21, eol="\r\n")
    audio = cm_env / "elsewhere" / "flac"
    audio.mkdir()
    out = cm_env / "m21la"
    result = run_cm(
        "--json", "manifest", "--corpus", "asvspoof2021_la", "--protocol", keys, "--audio-dir", audio, "--out", out
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_utterances"] == 3 and list(payload["splits"]) == ["eval"]
    df = pd.read_parquet(out / "manifest.parquet")
    assert set(df["phase"]) == {"eval"} and {"transmission", "trim"} <= set(df.columns)
    assert df["path"].str.startswith(str(audio.resolve())).all()
    record = json.loads((out / "cm.json").read_text())
    assert record["options"]["phase"] == "eval" and record["options"]["protocol"] == [str(keys.resolve())]

    again = run_cm(
        "--json",
        "manifest",
        "--corpus",
        "asvspoof2021_la",
        "--protocol",
        keys,
        "--audio-dir",
        audio,
        "--out",
        out,
        "--phase",
        "all",
    )
    assert again.exit_code == 1, again.output  # same output directory, other options: refused without --force
    assert "--force" in again.stderr
    allp = run_cm(
        "--json",
        "manifest",
        "--corpus",
        "asvspoof2021_la",
        "--protocol",
        keys,
        "--audio-dir",
        audio,
        "--out",
        cm_env / "m21la_all",
        "--phase",
        "all",
    )
    assert json.loads(allp.stdout)["n_utterances"] == 5


def test_2021_la_progress_phase(cm_env, run_cm):
    keys = write(cm_env / "k" / "trial_metadata.txt", LA21)
    result = run_cm(
        "--json",
        "manifest",
        "--corpus",
        "asvspoof2021_la",
        "--protocol",
        keys,
        "--audio-dir",
        cm_env / "k",
        "--out",
        cm_env / "prog",
        "--phase",
        "progress",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_utterances"] == 1


def test_2021_df_gzipped_keys(cm_env, run_cm):
    keys = write(cm_env / "k" / "trial_metadata.txt.gz", DF21, gz=True)
    result = run_cm(
        "--json",
        "manifest",
        "--corpus",
        "asvspoof2021_df",
        "--protocol",
        keys,
        "--audio-dir",
        cm_env / "k",
        "--out",
        cm_env / "df",
        "--phase",
        "all",
    )
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(cm_env / "df" / "manifest.parquet")
    assert len(df) == 4 and {"vocoder", "source", "trim", "phase"} <= set(df.columns)
    assert df.loc[df["utt_id"] == "DF_E_2000014", "attack_family"].item() == "neural_waveform"


def test_2019_la_from_the_data_root_layout(cm_env, run_cm):
    la = cm_env / "data" / "asvspoof2019_la" / "LA"
    for name, rows in LA19.items():
        write(la / "ASVspoof2019_LA_cm_protocols" / name, rows)
    result = run_cm("--json", "manifest", "--corpus", "asvspoof2019_la", "--out", cm_env / "m19")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {s: v["n"] for s, v in payload["splits"].items()} == {"dev": 2, "eval": 2, "train": 2}
    assert payload["splits"]["eval"]["attacks"] == {"A11": 1}


def test_2019_la_with_protocol(cm_env, run_cm):
    proto = write(cm_env / "p" / "ASVspoof2019.LA.cm.train.trn.txt", LA19["ASVspoof2019.LA.cm.train.trn.txt"])
    result = run_cm(
        "--json",
        "manifest",
        "--corpus",
        "asvspoof2019_la",
        "--protocol",
        proto,
        "--audio-dir",
        cm_env / "p",
        "--out",
        cm_env / "m19p",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["splits"]["train"]["spoof"] == 1


def test_protocol_option_is_refused_for_asvspoof5(cm_env, run_cm):
    result = run_cm("manifest", "--corpus", "asvspoof5", "--protocol", cm_env / "x.tsv", "--out", cm_env / "o")
    assert result.exit_code == 2 and "not supported for asvspoof5" in result.stderr


def test_phase_is_refused_outside_2021(cm_env, run_cm):
    result = run_cm("manifest", "--corpus", "asvspoof2019_la", "--phase", "hidden", "--out", cm_env / "o")
    assert result.exit_code == 2 and "--phase applies to" in result.stderr


def test_missing_keys_give_a_download_hint(cm_env, run_cm):
    (cm_env / "data" / "asvspoof2021_df").mkdir(parents=True)
    result = run_cm("manifest", "--corpus", "asvspoof2021_df", "--out", cm_env / "o")
    assert result.exit_code == 1
    assert "keys/DF/CM/trial_metadata.txt" in result.stderr and "cm download asvspoof2021_df" in result.stderr


def test_2019_la_manifest_records_the_asv_score_files(cm_env, run_cm):
    """`cm manifest` says where the corpus's ASV scores are, so `cm eval` can report min t-DCF unasked."""
    from cm_cli.data.manifests import manifest_asv_scores

    la = cm_env / "data" / "asvspoof2019_la" / "LA"
    for name, rows in LA19.items():
        write(la / "ASVspoof2019_LA_cm_protocols" / name, rows)
    asv = write(
        la / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt",
        ["bonafide target 3.1", "bonafide nontarget -1.2", "A07 spoof 0.4"],
    )
    result = run_cm("--json", "manifest", "--corpus", "asvspoof2019_la", "--out", cm_env / "m19")
    assert result.exit_code == 0, result.output
    found = manifest_asv_scores(cm_env / "m19" / "manifest.parquet", "eval")
    assert found is not None and found.resolve() == asv.resolve()
    assert manifest_asv_scores(cm_env / "m19" / "manifest.parquet", "dev") is None
