"""The embedded toy corpus: synthetic bona fide and spoofed speech in the ASVspoof 5 layout.

It lets every step of the chain (manifest, degrade, embed, train, eval, analyses,
report, ``cm demo``) run end to end in minutes without a licensed corpus, while
being hard enough that results mean something: a linear LFCC detector lands well
away from 0 % and 50 % EER, and the attacks differ clearly in difficulty.

Layout under ``root`` (``<data_root>/toy``), exactly as ASVspoof 5 ships it::

    ASVspoof5_protocols/ASVspoof5.train.tsv, ASVspoof5.dev.track_1.tsv, ASVspoof5.eval.track_1.tsv
    flac_T/T_0000000001.flac ...   flac_D/...   flac_E_eval/...
    README.txt   .completed

Every utterance is rendered from its own generator seeded by (seed, split, index),
so builds are byte-identical whatever the number of worker processes.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    from cm_cli.data.synth.voice import Speaker

__all__ = [
    "TOY_FORMAT",
    "TOY_ATTACKS",
    "SPLIT_ATTACKS",
    "SIZES",
    "SPLITS",
    "ToyAttack",
    "ToySize",
    "ToyUtterance",
    "ToyCorpusInfo",
    "plan_toy_corpus",
    "protocol_row",
    "toy_protocol_rows",
    "render_utterance",
    "build_toy_corpus",
]

TOY_FORMAT = 1  # bump when the generator changes what a (size, seed) pair produces
SPLITS = ("train", "dev", "eval")
_PREFIX = {"train": "T", "dev": "D", "eval": "E"}
_SPLIT_CODE = {"train": 1, "dev": 2, "eval": 3}
_PROTOCOL_DIR = "ASVspoof5_protocols"
_PROTOCOL_FILES = {
    "train": "ASVspoof5.train.tsv",
    "dev": "ASVspoof5.dev.track_1.tsv",
    "eval": "ASVspoof5.eval.track_1.tsv",
}
_AUDIO_DIRS = {"train": "flac_T", "dev": "flac_D", "eval": "flac_E_eval"}
_MARKER = ".completed"
_DURATION = (1.0, 2.5)  # seconds, uniform


@dataclass(frozen=True)
class ToyAttack:
    tag: str  # ATTACK_TAG column
    vocoder: str  # key of cm_cli.data.synth.vocoders.VOCODERS
    family: str  # generator family (taxonomy)
    description: str


TOY_ATTACKS: dict[str, ToyAttack] = {
    "A01": ToyAttack(
        "GL",
        "griffin_lim_mel",
        "spectrogram_phase_reconstruction",
        "80-band log-mel spectrogram inverted with 16 fast Griffin-Lim iterations",
    ),
    "A02": ToyAttack(
        "LPC",
        "lpc_vocoder",
        "source_filter_vocoder",
        "order-18 LPC envelope excited by a pulse train at the estimated f0, or by noise",
    ),
    "A03": ToyAttack(
        "SIN",
        "sinusoidal_model",
        "sinusoidal_model",
        "up to 30 spectral peaks per frame (no noise part) resynthesised as overlap-added sinusoids",
    ),
    "A04": ToyAttack(
        "NEV",
        "noise_vocoder",
        "channel_vocoder",
        "6-band envelopes imposed on white noise (no harmonics: very distinct)",
    ),
    "A05": ToyAttack(
        "HNM",
        "harmonic_noise_model",
        "harmonic_plus_noise_vocoder",
        "estimated f0 and cepstral envelope; harmonics below 4 kHz, shaped noise above (unseen)",
    ),
    "A06": ToyAttack(
        "HBP",
        "high_band_phase",
        "partial_phase_reconstruction",
        "exact magnitude, phase above 4 kHz re-estimated by Griffin-Lim (near-transparent; unseen)",
    ),
}
SPLIT_ATTACKS: dict[str, tuple[str, ...]] = {
    "train": ("A01", "A02", "A03", "A04"),
    "dev": ("A01", "A02", "A03", "A04"),
    "eval": ("A01", "A04", "A05", "A06"),
}


@dataclass(frozen=True)
class ToySize:
    """Per split: number of speakers (half F, half M), bona fide utterances, spoofed utterances per attack."""

    speakers: dict[str, int]
    bonafide: dict[str, int]
    spoof_per_attack: dict[str, int]


SIZES: dict[str, ToySize] = {
    "tiny": ToySize(
        {"train": 4, "dev": 2, "eval": 4}, {"train": 12, "dev": 6, "eval": 12}, {"train": 6, "dev": 3, "eval": 6}
    ),
    "small": ToySize(
        {"train": 30, "dev": 20, "eval": 30},
        {"train": 120, "dev": 60, "eval": 150},
        {"train": 60, "dev": 30, "eval": 75},
    ),
    "medium": ToySize(
        {"train": 80, "dev": 40, "eval": 80},
        {"train": 480, "dev": 240, "eval": 600},
        {"train": 240, "dev": 120, "eval": 300},
    ),
}


@dataclass(frozen=True)
class ToyUtterance:
    """One planned file: everything its protocol row and its audio depend on.

    ``codec``/``codec_q``/``codec_seed`` hold protocol strings; clean eval rows use
    ``-``/``0``/``-`` like the real eval protocol, train/dev ``-`` throughout. A
    later coded condition can be added by replacing these fields (``dataclasses.replace``).
    """

    split: str
    index: int  # position in the split's plan; with the seed, it seeds the audio
    name: str
    speaker: str
    gender: str
    label: str  # "bonafide" | "spoof"
    attack: str | None
    speaker_params: "Speaker"
    codec: str = "-"
    codec_q: str = "-"
    codec_seed: str = "-"


@dataclass
class ToyCorpusInfo:
    root: Path
    size: str
    seed: int
    counts: dict[str, dict] = field(default_factory=dict)
    n_files: int = 0
    built: bool = False


def _check_size(size: str) -> ToySize:
    if size not in SIZES:
        raise CmError(f"unknown toy corpus size {size!r}", f"valid sizes: {', '.join(SIZES)}")
    return SIZES[size]


def plan_toy_corpus(size: str = "small", *, seed: int = 0) -> dict[str, list[ToyUtterance]]:
    """Speakers, labels, attacks and file names of every utterance, per split (no audio)."""
    import numpy as np

    from cm_cli.data.synth.voice import make_speaker

    spec = _check_size(size)
    rng = np.random.default_rng([int(seed), 0x70D1])
    total_speakers = sum(spec.speakers.values())
    speaker_numbers = rng.choice(np.arange(1, 10_000), size=total_speakers, replace=False)
    plans: dict[str, list[ToyUtterance]] = {}
    used = 0
    for split in SPLITS:
        n_spk = spec.speakers[split]
        speakers = []
        for i in range(n_spk):
            sid = f"{_PREFIX[split]}_{int(speaker_numbers[used + i]):04d}"
            speakers.append(make_speaker(rng, sid, "F" if i % 2 == 0 else "M"))
        used += n_spk
        entries: list[tuple[int, str, str | None]] = []
        entries += [(i % n_spk, "bonafide", None) for i in range(spec.bonafide[split])]
        for a, attack in enumerate(SPLIT_ATTACKS[split]):
            entries += [((i + a) % n_spk, "spoof", attack) for i in range(spec.spoof_per_attack[split])]
        order = rng.permutation(len(entries))
        first = int(rng.integers(1, 5_000))
        utterances = []
        for k, j in enumerate(order):
            spk_idx, label, attack = entries[j]
            spk = speakers[spk_idx]
            utterances.append(
                ToyUtterance(
                    split=split,
                    index=k,
                    name=f"{_PREFIX[split]}_{first + k:010d}",
                    speaker=spk.speaker_id,
                    gender=spk.gender,
                    label=label,
                    attack=attack,
                    speaker_params=spk,
                    codec_q="0" if split == "eval" else "-",
                )
            )
        plans[split] = utterances
    return plans


def protocol_row(utt: ToyUtterance) -> list[str]:
    """The ten ASVspoof 5 protocol fields of one utterance."""
    spoof = utt.label == "spoof"
    return [
        utt.speaker,
        utt.name,
        utt.gender,
        utt.codec,
        utt.codec_q,
        utt.codec_seed,
        TOY_ATTACKS[utt.attack].tag if spoof else "-",
        utt.attack if spoof else "bonafide",
        utt.label,
        "-",
    ]


def toy_protocol_rows(utterances: Iterable[ToyUtterance]) -> list[list[str]]:
    """Protocol rows in file-name order; extend the utterance list (e.g. coded eval copies) before calling."""
    return [protocol_row(u) for u in sorted(utterances, key=lambda u: u.name)]


def render_utterance(utt: ToyUtterance, *, seed: int):
    """The int16 samples of one utterance at 16 kHz, determined by (seed, split, index) alone."""
    import numpy as np

    from cm_cli.data.synth.channel import apply_channel, to_pcm16
    from cm_cli.data.synth.vocoders import VOCODERS
    from cm_cli.data.synth.voice import plan_utterance, synthesise

    rng = np.random.default_rng([int(seed), _SPLIT_CODE[utt.split], utt.index])
    plan = plan_utterance(rng, utt.speaker_params, float(rng.uniform(*_DURATION)))
    speech = synthesise(rng, utt.speaker_params, plan)
    if utt.label == "spoof":
        speech = VOCODERS[TOY_ATTACKS[utt.attack].vocoder](speech, rng)
    return to_pcm16(apply_channel(speech, rng))


def _render_to_file(job: tuple[ToyUtterance, int, str]) -> int:
    import soundfile as sf

    utt, seed, path = job
    pcm = render_utterance(utt, seed=seed)
    sf.write(path, pcm, 16_000, subtype="PCM_16", format="FLAC")
    return len(pcm)


def _counts(plans: dict[str, list[ToyUtterance]]) -> dict[str, dict]:
    counts: dict[str, dict] = {}
    for split, utts in plans.items():
        by_attack: dict[str, int] = {}
        for u in utts:
            if u.attack:
                by_attack[u.attack] = by_attack.get(u.attack, 0) + 1
        counts[split] = {
            "total": len(utts),
            "bonafide": sum(u.label == "bonafide" for u in utts),
            "spoof": sum(u.label == "spoof" for u in utts),
            "by_attack": dict(sorted(by_attack.items())),
        }
    return counts


def _readme(size: str, seed: int, counts: dict[str, dict]) -> str:
    lines = [
        "cm toy corpus: synthetic speech anti-spoofing data in the ASVspoof 5 layout",
        "",
        f"size {size}, seed {seed}, format {TOY_FORMAT}; built by `cm download toy` (cm_cli.data.corpora.toy).",
        "Bona fide: a source-filter voice (glottal pulses with jitter, shimmer and intonation,",
        "formants scaled by vocal-tract length, syllables, aspiration and fricative noise).",
        "Spoofs: resyntheses of such speech; the same channel (level, tilt, noise floor) is applied to all.",
        "Disjoint speakers per split. 16 kHz mono FLAC. Not real speech: for testing pipelines only.",
        "",
        "Attacks (ATTACK_LABEL, ATTACK_TAG, splits, description):",
    ]
    for attack, info in TOY_ATTACKS.items():
        splits = ",".join(s for s in SPLITS if attack in SPLIT_ATTACKS[s])
        lines.append(f"  {attack} {info.tag:<4} {splits:<15} {info.description}")
    lines += ["", "Utterances:"]
    for split, c in counts.items():
        lines.append(f"  {split:<5} {c['total']:>5} ({c['bonafide']} bona fide, {c['spoof']} spoof)")
    return "\n".join(lines) + "\n"


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _remove_stale_temps(root: Path) -> None:
    """Delete ``<root>.tmp-<pid>`` leftovers of builds whose process is gone."""
    from cm_cli.core.artifacts import pid_alive

    for candidate in root.parent.glob(f"{root.name}.tmp-*"):
        suffix = candidate.name.rsplit("-", 1)[-1]
        if suffix.isdigit() and not pid_alive(int(suffix)) and candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)


def _read_marker(root: Path) -> dict | None:
    path = root / _MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _single_threaded():
    """Limit BLAS/OpenMP pools to one thread: faster next to worker processes, and identical sums everywhere."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def _worker_init() -> None:
    global _WORKER_LIMITS
    _WORKER_LIMITS = _single_threaded()
    _WORKER_LIMITS.__enter__()


