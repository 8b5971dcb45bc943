"""Help readable at 80 columns (issue 31): no description or choice list cut with an ellipsis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def help_text(*args: str, columns: int = 80) -> str:
    env = dict(os.environ, COLUMNS=str(columns), TERMINAL_WIDTH=str(columns))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "-m", "cm_cli.app", *args, "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("command", ["train", "eval", "degrade", "report", "doctor"])
def test_help_at_80_columns_cuts_nothing(command):
    text = help_text(command)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text, [line for line in text.splitlines() if "…" in line]


def _type_column(text: str, option: str) -> str:
    """The <...> type cell of one option, its folded lines joined (the cell sits at fixed character columns)."""
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if f" {option} " in line)
    start = lines[row].index("<", lines[row].index(option))
    width = lines[row].index("  ", start) - start
    cell = ""
    for line in lines[row:]:
        cell += line[start : start + width].strip()
        if cell.endswith(">"):
            return cell
    raise AssertionError(f"no end of the type cell of {option}")


def test_choices_are_listed_in_full():
    from cm_cli.data.manifest import CORPORA
    from cm_cli.training.methods import method_names

    text = help_text("train")
    assert _type_column(text, "--method") == "<" + "|".join(method_names()) + ">"
    assert _type_column(text, "--corpus") == "<" + "|".join(CORPORA) + ">"
