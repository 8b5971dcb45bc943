"""Library errors speak of files and values; the command layer names the flag (issue 28 item 4).

The guard reads every library module with ``ast`` (everything under ``cm_cli/`` but ``commands/``, ``app.py`` and
``__main__.py``) and fails on a string given to ``CmError``/``UsageError`` that names a command-line flag. The library
names the parameter instead (``CmError(msg, hint, option="out")``) and ``commands._common.with_flags`` adds the flag.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cm_cli.commands._common import with_flags
from cm_cli.core.artifacts import OutputDir
from cm_cli.core.errors import CmError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cm_cli"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
# a whole cm command line in backquotes is a step to run elsewhere (`cm download --model wavlm`): its flags belong to
# that command, which the user types as written, not to a parameter of the failing call
COMMAND_LINE = re.compile(r"`cm [^`]*`")
ERRORS = ("CmError", "UsageError")

# (module, flag) pairs where the flag is genuinely the domain; keep this list short and say why for each
ALLOWED = {
    # torchrun's own flag: resuming needs the launcher started with as many processes as the run had, and no cm
    # parameter sets that
    ("training/state.py", "--nproc-per-node"),
}

# modules still naming flags, converted by their owner after a merge (issue 28). A module that no longer names a flag
# must leave this list (test_pending_modules_still_need_converting), so the list only shrinks; it is empty now.
PENDING: tuple[str, ...] = ()


def library_modules() -> list[str]:
    """Every module of the library floors, relative to ``cm_cli/`` (the command layer is where flags belong)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if not (name.startswith("commands/") or name in ("app.py", "__main__.py")):
            found.append(name)
    return found


def _texts(node: ast.AST) -> list[str]:
    """The strings in an expression; an f-string's fields read as ``xx`` so ``f"--{name}"`` still looks like a flag."""
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else "xx" for v in node.values)]
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else []
    return [text for child in ast.iter_child_nodes(node) for text in _texts(child)]


def _is_error_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return name in ERRORS


def _is_hint_assignment(node: ast.AST) -> bool:
    """``hint = "..."`` / ``_HINT = "..."``: one hint string prepared before the raise that uses it (a table of
    report texts, such as ``report/sections_eval.HINTS``, is not an error hint)."""
    return (
        isinstance(node, ast.Assign)
        and isinstance(node.value, (ast.Constant, ast.JoinedStr, ast.BinOp))
        and any(isinstance(target, ast.Name) and "hint" in target.id.lower() for target in node.targets)
    )


def flags_in_errors(path: Path) -> list[tuple[int, str]]:
    """(line, flag) for each flag named by a string given to ``CmError``/``UsageError`` (or assigned to a ``hint``
    variable) in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if _is_error_call(node) or _is_hint_assignment(node):
            arguments = [node.value] if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.Call):
                arguments = [*node.args, *(k.value for k in node.keywords if k.arg != "option")]
            for text in (t for argument in arguments for t in _texts(argument)):
                found += [(node.lineno, flag) for flag in FLAG.findall(COMMAND_LINE.sub("", text))]
    return found


def named_options(path: Path) -> list[tuple[int, str]]:
    """(line, name) for each constant ``option=`` name given to ``CmError``/``UsageError`` in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if _is_error_call(node):
            for keyword in (k for k in node.keywords if k.arg == "option"):
                values = keyword.value.elts if isinstance(keyword.value, ast.Tuple) else [keyword.value]
                found += [(node.lineno, v.value) for v in values if isinstance(v, ast.Constant)]
    return found


@pytest.mark.parametrize("module", [m for m in library_modules() if m not in PENDING])
def test_library_errors_name_no_flags(module):
    flagged = [(line, flag) for line, flag in flags_in_errors(PACKAGE / module) if (module, flag) not in ALLOWED]
    assert flagged == [], f"name the parameter with option=... instead of the flag: {flagged}"


def test_pending_modules_still_need_converting():
    converted = [m for m in PENDING if not (PACKAGE / m).exists() or not flags_in_errors(PACKAGE / m)]
    assert converted == [], f"no flag left in {converted}: take them off PENDING so the guard covers them"


def test_allowed_flags_are_still_used():
    for module, flag in ALLOWED:
        assert flag in [f for _, f in flags_in_errors(PACKAGE / module)], (module, flag)


