"""Benchmark the feature sets of `cm embed`: prosody per CPU core, reconstruction and transcript batched.

Prints `name value` lines only. Inputs are synthetic 4-second voiced clips (a gliding
harmonic tone with pauses and noise), so no corpus or download is needed:

- prosody: utterances/s on one core (wall and CPU time; the issue's target is >= 200/s);
- reconstruction: a DAC with the published 16 kHz architecture (random weights unless
  ``--codec DIR``), batched, at its lowest and highest bitrate, on CPU and CUDA when present;
- transcript: a Whisper with whisper-tiny's dimensions (random weights unless ``--whisper
  DIR``; decoding is capped at ``--max-tokens`` so random weights cannot run away), batched.

    OMP_NUM_THREADS=1 python benchmarks/bench_features.py [--n 400] [--n-model 16] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 16000


def clips(n: int, seconds: float = 4.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    out = []
    for _ in range(n):
        f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        voiced = sum(0.3 / k * np.sin(k * phase) for k in range(1, 8))
        gate = (np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 6)) > -0.6).astype(float)
        out.append((voiced * gate + 0.01 * rng.standard_normal(len(t))).astype(np.float32))
    return out


def bench_prosody(n: int) -> dict:
    from cm_cli.featuresets.prosody import ProsodyExtractor

    waves = clips(n)
    extractor = ProsodyExtractor()
    extractor.extract(waves[:2])  # imports and caches outside the timing
    wall, cpu = time.perf_counter(), time.process_time()
    extractor.extract(waves)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "prosody_utt_per_s_wall": round(n / wall, 1),
        "prosody_utt_per_s_cpu": round(n / cpu, 1),
        "prosody_clips": n,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
    }


def _timed_batches(extractor, waves: list, batch_size: int, device: str) -> float:
    import torch

    extractor.extract(waves[:batch_size])  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, len(waves), batch_size):
        extractor.extract(waves[i : i + batch_size])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(waves) / (time.perf_counter() - start)


def _devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def bench_reconstruction(n: int, batch_size: int, codec: str | None, dims: str = "16khz") -> dict:
    from cm_cli.featuresets.reconstruction import (
        ReconstructionExtractor,
        open_codec,
        save_tiny_dac,
    )

    if codec is None:
        codec = str(save_tiny_dac(Path(tempfile.mkdtemp(prefix="cm-bench-dac-")) / "dac", dims=dims))
    waves, out = clips(n), {}
    for device in _devices():
        c = open_codec(codec, device)
        extractor = ReconstructionExtractor(c, c.choose(None), codec)
        rate = _timed_batches(extractor, waves, batch_size, device)
        out[f"reconstruction_{device}_utt_per_s"] = round(rate, 2)
        out["reconstruction_bitrates_kbps"] = ",".join(f"{k:g}" for k, _ in extractor.levels)
    return out


def bench_transcript(n: int, batch_size: int, whisper: str | None, max_tokens: int, dims: str = "tiny") -> dict:
    from cm_cli.featuresets.transcript import (
        TranscriptExtractor,
        load_whisper,
        save_tiny_whisper,
    )

    if whisper is None:
        whisper = str(save_tiny_whisper(Path(tempfile.mkdtemp(prefix="cm-bench-whisper-")) / "w", dims=dims))
    waves, out = clips(n), {}
    for device in _devices():
        load_whisper.cache_clear()
        model, processor = load_whisper(whisper, device)
        extractor = TranscriptExtractor(model, processor, whisper, device, max_tokens=max_tokens)
        rate = _timed_batches(extractor, waves, batch_size, device)
        out[f"transcript_{device}_utt_per_s"] = round(rate, 2)
        out["transcript_max_tokens"] = max_tokens
    return out


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="prosody clips")
    parser.add_argument("--n-model", type=int, default=16, help="clips for the codec and Whisper runs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--codec", help="a saved DAC/EnCodec/Mimi directory (default: random DAC 16 kHz)")
    parser.add_argument("--whisper", help="a saved Whisper directory (default: random whisper-tiny dimensions)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--only", choices=["prosody", "reconstruction", "transcript"])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and tiny models: checks the script runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    n, n_model, dac, whisper_dims = args.n, args.n_model, "16khz", "tiny"
    if args.smoke:
        n, n_model, dac, whisper_dims = 4, 2, "test", "test"
    results: dict = {}
    if args.only in (None, "prosody"):
        results.update(bench_prosody(n))
    if args.only in (None, "reconstruction"):
        results.update(bench_reconstruction(n_model, args.batch_size, args.codec, dims=dac))
    if args.only in (None, "transcript"):
        results.update(bench_transcript(n_model, args.batch_size, args.whisper, args.max_tokens, dims=whisper_dims))
    for key, value in results.items():
        print(f"{key} {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
