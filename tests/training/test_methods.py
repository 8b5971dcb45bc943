"""Every training method checked against a known answer (planted tests), plus the bad-input rules."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- CORAL


def test_coral_is_zero_for_identical_domains_and_matches_a_hand_computation_when_shifted():
    from cm_cli.training.methods.coral import coral_loss

    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 3))
    same = torch.tensor(np.concatenate([a, a]), dtype=torch.float32)
    groups = torch.tensor([0] * 6 + [1] * 6)
    loss, skipped = coral_loss(same, groups, 2)
    assert float(loss) == pytest.approx(0.0, abs=1e-10) and skipped == 0
    b = rng.standard_normal((5, 3)) * np.array([1.0, 3.0, 0.5]) + 2.0
    c = rng.standard_normal((7, 3)) @ np.array([[1, 0.8, 0], [0, 1, 0], [0, 0, 2.0]])
    x = torch.tensor(np.concatenate([a, b, c]), dtype=torch.float64)
    groups = torch.tensor([0] * 6 + [1] * 5 + [2] * 7)
    loss, _ = coral_loss(x, groups, 3)
    covs = [np.cov(g, rowvar=False, ddof=1) for g in (a, b, c)]
    pairs = [((covs[i] - covs[j]) ** 2).sum() / (4 * 3 * 3) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert float(loss) == pytest.approx(np.mean(pairs), rel=1e-5) and float(loss) > 0


def test_coral_skips_groups_with_fewer_than_two_rows_and_never_returns_nan():
    from cm_cli.training.methods.coral import coral_loss

    x = torch.randn(5, 4)
    loss, skipped = coral_loss(x, torch.tensor([0, 0, 0, 1, -100]), 3)
    assert loss is None and skipped == 1  # one usable group left: no pair, the term is skipped
    loss, skipped = coral_loss(x, torch.tensor([0, 0, 1, 1, 2]), 3)
    assert skipped == 1 and torch.isfinite(loss)


# ---------------------------------------------------------------- MMD


def _kernel_by_hand(x):
    from cm_cli.training.methods.mmd import KERNEL_POWERS

    sq = ((x[:, None] - x[None]) ** 2).sum(-1)
    s = sq.sum() / (len(x) * (len(x) - 1))
    return np.mean([np.exp(-sq / (2.0**p * s)) for p in KERNEL_POWERS], axis=0)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_mmd_is_about_zero_for_one_distribution_and_grows_with_the_shift(estimator):
    from cm_cli.training.methods.mmd import mmd_loss

    rng = np.random.default_rng(1)
    values = []
    for shift in (0.0, 0.5, 1.0, 2.0):
        a = rng.standard_normal((200, 4))
        b = rng.standard_normal((150, 4)) + shift  # unequal group sizes
        x = torch.tensor(np.concatenate([a, b]), dtype=torch.float64)
        loss, skipped = mmd_loss(x, torch.tensor([0] * 200 + [1] * 150), 2, estimator)
        values.append(float(loss))
    # null: the U-statistic is centred on 0; the V-statistic's bias is O(1/n) (the diagonal terms, 1/200 + 1/150
    # times (1 - mean off-diagonal kernel)), so both sit below 0.015 while the smallest shift gives more than 0.03
    assert abs(values[0]) < 0.015 and values[1] > 0.03
    assert values[0] < values[1] < values[2] < values[3]


def test_mmd_biased_estimate_is_the_squared_distance_of_mean_embeddings_written_out():
    from cm_cli.training.methods.mmd import mmd_loss

    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 2))
    g = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    loss, skipped = mmd_loss(torch.tensor(x), torch.tensor(g), 3)  # default: biased
    k = _kernel_by_hand(x)
    groups = [np.flatnonzero(g == v) for v in range(3)]

    def v_stat(a, b):
        return k[np.ix_(a, a)].mean() + k[np.ix_(b, b)].mean() - 2 * k[np.ix_(a, b)].mean()

    pairs = [v_stat(groups[i], groups[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert skipped == 0 and float(loss) == pytest.approx(np.mean(pairs), rel=1e-5)  # computed in float32
    # V = U + (1 - u_a) / n_a + (1 - u_b) / n_b, u: a group's mean kernel over pairs i != j (docs/training.md)
    two = g < 2
    v, _ = mmd_loss(torch.tensor(x[two]), torch.tensor(g[two]), 2, "biased")
    u, _ = mmd_loss(torch.tensor(x[two]), torch.tensor(g[two]), 2, "unbiased")
    k2 = _kernel_by_hand(x[two])
    within = [
        k2[np.ix_(m, m)][~np.eye(len(m), dtype=bool)].mean() for m in (np.flatnonzero(g[two] == c) for c in (0, 1))
    ]
    assert float(v) == pytest.approx(float(u) + (1 - within[0]) / 3 + (1 - within[1]) / 4, rel=1e-5)


def test_mmd_biased_estimate_is_never_negative_where_the_unbiased_one_is():
    from cm_cli.training.methods.mmd import mmd_loss

    rng = np.random.default_rng(3)
    biased, unbiased = [], []
    for _ in range(200):  # one distribution, toy-batch-sized groups: the U-statistic's sign is noise
        x = torch.tensor(rng.standard_normal((16, 8)), dtype=torch.float64)
        target = torch.tensor(rng.integers(0, 3, 16))
        b, _ = mmd_loss(x, target, 3, "biased")
        u, _ = mmd_loss(x, target, 3, "unbiased")
        if b is not None:
            biased.append(float(b))
            unbiased.append(float(u))
    assert min(biased) > 0 and np.mean(np.array(unbiased) < 0) > 0.2


def test_mmd_unbiased_option_matches_the_u_statistic_written_out():
    from cm_cli.training.methods.mmd import mmd_loss

    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 2))
    g = np.array([0, 0, 0, 1, 1, 1, 1])
    loss, _ = mmd_loss(torch.tensor(x), torch.tensor(g), 2, "unbiased")
    k = _kernel_by_hand(x)
    a, b = np.flatnonzero(g == 0), np.flatnonzero(g == 1)
    kaa = (k[np.ix_(a, a)].sum() - np.trace(k[np.ix_(a, a)])) / (3 * 2)
    kbb = (k[np.ix_(b, b)].sum() - np.trace(k[np.ix_(b, b)])) / (4 * 3)
    kab = k[np.ix_(a, b)].mean()
    assert float(loss) == pytest.approx(kaa + kbb - 2 * kab, rel=1e-5)  # computed in float32


def test_mmd_estimator_option_is_checked_and_recorded():
    from cm_cli.core.errors import UsageError
    from cm_cli.training.methods.base import resolve_options
    from cm_cli.training.methods.mmd import Mmd

    assert resolve_options(Mmd, {}) == {"weight": 1.0, "estimator": "biased"}
    assert resolve_options(Mmd, {"estimator": "unbiased"})["estimator"] == "unbiased"
    with pytest.raises(UsageError, match="biased, unbiased"):
        resolve_options(Mmd, {"estimator": "v"})


@pytest.mark.parametrize("method", ["coral", "mmd"])
def test_a_batch_with_no_usable_pair_logs_zero_and_counts_the_skip(method):
    from cm_cli.training.config import TrainConfig
    from cm_cli.training.methods import get_method

    config = TrainConfig(method=method, domain_columns=["domain"])
    instance = get_method(method)(config, {"domain": ["a", "b", "c"]})
    rep = torch.randn(5, 4, requires_grad=True)
    terms = instance.terms(rep, {"domain": torch.tensor([0, 0, 0, 1, -100])}, 1, None)
    assert terms.stats == {f"loss_{method}": 0.0, f"{method}_skipped": 1.0}
    assert float(terms.total.detach()) == 0.0
    terms = instance.terms(rep, {"domain": torch.tensor([0, 0, 1, 1, 2])}, 1, None)
    assert terms.stats[f"loss_{method}"] > 0 and terms.stats[f"{method}_skipped"] == 1.0


# ---------------------------------------------------------------- GroupDRO


def test_groupdro_weights_move_to_the_worst_group():
    from cm_cli.training.methods.groupdro import dro_update

    q = torch.full((3,), 1 / 3)
    losses = torch.tensor([0.2, 1.5, 0.4])
    present = torch.tensor([True, True, False])
    new = dro_update(q, losses, present, 0.1)
    expected = np.array([np.exp(0.02), np.exp(0.15), 1.0]) / 3
    np.testing.assert_allclose(new.numpy(), expected / expected.sum(), rtol=1e-6)
    for _ in range(50):
        q = dro_update(q, losses, torch.tensor([True, True, True]), 0.1)
    assert int(q.argmax()) == 1 and float(q[1]) > 0.9


def _feature_data(n=64, layers=2, dim=6, noisy_group=None, seed=0):
    from cm_cli.training.data import TrainData
    from cm_cli.training.features import FeatureSet

    rng = np.random.default_rng(seed)
    labels = np.array(["bonafide" if i % 2 else "spoof" for i in range(n)])
    domain = np.array(["a" if i % 4 < 2 else "b" for i in range(n)])
    values = rng.standard_normal((n, layers, dim)).astype(np.float32)
    values[:, 0, 0] += np.where(labels == "bonafide", 2.0, -2.0)
    if noisy_group is not None:  # the planted hard group: its labels are half flipped
        flip = (domain == noisy_group) & (rng.random(n) < 0.5)
        labels = np.where(flip, np.where(labels == "bonafide", "spoof", "bonafide"), labels)
    frame = pd.DataFrame({"utt_id": [f"u{i}" for i in range(n)], "label": labels, "domain": domain})
    cache = FeatureSet(
        frame["utt_id"].to_numpy(dtype=str), values, [f"layer_{i:02d}" for i in range(layers)], "meanstd"
    )
    return frame, cache, TrainData(frame, None, None, {"domain": ["a", "b"]}, None)


def _trainer(method, data, cache, **kwargs):
    from cm_cli.training import features as feats
    from cm_cli.training.config import TrainConfig

    base = dict(
        method=method,
        backbone="wavlm",
        epochs=1,
        max_steps=100,
        batch_size=len(cache.ids),
        lr=1e-2,
        seed=0,
        head="8",
        domain_columns=["domain"],
        clip_grad=0,
        weight_decay=0.0,
        model_options={"dropout": 0.0},
    )
    config = TrainConfig(**{**base, **kwargs}).validate()
    return feats.feature_head_step(config, data, cache).__self__


def test_groupdro_run_puts_more_weight_on_the_group_with_noisy_labels():
    frame, cache, data = _feature_data(noisy_group="b")
    trainer = _trainer("groupdro", data, cache, method_options={"step": 0.05})
    for _ in range(30):
        trainer._step(np.arange(len(frame)))
    last = trainer.state.history[-1]
    assert last["dro_q_b"] > last["dro_q_a"] and last["dro_q_a"] + last["dro_q_b"] == pytest.approx(1.0)


# ---------------------------------------------------------------- SAM / ASAM


@pytest.mark.parametrize("method, rho", [("sam", 0.05), ("asam", 0.5)])
def test_sam_step_equals_manual_perturb_then_step(method, rho):
    import torch.nn.functional as F

    frame, cache, data = _feature_data()
    trainer = _trainer(method, data, cache, method_options={})
    twin = copy.deepcopy(trainer.head)
    x = torch.from_numpy(cache.values)
    y = torch.from_numpy((frame["label"] == "bonafide").to_numpy().astype(np.int64))
    trainer._step(np.arange(len(frame)))
    # by hand: gradient at w, e = rho g / ||g|| (ASAM: rho T^2 g / ||T g||, T = |w| + 0.01 on matrices), gradient at
    # w + e, back to w, one AdamW step with that gradient
    params = [p for p in twin.parameters()]
    loss = F.cross_entropy(twin(x).logits, y)
    grads = torch.autograd.grad(loss, params)
    scale = [(p.abs() + 0.01) if method == "asam" and p.dim() > 1 else torch.ones_like(p) for p in params]
    norm = torch.sqrt(sum(((g * t) ** 2).sum() for g, t in zip(grads, scale)))
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g, t in zip(params, grads, scale):
            p.add_(rho * t * t * g / (norm + 1e-12))
    grads2 = torch.autograd.grad(F.cross_entropy(twin(x).logits, y), params)
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    for p, g in zip(params, grads2):
        p.grad = g
    optimizer.step()
    for (name, a), b in zip(trainer.head.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-7, err_msg=name)


def test_sam_pass_leaves_batchnorm_statistics_to_the_first_pass():
    from cm_cli.training.methods.sam import frozen_batchnorm_stats

    bn = torch.nn.BatchNorm1d(3)
    with frozen_batchnorm_stats(bn):
        bn.train()(torch.randn(8, 3) + 5)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and bn.momentum == 0.1


# ---------------------------------------------------------------- OC-Softmax


def test_oc_softmax_equals_its_formula_and_scores_the_cosine():
    from cm_cli.models.heads import CosineScore, score_from_logits
    from cm_cli.training.methods.losses import oc_softmax

    head = CosineScore(4)
    x = torch.randn(6, 4)
    logits = head(x)
    w = head.direction.detach()[0]
    cos = (x @ w) / (x.norm(dim=1) * w.norm())
    assert torch.allclose(score_from_logits(logits), cos, atol=1e-6)
    labels = torch.tensor([1, 0, 1, 0, 0, 1])  # 1 = bona fide
    expected = np.mean(
        [
            np.log1p(np.exp(20 * (0.9 - c))) if lab else np.log1p(np.exp(20 * (c - 0.2)))
            for c, lab in zip(cos.tolist(), labels.tolist())
        ]
    )
    assert float(oc_softmax(logits, labels).detach()) == pytest.approx(expected, rel=1e-5)


def test_oc_softmax_feature_head_learns_a_planted_label_with_higher_score_for_bona_fide():
    from cm_cli.training import features as feats

    frame, cache, data = _feature_data()
    trainer = _trainer("erm", data, cache, loss="ocsoftmax", domain_columns=[])
    for _ in range(60):
        trainer._step(np.arange(len(frame)))
    scores = feats._score(trainer.head, cache.values, "cpu")
    bona = frame["label"].to_numpy() == "bonafide"
    assert scores[bona].mean() > scores[~bona].mean() and np.abs(scores).max() <= 1.0 + 1e-6


# ---------------------------------------------------------------- adding a method (docs/training.md)


def test_adding_a_method_is_one_module_and_one_line(toy_tiny, tmp_path):
    """Follows docs/training.md "Adding a method" literally: subclass Method, register it, train."""
    from cm_cli.training.methods import method_names, register
    from cm_cli.training.methods.base import Method, Option, Terms

    class FeatureNorm(Method):
        """Penalise the squared norm of the representation (a toy regulariser)."""

        name = "featnorm"
        options = (Option("weight", 0.01, 0.0, "weight of the norm penalty"),)

        def columns(self):
            return ["loss_featnorm"]

        def terms(self, rep, targets, step, modules, tap=None):
            penalty = rep.float().pow(2).sum(-1).mean()
            return Terms(self.opts["weight"] * penalty, {"loss_featnorm": float(penalty.detach())})

    register("featnorm", FeatureNorm)
    try:
        from cm_cli.training.config import TrainConfig
        from cm_cli.training.run import train_run

        root, manifest = toy_tiny
        config = TrainConfig(
            method="featnorm",
            backbone="lcnn",
            corpus="toy",
            max_steps=2,
            batch_size=8,
            max_len=1.0,
            method_options={"weight": "0.5"},
        )
        outcome = train_run(config, manifest, tmp_path / "run", data_root=root, cache_dir=tmp_path / "cache")
        assert outcome.status == "complete" and "featnorm" in method_names()
        history = pd.read_parquet(tmp_path / "run/history.parquet")
        assert (history["loss_featnorm"] > 0).all()
        from cm_cli.core.artifacts import read_json

        assert read_json(tmp_path / "run/config.json")["train"]["method_options"] == {"weight": 0.5}
    finally:
        from cm_cli.training import methods

        methods._REGISTRY.pop("featnorm", None)
