"""The model zoo: named published countermeasures, fetched checksum-pinned and loaded by name.

A new user's first wish is to score a file with a detector that works; a researcher's is
to compare against the published baselines with their own weights. Each ``ZooEntry`` is
declarative: where the official weights are published (``urls``, ``source``), their
sha256 (``None`` where it could not be verified offline: then the first download records
it, see ``ZooEntry.sha256_note``), licence and paper, the input the model expects (sample
rate, length policy, score direction), how cm builds it (``kind`` and ``model_config``
entries) and a reference score on ``reference_input()`` that the tests check.

``cm download --model NAME`` puts a model under ``<cache_dir>/zoo/<NAME>/``: the weights
file as published plus ``config.json`` (``cm_format: cm-zoo/1``: the entry's name, file,
sha256 and model-config entries). ``--model NAME`` of ``cm eval``/``embed``/``patch``
resolves a name to that folder (``model_path``); the shipped ``toy`` detector resolves to
the package's own folder and needs no download. ``models.loading.load_model`` reads a
zoo folder, a ``cm export`` folder or a transformers audio-classification folder through
``open_packaged`` / ``load_packaged`` below, so every command takes them where it takes a run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cm_cli.core.errors import CmError

__all__ = [
    "ZOO_FORMAT",
    "ZooEntry",
    "ZOO",
    "PACKAGED_KINDS",
    "zoo_names",
    "get_entry",
    "reference_input",
    "reference_score",
    "toy_dir",
    "zoo_dir",
    "model_path",
    "download_zoo_model",
    "hub_classifier_path",
    "resolve_model",
    "resolve_model_option",
    "open_packaged",
    "load_packaged",
    "list_models",
]

ZOO_FORMAT = "cm-zoo/1"
PACKAGED_KINDS = ("exported", "zoo", "hf_classifier")
REFERENCE_SAMPLES = 64600  # the AASIST input length (4.04 s at 16 kHz)
REFERENCE_TOLERANCE = 1e-3  # absolute, on the score (float32 kernels differ slightly across CPUs)

# ASVspoof 5 / 2019 LA AASIST-L configurations: clovaai/aasist config/AASIST.conf and AASIST-L.conf,
# Baseline-AASIST/config/AASIST_ASVspoof5.conf of asvspoof-challenge/asvspoof5 (the cm AASIST defaults)
AASIST_L_OPTIONS = {
    "filts": [70, [1, 32], [32, 32], [32, 24], [24, 24]],
    "gat_dims": [24, 32],
    "pool_ratios": [0.4, 0.5, 0.7, 0.5],
    "temperatures": [2.0, 2.0, 100.0, 100.0],
}
_AASIST_PAPER = (
    "Jung et al., AASIST: Audio anti-spoofing using integrated spectro-temporal graph attention "
    "networks, ICASSP 2022, https://arxiv.org/abs/2110.01200"
)
_SSL_PAPER = (
    "Tak et al., Automatic speaker verification spoofing and deepfake detection using wav2vec 2.0 and data "
    "augmentation, Odyssey 2022, https://arxiv.org/abs/2202.12233"
)
_CLOVA = "https://github.com/clovaai/aasist/raw/a04c9863f63d44471dde8a6abcb3b082b07cd1d1/models/weights/"
_SSL_DRIVE = "https://drive.google.com/drive/folders/1c4ywztEVlYVijfwbGLl9OEa1SNtFKppB"
_REPEAT = "repeat-pad / centre-crop to 64,600 samples (4.04 s)"
_SCORE = "logit[bona fide] - logit[spoof]; higher = more bona fide"


@dataclass(frozen=True)
class ZooEntry:
    """One published countermeasure (see the module docstring)."""

    name: str
    title: str
    kind: str  # "packaged" (shipped in cm), "aasist_official", "ssl_aasist"
    paper: str
    licence: str
    source: str  # the official release page
    trained_on: str
    filename: str | None = None
    urls: tuple = ()  # direct downloads, tried in order
    sha256: str | None = None
    size: int | None = None
    sha256_note: str | None = None  # why there is no pinned sha256
    model_config: dict = field(default_factory=dict)  # ModelConfig entries the weights need
    sample_rate: int = 16000
    length_policy: str = _REPEAT
    score: str = _SCORE
    reference_score: float | None = None  # score of reference_input(); None: read from the shipped folder
    manual: str | None = None  # how to obtain weights no URL serves

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"urls": list(self.urls)}


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "toy",
            "LFCC-LCNN toy detector shipped with cm (synthetic speech only)",
            "packaged",
            paper="Wang & Yamagishi, A comparative study on recent neural spoofing countermeasures for synthetic "
            "speech detection, Interspeech 2021 (LFCC-LCNN); trained by scripts/build_toy_detector.py",
            licence="MIT (as cm)",
            source="cm_cli/zoo_weights/toy (inside the package)",
            trained_on="cm's embedded synthetic toy corpus (not real speech)",
            length_policy="full utterance",
            sample_rate=16000,
        ),
        ZooEntry(
            "aasist",
            "AASIST, ASVspoof 5 Track 1 baseline",
            "aasist_official",
            paper=_AASIST_PAPER + "; "
            "Wang et al., ASVspoof 5: Crowdsourced speech data, deepfakes, and adversarial attacks at scale, 2024",
            licence="MIT (Copyright (c) 2021-present NAVER Corp.)",
            source="https://github.com/asvspoof-challenge/asvspoof5/tree/main/Baseline-AASIST",
            trained_on="ASVspoof 5 train",
            filename="best.pth",
            urls=(
                "https://github.com/asvspoof-challenge/asvspoof5/raw/fe23d3053a0889b305d98c9e4cadf418c213d972/"
                "Baseline-AASIST/models/weights/AASIST/best.pth",
            ),
            sha256="8f10fe1d1ce3ac62c19f00b86dfaf79f86f464301d23e08726b16b02edbb601c",
            size=1275639,
            reference_score=10.67074966430664,
        ),
        ZooEntry(
            "aasist_2019",
            "AASIST, ASVspoof 2019 LA",
            "aasist_official",
            paper=_AASIST_PAPER,
            licence="MIT (Copyright (c) 2021-present NAVER Corp.)",
            source="https://github.com/clovaai/aasist",
            trained_on="ASVspoof 2019 LA train",
            filename="AASIST.pth",
            urls=(_CLOVA + "AASIST.pth",),
            sha256="51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0",
            size=1281532,
            reference_score=-17.8891544342041,
        ),
        ZooEntry(
            "aasist_l_2019",
            "AASIST-L (85k parameters), ASVspoof 2019 LA",
            "aasist_official",
            paper=_AASIST_PAPER,
            licence="MIT (Copyright (c) 2021-present NAVER Corp.)",
            source="https://github.com/clovaai/aasist",
            trained_on="ASVspoof 2019 LA train",
            filename="AASIST-L.pth",
            urls=(_CLOVA + "AASIST-L.pth",),
            sha256="814331d088032bb4c3fa61cc014789eadeed464209dd094ab3a2dd6ffbdce27a",
            size=426428,
            model_config={"backbone_options": AASIST_L_OPTIONS},
            reference_score=-13.742834091186523,
        ),
        ZooEntry(
            "xlsr_aasist_la",
            "XLS-R 300M + AASIST (SSL_Anti-spoofing), LA model",
            "ssl_aasist",
            paper=_SSL_PAPER,
            licence="MIT (SSL_Anti-spoofing); XLS-R weights: Apache-2.0 (facebook/wav2vec2-xls-r-300m)",
            source="https://github.com/TakHemlata/SSL_Anti-spoofing (pre-trained models: " + _SSL_DRIVE + ")",
            trained_on="ASVspoof 2019 LA train with RawBoost (series 3)",
            filename="LA_model.pth",
            sha256_note="published on Google Drive only; no checksum could be verified offline: the first "
            "download's sha256 is recorded in the cache folder and printed",
            model_config={"backbone_id": "facebook/wav2vec2-xls-r-300m"},
            manual=f"download LA_model.pth from {_SSL_DRIVE} into a folder DIR, then run "
            "`cm download --model xlsr_aasist_la --base-url DIR`",
        ),
        ZooEntry(
            "xlsr_aasist_df",
            "XLS-R 300M + AASIST (SSL_Anti-spoofing), DF model",
            "ssl_aasist",
            paper=_SSL_PAPER,
            licence="MIT (SSL_Anti-spoofing); XLS-R weights: Apache-2.0 (facebook/wav2vec2-xls-r-300m)",
            source="https://github.com/TakHemlata/SSL_Anti-spoofing (pre-trained models: " + _SSL_DRIVE + ")",
            trained_on="ASVspoof 2019 LA train with RawBoost (series 5), selected for 2021 DF",
            filename="Best_LA_model_for_DF.pth",
            sha256_note="published on Google Drive only; no checksum could be verified offline: the first "
            "download's sha256 is recorded in the cache folder and printed",
            model_config={"backbone_id": "facebook/wav2vec2-xls-r-300m"},
            manual=f"download Best_LA_model_for_DF.pth from {_SSL_DRIVE} into a folder DIR, then run "
            "`cm download --model xlsr_aasist_df --base-url DIR`",
        ),
    )
}


def zoo_names() -> list[str]:
    return list(ZOO)


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``; an unknown name is one line listing the names."""
    if name not in ZOO:
        raise CmError(
            f"unknown zoo model {name!r}; known: {', '.join(ZOO)}",
            "`cm download --list-models` shows them with licence and paper",
        )
    return ZOO[name]


