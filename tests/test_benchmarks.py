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
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--json", str(out), *(args or ("--smoke",))],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def _load(script: str):
    if str(BENCH) not in sys.path:  # the scripts import their shared helper, benchmarks/_measure.py
        sys.path.insert(0, str(BENCH))
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
    assert {(r["method"], r["batch"], r["layers"], r["dim"]) for r in result["features"]} == {
        ("erm", 2, 13, 1536),
        ("dann", 2, 13, 1536),
    }
    assert all(math.isclose(r["utt_per_s"], 2 / r["step_s"]) for r in result["features"])


@pytest.mark.gpu
def test_bench_gpu_on_cuda_records_bf16_and_peak_memory(tmp_path):
    """A short real-size run on a CUDA GPU: every configuration steps in bf16 and reports its peak memory."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    result = _run(
        "bench_gpu.py",
        tmp_path,
        "--batch-sizes",
        "16",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--loader-batch",
        "16",
        "--workers",
        "2",
    )
    assert result["bf16"] and result["world_size"] == 1
    assert 90e6 < result["backbone_params"] < 100e6  # WavLM Base: 94.4M
    for row in result["steps"]:
        assert not row["oom"] and row["peak_gib"] > 0 and row["utt_per_s"] > 0
    assert 0.0 <= result["loader"]["loader_share"] <= 1.0


def test_bench_gpu_ratios_are_step_time_quotients_of_the_same_run():
    ratios = _load("bench_gpu.py").ratios
    rows = [
        {"method": m, "trainable": t, "batch": b, "step_s": s}
        for m, t, b, s in [
            ("erm", "frozen", 32, 0.10),
            ("dann", "frozen", 32, 0.11),
            ("erm", "top:2", 32, 0.20),
            ("dann", "top:2", 32, 0.30),
            ("erm", "frozen", 64, 0.2),
            ("dann", "frozen", 64, None),
        ]
    ]
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


def _run_printed(script: str, tmp_path: Path, *args: str) -> tuple[dict | list, str]:
    """``_run`` that also returns what the script printed."""
    out = tmp_path / f"{Path(script).stem}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--json", str(out), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text()), proc.stdout


def test_measure_reports_a_fresh_process_peak_and_its_children(tmp_path):
    """A child that allocates 200 MiB peaks at least that far above its post-import RSS; a command's CPU counts."""
    measure = _load("_measure.py")
    script = tmp_path / "probe.py"
    script.write_text(
        "import numpy as np\n\ndef grow(mib):\n    a = np.ones(mib * 2**20, dtype=np.uint8)\n"
        "    return int(a.sum() // 2**20)\n"
    )
    spec = importlib.util.spec_from_file_location("probe", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    m = measure.measure(module.grow, 200, imports=("numpy",))
    assert m["result"] == 200
    assert m["peak_rss_mib"] - m["base_rss_mib"] >= 190
    assert m["seconds"] > 0 and m["cpu_s"] > 0
    c = measure.measure_command([sys.executable, "-c", "sum(range(3_000_000))"])
    assert c["result"]["returncode"] == 0 and c["children_peak_rss_mib"] > 0 and c["cpu_s"] > 0
    failed = measure.measure_command([sys.executable, "-c", "import sys; sys.exit('planted failure')"])
    assert failed["result"] == {"returncode": 1, "stderr": "planted failure\n"}
    rows = [
        {"n": 10, "a_s": 1.0, "a_peak_rss_mib": 110.0, "a_base_rss_mib": 100.0},
        {"n": 100, "a_s": 5.0, "a_peak_rss_mib": 130.0, "a_base_rss_mib": 100.0},
    ]
    assert measure.growth(rows, "n", ("a",), "rows") == [
        "growth 10 -> 100 rows (10.0x): a time 5.0x, memory above imports 3.0x"
    ]


@pytest.mark.slow
def test_bench_manifest_smoke_times_parse_build_rerun_and_pandas(tmp_path):
    rows, printed = _run_printed("bench_manifest.py", tmp_path, "--sizes", "500,1000")
    assert [r["rows"] for r in rows] == [500, 1000]
    for r in rows:
        for stage in ("parse", "build", "rerun", "pandas"):
            assert r[f"{stage}_s"] > 0 and r[f"{stage}_peak_rss_mib"] >= r[f"{stage}_base_rss_mib"] > 0
    lines = printed.splitlines()
    assert lines[0].split()[:3] == ["rows", "parse", "s"]
    assert any(line.startswith("1000 rows: cm parse / bare pandas") and "rerun" in line for line in lines)
    assert any(line.startswith("growth 500 -> 1000 rows (2.0x): parse time") for line in lines)


@pytest.mark.slow
def test_bench_codecs_neural_smoke_compares_one_per_call_with_real_batches(tmp_path):
    """The corpus-mode ratio is batched against one utterance per call: each run's calls are counted."""
    rows = _run("bench_codecs.py", tmp_path)
    assert [r["codec"] for r in rows] == ["encodec", "dac", "mimi"]
    for r in rows:
        assert r["corpus_calls_one"] == [1] * r["n"] and r["corpus_calls_batched"] == [r["n"]]
        assert r["corpus_speedup"] == pytest.approx(r["corpus_one_s"] / r["corpus_batched_s"])
        assert r["default_batch_size"] == 1  # CPU


@pytest.mark.slow
def test_bench_validate_smoke_probes_per_size_and_method(tmp_path):
    rows, printed = _run_printed("bench_validate.py", tmp_path, "--sizes", "50,100", "--workdir", str(tmp_path / "w"))
    assert [r["files"] for r in rows] == [50, 100]
    assert len(list((tmp_path / "w" / "flac").glob("*.flac"))) == 100  # written once, for the largest size
    for r in rows:
        for method in ("bare", "workers1", "workers2"):
            assert r[f"{method}_s"] > 0 and r[f"{method}_peak_rss_mib"] >= r[f"{method}_base_rss_mib"] > 0
    assert "100 files: --workers 1" in printed
    assert "growth 50 -> 100 files (2.0x): bare time" in printed


@pytest.mark.slow
def test_bench_loader_smoke_covers_sizes_seek_overlap_and_augmentation(tmp_path):
    result, printed = _run_printed("bench_loader.py", tmp_path, "--smoke")
    assert [(r["rows"], r["seen"]) for r in result["sizes"]] == [(24, 24), (48, 48)]  # every row reaches a batch
    assert all(r["loader_peak_rss_mib"] >= r["loader_base_rss_mib"] > 0 for r in result["sizes"])
    assert "growth 24 -> 48 rows (2.0x): loader time" in printed
    assert result["seek"]["files"] == 12
    assert set(result["overlap"]) == {"workers_0_utt_per_s", "workers_2_utt_per_s"}
    aug = result["augmentation"]
    modes = ("clean", "on_the_fly_cold", "on_the_fly_warm", "pre_rendered")
    for mode in modes:
        assert aug[mode]["utt"] == 4 and aug[mode]["failed"] == 0 and aug[mode]["cpu_s"] > 0
        assert sum(aug[mode]["conditions"].values()) == 4
    assert aug["clean"]["over_clean"] == 1.0 and aug["clean"]["conditions"] == {"clean": 4}
    assert aug["on_the_fly_cold"]["conditions"] == aug["on_the_fly_warm"]["conditions"]  # same epoch, same draws
    assert aug["render_failed"] == 0 and aug["render_cpu_s_per_variant"] > 0
    assert aug["cache_bytes_per_utt"] >= 0 and aug["cache_files"] >= 0  # what is cached is the training code's choice
    header = next(line for line in printed.splitlines() if line.split()[:2] == ["mode", "utt"])
    assert header.split()[2:6] == ["CPU", "s", "wall", "s"]
    for mode in modes:
        assert any(line.split()[:1] == [mode] for line in printed.splitlines())


def test_gpu_session_script_records_the_machine_and_runs_the_benchmark(tmp_path):
    """The prepared device-machine run (benchmarks/gpu_session.sh); without CUDA it takes bench_gpu's smoke path."""
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(repo / "benchmarks" / "gpu_session.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    machine = (tmp_path / "out" / "machine.txt").read_text()
    assert "torch" in machine and "cuda" in machine
    result = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert result["steps"] and all(row["utt_per_s"] > 0 for row in result["steps"])


@pytest.mark.slow
def test_gpu_session_codecs_part_runs_the_neural_codec_benchmark(tmp_path):
    """``gpu_session.sh codecs`` (issue 25's GPU check); without CUDA it takes bench_codecs' smoke path."""
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    script = str(repo / "benchmarks" / "gpu_session.sh")
    done = subprocess.run(["bash", script, "codecs"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "out" / "codecs.json").read_text())
    assert {r["codec"] for r in rows} == {"encodec", "dac", "mimi"}
    assert not (tmp_path / "out" / "gpu.json").exists()  # only the part asked for
    wrong = subprocess.run(["bash", script, "codec"], env=env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown part 'codec'" in wrong.stderr
