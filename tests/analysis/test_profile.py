"""Attack profiling on planted feature tables: separable attacks, a held-out attack, a null, proximity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cm_cli.analysis.profile import ProfileConfig, compute_profile


def write_table(path, ids, X):
    from cm_cli.embedding.store import EmbeddingWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = EmbeddingWriter(path, value_type="float32")
    writer.write(list(ids), {"layer_00": X.astype(np.float32)}, {})
    writer.commit()
    return path


def planted(tmp_path, centres: dict, *, n_speakers=10, per=4, dim=8, noise=1.0, seed=0, bona_centre=None):
    """Spoofs of each attack around its centre (+ bona fide rows); speakers recur across attacks."""
    rng = np.random.default_rng(seed)
    rows, X = [], []
    for attack, centre in centres.items():
        for s in range(n_speakers):
            for k in range(per):
                rows.append({"utt_id": f"{attack}_{s}_{k}", "label": "spoof", "attack": attack, "speaker": f"s{s}"})
                X.append(np.asarray(centre, float) + noise * rng.standard_normal(dim))
    if bona_centre is not None:
        for s in range(n_speakers):
            for k in range(per):
                rows.append({"utt_id": f"bona_{s}_{k}", "label": "bonafide", "attack": None, "speaker": f"s{s}"})
                X.append(np.asarray(bona_centre, float) + noise * rng.standard_normal(dim))
    frame = pd.DataFrame(rows)
    table = write_table(tmp_path / "emb" / "embeddings.parquet", frame["utt_id"], np.stack(X))
    return table, frame


def unit(i, dim=8, scale=6.0):
    v = np.zeros(dim)
    v[i] = scale
    return v


def test_separable_attacks_are_traced(tmp_path):
    centres = {f"A0{i}": unit(i) for i in range(1, 5)}
    table, frame = planted(tmp_path, centres, bona_centre=np.zeros(8))
    profile, confusion, summary = compute_profile(table.parent, frame, config=ProfileConfig(folds=5, n_boot=200))
    assert summary["accuracy"] > 0.95 and summary["ci_low"] > 0.85 and summary["chance_uniform"] == 0.25
    assert (profile["accuracy"] > 0.9).all()
    diagonal = confusion[confusion["true"] == confusion["predicted"]]["count"].sum()
    assert diagonal / confusion["count"].sum() == pytest.approx(summary["accuracy"])
    assert len(confusion) == 16 and set(profile["attack"]) == set(centres)


def test_a_held_out_attack_between_the_known_ones_is_flagged_unknown(tmp_path):
    # A04 sits midway between A01..A03: the softmax over the known attacks is unsure there
    centres = {"A01": unit(0), "A02": unit(1), "A03": unit(2), "A04": (unit(0) + unit(1) + unit(2)) / 3}
    table, frame = planted(tmp_path, centres, noise=0.7)
    profile, _, summary = compute_profile(table.parent, frame, config=ProfileConfig(holdout=("A04",), n_boot=100))
    row = profile.set_index("attack").loc["A04"]
    assert row["auroc_unknown"] > 0.9 and row["flagged_at_95"] > 0.5
    assert np.isnan(profile.set_index("attack").loc["A01", "auroc_unknown"])  # only A04 was held out
    assert summary["holdout"] == ["A04"]


def test_a_held_out_attack_far_from_the_known_ones_has_a_high_distance_auroc(tmp_path):
    centres = {"A01": unit(0), "A02": unit(1), "A03": unit(2), "A04": unit(5, scale=12.0)}
    table, frame = planted(tmp_path, centres)
    profile, _, _ = compute_profile(table.parent, frame, config=ProfileConfig(holdout=("A04",), n_boot=100))
    assert profile.set_index("attack").loc["A04", "auroc_unknown_distance"] > 0.95


def test_null_features_give_chance(tmp_path):
    centres = {f"A0{i}": np.zeros(8) for i in range(1, 5)}
    table, frame = planted(tmp_path, centres, n_speakers=12, per=5, bona_centre=np.zeros(8), seed=3)
    _, _, summary = compute_profile(table.parent, frame, config=ProfileConfig(n_boot=300))
    assert summary["ci_low"] < 0.25 < summary["ci_high"] + 0.05 and summary["accuracy"] < 0.4
    assert abs(summary["mean_auroc_unknown"] - 0.5) < 0.12
    assert abs(summary["mean_auroc_unknown_distance"] - 0.5) < 0.12


def test_bona_fide_proximity_and_its_correlation(tmp_path):
    # A01..A04 at growing distance from bona fide (the origin) along one axis, told apart on others
    centres = {f"A0{i}": unit(0, scale=2.0 * i) + unit(3 + i, scale=3.0) for i in range(1, 5)}
    table, frame = planted(tmp_path, centres, bona_centre=np.zeros(8), noise=0.5)
    profile, _, summary = compute_profile(table.parent, frame, config=ProfileConfig(n_boot=100))
    d = profile.set_index("attack")["d_bona"]
    assert list(d.sort_values().index) == ["A01", "A02", "A03", "A04"]
    assert "proximity_vs_auroc_d_bona" in summary and summary["proximity_vs_auroc_d_bona"]["n"] == 4


def test_errors_one_attack_and_unknown_holdout(tmp_path):
    from cm_cli.core.errors import CmError

    table, frame = planted(tmp_path, {"A01": unit(0)}, bona_centre=np.zeros(8))
    with pytest.raises(CmError, match="at least 2 attacks"):
        compute_profile(table.parent, frame)
    table, frame = planted(tmp_path, {"A01": unit(0), "A02": unit(1)})
    with pytest.raises(CmError, match="held-out attack.*A09"):
        compute_profile(table.parent, frame, config=ProfileConfig(holdout=("A09",)))