def reference_input():
    """The fixed input of every entry's reference score: 64,600 samples of a deterministic two-tone chirp.

    A closed-form signal (no random generator, no file), so the reference cannot drift
    with a library version: a 110 Hz -> 410 Hz linear chirp at 0.1 plus a 1 kHz tone at
    0.05 amplitude-modulated at 3 Hz, 16 kHz.
    """
    import numpy as np

    t = np.arange(REFERENCE_SAMPLES) / 16000.0
    chirp = 0.1 * np.sin(2 * np.pi * (110 * t + 150 * t**2))
    tone = 0.05 * np.sin(2 * np.pi * 1000 * t) * np.sin(2 * np.pi * 3 * t)
    return (chirp + tone).astype(np.float32)


def reference_score(entry: ZooEntry) -> float | None:
    """The entry's score on ``reference_input()``: pinned, or for the shipped toy written by its build script."""
    if entry.reference_score is not None or entry.kind != "packaged":
        return entry.reference_score
    data = _read_json(toy_dir() / "reference.json") or {}
    return None if data.get("score") is None else float(data["score"])


def toy_dir() -> Path:
    """The shipped toy detector (a ``cm export`` folder inside the package)."""
    return Path(__file__).resolve().parents[1] / "zoo_weights" / "toy"


def zoo_dir(name: str, cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir).expanduser() / "zoo" / name


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def model_path(name: str, *, cache_dir: str | os.PathLike | None) -> Path:
    """The local folder ``--model NAME`` loads: the shipped toy, or the zoo folder of the cache.

    A name not downloaded yet is one line naming the command that fetches it.
    """
    entry = get_entry(name)
    if entry.kind == "packaged":
        folder = toy_dir()
        if not (folder / "config.json").is_file():
            raise CmError(
                f"the shipped {name} detector is missing from this installation ({folder})",
                "reinstall cm, or rebuild it with `python scripts/build_toy_detector.py`",
            )
        return folder
    folder = zoo_dir(name, cache_dir or Path.home() / ".cache" / "cm")
    if not (folder / "config.json").is_file():
        raise CmError(
            f"zoo model {name!r} is not in the cache ({folder})",
            f"run `cm download --model {name}` (on a machine with network access, same cache directory)",
            option="cache_dir",
        )
    return folder


