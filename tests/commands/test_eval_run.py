"""cm eval --run: model scoring, on-the-fly sweeps, streaming, shards and resume."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.artifacts import write_parquet
from cm_cli.data.manifest import normalise_manifest


@pytest.fixture(scope="module")
def scored_setup(tmp_path_factory):
    import torch

    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    root = tmp_path_factory.mktemp("evalrun")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        label = "bonafide" if i % 3 == 0 else "spoof"
        t = np.arange(int(16000 * rng.uniform(0.6, 1.2))) / 16000
        wave = (
            0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t) if label == "bonafide" else 0.2 * rng.standard_normal(len(t))
        )
        sf.write(root / f"u{i:02d}.flac", wave.astype(np.float32), 16000)
        rows.append(
            {
                "utt_id": f"u{i:02d}",
                "path": f"u{i:02d}.flac",
                "label": label,
                "attack": None if label == "bonafide" else ("A01" if i % 2 else "A02"),
                "speaker": f"s{i % 4}",
                "split": "eval",
                "corpus": "toy",
                "codec": None,
                "codec_q": None,
                "domain": "clean",
            }
        )
    manifest = root / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    torch.manual_seed(0)
    run = root / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")))
    return root, manifest, run


def test_scores_and_metrics_with_breakdown_and_resume(scored_setup, run_cm, cm_env):
    root, manifest, run = scored_setup
    out = cm_env / "ev"
    args = ["--data-root", root, "--json", "eval", "--run", run, "--manifest", manifest, "--out", out, "--by", "attack"]
    result = run_cm(*args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["overall"]["n_bonafide"] == 4 and payload["overall"]["n_spoof"] == 8
    assert set(payload["by"]["attack"]) == {"A01", "A02", "none"}
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns[:2]) == ["utt_id", "score"] and {"label", "attack", "speaker"} <= set(scores.columns)
    assert scores["score"].dtype == np.float32
    assert json.loads((out / "cm.json").read_text())["kind"] == "scores"
    again = json.loads(run_cm(*args).stdout)
    assert again["skipped"] and again["overall"] == payload["overall"]


def test_degrade_sweep_writes_conditions_and_sweep_table(scored_setup, run_cm, cm_env):
    root, manifest, run = scored_setup
    out = cm_env / "sweep"
    result = run_cm(
        "--data-root",
        root,
        "--json",
        "eval",
        "--run",
        run,
        "--manifest",
        manifest,
        "--out",
        out,
        "--degrade",
        "gain:db=-6|-20",
    )
    assert result.exit_code == 0, result.output
    sweep = pd.read_parquet(out / "sweep.parquet")
    assert sweep["condition"].tolist() == ["clean", "gain:db=-6", "gain:db=-20"]
    assert sweep["parameter"].tolist()[1:] == ["db", "db"] and sweep["severity"].tolist()[1:] == [-6, -20]
    assert {"eer_A01", "eer_A02"} <= set(sweep.columns)
    for slug in ("clean", "gain_db--6", "gain_db--20"):
        assert (out / slug / "metrics.json").is_file() and (out / slug / "scores.parquet").is_file()


def test_streaming_chunk_sweep(scored_setup, run_cm, cm_env):
    root, manifest, run = scored_setup
    out = cm_env / "chunks"
    result = run_cm(
        "--data-root",
        root,
        "eval",
        "--run",
        run,
        "--manifest",
        manifest,
        "--out",
        out,
        "--chunk-ms",
        "250|500",
        "--aggregate",
        "median",
    )
    assert result.exit_code == 0, result.output
    sweep = pd.read_parquet(out / "sweep.parquet")
    assert sweep["parameter"].tolist() == ["chunk_ms", "chunk_ms"] and sweep["severity"].tolist() == [250, 500]
    windows = pd.read_parquet(out / "clean+chunk-250ms" / "scores.parquet")["n_windows"]
    assert (windows >= 3).all()


def test_shards_merge_into_the_same_metrics(scored_setup, run_cm, cm_env):
    root, manifest, run = scored_setup
    whole = json.loads(
        run_cm(
            "--data-root", root, "--json", "eval", "--run", run, "--manifest", manifest, "--out", cm_env / "whole"
        ).stdout
    )
    for i in range(2):
        r = run_cm(
            "--data-root",
            root,
            "eval",
            "--run",
            run,
            "--manifest",
            manifest,
            "--out",
            cm_env / "parts",
            "--shard",
            f"{i}/2",
        )
        assert r.exit_code == 0, r.output
    merged = json.loads(run_cm("--json", "eval", "--scores", cm_env / "parts", "--out", cm_env / "merged").stdout)
    assert merged["overall"]["eer"] == pytest.approx(whole["overall"]["eer"])
    assert merged["overall"]["n_spoof"] == 8


def test_bad_inputs(scored_setup, run_cm, cm_env):
    root, manifest, run = scored_setup
    r = run_cm("eval", "--run", run)
    assert r.exit_code == 2 and "--manifest" in r.stderr
    r = run_cm("eval", "--run", cm_env / "nope", "--manifest", manifest)
    assert r.exit_code == 1 and "no such run" in r.stderr
    r = run_cm("eval", "--run", run, "--manifest", manifest, "--degrade", "mp3:kbps=-3", "--out", cm_env / "bad")
    assert r.exit_code == 1 and not (cm_env / "bad").exists()
    r = run_cm("eval", "--run", run, "--manifest", manifest, "--shard", "5/4")
    assert r.exit_code == 2 and "5/4" in r.stderr


def test_run_honours_every_metric_option_like_scores(scored_setup, run_cm, cm_env):
    """Issue 12: `--run` used to drop nine options (metrics.json said p_spoof 0.05, c_fa 10)."""
    root, manifest, run = scored_setup
    dev = cm_env / "dev.csv"
    rng = np.random.default_rng(1)
    dev.write_text(
        "utt_id,score,label\n"
        + "".join(
            f"d{i},{rng.normal(1 if i % 2 else -1, 1):.4f},{'bonafide' if i % 2 else 'spoof'}\n" for i in range(60)
        )
    )
    opts = [
        "--p-spoof",
        "0.5",
        "--c-miss",
        "2",
        "--c-fa",
        "1",
        "--score-kind",
        "logit",
        "--calibrate-on",
        dev,
        "--bootstrap",
        "30",
        "--cluster-by",
        "speaker",
        "--level",
        "0.9",
        "--min-trials",
        "3",
        "--drop-invalid",
        "--by",
        "attack",
    ]
    out = cm_env / "opts"
    result = run_cm("--data-root", root, "--json", "eval", "--run", run, "--manifest", manifest, "--out", out, *opts)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["params"] == {"p_spoof": 0.5, "c_miss": 2.0, "c_fa": 1.0, "score_kind": "logit", "min_trials": 3}
    assert saved["ci"]["cluster_by"] == "speaker" and saved["ci"]["unit"] == "speaker"
    assert saved["ci"]["n_clusters"] == 4 and saved["ci"]["level"] == 0.9
    assert "calibration" in saved and saved["calibration"]["n_bonafide"] == 30
    assert saved["by"]["attack"]["A01"]["small"] is False  # 4 bona fide, 4 spoof >= --min-trials 3
    assert saved["run"] == str(run.resolve()) and saved["corpus"] == ["toy"]
    record = json.loads((out / "cm.json").read_text())["options"]
    assert record["drop_invalid"] is True and record["cluster_by"] == "speaker"
    # the same settings over the written scores.parquet give the same document
    again = json.loads(run_cm("--json", "eval", "--scores", out / "scores.parquet", *opts).stdout)
    for block in ("overall", "params", "ci", "calibration", "by"):
        assert again[block] == saved[block], block


def test_eval_table_in_cm_toml_is_honoured(scored_setup, run_cm, cm_env):
    root, manifest, run = scored_setup
    (cm_env / "cm.toml").write_text("[eval]\np_spoof = 0.5\nc_fa = 1.0\n")
    path = cm_env / "s.csv"
    path.write_text("utt_id,score,label\na,1,bonafide\nb,0.2,spoof\nc,0.5,bonafide\nd,-1,spoof\n")
    payload = json.loads(run_cm("--json", "eval", "--scores", path).stdout)
    assert payload["params"]["p_spoof"] == 0.5 and payload["params"]["c_fa"] == 1.0
    (cm_env / "cm.toml").write_text('[eval]\np_spoof = 0.5\nc_fa = 1.0\nby = "attack"\n')
    out = cm_env / "toml_run"
    result = run_cm(
        "--data-root", root, "--json", "eval", "--run", run, "--manifest", manifest, "--out", out, "--c-fa", "3"
    )  # explicit beats the table
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["params"]["p_spoof"] == 0.5 and saved["params"]["c_fa"] == 3.0 and set(saved["by"]) == {"attack"}
    (cm_env / "cm.toml").write_text("[eval]\nnot_an_option = 1\n")
    bad = run_cm("eval", "--scores", path)
    assert bad.exit_code == 1 and "not_an_option" in bad.stderr


def test_run_splits_the_gap_by_the_runs_training_domains(scored_setup, run_cm, cm_env):
    import shutil

    root, manifest, run = scored_setup
    frame = pd.read_parquet(manifest)
    frame["domain"] = [("clean", "C01", "C02")[i // 4] for i in range(len(frame))]
    domains = cm_env / "domains.parquet"
    write_parquet(frame, domains)
    own = cm_env / "run"
    shutil.copytree(run, own)
    (own / "config.json").write_text(json.dumps({"seen_domains": ["C01", "clean"], "augment_conditions": []}))
    result = run_cm(
        "--data-root",
        root,
        "--json",
        "eval",
        "--run",
        own,
        "--manifest",
        domains,
        "--out",
        cm_env / "e",
        "--in-domain",
        "clean",
    )
    assert result.exit_code == 0, result.output
    gap = json.loads((cm_env / "e" / "metrics.json").read_text())["ood_gap"]
    assert gap["seen_domains"] == ["C01", "clean"]
    assert gap["split"]["seen"]["values"] == ["C01"] and gap["split"]["unseen"]["values"] == ["C02"]
    assert gap["split"]["seen"]["n_spoof"] == 3 and gap["split"]["unseen"]["n_spoof"] == 3


def test_cached_rerun_keeps_the_failures(scored_setup, run_cm, cm_env):
    """Issue 19.6: a rerun on cached scores wrote no failures.parquet and n_failed 0."""
    root, manifest, run = scored_setup
    frame = pd.read_parquet(manifest)
    (root / "broken.flac").write_bytes(b"not audio at all")
    broken = frame.iloc[[0]].assign(utt_id="broken", path="broken.flac")
    with_broken = cm_env / "broken.parquet"
    write_parquet(pd.concat([frame, broken], ignore_index=True), with_broken)
    runs = []
    for name in ("first", "second"):
        result = run_cm(
            "--data-root", root, "--json", "eval", "--run", run, "--manifest", with_broken, "--out", cm_env / name
        )
        assert result.exit_code == 0, result.output
        runs.append(json.loads(result.stdout))
        failures = pd.read_parquet(cm_env / name / "failures.parquet")
        assert failures["utt_id"].tolist() == ["broken"]
    assert runs[0]["condition"]["n_failed"] == runs[1]["condition"]["n_failed"] == 1
    assert runs[1]["overall"] == runs[0]["overall"]
    assert list((cm_env / "cache" / "scores").glob("*.failures.parquet"))


def test_force_removes_the_old_conditions_of_a_sweep(scored_setup, run_cm, cm_env):
    """Issue 19.7: --force left the old condition folders beside the new ones."""
    root, manifest, run = scored_setup
    out = cm_env / "sw"
    base = ["--data-root", root, "eval", "--run", run, "--manifest", manifest, "--out", out]
    assert run_cm(*base, "--degrade", "gain:db=-6|-20").exit_code == 0
    (out / "notes").mkdir()  # not a condition: kept
    assert run_cm(*base, "--degrade", "gain:db=-3", "--force").exit_code == 0
    assert sorted(d.name for d in out.iterdir() if d.is_dir()) == ["clean", "gain_db--3", "notes"]
    assert pd.read_parquet(out / "sweep.parquet")["condition"].tolist() == ["clean", "gain:db=-3"]
    assert run_cm(*base, "--force").exit_code == 0
    assert sorted(d.name for d in out.iterdir() if d.is_dir()) == ["notes"]
    assert not (out / "sweep.parquet").exists() and (out / "metrics.json").is_file()


def test_causal_windows_score_only_the_first_k_windows(scored_setup, run_cm, cm_env):
    """--causal-windows K: each utterance is scored from its first K windows (a latency study), nothing more."""
    root, manifest, run = scored_setup
    out = cm_env / "causal"
    result = run_cm(
        "--data-root",
        root,
        "eval",
        "--run",
        run,
        "--manifest",
        manifest,
        "--out",
        out,
        "--chunk-ms",
        "250",
        "--causal-windows",
        "2",
    )
    assert result.exit_code == 0, result.output
    windows = pd.read_parquet(out / "scores.parquet")["n_windows"]
    assert (windows == 2).all()
    refused = run_cm(
        "--data-root",
        root,
        "eval",
        "--run",
        run,
        "--manifest",
        manifest,
        "--out",
        cm_env / "c2",
        "--causal-windows",
        "2",
    )
    assert refused.exit_code == 1 and "--chunk-ms" in refused.output


def test_run_reports_min_tdcf_from_the_asv_scores_the_manifest_records(scored_setup, run_cm, cm_env):
    """A 2019/2021 LA manifest records its corpus's ASV scores; `cm eval --run` then reports min t-DCF unasked."""
    import json
    import shutil

    root, manifest, run = scored_setup
    copy = cm_env / "m19" / "manifest.parquet"
    copy.parent.mkdir()
    shutil.copy(manifest, copy)
    rng = np.random.default_rng(5)
    asv = cm_env / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    asv.write_text(
        "".join(
            f"bonafide target {rng.normal(3, 1):.4f}\nbonafide nontarget {rng.normal(0, 1):.4f}\n"
            f"A0{1 + i % 2} spoof {rng.normal(1, 1):.4f}\n"
            for i in range(40)
        )
    )
    (copy.parent / "cm.json").write_text(
        json.dumps({"kind": "manifest", "summary": {"asv_scores": {"eval": str(asv)}}})
    )
    out = cm_env / "tdcf"
    result = run_cm("--json", "--data-root", root, "eval", "--run", run, "--manifest", copy, "--out", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["overall"]["min_tdcf"] <= 1.0 + 1e-12 and "min_tdcf_legacy" in metrics["overall"]
    assert metrics["tdcf"]["asv_scores"] == str(asv)


def _with_short_rows(root, manifest, lengths: dict):
    """The manifest plus one bona fide row per ``{utt_id: n_samples}`` (a tone that short)."""
    frame = pd.read_parquet(manifest)
    rows = []
    for utt_id, n in lengths.items():
        t = np.arange(n) / 16000
        sf.write(root / f"{utt_id}.flac", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
        rows.append({**frame.iloc[0].to_dict(), "utt_id": utt_id, "path": f"{utt_id}.flac"})
    out = root / f"manifest_{'_'.join(lengths)}.parquet"
    write_parquet(normalise_manifest(pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)), out)
    return out


def test_a_clip_shorter_than_the_receptive_field_is_scored_but_flagged_short(scored_setup, run_cm, cm_env):
    from cm_cli.models.inference import minimum_samples
    from cm_cli.models.loading import load_model

    root, manifest, run = scored_setup
    minimum = minimum_samples(load_model(run).model)
    assert minimum > 160  # a 10 ms clip is below every front end's receptive field
    short_manifest = _with_short_rows(root, manifest, {"tiny10ms": 160, "edge_below": minimum - 1, "edge": minimum})
    out = cm_env / "short"
    result = run_cm("--data-root", root, "eval", "--run", run, "--manifest", short_manifest, "--out", out)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stdout and "2 utterance(s) are shorter than the model's receptive field" in (
        " ".join(result.stdout.split())
    )
    scores = pd.read_parquet(out / "scores.parquet").set_index("utt_id")
    assert scores["short"].dtype == bool
    assert set(scores.index[scores["short"]]) == {"tiny10ms", "edge_below"}  # exactly the rows below the field
    assert np.isfinite(scores.loc["tiny10ms", "score"])  # scored, not dropped
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["condition"]["n_short"] == 2 and any(f"{minimum} samples" in w for w in metrics["warnings"])
    # normal-length rows score exactly as in a manifest without the short clips
    plain = cm_env / "plain"
    assert run_cm("--data-root", root, "eval", "--run", run, "--manifest", manifest, "--out", plain).exit_code == 0
    before = pd.read_parquet(plain / "scores.parquet").set_index("utt_id")
    assert not before["short"].any() and json.loads((plain / "metrics.json").read_text())["condition"]["n_short"] == 0
    np.testing.assert_array_equal(scores.loc[before.index, "score"].to_numpy(), before["score"].to_numpy())
    # a sweep flags per condition and prints each condition's warning
    sweep = cm_env / "short_sweep"
    args = ["--data-root", root, "eval", "--run", run, "--manifest", short_manifest, "--out", sweep]
    result = run_cm(*args, "--degrade", "gain:db=-6")
    assert result.exit_code == 0, result.output
    assert " ".join(result.stdout.split()).count("are shorter than the model's receptive field") == 2
    for condition in ("clean", "gain_db--6"):
        table = pd.read_parquet(sweep / condition / "scores.parquet")
        assert table["short"].sum() == 2