def test_every_named_option_is_a_flag_of_the_cli():
    import click
    import typer.main

    from cm_cli.app import app

    def flags(command: click.Command) -> set[str]:
        names = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for sub in getattr(command, "commands", {}).values():
            names |= flags(sub)
        return names

    known = flags(typer.main.get_command(app))
    unknown = [
        (module, line, name)
        for module in library_modules()
        for line, name in named_options(PACKAGE / module)
        if "--" + name.replace("_", "-") not in known
    ]
    assert unknown == [], f"with_flags would print a flag no command has: {unknown}"


def test_the_scan_sees_planted_flags(tmp_path):
    planted = tmp_path / "m.py"
    planted.write_text(
        "def f():\n"
        '    raise CmError("bad value", f"use --out {1}")\n'
        "def g():\n"
        '    raise CmError("x-y--z", "run `cm download --model wavlm` first", option="out")\n'
        "def h(name):\n"
        "    raise errors.UsageError(f\"--{name.replace('_', '-')} must be positive\")\n"
        "def k():\n"
        '    error = CmError("no --flag here?", hint="see " + "--force")\n'
        '    return ValueError("--not-a-cm-error")\n'
        '_HINT = "pass --shard I/N"\n'
        'usage = "--not-a-hint"\n'
    )
    found = sorted(flags_in_errors(planted))
    assert found == [(2, "--out"), (6, "--xx"), (8, "--flag"), (8, "--force"), (10, "--shard")]
    assert named_options(planted) == [(4, "out")]


def test_the_command_layer_adds_the_flags(tmp_path):
    with OutputDir(tmp_path / "o", "scores", options={"a": 1}) as out:
        out.finish()
    with pytest.raises(CmError) as info:
        with OutputDir(tmp_path / "o", "scores", options={"a": 2}):
            pass
    error = info.value
    assert "a: 1 -> 2" in error.message and not FLAG.search(error.hint) and error.option == ("force", "out")
    assert with_flags(error).hint.endswith("(--force, --out)") and error.option == ()
    assert with_flags(CmError("m", option="out")).hint == "see --out"
    assert with_flags(CmError("m", "h")).hint == "h"


def test_a_converted_error_still_shows_its_flag_on_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from cm_cli.app import app

    scores = tmp_path / "scores.csv"
    scores.write_text("utt_id,score,label\na,1.0,bonafide\na,1.0,bonafide\nb,0.0,spoof\n")
    result = CliRunner().invoke(app, ["eval", "--scores", str(scores), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "every copy agrees" in result.output and "(--dedupe)" in result.output
    assert "Traceback" not in result.output


def test_only_flags_of_the_running_command_are_added(tmp_path):
    assert with_flags(CmError("m", "h", option=("out", "nope")), {"--out"}).hint == "h (--out)"
    assert with_flags(CmError("m", "h", option="nope"), {"--out"}).hint == "h"
    from typer.testing import CliRunner

    from cm_cli.app import app

    # label errors name bonafide_value, a flag of `cm eval` only: `cm eval` shows it (above, with --dedupe) and a
    # command without it does not point at it
    scores = tmp_path / "scores.csv"
    scores.write_text("utt_id,score,label\na,1.0,genuine\nb,0.0,spoof\n")
    shown = CliRunner().invoke(app, ["eval", "--scores", str(scores), "--out", str(tmp_path / "m")])
    assert shown.exit_code == 1 and "unknown label value" in shown.output and "(--bonafide-value)" in shown.output
    import typer.main

    from cm_cli.commands._common import _command_flags

    group = typer.main.get_command(app)
    for argv, has, lacks in ((["eval", "--scores", "x"], "--dedupe", "--epochs"), (["train"], "--epochs", "--dedupe")):
        flags = _command_flags(group.make_context("cm", argv))
        assert has in flags and "--data-root" in flags and lacks not in flags, argv


def test_errors_of_the_last_converted_modules_still_show_their_flags(tmp_path):
    from typer.testing import CliRunner

    from cm_cli.app import app

    runner = CliRunner()
    cases = (
        (["--dry-run", "demo", "--methods", "adam"], "unknown method 'adam'", "(--methods)"),
        (["--dry-run", "train", "--method", "coral", "--method-option", "foo=1"], "not an option", "(--method-option"),
        (["export", str(tmp_path), "--out", str(tmp_path)], "is the run itself", "(--out)"),
    )
    for argv, message, flag in cases:
        result = runner.invoke(app, argv)
        assert result.exit_code in (1, 2) and message in result.output and flag in result.output, result.output
        assert "Traceback" not in result.output
