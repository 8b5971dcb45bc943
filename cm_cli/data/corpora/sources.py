"""Where each real corpus comes from: files, URLs, published checksums, licences, subsets.

Checksums are only the ones the corpus documentation publishes (the ASVspoof 5
README, the ASVspoof 2021 evaluation-package README). Files hosted on Zenodo
without a published sum get theirs from the Zenodo record's metadata at download
time; a file with neither is downloaded with a size check only and reported as
unverified. Sizes are left unknown (``None``) unless published; Zenodo fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cm_cli.core.errors import CmError

__all__ = ["SUBSETS", "RemoteFile", "CorpusSource", "CORPUS_SOURCES", "corpus_source", "zenodo_file_url"]

# nested: every file of "protocols" is in "dev", every file of "dev" is in "full"
SUBSETS = ("protocols", "dev", "full")
ZENODO = "https://zenodo.org/records/{record}/files/{name}?download=1"
ODC_BY = "ODC-By 1.0"  # Open Data Commons Attribution License


def zenodo_file_url(record: str, name: str) -> str:
    return ZENODO.format(record=record, name=name)


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable archive of a corpus."""

    name: str  # file name on disk (and on a mirror: <base-url>/<name>)
    url: str
    subset: str  # smallest subset that includes it: protocols, dev or full
    md5: str | None = None  # published checksum, when the corpus documentation gives one
    size: int | None = None  # bytes, when published
    zenodo_record: str | None = None  # record whose metadata supplies md5/size at download time
    note: str = ""

    def in_subset(self, subset: str) -> bool:
        return SUBSETS.index(self.subset) <= SUBSETS.index(subset)


@dataclass(frozen=True)
class CorpusSource:
    name: str
    title: str
    licence: str
    homepage: str
    files: tuple[RemoteFile, ...]
    layout: str  # what unpacking leaves under <data_root>/<name>/
    subset_notes: dict[str, str] = field(default_factory=dict)

    def files_for(self, subset: str) -> list[RemoteFile]:
        if subset not in SUBSETS:
            raise CmError(f"unknown subset {subset!r}", f"use one of: {', '.join(SUBSETS)}")
        return [f for f in self.files if f.in_subset(subset)]


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
    return RemoteFile(name, zenodo_file_url(_AS5_RECORD, name), subset, md5=_AS5_MD5[name],
                      zenodo_record=_AS5_RECORD)


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

# ---------------------------------------------------------------------------- ASVspoof 2021
# Key archives and their md5 sums: asvspoof-challenge/2021 eval-package README.
_LA21_RECORD = "4837263"
_DF21_RECORD = "4835108"

ASVSPOOF2021_LA = CorpusSource(
    name="asvspoof2021_la",
    title="ASVspoof 2021 logical access (evaluation data + full keys)",
    licence=ODC_BY,
    homepage="https://zenodo.org/records/4837263",
    files=(
        RemoteFile("LA-keys-full.tar.gz", "https://www.asvspoof.org/asvspoof2021/LA-keys-full.tar.gz", "protocols",
                   md5="037592a0515971bbd0fa3bff2bad4abc"),
        RemoteFile("ASVspoof2021_LA_eval.tar.gz", zenodo_file_url(_LA21_RECORD, "ASVspoof2021_LA_eval.tar.gz"), "dev",
                   zenodo_record=_LA21_RECORD),
    ),
    layout="keys/LA/CM/trial_metadata.txt, keys/LA/ASV/ (ASV keys and ASVTorch_Kaldi scores for min t-DCF), ASVspoof2021_LA_eval/flac/",
    subset_notes={"dev": "no dev split exists: keys + the one audio archive (same as full)"},
)

