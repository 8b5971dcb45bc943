"""Codecfake (Xie et al., 2024, arXiv:2405.04880): codec-resynthesised deepfakes -> manifest rows.

Why a corpus of its own: its spoofs are neural-codec re-syntheses (seven codecs, C1-C7, C7 unseen in
training) and audio-language-model outputs (A1-A3), the case ``cm loao --group-by codec`` studies.
Layout, as the authors' README (github.com/xieyuankun/Codecfake) arranges the Zenodo archives::

    Codecfake/label/{train,dev,C1..C7,A1..A3}.txt     one line per file: FILE LABEL TYPE
    Codecfake/train/*.wav  Codecfake/dev/*.wav
    Codecfake/test/{C1..C7,A1..A3}/*.wav             (or Codecfake/{C1..}/, as their scoring code reads)

LABEL is ``real`` or ``fake`` (their ``raw_dataset.codecfake`` reads ``filename, label, type``). Rows:
``split`` train/dev/eval (test sets are ``eval``, ``subset`` names the set), ``codec`` = the name of the
codec behind a spoof (``CODECS``: test set Ci is made by the paper's method F0i), ``codec_id`` = its
condition id C1-C7, ``codec_q`` = that codec's bit rate in kbit/s (the paper's Table I), ``attack`` = the
condition id (A1-A3 for the ALM sets, which have no codec; ``generator`` names their model: VALL-E,
VALL-E X, AudioGen, and A3's real side is AudioCaps, ``source``); train/dev spoofs are named the same way when
their TYPE is a condition or method id (C3, F03), otherwise TYPE is kept as written. Bona fide rows have
no codec; ``codec_type`` keeps TYPE. ``source`` and ``speaker`` come from the file name where it is a
VCTK (``p225_…``) or AISHELL-3 (``SSB0005…``) name, the corpora the paper re-synthesised; otherwise null.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cm_cli.core.errors import CmError
from cm_cli.core.labels import BONAFIDE, SPOOF, label_class
from cm_cli.data.corpora._protocol import audio_prefix, iter_rows
from cm_cli.data.corpora.registry import CorpusSpec
from cm_cli.data.corpora.remote import CorpusSource, RemoteFile, zenodo_file_url

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "CORPUS",
    "LABELS",
    "CODEC_SETS",
    "CODECS",
    "codec_id",
    "ALM_SETS",
    "ALM_GENERATORS",
    "SUBSETS",
    "find_base",
    "label_files",
    "read_labels",
    "prepare_codecfake",
    "CODECFAKE",
    "SPEC",
]

CORPUS = "codecfake"
LABELS = {"real": BONAFIDE, "fake": SPOOF, "bonafide": BONAFIDE, "spoof": SPOOF}
CODEC_SETS = tuple(f"C{i}" for i in range(1, 8))  # C7: the codec held out of training by the corpus design


class Codec(NamedTuple):
    name: str  # as cm's degradation registry spells it where cm has the codec (encodec, dac)
    sample_rate: int
    kbps: float
    quantizers: int


# Xie et al., arXiv:2405.04880v1, Table I (codec models F01-F07: sampling rate, bit rate, quantizers) and
# Sec. III-E ("seven conditions (C1-C7) for codec methods F01-F07"; C7's fake part is F07's 132,277
# evaluation files, Fig. 3; Table II's C3-x are FunCodec and C4-x EnCodec configurations).
CODECS = {
    "C1": Codec("soundstream", 16000, 4.0, 8),
    "C2": Codec("speechtokenizer", 16000, 4.0, 8),
    "C3": Codec("funcodec", 16000, 16.0, 32),
    "C4": Codec("encodec", 24000, 6.0, 8),
    "C5": Codec("audiodec", 24000, 6.4, 8),
    "C6": Codec("academicodec", 24000, 3.0, 4),
    "C7": Codec("dac", 44100, 8.0, 9),
}
ALM_SETS = ("A1", "A2", "A3")
# arXiv:2405.04880v1 Fig. 3 and Sec. III-E: the model behind each ALM set; A3 is text-to-audio, its real
# side the AudioCaps clips AudioGen was trained on (sound events, not speech)
ALM_GENERATORS = {"A1": "VALL-E", "A2": "VALL-E X", "A3": "AudioGen"}
SUBSETS = ("train", "dev", *CODEC_SETS, *ALM_SETS)
_SPEAKER = (("vctk", re.compile(r"^(p\d{3}|s\d)_")), ("aishell3", re.compile(r"^(SSB\d{4})")))
_LANGUAGE = {"vctk": "en", "aishell3": "zh"}


def find_base(corpus_root: str | Path) -> Path:
    """The folder holding ``label/`` (the corpus root itself or its ``Codecfake/``)."""
    root = Path(corpus_root)
    for candidate in (root, root / "Codecfake", root / "codecfake"):
        if (candidate / "label").is_dir():
            return candidate
    raise CmError(
        f"{root}: no Codecfake label/ folder (looked in {root} and {root / 'Codecfake'})",
        "run `cm download codecfake`, or unpack the Zenodo archives as the Codecfake README arranges them",
    )


def label_files(corpus_root: str | Path) -> list[Path]:
    """The label files present, in the corpus's order (train, dev, C1..C7, A1..A3)."""
    base = find_base(corpus_root)
    found = [base / "label" / f"{name}.txt" for name in SUBSETS if (base / "label" / f"{name}.txt").is_file()]
    if not found:
        raise CmError(
            f"{base / 'label'}: none of {', '.join(f'{s}.txt' for s in SUBSETS)}",
            f"the label files ship with the training-set archive (Zenodo record {_TRAIN[0][0]})",
        )
    return found


