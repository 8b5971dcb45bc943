"""Building, checking, subsetting and writing manifests for any registered corpus.

One entry point, ``make_manifest``, used by ``cm manifest``, ``cm demo`` and by any
command that needs the default manifest of the data root's corpus.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from cm_cli.core.errors import CmError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ManifestResult",
    "CORPUS_PREPARERS",
    "asv_score_files",
    "find_asv_scores",
    "manifest_asv_scores",
    "prepare_corpus",
    "probe_manifest_audio",
    "stratified_subset",
    "make_manifest",
    "load_manifest",
    "default_manifest",
]


class _Preparers(Mapping):
    """corpus name -> its registered builder, read from the corpus registry (no copy of the list)."""

    def __getitem__(self, name: str) -> Callable[..., "pd.DataFrame"]:
        from cm_cli.data.corpora.registry import CORPORA, corpus_spec

        if name not in CORPORA:
            raise KeyError(name)
        return corpus_spec(name).prepare

    def __iter__(self) -> Iterator[str]:
        from cm_cli.data.corpora.registry import CORPORA

        return iter(CORPORA)

    def __len__(self) -> int:
        from cm_cli.data.corpora.registry import CORPORA

        return len(CORPORA)


# corpus name -> function(corpus_root, *, data_root, protocol=None, audio_dir=None, phase=None) -> DataFrame
CORPUS_PREPARERS: Mapping[str, Callable[..., "pd.DataFrame"]] = _Preparers()


@dataclass
class ManifestResult:
    path: Path
    n_rows: int
    counts: dict
    skipped: bool = False
    probed: bool = False
    warnings: list[str] = field(default_factory=list)


def prepare_corpus(corpus: str, corpus_root: Path, *, data_root: Path, **kwargs: Any) -> "pd.DataFrame":
    from cm_cli.data.corpora.registry import corpus_spec
    from cm_cli.data.manifest import normalise_manifest, validate_manifest

    df = corpus_spec(corpus).build(corpus_root, data_root=data_root, **kwargs)
    df = normalise_manifest(df)
    return validate_manifest(df, source=corpus_root)


def _probe_header(path: str) -> tuple[int, int] | str:
    """(frames, sample rate) from the file header, or the reason it cannot be read.

    ``soundfile.SoundFile`` reads only the header; ``soundfile.info`` also asks libsndfile for
    its "extra info" text, which costs more than the header itself. Formats libsndfile cannot
    open (mp3 in old builds, m4a) go through the full audio reader.
    """
    import soundfile as sf

    from cm_cli.data.audio import probe_audio

    try:
        with sf.SoundFile(path) as handle:
            return int(handle.frames), int(handle.samplerate)
    except FileNotFoundError:
        return "missing"
    except (RuntimeError, sf.LibsndfileError, TypeError):
        if not Path(path).is_file():
            return "missing"
        try:
            info = probe_audio(path)
        except CmError as exc:
            return exc.message
        return int(info.frames), int(info.sample_rate)


def probe_manifest_audio(df: "pd.DataFrame", *, data_root: Path, workers: int = 4) -> "pd.DataFrame":
    """Fill duration and sample_rate for every row; every missing or unreadable file is an error."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pandas as pd

    from cm_cli.core.progress import track

    root = str(Path(data_root))
    paths = [p if os.path.isabs(p) else os.path.join(root, p) for p in df["path"].astype(str)]
    chunk = 256  # one task per chunk of files: thread hand-offs cost more than a header read
    batches = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = [
            r
            for batch in track(
                pool.map(lambda b: [_probe_header(p) for p in b], batches),
                total=len(batches),
                description="probing audio",
            )
            for r in batch
        ]
    missing = [p for p, r in zip(paths, results) if r == "missing"]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise CmError(
            f"{len(missing)} audio file(s) listed in the protocols are missing, e.g. {', '.join(missing[:3])}{more}",
            "check the data root, or finish the download/unpacking of the corpus",
            option="data_root",
        )
    bad = [r for r in results if isinstance(r, str)]
    if bad:
        raise CmError(f"{len(bad)} audio file(s) cannot be read, e.g. {bad[0]}")
    frames = np.fromiter((r[0] for r in results), dtype=np.float64, count=len(results))
    rates = np.fromiter((r[1] for r in results), dtype=np.int64, count=len(results))
    df = df.copy()
    df["duration"] = (frames / rates).astype("float32")
    df["sample_rate"] = pd.array(rates, dtype="Int32")
    return df


