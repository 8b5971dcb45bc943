"""Spoofing resyntheses for the toy corpus: six analysis-resynthesis methods of distinct kinds.

Each takes bona fide speech (float64 at 16 kHz) and a random generator and returns
speech of the same length. They differ in what they throw away and what they
invent: Griffin-Lim from a mel spectrogram (phase estimated, fine structure lost),
an LPC vocoder (buzz/noise excitation), a sinusoidal peak model (noise lost),
a noise-excited channel vocoder (no harmonics at all), a harmonic-plus-noise model
(smoothed envelope, coherent harmonics) and a high-quality copy that keeps the
low band and rebuilds only the high band's phase, which is the hard one to detect.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from cm_cli.data.synth.dsp import estimate_f0, frame_signal, interp_frames, istft, lpc, mel_filterbank, stft

__all__ = [
    "griffin_lim_mel",
    "lpc_vocoder",
    "sinusoidal_model",
    "noise_vocoder",
    "harmonic_noise_model",
    "high_band_phase",
    "VOCODERS",
]

SR = 16_000


def _griffin_lim(
    mag: np.ndarray,
    length: int,
    rng: np.random.Generator,
    *,
    n_fft: int,
    hop: int,
    iterations: int,
    init: np.ndarray | None = None,
) -> np.ndarray:
    """Fast Griffin-Lim (momentum 0.99) from a magnitude spectrogram; returns the signal."""
    phase = np.exp(2j * np.pi * rng.uniform(size=mag.shape)) if init is None else init
    prev = np.zeros_like(mag, dtype=complex)
    for _ in range(iterations):
        rebuilt = stft(istft(mag * phase, length, n_fft=n_fft, hop=hop), n_fft=n_fft, hop=hop)
        accel = rebuilt + 0.99 * (rebuilt - prev)
        prev = rebuilt
        phase = accel / np.maximum(np.abs(accel), 1e-12)
    return istft(mag * phase, length, n_fft=n_fft, hop=hop)


@functools.lru_cache(maxsize=4)
def _mel_pair(n_fft: int, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    fb = mel_filterbank(SR, n_fft, n_mels, fmin=40.0, fmax=7600.0)
    return fb, np.linalg.pinv(fb)


def griffin_lim_mel(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """80-band log-mel spectrogram, slightly smoothed like a predicted one, inverted with Griffin-Lim."""
    n_fft, hop = 1024, 256
    fb, fb_inv = _mel_pair(n_fft, 80)
    mel = np.abs(stft(x, n_fft=n_fft, hop=hop)) @ fb.T
    log_mel = np.log(np.maximum(mel, 1e-5))
    log_mel = 0.25 * np.roll(log_mel, 1, axis=0) + 0.5 * log_mel + 0.25 * np.roll(log_mel, -1, axis=0)
    mag = np.maximum(np.exp(log_mel) @ fb_inv.T, 0.0)
    return _griffin_lim(mag, len(x), rng, n_fft=n_fft, hop=hop, iterations=16)


def lpc_vocoder(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Order-18 LPC envelope per 5 ms, excited by a pulse train at the estimated f0 or by noise."""
    from scipy.signal import lfilter

    hop, win, order = 80, 400, 18
    frames = frame_signal(x, win, hop) * np.hanning(win)
    a, err = lpc(frames, order)
    gain = np.sqrt(err / win)
    f0 = estimate_f0(x, SR, hop=hop)
    f0 = f0[: len(a)] if len(f0) >= len(a) else np.pad(f0, (0, len(a) - len(f0)))
    f0_s = interp_frames(np.where(f0 > 0, f0, 0.0), hop, len(x))
    voiced_s = interp_frames((f0 > 0).astype(float), hop, len(x)) > 0.5
    phase = np.cumsum(np.where(voiced_s, np.maximum(f0_s, 50.0), 0.0) / SR)
    pulses = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(float)
    pulses *= np.sqrt(SR / np.maximum(f0_s, 50.0))
    excitation = np.where(voiced_s, pulses, rng.standard_normal(len(x)))
    out = np.zeros(len(x))
    zi = np.zeros(order)
    for i in range(len(a)):
        s = i * hop
        if s >= len(x):
            break
        seg = excitation[s : s + hop] * gain[i]
        out[s : s + hop], zi = lfilter([1.0], a[i], seg, zi=zi)
    return out


