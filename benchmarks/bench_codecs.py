"""Benchmark codec round trips: FFmpeg codecs (PyAV in-process vs ffmpeg binaries) and neural codecs (batched).

Usage: python benchmarks/bench_codecs.py [--n 40] [--seconds 4]
       python benchmarks/bench_codecs.py --neural [--size full|tiny] [--n 16] [--seconds 2] [--device cpu|cuda]

On-the-fly codec augmentation codes one utterance per training example, so what matters
is utterances per CPU-second. Each (codec, provider) runs in a fresh interpreter
(benchmarks/_measure.py); after one warm-up call (the delay probe), N utterances of
the given length are coded and the CPU time of the process and of every ffmpeg child
it waited for is counted. Prints utterances per CPU-second for each provider and their ratio.

``--neural``: encodec, dac and mimi, each built from its published architecture (``--size full``: the
configurations of facebook/encodec_24khz, descript/dac_16khz and kyutai/mimi, random weights, which cost
the same compute as the trained ones; ``tiny`` for a smoke run) and saved with save_pretrained, so no
download is needed. Per codec: the real-time factor (wall seconds per second of audio) of one utterance
per call and of one batched call, and the corpus-mode ratio: ``cm degrade``'s corpus path
(``degrade_manifest``, one process) with chunks of ``neural_batch.BATCH_SIZE`` against the same path
with one utterance per call (``--batch-size 1``, the CPU default); the utterances per model call of
both runs are recorded, so a run that did not batch as asked shows it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _measure import measure

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = [("mp3", {"kbps": 32}), ("opus", {"kbps": 16, "band": "wb"}), ("m4a", {"kbps": 48}), ("amr-nb", {"kbps": 12.2})]


def code_many(provider: str, name: str, params: dict, n: int, seconds: float, repo: str) -> dict:
    """Code n utterances with ``provider`` ('pyav' or 'cli'); CPU seconds of this process and its children."""
    import resource

    sys.path.insert(0, repo)
    from cm_cli.degrade import ffmpeg
    from cm_cli.degrade.codecs import codec_provider, encode_decode, probe_signal

    if provider == "cli":
        ffmpeg.pyav_provider = lambda: None  # as on a machine without av: the binaries serve
    found = codec_provider(name)
    if found is None:
        return {"skipped": f"no {provider} provider has an encoder for {name}"}
    x = probe_signal(16000, seconds=seconds, seed=3)
    encode_decode(x, 16000, name, params)  # warm-up: measures and caches the delay

    def cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    start = cpu()
    for i in range(n):
        encode_decode(x if i % 2 else -x, 16000, name, params)
    used = cpu() - start
    return {"provider": found[0].path, "encoder": found[1], "cpu_s": used, "utt_per_cpu_s": n / used}


def _config(name: str, size: str):
    """The published architecture of each codec (transformers' defaults are those models' configurations)."""
    import transformers

    if name == "encodec":
        if size == "full":
            return transformers.EncodecConfig()  # = facebook/encodec_24khz
        return transformers.EncodecConfig(
            hidden_size=8,
            num_filters=2,
            num_residual_layers=1,
            num_lstm_layers=1,
            codebook_size=1024,
            codebook_dim=8,
            upsampling_ratios=[8, 5, 4, 2],
        )
    if name == "dac":
        if size == "full":  # descript/dac_16khz: 12 codebooks, hop 320
            return transformers.DacConfig(
                encoder_hidden_size=64,
                downsampling_ratios=[2, 4, 5, 8],
                decoder_hidden_size=1536,
                n_codebooks=12,
                codebook_size=1024,
                codebook_dim=8,
                sampling_rate=16000,
            )
        return transformers.DacConfig(
            encoder_hidden_size=8,
            downsampling_ratios=[2, 4, 5, 8],
            decoder_hidden_size=32,
            n_codebooks=4,
            codebook_size=64,
            codebook_dim=4,
            sampling_rate=16000,
        )
    if size == "full":
        return transformers.MimiConfig()  # = kyutai/mimi
    return transformers.MimiConfig(
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[8, 6, 5, 4],
        codebook_size=64,
        codebook_dim=16,
        num_quantizers=8,
        vector_quantization_hidden_dimension=16,
        upsample_groups=16,
        num_hidden_layers=1,
        intermediate_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=50,
        max_position_embeddings=500,
    )


def neural_case(name: str, size: str, n: int, seconds: float, device: str, folder: str, repo: str) -> dict:
    """Real-time factors of one utterance per call vs one batch, and corpus mode batched vs chunks of one."""
    import time

    import pandas as pd
    import soundfile as sf
    import torch
    import transformers

    sys.path.insert(0, repo)
    from cm_cli.core.artifacts import write_parquet
    from cm_cli.degrade import neural, neural_batch
    from cm_cli.degrade.codecs import probe_signal
    from cm_cli.degrade.corpus import degrade_manifest

    torch.manual_seed(0)
    model_dir = Path(folder) / f"{name}_{size}"
    getattr(transformers, neural.CODECS[name].model_class)(_config(name, size)).save_pretrained(model_dir)
    neural.set_encodec_device(device)
    codec = neural.load_codec(name, model=str(model_dir), device=device)
    signals = [probe_signal(16000, seconds=seconds, seed=i) for i in range(n)]
    level = codec.default_level()
    codec.code_batch(signals[:2], 16000, level)  # warm-up (allocations, kernels)

    def timed(fn) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    single = timed(lambda: [codec.code_batch([x], 16000, level) for x in signals])
    batched = timed(lambda: codec.code_batch(signals, 16000, level, per_call=len(signals)))
    audio_s = n * seconds
    root = Path(folder) / f"corpus_{name}"
    (root / "audio").mkdir(parents=True)
    rows = []
    for i, x in enumerate(signals):
        sf.write(root / "audio" / f"U{i:04d}.flac", x, 16000)
        rows.append(
            dict(
                utt_id=f"U{i:04d}",
                path=str(root / "audio" / f"U{i:04d}.flac"),
                label="bonafide",
                attack=None,
                attack_family=None,
                speaker="S",
                split="eval",
                corpus="toy",
                codec=None,
                codec_q=None,
                domain="clean",
                duration=None,
                sample_rate=None,
            )
        )
    write_parquet(pd.DataFrame(rows), root / "manifest.parquet")
    spec = f"{name}:model={model_dir}"
    batch = neural_batch.BATCH_SIZE
    calls: list[int] = []  # utterances per model call, so a run that did not batch as asked shows it

    padded = type(codec)._code_padded

    def counted(self, signals, sr, level):
        calls.append(len(signals))
        return padded(self, signals, sr, level)

    type(codec)._code_padded = counted

    def corpus(out: str, batch_size: int) -> tuple[float, list[int]]:
        calls.clear()
        seconds = timed(
            lambda: degrade_manifest(
                root / "manifest.parquet", root / out, specs=[spec], workers=1, batch_size=batch_size
            )
        )
        return seconds, list(calls)

    one_by_one, one_calls = corpus("one", 1)
    chunked, batch_calls = corpus("batched", batch)
    type(codec)._code_padded = padded
    return {
        "codec": name,
        "size": size,
        "device": device,
        "n": n,
        "seconds": seconds,
        "level": level,
        "rtf_single": single / audio_s,
        "rtf_batched": batched / audio_s,
        "batch_speedup": single / batched,
        "corpus_one_s": one_by_one,
        "corpus_batched_s": chunked,
        "corpus_speedup": one_by_one / chunked,
        "batch_size": batch,
        "corpus_calls_one": one_calls,
        "corpus_calls_batched": batch_calls,
        "default_batch_size": neural_batch.default_batch_size(device),
        "threads": torch.get_num_threads(),
    }


def neural_main(args) -> list[dict]:
    import tempfile

    rows = []
    print(f"{args.n} utterances of {args.seconds:g} s; {args.size} models on {args.device}; RTF = wall s per audio s")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.codecs.split(","):
            row = measure(neural_case, name, args.size, args.n, args.seconds, args.device, folder, str(REPO))["result"]
            rows.append(row)
            print(
                f"  {name:8s} RTF one/call {row['rtf_single']:.4f}  batched {row['rtf_batched']:.4f}"
                f"  ({row['batch_speedup']:.2f}x)   corpus mode {row['corpus_one_s']:.2f} s -> "
                f"{row['corpus_batched_s']:.2f} s ({row['corpus_speedup']:.2f}x; default here: "
                f"{row['default_batch_size']} per call)"
            )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="utterances per codec and provider")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each utterance")
    parser.add_argument("--neural", action="store_true", help="benchmark the neural codecs instead")
    parser.add_argument("--codecs", default="encodec,dac,mimi", help="--neural: which neural codecs")
    parser.add_argument("--size", choices=("full", "tiny"), default="full", help="--neural: architecture size")
    parser.add_argument("--device", default="cpu", help="--neural: torch device")
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--smoke", action="store_true", help="tiny neural models, 4 short utterances")
    args = parser.parse_args(argv)
    if args.smoke:
        args.neural, args.size, args.n, args.seconds = True, "tiny", 4, 0.5
    if args.neural:
        rows = neural_main(args)
        if args.json:
            import json

            args.json.write_text(json.dumps(rows, indent=1))
        return rows
    rows = []
    print(
        f"{args.n} utterances of {args.seconds:g} s at 16 kHz per codec; "
        "utterances per CPU-second (incl. ffmpeg children)"
    )
    for name, params in CASES:
        got = {
            p: measure(code_many, p, name, params, args.n, args.seconds, str(REPO))["result"] for p in ("pyav", "cli")
        }
        row = {"codec": name, "params": params, **{p: got[p] for p in got}}
        if all("utt_per_cpu_s" in got[p] for p in got):
            row["ratio"] = got["pyav"]["utt_per_cpu_s"] / got["cli"]["utt_per_cpu_s"]
            print(
                f"  {name:7s} pyav {got['pyav']['utt_per_cpu_s']:7.1f}  cli {got['cli']['utt_per_cpu_s']:6.1f}"
                f"  ratio {row['ratio']:5.1f}x  ({got['pyav']['provider']} vs {got['cli']['provider']})"
            )
        else:
            print(f"  {name:7s} " + "; ".join(got[p].get("skipped", "") for p in got))
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