def stratified_subset(
    df: "pd.DataFrame", n: int, *, seed: int = 0, by: tuple[str, ...] = ("split", "label", "attack", "codec")
) -> "pd.DataFrame":
    """``n`` rows keeping the proportions of every (split, label, attack, codec) stratum.

    Largest-remainder allocation, at least one row per stratum while ``n`` allows,
    rows drawn with a fixed seed; the original row order is kept.
    """
    import numpy as np

    if n <= 0:
        raise CmError(f"subset size must be positive, got {n}", option="subset")
    if n >= len(df):
        return df.reset_index(drop=True)
    keys = df[list(by)].astype("string").fillna("<none>").agg("|".join, axis=1)
    groups = keys.groupby(keys, sort=True).groups
    sizes = {k: len(v) for k, v in groups.items()}
    quota = {k: n * s / len(df) for k, s in sizes.items()}
    alloc = {k: int(q) for k, q in quota.items()}
    if n >= len(sizes):
        for k in alloc:
            alloc[k] = max(alloc[k], 1)
    left = n - sum(alloc.values())
    order = sorted(quota, key=lambda k: (-(quota[k] - int(quota[k])), k))
    i = 0
    while left > 0 and order:
        k = order[i % len(order)]
        if alloc[k] < sizes[k]:
            alloc[k] += 1
            left -= 1
        i += 1
    while left < 0:  # the at-least-one rule overshot: trim the largest strata
        k = max(alloc, key=lambda key: alloc[key])
        alloc[k] -= 1
        left += 1
    rng = np.random.default_rng(seed)
    chosen = []
    for k in sorted(groups):
        index = np.asarray(groups[k])
        chosen.extend(rng.choice(index, size=min(alloc[k], len(index)), replace=False).tolist())
    return df.loc[sorted(chosen)].reset_index(drop=True)


def default_manifest(ctx, corpus: str) -> Path:
    """The data root corpus's manifest, built on first use (DESIGN.md)."""
    path = ctx.default_manifest(corpus)
    if not path.is_file():
        make_manifest(
            corpus, path.parent, data_root=ctx.data_root, corpus_root=ctx.corpus_root(corpus), workers=ctx.workers
        )
    return path


def load_manifest(path: str | Path, *, split: str | None = None) -> "pd.DataFrame":
    from cm_cli.core.artifacts import read_table
    from cm_cli.data.manifest import validate_manifest

    path = Path(path)
    df = read_table(path, name="manifest")
    validate_manifest(df, source=path)
    if split:
        available = sorted(df["split"].dropna().unique())
        df = df[df["split"] == split].reset_index(drop=True)
        if df.empty:
            raise CmError(f"{path}: no rows with split {split!r}", f"splits present: {', '.join(available)}")
    return df


