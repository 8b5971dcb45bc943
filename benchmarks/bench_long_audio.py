"""`cm eval --run R --audio FILE` on long files: peak memory must not grow with duration (issue 29 item 2).

Each size writes one FLAC of that many seconds of noise, and scores it with a
random-initialised LCNN in a fresh process (``_measure.measure``): files over
``evaluation.audio.WHOLE_FILE_MAX_S`` are streamed and scored in windows, so the peak
RSS above the imports should stay flat while the time grows with the duration::

    python benchmarks/bench_long_audio.py --sizes 90,360,1440     # seconds of audio
    python benchmarks/bench_long_audio.py --smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _measure import growth, measure, parse_sized  # noqa: E402


def score_file(run: str, path: str) -> dict:
    """Score one file through the library path of `cm eval --audio` (runs in the measured child)."""
    from cm_cli.evaluation.audio import load_model_for_audio, score_audio

    loaded = load_model_for_audio(run)
    result = score_audio(loaded, [Path(path)])
    row = result.table.iloc[0]
    return {
        "score": float(row["score"]),
        "windows": int(row.get("windows_scored") or 1),
        "failures": len(result.failures),
    }


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import soundfile as sf
    import torch

    from cm_cli.models.checkpoint import save_checkpoint
    from cm_cli.models.model import ModelConfig, build_model

    args, sizes = parse_sized(
        argparse.ArgumentParser(description=__doc__.split("\n\n")[0]),
        argv,
        sizes="90,360,1440",
        smoke="90",
        unit="seconds",
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="cm-long-") as tmp:
        work = Path(tmp)
        torch.manual_seed(0)
        run = work / "run"
        save_checkpoint(run / "checkpoints" / "best.pt", build_model(ModelConfig(backbone="lcnn")))
        rng = np.random.default_rng(0)
        for seconds in sizes:
            path = work / f"long_{seconds}.flac"
            with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as out:
                for _ in range(seconds):  # written a second at a time: the benchmark itself stays small
                    out.write((0.1 * rng.standard_normal(16000)).astype(np.float32))
            m = measure(score_file, str(run), str(path), imports=("torch", "cm_cli.evaluation.audio"))
            row = {
                "seconds_audio": seconds,
                "score_s": m["seconds"],
                "score_peak_rss_mib": m["peak_rss_mib"],
                "score_base_rss_mib": m["base_rss_mib"],
                **m["result"],
            }
            rows.append(row)
            print(
                f"{seconds:6d} s of audio: {m['seconds']:6.1f} s, peak RSS {m['peak_rss_mib']:.0f} MiB "
                f"({m['peak_rss_mib'] - m['base_rss_mib']:.0f} above imports), {row['windows']} windows",
                flush=True,
            )
    for line in growth(rows, "seconds_audio", ["score"], "s of audio"):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
