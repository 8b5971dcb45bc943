"""Bona fide speech for the toy corpus: a source-filter voice with speaker-dependent parameters.

A glottal flow pulse train (Rosenberg shape, differentiated for lip radiation) with
jitter, shimmer and an intonation contour excites a cascade of formant resonators
whose frequencies scale with the speaker's vocal-tract length and move from vowel to
vowel syllable by syllable. Aspiration and fricative noise, syllable envelopes and
pauses make the result speech-like enough that telling it from resynthesised copies
takes real spectral evidence, which is all the toy corpus needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SAMPLE_RATE", "VOWELS", "Speaker", "make_speaker", "UtterancePlan", "plan_utterance", "synthesise"]

SAMPLE_RATE = 16_000
_BLOCK = 128  # hop between formant-filter settings (8 ms)

# Formant targets (Hz) of an adult male voice, F1..F4; female/short tracts scale them up.
VOWELS: dict[str, tuple[float, float, float, float]] = {
    "i": (270, 2290, 3010, 3700),
    "I": (390, 1990, 2550, 3600),
    "e": (530, 1840, 2480, 3500),
    "ae": (660, 1720, 2410, 3500),
    "a": (730, 1090, 2440, 3400),
    "o": (570, 840, 2410, 3300),
    "u": (300, 870, 2240, 3300),
    "er": (490, 1350, 1690, 3300),
}
_VOWEL_NAMES = tuple(VOWELS)
_BANDWIDTHS = np.array([70.0, 100.0, 140.0, 200.0, 280.0])


@dataclass(frozen=True)
class Speaker:
    """Everything that stays fixed across one speaker's utterances."""

    speaker_id: str
    gender: str  # "M" or "F"
    f0: float  # mean fundamental frequency, Hz
    tract_scale: float  # formant frequency multiplier (shorter tract -> higher)
    jitter: float  # relative per-period f0 perturbation (std)
    shimmer: float  # relative per-period amplitude perturbation (std)
    breathiness: float  # aspiration noise level relative to the pulse
    open_quotient: float  # open fraction of the glottal cycle
    rate: float  # syllables per second
    tilt: float  # extra spectral tilt: one-pole low-pass coefficient


def make_speaker(rng: np.random.Generator, speaker_id: str, gender: str) -> Speaker:
    female = gender == "F"
    return Speaker(
        speaker_id=speaker_id,
        gender=gender,
        f0=float(rng.uniform(170, 250) if female else rng.uniform(90, 145)),
        tract_scale=float(rng.uniform(1.12, 1.24) if female else rng.uniform(0.94, 1.06)),
        jitter=float(rng.uniform(0.004, 0.015)),
        shimmer=float(rng.uniform(0.02, 0.08)),
        breathiness=float(rng.uniform(0.08, 0.3) if female else rng.uniform(0.03, 0.18)),
        open_quotient=float(rng.uniform(0.55, 0.75) if female else rng.uniform(0.45, 0.65)),
        rate=float(rng.uniform(3.5, 5.5)),
        tilt=float(rng.uniform(0.0, 0.5)),
    )


@dataclass(frozen=True)
class Syllable:
    start: int  # sample index
    length: int
    vowel: str
    onset: str  # "", "fric", "stop"
    stress: float  # 0..1, pitch accent strength


@dataclass(frozen=True)
class UtterancePlan:
    length: int
    syllables: tuple[Syllable, ...]
    f0_start: float  # relative to the speaker's mean
    f0_end: float


