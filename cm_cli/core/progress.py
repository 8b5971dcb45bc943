"""Progress reporting that library code can use without importing rich.

Library code wraps work in ``track(iterable, total=..., description=...)`` or
``task(total, description)``; the command layer installs a reporter (a rich
progress bar, or nothing under ``--json``) with ``use_reporter``. With no
reporter installed, progress is silent, so library calls from tests or notebooks
print nothing.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

__all__ = ["Reporter", "track", "task", "use_reporter", "current_reporter"]

T = TypeVar("T")


class Reporter(Protocol):
    def start(self, description: str, total: int | None) -> object: ...

    def advance(self, handle: object, n: int = 1) -> None: ...

    def finish(self, handle: object) -> None: ...


class _Silent:
    def start(self, description: str, total: int | None) -> object:
        return None

    def advance(self, handle: object, n: int = 1) -> None:
        pass

    def finish(self, handle: object) -> None:
        pass


_reporter: Reporter = _Silent()


def current_reporter() -> Reporter:
    return _reporter


@contextlib.contextmanager
def use_reporter(reporter: Reporter | None) -> Iterator[None]:
    global _reporter
    previous = _reporter
    _reporter = reporter or _Silent()
    try:
        yield
    finally:
        _reporter = previous


@contextlib.contextmanager
def task(total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """A progress task; yields ``advance(n)``."""
    reporter = _reporter
    handle = reporter.start(description, total)
    try:
        yield lambda n=1: reporter.advance(handle, n)
    finally:
        reporter.finish(handle)


def track(iterable: Iterable[T], *, total: int | None = None, description: str = "") -> Iterator[T]:
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with task(total, description) as advance:
        for item in iterable:
            yield item
            advance(1)
