"""The README is a test (issue 31): its set-up and quick-tour command blocks run as written.

The tour's ```bash block is run line by line, in order, in an empty working directory with
no cm environment variables (so the default ``./data`` and the paths the README names are
used), each line through bash with this checkout's ``cm`` first on PATH. The set-up block
installs with pip, which a test must not do to the shared environment: its test command is
checked to be exactly what .ci/run runs (which installs and runs it on every CI run), and
its ``cm`` command is resolved with ``--dry-run``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TOUR_BUDGET_S = 600  # the whole tour takes about two minutes on a quiet 2-core CPU; a loaded CI box gets slack


def bash_blocks(section: str) -> list[list[str]]:
    """The ```bash blocks of one README section (## heading), each as its commands (continuations joined)."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match, f"README has no section {section!r}"
    blocks = []
    for body in re.findall(r"^```bash\n(.*?)^```", match.group(1), flags=re.S | re.M):
        commands, pending = [], ""
        for line in body.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            command = (pending + line).strip()
            pending = ""
            if command and not command.startswith("#"):
                commands.append(command)
        blocks.append(commands)
    return blocks


def _env(workdir: Path) -> dict[str, str]:
    """A newcomer's shell: no cm variables, this checkout's cm on PATH and importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_") and k not in ("RUNS_DIR", "ASVSPOOF5_ROOT")}
    bin_dir = workdir / ".bin"
    bin_dir.mkdir(exist_ok=True)
    cm = bin_dir / "cm"
    cm.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m cm_cli.app "$@"\n')
    cm.chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def test_setup_block_is_what_ci_runs_and_its_cm_command_resolves(tmp_path):
    blocks = bash_blocks("Set-up")
    commands = [c for block in blocks for c in block]
    main, tests = commands[0], commands[1]
    assert main.startswith("pip install -e . && cm demo "), main
    assert tests == 'pip install -e ".[dev]" && python -m pytest -q', tests
    ci = [
        re.sub(r"python -m pip install( -q| --disable-pip-version-check)*", "pip install", line)
        for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    ]
    assert tests in ci  # CI runs the README's test command (quiet pip flags aside)
    cm_part = main.split("&&", 1)[1].strip()
    argv = shlex.split(cm_part)
    done = subprocess.run(
        ["cm", "--dry-run", *argv[1:]], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_tour_lines_name_only_what_the_tour_makes():
    """Each path a tour line reads was written by an earlier line (or is the toy corpus itself)."""
    (tour,) = bash_blocks("A quick tour")
    made = {"data/toy"}
    for line in tour:
        words = shlex.split(line.split("#", 1)[0])
        for flag in ("--out",):
            if flag in words:
                made.add(words[words.index(flag) + 1])
        if words[:2] == ["cm", "degrade"] and len(words) > 3 and not words[2].startswith("-"):
            made.add(words[3])
        reads = [w for w in words[2:] if "/" in w and not w.startswith("-") and w not in made and ":" not in w]
        for path in reads:
            assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in made), (line, path)


@pytest.mark.slow
def test_quick_tour_runs_as_written(tmp_path):
    (tour,) = bash_blocks("A quick tour")
    env = _env(tmp_path)
    start = time.perf_counter()
    timings = []
    for line in tour:
        t0 = time.perf_counter()
        done = subprocess.run(
            ["bash", "-c", "set -o pipefail; " + line],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TOUR_BUDGET_S,
        )
        timings.append((round(time.perf_counter() - t0, 1), line[:60]))
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, done.stderr
    elapsed = time.perf_counter() - start
    print("\n".join(f"{t:7.1f} s  {what}" for t, what in timings))
    assert elapsed < TOUR_BUDGET_S, timings
    # what the tour promises it leaves behind
    for path in (
        "tour/m/manifest.parquet",
        "tour/call.flac",
        "tour/dann/checkpoints/best.pt",
        "tour/dann/eval/metrics.json",
        "tour/dann/sweep/sweep.parquet",
        "tour/dann/emb",
        "tour/probe/probes.parquet",
        "tour/loao/loao.parquet",
        "tour/cka/cka.parquet",
        "tour/patch/patching.parquet",
        "tour/report/report.html",
    ):
        assert (tmp_path / path).exists(), path
    assert not (tmp_path / "runs").exists()  # the tour writes under tour/ only, so `cm report tour` sees only it
