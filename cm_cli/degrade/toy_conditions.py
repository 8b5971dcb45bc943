"""Coded evaluation conditions for the toy corpus, laid out as ASVspoof 5 lays out its coded eval audio.

Each clean eval row (CODEC ``-``) gets one coded copy per condition: a new FLAC in
``flac_E_eval`` and a protocol row with CODEC (the condition id), CODEC_Q (the
bitrate drawn, ``-`` for fixed-rate codecs) and CODEC_SEED (the source utterance
id). The defaults include narrowband codecs that no augmentation policy preset uses
(G.723.1, G.726), so domain-adversarial studies have out-of-domain codecs to test on.
Idempotent: copies already listed are not made again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cm_cli.core.errors import CmError

__all__ = ["DEFAULT_TOY_CONDITIONS", "SEEN", "OUT_OF_DOMAIN", "describe_condition", "add_coded_eval_conditions"]

# Every condition is encoded by PyAV's bundled FFmpeg, so a pip-only install renders the same
# copies (and the demo reaches the same conclusions) as one with a distribution ffmpeg.
# C05 (mp3) and C08 (opus nb) are covered by the aug_codec_* policies and the demo's augmentation.
SEEN = ("C05", "C08")
# Never seen: narrowband (8 kHz) speech codecs that no augmentation policy preset uses. The
# planted cues live above 4 kHz (docs/toy.md), so both cut them; a linear LFCC detector trained on
# clean toy data loses about +100 % relative EER on them (tests/data/test_toy.py).
OUT_OF_DOMAIN = ("g723_1", "g726")
DEFAULT_TOY_CONDITIONS = SEEN + OUT_OF_DOMAIN


def describe_condition(name: str) -> str:
    """What a toy condition is, in words, e.g. 'G.723.1 MP-MLQ at 6.3 kbps' or 'C08 (Opus, narrowband)'."""
    from cm_cli.core.specs import parse_spec
    from cm_cli.degrade.codecs import CODECS
    from cm_cli.degrade.conditions import get_condition, is_condition, spec_bitrate_kbps

    if is_condition(name):
        condition = get_condition(name)
        return f"{condition.id} ({condition.description})"
    spec = parse_spec(name)
    codec = CODECS.get(spec.steps[0].name)
    label = codec.description.split(",")[0] if codec is not None else spec.canonical()
    kbps = spec_bitrate_kbps(spec)
    return label if kbps is None else f"{label} at {kbps:g} kbps"


def _condition_spec(name: str, *, seed: int, utt_id: str) -> tuple[str, str, str]:
    """(CODEC, CODEC_Q, canonical spec) for a condition id or a plain spec."""
    from cm_cli.core.specs import parse_spec
    from cm_cli.degrade.conditions import is_condition, pick_level
    from cm_cli.degrade.registry import codec_fields

    if is_condition(name):  # CODEC_Q is the condition's ordinal level, as in the ASVspoof 5 protocol
        level = pick_level(name, seed=seed, utt_id=utt_id)
        return name.upper(), str(level.q), level.parsed().canonical()
    spec = parse_spec(name)
    codec, q = codec_fields(spec)
    return (codec or spec.slug()), q or "-", spec.canonical()


def _render(job: tuple[str, str, str, int, str]) -> None:
    """Decode one clean eval file, apply the condition, write the coded copy (a worker task)."""
    from cm_cli.data.audio import load_audio, save_audio
    from cm_cli.degrade.registry import apply_spec

    source, target, spec, seed, utt_id = job
    samples, rate = load_audio(source)
    coded, _ = apply_spec(samples, rate, spec, seed=seed, utt_id=utt_id)
    save_audio(target, coded, rate)


def add_coded_eval_conditions(
    corpus_root: str | Path,
    conditions: Sequence[str] | None = None,
    *,
    seed: int = 0,
    workers: int = 1,
    copies: int | None = 1,
) -> dict[str, int]:
    """Append coded copies of the clean eval rows; returns the number of new rows per condition.

    ``copies`` conditions per clean utterance, assigned in rotation so every condition
    gets an equal share of utterances (None: every condition for every utterance).
    ``conditions=None`` renders ``DEFAULT_TOY_CONDITIONS``.

    The copies are rendered by ``workers`` processes (each codec call is an ffmpeg
    pipe, so the work is parallel); the protocol is rewritten once, atomically, after
    every file exists, so an interrupted run adds no rows and is simply redone.
    """
    from cm_cli.core.artifacts import atomic_path
    from cm_cli.core.progress import track
    from cm_cli.data.corpora.asvspoof5 import AUDIO_DIRS, find_protocol, read_protocol
    from cm_cli.degrade.conditions import is_condition
    from cm_cli.degrade.registry import validate_spec

    corpus_root = Path(corpus_root)
    if conditions is None:
        conditions = DEFAULT_TOY_CONDITIONS
    protocol = find_protocol(corpus_root, "eval")
    if protocol.suffix == ".gz":
        raise CmError(f"{protocol}: cannot append to a gzipped protocol")
    for name in conditions:  # fail before writing anything
        if is_condition(name):
            from cm_cli.degrade.conditions import get_condition

            for spec in get_condition(name).specs():
                validate_spec(spec)
        else:
            validate_spec(name)
    rows = read_protocol(protocol)
    existing = {r[1] for r in rows}
    clean = [r for r in rows if r[3] == "-"]
    audio_dir = corpus_root / AUDIO_DIRS["eval"]
    added: dict[str, int] = {}
    new_lines: list[str] = []
    jobs: list[tuple[str, str, str, int, str]] = []
    per_row = len(conditions) if copies is None else max(1, min(int(copies), len(conditions)))
    for c_index, name in enumerate(conditions):
        count = 0
        for r_index, row in enumerate(clean):
            if (c_index - r_index) % len(conditions) >= per_row:
                continue  # this utterance is coded under other conditions
            source_id = row[1]
            codec, codec_q, spec = _condition_spec(name, seed=seed, utt_id=source_id)
            new_id = f"{source_id}_{codec}"
            if new_id in existing:
                continue
            jobs.append(
                (str(audio_dir / f"{source_id}.flac"), str(audio_dir / f"{new_id}.flac"), spec, seed, source_id)
            )
            fields = list(row)
            fields[1], fields[3], fields[4], fields[5] = new_id, codec, codec_q, source_id
            new_lines.append(" ".join(fields))
            existing.add(new_id)
            count += 1
        added[name] = count
    if jobs and workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for _ in track(pool.map(_render, jobs, chunksize=8), total=len(jobs), description="coding toy eval copies"):
                pass
    else:
        for job in track(jobs, description="coding toy eval copies"):
            _render(job)
    if new_lines:
        text = protocol.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            text += "\n"
        with atomic_path(protocol) as tmp:
            tmp.write_text(text + "\n".join(new_lines) + "\n", encoding="utf-8")
        _record_coders(
            corpus_root,
            {name: _condition_spec(name, seed=seed, utt_id="")[2] for name in conditions if added.get(name)},
        )
    return added


CODED_BY = "coded_conditions.json"  # which provider coded each condition's copies (FFmpeg builds differ slightly)


def _record_coders(corpus_root: Path, specs: dict[str, str]) -> None:
    """Add ``{condition: provider and encoder}`` to the corpus's ``coded_conditions.json``."""
    from cm_cli.core.artifacts import read_json, write_json
    from cm_cli.degrade.registry import spec_providers

    path = corpus_root / CODED_BY
    record = read_json(path) if path.is_file() else {}
    for name, spec in specs.items():
        record[name] = spec_providers(spec) or "cm (no ffmpeg step)"
    write_json(record, path)
