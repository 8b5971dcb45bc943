"""Training and dev data: manifest splits, augmentation, domain labels, and the datasets that read them.

Every random choice on the data side (augmentation condition, crop window) is a
function of (seed, epoch, row), never of a global RNG, so the data a step sees is
the same in an uninterrupted run, a resumed run and a run with worker processes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from cm_cli.core.errors import CmError
from cm_cli.data.datasets import AudioItem, ManifestAudio, collate_audio

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "TrainData",
    "load_training_data",
    "TrainAudio",
    "collate_train",
    "UNKNOWN",
    "domain_targets",
    "AugmentationLog",
    "EpochBatches",
    "train_loader",
    "codec_conditions",
    "on_the_fly_codec_warning",
    "policy_window",
    "POLICY_MARGIN_SECONDS",
    "POLICY_GRID_SECONDS",
    "WHOLE_FILE_COVERAGE",
]

UNKNOWN = -100  # ignore_index of the domain losses: unknown domain values are masked out
_MISSING = {"", "none", "nan", "null", "unknown"}


@dataclass
class TrainData:
    """The rows to train and validate on, and the domain vocabularies of the DANN heads."""

    train: "pd.DataFrame"
    dev: "pd.DataFrame | None"
    dev_note: str | None  # why there is no early stopping, when there is none
    domains: dict[str, list[str]] = field(default_factory=dict)  # column -> values (class index order)
    policy: object | None = None  # cm_cli.degrade.policy.Policy for on-the-fly augmentation
    coded_dev: "pd.DataFrame | None" = None
    augmented: bool = False  # rows include pre-rendered variants (--augment-manifest)

    def augment_conditions(self) -> list[str]:
        """Condition labels of the augmentation source: the policy's, or the variants' domains; [] for none."""
        if self.policy is not None:
            return list(self.policy.labels())
        if self.augmented:
            return sorted({str(v) for v in self.train["domain"].dropna()})
        return []

    def seen_domains(self) -> list[str]:
        """Sorted domain values the training rows have after augmentation (``clean`` for plain rows)."""
        if self.policy is not None:
            return sorted(set(self.policy.labels()))
        if "domain" in self.train:
            return sorted({str(v) for v in self.train["domain"].fillna("clean")})
        return ["clean"]

    def summary(self) -> dict:
        counts = self.train["label"].value_counts().to_dict()
        out = {
            "n_train": len(self.train),
            "train_labels": {str(k): int(v) for k, v in counts.items()},
            "n_dev": 0 if self.dev is None else len(self.dev),
            "domains": self.domains,
        }
        if self.dev_note:
            out["dev_note"] = self.dev_note
        return out


def _split(df: "pd.DataFrame", split: str) -> "pd.DataFrame":
    return df[df["split"] == split].reset_index(drop=True) if "split" in df else df.iloc[0:0]


def _read(path: str | Path) -> "pd.DataFrame":
    """A manifest, validated as every command that reads one validates it (columns, unique utt_id, labels, splits):
    a duplicated utt_id would be trained on twice and break every join on utt_id afterwards."""
    from cm_cli.core.artifacts import read_table
    from cm_cli.data.manifest import validate_manifest

    return validate_manifest(read_table(Path(path), name="manifest"), source=path)


def _check_labels(train: "pd.DataFrame", source: str) -> None:
    labels = set(train["label"].dropna().astype(str))
    if labels != {"bonafide", "spoof"}:
        have = ", ".join(sorted(labels)) or "no labels"
        raise CmError(
            f"{source}: the training set has only {have} utterances; a countermeasure needs both bonafide and spoof",
            "check the training split and the manifest's label column",
            option="train_split",
        )


def _with_augment_manifest(train: "pd.DataFrame", path: str, split: str) -> "pd.DataFrame":
    import pandas as pd

    variants = _read(path)
    if "split" in variants:
        variants = variants[variants["split"] == split]
    if variants.empty:
        raise CmError(
            f"{path}: no {split!r} rows in the augmentation manifest",
            "render training variants with `cm degrade --manifest M --policy P --variants K`",
            option="augment_manifest",
        )
    if "domain" not in variants:
        raise CmError(f"{path}: the augmentation manifest has no 'domain' column", "it should come from `cm degrade`")
    variants = variants.copy()
    variants["domain"] = variants["domain"].fillna("clean").astype(str)
    frames = [variants]
    if not (variants["domain"] == "clean").any():  # the clean originals are a domain too
        clean = train.copy()
        clean["domain"] = "clean"
        frames.insert(0, clean)
    return pd.concat(frames, ignore_index=True, sort=False)


def load_training_data(manifest: str | Path, config, *, check_available: bool = True) -> TrainData:
    """Rows for training (with augmentation variants) and dev, checked against the configuration."""
    df = _read(manifest)
    for column in ("utt_id", "path", "label"):
        if column not in df:
            raise CmError(f"{manifest}: no {column!r} column", "build manifests with `cm manifest`")
    train = _split(df, config.train_split)
    if train.empty:
        splits = ", ".join(sorted(df["split"].dropna().unique())) if "split" in df else "none"
        raise CmError(f"{manifest}: no rows with split {config.train_split!r}", f"splits present: {splits}")
    _check_labels(train, str(manifest))
    policy = None
    if config.augment_manifest:
        train = _with_augment_manifest(train, config.augment_manifest, config.train_split)
        _check_labels(train, config.augment_manifest)
    elif config.augment:
        from cm_cli.degrade.policy import load_policy

        policy = load_policy(config.augment, check_available=check_available)
    dev = _split(df, config.dev_split)
    from cm_cli.training.validation import usable_dev

    reason = usable_dev(dev["label"].astype(str)) if not dev.empty else f"no {config.dev_split!r} split in {manifest}"
    note = None
    if reason is not None:
        note = f"{reason}: training without validation or early stopping; best.pt is the last checkpoint"
        dev = None
    coded = None
    if config.coded_dev_manifest:
        coded = _split(_read(config.coded_dev_manifest), config.dev_split)
        if coded.empty or usable_dev(coded["label"].astype(str)) is not None:
            raise CmError(f"{config.coded_dev_manifest}: no usable {config.dev_split!r} rows (both classes needed)")
    domains: dict[str, list[str]] = {}
    if config.domain_columns:  # only methods that use domains keep them (TrainConfig.validate)
        for column in config.domain_columns:
            domains[column] = _domain_values(train, column, policy, str(manifest))
    return TrainData(train, dev, note, domains, policy, coded, augmented=bool(config.augment_manifest))


def _domain_values(train: "pd.DataFrame", column: str, policy, source: str) -> list[str]:
    if column == "domain" and policy is not None:
        values = list(policy.labels())
    else:
        if column not in train:
            raise CmError(
                f"{source}: DANN domain column {column!r} is not in the training manifest "
                f"(columns: {', '.join(map(str, train.columns))})",
                "augment with a policy (training-time domains come from augmentation, `clean` included) "
                "or give an augmentation manifest from `cm degrade --variants`",
                option=("augment", "augment_manifest"),
            )
        values = sorted({str(v) for v in train[column].dropna() if str(v).strip().lower() not in _MISSING})
    if len(values) < 2:
        raise CmError(
            f"{source}: DANN domain column {column!r} has {len(values)} distinct value(s) "
            f"({', '.join(values) or 'none'}) in the training set; an adversary needs at least two",
            "augment the training data (a policy with `clean` and degraded conditions)",
            option="augment",
        )
    return values


def domain_targets(train: "pd.DataFrame", domains: dict[str, list[str]], policy) -> dict[str, np.ndarray]:
    """Column -> class index per training row (``UNKNOWN`` where missing; on-the-fly ``domain`` filled per batch)."""
    out = {}
    for column, values in domains.items():
        if column == "domain" and policy is not None:
            continue
        lookup = {v: i for i, v in enumerate(values)}
        raw = train[column].astype(object).where(train[column].notna(), None)
        out[column] = np.array([lookup.get(str(v), UNKNOWN) if v is not None else UNKNOWN for v in raw], dtype=np.int64)
    return out


def codec_conditions(policy) -> list[str]:
    """Labels of the policy's entries that run a codec (ffmpeg processes per utterance on the fly)."""
    from cm_cli.degrade.registry import codec_fields

    out = []
    for entry in policy.entries:
        specs = entry.candidates()
        if any(codec_fields(spec)[0] is not None for spec in specs):
            out.append(entry.condition or entry.text)
    return out


