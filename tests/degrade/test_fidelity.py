"""Fidelity of every ASVspoof 5 condition, measured on what it outputs (issue 16).

A small wideband set is degraded under each condition (every encoder present here;
EnCodec with a tiny random model) and checked for what can be measured: length and
sample rate kept, narrowband conditions removing the band above 4 kHz, wideband ones
keeping it, each level's encoder producing its bitrate, and corpus mode drawing the
levels uniformly, as the real protocol's CODEC_Q counts are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cm_cli.core.errors import CmError
from cm_cli.core.specs import parse_spec
from cm_cli.degrade.conditions import CONDITIONS, condition_fields
from cm_cli.degrade.registry import REGISTRY, _codec_for, apply_spec, resolve_params, validate_spec

from .conftest import speechlike

SR = 16000
NARROWBAND = ("C08", "C09", "C10")
WIDEBAND = ("C01", "C02", "C03", "C05", "C06")
# encoders that hold a constant bitrate (container framing aside) vs. those that average it
CBR = {"mp3": 0.10, "amr-nb": 0.10, "amr-wb": 0.10, "speex": 0.10, "sbc": 0.05}
VBR = {"opus": 0.25, "m4a": 0.25}
FRAMING_KBPS = 1.5  # Ogg/AMR/MP4 headers and page framing over a 4 s file


def _wideband(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Speech-like signal plus a broadband component, so there is energy up to 8 kHz to lose."""
    x = speechlike(SR, seconds, seed=seed)
    noise = np.random.default_rng(seed).standard_normal(len(x)).astype(np.float32)
    return (x + 0.03 * noise).astype(np.float32)


def _hf_db(y: np.ndarray, low: float = 4500.0, high: float = 7500.0) -> float:
    """Energy between low and high relative to the whole signal's energy, in dB."""
    spectrum = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    return float(10 * np.log10(spectrum[(f >= low) & (f < high)].sum() / spectrum.sum() + 1e-20))


def _available(cid: str) -> bool:
    try:
        for level in CONDITIONS[cid].levels:
            validate_spec(level.spec)
    except CmError:
        return False
    return True


@pytest.fixture
def small_set(tmp_path):
    from cm_cli.core.artifacts import write_parquet

    rows = []
    for i in range(3):
        path = tmp_path / "src" / f"W_{i}.flac"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, _wideband(1.0 + 0.37 * i, seed=i), SR)
        rows.append(
            dict(
                utt_id=f"W_{i}",
                path=str(path),
                label="bonafide",
                attack=None,
                attack_family=None,
                speaker="S",
                split="eval",
                corpus="toy",
                codec=None,
                codec_q=None,
                domain="clean",
                duration=None,
                sample_rate=None,
            )
        )
    manifest = tmp_path / "manifest.parquet"
    write_parquet(pd.DataFrame(rows), manifest)
    return manifest


@pytest.mark.parametrize("cid", sorted(CONDITIONS))
def test_condition_keeps_length_and_rate_and_writes_its_columns(cid, small_set, tmp_path, tiny_encodec):
    from cm_cli.core.artifacts import read_table
    from cm_cli.degrade.corpus import degrade_manifest

    if not _available(cid):
        pytest.skip(f"{cid}: an encoder it needs is missing here ({', '.join(CONDITIONS[cid].provider)})")
    done = degrade_manifest(small_set, tmp_path / cid, condition=cid, seed=1)
    assert done.n_failed == 0
    table = read_table(done.manifest)
    sources = read_table(small_set).set_index("utt_id")
    for _, row in table.iterrows():
        out, src = sf.info(row["path"]), sf.info(sources.loc[row["source_utt_id"], "path"])
        assert (out.samplerate, out.frames) == (src.samplerate, src.frames)
        assert row["codec"] == cid and row["codec_q"] == condition_fields(cid, row["degradation"])[1]
        level = CONDITIONS[cid].level(row["codec_q"])
        assert (pd.isna(row["bitrate_kbps"]) and level.kbps is None) or row["bitrate_kbps"] == level.kbps


