"""Shared analysis tools for the toy resyntheses: STFT pairs, filterbanks, pitch and LPC.

Kept in numpy (scipy only where it saves real work) so every attack analyses
speech the same way and results are bit-reproducible on one machine.
"""

from __future__ import annotations

import numpy as np

__all__ = ["stft", "istft", "mel_filterbank", "estimate_f0", "lpc", "frame_signal", "interp_frames"]


def _window(n_fft: int) -> np.ndarray:
    return np.hanning(n_fft + 1)[:-1]


def frame_signal(x: np.ndarray, n_fft: int, hop: int, *, pad_mode: str = "reflect") -> np.ndarray:
    """Centred frames of ``x``: (1 + len(x) // hop, n_fft), padded by n_fft // 2 (reflect or zeros)."""
    pad = n_fft // 2
    if pad_mode == "reflect" and len(x) <= pad + n_fft:
        pad_mode = "constant"
    padded = np.pad(x, (pad, pad + n_fft), mode=pad_mode)
    n_frames = 1 + len(x) // hop
    return np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]


def stft(x: np.ndarray, *, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Complex STFT, shape (n_frames, n_fft // 2 + 1), Hann window, centred frames."""
    return np.fft.rfft(frame_signal(x, n_fft, hop) * _window(n_fft), axis=1)


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum frames (n_frames, n_fft) placed ``hop`` apart (vectorised over frames)."""
    n_frames, n_fft = frames.shape
    r = -(-n_fft // hop)
    if r * hop != n_fft:
        frames = np.pad(frames, ((0, 0), (0, r * hop - n_fft)))
    chunks = frames.reshape(n_frames, r, hop)
    blocks = np.zeros((n_frames + r - 1, hop))
    for j in range(r):
        blocks[j : j + n_frames] += chunks[:, j]
    return blocks.reshape(-1)


def istft(spec: np.ndarray, length: int, *, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`stft` (exact for an unmodified spectrum)."""
    window = _window(n_fft)
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
    out = _overlap_add(frames, hop)
    norm = _overlap_add(np.broadcast_to(window**2, frames.shape), hop)
    out /= np.maximum(norm, 1e-8)
    pad = n_fft // 2
    y = out[pad : pad + length]
    if len(y) < length:
        y = np.pad(y, (0, length - len(y)))
    return y


def mel_filterbank(sr: int, n_fft: int, n_mels: int, *, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), shape (n_mels, n_fft // 2 + 1), unit peak."""
    fmax = fmax or sr / 2

    def to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    lower = (freqs[None, :] - edges[:-2, None]) / np.maximum(edges[1:-1, None] - edges[:-2, None], 1e-6)
    upper = (edges[2:, None] - freqs[None, :]) / np.maximum(edges[2:, None] - edges[1:-1, None], 1e-6)
    return np.maximum(0.0, np.minimum(lower, upper))


def estimate_f0(
    x: np.ndarray, sr: int, *, hop: int = 80, fmin: float = 60.0, fmax: float = 400.0, threshold: float = 0.45
) -> np.ndarray:
    """Frame-wise f0 in Hz (0 where unvoiced) by normalised autocorrelation, one value per hop."""
    n = int(2.5 * sr / fmin)
    n += n % 2
    frames = frame_signal(x, n, hop) * _window(n)
    size = 2 * n
    spec = np.fft.rfft(frames, n=size, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, n=size, axis=1)[:, :n]
    win_ac = np.fft.irfft(np.abs(np.fft.rfft(_window(n), n=size)) ** 2, n=size)[:n]
    ac = ac / np.maximum(win_ac[None, :], 1e-8)
    energy = ac[:, :1]
    ac = ac / np.maximum(energy, 1e-12)
    lo, hi = int(sr / fmax), int(sr / fmin)
    lags = np.argmax(ac[:, lo:hi], axis=1) + lo
    peak = ac[np.arange(len(ac)), lags]
    # parabolic refinement of the lag
    left = ac[np.arange(len(ac)), np.clip(lags - 1, 0, n - 1)]
    right = ac[np.arange(len(ac)), np.clip(lags + 1, 0, n - 1)]
    denom = left - 2 * peak + right
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    f0 = sr / (lags + np.clip(shift, -0.5, 0.5))
    loud = energy[:, 0] > 1e-3 * np.max(energy)
    return np.where((peak > threshold) & loud, f0, 0.0)


def lpc(frames: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """All-pole fit per frame by Levinson-Durbin: (coefficients (n, order + 1) with a[0] = 1, residual energy)."""
    size = 2 * frames.shape[1]
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, n=size, axis=1)) ** 2, n=size, axis=1)[:, : order + 1]
    ac[:, 0] *= 1.0 + 1e-6  # white-noise correction keeps the recursion stable
    ac[:, 0] += 1e-12
    n = frames.shape[0]
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = ac[:, 0].copy()
    for i in range(1, order + 1):
        acc = ac[:, i] + np.sum(a[:, 1:i] * ac[:, i - 1 : 0 : -1], axis=1)
        k = -acc / err
        a_prev = a.copy()
        a[:, 1:i] = a_prev[:, 1:i] + k[:, None] * a_prev[:, i - 1 : 0 : -1]
        a[:, i] = k
        err = err * (1.0 - k**2)
    return a, np.maximum(err, 1e-12)


def interp_frames(values: np.ndarray, hop: int, length: int) -> np.ndarray:
    """Per-frame values (n_frames, ...) at centres ``i * hop`` -> per-sample values (length, ...), linear."""
    pos = np.minimum(np.arange(length) / hop, values.shape[0] - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, values.shape[0] - 1)
    w = (pos - i0).reshape((-1,) + (1,) * (values.ndim - 1))
    return values[i0] * (1.0 - w) + values[i1] * w
