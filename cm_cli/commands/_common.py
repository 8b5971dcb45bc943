"""What every command shares: the Typer factory, option aliases, output and option resolution.

Commands stay thin: parse options, make one keyword call into a library package,
print a summary through ``emit``. Errors are ``CmError`` raised anywhere below;
``CmGroup.invoke`` turns them into one line and an exit code.
"""

from __future__ import annotations

import enum
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping, Optional

import typer
from typer.core import TyperGroup

from cm_cli.core.context import Context
from cm_cli.core.errors import CmError

__all__ = [
    "CmGroup",
    "make_app",
    "get_ctx",
    "emit",
    "console",
    "err_console",
    "resolve_options",
    "given_explicitly",
    "check_option_value",
    "apply_command_table",
    "option_type",
    "OptionType",
    "Corpus",
    "OutDir",
    "ManifestOpt",
    "PresetOpt",
    "ForceOpt",
    "ShardOpt",
    "SplitOpt",
    "complete_preset",
    "complete_corpus",
    "complete_codec",
    "complete_spec",
    "resolve_manifest",
    "recorded_manifest",
    "print_dry_run",
    "rich_reporter",
    "PANEL_DATA",
    "PANEL_MODELLING",
    "PANEL_ANALYSIS",
    "PANEL_OTHER",
]

PANEL_DATA = "Data"
PANEL_MODELLING = "Modelling"
PANEL_ANALYSIS = "Analysis"
PANEL_OTHER = "Other"


def console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def with_flags(exc: Any, known: "set[str] | None" = None) -> Any:
    """Add the command-line flag(s) of the library parameter(s) an error's hint is about (``out`` -> ``--out``).

    ``known``: the flags of the running command (and the global ones); a parameter it lacks is left out, so a
    library error shared by several commands never points at a flag the user cannot type.
    """
    options = getattr(exc, "option", ())
    if options:
        flags = ["--" + str(name).replace("_", "-") for name in options]
        shown = ", ".join(flag for flag in flags if known is None or flag in known)
        if shown:
            exc.hint = f"{exc.hint} ({shown})" if exc.hint else f"see {shown}"
        exc.option = ()
    return exc


def _command_flags(click_ctx) -> "set[str] | None":
    """The flags the user could have typed: the root's and the invoked command's (None when unknown)."""
    root = click_ctx.find_root()
    protected = getattr(root, "_protected_args", None) or []
    name = root.invoked_subcommand or (str(protected[0]) if protected else None)
    command = root.command.get_command(root, name) if name and hasattr(root.command, "get_command") else None
    if command is None:
        return None
    found: set[str] = set()
    pending = [root.command, command]
    while pending:
        current = pending.pop()
        found |= {opt for param in current.params for opt in (*param.opts, *param.secondary_opts)}
        if current is not root.command:
            pending += list(getattr(current, "commands", {}).values())
    return found


def _report_error(exc: Any, click_ctx) -> None:
    try:
        known = _command_flags(click_ctx)
    except Exception:  # never let the error report itself fail: fall back to naming every flag
        known = None
    with_flags(exc, known)
    root = click_ctx.find_root()
    want_json = bool(root.params.get("json")) or (isinstance(root.obj, Context) and root.obj.json)
    stderr = err_console()
    text = f"[bold red]error:[/] {_escape(exc.message)}"
    if exc.hint:
        text += f"\n[dim]hint:[/] {_escape(exc.hint)}"
    stderr.print(text)
    if want_json:
        sys.stdout.write(json.dumps(exc.to_dict()) + "\n")
        sys.stdout.flush()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))


class CmGroup(TyperGroup):
    """Root group: keeps commands in registration order and turns CmError into exit codes."""

    def list_commands(self, ctx) -> list[str]:
        return list(self.commands)

    def format_help(self, ctx, formatter) -> None:
        fold_help_tables()
        return super().format_help(ctx, formatter)

    def invoke(self, ctx) -> Any:
        from cm_cli.core.signals import Terminated, stop_on_sigterm

        protected = getattr(ctx, "_protected_args", None) or []
        if {"--help", "-h"} & {*protected, *ctx.args}:
            fold_help_tables()
        what = "cm " + str(protected[0]) if protected else "cm"
        try:
            with stop_on_sigterm(what):  # SIGTERM in any command: unwind, clean up, one line, exit 143
                return super().invoke(ctx)
        except _no_such_option() as exc:
            _hint_global_option(exc, ctx)
            raise
        except CmError as exc:
            if ctx.params.get("debug"):
                raise
            _report_error(exc, ctx)
            ctx.exit(exc.exit_code)
        except Terminated as exc:  # a BaseException, so that no per-item handler swallows it
            if ctx.params.get("debug"):
                raise
            _report_error(exc, ctx)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console().print("[bold red]interrupted[/]")
            ctx.exit(130)


