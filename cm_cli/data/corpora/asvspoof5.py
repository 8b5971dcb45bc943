"""ASVspoof 5 (and the toy corpus, which copies its layout): protocols -> manifest rows.

Protocol files are whitespace separated despite the ``.tsv`` suffix, ten columns,
no header: ``SPEAKER_ID FLAC_FILE_NAME GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG
ATTACK_LABEL KEY TMP``. ``-`` means "none"; CODEC_Q ``0`` marks uncoded eval audio.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from cm_cli.core.errors import CmError
from cm_cli.core.labels import ASVSPOOF_KEYS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PROTOCOL_COLUMNS", "PROTOCOL_FILES", "AUDIO_DIRS", "read_protocol", "read_protocol_table", "prepare_asvspoof5", "find_protocol"]

PROTOCOL_COLUMNS = ("SPEAKER_ID", "FLAC_FILE_NAME", "GENDER", "CODEC", "CODEC_Q", "CODEC_SEED",
                    "ATTACK_TAG", "ATTACK_LABEL", "KEY", "TMP")
PROTOCOL_FILES = {
    "train": "ASVspoof5.train.tsv",
    "dev": "ASVspoof5.dev.track_1.tsv",
    "eval": "ASVspoof5.eval.track_1.tsv",
}
AUDIO_DIRS = {"train": "flac_T", "dev": "flac_D", "eval": "flac_E_eval"}
KEYS = tuple(ASVSPOOF_KEYS)


def open_text(path: Path):
    """Text lines of a protocol, gzipped or not, any line ending."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline=None)
    return open(path, "r", encoding="utf-8", newline=None)


def read_protocol(path: str | Path) -> list[list[str]]:
    """Rows of exactly ten fields; a clear ``file:line`` error otherwise."""
    path = Path(path)
    rows: list[list[str]] = []
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != len(PROTOCOL_COLUMNS):
                    raise CmError(
                        f"{path}:{number}: expected {len(PROTOCOL_COLUMNS)} columns, found {len(fields)}",
                        "ASVspoof 5 protocol columns: " + " ".join(PROTOCOL_COLUMNS),
                    )
                if fields[8] not in KEYS:
                    raise CmError(f"{path}:{number}: unknown KEY value {fields[8]!r}", "KEY must be 'bonafide' or 'spoof'")
                rows.append(fields)
    except FileNotFoundError:
        raise CmError(f"{path}: protocol file not found") from None
    except UnicodeDecodeError:
        raise CmError(f"{path}: not a text protocol file") from None
    return rows


def find_protocol(corpus_root: Path, split: str) -> Path:
    name = PROTOCOL_FILES[split]
    for folder in (corpus_root / "ASVspoof5_protocols", corpus_root):
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    raise CmError(
        f"{corpus_root}: no {name} (looked in ASVspoof5_protocols/ and the corpus root)",
        "download the protocols (`cm download asvspoof5 --subset protocols`) or check --data-root / ASVSPOOF5_ROOT",
    )


def _none(value: str, *nulls: str) -> str | None:
    return None if value in ("-", *nulls) else value


def read_protocol_table(path: str | Path) -> "pd.DataFrame":
    """The ten protocol columns as strings, parsed by pandas' C reader (a 1M-row eval protocol in
    seconds); any malformed row is reported by ``read_protocol`` with its ``file:line``."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, names=list(PROTOCOL_COLUMNS), dtype=str, engine="c",
                         keep_default_na=False, na_values=[], quoting=3, compression="infer")
    except FileNotFoundError:
        raise CmError(f"{path}: protocol file not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, EOFError, OSError):
        read_protocol(path)  # raises the exact file:line error
        raise CmError(f"{path}: not a readable protocol file") from None
    short = (df["TMP"] == "") | df["TMP"].isna()
    if short.any() or not df["KEY"].isin(KEYS).all():
        read_protocol(path)  # raises the exact file:line error
    return df


def prepare_asvspoof5(
    corpus_root: str | Path,
    *,
    corpus: str = "asvspoof5",
    splits: Iterable[str] = ("train", "dev", "eval"),
    data_root: str | Path | None = None,
    attack_families: dict[str, str] | None = None,
) -> "pd.DataFrame":
    """Manifest rows (DESIGN.md schema) for the given splits, paths relative to ``data_root`` when inside it."""
    import pandas as pd

    corpus_root = Path(corpus_root)
    if not corpus_root.is_dir():
        raise CmError(f"{corpus_root}: corpus directory not found",
                      f"run `cm download {corpus}` or set --data-root" + (" / ASVSPOOF5_ROOT" if corpus == "asvspoof5" else ""))
    base = Path(data_root).resolve() if data_root is not None else None
    root_abs = corpus_root.resolve()
    frames = []
    for split in splits:
        protocol = find_protocol(corpus_root, split)
        audio_dir = root_abs / AUDIO_DIRS[split]
        try:
            prefix = audio_dir.relative_to(base) if base is not None else audio_dir
        except ValueError:
            prefix = audio_dir
        p = read_protocol_table(protocol)
        spoof = p["KEY"] == "spoof"
        codec = p["CODEC"].where(p["CODEC"] != "-", None)
        frames.append(pd.DataFrame({
            "utt_id": p["FLAC_FILE_NAME"],
            "path": f"{prefix}/" + p["FLAC_FILE_NAME"] + ".flac",
            "label": p["KEY"],
            "attack": p["ATTACK_LABEL"].where(spoof, None),
            "attack_family": None,
            "speaker": p["SPEAKER_ID"],
            "split": split,
            "corpus": corpus,
            "codec": codec,
            "codec_q": p["CODEC_Q"].where(~p["CODEC_Q"].isin(["-", "0"]), None),
            "domain": codec.fillna("clean"),
            "duration": None,
            "sample_rate": None,
            "gender": p["GENDER"].where(p["GENDER"] != "-", None),
            "codec_seed": p["CODEC_SEED"].where(p["CODEC_SEED"] != "-", None),
            "attack_tag": p["ATTACK_TAG"].where(p["ATTACK_TAG"] != "-", None),
            "tmp": p["TMP"].where(p["TMP"] != "-", None),
        }))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if df.empty:
        raise CmError(f"{corpus_root}: the protocols list no utterances")
    if df["tmp"].isna().all():
        df = df.drop(columns="tmp")
    if attack_families:
        df["attack_family"] = df["attack"].map(attack_families)
    return df