def plan_utterance(rng: np.random.Generator, speaker: Speaker, duration: float) -> UtterancePlan:
    """Syllables, pauses and an intonation frame filling ``duration`` seconds."""
    length = int(duration * SAMPLE_RATE)
    lead = int(rng.uniform(0.08, 0.25) * SAMPLE_RATE)
    tail = int(rng.uniform(0.08, 0.25) * SAMPLE_RATE)
    syllables = []
    t = lead
    mean_syl = SAMPLE_RATE / (speaker.rate * rng.uniform(0.85, 1.15))
    while True:
        syl_len = int(mean_syl * rng.uniform(0.6, 1.4))
        if t + syl_len > length - tail:
            break
        onset = rng.choice(["", "fric", "stop", ""], p=[0.35, 0.3, 0.25, 0.1])
        syllables.append(Syllable(t, syl_len, str(rng.choice(_VOWEL_NAMES)), str(onset), float(rng.uniform(0, 1) ** 2)))
        t += syl_len
        if rng.uniform() < 0.12:  # short pause between phrases
            t += int(rng.uniform(0.08, 0.2) * SAMPLE_RATE)
    if not syllables:
        syl_len = max(length - lead - tail, SAMPLE_RATE // 10)
        syllables.append(Syllable(lead, syl_len, str(rng.choice(_VOWEL_NAMES)), "", 0.5))
    return UtterancePlan(length, tuple(syllables), float(rng.uniform(1.02, 1.15)), float(rng.uniform(0.8, 0.92)))


def _resonator_sos(freqs: np.ndarray, bws: np.ndarray) -> np.ndarray:
    """Unity-DC-gain two-pole resonators, shape (n, 6) for scipy's sosfilt."""
    r = np.exp(-np.pi * bws / SAMPLE_RATE)
    c = -2.0 * r * np.cos(2.0 * np.pi * freqs / SAMPLE_RATE)
    sos = np.zeros((len(freqs), 6))
    sos[:, 0] = 1.0 + c + r**2
    sos[:, 3] = 1.0
    sos[:, 4] = c
    sos[:, 5] = r**2
    return sos


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Hann-weighted moving average over ``width`` samples (edges held)."""
    from scipy.signal import fftconvolve

    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    return fftconvolve(np.pad(x, (width, width), mode="edge"), kernel, mode="same")[width:-width]


def _vocal_tract(x: np.ndarray, freqs: np.ndarray, bws: np.ndarray) -> np.ndarray:
    """Time-varying formant filtering of ``x``, vectorised over frames.

    Hann frames of 2 * _BLOCK samples (hop _BLOCK, summing to one) are each filtered
    by the resonator cascade set for their centre, by exact linear convolution
    (zero-padded FFT long enough for the resonances to ring out), and overlap-added.
    ``freqs``: (n // _BLOCK + 2, n_formants) in Hz; ``bws``: (n_formants,) in Hz.
    """
    from cm_cli.data.synth.dsp import _overlap_add, frame_signal

    n, win, size = len(x), 2 * _BLOCK, 1024
    # centred: frame j covers x[(j - 1) * _BLOCK : (j + 1) * _BLOCK], zero outside x
    frames = frame_signal(x, win, _BLOCK, pad_mode="constant")
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win))
    freqs = np.minimum(freqs[: len(frames)], 0.45 * SAMPLE_RATE)
    r = np.exp(-np.pi * bws / SAMPLE_RATE)[None, :, None]
    c = -2.0 * r * np.cos(2.0 * np.pi * freqs / SAMPLE_RATE)[:, :, None]
    z1 = np.exp(-1j * np.pi * np.arange(size // 2 + 1) / (size // 2))[None, None, :]
    response = np.prod((1.0 + c + r**2) / (1.0 + c * z1 + r**2 * z1**2), axis=1)
    filtered = np.fft.irfft(np.fft.rfft(frames, n=size, axis=1) * response, n=size, axis=1)
    return _overlap_add(filtered, _BLOCK)[_BLOCK : _BLOCK + n]


def synthesise(rng: np.random.Generator, speaker: Speaker, plan: UtterancePlan) -> np.ndarray:
    """Render one utterance (float64, roughly unit peak) from a plan."""
    from scipy.signal import lfilter, sosfilt

    n = plan.length
    t = np.arange(n) / SAMPLE_RATE
    # --- targets per sample: envelope, voicing, formants, pitch accents
    env = np.zeros(n)
    voiced = np.zeros(n)
    fric = np.zeros(n)
    formant_targets = np.tile(np.array(VOWELS["er"], dtype=float), (n, 1))
    accent = np.zeros(n)
    for syl in plan.syllables:
        s, m = syl.start, syl.length
        onset_len = int(m * rng.uniform(0.2, 0.35)) if syl.onset else 0
        vowel_len = m - onset_len
        v0 = s + onset_len
        seg = np.sin(np.pi * np.linspace(0, 1, vowel_len)) ** rng.uniform(0.4, 0.9)
        env[v0 : v0 + vowel_len] = np.maximum(env[v0 : v0 + vowel_len], seg * rng.uniform(0.6, 1.0))
        voiced[v0 : v0 + vowel_len] = 1.0
        targets = np.array(VOWELS[syl.vowel]) * rng.uniform(0.93, 1.07, size=4)
        formant_targets[s : s + m] = targets
        accent[s : s + m] = syl.stress * np.sin(np.pi * np.linspace(0, 1, m))
        if syl.onset == "fric":
            fric[s:v0] = np.sin(np.pi * np.linspace(0, 1, onset_len)) * rng.uniform(0.15, 0.4)
        elif syl.onset == "stop" and onset_len > 40:
            burst = int(rng.uniform(0.005, 0.015) * SAMPLE_RATE)
            fric[v0 - burst : v0] = np.linspace(1, 0.2, burst) * rng.uniform(0.3, 0.6)
    voiced = _smooth(voiced, 160)
    n_frames = n // _BLOCK + 2  # filter frames centred every _BLOCK samples (see _vocal_tract)
    formants = formant_targets[np.minimum(np.arange(n_frames) * _BLOCK, n - 1)]
    formants = np.stack([_smooth(formants[:, j], 800 // _BLOCK + 1) for j in range(4)], axis=1) * speaker.tract_scale
    # --- f0 contour: declination, accents, slow drift, vibrato-like wobble
    decl = np.linspace(plan.f0_start, plan.f0_end, n)
    drift = np.cumsum(rng.normal(0, 1, n // 400 + 2))
    drift = np.interp(np.arange(n), np.arange(len(drift)) * 400, drift)
    drift = 0.02 * drift / (np.std(drift) + 1e-9)
    wobble = 0.006 * np.sin(2 * np.pi * rng.uniform(4, 6) * t + rng.uniform(0, 2 * np.pi))
    f0 = speaker.f0 * decl * (1 + 0.18 * _smooth(accent, 400) + drift + wobble)
    # --- glottal source: Rosenberg flow per period, jitter and shimmer per period
    n_periods = int(np.sum(f0) / SAMPLE_RATE) + 4
    jit = 1 + speaker.jitter * rng.standard_normal(n_periods + 1)
    phase = np.cumsum(f0 / SAMPLE_RATE)
    phase = np.cumsum(f0 * jit[np.minimum(phase.astype(int), n_periods)] / SAMPLE_RATE)
    period = np.minimum(phase.astype(int), n_periods)
    frac = phase - np.floor(phase)
    oq = speaker.open_quotient * (1 + 0.05 * rng.standard_normal(n_periods + 1))[period]
    tp, tn = 0.62 * oq, 0.38 * oq
    flow = np.where(
        frac < tp,
        0.5 * (1 - np.cos(np.pi * frac / tp)),
        np.where(frac < oq, np.cos(0.5 * np.pi * (frac - tp) / tn), 0.0),
    )
    amp = (1 + speaker.shimmer * rng.standard_normal(n_periods + 1))[period]
    flow = flow * amp
    source = np.diff(flow, prepend=flow[0]) * (SAMPLE_RATE / speaker.f0) * 0.05
    aspiration = rng.standard_normal(n) * (0.3 + flow) * speaker.breathiness * 0.15
    aspiration = lfilter([1, -0.9], [1], aspiration)
    if speaker.tilt > 0:
        source = lfilter([1 - speaker.tilt], [1, -speaker.tilt], source)
    excitation = (source + aspiration) * voiced * env
    # --- time-varying vocal tract: cascade of resonators, one setting per frame
    f5 = np.full((n_frames, 1), 4500.0 * speaker.tract_scale)
    bws = _BANDWIDTHS * rng.uniform(0.85, 1.2, size=len(_BANDWIDTHS))
    out = _vocal_tract(excitation, np.concatenate([formants, f5], axis=1), bws)
    # --- fricatives and bursts: band-passed noise on top of the vowels
    centre_hz = rng.uniform(2500, 6000) * min(speaker.tract_scale, 1.15)
    noise = sosfilt(
        _resonator_sos(np.array([centre_hz, centre_hz * 1.3]), np.array([900.0, 1500.0])), rng.standard_normal(n)
    )
    noise = lfilter([1, -0.95], [1], noise)  # remove the DC-normalised resonators' low end
    vowel_rms = np.sqrt(np.mean(out[env > 0.3] ** 2)) if np.any(env > 0.3) else np.std(out)
    noise *= vowel_rms / (np.std(noise) + 1e-12)
    speech = out + noise * fric
    peak = np.max(np.abs(speech)) + 1e-12
    return speech / peak