def _render_all(jobs: Sequence[tuple[ToyUtterance, int, str]], workers: int, advance: Callable[[int], None]) -> int:
    samples = 0
    if workers <= 1 or len(jobs) < 8:
        with _single_threaded():
            for job in jobs:
                samples += _render_to_file(job)
                advance(1)
        return samples
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    chunk = max(1, min(16, len(jobs) // (workers * 8)))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context(method), initializer=_worker_init
    ) as pool:
        for n in pool.map(_render_to_file, jobs, chunksize=chunk):
            samples += n
            advance(1)
    return samples


def build_toy_corpus(
    root: str | Path,
    *,
    size: str = "small",
    seed: int = 0,
    force: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ToyCorpusInfo:
    """Write the toy corpus under ``root`` (normally ``<data_root>/toy``); safe to rerun.

    A finished corpus has a ``.completed`` marker recording size, seed and format.
    The same request again returns ``built=False`` without work; a different one
    needs ``force``. The corpus is built in ``<root>.tmp-<pid>`` and renamed into
    place, so an interrupted build never leaves a corpus that looks complete.
    """
    from cm_cli.core.progress import task

    root = Path(root)
    _check_size(size)
    seed = int(seed)
    marker = _read_marker(root)
    wanted = {"corpus": "toy", "size": size, "seed": seed, "format": TOY_FORMAT}
    if marker is not None:
        same = all(marker.get(k) == v for k, v in wanted.items())
        if same and not force:
            return ToyCorpusInfo(root, size, seed, marker.get("counts", {}), int(marker.get("n_files", 0)), False)
        if not same and not force:
            have = f"size {marker.get('size')!r}, seed {marker.get('seed')!r}, format {marker.get('format')!r}"
            raise CmError(
                f"{root}: a toy corpus with {have} is already there (asked for size {size!r}, seed {seed})",
                "replace it, or use another data root",
                option=("force", "data_root"),
            )
    elif root.exists() and (not root.is_dir() or any(root.iterdir())) and not force:
        raise CmError(
            f"{root}: exists and is not a finished toy corpus (no {_MARKER} marker)",
            "replace it, or use another data root",
            option=("force", "data_root"),
        )

    plans = plan_toy_corpus(size, seed=seed)
    counts = _counts(plans)
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root)
    tmp = root.parent / f"{root.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        (tmp / _PROTOCOL_DIR).mkdir(parents=True)
        jobs = []
        for split, utts in plans.items():
            audio_dir = tmp / _AUDIO_DIRS[split]
            audio_dir.mkdir()
            jobs += [(u, seed, str(audio_dir / f"{u.name}.flac")) for u in utts]
            rows = toy_protocol_rows(utts)
            text = "".join(" ".join(r) + "\n" for r in rows)
            (tmp / _PROTOCOL_DIR / _PROTOCOL_FILES[split]).write_text(text, encoding="utf-8")
        with task(len(jobs), f"toy corpus ({size})") as advance:

            def step(n: int) -> None:
                advance(n)
                if progress is not None:
                    progress(n)

            samples = _render_all(jobs, workers or _default_workers(), step)
        (tmp / "README.txt").write_text(_readme(size, seed, counts), encoding="utf-8")
        record = dict(wanted, counts=counts, n_files=len(jobs), hours=round(samples / 16_000 / 3600, 4))
        (tmp / _MARKER).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        old = None
        if root.exists():
            old = root.parent / f"{root.name}.old-{os.getpid()}"
            os.replace(root, old)
        os.replace(tmp, root)
        if old is not None:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ToyCorpusInfo(root, size, seed, counts, len(jobs), True)