def fold_help_tables() -> None:
    """Help readable at 80 columns: Typer's option tables crop a word longer than its column with an ellipsis
    (an option name, a path, a list of choices); fold such words onto the next line instead. Called only when
    help is printed, so other commands never import Typer's rich help module."""
    try:
        from typer import rich_utils
    except ImportError:  # pragma: no cover - a Typer without rich help
        return
    table_class = getattr(rich_utils, "Table", None)
    if table_class is None or getattr(table_class, "_cm_folds", False):
        return

    class FoldingTable(table_class):  # type: ignore[misc, valid-type]
        _cm_folds = True

        def add_row(self, *renderables, **kwargs):
            for renderable in renderables:
                _fold(renderable)
            super().add_row(*renderables, **kwargs)
            for column in self.columns:
                column.overflow = "fold"

    def _fold(renderable) -> None:
        if hasattr(renderable, "overflow"):
            renderable.overflow = "fold"
        for inner in getattr(renderable, "renderables", None) or ():
            _fold(inner)

    rich_utils.Table = FoldingTable


def _no_such_option() -> tuple[type, ...]:
    """click's NoSuchOption and that of the click Typer vendors (``typer._click``, Typer >= 0.2x)."""
    import importlib

    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(module).NoSuchOption)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _hint_global_option(exc: Any, ctx) -> None:
    """``cm train ... --dry-run``: a global option given after the command gets a hint to move it before."""
    name = exc.option_name
    globals_ = {opt: param for param in ctx.command.params for opt in (*param.opts, *param.secondary_opts)}
    if name in globals_ and exc.ctx is not None and exc.ctx.command is not ctx.command:
        command = exc.ctx.info_name or "COMMAND"
        exc.message = (
            f"{exc.message}. {name} is a global option: it goes before the command, "
            f"e.g. cm {name}{'' if globals_[name].is_flag else ' VALUE'} {command} ..."
        )