def make_manifest(
    corpus: str,
    out_dir: str | Path,
    *,
    data_root: Path,
    corpus_root: Path | None = None,
    validate: bool = False,
    subset: int | None = None,
    seed: int = 0,
    workers: int = 4,
    force: bool = False,
    extra_options: dict | None = None,
    prepare_kwargs: dict | None = None,
) -> ManifestResult:
    """Build ``out_dir/manifest.parquet`` with provenance; reuse it when already made the same way."""
    from cm_cli.core.artifacts import OutputDir, read_json, write_parquet
    from cm_cli.data.manifest import manifest_counts

    out_dir = Path(out_dir)
    corpus_root = Path(corpus_root) if corpus_root is not None else Path(data_root) / corpus
    options = {
        "corpus": corpus,
        "corpus_root": str(Path(corpus_root).resolve()),
        "validate": validate,
        "subset": subset,
        "seed": seed,
        **(extra_options or {}),
    }
    if not Path(data_root).exists() and not corpus_root.exists():
        raise CmError(
            f"data root {data_root} does not exist",
            "set the data root or CM_DATA_ROOT, or run `cm download toy`",
            option="data_root",
        )
    inputs = protocol_files(corpus, corpus_root, prepare_kwargs or {})
    # the protocols' content keys the reuse, so a finished manifest is found before any parsing (a 1M-row
    # protocol takes seconds); corpora without a short list of protocol files are parsed first
    df = None if inputs else prepare_corpus(corpus, corpus_root, data_root=Path(data_root), **(prepare_kwargs or {}))
    target = out_dir / "manifest.parquet"
    with OutputDir(out_dir, "manifest", options=options, inputs=inputs or (), force=force) as output:
        if output.done and target.is_file():
            record = read_json(output.record_path)
            summary = record.get("summary", {})
            return ManifestResult(target, int(summary.get("n_utterances", 0)), summary, skipped=True, probed=validate)
        if df is None:
            df = prepare_corpus(corpus, corpus_root, data_root=Path(data_root), **(prepare_kwargs or {}))
        if subset:
            df = stratified_subset(df, subset, seed=seed)
        if validate:
            df = probe_manifest_audio(df, data_root=Path(data_root), workers=workers)
        write_parquet(df, target)
        counts = manifest_counts(df)
        asv = asv_score_files(corpus, corpus_root)
        if asv:
            counts["asv_scores"] = asv
        output.finish(outputs={"manifest": str(target)}, summary=counts)
    return ManifestResult(target, len(df), counts, probed=validate)


def protocol_files(corpus: str, corpus_root: str | Path, prepare_kwargs: dict) -> list[Path] | None:
    """The protocol/key files a corpus's manifest is made from (its registry entry says which), or None where
    the corpus is a folder scan (MLAAD) or they cannot be found yet (the parser then says what is missing)."""
    from cm_cli.data.corpora.registry import corpus_spec

    given = prepare_kwargs.get("protocol")
    if given:
        return [Path(p) for p in ([given] if isinstance(given, (str, Path)) else given)]
    spec = corpus_spec(corpus)
    if spec.protocol_files is None:
        return None
    try:
        return list(spec.protocol_files(Path(corpus_root)))
    except CmError:
        return None


def find_asv_scores(corpus_root: str | Path, corpus: str, *, split: str = "eval") -> Path | None:
    """The ASV score file a corpus distribution ships for ``split``, if it is unpacked under ``corpus_root``."""
    from cm_cli.data.corpora.registry import corpus_spec

    spec = corpus_spec(corpus)
    return spec.asv_scores(Path(corpus_root), split) if spec.asv_scores else None


def asv_score_files(corpus: str, corpus_root: str | Path) -> dict[str, str]:
    """Split -> the ASV score file the corpus ships (2019/2021 LA), so `cm eval` finds min t-DCF's ASV system."""
    found = {split: find_asv_scores(corpus_root, corpus, split=split) for split in ("dev", "eval")}
    return {split: str(Path(path).resolve()) for split, path in found.items() if path is not None}


def manifest_asv_scores(manifest: str | Path, split: str) -> Path | None:
    """The ASV score file recorded by `cm manifest` for ``split`` of this manifest, if any."""
    from cm_cli.core.artifacts import read_json

    record = Path(manifest).parent / "cm.json" if Path(manifest).is_file() else Path(manifest) / "cm.json"
    if not record.is_file():
        return None
    try:
        path = (read_json(record).get("summary") or {}).get("asv_scores", {}).get(split)
    except (CmError, AttributeError):
        return None
    return Path(path) if path and Path(path).exists() else None
