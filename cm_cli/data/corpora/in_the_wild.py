"""In-the-Wild (Müller et al., Interspeech 2022): real-world deepfakes of public figures -> manifest rows.

The release unpacks to ``release_in_the_wild/`` holding the audio (``0.wav`` …) and
``meta.csv`` with a header ``file,speaker,label``, label ``bona-fide`` or ``spoof``. The
corpus has no splits, no attack ids and no codecs: every row is an ``eval`` trial, used as
a cross-corpus test set.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from cm_cli.core.errors import CmError
from cm_cli.core.labels import IN_THE_WILD_LABELS, label_class
from cm_cli.data.corpora._protocol import audio_prefix
from cm_cli.data.corpora.registry import CorpusSpec
from cm_cli.data.corpora.remote import CorpusSource, RemoteFile

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["CORPUS", "LABELS", "find_meta", "read_meta", "prepare_in_the_wild"]

CORPUS = "in_the_wild"
LABELS = IN_THE_WILD_LABELS


def find_meta(corpus_root: str | Path) -> Path:
    root = Path(corpus_root)
    for candidate in (root / "release_in_the_wild" / "meta.csv", root / "meta.csv"):
        if candidate.is_file():
            return candidate
    raise CmError(
        f"{root}: no release_in_the_wild/meta.csv",
        "run `cm download in_the_wild`, or give the meta.csv file and the audio directory",
        option=("protocol", "audio_dir"),
    )


def read_meta(path: str | Path) -> list[dict]:
    """Rows of ``meta.csv`` (file, speaker, label); ``file:line`` errors for bad rows."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise CmError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if header[:3] != ["file", "speaker", "label"]:
            raise CmError(
                f"{path}:1: expected the header file,speaker,label, found {','.join(header) or 'nothing'}",
                "In-the-Wild's meta.csv starts with: file,speaker,label",
            )
        rows = []
        for number, fields in enumerate(reader, start=2):
            if not fields or not "".join(fields).strip():
                continue
            if len(fields) < 3:
                raise CmError(f"{path}:{number}: expected 3 columns, found {len(fields)}")
            label = label_class(fields[2], LABELS)
            if label is None:
                raise CmError(f"{path}:{number}: label {fields[2]!r} is neither bona-fide nor spoof")
            rows.append({"file": fields[0].strip(), "speaker": fields[1].strip(), "label": label})
    if not rows:
        raise CmError(f"{path}: no trials after the header")
    return rows


def prepare_in_the_wild(
    corpus_root: str | Path,
    *,
    data_root: str | Path | None = None,
    protocol=None,
    audio_dir: str | Path | None = None,
    **_: object,
) -> "pd.DataFrame":
    """One ``eval`` row per trial of ``meta.csv`` in the one manifest schema."""
    import pandas as pd

    meta = (
        Path(protocol[0] if isinstance(protocol, (list, tuple)) else protocol) if protocol else find_meta(corpus_root)
    )
    folder = Path(audio_dir) if audio_dir else meta.parent
    prefix = audio_prefix(folder, data_root)
    records = []
    for row in read_meta(meta):
        stem = Path(row["file"]).stem
        records.append(
            {
                "utt_id": f"ITW_{stem}",
                "path": f"{prefix}/{row['file']}",
                "label": row["label"],
                "attack": None,
                "attack_family": None,
                "speaker": row["speaker"],
                "split": "eval",
                "corpus": CORPUS,
                "codec": None,
                "codec_q": None,
                "domain": "clean",
                "duration": None,
                "sample_rate": None,
                "language": "en",
            }
        )
    df = pd.DataFrame.from_records(records)
    duplicated = df["utt_id"].duplicated()
    if duplicated.any():
        raise CmError(f"{meta}: {int(duplicated.sum())} duplicate files (first: {df['utt_id'][duplicated].iloc[0]})")
    return df


# In-the-Wild: the authors' release (Müller et al., Interspeech 2022, deepfake-total.com/in_the_wild);
# no checksum is published.
IN_THE_WILD = CorpusSource(
    name="in_the_wild",
    title="In-the-Wild audio deepfakes (Müller et al., Interspeech 2022): cross-corpus test set",
    licence="as stated on deepfake-total.com/in_the_wild (read it before use)",
    homepage="https://deepfake-total.com/in_the_wild",
    files=(
        RemoteFile(
            "release_in_the_wild.zip",
            "https://owncloud.fraunhofer.de/index.php/s/JZgXh0JEAF0elxa/download",
            "protocols",
            note="no checksum is published: verified by size only",
        ),
    ),
    layout="release_in_the_wild/meta.csv (file,speaker,label) and release_in_the_wild/*.wav",
    subset_notes={"protocols": "one archive holds meta.csv and the audio: every subset fetches it"},
)

SPEC = CorpusSpec(
    name=CORPUS,
    title=IN_THE_WILD.title,
    prepare=prepare_in_the_wild,
    protocol_files=lambda root: [find_meta(root)],
    source=IN_THE_WILD,
    labels=LABELS,
    splits=("eval",),
    accepts_protocol=True,
    layout=IN_THE_WILD.layout,
)
