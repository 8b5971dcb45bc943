"""LOAO: the planted distinct attack has the largest gap; splits are speaker-disjoint; bad input is refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cm_cli.analysis.loao import LoaoConfig, compute_loao, plan_loao, run_loao, speaker_test_split, summarise_loao
from cm_cli.core.errors import CmError
from cm_cli.data.manifests import load_manifest
from cm_cli.metrics import eer_and_min_dcf, min_dcf
from tests.analysis.synth import spoof_world, write_embeddings, write_manifest

FAST = LoaoConfig(seeds=(0, 1), n_boot=200, n_perm=200)


@pytest.fixture
def world(tmp_path):
    rows, layers = spoof_world()
    emb = write_embeddings(tmp_path / "emb", rows.utt_id, layers)
    manifest = write_manifest(tmp_path / "manifest.parquet", rows)
    return emb, manifest, rows


def test_distinct_attack_has_the_largest_gap(world):
    emb, manifest, _ = world
    tables = compute_loao(emb, load_manifest(manifest), config=FAST)
    summary = summarise_loao(tables, config=FAST)
    assert summary["largest_gap"]["layer_01"]["attack"] == "A05"
    gaps = pd.DataFrame(summary["per_attack"]).query("layer == 'layer_01'").set_index("attack")["gap_mean"]
    assert gaps["A05"] > 15 and (gaps.drop("A05") < 8).all()
    assert list(tables.loao.columns) == [
        "attack",
        "seed",
        "layer",
        "eer_seen",
        "eer_held_out",
        "gap",
        "n_bonafide",
        "n_spoof",
    ]
    assert list(tables.geometry.columns) == ["attack", "layer", "d_bona", "cos_bona", "d_near_spoof", "bona_axis_proj"]
    geometry = tables.geometry.query("layer == 'layer_01'").set_index("attack")
    # the unseen direction: far from every other attack, and bona-fide-like along the seen-spoof axis
    assert geometry["d_near_spoof"].idxmax() == "A05" and geometry["bona_axis_proj"].idxmax() == "A05"


def test_speaker_split_is_disjoint_and_seeded():
    speakers = [f"S{i}" for i in range(20)]
    a = speaker_test_split(speakers, seed=3, test_size=0.3)
    assert a == speaker_test_split(speakers, seed=3, test_size=0.3) and len(a) == 6
    assert a != speaker_test_split(speakers, seed=4, test_size=0.3)


def test_analysis_eer_matches_definition():
    bona = np.array([0.9, 0.8, 0.4])
    spoof = np.array([0.1, 0.5, 0.3, 0.2])
    eer, dcf = eer_and_min_dcf(bona, spoof)
    assert eer == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert 0 <= dcf <= 1 and dcf == pytest.approx(min_dcf(bona, spoof))


def test_run_writes_tables_and_reuses_a_complete_run(world, tmp_path):
    emb, manifest, _ = world
    out = tmp_path / "out"
    config = LoaoConfig(seeds=(0,), layers="1", n_boot=100, n_perm=100)
    summary = run_loao(emb, manifest=manifest, out=out, config=config)
    assert {p.name for p in out.iterdir()} >= {"loao.parquet", "geometry.parquet", "loao.json", "cm.json"}
    record = json.loads((out / "cm.json").read_text())
    assert record["kind"] == "loao" and record["status"] == "complete"
    assert summary["skipped"] is False and summary["layers"] == ["layer_01"]
    again = run_loao(emb, manifest=manifest, out=out, config=config)
    assert again["skipped"] is True
    with pytest.raises(CmError, match="different options"):
        run_loao(emb, manifest=manifest, out=out, config=LoaoConfig(seeds=(1,), layers="1"))


def test_compare_and_probe_join(world, tmp_path):
    from cm_cli.analysis.probes import ProbeConfig, run_probes

    emb, manifest, rows = world
    _, layers = spoof_world(seed=5)
    emb_b = write_embeddings(tmp_path / "emb_b", rows.utt_id, layers)
    run_probes(
        [emb],
        manifest=manifest,
        out=tmp_path / "probes",
        config=ProbeConfig(target="attack", folds=3, n_boot=100, control_repeats=1),
    )
    config = LoaoConfig(seeds=(0,), layers="1", n_boot=100, n_perm=100)
    summary = run_loao(
        emb, manifest=manifest, out=tmp_path / "out", config=config, probe_results=tmp_path / "probes", compare=emb_b
    )
    assert summary["probe_selectivity"]["correlations"][0]["metric"] == "selectivity"
    assert len(summary["compare"]["per_attack"]) == 5
    assert (tmp_path / "out" / "compare.parquet").is_file()


def test_plan_writes_training_manifests(world, tmp_path):
    _, manifest, _ = world
    lines = plan_loao(manifest, load_manifest(manifest), out=tmp_path / "plan", train_preset="toy_lcnn_erm")
    assert len(lines) == 6 and lines[0].startswith("cm train --preset toy_lcnn_erm")
    without = load_manifest(tmp_path / "plan" / "manifests" / "without_A03" / "manifest.parquet")
    assert "A03" not in set(without["attack"].dropna()) and (without["label"] == "bonafide").any()


def test_bad_inputs_leave_nothing(world, tmp_path):
    emb, manifest, rows = world
    other = rows.assign(utt_id="X" + rows["utt_id"])
    wrong = write_manifest(tmp_path / "other.parquet", other)
    out = tmp_path / "never"
    with pytest.raises(CmError, match="share no utt_id"):
        run_loao(emb, manifest=wrong, out=out, config=FAST)
    with pytest.raises(CmError, match="no layer"):
        run_loao(emb, manifest=manifest, out=out, config=LoaoConfig(layers="9"))
    one_attack = write_manifest(tmp_path / "one.parquet", rows[(rows.label == "bonafide") | (rows.attack == "A01")])
    with pytest.raises(CmError, match="at least 2"):
        run_loao(emb, manifest=one_attack, out=out, config=FAST)
    assert not out.exists()


def test_frozen_protocol_is_named_in_json_and_parquet_metadata(world, tmp_path):
    """Issue 13.5: LOAO on embeddings says it measures linear separability with an encoder that saw every attack."""
    import pyarrow.parquet as pq

    from cm_cli.analysis.loao import FROZEN_MEASURES

    emb, manifest, _ = world
    out = tmp_path / "out"
    summary = run_loao(emb, manifest=manifest, out=out, config=LoaoConfig(seeds=(0,), layers="1", n_boot=50, n_perm=50))
    assert summary["protocol"] == "frozen embeddings" and summary["measures"] == FROZEN_MEASURES
    assert (
        "linear separability" in FROZEN_MEASURES
        and "encoder" in FROZEN_MEASURES
        and "saw every attack" in FROZEN_MEASURES
    )
    assert json.loads((out / "loao.json").read_text())["measures"] == FROZEN_MEASURES
    metadata = pq.read_schema(out / "loao.parquet").metadata
    assert metadata[b"cm.measures"].decode() == FROZEN_MEASURES and metadata[b"cm.protocol"] == b"frozen embeddings"


def test_plan_holds_out_only_attacks_seen_in_training_and_present_in_eval(tmp_path):
    rows, _ = spoof_world(n_attacks=4)
    split = {"A01": "train", "A02": "train", "A03": "eval", "A04": "train"}
    rows["split"] = [split.get(a, "train") for a in rows["attack"]]
    extra = rows[rows["attack"].isin(["A01", "A02"])].assign(split="eval", utt_id=lambda d: "E" + d["utt_id"])
    bona_eval = rows[rows["label"] == "bonafide"].assign(split="eval", utt_id=lambda d: "E" + d["utt_id"])
    manifest = write_manifest(tmp_path / "m.parquet", pd.concat([rows, extra, bona_eval], ignore_index=True))
    lines = plan_loao(
        manifest, load_manifest(manifest), out=tmp_path / "plan", train_preset="p", train_args="--epochs 1"
    )
    record = json.loads((tmp_path / "plan" / "loao_plan.json").read_text())
    assert [h["group"] for h in record["held_out"]] == ["A01", "A02"] and len(lines) == 3
    assert "never in train/dev" in record["skipped"]["A03"] and "no spoofs in the 'eval'" in record["skipped"]["A04"]
    assert record["measures"].startswith("detection of an attack the whole detector (encoder included) never saw")
    assert all(line.split(" && ")[0].endswith("--epochs 1") for line in lines)


def codec_world(seed: int = 0, distinct: str = "K4"):
    """Every codec shifts both classes; under K1-K3 spoofs differ from bona fide along one shared direction,
    under ``distinct`` along its own orthogonal one (planted leave-one-codec-out effect)."""
    rng = np.random.default_rng(seed)
    records, vectors = [], []
    for s in range(12):
        for codec in ("K1", "K2", "K3", "K4"):
            for i in range(4):
                bona = i % 2 == 0
                x = rng.standard_normal(8)
                x[3 + int(codec[1])] += 2.0  # the codec's own offset, both classes
                if not bona:
                    x[1 if codec == distinct else 0] += 3.0
                records.append(
                    {
                        "utt_id": f"S{s}_{codec}_{i}",
                        "label": "bonafide" if bona else "spoof",
                        "attack": None if bona else "A01",
                        "speaker": f"S{s}",
                        "codec": codec,
                        "domain": codec,
                    }
                )
                vectors.append(x)
    return pd.DataFrame(records), {"layer_00": np.array(vectors)}


def test_leave_one_codec_out_finds_the_planted_codec(tmp_path):
    rows, layers = codec_world()
    emb = write_embeddings(tmp_path / "emb", rows.utt_id, layers)
    manifest = write_manifest(tmp_path / "manifest.parquet", rows)
    config = LoaoConfig(seeds=(0, 1), n_boot=100, n_perm=100, group_by="codec")
    tables = compute_loao(emb, load_manifest(manifest), config=config)
    gaps = tables.loao.groupby("attack")["gap"].mean()
    assert sorted(gaps.index) == ["K1", "K2", "K3", "K4"]
    assert gaps.idxmax() == "K4" and gaps["K4"] > 15 and (gaps.drop("K4") < 8).all()
    # both classes of the held-out codec are tested: its bona fide rows are the test's bona fide
    assert (tables.loao["n_bonafide"] > 0).all() and (tables.loao["n_spoof"] > 0).all()
    family = compute_loao(emb, load_manifest(manifest), config=LoaoConfig(seeds=(0,), group_by="codec_family"))
    assert set(family.loao["attack"]) == {"K1", "K2", "K3", "K4"}  # unknown codecs are their own family


def test_codec_grouping_without_codec_values_is_one_line(tmp_path):
    rows, layers = codec_world()
    emb = write_embeddings(tmp_path / "emb", rows.utt_id, layers)
    manifest = write_manifest(tmp_path / "manifest.parquet", rows.assign(codec=None))
    with pytest.raises(CmError, match="needs codec values"):
        compute_loao(emb, load_manifest(manifest), config=LoaoConfig(seeds=(0,), group_by="codec"))


def test_codec_family_maps_conditions_to_their_codec():
    from cm_cli.analysis.loao import codec_family

    assert codec_family("C05") == "mp3" and codec_family("C08") == "opus" and codec_family("gsm") == "gsm"
    assert codec_family("C7") == "C7" and codec_family(None) is None


def test_plan_by_codec_filters_an_augment_given_in_train_args(tmp_path):
    """An --augment in --train-args is the policy each held-out run filters (not repeated after it)."""
    rows, _ = codec_world()
    rows["codec"] = rows["codec"].map({"K1": "C05", "K2": "mp3", "K3": "C08", "K4": "mimi"})
    rows["split"] = np.where(rows["speaker"].isin(["S0", "S1", "S2", "S3"]), "eval", "train")
    manifest = write_manifest(tmp_path / "manifest.parquet", rows)
    frame = load_manifest(manifest)
    lines = plan_loao(
        manifest,
        frame,
        out=tmp_path / "plan",
        train_preset="toy_lcnn_erm",
        group_by="codec_family",
        train_args="--epochs 1 --augment 'clean:0.4, C05:0.2, mimi:0.2, telephony:0.2'",
    )
    record = json.loads((tmp_path / "plan" / "loao_plan.json").read_text())
    held = {h["group"]: h for h in record["held_out"]}
    assert sorted(held) == ["mimi", "mp3", "opus"]  # codec families: C05 and mp3 are one family
    assert held["mp3"]["augment_removed"] == ["C05:0.2"] and held["mimi"]["augment_removed"] == ["mimi:0.2"]
    assert "augment_removed" not in held["opus"]
    assert held["mp3"]["rows_removed"] == int(rows["codec"].isin(["C05", "mp3"]).sum())
    assert all(line.count("--augment") == 1 and "--epochs 1" in line for line in lines)
    assert "C05" in lines[0] and "mimi:0.2" in lines[0]  # the all-seen baseline keeps the whole policy


def test_measures_text_follows_the_plans_group_by(tmp_path):
    """A codec plan says it holds out a codec's rows of both classes and its augmentation, not an attack; an
    attack-family plan names the family; a plain attack plan keeps the attack text."""
    from cm_cli.analysis.loao import RETRAIN_MEASURES

    rows, _ = codec_world()
    rows["split"] = np.where(rows["speaker"].isin(["S0", "S1", "S2", "S3"]), "eval", "train")
    rows["attack"] = np.where(rows["label"] == "spoof", rows["codec"].str.replace("K", "A0"), None)
    rows["attack_family"] = np.where(rows["label"] == "spoof", rows["codec"].map(lambda c: f"F{int(c[1]) % 2}"), None)
    manifest = write_manifest(tmp_path / "manifest.parquet", rows)
    recorded = {}
    for group_by in ("codec", "codec_family", "attack", "attack_family"):
        plan_loao(manifest, load_manifest(manifest), out=tmp_path / group_by, train_preset="p", group_by=group_by)
        record = json.loads((tmp_path / group_by / "loao_plan.json").read_text())
        assert record["group_by"] == group_by
        recorded[group_by] = record["measures"]
    assert recorded["attack"] == RETRAIN_MEASURES and "attack" in RETRAIN_MEASURES
    assert recorded["codec"].startswith("detection under a codec the whole detector (encoder included) never saw")
    assert "that codec's rows (bona fide and spoof) and augmentation removed" in recorded["codec"]
    assert "that codec family's rows" in recorded["codec_family"]
    assert recorded["attack_family"].startswith("detection of an attack family")
    assert all("attack" not in recorded[g] for g in ("codec", "codec_family"))
    assert len(set(recorded.values())) == 4


def test_frozen_measures_by_codec_name_the_codec(tmp_path):
    import pyarrow.parquet as pq

    from cm_cli.analysis.loao import FROZEN_MEASURES

    rows, layers = codec_world()
    emb = write_embeddings(tmp_path / "emb", rows.utt_id, layers)
    manifest = write_manifest(tmp_path / "manifest.parquet", rows)
    out = tmp_path / "out"
    summary = run_loao(
        emb, manifest=manifest, out=out, config=LoaoConfig(seeds=(0,), n_boot=20, n_perm=20, group_by="codec")
    )
    assert summary["measures"] != FROZEN_MEASURES and "saw every codec" in summary["measures"]
    assert "attack" not in summary["measures"]
    assert pq.read_schema(out / "loao.parquet").metadata[b"cm.measures"].decode() == summary["measures"]


def test_plan_with_train_seeds_pairs_runs_per_seed_and_averages_the_gaps(tmp_path):
    from cm_cli.analysis.loao import retrained_gaps

    rows, _ = codec_world()
    rows["split"] = np.where(rows["speaker"].isin(["S0", "S1", "S2", "S3"]), "eval", "train")
    manifest = write_manifest(tmp_path / "manifest.parquet", rows)
    lines = plan_loao(
        manifest,
        load_manifest(manifest),
        out=tmp_path / "plan",
        train_preset="toy_lcnn_erm",
        group_by="codec",
        seeds=(0, 1),
    )
    assert len(lines) == 2 * 5 and lines[0].startswith("cm --seed 0 train") and "/runs/seen/seed_1 " in lines[1]
    record = json.loads((tmp_path / "plan" / "loao_plan.json").read_text())
    planted = {("seen", 0): 10.0, ("seen", 1): 20.0, ("heldout_K4", 0): 40.0, ("heldout_K4", 1): 30.0}
    for (name, seed), eer in planted.items():
        folder = tmp_path / "plan" / "runs" / name / f"seed_{seed}" / "eval"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"by": {"codec": {"K4": {"eer": eer / 100, "n_spoof": 6}}}}))
    gaps, missing = retrained_gaps(record)
    k4 = gaps.set_index("attack").loc["K4"]
    assert k4["eer_seen"] == pytest.approx(15) and k4["eer_held_out"] == pytest.approx(35)
    assert k4["gap"] == pytest.approx(20) and k4["gap_sd"] == pytest.approx(np.std([30, 10], ddof=1))
    assert k4["n_seeds"] == 2 and any("heldout_K1" in m for m in missing)
