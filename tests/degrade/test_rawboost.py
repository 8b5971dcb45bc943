"""RawBoost (Tak et al. 2022) as a degradation: the formulas on a fixed seed, lengths, seeding, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from cm_cli.degrade import rawboost as rb

SR = 16000


def _speech(n=SR, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (
        0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(n)
    ).astype(np.float64)


def test_isd_changes_the_drawn_share_of_samples_by_at_most_g_sd_times_their_value():
    x = _speech() * 0.5  # peak < 1/3: no renormalisation, so unchanged samples stay bit-equal
    y = rb.isd_impulsive(x, np.random.default_rng(7))
    # replay the draws: beta ~ U(0, P), then the positions, then two uniforms per position
    rng = np.random.default_rng(7)
    beta = 0.0 + (10.0 - 0.0) * rng.random()
    n = int(len(x) * beta / 100)
    positions = rng.permutation(len(x))[:n]
    f_r = (2 * rng.random(n) - 1) * (2 * rng.random(n) - 1)
    expected = x.copy()
    expected[positions] += 2.0 * x[positions] * f_r
    expected = expected / max(1.0, np.abs(expected).max())
    np.testing.assert_array_equal(y, expected)
    changed = np.flatnonzero(y != x)
    assert 0 < len(changed) <= n and set(changed) <= set(positions)
    assert np.all(np.abs(y - x) <= 2.0 * np.abs(x) + 1e-12)


def test_ssi_adds_noise_at_the_drawn_snr():
    x = _speech()
    rng = np.random.default_rng(3)
    y = rb.ssi_additive(x, rng, SR)
    # the SNR is the last draw: replay the generator up to it
    replay = np.random.default_rng(3)
    replay.normal(0.0, 1.0, len(x))
    rb.notch_coeffs(replay, SR, min_g=0.0, max_g=0.0)
    snr = 10.0 + 30.0 * replay.random()
    measured = 20 * np.log10(np.linalg.norm(x) / np.linalg.norm(y - x))
    assert measured == pytest.approx(snr, abs=1e-9) and 10.0 <= measured <= 40.0


def test_notch_cascade_has_the_drawn_peak_gain_and_odd_order():
    rng = np.random.default_rng(1)
    b = rb.notch_coeffs(rng, SR, min_g=-20.0, max_g=-5.0)
    from scipy import signal

    _, h = signal.freqz(b, 1, fs=SR)
    replay = np.random.default_rng(1)
    for _ in range(5 * 3):
        replay.random()
    gain = -20.0 + 15.0 * replay.random()
    assert 20 * np.log10(np.abs(h).max()) == pytest.approx(gain, abs=1e-9)
    assert len(b) % 2 == 1  # a cascade of odd-length (type I) filters


def test_lnl_with_one_linear_term_is_the_zero_mean_filtered_signal():
    x = _speech()
    y = rb.lnl_convolutive(x, np.random.default_rng(5), SR, n_f=1)
    b = rb.notch_coeffs(np.random.default_rng(5), SR, min_g=0.0, max_g=0.0)
    expected = rb.fir_filter(x, b)
    expected = expected - expected.mean()
    np.testing.assert_allclose(y, expected / max(1.0, np.abs(expected).max()), atol=1e-12)
    assert abs(y.mean()) < 1e-12


@pytest.mark.parametrize("algo", range(1, 9))
def test_every_algorithm_keeps_the_length_changes_the_signal_and_is_seeded(algo):
    x = _speech(12345)
    a = rb.rawboost(x, SR, algo, np.random.default_rng(11))
    b = rb.rawboost(x, SR, algo, np.random.default_rng(11))
    c = rb.rawboost(x, SR, algo, np.random.default_rng(12))
    assert a.shape == x.shape and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, x.astype(np.float32)) and not np.array_equal(a, c)


def test_parallel_is_the_normalised_sum_of_lnl_and_isd_on_the_input():
    x = _speech()
    rng = np.random.default_rng(9)
    expected = rb.lnl_convolutive(x, rng, SR) + rb.isd_impulsive(x, rng)
    expected = expected / max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(rb.rawboost(x, SR, 8, np.random.default_rng(9)), expected.astype(np.float32))


def test_cli_degrade_rawboost_seeded_same_length(tmp_path):
    import soundfile as sf
    from typer.testing import CliRunner

    from cm_cli.app import app

    sf.write(tmp_path / "in.wav", _speech().astype(np.float32), SR)
    runner = CliRunner()
    outs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        result = runner.invoke(
            app,
            [
                "--seed",
                str(seed),
                "degrade",
                str(tmp_path / "in.wav"),
                str(tmp_path / f"{name}.wav"),
                "--chain",
                "rawboost:algo=4",
            ],
        )
        assert result.exit_code == 0, result.output
        outs[name] = sf.read(tmp_path / f"{name}.wav")[0]
    x = sf.read(tmp_path / "in.wav")[0]
    assert len(outs["a"]) == len(x) and not np.allclose(outs["a"], x)
    np.testing.assert_array_equal(outs["a"], outs["b"])
    assert not np.array_equal(outs["a"], outs["c"])
    bad = runner.invoke(
        app, ["degrade", str(tmp_path / "in.wav"), str(tmp_path / "d.wav"), "--chain", "rawboost:algo=9"]
    )
    assert bad.exit_code != 0 and not (tmp_path / "d.wav").exists()
