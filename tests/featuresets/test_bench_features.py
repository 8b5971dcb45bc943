"""benchmarks/bench_features.py keeps running (its --smoke mode: tiny models, a few clips)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_features_smoke(tmp_path):
    out = tmp_path / "bench.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
    }
    script = REPO / "benchmarks" / "bench_features.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke", "--json", str(out)],
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["prosody_utt_per_s_cpu"] > 0 and result["reconstruction_cpu_utt_per_s"] > 0
    assert result["transcript_cpu_utt_per_s"] > 0 and result["reconstruction_bitrates_kbps"] == "8,32"