ASVSPOOF2021_DF = CorpusSource(
    name="asvspoof2021_df",
    title="ASVspoof 2021 speech deepfake (evaluation data + full keys)",
    licence=ODC_BY,
    homepage="https://zenodo.org/records/4835108",
    files=(
        RemoteFile("DF-keys-full.tar.gz", "https://www.asvspoof.org/asvspoof2021/DF-keys-full.tar.gz", "protocols",
                   md5="dabbc5628de4fcef53036c99ac7ab93a"),
        *(RemoteFile(f"ASVspoof2021_DF_eval_part0{i}.tar.gz",
                     zenodo_file_url(_DF21_RECORD, f"ASVspoof2021_DF_eval_part0{i}.tar.gz"),
                     "dev" if i == 0 else "full", zenodo_record=_DF21_RECORD) for i in range(4)),
    ),
    layout="keys/DF/CM/trial_metadata.txt, ASVspoof2021_DF_eval/flac/",
    subset_notes={"dev": "no dev split exists: keys + the first audio part (part00) to try a pipeline on real audio"},
)

# ---------------------------------------------------------------------------- ASVspoof 2019 LA
ASVSPOOF2019_LA = CorpusSource(
    name="asvspoof2019_la",
    title="ASVspoof 2019 logical access (train, dev, eval in one archive)",
    licence=ODC_BY,
    homepage="https://datashare.ed.ac.uk/handle/10283/3336",
    files=(
        RemoteFile("LA.zip", "https://datashare.ed.ac.uk/bitstream/handle/10283/3336/LA.zip", "protocols",
                   note="no checksum is published: verified by size only"),
    ),
    layout="LA/ASVspoof2019_LA_cm_protocols/, LA/ASVspoof2019_LA_asv_scores/ (ASV scores for min t-DCF), LA/ASVspoof2019_LA_{train,dev,eval}/flac/",
    subset_notes={"protocols": "the corpus ships as one archive: every subset fetches LA.zip"},
)

CORPUS_SOURCES: dict[str, CorpusSource] = {
    s.name: s for s in (ASVSPOOF5, ASVSPOOF2021_LA, ASVSPOOF2021_DF, ASVSPOOF2019_LA)
}


def corpus_source(name: str) -> CorpusSource:
    if name not in CORPUS_SOURCES:
        raise CmError(f"unknown corpus {name!r}", f"downloadable corpora: toy, {', '.join(CORPUS_SOURCES)}")
    return CORPUS_SOURCES[name]


# ---------------------------------------------------------------------------- cross-corpus test sets
# In-the-Wild: the authors' release (Müller et al., Interspeech 2022, deepfake-total.com/in_the_wild);
# no checksum is published. MLAAD: the authors' Hugging Face dataset; bona fide speech from
# M-AILABS, as MLAAD's paper pairs them (one archive per language; English shown, others by
# --base-url or by adding files). Neither host has been contacted from this project's tests.
IN_THE_WILD = CorpusSource(
    name="in_the_wild",
    title="In-the-Wild audio deepfakes (Müller et al., Interspeech 2022): cross-corpus test set",
    licence="as stated on deepfake-total.com/in_the_wild (read it before use)",
    homepage="https://deepfake-total.com/in_the_wild",
    files=(
        RemoteFile("release_in_the_wild.zip", "https://owncloud.fraunhofer.de/index.php/s/JZgXh0JEAF0elxa/download",
                   "protocols", note="no checksum is published: verified by size only"),
    ),
    layout="release_in_the_wild/meta.csv (file,speaker,label) and release_in_the_wild/*.wav",
    subset_notes={"protocols": "one archive holds meta.csv and the audio: every subset fetches it"},
)

MLAAD = CorpusSource(
    name="mlaad",
    title="MLAAD multi-language TTS spoofs (Müller et al., 2024) with M-AILABS bona fide speech",
    licence="as stated on the MLAAD dataset card and the M-AILABS page (read both before use)",
    homepage="https://deepfake-total.com/mlaad",
    files=(
        RemoteFile("mlaad_v5.zip", "https://huggingface.co/datasets/mueller91/MLAAD/resolve/main/mlaad_v5.zip",
                   "full", note="no checksum is published: verified by size only"),
        RemoteFile("en_US.tgz", "https://www.caito.de/data/Training/stt_tts/en_US.tgz", "full",
                   note="M-AILABS English; other languages: same URL with their ll_CC code"),
    ),
    layout="MLAAD/fake/<language>/<model>/meta.csv and *.wav; M-AILABS/<ll_CC>/by_book/<gender>/<speaker>/<book>/wavs/",
)

CORPUS_SOURCES.update({s.name: s for s in (IN_THE_WILD, MLAAD)})