def on_the_fly_codec_warning(config, device: str) -> str | None:
    """A warning when a GPU run would encode codecs on the fly (CPU-bound), else None."""
    if not config.augment or not str(device).startswith("cuda"):
        return None
    from cm_cli.degrade.policy import load_policy

    codecs = codec_conditions(load_policy(config.augment, check_available=False))
    if not codecs:
        return None
    return (
        f"on-the-fly codec augmentation ({', '.join(codecs)}) encodes every training crop on the CPU "
        "and will starve the GPU; pre-render variants once with `cm degrade --manifest M --policy "
        f"{config.augment!r} --variants K` and train with `--augment-manifest` instead"
    )


def _stable(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) & 0xFFFFFFFF for p in parts])


# An on-the-fly policy processes the crop plus this much audio on each side, then the
# margins are cut off: the filters', resamplers' and codecs' start-up transients fall in
# the margins, so the crop holds what degrading the whole file would have put there
# (docs/training.md measures it: 0.1 s already suffices for the toy and ASVspoof 5 policies).
POLICY_MARGIN_SECONDS = 0.25
# The window starts on this grid of the file (20 ms: whole 8 kHz samples and whole 20 ms
# frames of Opus, AMR and G.711 at 8 kHz, counted from the file's start), so resamplers and
# frame-based coders meet the samples at the alignment the whole file gives them.
POLICY_GRID_SECONDS = 0.02
# Where crop plus margins would cover this much of the file, the whole file is processed:
# little is saved, and a whole-file result is what the cache can reuse in later epochs.
WHOLE_FILE_COVERAGE = 0.75