def read_labels(path: Path) -> list[tuple[str, str, str]]:
    """``(file, bonafide|spoof, type)`` per line; ``file:line`` errors for malformed rows."""
    rows = []
    for number, fields in iter_rows(path):
        if len(fields) != 3:
            raise CmError(f"{path}:{number}: expected 3 columns (file label type), found {len(fields)}")
        label = label_class(fields[1], LABELS)
        if label is None:
            raise CmError(f"{path}:{number}: label {fields[1]!r} is neither real nor fake")
        rows.append((fields[0], label, fields[2]))
    if not rows:
        raise CmError(f"{path}: no rows")
    return rows


def _audio_dir(base: Path, subset: str, *, given: bool = False) -> Path:
    candidates = [base / subset] if subset in ("train", "dev") else [base / "test" / subset, base / subset]
    if given:  # --audio-dir may also be the set's own folder
        candidates.append(base)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise CmError(
        f"{base}: no audio folder for {subset} (looked for {', '.join(str(c) for c in candidates)})",
        f"unpack {subset}'s archive there, or remove label/{subset}.txt",
    )


def _check_listed(folder: Path, names: list[str], label_file: Path) -> None:
    """The first file the label file lists that the audio folder lacks, as one line."""
    present = set(os.listdir(folder))
    for name in names:
        if name not in present and not (folder / name).is_file():
            raise CmError(
                f"{label_file}: lists {name}, which is not in {folder}",
                "the label files and the audio folders disagree: finish unpacking, or re-download",
            )


def codec_id(kind: str) -> str | None:
    """The condition id a TYPE names (``C3``, ``c3``, ``F03``, ``F3`` -> ``C3``), else None."""
    match = re.fullmatch(r"([CcFf])0?([1-7])", kind.strip())
    return f"C{match.group(2)}" if match else None


def _speaker(name: str) -> tuple[str | None, str | None]:
    for source, pattern in _SPEAKER:
        match = pattern.match(name)
        if match:
            return match.group(1), source
    return None, None