@pytest.mark.parametrize("cid", NARROWBAND + WIDEBAND)
def test_decoded_bandwidth(cid):
    if not _available(cid):
        pytest.skip(f"{cid}: encoder missing here")
    x = _wideband(2.0, seed=5)
    reference = _hf_db(x)
    levels = CONDITIONS[cid].levels if cid in NARROWBAND else CONDITIONS[cid].levels[-1:]
    for level in levels:
        y, _ = apply_spec(x, SR, level.spec, seed=0, utt_id="w")
        loss = reference - _hf_db(y)
        if cid in NARROWBAND:
            assert loss > 20, (level.spec, loss)  # 8 kHz codecs: nothing left above 4 kHz
        else:
            assert loss < 10, (level.spec, loss)  # 16 kHz codecs at their top level keep 4.5-7.5 kHz


def _coding_steps(spec: str):
    for step in parse_spec(spec).steps:
        deg = REGISTRY[step.name]
        params = resolve_params(step)
        name = _codec_for(deg, params)
        if deg.kind == "codec" and name is not None:
            kept = {k: v for k, v in params.items() if k in ("kbps", "band", "mode")}
            if name == "sbc" and kept.get("mode") == "msbc":
                kept.pop("kbps", None)
            yield step, name, kept


@pytest.mark.parametrize("cid", [c for c in sorted(CONDITIONS) if c != "C04"])
def test_every_level_encodes_at_its_bitrate(cid, tiny_encodec):
    from cm_cli.degrade.codecs import encoded_kbps
    from cm_cli.degrade.registry import step_bitrate_kbps

    if not _available(cid):
        pytest.skip(f"{cid}: encoder missing here")
    x = _wideband(4.0, seed=2)
    measured = 0
    for level in CONDITIONS[cid].levels:
        for step, name, params in _coding_steps(level.spec):
            nominal = step_bitrate_kbps(step)
            got = encoded_kbps(x, SR, name, params)
            tolerance = CBR.get(step.name, CBR.get(name, VBR.get(step.name, 0.25))) * nominal + FRAMING_KBPS
            assert abs(got - nominal) <= tolerance, (cid, level.q, step.canonical(), got)
            measured += 1
    assert measured > 0  # every condition but C04 has an ffmpeg coding step (C11: Bluetooth)


def test_encodec_levels_use_their_bandwidth(tiny_encodec):
    from cm_cli.degrade.neural import encodec_batch

    x = _wideband(1.0)
    for level in CONDITIONS["C04"].levels:
        _, info = encodec_batch([x], SR, kbps=level.kbps)
        # 75 frames/s x 10 bits per codebook: the codebooks used carry exactly the level's bitrate
        assert info["codebooks"] * 75 * 10 / 1000 == level.kbps


@pytest.mark.parametrize("cid", ["C05", "C11"])
def test_corpus_mode_draws_levels_uniformly(cid, tmp_path):
    """The jobs `cm degrade --manifest M --condition Cxx` runs: CODEC_Q uniform over the condition's levels."""
    from cm_cli.degrade.corpus import _jobs

    n = 4000
    rows = ({"utt_id": f"E_{i:07d}", "path": f"/x/E_{i:07d}.flac"} for i in range(n))
    jobs = list(_jobs(rows, tmp_path, specs=(), condition=cid, policy=None, variants=1, seed=0, data_root=None))
    levels = [int(condition_fields(job.label, job.spec)[1]) for job in jobs]
    k = len(CONDITIONS[cid].levels)
    counts = np.bincount(levels, minlength=k + 1)[1:]
    chi2 = float(((counts - n / k) ** 2 / (n / k)).sum())
    assert len(jobs) == n and counts.min() > 0 and chi2 < 25.0, counts