def make_app(**kwargs: Any) -> typer.Typer:
    """The one place Typer is configured for cm."""
    defaults = dict(
        no_args_is_help=True,
        rich_markup_mode="rich",
        pretty_exceptions_enable=False,
        add_completion=True,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    defaults.update(kwargs)
    return typer.Typer(**defaults)


def get_ctx(typer_ctx: typer.Context) -> Context:
    root = typer_ctx.find_root()
    if not isinstance(root.obj, Context):  # library-style invocation of a sub-app in tests
        from cm_cli.core.context import resolve_context

        root.obj = resolve_context({})
    return root.obj


def emit(ctx: Context, payload: Mapping[str, Any] | list, human: Callable[[], None] | str | None = None) -> None:
    """Print the command's result: one JSON document with --json, else the human form."""
    if ctx.json:
        sys.stdout.write(json.dumps(payload, default=_json_default) + "\n")
        sys.stdout.flush()
        return
    if ctx.quiet:
        return
    if callable(human):
        human()
    elif human is not None:
        console().print(human)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    return str(value)


def print_dry_run(ctx: Context, command: str, options: Mapping[str, Any]) -> None:
    payload = {"dry_run": True, "command": command, "options": dict(options), "context": ctx.summary()}
    emit(ctx, payload, lambda: console().print_json(json.dumps(payload, default=_json_default)))


def resolve_options(
    typer_ctx: typer.Context,
    command: str,
    values: Mapping[str, Any],
    *,
    preset: Optional[str] = None,
) -> dict[str, Any]:
    """Explicit option > preset > ``[command]`` table of cm.toml > default, per option.

    The one place where option values from presets and cm.toml are checked: each is
    converted with the command-line option's own type (so ``epochs = "six"``,
    ``lr = "fast"`` or a boolean spelt ``"no"`` mean what they would on the command
    line, or fail naming the file, the option and the value).
    """
    from cm_cli.core.presets import load_preset

    ctx = get_ctx(typer_ctx)
    loaded = load_preset(preset, command=command) if preset else None
    preset_options = loaded.options if loaded else {}
    preset_source = f"preset {loaded.path or loaded.name}" if loaded else ""
    toml_source = f"{ctx.config_path or 'cm.toml'} [{command}]"
    toml_options = _table_options(ctx.command_defaults(command), toml_source)
    params = {p.name: p for p in getattr(typer_ctx.command, "params", [])}
    unknown = sorted(set(toml_options) - set(values) - set(params))
    if unknown:
        raise CmError(
            f"{toml_source} has unknown option(s) {', '.join(unknown)}",
            f"options of `cm {command}`: {', '.join(sorted(params or values))}",
        )
    unknown = sorted(set(preset_options) - set(values))
    if unknown:
        raise CmError(f"preset {preset!r} sets unknown option(s) {', '.join(unknown)} for `cm {command}`")
    resolved: dict[str, Any] = {}
    for name, value in values.items():
        explicit = given_explicitly(typer_ctx, name)
        if explicit:
            resolved[name] = value
        elif name in preset_options:
            resolved[name] = _like(
                value, check_option_value(params.get(name), name, preset_options[name], preset_source)
            )
        elif name in toml_options:
            resolved[name] = _like(value, check_option_value(params.get(name), name, toml_options[name], toml_source))
        else:
            resolved[name] = value
        _require_finite(
            params.get(name),
            name,
            resolved[name],
            "the command line"
            if explicit
            else preset_source
            if name in preset_options
            else toml_source
            if name in toml_options
            else "the default",
        )
    return resolved


def parse_seeds(text: Any, flag: str, *, distinct: bool = False) -> tuple[int, ...]:
    """A comma-separated seed option (``--seeds 0,1,2``) as integers; one line naming ``flag`` when it is not."""
    from cm_cli.core.errors import UsageError

    try:
        seeds = tuple(int(s) for s in str(text).replace(" ", "").split(",") if s)
    except ValueError:
        raise UsageError(f"{flag}: expected comma-separated integers, got {text!r}", f"e.g. {flag} 0,1,2") from None
    if not seeds:
        raise UsageError(f"{flag} is empty", f"e.g. {flag} 0,1,2")
    if distinct and len(set(seeds)) != len(seeds):
        raise UsageError(f"{flag} needs distinct integers, got {text!r}")
    return seeds


def given_explicitly(typer_ctx: typer.Context, name: str) -> bool:
    """True when the user gave option ``name`` (command line or its environment variable), not a default
    or the ``[command]`` table of cm.toml (which arrives as click's default map)."""
    source = typer_ctx.get_parameter_source(name)
    # compared by name: Typer may vendor its own copy of click's ParameterSource
    return source is not None and getattr(source, "name", "") not in ("DEFAULT", "DEFAULT_MAP")


def _table_options(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A cm.toml command table keyed by option name; ``max-len`` and ``max_len`` both given is refused
    (TOML itself refuses a key given twice)."""
    options: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in options:
            raise CmError(
                f"{source}: option {name!r} is given twice (spelt with - and _)",
                "keep one; cm never lets the last value win silently",
            )
        options[name] = value
    return options


def _require_finite(param: Any, name: str, value: Any, source: str) -> None:
    """A number option (``float``-typed) never takes NaN or +-Inf, from any source: ``--lr inf`` would train
    to a run marked complete with a NaN dev EER, ``--max-len nan`` fail deep inside with a traceback."""
    import math

    from cm_cli.core.errors import UsageError

    spec = option_type(param) if param is not None else None
    if spec is None or spec.kind is not float or value is None:
        return
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not math.isfinite(item):
            option = "--" + name.replace("_", "-")
            raise UsageError(
                f"{option} {item!r} (from {source}) is not a finite number", f"give {option} a finite value"
            )


_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


@dataclass(frozen=True)
class OptionType:
    """What a command-line option accepts, read from its Typer/click parameter."""

    kind: type  # bool, int, float, str, Path, or an Enum subclass
    multiple: bool = False
    minimum: float | None = None
    maximum: float | None = None

    def describe(self) -> str:
        if isinstance(self.kind, type) and issubclass(self.kind, enum.Enum):
            return "one of " + ", ".join(str(m.value) for m in self.kind)
        text = {bool: "a boolean (true/false)", int: "an integer", float: "a number", Path: "a path"}.get(
            self.kind, "text"
        )
        if self.minimum is not None and self.maximum is not None:
            text += f" in [{self.minimum:g}, {self.maximum:g}]"
        elif self.minimum is not None:
            text += f" >= {self.minimum:g}"
        elif self.maximum is not None:
            text += f" <= {self.maximum:g}"
        return text


def option_type(param: Any) -> OptionType | None:
    """The ``OptionType`` of a Typer parameter (Typer's own descriptor, or click's ``type`` on older Typer)."""
    import typing

    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        annotation = descriptor.annotation
        multiple = typing.get_origin(annotation) in (list, tuple)
        if multiple:
            annotation = (typing.get_args(annotation) or (str,))[0]
        info = descriptor.parameter_info
        return OptionType(
            annotation if isinstance(annotation, type) else str,
            multiple,
            getattr(info, "min", None),
            getattr(info, "max", None),
        )
    kind = getattr(param, "type", None)
    if kind is None:
        return None
    import click

    mapping = [
        (click.types.BoolParamType, bool),
        (click.types.IntParamType, int),
        (click.types.FloatParamType, float),
        (click.Path, Path),
    ]
    python = next((t for c, t in mapping if isinstance(kind, c)), str)
    if isinstance(kind, click.Choice):
        python = str
    return OptionType(
        python, bool(getattr(param, "multiple", False)), getattr(kind, "min", None), getattr(kind, "max", None)
    )


def check_option_value(param: Any, name: str, value: Any, source: str) -> Any:
    """Convert a preset/config ``value`` to the option's type; ``CmError`` naming ``source`` if it is wrong.

    Strict: a boolean is a TOML/YAML boolean or one of true/false/yes/no/on/off/1/0
    (so ``"false"`` is False); an integer is not a boolean nor a fraction; a number
    is not a boolean; bounds (``min``/``max``) of the option apply. Structured values
    (a policy table in its preset) pass to text options as they are, for the command
    to check.
    """
    spec = option_type(param)
    if spec is None or value is None:
        return value
    option = "--" + name.replace("_", "-")

    def bad() -> CmError:
        return CmError(
            f"{source}: {name} = {value!r} is not {spec.describe()} (option {option})",
            f"fix the value there, or give {option} on the command line",
        )

    if spec.multiple:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return [_convert_one(spec, item, bad) for item in items]
    if isinstance(value, (list, tuple, dict)):
        if spec.kind is str:
            return value
        raise bad()
    return _convert_one(spec, value, bad)


def _convert_one(spec: OptionType, value: Any, bad: Callable[[], CmError]) -> Any:
    kind = spec.kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if isinstance(value, (str, int)) and text in _TRUE | _FALSE:
            return text in _TRUE
        raise bad()
    if isinstance(value, bool) or isinstance(value, (list, tuple, dict)):
        raise bad()  # a boolean or a table where a number, text, a choice or a path is expected
    if kind in (int, float):
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise bad() from None
        if kind is int:
            if isinstance(value, str):
                try:
                    number = int(value.strip())
                except ValueError:
                    raise bad() from None
            elif not float(number).is_integer():
                raise bad()
            number = int(number)
        if (spec.minimum is not None and number < spec.minimum) or (spec.maximum is not None and number > spec.maximum):
            raise bad()
        return number
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        text = value.value if isinstance(value, enum.Enum) else str(value)
        if text not in {str(m.value) for m in kind}:
            raise bad()
        return text
    if kind is Path:
        if not isinstance(value, (str, Path)):
            raise bad()
        return Path(value)
    return str(value)


def apply_command_table(click_ctx: Any, ctx: Context) -> None:
    """Make the ``[command]`` table of cm.toml the defaults of the command about to run, checked.

    Called by the root callback, so every command honours its table (also those that
    do not call ``resolve_options``); the values go through ``check_option_value`` and
    reach the command as click's ``default_map``, below any explicit option.
    """
    name = click_ctx.invoked_subcommand
    table = ctx.command_defaults(name) if name else {}
    if not table:
        return
    command = click_ctx.command.get_command(click_ctx, name)
    params = {p.name: p for p in getattr(command, "params", [])}
    if not params:  # a group of subcommands (`cm presets`): nothing to default
        return
    source = f"{ctx.config_path or 'cm.toml'} [{name}]"
    options = _table_options(table, source)
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise CmError(
            f"{source} has unknown option(s) {', '.join(unknown)}",
            f"options of `cm {name}`: {', '.join(sorted(params))}",
        )
    converted = {}
    for key, value in options.items():
        value = check_option_value(params[key], key, value, source)
        _require_finite(params[key], key, value, source)
        converted[key] = (
            value.value if isinstance(value, enum.Enum) else str(value) if isinstance(value, Path) else value
        )
    click_ctx.default_map = {**(click_ctx.default_map or {}), name: converted}


def _like(default: Any, value: Any) -> Any:
    """Give a checked preset/config value the option's Python type (enum, list, path) where that is clear."""
    if isinstance(default, enum.Enum) and not isinstance(value, enum.Enum):
        return type(default)(value)
    if isinstance(default, (list, tuple)) and not isinstance(value, (list, tuple)):
        return [value]
    if isinstance(default, Path) and isinstance(value, str):
        return Path(value)
    return value


def rich_reporter(ctx: Context):
    """A progress reporter for ``cm_cli.core.progress.use_reporter`` (None under --json/--quiet)."""
    if ctx.json or ctx.quiet:
        return None
    if not err_console().is_terminal:  # a job log: timestamped lines with done/total and ETA, at least every 30 s
        from cm_cli.core.progress import LogReporter

        return LogReporter(sys.stderr)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class _RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:6.1f}/s" if speed else "     ?/s", style="progress.data.speed")

    class _Rich:
        def __init__(self) -> None:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err_console(),
                transient=True,
            )
            self.active = 0

        def start(self, description: str, total: int | None) -> object:
            if self.active == 0:
                self.progress.start()
            self.active += 1
            return self.progress.add_task(description, total=total)

        def advance(self, handle: object, n: int = 1) -> None:
            self.progress.advance(handle, n)

        def finish(self, handle: object) -> None:
            self.progress.remove_task(handle)
            self.active -= 1
            if self.active == 0:
                self.progress.stop()

    return _Rich()


