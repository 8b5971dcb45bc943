"""Prosody features (``cm embed --backbone prosody``): F0, jitter, shimmer, energy, voicing, pauses, rate.

Why: prosody lives in seconds-long contours that a low-bitrate codec keeps, while the
fine spectral structure most detectors read is what a codec destroys; no weights are needed.

F0 is YIN (de Cheveigné & Kawahara 2002, JASA 111(4)): the difference function
``d(tau) = sum_j (x_j - x_{j+tau})^2`` over a 25 ms window (computed from an FFT cross
term and running energies), its cumulative-mean normalisation ``d'(tau) = d(tau) tau /
sum_{j<=tau} d(j)``, the first dip below the paper's absolute threshold 0.1 followed to its
local minimum (global minimum when none dips), and parabolic interpolation. A frame is
voiced when it is not silent and ``d'`` at the chosen lag (the paper's aperiodicity) is
below ``VOICING_APERIODICITY``. The search range 60-500 Hz spans adult and child speech.

Jitter and shimmer follow Praat's "local" definitions (Boersma, Praat manual, "Voice 2.
Jitter" / "Voice 3. Shimmer"): mean absolute difference of consecutive periods (peak
amplitudes) divided by the mean period (amplitude), over pulses picked in voiced
stretches, period pairs kept when both lie within 1.3x of each other (Praat's maximum
period factor) and within 0.8-1.25x the stretch's YIN period. Pulses are signal peaks of
the dominant polarity, at least 0.75 of a period apart, refined by parabolic interpolation.

Pauses: frames more than ``SILENCE_DB`` below the utterance's 99th-percentile frame level
(and below -70 dBFS absolute) are silent; interior silent runs of ``MIN_PAUSE_S`` or more are
pauses. Speaking rate is the syllable-nucleus rate of de Jong & Wempe (2009, Behavior
Research Methods 41(2)): voiced peaks of the smoothed frame level with a dip of at least
2 dB to their neighbours, per second of non-silent audio.

Bad input never gives NaN: clips shorter than one analysis frame (42 ms), silent clips and
clips without voiced frames get zeros for what they lack and a ``flag_*`` column set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cm_cli.featuresets.registry import FeatureBatch

__all__ = ["SAMPLE_RATE", "FEATURES", "FLAGS", "ProsodyExtractor", "build_extractor", "yin", "prosody_features"]

SAMPLE_RATE = 16000
ANALYSIS_RATE = 4000  # YIN runs on a 4:1 decimated copy: F0 <= 500 Hz needs no more
WINDOW_S = 0.025  # integration window (YIN paper: 25 ms)
HOP_S = 0.010
FMIN, FMAX = 60.0, 500.0
YIN_THRESHOLD = 0.1  # the paper's absolute threshold
VOICING_APERIODICITY = 0.35  # d' at the chosen lag below this: voiced (cm's choice; noise sits near 1)
SILENCE_DB = 35.0  # frames this far below the 99th-percentile level are silent
SILENCE_FLOOR_DBFS = -70.0
MIN_PAUSE_S = 0.15
NUCLEUS_DIP_DB = 2.0  # de Jong & Wempe's minimum dip between syllable peaks
PERIOD_FACTOR = 1.3  # Praat's maximum period factor
CLIP_LEVEL = 0.999  # |x| at or above this (full scale 1.0) counts as clipped
CLIP_SHARE = 0.001  # a clip with more clipped samples than this share is flagged

FEATURES = (
    "f0_mean_hz",
    "f0_sd_hz",
    "f0_range_hz",
    "f0_slope_hz_s",
    "f0_sd_st",
    "jitter_local",
    "shimmer_local",
    "aperiodicity_mean",
    "energy_mean_db",
    "energy_sd_db",
    "energy_range_db",
    "energy_slope_db_s",
    "voicing_ratio",
    "pause_ratio",
    "pauses_per_s",
    "pause_mean_s",
    "nuclei_per_s",
    "voiced_runs_per_s",
    "clip_ratio",
)
FLAGS = ("flag_short", "flag_silent", "flag_unvoiced", "flag_clipped")


def _tau_range(sample_rate: int) -> tuple[int, int]:
    return int(np.floor(sample_rate / FMAX)), int(np.ceil(sample_rate / FMIN))


def _window_hop(sample_rate: int) -> tuple[int, int]:
    return int(round(WINDOW_S * sample_rate)), int(round(HOP_S * sample_rate))


def frame_length(sample_rate: int = SAMPLE_RATE) -> int:
    """Samples one YIN analysis frame needs: the window plus the longest lag."""
    return _window_hop(sample_rate)[0] + _tau_range(sample_rate)[1]


@dataclass
class Yin:
    """Per-frame YIN results: ``f0`` (Hz, 0 where unvoiced), ``aperiodicity`` (d' at the lag), ``level_db``."""

    f0: np.ndarray
    aperiodicity: np.ndarray
    level_db: np.ndarray
    voiced: np.ndarray
    silent: np.ndarray


def yin(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Yin:
    """YIN over 25 ms windows every 10 ms (module docstring); ``x`` must hold at least one frame."""
    tau_min, tau_max = _tau_range(sample_rate)
    window, hop = _window_hop(sample_rate)
    length = window + tau_max
    from scipy import fft

    n_frames = 1 + (len(x) - length) // hop
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(x, dtype=np.float32), length)[::hop][:n_frames]
    # lags 0..tau_max of the cross term are alias-free once n_fft >= length (negative lags wrap above tau_max)
    n_fft = fft.next_fast_len(length, real=True)
    buffer = np.zeros((len(frames), n_fft), dtype=np.float32)
    buffer[:, :length] = frames
    spectrum = fft.rfft(buffer, overwrite_x=False)
    buffer[:, window:] = 0.0  # the first ``window`` samples of each frame
    spectrum = np.conj(fft.rfft(buffer, overwrite_x=True)) * spectrum
    cross = fft.irfft(spectrum, n_fft, overwrite_x=True)[:, : tau_max + 1]
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64) ** 2)])
    lags = np.arange(1, tau_max + 1)
    starts = np.arange(len(frames)) * hop
    window_energy = energy[starts + window] - energy[starts]
    view = np.lib.stride_tricks.sliding_window_view
    n = len(frames)  # energy of the window tau later: energy[s + tau + window] - energy[s + tau], tau = 1..tau_max
    shifted = (view(energy[window + 1 :], tau_max)[::hop][:n] - view(energy[1:], tau_max)[::hop][:n]).astype(np.float32)
    d = shifted + window_energy[:, None].astype(np.float32) - 2.0 * cross[:, 1:]  # d(tau), tau = 1..tau_max
    np.maximum(d, 0.0, out=d)
    running = np.cumsum(d, axis=1)
    np.maximum(running, 1e-12, out=running)
    dn = d * lags.astype(np.float32) / running  # dn[:, k] = d'(k + 1)
    search = dn[:, tau_min - 1 :]
    below = search < YIN_THRESHOLD
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    rising = np.empty(search.shape, dtype=bool)
    np.greater_equal(search[:, 1:], search[:, :-1], out=rising[:, :-1])
    rising[:, -1] = True
    rising &= np.arange(search.shape[1])[None, :] >= first[:, None]
    best = rising.argmax(axis=1)  # descend from the first dip to its local minimum
    tau = best + tau_min
    rows = np.arange(len(dn))
    left, mid, right = dn[rows, tau - 2], dn[rows, tau - 1], dn[rows, np.minimum(tau, tau_max - 1)]
    left, mid, right = left.astype(np.float64), mid.astype(np.float64), right.astype(np.float64)
    curve = left - 2.0 * mid + right
    shift = np.where(np.abs(curve) > 1e-12, 0.5 * (left - right) / np.where(curve == 0, 1, curve), 0.0)
    shift = np.clip(shift, -1.0, 1.0)
    level_db = 10.0 * np.log10(np.maximum(window_energy, 0.0) / window + 1e-12)
    floor = max(np.percentile(level_db, 99) - SILENCE_DB, SILENCE_FLOOR_DBFS) if len(level_db) else 0.0
    silent = level_db < floor
    voiced = (~silent) & (mid < VOICING_APERIODICITY)
    f0 = np.where(voiced, sample_rate / (tau + shift), 0.0)
    return Yin(f0=f0, aperiodicity=mid, level_db=level_db, voiced=voiced, silent=silent)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _slope(t: np.ndarray, v: np.ndarray) -> float:
    if len(t) < 2 or np.ptp(t) == 0:
        return 0.0
    tc = t - t.mean()
    return float((tc * (v - v.mean())).sum() / (tc**2).sum())


