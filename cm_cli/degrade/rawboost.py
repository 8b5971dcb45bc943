"""RawBoost data augmentation (Tak et al., ICASSP 2022), algorithms 1-8, as a degradation.

Why here: augmentation policies and ``cm degrade`` draw every degradation from one
registry with per-utterance seeds; RawBoost joins it as ``rawboost:algo=N``.

The three primitives follow the paper and the official code (TakHemlata/RawBoost-antispoofing,
``RawBoost.py``), with the defaults of its ``main.py``:
1. LnL, linear and non-linear convolutive noise: ``y = sum_{j=1..N_f} h_j * x^j`` where each
   ``h_j`` is a cascade of ``nBands`` = 5 FIR notch (band-pass) filters, centre ``U(20, 8000)`` Hz,
   bandwidth ``U(100, 1000)`` Hz, odd order from ``U{10..100}``, Hamming window, scaled to a peak
   gain ``10^(G/20)`` with ``G`` = 0 dB for ``j = 1`` and ``U(-20, -5)`` dB (bias 5..20 dB) for the
   non-linear terms; ``N_f = 5``; then mean removed and peak-normalised if above 1.
2. ISD, impulsive signal-dependent noise: ``beta ~ U(0, P)``, ``P = 10`` %; ``floor(L beta / 100)``
   random samples get ``x[p] += g_sd * x[p] * (2u-1)(2u'-1)``, ``g_sd = 2``; peak-normalised if above 1.
3. SSI, stationary signal-independent (coloured) additive noise: white Gaussian noise through
   a notch cascade as in 1 (gain 0 dB), peak-normalised, scaled to an SNR ``U(10, 40)`` dB.
Combinations: 4 = 1, 2, 3 in series; 5 = 1, 2; 6 = 1, 3; 7 = 2, 3; 8 = 1 and 2 in parallel on the
input, summed and peak-normalised if above 1. The output has the input's length; every
random draw comes from the step's generator (``--seed`` and the utterance id).
"""

from __future__ import annotations

import numpy as np

from cm_cli.degrade.registry import Degradation, Param, StepContext, register_degradation

__all__ = [
    "ALGORITHMS",
    "DEFAULTS",
    "notch_coeffs",
    "fir_filter",
    "lnl_convolutive",
    "isd_impulsive",
    "ssi_additive",
    "rawboost",
]

# the official main.py defaults (Tak et al. 2022)
DEFAULTS = dict(
    n_bands=5,
    min_f=20.0,
    max_f=8000.0,
    min_bw=100.0,
    max_bw=1000.0,
    min_coeff=10,
    max_coeff=100,
    min_g=0.0,
    max_g=0.0,
    min_bias=5.0,
    max_bias=20.0,
    n_f=5,
    p=10.0,
    g_sd=2.0,
    snr_min=10.0,
    snr_max=40.0,
)
ALGORITHMS = {
    1: ("lnl",),
    2: ("isd",),
    3: ("ssi",),
    4: ("lnl", "isd", "ssi"),
    5: ("lnl", "isd"),
    6: ("lnl", "ssi"),
    7: ("isd", "ssi"),
    8: ("parallel",),
}


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """``low + (high - low) u``: numpy's legacy ``uniform`` mapping, which the official code relies on for
    ``low > high`` (the non-linear gains ``U(-5, -20)``)."""
    return float(low + (high - low) * rng.random())


def _peak_normalise(x: np.ndarray, always: bool = False) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0 and (always or peak > 1.0):
        return x / peak
    return x


def notch_coeffs(
    rng: np.random.Generator,
    sr: int,
    *,
    min_g: float,
    max_g: float,
    n_bands: int = 5,
    min_f: float = 20.0,
    max_f: float = 8000.0,
    min_bw: float = 100.0,
    max_bw: float = 1000.0,
    min_coeff: int = 10,
    max_coeff: int = 100,
) -> np.ndarray:
    """A cascade of ``n_bands`` random FIR band filters, scaled to peak gain ``10^(G/20)``, ``G ~ U(min_g, max_g)``."""
    from scipy import signal

    b = np.ones(1)
    for _ in range(n_bands):
        fc = _uniform(rng, min_f, max_f)
        bw = _uniform(rng, min_bw, max_bw)
        order = int(_uniform(rng, min_coeff, max_coeff))
        order += 1 if order % 2 == 0 else 0  # odd length: a type I linear-phase filter
        f1, f2 = max(fc - bw / 2, 1e-3), min(fc + bw / 2, sr / 2 - 1e-3)
        b = np.convolve(signal.firwin(order, [f1, f2], window="hamming", fs=sr), b)
    gain = _uniform(rng, min_g, max_g)
    _, h = signal.freqz(b, 1, fs=sr)
    return 10.0 ** (gain / 20.0) * b / np.max(np.abs(h))