def _sha256(path: Path) -> str:
    from cm_cli.core.artifacts import sha256_file

    return sha256_file(path)


def download_zoo_model(
    name: str, *, cache_dir: str | os.PathLike, base_url: str | None = None, retries: int = 5, force: bool = False
) -> dict:
    """Fetch a zoo entry's weights into ``<cache_dir>/zoo/<name>/`` and verify them; returns its record.

    ``base_url``: a mirror (or a local folder) holding the file under its published name.
    A sha256 mismatch removes the file and names the source. An entry without a pinned
    sha256 records the one it got (``verified: false``).
    """
    from cm_cli.core.artifacts import write_json
    from cm_cli.data.download import DownloadItem, DownloadSettings, fetch_file

    entry = get_entry(name)
    if entry.kind == "packaged":
        return {"name": name, "path": str(toy_dir()), "status": "shipped", "sha256": None, "verified": True}
    folder = zoo_dir(name, cache_dir)
    record_path = folder / "config.json"
    record = _read_json(record_path) if record_path.is_file() and not force else None
    if record and record.get("cm_format") == ZOO_FORMAT and (folder / str(record.get("file"))).is_file():
        return {**record, "path": str(folder), "status": "present"}
    if base_url and "://" not in base_url and Path(base_url).expanduser().is_dir():
        base_url = Path(base_url).expanduser().resolve().as_uri()
    url = entry.urls[0] if entry.urls else None
    if url is None and not base_url:
        raise CmError(
            f"{name} cannot be fetched by cm: {entry.sha256_note or 'no direct download URL'}",
            entry.manual or f"see {entry.source}",
        )
    item = DownloadItem(entry.filename, url or "", md5=None)  # size and sha256 are checked below, once
    fetched = fetch_file(item, folder, base_url=base_url, settings=DownloadSettings(retries=retries, check_space=False))
    source = (base_url.rstrip("/") + "/" + entry.filename) if base_url else url
    digest = _sha256(fetched.path)
    if entry.sha256 is not None and digest != entry.sha256 or entry.size is not None and fetched.size != entry.size:
        fetched.path.unlink(missing_ok=True)
        fetched.path.with_name(f".{fetched.path.name}.ok").unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()
        raise CmError(
            f"{name}: sha256 mismatch for {entry.filename} from {source} (expected {entry.sha256}, "
            f"got {digest}); the file was removed",
            "the source or mirror serves another file: check the base URL, or report it",
            option="base_url",
        )
    record = {
        "cm_format": ZOO_FORMAT,
        "name": name,
        "kind": entry.kind,
        "file": entry.filename,
        "sha256": digest,
        "verified": entry.sha256 is not None,
        "source": source,
        "model_config": entry.model_config,
    }
    write_json(record, record_path)
    return {**record, "path": str(folder), "status": "downloaded"}