def _pulses(x: np.ndarray, yin_: Yin, sample_rate: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per voiced stretch (3+ frames): pulse times (samples, sub-sample) and amplitudes."""
    from scipy.signal import find_peaks

    times, amps = [], []
    tail, hop = frame_length(sample_rate), _window_hop(sample_rate)[1]
    for start, stop in _runs(yin_.voiced):
        if stop - start < 3:
            continue
        segment = x[start * hop : (stop - 1) * hop + tail]
        period = sample_rate / float(np.median(yin_.f0[start:stop]))
        shortest = sample_rate / float(yin_.f0[start:stop].max())
        signal = segment if segment.max() >= -segment.min() else -segment
        # only maxima above a fifth of the stretch's peak can be glottal pulses (and the distance rule then sorts few)
        peaks, _ = find_peaks(signal, height=0.2 * float(signal.max()), distance=max(1, int(0.75 * shortest)))
        peaks = peaks[(peaks > 0) & (peaks < len(signal) - 1)]
        if len(peaks) < 3:
            continue
        a, b, c = signal[peaks - 1], signal[peaks], signal[peaks + 1]
        curve = a - 2 * b + c
        delta = np.where(curve < 0, 0.5 * (a - c) / np.where(curve == 0, -1, curve), 0.0)
        delta = np.clip(delta, -0.5, 0.5)
        position = peaks + delta
        amplitude = b - 0.25 * (a - c) * delta
        gaps = np.diff(position)
        ok = (gaps >= 0.8 * period) & (gaps <= 1.25 * period)
        times.append((position, ok))
        amps.append(amplitude)
    return times, amps


def _perturbation(times: list, amps: list) -> tuple[float, float]:
    """Praat-style local jitter and shimmer over consecutive valid periods of every stretch."""
    diffs, periods, amp_diffs, amp_values = [], [], [], []
    for (position, ok), amplitude in zip(times, amps):
        gaps = np.diff(position)
        pair = ok[1:] & ok[:-1]
        ratio = gaps[1:] / np.maximum(gaps[:-1], 1e-9)
        pair &= (ratio <= PERIOD_FACTOR) & (ratio >= 1 / PERIOD_FACTOR)
        diffs.append(np.abs(np.diff(gaps))[pair])
        periods.append(gaps[ok])
        # amplitudes of the pulses that close two consecutive valid periods
        amp_diffs.append(np.abs(np.diff(amplitude))[ok])
        amp_values.append(amplitude[1:][ok])

    def joined(parts):
        return np.concatenate(parts) if parts else np.zeros(0)

    diffs, periods, amp_diffs, amp_values = joined(diffs), joined(periods), joined(amp_diffs), joined(amp_values)
    jitter = float(diffs.mean() / periods.mean()) if len(diffs) and periods.mean() > 0 else 0.0
    shimmer = float(amp_diffs.mean() / amp_values.mean()) if len(amp_diffs) and amp_values.mean() > 0 else 0.0
    return jitter, shimmer


def _decimate(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``x`` at ``ANALYSIS_RATE``: an FFT brick-wall low-pass and resynthesis at the lower rate.

    F0 tracking needs nothing above 500 Hz; one real FFT of the clip is several times
    cheaper than a polyphase FIR (``resample_poly``) at 16 kHz, and nothing aliases.
    """
    if sample_rate <= ANALYSIS_RATE:
        return x
    from scipy import fft

    n_out = int(len(x) * ANALYSIS_RATE // sample_rate)
    spectrum = fft.rfft(np.asarray(x, dtype=np.float32))[: n_out // 2 + 1]
    return fft.irfft(spectrum, n_out) * (n_out / len(x))


def prosody_features(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict[str, bool]]:
    """One utterance -> (``FEATURES`` values, finite; ``FLAGS``)."""
    from scipy.signal import find_peaks

    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    values = dict.fromkeys(FEATURES, 0.0)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    clipped = float((np.abs(x) >= CLIP_LEVEL).mean()) if len(x) and peak >= CLIP_LEVEL else 0.0
    values["clip_ratio"] = clipped
    rate = min(sample_rate, ANALYSIS_RATE)
    analysed = _decimate(x, sample_rate) if len(x) >= frame_length(sample_rate) else x[:0]
    flags = {
        "flag_short": len(analysed) < frame_length(rate),
        "flag_silent": peak < 1e-4,
        "flag_unvoiced": True,
        "flag_clipped": clipped > CLIP_SHARE,
    }
    if flags["flag_short"] or flags["flag_silent"]:
        values["pause_ratio"] = 1.0 if flags["flag_silent"] else 0.0
        return np.array([values[k] for k in FEATURES], dtype=np.float32), flags
    track = yin(analysed, rate)
    seconds = HOP_S
    t = np.arange(len(track.f0)) * seconds
    speech = ~track.silent
    level = track.level_db[speech]
    values["energy_mean_db"] = float(level.mean())
    values["energy_sd_db"] = float(level.std())
    values["energy_range_db"] = float(np.percentile(level, 95) - np.percentile(level, 5))
    values["energy_slope_db_s"] = _slope(t[speech], level)
    values["voicing_ratio"] = float(track.voiced.sum() / max(1, speech.sum()))
    values["pause_ratio"] = float(track.silent.mean())
    runs = _runs(track.silent)
    interior = [(a, b) for a, b in runs if a > 0 and b < len(track.silent) and (b - a) * seconds >= MIN_PAUSE_S]
    duration = len(x) / sample_rate
    values["pauses_per_s"] = len(interior) / duration
    values["pause_mean_s"] = float(np.mean([(b - a) * seconds for a, b in interior])) if interior else 0.0
    voiced_runs = _runs(track.voiced)
    values["voiced_runs_per_s"] = len(voiced_runs) / duration
    if track.voiced.any():
        flags["flag_unvoiced"] = False
        f0 = track.f0[track.voiced]
        values["f0_mean_hz"] = float(f0.mean())
        values["f0_sd_hz"] = float(f0.std())
        values["f0_range_hz"] = float(np.percentile(f0, 95) - np.percentile(f0, 5))
        values["f0_slope_hz_s"] = _slope(t[track.voiced], f0)
        values["f0_sd_st"] = float((12.0 * np.log2(f0 / np.exp(np.log(f0).mean()))).std())
        values["aperiodicity_mean"] = float(track.aperiodicity[track.voiced].mean())
        values["jitter_local"], values["shimmer_local"] = _perturbation(*_pulses(x, track, sample_rate))
        smooth = np.convolve(track.level_db, np.ones(3) / 3, mode="same")
        peaks, _ = find_peaks(smooth, prominence=NUCLEUS_DIP_DB, distance=5)
        nuclei = peaks[track.voiced[peaks]]
        values["nuclei_per_s"] = len(nuclei) / max(speech.sum() * seconds, seconds)
    row = np.array([values[k] for k in FEATURES], dtype=np.float64)
    return np.nan_to_num(row, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), flags


class ProsodyExtractor:
    """``cm embed --backbone prosody``: one layer (``layer_00``) of ``FEATURES``."""

    name = "prosody"

    def __init__(self, sample_rate: int = SAMPLE_RATE):
        self.sample_rate = sample_rate
        self.layers = {"layer_00": list(FEATURES)}
        self.flags = list(FLAGS)
        self.info = {
            "f0_method": "yin",
            "fmin_hz": FMIN,
            "fmax_hz": FMAX,
            "window_ms": 25,
            "hop_ms": 10,
            "yin_threshold": YIN_THRESHOLD,
            "voicing_aperiodicity": VOICING_APERIODICITY,
            "silence_db": SILENCE_DB,
        }

    def extract(self, waves: list) -> FeatureBatch:
        rows, flags = [], {k: [] for k in FLAGS}
        for wave in waves:
            row, flag = prosody_features(np.asarray(wave), self.sample_rate)
            rows.append(row)
            for k in FLAGS:
                flags[k].append(flag[k])
        matrix = np.stack(rows) if rows else np.zeros((0, len(FEATURES)), dtype=np.float32)
        return FeatureBatch(
            vectors={"layer_00": matrix},
            flags={k: np.asarray(v, dtype=bool) for k, v in flags.items()},
            extra={"duration_s": np.array([len(w) / self.sample_rate for w in waves], dtype=np.float32)},
        )


def build_extractor(backbone_id: str | None, *, device=None, options: dict | None = None) -> ProsodyExtractor:
    return ProsodyExtractor()
