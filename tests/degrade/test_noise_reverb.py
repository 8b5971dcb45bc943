"""Noise at a target SNR on active speech, reproducible per utterance; reverberation; folder errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cm_cli.core.errors import CmError
from cm_cli.degrade.channel import active_mask
from cm_cli.degrade.noise import list_audio_files, stable_seed
from cm_cli.degrade.registry import apply_spec, validate_spec

from .conftest import speechlike

SR = 16000


def measured_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    mask = active_mask(clean, SR)
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean[mask].astype(np.float64) ** 2) / np.mean(noise**2))


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_snr_is_met_on_active_speech(colour):
    x = speechlike(SR, 1.5, seed=3, silence=0.7)  # lots of silence: whole-file power would be wrong
    y, info = apply_spec(x, SR, f"noise:snr=5:type={colour}", seed=1, utt_id="a")
    assert measured_snr(x, y) == pytest.approx(5.0, abs=0.05)
    assert info["steps"][0]["snr_reference"] == "active speech" and not info["warnings"]


def test_noise_colours_have_the_right_slope():
    from cm_cli.degrade.noise import coloured_noise

    rng = np.random.default_rng(0)
    for colour, expected in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        n = coloured_noise(1 << 16, colour, rng)
        power = np.abs(np.fft.rfft(n)) ** 2
        f = np.fft.rfftfreq(len(n))
        band = (f > 0.001) & (f < 0.4)
        slope = np.polyfit(np.log10(f[band]), np.log10(power[band] + 1e-20), 1)[0]
        assert slope == pytest.approx(expected, abs=0.15), colour


def test_noise_is_reproducible_per_utterance_and_differs_between_utterances():
    x = speechlike(SR, 1.0, seed=3)
    a1, _ = apply_spec(x, SR, "noise:snr=10", seed=7, utt_id="u1")
    a2, _ = apply_spec(x, SR, "noise:snr=10", seed=7, utt_id="u1")
    b, _ = apply_spec(x, SR, "noise:snr=10", seed=7, utt_id="u2")
    c, _ = apply_spec(x, SR, "noise:snr=10", seed=8, utt_id="u1")
    np.testing.assert_array_equal(a1, a2)
    assert not np.allclose(a1, b) and not np.allclose(a1, c)


def test_stable_seed_is_process_independent():
    import subprocess
    import sys

    code = "from cm_cli.degrade.noise import stable_seed; print(stable_seed(3, 'LA_E_1'))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd="."
    )
    assert other.stdout.strip() == str(stable_seed(3, "LA_E_1"))


def test_all_silent_input_falls_back_and_warns():
    x = (5e-4 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32)  # about -66 dBFS: no speech
    y, info = apply_spec(x, SR, "noise:snr=10", utt_id="s")
    assert len(info["warnings"]) == 1 and "whole-file power" in info["warnings"][0]
    assert len(y) == len(x) and np.all(np.isfinite(y))
    noise = y.astype(np.float64) - x
    assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2)) == pytest.approx(10, abs=0.05)
    _, info = apply_spec(np.zeros(SR, np.float32), SR, "noise:snr=10", utt_id="z")
    assert "silent" in info["warnings"][0]


def test_noise_files_from_folder_resampled_and_looped(tmp_path):
    folder = tmp_path / "musan" / "noise" / "free-sound"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(folder / "short-8k.wav", (0.1 * rng.standard_normal(4000)).astype(np.float32), 8000)  # 0.5 s
    # 5 s: longer than the utterance, so segments differ in offset as well as file (a 2 s file
    # left only the file choice, and six utterances picked the same file in ~3% of runs)
    sf.write(folder / "long-44k.flac", (0.1 * rng.standard_normal(5 * 44100)).astype(np.float32), 44100)
    x = speechlike(SR, 2.0, seed=5)
    seen = set()
    for utt in ("a", "b", "c", "d", "e", "f"):
        y, info = apply_spec(x, SR, f"noise:snr=0:dir={tmp_path / 'musan'}", seed=0, utt_id=utt)
        assert len(y) == len(x)
        assert measured_snr(x, y) == pytest.approx(0.0, abs=0.05)
        seen.add((info["steps"][0]["noise_file"], info["steps"][0]["noise_offset"]))
    assert len(seen) > 1


def test_missing_and_empty_noise_or_rir_folder(tmp_path):
    list_audio_files.cache_clear()
    with pytest.raises(CmError, match="no such folder"):
        validate_spec(f"noise:snr=5:dir={tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio")
    with pytest.raises(CmError, match="no audio files"):
        validate_spec(f"reverb:dir={tmp_path / 'empty'}")
    with pytest.raises(CmError, match="needs dir"):
        validate_spec("noise:type=file")


def test_synthetic_reverb_keeps_length_and_level_and_smears():
    x = np.zeros(SR, np.float32)
    x[1000] = 0.5
    y, _ = apply_spec(x, SR, "reverb:rt60=0.5", utt_id="r")
    assert len(y) == len(x)
    assert int(np.argmax(np.abs(y))) == 1000  # aligned to the direct path
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)
    energy = np.cumsum(y[1000:].astype(np.float64) ** 2)
    assert energy[int(0.05 * SR)] < 0.99 * energy[-1]  # energy keeps arriving after 50 ms


def test_reverb_from_rir_folder(tmp_path):
    rir = np.zeros(800, np.float32)
    rir[10], rir[200], rir[500] = 1.0, 0.5, 0.25
    (tmp_path / "rirs").mkdir()
    sf.write(tmp_path / "rirs" / "room.wav", rir, SR)
    x = speechlike(SR, 1.0, seed=6)
    y, info = apply_spec(x, SR, f"reverb:dir={tmp_path / 'rirs'}", utt_id="x")
    assert len(y) == len(x) and info["steps"][0]["rir_file"].endswith("room.wav")
