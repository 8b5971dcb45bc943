"""One declaration per command option: the Typer option, the preset/``cm.toml`` key and the library config field.

Why: an option used to be written three times (the Typer parameter, the ``values`` dict
handed to ``resolve_options`` for presets and ``cm.toml``, and the keyword that builds the
library's config dataclass), and the three drifted. An ``Opt`` is written once:
``Options.command`` gives the command function its Typer signature from the declarations,
``Options.values`` hands the same names to ``resolve_options`` (so preset and ``cm.toml``
keys are the option names, checked with the option's own type and bounds), and
``Options.config`` builds the library dataclass from the resolved values.
``tests/commands`` and ``tests/core/test_option_spec.py`` check that the CLI defaults
build the dataclass's own defaults. The pattern (docs/DESIGN.md, "One declaration per
option"): every command whose options reach presets or ``resolve_options`` (train, eval, embed,
degrade, loao, probe, cka, patch, profile, demo).
"""

from __future__ import annotations

import enum
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

__all__ = ["Opt", "Options"]


@dataclass(frozen=True)
class Opt:
    """One option: ``--name`` (kebab case) of type ``kind`` with ``default``, its help and bounds.

    ``flags``: further spellings (``-t``, ``--layer``). ``field``: the config field it sets
    (default: its name; ``None``: not a config field, e.g. ``--out``). ``convert``: resolved
    value -> config value (e.g. ``"none"`` -> ``None``). ``annotation``: a shared
    ``Annotated`` alias of ``commands._common`` (``OutDir``, ``ForceOpt``) instead of
    ``kind``/``help``. ``resolved``: passed through ``resolve_options`` (``--preset`` is not).
    ``negatable``: a boolean written ``--name/--no-name``. ``complete``: the tab-completion
    function. ``metavar``: the value's name in ``--help``.
    """

    name: str
    kind: type = str
    default: Any = None
    help: str = ""
    flags: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    show_default: bool | None = None
    field: str | None = ""
    convert: Callable[[Any], Any] | None = None
    annotation: Any = None
    resolved: bool = True
    negatable: bool = False
    complete: Callable[[str], list[str]] | None = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def config_field(self) -> str | None:
        return self.name if self.field == "" else self.field

    def parameter(self) -> inspect.Parameter:
        """The keyword parameter Typer reads: ``Annotated[type, typer.Option(...)] = default``."""
        from typing import Annotated

        import typer

        annotation = self.annotation
        if annotation is None:
            extra: dict[str, Any] = {"help": self.help}
            if self.minimum is not None:
                extra["min"] = self.minimum
            if self.maximum is not None:
                extra["max"] = self.maximum
            if self.show_default is not None:
                extra["show_default"] = self.show_default
            if self.complete is not None:
                extra["autocompletion"] = self.complete
            if self.metavar is not None:
                extra["metavar"] = self.metavar
            kind = self.kind if self.default is not None else Optional[self.kind]
            flag = f"{self.flag}/--no-{self.flag[2:]}" if self.negatable else self.flag
            annotation = Annotated[kind, typer.Option(flag, *self.flags, **extra)]
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=self.default, annotation=annotation)

    def to_config(self, value: Any) -> Any:
        """The config field's value: an enum choice as its value (config dataclasses hold plain values), then
        ``convert``."""
        if isinstance(value, enum.Enum):
            value = value.value
        return self.convert(value) if self.convert is not None else value


class Options:
    """The declared options of one command, in the order ``--help`` lists them."""

    def __init__(self, *options: Opt):
        names = [o.name for o in options]
        if len(set(names)) != len(names):
            raise ValueError(f"options declared twice: {sorted({n for n in names if names.count(n) > 1})}")
        self.options = options

    def __iter__(self):
        return iter(self.options)

    def command(self, function: Callable) -> Callable:
        """Give ``function(ctx, <arguments>, **options)`` the declared options as its Typer parameters."""
        signature = inspect.signature(function, eval_str=True)
        parameters = []
        for parameter in signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                parameters.extend(o.parameter() for o in self.options)
            else:
                parameters.append(parameter)
        function.__signature__ = signature.replace(parameters=parameters)
        return function

    def values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """What ``resolve_options`` resolves against presets and ``cm.toml``: every resolved option by name."""
        return {o.name: given[o.name] for o in self.options if o.resolved}

    def config(self, cls: type, resolved: Mapping[str, Any], **extra: Any) -> Any:
        """The library config dataclass from resolved option values (``extra``: fields no option sets, e.g. seed)."""
        fields = {
            o.config_field: o.to_config(resolved[o.name])
            for o in self.options
            if o.config_field is not None and o.name in resolved
        }
        return cls(**fields, **extra)

    def defaults(self) -> dict[str, Any]:
        """Each option's default, as the command line would give it (what a test builds the default config from)."""
        return {o.name: o.default for o in self.options}
