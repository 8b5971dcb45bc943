"""Benchmark the training data loader: whole-file decode vs seeking the crop, and loader workers.

Writes N synthetic speech-like FLAC files (``--seconds`` long, 16 kHz), then times
(1) decoding each file whole and slicing a ``--crop`` window against reading only that
window (``TrainAudio``'s path), and (2) a pass of ``cm train``'s loader with 0 and
``--workers`` workers while the "model" sleeps ``--step-ms`` per batch (a stand-in for
a GPU step), so the overlap of decoding with compute is visible. Prints `name value`.

    python benchmarks/bench_loader.py [--n 400] [--seconds 6] [--crop 4] [--workers 2] [--step-ms 50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _corpus(root: Path, n: int, seconds: float):
    import pandas as pd
    import soundfile as sf

    rng = np.random.default_rng(0)
    rows = []
    t = np.arange(int(seconds * 16000)) / 16000
    for i in range(n):
        wave = 0.3 * np.sin(2 * np.pi * (120 + 40 * rng.random()) * t) * (1 + np.sin(2 * np.pi * 3 * t))
        wave = (wave + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
        path = root / f"u{i:05d}.flac"
        sf.write(path, wave, 16000)
        rows.append({"utt_id": f"u{i:05d}", "path": str(path), "label": "bonafide" if i % 2 else "spoof",
                     "split": "train", "duration": seconds})
    return pd.DataFrame(rows)


def _decode_vs_seek(frame, crop: int) -> dict:
    from cm_cli.data.audio import load_audio, load_audio_window

    paths = frame["path"].tolist()
    start = time.perf_counter()
    for p in paths:
        load_audio(p, sample_rate=16000)[0][1000:1000 + crop]
    whole = time.perf_counter() - start
    start = time.perf_counter()
    for p in paths:
        load_audio_window(p, 1000, crop, sample_rate=16000)
    seek = time.perf_counter() - start
    return {"decode_whole_utt_per_s": len(paths) / whole, "seek_crop_utt_per_s": len(paths) / seek,
            "seek_speedup": whole / seek}


def _loader_pass(frame, crop: int, workers: int, step_ms: float, batch: int = 16) -> float:
    from cm_cli.data.datasets import bucket_batches
    from cm_cli.training.data import EpochBatches, TrainAudio, train_loader

    dataset = TrainAudio(frame, data_root=None, seed=0, crop=crop)
    sampler = EpochBatches()
    sampler.set(0, bucket_batches(dataset.durations(), batch, shuffle=True, seed=0))
    loader = train_loader(dataset, sampler, workers=workers, seed=0)
    start = time.perf_counter()
    for _ in loader:
        time.sleep(step_ms / 1000)
    return len(frame) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--crop", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--step-ms", type=float, default=50.0)
    args = parser.parse_args()
    crop = int(args.crop * 16000)
    with tempfile.TemporaryDirectory() as tmp:
        frame = _corpus(Path(tmp), args.n, args.seconds)
        for name, value in _decode_vs_seek(frame, crop).items():
            print(f"{name} {value:.2f}")
        for workers in (0, args.workers):
            rate = _loader_pass(frame, crop, workers, args.step_ms)
            print(f"loader_workers_{workers}_utt_per_s {rate:.1f}")


if __name__ == "__main__":
    main()