def fir_filter(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``b`` applied to ``x`` with its group delay removed (same length out): the official ``filterFIR``."""
    from scipy import signal

    n = b.shape[0] + 1
    y = signal.lfilter(b, 1, np.pad(x, (0, n)))
    return y[n // 2 : n // 2 + x.shape[0]]


def lnl_convolutive(x: np.ndarray, rng: np.random.Generator, sr: int, **kw) -> np.ndarray:
    """Algorithm 1 (module docstring)."""
    o = {**DEFAULTS, **kw}
    y = np.zeros_like(x)
    min_g, max_g = o["min_g"], o["max_g"]
    for j in range(o["n_f"]):
        if j == 1:  # the non-linear terms are attenuated by the bias (official code: from the second term on)
            min_g, max_g = min_g - o["min_bias"], max_g - o["max_bias"]
        b = notch_coeffs(rng, sr, min_g=min_g, max_g=max_g, **_band_args(o))
        y = y + fir_filter(np.power(x, j + 1), b)
    return _peak_normalise(y - np.mean(y))


def isd_impulsive(x: np.ndarray, rng: np.random.Generator, **kw) -> np.ndarray:
    """Algorithm 2 (module docstring)."""
    o = {**DEFAULTS, **kw}
    beta = _uniform(rng, 0.0, o["p"])
    n = int(x.shape[0] * (beta / 100.0))
    positions = rng.permutation(x.shape[0])[:n]
    f_r = (2 * rng.random(n) - 1) * (2 * rng.random(n) - 1)
    y = x.copy()
    y[positions] = x[positions] + o["g_sd"] * x[positions] * f_r
    return _peak_normalise(y)


def ssi_additive(x: np.ndarray, rng: np.random.Generator, sr: int, **kw) -> np.ndarray:
    """Algorithm 3 (module docstring)."""
    o = {**DEFAULTS, **kw}
    noise = rng.normal(0.0, 1.0, x.shape[0])
    b = notch_coeffs(rng, sr, min_g=o["min_g"], max_g=o["max_g"], **_band_args(o))
    noise = _peak_normalise(fir_filter(noise, b), always=True)
    snr = _uniform(rng, o["snr_min"], o["snr_max"])
    norm = np.linalg.norm(noise)
    if norm == 0:
        return x.copy()
    return x + noise / norm * np.linalg.norm(x) / 10.0 ** (0.05 * snr)


def _band_args(o: dict) -> dict:
    keys = ("n_bands", "min_f", "max_f", "min_bw", "max_bw", "min_coeff", "max_coeff")
    return {k: o[k] for k in keys}


def rawboost(x: np.ndarray, sr: int, algo: int, rng: np.random.Generator, **kw) -> np.ndarray:
    """RawBoost algorithm ``algo`` (1-8) on mono ``x``; float32 of the same length."""
    y = np.asarray(x, dtype=np.float64)
    steps = ALGORITHMS[int(algo)]
    if steps == ("parallel",):
        y = _peak_normalise(lnl_convolutive(y, rng, sr, **kw) + isd_impulsive(y, rng, **kw))
    else:
        for step in steps:
            y = (
                lnl_convolutive(y, rng, sr, **kw)
                if step == "lnl"
                else isd_impulsive(y, rng, **kw)
                if step == "isd"
                else ssi_additive(y, rng, sr, **kw)
            )
    return y.astype(np.float32)


# --------------------------------------------------------------------------- registry entry


def _rawboost(x: np.ndarray, ctx: StepContext, params: dict) -> tuple[np.ndarray, dict]:
    return rawboost(x, ctx.sr, params["algo"], ctx.rng()), {"rawboost_algo": int(params["algo"])}


register_degradation(
    Degradation(
        "rawboost",
        "noise",
        "RawBoost (Tak et al. 2022): 1 LnL convolutive, 2 ISD impulsive, "
        "3 SSI coloured additive, 4=1+2+3, 5=1+2, 6=1+3, 7=2+3, 8=1||2",
        _rawboost,
        (Param("algo", int, 4, "RawBoost algorithm 1-8", minimum=1, maximum=8),),
    ),
    order=70,
)
