"""Completions are generated from the app, current, and fast (no heavy imports)."""

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_committed_completions_are_current():
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_completions.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def complete(words: str) -> tuple[list[str], float]:
    env = dict(
        os.environ,
        _CM_COMPLETE="complete_bash",
        COMP_WORDS=words,
        COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "cm_cli"], env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    return out.stdout.split(), elapsed


def test_completes_commands_presets_and_corpora():
    commands, _ = complete("cm ")
    assert {"download", "manifest", "presets"} <= set(commands)
    presets, _ = complete("cm presets show toy_")
    assert "toy_manifest_subset" in presets
    corpora, _ = complete("cm manifest --corpus asv")
    assert "asvspoof5" in corpora and "toy" not in corpora
    corpora, _ = complete("cm download t")
    assert corpora == ["toy"]


def test_completion_does_not_import_heavy_libraries():
    code = (
        "import os, sys\n"
        "os.environ.update(_CM_COMPLETE='complete_bash', COMP_WORDS='cm presets show ', COMP_CWORD='3')\n"
        "from cm_cli.app import main\n"
        "try:\n    main([])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'sklearn', 'matplotlib', 'scipy') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