def policy_window(start: int, crop: int, n: int, margin: int, grid: int = 1) -> tuple[int, int]:
    """``[a, b)``: the samples an on-the-fly policy processes for the crop ``[start, start + crop)`` of ``n``."""
    a = max(0, (start - margin) // max(grid, 1) * max(grid, 1))
    b = min(n, start + crop + margin)
    if b - a >= WHOLE_FILE_COVERAGE * n:
        return 0, n
    return a, b


class TrainAudio(ManifestAudio):
    """Training rows: decode, random-crop, augment with the policy (label kept as ``item.condition``).

    Items are addressed by ``(epoch, row)`` (what ``EpochBatches`` yields) so that
    worker processes, which keep their own copy of the dataset, draw exactly what
    the main process would; a plain ``row`` uses ``self.epoch``. Randomness is
    seeded from (seed, epoch, row) only. Only the crop is read where the file allows
    (plus ``POLICY_MARGIN_SECONDS`` each side under an on-the-fly policy, which is
    applied to that window and trimmed back to the crop; see ``policy_window``).
    Whole-file results are cached, windows are not (a new window every epoch would
    only fill the disk). A crop shorter than ``min_samples`` (the front end's window)
    is zero-padded to it, as ``cm eval`` pads short audio.
    """

    def __init__(
        self,
        frame: "pd.DataFrame",
        *,
        data_root,
        policy=None,
        seed: int = 0,
        crop: int | None = None,
        cache_dir: str | Path | None = None,
        min_samples: int = 0,
    ):
        super().__init__(frame, data_root=data_root)
        self.policy = policy
        self.seed = int(seed)
        self.crop = crop
        self.epoch = 0
        self.cache_dir = cache_dir
        self.min_samples = int(min_samples)
        self.utt_ids = self.frame["utt_id"].astype(str).tolist()

    def _crop_start(self, epoch: int, index: int, n: int) -> int:
        return int(_stable(self.seed, epoch, index, 11).integers(0, n - self.crop + 1))

    def _read_window(self, epoch: int, index: int, margin: int) -> tuple[AudioItem, int, bool]:
        """(audio to process, offset of the crop in it, whether it is the whole file).

        Only the window is decoded where the file can be seeked; other files are
        decoded whole and sliced, which gives the same samples.
        """
        from cm_cli.data.audio import native_frames

        if self.crop is None:
            return self.read(index), 0, True
        n = native_frames(self.paths[index], self.sample_rate)
        whole = None
        if n is None:
            whole = self.read(index)
            if whole.wave is None:
                return whole, 0, True
            n = len(whole.wave)
        if n <= self.crop:
            return (whole or self.read(index)), 0, True
        start = self._crop_start(epoch, index, n)
        grid = int(round(POLICY_GRID_SECONDS * self.sample_rate))
        a, b = policy_window(start, self.crop, n, margin, grid) if margin else (start, start + self.crop)
        if (a, b) == (0, n):
            return (whole or self.read(index)), start, True
        if whole is not None:
            return AudioItem(index, whole.wave[a:b]), start - a, False
        return self.read(index, (a, b - a)), start - a, False

    def __getitem__(self, key) -> AudioItem:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        margin = int(round(POLICY_MARGIN_SECONDS * self.sample_rate)) if self.policy is not None else 0
        item, offset, whole_file = self._read_window(epoch, index, margin)
        if item.wave is None:
            return item
        wave, condition = item.wave, None
        if self.policy is not None:
            from cm_cli.degrade.policy import apply_policy

            try:
                wave, condition = apply_policy(
                    wave,
                    self.sample_rate,
                    self.policy,
                    rng=_stable(self.seed, epoch, index, 7),
                    utt_id=self.utt_ids[index],
                    cache=whole_file,
                    cache_dir=self.cache_dir,
                )
            except CmError as exc:
                return AudioItem(index, None, f"augmentation of {self.utt_ids[index]}: {exc.message}")
        if self.crop is not None:
            wave = wave[offset : offset + self.crop]
        if len(wave) < self.min_samples:
            wave = np.pad(wave, (0, self.min_samples - len(wave)))
        out = AudioItem(index, np.ascontiguousarray(wave, dtype=np.float32))
        out.condition = condition  # type: ignore[attr-defined]
        return out


class EpochBatches:
    """A batch sampler that yields ``[(epoch, row), ...]``; ``set`` chooses the epoch and its batches.

    It is iterated in the main process at the start of every pass, so one loader
    with persistent workers serves every epoch.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.batches: list[list[int]] = []

    def set(self, epoch: int, batches: list[list[int]]) -> None:
        self.epoch, self.batches = int(epoch), [list(b) for b in batches]

    def __iter__(self):
        return iter([[(self.epoch, int(i)) for i in b] for b in self.batches])

    def __len__(self) -> int:
        return len(self.batches)


def train_loader(dataset: TrainAudio, sampler: EpochBatches, *, workers: int, seed: int, device_type: str = "cpu"):
    """One loader for the whole run: persistent workers, pinned memory and prefetch on CUDA."""
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator()
    generator.manual_seed(int(seed))
    extra = {"persistent_workers": True, "prefetch_factor": 4} if workers > 0 else {}
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_train,
        num_workers=int(workers),
        generator=generator,
        pin_memory=device_type == "cuda",
        **extra,
    )


def collate_train(items: Sequence[AudioItem]):
    """``collate_audio`` plus ``batch.conditions``: the augmentation label of each kept row (None: none)."""
    batch = collate_audio(items)
    batch.conditions = [getattr(it, "condition", None) for it in items if it.wave is not None]
    return batch


@dataclass
class AugmentationLog:
    """Realised conditions per training sample, to prove what augmentation actually did."""

    counts: Counter = field(default_factory=Counter)

    def add(self, conditions: Sequence[str | None]) -> None:
        self.counts.update("clean" if c is None else str(c) for c in conditions)

    def rates(self) -> dict[str, float]:
        total = sum(self.counts.values())
        return {k: v / total for k, v in sorted(self.counts.items())} if total else {}

    def to_dict(self) -> dict:
        return {
            "n_samples": int(sum(self.counts.values())),
            "counts": dict(sorted(self.counts.items())),
            "rates": self.rates(),
        }