# --------------------------------------------------------------------------- shared options


def _corpus_enum() -> type[enum.Enum]:
    from cm_cli.data.manifest import CORPORA  # the one list of corpora (light module: no pandas at import)

    return enum.Enum("Corpus", {name: name for name in CORPORA}, type=str, module=__name__)


Corpus = _corpus_enum()

from cm_cli.commands._complete import complete_codec, complete_preset, complete_spec  # noqa: E402 - re-exported


def complete_corpus(incomplete: str) -> list[str]:
    return [c.value for c in Corpus if c.value.startswith(incomplete)]


# --------------------------------------------------------------------------- the default manifest (DESIGN.md)


def recorded_manifest(artifact: Path | None) -> Path | None:
    """The manifest an upstream artifact was made from, as its ``cm.json`` (or a run's ``config.json``) records it."""
    if artifact is None:
        return None
    from cm_cli.core.artifacts import read_json

    folder = artifact if artifact.is_dir() else artifact.parent
    for name in ("cm.json", "config.json"):
        record = folder / name
        if not record.is_file():
            continue
        try:
            data = read_json(record)
        except CmError:
            continue
        recorded = (data.get("options") or {}).get("manifest") if isinstance(data, dict) else None
        recorded = recorded or (data.get("manifest") if isinstance(data, dict) else None)
        if isinstance(recorded, str) and not recorded.startswith("<") and Path(recorded).exists():
            return Path(recorded)
    return None


