"""The one exception type library code raises for expected failures.

The root handler in ``cm_cli.app`` turns it into one line on stderr (plus the
hint) and exit code 1, so library code never prints or exits.
"""

from __future__ import annotations

__all__ = ["Reported", "CmError", "UsageError"]


class Reported:
    """What the root handler prints of an exception: ``message``, ``hint`` and ``exit_code``.

    A mixin, so ``CmError`` (an ``Exception``) and ``signals.Terminated`` (a
    ``BaseException`` that per-item handlers must not catch) report the same way.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, option: str | tuple[str, ...] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # the library parameter(s) the hint is about (``out``, ``force``, ``shard``): the library speaks of files and
        # values, and the command layer names the flag(s) (``commands._common.with_flags``)
        self.option = (option,) if isinstance(option, str) else tuple(option or ())

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        return {"error": self.message, "hint": self.hint, "exit_code": self.exit_code}


class CmError(Reported, Exception):
    """An expected failure: bad input, missing file, unavailable feature.

    ``message`` names what is wrong (the file and line, or the value at fault);
    ``hint`` says what to do about it.
    """


class UsageError(CmError):
    """A bad combination of command-line options (exit code 2, like Typer's)."""

    exit_code = 2
