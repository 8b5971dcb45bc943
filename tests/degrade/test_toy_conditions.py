"""Coded eval conditions appended to an ASVspoof 5-layout (toy) corpus."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from cm_cli.data.corpora.asvspoof5 import read_protocol
from cm_cli.degrade.toy_conditions import DEFAULT_TOY_CONDITIONS, OUT_OF_DOMAIN, add_coded_eval_conditions

from .conftest import speechlike


def make_corpus(root):
    (root / "ASVspoof5_protocols").mkdir(parents=True)
    (root / "flac_E_eval").mkdir()
    lines = []
    for i, (key, attack) in enumerate([("bonafide", "bonafide"), ("spoof", "A17"), ("spoof", "A18")]):
        name = f"E_{i:010d}"
        sf.write(root / "flac_E_eval" / f"{name}.flac", speechlike(16000, 1.0, seed=i), 16000)
        lines.append(f"E_0001 {name} F - 0 - {'-' if key == 'bonafide' else 'AC1'} {attack} {key} -")
    (root / "ASVspoof5_protocols" / "ASVspoof5.eval.track_1.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_adds_coded_copies_with_protocol_fields(tmp_path):
    root = make_corpus(tmp_path / "toy")
    added = add_coded_eval_conditions(root, ["C05", "g723_1", "mulaw"], seed=0, copies=None)
    assert added == {"C05": 3, "g723_1": 3, "mulaw": 3}
    rows = read_protocol(root / "ASVspoof5_protocols" / "ASVspoof5.eval.track_1.tsv")
    assert len(rows) == 12
    coded = {r[1]: r for r in rows if r[3] != "-"}
    c05 = coded["E_0000000001_C05"]
    assert c05[3] == "C05" and c05[4] in {"1", "2", "3", "4", "5"} and c05[5] == "E_0000000001"
    assert c05[7:9] == ["A17", "spoof"]
    assert coded["E_0000000002_g723_1"][4] == "-"
    y, sr = sf.read(root / "flac_E_eval" / "E_0000000000_g723_1.flac")
    x, _ = sf.read(root / "flac_E_eval" / "E_0000000000.flac")
    assert sr == 16000 and len(y) == len(x) and not np.allclose(x, y, atol=1e-3)
    assert add_coded_eval_conditions(root, ["C05"], seed=0, copies=None) == {"C05": 0}  # idempotent
    assert len(read_protocol(root / "ASVspoof5_protocols" / "ASVspoof5.eval.track_1.tsv")) == 12
    import json

    from cm_cli.degrade.registry import spec_providers

    coded_by = json.loads((root / "coded_conditions.json").read_text())  # which FFmpeg build coded each condition
    assert set(coded_by) == {"C05", "g723_1", "mulaw"}
    assert coded_by["C05"].startswith("mp3=") and coded_by["C05"] == spec_providers("mp3:kbps=128")
    assert coded_by["g723_1"].startswith("g723_1=pyav:")


def test_one_copy_per_utterance_rotates_conditions_and_reruns_add_nothing(tmp_path):
    root = make_corpus(tmp_path / "toy")
    added = add_coded_eval_conditions(root, ["mulaw", "alaw", "g726"], seed=0, workers=2)
    assert added == {"mulaw": 1, "alaw": 1, "g726": 1}
    rows = read_protocol(root / "ASVspoof5_protocols" / "ASVspoof5.eval.track_1.tsv")
    sources = [r[5] for r in rows if r[3] != "-"]
    assert sorted(sources) == ["E_0000000000", "E_0000000001", "E_0000000002"]
    assert add_coded_eval_conditions(root, ["mulaw", "alaw", "g726"], seed=0) == {"mulaw": 0, "alaw": 0, "g726": 0}


def test_default_out_of_domain_codecs_are_narrowband_and_in_no_policy_preset():
    from cm_cli.core.presets import list_presets
    from cm_cli.degrade.codecs import CODECS
    from cm_cli.degrade.policy import load_policy

    used = set()
    names = [p.name for p in list_presets() if p.name.startswith("aug_")]
    assert {"aug_codec_basic", "aug_codec_asvspoof5", "aug_channel"} <= set(names)
    for name in names:
        policy = load_policy(name, check_available=False)
        for entry in policy.entries:
            used.add(entry.condition or entry.text.split(":")[0])
    assert not used & set(OUT_OF_DOMAIN)
    for name in OUT_OF_DOMAIN:
        assert CODECS[name].rate(16000, {}) == 8000  # narrowband: the planted cues above 4 kHz are cut


def test_every_toy_condition_is_encoded_in_process_by_pyav():
    """One study everywhere: the toy copies never depend on a distribution ffmpeg (issue 31)."""
    from cm_cli.degrade.conditions import get_condition, is_condition
    from cm_cli.degrade.registry import spec_providers

    for name in DEFAULT_TOY_CONDITIONS:
        specs = get_condition(name).specs() if is_condition(name) else [name]
        for spec in specs:
            assert spec_providers(spec).split("=", 1)[1].startswith("pyav:"), (name, spec_providers(spec))


def test_summary_names_the_never_seen_codecs(tmp_path):
    from cm_cli.recipes.demo import study_summary

    text = study_summary({"erm": {0: tmp_path / "missing"}})["text"]
    assert "Never-seen codecs: G.723.1 MP-MLQ at 6.3 kbps, G.726 ADPCM at 32 kbps." in text
    assert "C05 (MP3, wideband)" in text and "C08 (Opus, narrowband)" in text


def test_a_system_ffmpeg_with_every_encoder_changes_no_toy_provider(monkeypatch):
    """Planted: a distribution ffmpeg on PATH that has every encoder (speex, gsm...). PyAV still codes every toy
    condition, so the corpus is the same with or without it; only a pinned binary (CM_FFMPEG) would win."""
    from cm_cli.degrade import ffmpeg
    from cm_cli.degrade.codecs import CODECS
    from cm_cli.degrade.conditions import get_condition, is_condition
    from cm_cli.degrade.registry import spec_providers

    system = ffmpeg.FfmpegBinary("/usr/bin/ffmpeg", "PATH")
    monkeypatch.setattr(ffmpeg, "candidate_binaries", lambda: [system])
    monkeypatch.setattr(ffmpeg, "encoders_of", lambda path: frozenset(e for c in CODECS.values() for e in c.encoders))
    assert spec_providers("speex:band=nb").startswith("speex=PATH:/usr/bin/ffmpeg")  # the planted binary is seen
    for name in DEFAULT_TOY_CONDITIONS:
        for spec in get_condition(name).specs() if is_condition(name) else [name]:
            assert "=pyav:" in spec_providers(spec) and "PATH" not in spec_providers(spec), spec