def prepare_codecfake(
    corpus_root: str | Path, *, data_root: str | Path | None = None, protocol=None, audio_dir=None, **_: object
) -> "pd.DataFrame":
    """Manifest rows for every label file present (or the given ``protocol`` label files)."""
    import pandas as pd

    base = Path(audio_dir) if audio_dir else (None if protocol else find_base(corpus_root))
    files = [Path(p) for p in protocol] if protocol else label_files(corpus_root)
    records = []
    for label_file in files:
        subset = label_file.stem
        if subset not in SUBSETS:
            raise CmError(f"{label_file}: not a Codecfake label file name", f"expected one of {', '.join(SUBSETS)}.txt")
        folder = _audio_dir(base if base is not None else label_file.parent.parent, subset, given=bool(audio_dir))
        rows = read_labels(label_file)
        _check_listed(folder, [r[0] for r in rows], label_file)
        prefix = audio_prefix(folder, data_root)
        split = subset if subset in ("train", "dev") else "eval"
        for name, label, kind in rows:
            spoof = label == SPOOF
            ident = (codec_id(kind) or kind if subset in ("train", "dev") else subset) if spoof else None
            attack = ident
            known = CODECS.get(ident) if spoof and subset not in ALM_SETS else None
            codec = known.name if known else (ident if spoof and subset not in ALM_SETS else None)
            speaker, source = _speaker(name)
            if subset == "A3" and source is None:
                source = "audiocaps"
            records.append(
                {
                    "utt_id": f"CF_{subset}_{Path(name).stem}",
                    "path": f"{prefix}/{name}",
                    "label": label,
                    "attack": attack,
                    "attack_family": ("audio_language_model" if subset in ALM_SETS else "neural_codec")
                    if spoof
                    else None,
                    "speaker": speaker,
                    "split": split,
                    "corpus": CORPUS,
                    "codec": codec,
                    "codec_q": f"{known.kbps:g}" if known else None,
                    "domain": codec or "clean",
                    "duration": None,
                    "sample_rate": None,
                    "subset": subset,
                    "codec_type": kind,
                    "codec_id": ident if codec else None,
                    "generator": ALM_GENERATORS.get(subset) if spoof else None,
                    "source": source,
                    "language": _LANGUAGE.get(source or ""),
                }
            )
    df = pd.DataFrame.from_records(records)
    duplicated = df["utt_id"].duplicated()
    if duplicated.any():
        raise CmError(f"{base}: {int(duplicated.sum())} files listed twice (first: {df['utt_id'][duplicated].iloc[0]})")
    return df


# The authors split the corpus over six Zenodo records; the README of github.com/xieyuankun/Codecfake moved them
# to new records on 2024-09-28 (commit 6ee54a9: train_split.zip + .z01-.z16, where the May 2024 records held
# .z01-.z19). No checksum is published, so md5 and size come from each record's metadata at download time.
_TRAIN = (("13838106", range(1, 6), True), ("13841652", range(6, 11), False), ("13853860", range(11, 17), False))
_TEST, _C7, _DEV = "13838823", "11125029", "13841216"


def _zenodo(record: str, name: str, subset: str, note: str = "") -> RemoteFile:
    return RemoteFile(name, zenodo_file_url(record, name), subset, zenodo_record=record, note=note)


_SPLIT_NOTE = "part of a split zip: cm keeps the parts; join them with `zip -s 0 NAME.zip --out joined.zip` to unpack"
CODECFAKE = CorpusSource(
    name=CORPUS,
    title="Codecfake (Xie et al., 2024): neural-codec and ALM deepfakes, codec test sets C1-C7 (C7 = DAC, unseen)",
    licence="CC BY-NC-ND 4.0: non-commercial, no derivatives (the authors' README; read the Zenodo records too)",
    homepage="https://github.com/xieyuankun/Codecfake",
    files=(
        *(_zenodo(_TEST, f"{name}.zip", "dev") for name in (*CODEC_SETS[:6], *ALM_SETS)),
        _zenodo(_C7, "C7.zip", "dev"),
        _zenodo(_DEV, "dev_split.zip", "full", _SPLIT_NOTE),
        *(_zenodo(_DEV, f"dev_split.z{i:02d}", "full", _SPLIT_NOTE) for i in (1, 2)),
        _zenodo(_TRAIN[0][0], "train_split.zip", "full", _SPLIT_NOTE),
        *(_zenodo(record, f"train_split.z{i:02d}", "full", _SPLIT_NOTE) for record, parts, _ in _TRAIN for i in parts),
    ),
    layout="Codecfake/label/*.txt (FILE real|fake TYPE), Codecfake/train/, Codecfake/dev/, "
    "Codecfake/test/{C1..C7,A1..A3}/",
    subset_notes={
        "dev": "the test sets C1-C7 and A1-A3 (evaluation only)",
        "protocols": "the label files ship inside the archives: use dev or full",
    },
)

SPEC = CorpusSpec(
    name=CORPUS,
    title=CODECFAKE.title,
    prepare=prepare_codecfake,
    protocol_files=label_files,
    source=CODECFAKE,
    labels=LABELS,
    accepts_protocol=True,
    layout=CODECFAKE.layout,
)
