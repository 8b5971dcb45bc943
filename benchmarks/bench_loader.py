"""`cm train`'s data loader: time and peak RSS per manifest size, crop seeking, worker overlap, augmentation cost.

Writes ``--files`` speech-like 16 kHz FLAC files of 6-8 s once into a work folder (reused
with ``--workdir``), with a manifest. Then:

1. sizes: in a fresh process per size, one epoch of ``cm train``'s loader (``TrainAudio``
   with ``--crop`` s crops, ``bucket_batches``, ``train_loader`` with ``--workers``) over a
   manifest of N rows that cycle through the files (decoding is real; a cold disk is not:
   the files stay in the page cache): seconds, utterances/s, peak RSS of the main process
   and of its largest worker, RSS once the libraries are imported, growth between sizes;
2. seek: decoding each of the first ``--n`` files whole and slicing the crop, against
   reading only the crop (``TrainAudio``'s path);
3. overlap: the loader with 0 and ``--workers`` workers while a stand-in for a GPU step
   sleeps ``--step-ms`` per batch;
4. augmentation: utterances per CPU-second (the process's and its children's user+system
   time, ffmpeg included, not wall time) of ``TrainAudio`` over the first ``--aug-n``
   files, each mode in a fresh process: clean; the on-the-fly ``--policy`` with an empty
   cache (a fresh ``cache_dir``: what every utterance costs the first time); the same
   epoch again over that cache (warm); and pre-rendered variants (``--variants`` drawn by
   ``degrade_manifest``, the library behind ``cm degrade --manifest M --policy P
   --variants K``, then read by ``TrainAudio`` without a policy, as ``--augment-manifest``
   does). Ratios are to clean in the same run; also the cache's size on disk per utterance
   and the one-off CPU cost of rendering. Only the public ``TrainAudio(frame, data_root=...,
   policy=..., seed=..., crop=..., cache_dir=..., min_samples=...)`` and ``ds[(epoch, row)]``
   are used, so this measures whatever the training data code does.

    python benchmarks/bench_loader.py [--sizes 1000,10000] [--files 1000] [--workers 2] [--n 400]
        [--step-ms 50] [--aug-n 100] [--policy aug_codec_asvspoof5] [--variants 1] [--workdir DIR]

ASVspoof 5 train size: ``--sizes 1000,10000,182357``. ``--smoke``: a few files. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _measure import growth, measure, parse_sized

SR = 16000
AUDIO_IMPORTS = ("numpy", "pandas", "soundfile", "cm_cli.data.datasets", "cm_cli.training.data")
IMPORTS = AUDIO_IMPORTS + ("torch", "torch.utils.data")  # the loader's children import these before their baseline


def write_corpus(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` FLAC files of 6-8 s (a pitched, amplitude-modulated tone in noise) and their manifest; kept if present."""
    import pandas as pd
    import soundfile as sf

    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    manifest = root / f"manifest-{n}.parquet"
    if manifest.is_file():
        return manifest
    (root / "flac").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        frames = int(SR * rng.uniform(6.0, 8.0))
        t = np.arange(frames) / SR
        wave = 0.3 * np.sin(2 * np.pi * (120 + 40 * rng.random()) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
        wave = (wave + 0.01 * rng.standard_normal(frames)).astype(np.float32)
        path = root / "flac" / f"u{i:06d}.flac"
        if not path.is_file():
            sf.write(path, wave, SR)
        rows.append(
            {
                "utt_id": f"u{i:06d}",
                "path": str(path),
                "label": "bonafide" if i % 2 else "spoof",
                "speaker": f"s{i % 20:02d}",
                "split": "train",
                "corpus": "bench",
                "domain": "clean",
                "duration": frames / SR,
                "sample_rate": SR,
            }
        )
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    return manifest


def _rows(manifest: str, n: int):
    """``n`` training rows cycling through the manifest's files, each with its own utt_id."""
    import pandas as pd

    files = pd.read_parquet(manifest)
    frame = files.iloc[np.arange(n) % len(files)].reset_index(drop=True)
    frame["utt_id"] = [f"r{i:07d}" for i in range(n)]
    return frame


def loader_epoch(manifest: str, n: int, crop: int, workers: int, batch: int, step_ms: float = 0.0) -> dict:
    """One epoch of ``cm train``'s loader over ``n`` rows; ``step_ms`` of sleep per batch stands in for the model."""
    import gc

    from cm_cli.data.datasets import bucket_batches
    from cm_cli.training.data import EpochBatches, TrainAudio, train_loader

    t0 = time.perf_counter()
    dataset = TrainAudio(_rows(manifest, n), data_root=None, seed=0, crop=crop)
    sampler = EpochBatches()
    sampler.set(0, bucket_batches(dataset.durations(), batch, shuffle=True, seed=0))
    loader = train_loader(dataset, sampler, workers=workers, seed=0)
    t1 = time.perf_counter()
    seen = 0
    for out in loader:
        seen += len(out.conditions)  # one entry per row the batch kept
        if step_ms:
            time.sleep(step_ms / 1000)
    t2 = time.perf_counter()
    del loader  # persistent workers exit and are reaped, so their peak RSS is counted
    gc.collect()
    return {"n": n, "seen": seen, "setup_s": t1 - t0, "epoch_s": t2 - t1}


def augment_pass(manifest: str, n: int, crop: int, policy: str | None, cache_dir: str, epoch: int = 0) -> dict:
    """``ds[(epoch, row)]`` for the first ``n`` rows of ``manifest`` (no loader, no workers); conditions drawn."""
    import pandas as pd

    from cm_cli.training.data import TrainAudio

    frame = pd.read_parquet(manifest).iloc[:n].reset_index(drop=True)
    if policy:
        from cm_cli.degrade.policy import load_policy

        policy = load_policy(policy)
    dataset = TrainAudio(
        frame, data_root=None, policy=policy or None, seed=0, crop=crop, cache_dir=cache_dir, min_samples=0
    )
    conditions: dict[str, int] = {}
    failed = 0
    for row in range(len(dataset)):
        item = dataset[(epoch, row)]
        if item.wave is None:
            failed += 1
            continue
        # the policy's draw on the fly; a pre-rendered variant's domain from its manifest
        label = str(getattr(item, "condition", None) or frame.get("domain", {}).get(row) or "clean")
        conditions[label] = conditions.get(label, 0) + 1
    return {"n": len(dataset), "failed": failed, "conditions": conditions}


def render_variants(manifest: str, out: str, policy: str, variants: int) -> dict:
    """Pre-render ``variants`` policy draws per file, as ``cm degrade --manifest M --policy P --variants K``."""
    from cm_cli.degrade.corpus import degrade_manifest

    result = degrade_manifest(manifest, out, policy=policy, variants=variants, seed=0, workers=1)
    return {"manifest": str(result.manifest), "written": result.n_written, "failed": result.n_failed}


def decode_vs_seek(manifest: str, n: int, crop: int) -> dict:
    import pandas as pd

    from cm_cli.data.audio import load_audio, load_audio_window

    paths = pd.read_parquet(manifest)["path"].tolist()[:n]
    start = time.perf_counter()
    for p in paths:
        load_audio(p, sample_rate=SR)[0][1000 : 1000 + crop]
    whole = time.perf_counter() - start
    start = time.perf_counter()
    for p in paths:
        load_audio_window(p, 1000, crop, sample_rate=SR)
    seek = time.perf_counter() - start
    return {
        "files": len(paths),
        "decode_whole_utt_per_s": len(paths) / whole,
        "seek_crop_utt_per_s": len(paths) / seek,
        "seek_speedup": whole / seek,
    }


def _disk_bytes(folder: Path) -> tuple[int, int]:
    """(bytes, files) under ``folder``."""
    total = count = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            total += os.path.getsize(os.path.join(dirpath, name))
            count += 1
    return total, count


def _sizes(args, manifest: Path, crop: int) -> list[dict]:
    rows = []
    print(
        f"\n1. one epoch of the loader per manifest size ({args.workers} workers, batch {args.batch}, "
        f"{args.crop:g} s crops, rows cycle through the {args.corpus_files} files)"
    )
    print(f"{'rows':>9} {'setup s':>8} {'epoch s':>8} {'utt/s':>8} {'peak MiB':>9} {'+data MiB':>9} {'worker MiB':>10}")
    for n in args.size_list:
        m = measure(loader_epoch, str(manifest), n, crop, args.workers, args.batch, imports=IMPORTS)
        r = m["result"]
        row = {
            "rows": n,
            "seen": r["seen"],
            "setup_s": r["setup_s"],
            "epoch_s": r["epoch_s"],
            "loader_s": m["seconds"],
            "utt_per_s": r["seen"] / r["epoch_s"],
            "loader_peak_rss_mib": m["peak_rss_mib"],
            "loader_base_rss_mib": m["base_rss_mib"],
            "worker_peak_rss_mib": m["children_peak_rss_mib"],
        }
        rows.append(row)
        print(
            f"{n:9d} {r['setup_s']:8.2f} {r['epoch_s']:8.2f} {row['utt_per_s']:8.1f} {m['peak_rss_mib']:9.0f} "
            f"{m['peak_rss_mib'] - m['base_rss_mib']:9.0f} {m['children_peak_rss_mib']:10.0f}"
        )
    print("\n".join(growth(rows, "rows", ("loader",), "rows")))
    return rows


def _overlap(args, manifest: Path, crop: int) -> dict:
    out = {}
    for workers in (0, args.workers):
        r = measure(loader_epoch, str(manifest), args.n, crop, workers, args.batch, args.step_ms, imports=IMPORTS)
        out[f"workers_{workers}_utt_per_s"] = r["result"]["seen"] / r["result"]["epoch_s"]
    cap = 1000 * args.batch / args.step_ms if args.step_ms else float("inf")
    print(
        f"\n3. loader while a {args.step_ms:g} ms step sleeps per batch of {args.batch} ({args.n} rows; the step "
        f"alone caps it at {cap:.0f} utt/s): 0 workers {out['workers_0_utt_per_s']:.1f} utt/s, "
        f"{args.workers} workers {out[f'workers_{args.workers}_utt_per_s']:.1f} utt/s"
    )
    return out


def _augmentation(args, manifest: Path, crop: int, work: Path) -> dict:
    env = dict(os.environ, CM_CACHE_DIR=str(work / "cm-cache"))  # nothing touches the user's cache
    n, runs = args.aug_n, {}
    aug = work / f"aug-{time.time_ns()}"
    cache = aug / "cache"
    aug.mkdir(parents=True)
    runs["clean"] = measure(
        augment_pass, str(manifest), n, crop, None, str(aug / "unused"), env=env, imports=AUDIO_IMPORTS
    )
    runs["on_the_fly_cold"] = measure(
        augment_pass, str(manifest), n, crop, args.policy, str(cache), env=env, imports=AUDIO_IMPORTS
    )
    cache_bytes, cache_files = _disk_bytes(cache)
    runs["on_the_fly_warm"] = measure(
        augment_pass, str(manifest), n, crop, args.policy, str(cache), env=env, imports=AUDIO_IMPORTS
    )
    small = aug / "manifest.parquet"
    _rows(str(manifest), n).to_parquet(small)
    render = measure(
        render_variants, str(small), str(aug / "variants"), args.policy, args.variants, env=env, imports=AUDIO_IMPORTS
    )
    variants = render["result"]["manifest"]
    runs["pre_rendered"] = measure(
        augment_pass, variants, n * args.variants, crop, None, str(aug / "unused"), env=env, imports=AUDIO_IMPORTS
    )
    clean = runs["clean"]["result"]["n"] / runs["clean"]["cpu_s"]
    print(
        f"\n4. augmentation cost, {n} utterances of 6-8 s, {args.crop:g} s crops, policy {args.policy} "
        "(utterances per CPU-second: process + children, ffmpeg included)"
    )
    print(
        f"{'mode':>16} {'utt':>6} {'CPU s':>8} {'wall s':>8} {'utt/CPU-s':>10} {'x clean':>8} "
        f"{'peak MiB':>9}  conditions"
    )
    out = {"policy": args.policy, "n": n, "variants": args.variants}
    for mode, m in runs.items():
        r = m["result"]
        rate = r["n"] / max(m["cpu_s"], 1e-9)
        out[mode] = {
            "utt": r["n"],
            "failed": r["failed"],
            "cpu_s": m["cpu_s"],
            "wall_s": m["seconds"],
            "utt_per_cpu_s": rate,
            "over_clean": rate / clean,
            "peak_rss_mib": m["peak_rss_mib"],
            "conditions": r["conditions"],
        }
        print(
            f"{mode:>16} {r['n']:6d} {m['cpu_s']:8.2f} {m['seconds']:8.2f} {rate:10.1f} {rate / clean:8.3f} "
            f"{m['peak_rss_mib']:9.0f}  {', '.join(f'{k} {v}' for k, v in sorted(r['conditions'].items()))}"
            + (f"  ({r['failed']} failed)" if r["failed"] else "")
        )
    out["cache_bytes_per_utt"] = cache_bytes / n
    out["cache_files"] = cache_files
    out["render_cpu_s_per_variant"] = render["cpu_s"] / max(n * args.variants, 1)
    out["render_failed"] = render["result"]["failed"]
    shutil.rmtree(aug, ignore_errors=True)
    print(
        f"on-the-fly cache: {cache_bytes / n / 1024:.1f} KiB on disk per utterance ({cache_files} files for {n} "
        f"utterances); the 4 s crop itself is {crop * 4 / 1024:.0f} KiB as float32"
    )
    print(
        f"pre-rendering {args.variants} variant(s) per file: {out['render_cpu_s_per_variant']:.3f} CPU-s per variant "
        f"(once), then {out['pre_rendered']['over_clean']:.2f}x clean speed per epoch; on the fly: "
        f"{1 / out['on_the_fly_cold']['over_clean']:.1f}x slower than clean with an empty cache, "
        f"{1 / out['on_the_fly_warm']['over_clean']:.1f}x with a warm one"
    )
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="distinct FLAC files written (rows cycle through them)")
    parser.add_argument("--crop", type=float, default=4.0, help="training crop, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n", type=int, default=400, help="files for the seek and overlap sections")
    parser.add_argument("--step-ms", type=float, default=50.0)
    parser.add_argument("--aug-n", type=int, default=100, help="utterances for the augmentation section (0: skip it)")
    parser.add_argument("--policy", default="aug_codec_asvspoof5", help="on-the-fly policy (a degrade preset or YAML)")
    parser.add_argument("--variants", type=int, default=1, help="pre-rendered variants per file")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    args, args.size_list = parse_sized(parser, argv, sizes="1000,10000", smoke="24,48", unit="rows")
    if args.smoke:
        args.files, args.n, args.aug_n, args.batch, args.step_ms = 12, 12, 4, 4, 5.0
    crop = int(args.crop * SR)
    with tempfile.TemporaryDirectory(prefix="cm_bench_loader_") as tmp:
        work = args.workdir or Path(tmp)
        args.corpus_files = max(args.files, args.n, args.aug_n)
        manifest = write_corpus(work / "corpus", args.corpus_files)
        result = {"sizes": _sizes(args, manifest, crop)}
        result["seek"] = measure(decode_vs_seek, str(manifest), args.n, crop, imports=AUDIO_IMPORTS)["result"]
        s = result["seek"]
        print(
            f"\n2. {s['files']} files: whole decode {s['decode_whole_utt_per_s']:.1f} utt/s, crop seek "
            f"{s['seek_crop_utt_per_s']:.1f} utt/s ({s['seek_speedup']:.2f}x)"
        )
        result["overlap"] = _overlap(args, manifest, crop)
        if args.aug_n:
            result["augmentation"] = _augmentation(args, manifest, crop, work)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
