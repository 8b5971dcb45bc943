"""The benchmarks keep running: each script's --smoke mode in a subprocess, and the GPU script's ratio arithmetic.

The smoke runs measure nothing worth keeping (tiny model, CPU, one step); they fail when a
library call a benchmark makes has moved or changed, which is how benchmarks rot.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def _run(script: str, tmp_path: Path, *args: str, timeout: int = 600) -> dict | list:
    """``script --json OUT *args`` (``--smoke`` unless args are given) in a subprocess; the JSON it wrote."""
    out = tmp_path / f"{Path(script).stem}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(BENCH / script), "--json", str(out), *(args or ("--smoke",))],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def _load(script: str):
    spec = importlib.util.spec_from_file_location(f"bench_{Path(script).stem}", BENCH / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_gpu_smoke_measures_every_configuration_through_cm(tmp_path):
    result = _run("bench_gpu.py", tmp_path)
    got = {(r["method"], r["trainable"], r["batch"]) for r in result["steps"]}
    assert got == {("erm", "frozen", 2), ("dann", "frozen", 2), ("erm", "top:2", 2), ("dann", "top:2", 2)}
    trained = {(r["method"], r["trainable"]): r["trainable_params"] for r in result["steps"]}
    assert trained[("erm", "frozen")] < trained[("erm", "top:2")]  # top:2 unfreezes two transformer layers
    assert trained[("erm", "frozen")] < trained[("dann", "frozen")]  # plus the domain heads
    for row in result["steps"]:
        assert not row["oom"]
        assert row["step_s"] > 0 and math.isclose(row["utt_per_s"], 2 / row["step_s"])
    assert result["backbone_params"] > 0 and result["world_size"] == 1
    assert set(result["ratios"]["dann_over_erm"]) == {"frozen b2", "top:2 b2"}
    assert set(result["ratios"]["over_frozen"]) == {"erm top:2 b2", "dann top:2 b2"}
    loader = result["loader"]
    assert loader["files"] == 4 and loader["method"] == "dann"
    assert 0.0 <= loader["loader_share"] <= 1.0
    assert loader["fed_utt_per_s"] <= loader["compute_utt_per_s"]
    # the feature-cache path (cm train --features head step) beside the audio path
    assert {(r["method"], r["batch"], r["layers"], r["dim"]) for r in result["features"]} == \
        {("erm", 2, 13, 1536), ("dann", 2, 13, 1536)}
    assert all(math.isclose(r["utt_per_s"], 2 / r["step_s"]) for r in result["features"])


@pytest.mark.gpu
def test_bench_gpu_on_cuda_records_bf16_and_peak_memory(tmp_path):
    """A short real-size run on a CUDA GPU: every configuration steps in bf16 and reports its peak memory."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    result = _run("bench_gpu.py", tmp_path, "--batch-sizes", "16", "--steps", "2", "--warmup", "1",
                  "--loader-batch", "16", "--workers", "2")
    assert result["bf16"] and result["world_size"] == 1
    assert 90e6 < result["backbone_params"] < 100e6  # WavLM Base: 94.4M
    for row in result["steps"]:
        assert not row["oom"] and row["peak_gib"] > 0 and row["utt_per_s"] > 0
    assert 0.0 <= result["loader"]["loader_share"] <= 1.0


def test_bench_gpu_ratios_are_step_time_quotients_of_the_same_run():
    ratios = _load("bench_gpu.py").ratios
    rows = [{"method": m, "trainable": t, "batch": b, "step_s": s} for m, t, b, s in [
        ("erm", "frozen", 32, 0.10), ("dann", "frozen", 32, 0.11), ("erm", "top:2", 32, 0.20),
        ("dann", "top:2", 32, 0.30), ("erm", "frozen", 64, 0.2), ("dann", "frozen", 64, None)]]
    out = ratios(rows)
    assert out["dann_over_erm"] == pytest.approx({"frozen b32": 1.1, "top:2 b32": 1.5})
    assert out["over_frozen"] == pytest.approx({"erm top:2 b32": 2.0, "dann top:2 b32": 30 / 11})


@pytest.mark.slow
def test_bench_eval_smoke_times_plain_and_clustered_bootstrap(tmp_path):
    rows = _run("bench_eval.py", tmp_path)
    assert [(r["trials"], r["bootstrap"]) for r in rows] == [(1000, 0), (1000, 20)]
    plain, boot = rows
    assert plain["n"] == boot["n"] == 1000 and plain["eer"] == boot["eer"]
    assert plain["n_clusters"] is None
    assert boot["unit"] == "source utterance" and boot["n_clusters"] == 250  # 4 trials per source
    assert all(r["peak_rss_mib"] >= r["base_rss_mib"] > 0 for r in rows)


def test_bench_eval_synthetic_table_has_asvspoof5_source_structure():
    frame = _load("bench_eval.py").synthetic_scores(1001)
    assert len(frame) == 1001
    uncoded = frame[frame["codec"] == "-"]
    assert (uncoded["codec_seed"] == "-").all()
    coded = frame[frame["codec"] != "-"]
    assert set(coded["codec_seed"]) <= set(uncoded["utt_id"])  # coded copies point at their source
    assert frame["utt_id"].is_unique
    source_label = dict(zip(uncoded["utt_id"], uncoded["label"]))
    assert (coded["label"] == coded["codec_seed"].map(source_label)).all()  # a copy keeps its source's label
    assert {"bonafide", "spoof"} == set(frame["label"])


@pytest.mark.slow
def test_bench_embed_scale_smoke_writes_one_row_group_and_reads_one_layer(tmp_path):
    (row,) = _run("bench_embed_scale.py", tmp_path)
    assert row["rows"] == row["rows_read"] == 200 and row["dim"] == 768
    assert row["row_groups"] == 1
    assert row["file_bytes"] > 200 * 13 * 768  # float16 random values barely compress
