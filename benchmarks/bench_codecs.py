"""Benchmark codec round trips (encode + decode + alignment) through PyAV in-process and through ffmpeg binaries.

Usage: python benchmarks/bench_codecs.py [--n 40] [--seconds 4]

On-the-fly codec augmentation codes one utterance per training example, so what matters
is utterances per CPU-second. Each (codec, provider) runs in a fresh interpreter
(benchmarks/_measure.py); after one warm-up call (the delay probe), N utterances of
the given length are coded and the CPU time of the process and of every ffmpeg child
it waited for is counted. Prints utterances per CPU-second for each provider and their ratio.
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


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="utterances per codec and provider")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each utterance")
    args = parser.parse_args(argv)
    rows = []
    print(f"{args.n} utterances of {args.seconds:g} s at 16 kHz per codec; utterances per CPU-second (incl. ffmpeg children)")
    for name, params in CASES:
        got = {p: measure(code_many, p, name, params, args.n, args.seconds, str(REPO))["result"] for p in ("pyav", "cli")}
        row = {"codec": name, "params": params, **{p: got[p] for p in got}}
        if all("utt_per_cpu_s" in got[p] for p in got):
            row["ratio"] = got["pyav"]["utt_per_cpu_s"] / got["cli"]["utt_per_cpu_s"]
            print(f"  {name:7s} pyav {got['pyav']['utt_per_cpu_s']:7.1f}  cli {got['cli']['utt_per_cpu_s']:6.1f}"
                  f"  ratio {row['ratio']:5.1f}x  ({got['pyav']['provider']} vs {got['cli']['provider']})")
        else:
            print(f"  {name:7s} " + "; ".join(got[p].get("skipped", "") for p in got))
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
