"""Planted seed studies for the calibration of ``metrics.stats.seed_test``, vectorised over studies.

One study: two methods A and B, k seeds each, scored on the same N trials of K speakers.
A score is ``label * (separation + seed shift) + speaker offset + trial noise``: trial
noise N(0, 1) fresh for every seed (each trained model errs on its own trials), a
speaker offset N(0, speaker_sd) shared by every system (hard speakers are hard for
all), a seed shift N(0, seed_sd) per seed (seed_sd in units of the trial noise).
Under the null B has A's separation; a planted effect adds ``effect`` to B's. With
``interaction_sd`` B's separation also varies by speaker (zero on average over speakers):
a difference that a fixed set of speakers shows and a new set would not, which only the
trial-sampling term of the test accounts for.
Used by tests/metrics/test_seedtest.py and benchmarks/bench_seedstats.py.
"""

from __future__ import annotations

import numpy as np

from cm_cli.metrics.stats import draw_counts, seed_test_batch, weighted_eer_dcf


def _eers(scores: np.ndarray, is_bona: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """EER of every score set (..., S, N) under weights (..., B, N) broadcast per set: (..., S, B)."""
    labels = np.broadcast_to(is_bona, scores.shape)
    order = np.lexsort((~labels, scores), axis=-1)  # ascending score, ties bona fide first
    sorted_bona = np.take_along_axis(labels, order, -1)
    w = np.take_along_axis(weights[..., None, :, :], order[..., None, :], -1)  # (..., S, B, N)
    return weighted_eer_dcf(sorted_bona[..., None, :], w, None)[0]


def _welch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sided p of Welch's t on each row's seed values (an independent re-statement; 1 where both sds are 0)."""
    from scipy import stats as st

    va, vb = a.var(axis=-1, ddof=1) / a.shape[-1], b.var(axis=-1, ddof=1) / b.shape[-1]
    var = va + vb
    safe = np.where(var > 0, var, 1.0)
    df = safe**2 / np.maximum(va**2 / (a.shape[-1] - 1) + vb**2 / (b.shape[-1] - 1), 1e-300)
    t = (b.mean(axis=-1) - a.mean(axis=-1)) / np.sqrt(safe)
    return np.where(var > 0, 2 * st.t.sf(np.abs(t), df), 1.0)


def simulate(
    n_studies: int,
    k: int,
    seed_sd: float,
    *,
    effect: float = 0.0,
    interaction_sd: float = 0.0,
    n_speakers: int = 16,
    per_speaker: int = 10,
    separation: float = 2.0,
    speaker_sd: float = 0.5,
    n_boot: int = 30,
    seed: int = 0,
    chunk: int = 50,
) -> dict:
    """p-values of ``seed_test`` and of Welch's t on the seed EERs over ``n_studies`` planted studies."""
    rng = np.random.default_rng(seed)
    n = n_speakers * per_speaker
    speaker = np.repeat(np.arange(n_speakers), per_speaker)
    is_bona = np.tile(np.arange(per_speaker) < per_speaker // 2, n_speakers)
    p_seed, p_welch = [], []
    for start in range(0, n_studies, chunk):
        s = min(chunk, n_studies - start)
        sep = separation + rng.normal(0, seed_sd, (s, 2, k)) if seed_sd > 0 else np.full((s, 2, k), separation)
        sep = sep[..., None] + np.zeros(n)
        sep[:, 1] += effect
        if interaction_sd:
            sep[:, 1] += rng.normal(0, interaction_sd, (s, 1, n_speakers))[..., speaker]
        offsets = rng.normal(0, speaker_sd, (s, 1, 1, n_speakers))[..., speaker]
        scores = (is_bona * sep + offsets + rng.normal(0, 1, (s, 2, k, n))).reshape(s, 2 * k, n)
        points = _eers(scores, is_bona, np.ones((s, 1, n)))[..., 0]  # (s, 2k)
        counts = np.stack([next(draw_counts(n_speakers, n_boot, rng, chunk=n_boot)) for _ in range(s)])
        boot = _eers(scores, is_bona, counts[..., speaker].astype(np.float64))  # (s, 2k, B)
        result = seed_test_batch(
            points[:, :k],
            points[:, k:],
            np.swapaxes(boot[:, :k], 1, 2),
            np.swapaxes(boot[:, k:], 1, 2),
            n_clusters=n_speakers,
        )
        p_seed.append(result["p_value"])
        p_welch.append(_welch(points[:, :k], points[:, k:]))
    p_seed, p_welch = np.concatenate(p_seed), np.concatenate(p_welch)
    return {"p_seed": np.array(p_seed), "p_welch": np.array(p_welch)}


def rejection_table(
    n_studies: int = 400,
    *,
    seeds=(3, 5),
    seed_sds=(0.0, 0.25, 0.5),
    effect: float = 0.0,
    alpha: float = 0.05,
    seed: int = 0,
    **kwargs,
) -> list[dict]:
    """Rejection rate at ``alpha`` of the seed test and of Welch's t per (seeds, seed sd)."""
    rows = []
    for i, k in enumerate(seeds):
        for j, sd in enumerate(seed_sds):
            out = simulate(n_studies, k, sd, effect=effect, seed=seed + 100 * i + j, **kwargs)
            rows.append(
                {
                    "seeds": k,
                    "seed_sd": sd,
                    "effect": effect,
                    "n_studies": n_studies,
                    "seed_test": float(np.mean(out["p_seed"] < alpha)),
                    "welch": float(np.mean(np.nan_to_num(out["p_welch"], nan=1.0) < alpha)),
                }
            )
    return rows
