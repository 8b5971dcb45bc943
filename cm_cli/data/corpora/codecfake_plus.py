"""CodecFake+ (Chen et al., 2025, arXiv:2501.08238): codec re-synthesis (CoRS) and codec-based speech
generation (CoSG) -> manifest rows, under the protocol the authors publish with their code.

Why this protocol: the dataset's own label files are not readable from here, but the authors'
source-tracing repository (github.com/ResponsibleGenAI/CodecFake-Source-Tracing, ``metadata/``) ships
the lists their CodecFake+ experiments train and test on, with the paper's codec taxonomy:

    training/train_mult_learn.txt   SPEAKER FILE - AUX DEC VQ LABEL    CoRS train (106 VCTK speakers)
    training/dev_mult_learn.txt     (the same fields)                  CoRS dev (p226, p229)
    evaluation/CoRS_ALL.txt         SPEAKER FILE - - LABEL             CoRS evaluation (p227, p228)
    evaluation/CoSG_ALL.txt         MODEL FILE - [VQ] LABEL            CoSG evaluation (17 generators)

(``train_mult_learn_bal_vq``/``_bal_dec`` are the taxonomy-balanced training lists; ``--protocol`` takes
them.) Their loaders read CoRS audio as ``all_data_16k/FILE.{flac,wav}`` and CoSG audio as
``SLMdemos_16k/MODEL/FILE.{flac,wav}``. Rows: ``codec`` = the CoRS codec configuration a spoof was
re-synthesised with (the file name after the VCTK utterance id, e.g. ``Encodec_24b24k``), ``attack`` = that
codec or the CoSG model, ``codec_vq``/``codec_aux``/``codec_dec`` = the taxonomy (vector quantiser MVQ, SVQ
or SQ; auxiliary objective Trad = none, SEM = semantic distillation, Disent = disentanglement; decoder
domain TIME or FREQ), filled for CoRS_ALL's spoofs from the training lists' codec taxonomy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from cm_cli.core.errors import CmError
from cm_cli.core.labels import BONAFIDE, SPOOF, label_class
from cm_cli.data.corpora._protocol import audio_prefix, iter_rows
from cm_cli.data.corpora.registry import CorpusSpec
from cm_cli.data.corpora.remote import CorpusSource, RemoteFile

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["CORPUS", "LABELS", "PROTOCOLS", "protocol_files", "read_protocol", "prepare_codecfake_plus", "SPEC"]

CORPUS = "codecfake_plus"
# CoRS_ALL.txt (commit 91516e0) labels one row 'spoofs' (line 7554, p228_241_vocos_encodec_6)
LABELS = {"bonafide": BONAFIDE, "spoof": SPOOF, "spoofs": SPOOF}
# the default protocol: file name -> (split, subset); other names by --protocol, see _role
PROTOCOLS = {
    "train_mult_learn.txt": ("train", "cors"),
    "dev_mult_learn.txt": ("dev", "cors"),
    "CoRS_ALL.txt": ("eval", "cors"),
    "CoSG_ALL.txt": ("eval", "cosg"),
}
_FOLDERS = ("", "metadata/training", "metadata/evaluation", "downloads")
_CORS_DIRS = ("all_data_16k", "CodecFake+/all_data_16k", "CoRS/all_data_16k")
_COSG_DIRS = ("SLMdemos_16k", "CodecFake+/SLMdemos_16k", "CoSG/SLMdemos_16k")
_VCTK = re.compile(r"^(p\d{3}|s\d)_(\d{3})(?:_(.+))?$")
_TAXONOMY = ("codec_aux", "codec_dec", "codec_vq")


def _role(name: str) -> tuple[str, str]:
    """(split, subset) of a protocol file from its name, as the authors name them."""
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    for prefix, split in (("train_mult_learn", "train"), ("dev_mult_learn", "dev"), ("test_mult_learn", "eval")):
        if name.startswith(prefix) and name.endswith(".txt"):
            return split, "cors"
    if name.startswith("CoSG_") and name.endswith(".txt"):
        return "eval", "cosg"
    raise CmError(
        f"{name}: not a CodecFake+ protocol file name",
        "expected train_/dev_/test_mult_learn*.txt, CoRS_ALL.txt or CoSG_*.txt (the authors' metadata/ files)",
    )


def protocol_files(corpus_root: str | Path) -> list[Path]:
    """The default protocol files present under the corpus root (its metadata/ folders or downloads/)."""
    root = Path(corpus_root)
    found = []
    for name in PROTOCOLS:
        for folder in _FOLDERS:
            if (root / folder / name).is_file():
                found.append(root / folder / name)
                break
    if not found:
        raise CmError(
            f"{root}: none of {', '.join(PROTOCOLS)} (looked in {', '.join(f or '.' for f in _FOLDERS)})",
            "run `cm download codecfake_plus --subset protocols`, or copy the authors' metadata/ folder there",
        )
    return found


def read_protocol(path: Path) -> list[dict]:
    """One dict per line: speaker or model, file, label, the CoRS codec (from the file name) and the taxonomy
    (None where the list has '-' or REAL, or no such field)."""
    split, subset = _role(path.name)
    rows = []
    for number, fields in iter_rows(path):
        taxonomy = dict.fromkeys(_TAXONOMY)
        if subset == "cosg":
            if len(fields) not in (4, 5):
                raise CmError(
                    f"{path}:{number}: expected 4 or 5 columns (MODEL FILE - [VQ] LABEL), found {len(fields)}"
                )
            taxonomy["codec_vq"] = fields[3] if len(fields) == 5 and fields[3] != "-" else None
        elif len(fields) == 7:
            taxonomy = {c: (None if v in ("-", "REAL") else v) for c, v in zip(_TAXONOMY, fields[3:6])}
        elif len(fields) != 5:
            raise CmError(f"{path}:{number}: expected 7 (train/dev lists) or 5 (CoRS_ALL) columns, found {len(fields)}")
        label = label_class(fields[-1], LABELS)
        if label is None:
            raise CmError(f"{path}:{number}: label {fields[-1]!r} is neither bonafide nor spoof")
        codec = None
        if subset == "cors" and label == SPOOF:
            match = _VCTK.match(fields[1])
            codec = match.group(3) if match else None
            if not codec:
                raise CmError(f"{path}:{number}: spoof {fields[1]} names no codec after its VCTK utterance id")
        rows.append(
            {
                "group": fields[0],
                "file": fields[1],
                "label": label,
                "split": split,
                "subset": subset,
                "codec": codec,
                **taxonomy,
            }
        )
    if not rows:
        raise CmError(f"{path}: no rows")
    return rows


def _audio_dir(root: Path, candidates: tuple[str, ...], what: str) -> Path:
    """The first candidate folder under ``root`` ("" = ``root`` itself, for an --audio-dir that is the folder)."""
    for candidate in candidates:
        if (root / candidate).is_dir():
            return root / candidate
    raise CmError(
        f"{root}: no {what} audio folder (looked for {', '.join(c or '.' for c in candidates)})",
        "unpack the Hugging Face archives there, or give the folder the audio is in",
        option="audio_dir",
    )


class _Folder:
    """File names of one audio folder, listed once: FILE -> FILE.flac or FILE.wav (the authors' loaders'
    order), or a one-line error naming the protocol file and the first listed file the folder lacks."""

    def __init__(self, folder: Path, data_root: str | Path | None) -> None:
        self.folder, self.prefix = folder, audio_prefix(folder, data_root)
        try:
            self.names = set(os.listdir(folder))
        except OSError:
            self.names = set()

    def path_of(self, stem: str, protocol: Path) -> str:
        for ext in (".flac", ".wav"):
            if stem + ext in self.names:
                return f"{self.prefix}/{stem}{ext}"
        raise CmError(
            f"{protocol}: lists {stem}, which is not in {self.folder} (as .flac or .wav)",
            "the protocol and the audio folder disagree: finish unpacking, or give the folder the audio is in",
            option="audio_dir",
        )


def prepare_codecfake_plus(
    corpus_root: str | Path, *, data_root: str | Path | None = None, protocol=None, audio_dir=None, **_: object
) -> "pd.DataFrame":
    """Manifest rows for the default protocol files present (or the given ``protocol`` files)."""
    import pandas as pd

    root = Path(corpus_root)
    files = [Path(p) for p in protocol] if protocol else protocol_files(root)
    lists = [(path, read_protocol(path)) for path in files]
    # a codec's taxonomy is a property of the codec: the lists that carry it name it for CoRS_ALL's rows
    taxonomy: dict[str, dict] = {}
    for _, rows in lists:
        for row in rows:
            if row["codec"] and row["codec_vq"]:
                taxonomy.setdefault(row["codec"], {c: row[c] for c in _TAXONOMY})
    cors = cosg = None
    folders: dict[Path, _Folder] = {}
    records = []
    for path, rows in lists:
        for row in rows:
            if row["subset"] == "cors":
                cors = cors or _audio_dir(Path(audio_dir or root), _CORS_DIRS + (("",) if audio_dir else ()), "CoRS")
                folder = cors
            else:
                cosg = cosg or _audio_dir(Path(audio_dir or root), _COSG_DIRS + (("",) if audio_dir else ()), "CoSG")
                folder = cosg / row["group"]
            listing = folders.get(folder) or folders.setdefault(folder, _Folder(folder, data_root))
            audio = listing.path_of(row["file"], path)
            spoof, codec = row["label"] == SPOOF, row["codec"]
            tax = {c: row[c] for c in _TAXONOMY}
            if codec and not tax["codec_vq"]:
                tax = taxonomy.get(codec, tax)
            if row["subset"] == "cors":
                utt, speaker, attack = f"CFP_{row['file']}", row["group"], codec
                source, language = "vctk", "en"
            else:
                utt, speaker, attack = f"CFP_{row['group']}_{row['file']}", None, row["group"] if spoof else None
                source, language = None, None
            records.append(
                {
                    "utt_id": utt,
                    "path": audio,
                    "label": row["label"],
                    "attack": attack,
                    "attack_family": ("neural_codec" if row["subset"] == "cors" else "audio_language_model")
                    if spoof
                    else None,
                    "speaker": speaker,
                    "split": row["split"],
                    "corpus": CORPUS,
                    "codec": codec,
                    "codec_q": None,
                    "domain": codec or "clean",
                    "duration": None,
                    "sample_rate": None,
                    "subset": row["subset"],
                    **tax,
                    "source": source,
                    "language": language,
                    "generator": row["group"] if row["subset"] == "cosg" else None,
                }
            )
    df = pd.DataFrame.from_records(records)
    duplicated = df["utt_id"].duplicated()
    if duplicated.any():
        first = df["utt_id"][duplicated].iloc[0]
        raise CmError(
            f"{root}: {int(duplicated.sum())} files listed twice (first: {first})",
            "give each list once: the balanced training lists replace train_mult_learn.txt, they do not add to it",
        )
    return df


# The protocol files at a fixed commit of the authors' repository (content fixed by the commit; sizes from it).
_COMMIT = "91516e0e1d8f73ab802e998079fd3fc6c82f9149"
_RAW = (
    "https://raw.githubusercontent.com/ResponsibleGenAI/CodecFake-Source-Tracing/{commit}/w2v2_aasist_baseline/{path}"
)
_HUB = "https://huggingface.co/datasets/CodecFake/CodecFake_Plus_Dataset/resolve/main/{name}"
_META = (
    ("metadata/training/train_mult_learn.txt", 4172375),
    ("metadata/training/dev_mult_learn.txt", 71139),
    ("metadata/evaluation/CoRS_ALL.txt", 1030575),
    ("metadata/evaluation/CoSG_ALL.txt", 75164),
)
_PARTS_NOTE = "part of one split tar.xz: `cat Codecfake_plus_CoRS.part* > cors.tar.xz` and unpack that"
CODECFAKE_PLUS = CorpusSource(
    name=CORPUS,
    title="CodecFake+ (Chen et al., 2025): 31 codecs' re-syntheses (CoRS), 17 codec-based generators (CoSG)",
    licence="MIT (the Hugging Face dataset card); the source speech is VCTK (CC BY 4.0)",
    homepage="https://huggingface.co/datasets/CodecFake/CodecFake_Plus_Dataset",
    files=(
        *(
            RemoteFile(Path(path).name, _RAW.format(commit=_COMMIT, path=path), "protocols", size=size)
            for path, size in _META
        ),
        RemoteFile("CodecFake_plus_CoSG.tar.xz", _HUB.format(name="CodecFake_plus_CoSG.tar.xz"), "dev"),
        *(
            RemoteFile(
                f"Codecfake_plus_CoRS.part{i}",
                _HUB.format(name=f"Codecfake_plus_CoRS.part{i}"),
                "full",
                note=_PARTS_NOTE,
            )
            for i in range(4)
        ),
    ),
    layout="metadata/ or downloads/: the protocol lists; all_data_16k/*.wav (CoRS); SLMdemos_16k/<MODEL>/*.wav (CoSG)",
    subset_notes={
        "protocols": "the authors' protocol lists (ResponsibleGenAI/CodecFake-Source-Tracing at 91516e0)",
        "dev": "adds the CoSG evaluation audio",
        "full": "adds the CoRS audio (four parts of one tar.xz)",
    },
)

SPEC = CorpusSpec(
    name=CORPUS,
    title=CODECFAKE_PLUS.title,
    prepare=prepare_codecfake_plus,
    protocol_files=protocol_files,
    source=CODECFAKE_PLUS,
    labels=LABELS,
    accepts_protocol=True,
    layout=CODECFAKE_PLUS.layout,
)
