"""Benchmark `cm degrade` corpus mode (mp3 32 kbps) against a shell loop of ffmpeg encode | ffmpeg decode.

Usage: python benchmarks/bench_degrade.py [--n 200] [--workdir DIR]

Makes N toy-like utterances (16 kHz FLAC, 2-4 s), then times, in the same run:
  * the baseline: `for f in ...; do ffmpeg ... -f mp3 - | ffmpeg -f mp3 -i - out.flac; done`
    with the same ffmpeg binary cm picks for mp3;
  * `cm degrade --manifest M --out DIR --codec mp3 --kbps 32 --workers 1` and `--workers 2`
    (fresh output directories, whole CLI process timed, start-up included).
Prints throughput ratios (goals: >= 0.8x at 1 worker, >= 1.6x at 2) and the peak
resident memory of the largest process, for N and N/4 utterances (it should not grow with N).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from _measure import measure_command

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_corpus(root: Path, n: int) -> Path:
    import numpy as np
    import pandas as pd
    import soundfile as sf

    from cm_cli.core.artifacts import write_parquet
    from cm_cli.degrade.codecs import probe_signal

    audio = root / "flac"
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        path = audio / f"T_{i:010d}.flac"
        if not path.exists():
            sf.write(path, probe_signal(16000, seconds=float(rng.uniform(2, 4)), seed=i), 16000)
        rows.append(
            dict(
                utt_id=path.stem,
                path=str(path),
                label="bonafide",
                attack=None,
                attack_family=None,
                speaker="T_0001",
                split="train",
                corpus="toy",
                codec=None,
                codec_q=None,
                domain="clean",
                duration=None,
                sample_rate=None,
            )
        )
    manifest = root / f"manifest-{n}.parquet"
    write_parquet(pd.DataFrame(rows), manifest)
    return manifest


CPU_USED: dict[str, float] = {}  # command label -> cores busy on average (CPU time / wall time)


def measured(cmd: list[str], env: dict | None = None, *, label: str = "") -> tuple[float, int]:
    """Wall time and peak RSS (MiB) of the largest process in the command's tree.

    Also records the average number of busy cores: the shell baseline's encoder and
    decoder run concurrently in a pipe, so it already keeps more than one core busy,
    which bounds what --workers 2 can gain over it on a 2-core machine.
    """
    m = measure_command(cmd, env)
    if m["result"]["returncode"] != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{m['result']['stderr']}")
    if label:
        CPU_USED[label] = m["cpu_s"] / max(m["seconds"], 1e-9)
    return m["seconds"], int(m["children_peak_rss_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    from cm_cli.degrade.ffmpeg import candidate_binaries, encoders_of

    # the shell-loop baseline needs an ffmpeg binary (cm itself may code in-process through PyAV)
    binary = next(b.path for b in candidate_binaries() if "libmp3lame" in encoders_of(b.path))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_degrade."))
    manifest = make_corpus(work, args.n)
    small = make_corpus(work, max(1, args.n // 4))
    files = sorted((work / "flac").glob("*.flac"))[: args.n]
    env = dict(os.environ, CM_FFMPEG=binary, PYTHONPATH=str(REPO))
    cm = [sys.executable, "-m", "cm_cli"]

    shell_out = work / "shell"
    shell_out.mkdir(exist_ok=True)
    q = shlex.quote
    script = "\n".join(
        f"{q(binary)} -hide_banner -loglevel error -i {q(str(f))} -ac 1 -c:a libmp3lame -b:a 32k -f mp3 - | "
        f"{q(binary)} -hide_banner -loglevel error -y -f mp3 -i - {q(str(shell_out / f.name))}"
        for f in files
    )
    t_shell, rss_shell = measured(["bash", "-c", script], env, label="shell")

    results = {}
    for workers in (1, 2):
        out = work / f"cm-w{workers}"
        results[workers] = measured(
            [
                *cm,
                "--quiet",
                "degrade",
                "--manifest",
                str(manifest),
                "--out",
                str(out),
                "--codec",
                "mp3",
                "--kbps",
                "32",
                "--workers",
                str(workers),
            ],
            env,
            label=f"workers {workers}",
        )
    t_small, rss_small = measured(
        [
            *cm,
            "--quiet",
            "degrade",
            "--manifest",
            str(small),
            "--out",
            str(work / "cm-small"),
            "--codec",
            "mp3",
            "--kbps",
            "32",
            "--workers",
            "1",
        ],
        env,
    )

    n = len(files)
    print(f"utterances: {n} (16 kHz FLAC, 2-4 s), mp3 32 kbps, ffmpeg: {binary}")
    print(
        f"shell loop ffmpeg|ffmpeg : {t_shell:7.2f} s  {n / t_shell:6.1f} utt/s  "
        f"({CPU_USED['shell']:.2f} cores busy of {os.cpu_count()})"
    )
    for workers, (t, rss) in results.items():
        goal = 0.8 if workers == 1 else 1.6
        ratio = t_shell / t
        print(
            f"cm degrade --workers {workers}  : {t:7.2f} s  {n / t:6.1f} utt/s  ratio {ratio:4.2f}x "
            f"(goal >= {goal}x: {'met' if ratio >= goal else 'NOT met'})  peak RSS {rss} MiB  "
            f"{CPU_USED[f'workers {workers}']:.2f} cores busy"
        )
    print(f"peak RSS, workers 1: {results[1][1]} MiB for {n} utterances vs {rss_small} MiB for {max(1, n // 4)}")
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
