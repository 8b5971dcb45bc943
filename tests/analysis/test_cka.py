"""CKA: invariant to rotation, near 0 for independent noise, both estimators agree with Gram-matrix formulas."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.analysis.cka import CkaConfig, compute_cka, hsic, linear_cka, minibatch_cka, run_cka
from cm_cli.core.errors import CmError
from tests.analysis.synth import write_embeddings


def _gram_hsic(X, Y, estimator):
    n = len(X)
    K, L = X @ X.T, Y @ Y.T
    if estimator == "biased":
        H = np.eye(n) - 1 / n
        return np.trace(K @ H @ L @ H) / (n - 1) ** 2
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    return (
        np.trace(K @ L) + one @ K @ one * (one @ L @ one) / ((n - 1) * (n - 2)) - 2 / (n - 2) * one @ K @ L @ one
    ) / (n * (n - 3))


@pytest.mark.parametrize("estimator", ["biased", "debiased"])
def test_feature_space_hsic_equals_gram_formula(estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    Y = X[:, :3] @ rng.normal(size=(3, 4)) + rng.normal(size=(40, 4))
    assert hsic(X, Y, estimator=estimator) == pytest.approx(_gram_hsic(X, Y, estimator), rel=1e-9)


@pytest.mark.parametrize("estimator", ["biased", "debiased"])
def test_rotation_is_one_and_noise_near_zero(estimator):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 12))
    Q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert linear_cka(X, 2.5 * X @ Q + 4.0, estimator=estimator) == pytest.approx(1.0, abs=1e-9)
    noise = rng.normal(size=(3000, 12))
    assert linear_cka(X, noise, estimator=estimator) < 0.02
    assert minibatch_cka(X, X @ Q, batch_size=300, estimator="debiased") == pytest.approx(1.0, abs=1e-9)
    assert minibatch_cka(X, noise, batch_size=300, estimator="debiased") < 0.02
    # issue 13.1: the biased HSIC summed over minibatches is refused (it was 0.80 for noise at batch 64)
    with pytest.raises(CmError, match="refused with minibatches"):
        minibatch_cka(X, X @ Q, batch_size=300, estimator="biased")


def _planted_pair(tmp_path):
    rng = np.random.default_rng(13)
    ids = [f"u{i}" for i in range(2048)]
    X, Y = rng.normal(size=(2048, 256)), rng.normal(size=(2048, 256))
    Q, _ = np.linalg.qr(rng.normal(size=(256, 256)))
    a = write_embeddings(tmp_path / "a", ids, {"layer_00": X, "layer_01": X}, dtype=np.float32)
    b = write_embeddings(tmp_path / "b", ids, {"layer_00": Y, "layer_01": X @ Q}, dtype=np.float32)
    return a, b


def test_minibatch_default_is_unbiased_hsic_on_planted_data(tmp_path):
    """Independent 2048x256 Gaussians: |CKA| < 0.05 at batch 64 (biased minibatch gave 0.80); a rotation: > 0.95."""
    a, b = _planted_pair(tmp_path)
    table, summary = compute_cka(a, b, config=CkaConfig(batch_size=64, layers_a="layer_00,layer_01"))
    assert set(table["estimator"]) == {"debiased-minibatch64"} and summary["hsic"] == "debiased"
    assert "unbiased HSIC" in summary["measures"] and "minibatches of 64" in summary["measures"]
    assert abs(summary["diagonal"]["layer_00"]) < 0.05
    assert summary["diagonal"]["layer_01"] > 0.95
    with pytest.raises(CmError, match="refused with minibatches"):
        compute_cka(a, b, config=CkaConfig(estimator="biased", batch_size=64, layers_a="layer_00"))
    _, full = compute_cka(a, b, config=CkaConfig(layers_a="layer_00"))
    assert full["estimator"] == "biased" and "biased HSIC" in full["measures"]


def test_matrix_diagonal_and_identical_layers(tmp_path):
    rng = np.random.default_rng(2)
    ids = [f"u{i}" for i in range(400)]
    X, Y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    a = write_embeddings(tmp_path / "a", ids, {"layer_00": X, "layer_01": Y}, dtype=np.float32)
    b = write_embeddings(
        tmp_path / "b", ids[::-1], {"layer_00": X[::-1], "layer_01": rng.normal(size=(400, 8))}, dtype=np.float32
    )
    table, summary = compute_cka(a, b)
    assert list(table.columns) == ["layer_a", "layer_b", "cka", "estimator"] and len(table) == 4
    assert summary["diagonal"]["layer_00"] == pytest.approx(1.0)
    assert summary["identical_layers"] == ["layer_00"] and "by construction" in " ".join(summary["notes"])
    assert summary["diagonal"]["layer_01"] < 0.1
    _, same = compute_cka(a, a, config=CkaConfig(estimator="debiased", batch_size=100))
    assert same["identical_inputs"] and same["estimator"] == "debiased-minibatch100"


def test_errors(tmp_path):
    a = write_embeddings(tmp_path / "a", ["a", "b", "c", "d", "e"], {"layer_00": np.eye(5)})
    b = write_embeddings(tmp_path / "b", ["x", "y", "z", "w", "v"], {"layer_00": np.eye(5)})
    with pytest.raises(CmError, match="share no utt_id"):
        run_cka(a, b, out=tmp_path / "never")
    with pytest.raises(CmError, match="unknown CKA estimator"):
        compute_cka(a, a, config=CkaConfig(estimator="rbf"))
    with pytest.raises(CmError, match="no layer"):
        compute_cka(a, a, config=CkaConfig(layers_a="layer_05"))
    assert not (tmp_path / "never").exists()