def resolve_manifest(
    ctx: Context, manifest: Path | None, *, upstream: Path | None = None, corpus: str | None = None, build: bool = True
) -> Path:
    """The one rule for the manifest a command uses (DESIGN.md, "Default manifest").

    1. ``--manifest`` when given;
    2. else the manifest recorded by the upstream artifact the command reads (``upstream``);
    3. else the data root corpus's manifest ``<runs_dir>/manifests/<corpus>/manifest.parquet``,
       built on first use, where ``<corpus>`` is the command's ``--corpus`` or, for a
       command without one, the only corpus that has a manifest there or a folder under
       the data root. None or several: a usage error asking for ``--manifest``.
    """
    from cm_cli.core.errors import UsageError
    from cm_cli.data.manifest import CORPORA

    if manifest is not None:
        return Path(manifest)
    recorded = recorded_manifest(upstream)
    if recorded is not None:
        return recorded
    if corpus is None:
        built = [name for name in CORPORA if ctx.default_manifest(name).is_file()]
        present = built or [name for name in CORPORA if ctx.corpus_root(name).is_dir()]
        if len(present) != 1:
            found = f"several corpora ({', '.join(present)})" if present else "no corpus"
            raise UsageError(
                f"no --manifest given, and {found} under the data root {ctx.data_root}",
                "pass --manifest PATH (e.g. runs/manifests/toy/manifest.parquet)",
            )
        corpus = present[0]
    path = ctx.default_manifest(corpus)
    if build and not path.is_file():
        from cm_cli.data.manifests import default_manifest

        return default_manifest(ctx, corpus)
    return path


OutDir = Annotated[Optional[Path], typer.Option("--out", "-o", help="Output directory.", show_default=False)]
ManifestOpt = Annotated[
    Optional[Path],
    typer.Option("--manifest", "-m", help="Manifest Parquet (default: the data root corpus's manifest)."),
]
PresetOpt = Annotated[
    Optional[str], typer.Option("--preset", "-p", help="Preset name or YAML path.", autocompletion=complete_preset)
]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Redo all the work (reuse nothing), also when the output exists with other options."),
]
ShardOpt = Annotated[
    Optional[str], typer.Option("--shard", help="Process shard I/N (I from 0); default from SLURM_ARRAY_TASK_*.")
]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="Use only this split (train, dev, eval).")]