def hub_classifier_path(name_or_dir: str, *, bonafide_label: str | None, cache_dir: str | os.PathLike) -> Path:
    """A transformers audio-classification model (hub id or folder) made loadable by path.

    With ``bonafide_label`` a small zoo folder (``cm-zoo/1``, kind ``hf_classifier``) records
    the model's folder and its bona fide label, so every command loads it by that path.
    """
    from cm_cli.core.artifacts import write_json
    from cm_cli.models.hf_classifier import check_bonafide_label, read_labels

    local = Path(name_or_dir).expanduser()
    if local.is_dir():
        folder = local.resolve()
    else:
        from cm_cli.models.hub import download_model

        folder = download_model(name_or_dir, cache_dir=cache_dir)
    labels = read_labels(folder)
    label = check_bonafide_label(labels, bonafide_label, source=str(name_or_dir))
    if bonafide_label is None:
        return folder
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "--" for ch in str(name_or_dir).strip("/"))
    target = Path(cache_dir).expanduser() / "zoo" / "hub" / f"{slug}--{label}"
    write_json(
        {
            "cm_format": ZOO_FORMAT,
            "name": str(name_or_dir),
            "kind": "hf_classifier",
            "target": str(folder),
            "bonafide_label": label,
        },
        target / "config.json",
    )
    return target