def sinusoidal_model(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Up to 30 spectral peaks per frame (within 45 dB of its maximum), overlap-added as sinusoids; no noise part."""
    n_fft, win, hop = 1024, 512, 128
    pad = win // 2
    frames = frame_signal(x, win, hop) * np.hanning(win)
    spec = np.fft.rfft(frames, n=n_fft, axis=1)
    mag_db = 20 * np.log10(np.abs(spec) + 1e-12)
    n_frames, n_bins = mag_db.shape
    interior = (mag_db[:, 1:-1] > mag_db[:, :-2]) & (mag_db[:, 1:-1] > mag_db[:, 2:])
    floor = mag_db.max(axis=1, keepdims=True) - 45
    peaks = interior & (mag_db[:, 1:-1] > floor)
    t = np.arange(win) - pad
    synth_win = np.hanning(win)
    out = np.zeros(hop * n_frames + win)
    norm = np.zeros_like(out)
    for i in range(n_frames):
        bins = np.nonzero(peaks[i])[0] + 1
        if len(bins) > 30:
            bins = bins[np.argsort(mag_db[i, bins])[-30:]]
        if len(bins):
            left, c, r = mag_db[i, bins - 1], mag_db[i, bins], mag_db[i, bins + 1]
            d = 0.5 * (left - r) / np.where(left - 2 * c + r == 0, 1, left - 2 * c + r)
            freq = (bins + d) * SR / n_fft
            amp = 10 ** ((c - 0.25 * (left - r) * d) / 20) * 2 / np.sum(np.hanning(win))
            # phase referred to the frame centre, where the symmetric window's own phase vanishes
            centre_phase = np.angle(spec[i, bins]) + 2 * np.pi * bins * pad / n_fft
            frame = amp @ np.cos(2 * np.pi * freq[:, None] * t[None, :] / SR + centre_phase[:, None])
            out[i * hop : i * hop + win] += frame * synth_win
        norm[i * hop : i * hop + win] += synth_win
    y = out / np.maximum(norm, 1e-8)
    return y[pad : pad + len(x)]


def noise_vocoder(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """6 log-spaced band envelopes (20 ms) imposed on white noise: whisper-like, no harmonics."""
    n_fft, hop, n_bands = 640, 320, 6
    spec = stft(x, n_fft=n_fft, hop=hop)
    freqs = np.linspace(0, SR / 2, spec.shape[1])
    edges = np.geomspace(100, 7900, n_bands + 1)
    band = np.clip(np.searchsorted(edges, freqs) - 1, 0, n_bands - 1)
    power = np.abs(spec) ** 2
    energy = np.stack([power[:, band == b].mean(axis=1) for b in range(n_bands)], axis=1)
    noise = stft(rng.standard_normal(len(x)), n_fft=n_fft, hop=hop)
    gains = np.sqrt(energy[:, band] / (np.abs(noise) ** 2 + 1e-12).mean())
    return istft(noise * gains, len(x), n_fft=n_fft, hop=hop)


def harmonic_noise_model(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Estimated f0, cepstrally smoothed envelope, harmonics below 4 kHz and shaped noise above."""
    n_fft, hop = 1024, 80
    spec = stft(x, n_fft=n_fft, hop=hop)
    log_mag = np.log(np.abs(spec) + 1e-7)
    ceps = np.fft.irfft(log_mag, axis=1)
    lifter = np.zeros(n_fft)
    lifter[:40] = 1.0
    lifter[-39:] = 1.0
    env = np.exp(np.fft.rfft(ceps * lifter, axis=1).real)  # (frames, bins) amplitude envelope
    f0 = estimate_f0(x, SR, hop=hop)
    f0 = f0[: len(env)] if len(f0) >= len(env) else np.pad(f0, (0, len(env) - len(f0)))
    f0_lookup = np.where(f0 > 0, f0, 100.0)
    voiced = interp_frames((f0 > 0).astype(float), hop, len(x))
    f0_s = interp_frames(f0_lookup, hop, len(x))
    phase = 2 * np.pi * np.cumsum(f0_s / SR)
    n_harm = int(4000 / f0_lookup.min())
    k = np.arange(1, n_harm + 1)
    bins = np.minimum(np.rint(f0_lookup[:, None] * k[None, :] * n_fft / SR).astype(int), env.shape[1] - 1)
    amps = np.take_along_axis(env, bins, axis=1) * (f0_lookup[:, None] * k[None, :] < 4000)
    amps_s = interp_frames(amps, hop, len(x))  # (samples, harmonics)
    harmonics = np.einsum("nk,nk->n", amps_s, np.cos(phase[:, None] * k[None, :]))
    harmonics *= 2 / np.sum(np.hanning(n_fft)) * voiced
    noise_spec = stft(rng.standard_normal(len(x)), n_fft=n_fft, hop=hop)
    freqs = np.linspace(0, SR / 2, env.shape[1])
    v_frames = np.minimum(np.arange(len(env)) * hop, len(x) - 1)
    cutoff = np.where(voiced[v_frames] > 0.5, 4000.0, 0.0)
    mask = freqs[None, :] >= cutoff[:, None]
    noise = istft(noise_spec * env * mask / np.sqrt(np.sum(np.hanning(n_fft) ** 2)), len(x), n_fft=n_fft, hop=hop)
    return harmonics + noise


def high_band_phase(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Near-transparent copy: exact magnitude everywhere, phase above 4 kHz re-estimated by 4 Griffin-Lim steps."""
    n_fft, hop = 512, 128
    spec = stft(x, n_fft=n_fft, hop=hop)
    mag = np.abs(spec)
    freqs = np.linspace(0, SR / 2, spec.shape[1])
    high = freqs >= 4000
    phase = spec / np.maximum(mag, 1e-12)
    phase[:, high] = np.exp(2j * np.pi * rng.uniform(size=(len(spec), int(high.sum()))))
    for _ in range(4):
        rebuilt = stft(istft(mag * phase, len(x), n_fft=n_fft, hop=hop), n_fft=n_fft, hop=hop)
        phase[:, high] = rebuilt[:, high] / np.maximum(np.abs(rebuilt[:, high]), 1e-12)
    return istft(mag * phase, len(x), n_fft=n_fft, hop=hop)


VOCODERS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "griffin_lim_mel": griffin_lim_mel,
    "lpc_vocoder": lpc_vocoder,
    "sinusoidal_model": sinusoidal_model,
    "noise_vocoder": noise_vocoder,
    "harmonic_noise_model": harmonic_noise_model,
    "high_band_phase": high_band_phase,
}
