"""Benchmark `cm embed`: overhead outside the model forward, batched vs one-at-a-time, peak memory, GPU rate.

CPU part: a random-init wav2vec 2.0 Base-shaped model (no download) on N synthetic
toy-like utterances (1.0-2.5 s). Prints `name value` lines only. With CUDA present,
also a random-init WavLM Base in bf16 on 4-second utterances (utterances/s).

    python benchmarks/bench_embed.py [--n 200] [--batch-size 8] [--gpu-n 512]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _measure import measure, rss_mib


class PeakRSS:
    """Samples the resident set every 20 ms; ``peak - start`` is the run's extra memory."""

    def __enter__(self):
        self.start = self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def make_corpus(root: Path, n: int, *, seconds: tuple[float, float], seed: int = 0) -> Path:
    import pandas as pd
    import soundfile as sf

    from cm_cli.core.artifacts import write_parquet
    from cm_cli.data.manifest import normalise_manifest

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        length = int(16000 * rng.uniform(*seconds))
        t = np.arange(length) / 16000
        wave = 0.1 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.02 * rng.standard_normal(length)
        path = root / f"b{i:04d}.flac"
        sf.write(path, wave.astype("float32"), 16000)
        rows.append(
            {
                "utt_id": f"b{i:04d}",
                "path": str(path),
                "label": "bonafide",
                "speaker": "s",
                "split": "eval",
                "corpus": "toy",
                "domain": "clean",
                "duration": length / 16000,
            }
        )
    manifest = root / "manifest.parquet"
    write_parquet(normalise_manifest(pd.DataFrame(rows)), manifest)
    return manifest


def save_random(kind: str, directory: Path) -> Path:
    import torch

    from cm_cli.models.ssl import import_transformers_quiet

    transformers = import_transformers_quiet()
    config = transformers.WavLMConfig() if kind == "wavlm" else transformers.Wav2Vec2Config()
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(directory)
    return directory


def run(manifest: Path, out: Path, model, *, batch_size: int, device: str, **kw) -> dict:
    from cm_cli.embedding import embed_manifest

    with PeakRSS() as mem:
        start = time.perf_counter()
        result = embed_manifest(
            manifest, out, backbone=model.backbone, batch_size=batch_size, device=device, model=model, force=True, **kw
        )
        wall = time.perf_counter() - start
    s = result.summary
    return {
        "wall_s": wall,
        "forward_s": s["forward_seconds"],
        "n": result.n_rows,
        "utt_per_s": result.n_rows / wall,
        "peak_extra_rss_mb": mem.peak - mem.start,
    }


def _fresh_maxrss(n: int, batch_size: int) -> float:
    """Peak RSS (MB) of a fresh process that embeds ``n`` utterances: flat in n when memory is bounded by the batch."""
    return measure(_mem_probe, n, batch_size)["peak_rss_mib"]


def _mem_probe(n: int, batch_size: int) -> None:
    from cm_cli.embedding import resolve_embed_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = make_corpus(root, n, seconds=(1.0, 2.5))
        model = resolve_embed_model(str(save_random("w2v2", root / "m")))
        run(manifest, root / "out", model, batch_size=batch_size, device="cpu")


def main() -> None:
    import torch

    from cm_cli.embedding import resolve_embed_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--gpu-n", type=int, default=512)
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.skip_cpu:
            (root / "audio").mkdir()
            manifest = make_corpus(root / "audio", args.n, seconds=(1.0, 2.5))
            model = resolve_embed_model(str(save_random("w2v2", root / "w2v2-base")))
            print(f"cpu_threads {torch.get_num_threads()}")
            print(f"utterances {args.n}")
            batched = run(manifest, root / "batched", model, batch_size=args.batch_size, device="cpu")
            single = run(manifest, root / "single", model, batch_size=1, device="cpu")
            for name, r in (("batched", batched), ("one_at_a_time", single)):
                print(f"{name}_wall_s {r['wall_s']:.2f}")
                print(f"{name}_utt_per_s {r['utt_per_s']:.2f}")
                print(f"{name}_share_outside_forward {1 - r['forward_s'] / r['wall_s']:.3f}")
                print(f"{name}_peak_extra_rss_mb {r['peak_extra_rss_mb']:.0f}")
            print(f"batched_speedup_vs_one_at_a_time {single['wall_s'] / batched['wall_s']:.2f}")
            for n in (max(args.n // 8, args.batch_size), max(args.n // 2, args.batch_size)):
                print(f"maxrss_mb_fresh_process_n{n} {_fresh_maxrss(n, args.batch_size):.0f}")
        if torch.cuda.is_available():
            (root / "gpu").mkdir()
            manifest = make_corpus(root / "gpu", args.gpu_n, seconds=(4.0, 4.0))
            model = resolve_embed_model(str(save_random("wavlm", root / "wavlm-base")))
            run(manifest, root / "warm", model, batch_size=32, device="cuda", layers="0")  # warm-up
            torch.cuda.reset_peak_memory_stats()
            r = run(manifest, root / "gpu_out", model, batch_size=32, device="cuda", amp="bf16")
            print(f"gpu {torch.cuda.get_device_name(0).replace(' ', '_')}")
            print(f"gpu_wavlm_base_bf16_4s_utt_per_s {r['utt_per_s']:.1f}")
            print(f"gpu_wavlm_base_bf16_4s_share_outside_forward {1 - r['forward_s'] / r['wall_s']:.3f}")
            print(f"gpu_peak_alloc_mb {torch.cuda.max_memory_allocated() / 2**20:.0f}")


if __name__ == "__main__":
    main()
