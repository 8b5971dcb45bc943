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
from cm_cli.data.corpora.registry import CorpusSpec
from cm_cli.data.corpora.remote import ODC_BY, CorpusSource, RemoteFile, zenodo_file_url

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "PROTOCOL_COLUMNS",
    "PROTOCOL_FILES",
    "AUDIO_DIRS",
    "read_protocol",
    "read_protocol_table",
    "prepare_asvspoof5",
    "find_protocol",
]

PROTOCOL_COLUMNS = (
    "SPEAKER_ID",
    "FLAC_FILE_NAME",
    "GENDER",
    "CODEC",
    "CODEC_Q",
    "CODEC_SEED",
    "ATTACK_TAG",
    "ATTACK_LABEL",
    "KEY",
    "TMP",
)
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
                    raise CmError(
                        f"{path}:{number}: unknown KEY value {fields[8]!r}", "KEY must be 'bonafide' or 'spoof'"
                    )
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
        "download the protocols (`cm download asvspoof5 --subset protocols`) or check the data root / ASVSPOOF5_ROOT",
        option="data_root",
    )


def _none(value: str, *nulls: str) -> str | None:
    return None if value in ("-", *nulls) else value


def read_protocol_table(path: str | Path) -> "pd.DataFrame":
    """The ten protocol columns as strings, parsed by pandas' C reader (a 1M-row eval protocol in
    seconds); any malformed row is reported by ``read_protocol`` with its ``file:line``."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=list(PROTOCOL_COLUMNS),
            dtype=str,
            engine="c",
            keep_default_na=False,
            na_values=[],
            quoting=3,
            compression="infer",
        )
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
        raise CmError(
            f"{corpus_root}: corpus directory not found",
            f"run `cm download {corpus}` or set the data root" + (" / ASVSPOOF5_ROOT" if corpus == "asvspoof5" else ""),
            option="data_root",
        )
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
        frames.append(
            pd.DataFrame(
                {
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
                }
            )
        )
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if df.empty:
        raise CmError(f"{corpus_root}: the protocols list no utterances")
    if df["tmp"].isna().all():
        df = df.drop(columns="tmp")
    if attack_families:
        df["attack_family"] = df["attack"].map(attack_families)
    return df


# ---------------------------------------------------------------------------- ASVspoof 5
# md5 sums from section 2 of the corpus README (Zenodo record 14498691).
_AS5_RECORD = "14498691"
_AS5_MD5 = {
    "flac_T_aa.tar": "b0cc86b14826a7701b52aad4f53daf9c",
    "flac_T_ab.tar": "d05be3f4be7a343fdbdd0ed29fdff2e1",
    "flac_T_ac.tar": "70d1ba4ad75a20aef3dae541fbd321e3",
    "flac_T_ad.tar": "c9bb56af2cc410d98338d74babcb95c9",
    "flac_T_ae.tar": "a3969816982f3e52300d6147ad796df7",
    "flac_D_aa.tar": "df0be44957623991028cce59792beb17",
    "flac_D_ab.tar": "1e8cd685d89b64502692f1bcf1a13db3",
    "flac_D_ac.tar": "5e0031f08c30e4bdbf0c59f91b2d662b",
    "flac_E_aa.tar": "a8c800766f3d4ef87971e2b4f29663e2",
    "flac_E_ab.tar": "c35064188f54f07c87aba58de22534a0",
    "flac_E_ac.tar": "ed7cbcd1b2847998b72472ddf6b445e3",
    "flac_E_ad.tar": "626a080e994b05df49c577d7b3dede8d",
    "flac_E_ae.tar": "05f19a5e64fa556714ae1b38eb2ea70b",
    "flac_E_af.tar": "2ca2f52a3bbf827f7ec155ecb47e85d6",
    "flac_E_ag.tar": "671200b5de2fc1e74a563b07b057af8f",
    "flac_E_ah.tar": "eaf885b1299a61eb07f71e82e96dba37",
    "flac_E_ai.tar": "b2625683bf440abae2af901a45542ad9",
    "flac_E_aj.tar": "c50281c8233af6f3b0899604d21ade44",
    "ASVspoof5_protocols.tar.gz": "865d0e894ea9f686f0f37e5ae3ae3616",
}


def _as5_file(name: str, subset: str) -> RemoteFile:
    return RemoteFile(name, zenodo_file_url(_AS5_RECORD, name), subset, md5=_AS5_MD5[name], zenodo_record=_AS5_RECORD)


ASVSPOOF5 = CorpusSource(
    name="asvspoof5",
    title="ASVspoof 5 (train, dev, eval; Track 1 protocols)",
    licence=ODC_BY + " (bona fide: CC BY 4.0)",
    homepage="https://zenodo.org/records/14498691",
    files=(
        _as5_file("ASVspoof5_protocols.tar.gz", "protocols"),
        *(_as5_file(f"flac_D_a{c}.tar", "dev") for c in "abc"),
        *(_as5_file(f"flac_T_a{c}.tar", "full") for c in "abcde"),
        *(_as5_file(f"flac_E_a{c}.tar", "full") for c in "abcdefghij"),
    ),
    layout="ASVspoof5_protocols/ (or the .tsv files at the root), flac_T/, flac_D/, flac_E_eval/",
    subset_notes={"dev": "protocols + development audio (flac_D_*)"},
)


def protocol_files(corpus_root: Path) -> list[Path]:
    return [find_protocol(Path(corpus_root), split) for split in PROTOCOL_FILES]


def _prepare(corpus: str):
    def prepare(corpus_root: Path, *, data_root: Path, **_: object) -> "pd.DataFrame":
        from cm_cli.data.taxonomy import attack_families

        return prepare_asvspoof5(
            corpus_root, corpus=corpus, data_root=data_root, attack_families=attack_families(corpus)
        )

    return prepare


def _families(corpus: str):
    def families() -> dict[str, str]:
        from cm_cli.data.taxonomy import attack_families

        return attack_families(corpus)

    return families


SPEC = CorpusSpec(
    name="asvspoof5",
    title=ASVSPOOF5.title,
    prepare=_prepare("asvspoof5"),
    protocol_files=protocol_files,
    source=ASVSPOOF5,
    labels=ASVSPOOF_KEYS,
    attack_families=_families("asvspoof5"),
    layout=ASVSPOOF5.layout,
)
# the toy corpus (cm_cli/data/corpora/toy.py builds it) copies the ASVspoof 5 layout and protocols
TOY_SPEC = CorpusSpec(
    name="toy",
    title="embedded synthetic corpus",
    prepare=_prepare("toy"),
    protocol_files=protocol_files,
    source=None,
    labels=ASVSPOOF_KEYS,
    attack_families=_families("toy"),
    layout=ASVSPOOF5.layout,
)