def resolve_model(name: str, *, bonafide_label: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """What ``--model NAME`` names, as a local path ``load_model`` reads.

    ``NAME`` is a zoo name (``zoo_names()``), a local folder (``cm export`` or transformers
    classifier) or a hub id ``org/name`` (fetched into the cache through ``models.hub``;
    a transformers classifier gets its bona fide label checked, ``bonafide_label``).
    """
    cache_dir = cache_dir or Path.home() / ".cache" / "cm"
    if name in ZOO:
        if bonafide_label is not None:
            raise CmError(
                f"a bona fide label is for transformers classifiers; zoo model {name!r} scores bona fide "
                "as it was published",
                "drop the bona fide label",
                option="bonafide_label",
            )
        return model_path(name, cache_dir=cache_dir)
    local = Path(name).expanduser()
    looks_like_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~")) and not local.exists()
    if not local.is_dir() and not looks_like_hub_id:
        raise CmError(
            f"unknown model {name!r}: not a zoo name ({', '.join(ZOO)}), a folder or a hub id (org/name)",
            "`cm download --list-models` lists the zoo",
        )
    folder = local.resolve() if local.is_dir() else None
    if folder is None:
        from cm_cli.models.hub import download_model

        folder = download_model(name, cache_dir=cache_dir)
    from cm_cli.models.hf_classifier import is_audio_classifier

    if is_audio_classifier(_read_json(Path(folder) / "config.json") or {}):
        return hub_classifier_path(str(folder), bonafide_label=bonafide_label, cache_dir=cache_dir)
    if bonafide_label is not None:
        raise CmError(
            f"a bona fide label is for transformers audio classifiers; {name} is not one",
            "drop it",
            option="bonafide_label",
        )
    return Path(folder)


def resolve_model_option(
    model: str | None,
    source: "Path | None",
    *,
    bonafide_label: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    option: tuple[str, str] = ("run", "model"),
) -> "Path | None":
    """The model a command scores with: ``source`` (a run or checkpoint) or ``model`` (a name), not both.

    ``option`` names the two parameters for the error (``("checkpoint", "model")`` in `cm embed`).
    """
    from cm_cli.core.errors import UsageError

    if model is not None and source is not None:
        raise UsageError("give one model: a run or checkpoint, or a model name, not both", option=option)
    if model is not None:
        return resolve_model(model, bonafide_label=bonafide_label, cache_dir=cache_dir)
    if bonafide_label is not None and source is not None:
        return hub_classifier_path(str(source), bonafide_label=bonafide_label, cache_dir=cache_dir)
    return source


def open_packaged(source: Any):
    """A ``Weights`` for a zoo folder, ``cm export`` folder or transformers classifier folder; None otherwise."""
    from cm_cli.models.export import read_export_config
    from cm_cli.models.loading import Weights

    path = Path(source).expanduser()
    if not path.is_dir() or not (path / "config.json").is_file():
        return None
    exported = read_export_config(path)
    if exported is not None:
        from cm_cli.models.export import WEIGHTS_FILE

        return Weights(path, path / WEIGHTS_FILE, exported, "exported")
    config = _read_json(path / "config.json") or {}
    if config.get("cm_format") == ZOO_FORMAT:
        if config.get("kind") == "hf_classifier":
            target = Path(str(config.get("target")))
            return Weights(
                path, target, {"folder": target, "bonafide_label": config.get("bonafide_label")}, "hf_classifier"
            )
        weights = path / str(config.get("file"))
        if not weights.is_file():
            raise CmError(
                f"zoo folder {path} lacks its weights file {config.get('file')}",
                f"run `cm download --model {config.get('name')} --force`",
            )
        return Weights(path, weights, config, "zoo")
    from cm_cli.models.hf_classifier import is_audio_classifier

    if is_audio_classifier(config):
        return Weights(path, path, {"folder": path, "bonafide_label": None}, "hf_classifier")
    return None


def load_packaged(weights, *, device: Any = "cpu", overrides: dict | None = None):
    """The ``LoadedModel`` of what ``open_packaged`` found."""
    from cm_cli.core.artifacts import sha256_file
    from cm_cli.data.datasets import SAMPLE_RATE
    from cm_cli.models.loading import LoadedModel, load_model

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if weights.kind == "zoo":
        record = weights.payload
        loaded = load_model(
            weights.path, device=device, overrides={**dict(record.get("model_config") or {}), **overrides}
        )
        loaded.source, loaded.kind = weights.source, "zoo"
        return loaded
    if weights.kind == "hf_classifier":
        from cm_cli.models.hf_classifier import build_classifier

        model, config, checkpoint = build_classifier(weights.payload["folder"], weights.payload["bonafide_label"])
        return LoadedModel(
            model=model.to(device).eval(),
            config=config,
            policy=config.length,
            sample_rate=SAMPLE_RATE,
            source=weights.source,
            kind="hf_classifier",
            checkpoint=checkpoint,
            checkpoint_sha256=sha256_file(checkpoint),
        )
    from cm_cli.models.export import load_export

    model, config, exported = load_export(weights.source, overrides=overrides)
    metrics = exported.get("metrics") or {}
    threshold = metrics.get("dev_eer_threshold")
    seed = exported.get("seed")
    return LoadedModel(
        model=model.to(device).eval(),
        config=config,
        policy=config.length,
        sample_rate=SAMPLE_RATE,
        source=weights.source,
        kind="exported",
        checkpoint=weights.path,
        checkpoint_sha256=sha256_file(weights.path),
        train_config=exported,
        dev_threshold=None if threshold is None else float(threshold),
        calibration=metrics.get("calibration"),
        init_seed=None if seed is None else int(seed),
    )


def list_models(*, cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """Every entry as a dict, with ``cached``: whether it is ready to load here."""
    out = []
    for entry in ZOO.values():
        if entry.kind == "packaged":
            cached = (toy_dir() / "config.json").is_file()
        else:
            cached = cache_dir is not None and (zoo_dir(entry.name, cache_dir) / "config.json").is_file()
        out.append({**entry.to_dict(), "cached": bool(cached)})
    return out
