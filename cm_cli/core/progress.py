"""Progress reporting that library code can use without importing rich.

Library code wraps work in ``track(iterable, total=..., description=...)`` or
``task(total, description)``; the command layer installs a reporter (a rich
progress bar in a terminal, ``LogReporter`` lines in a job log, nothing under
``--json``) with ``use_reporter``. With no reporter installed, progress is silent,
so library calls from tests or notebooks print nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Callable, Iterable, Iterator, Protocol, TypeVar

__all__ = [
    "Reporter",
    "LogReporter",
    "track",
    "task",
    "use_reporter",
    "current_reporter",
    "format_eta",
    "LOG_INTERVAL_ENV",
]

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
    except BaseException:
        # a failed task ends without a "finished" line: the error that follows is the news
        getattr(reporter, "abandon", reporter.finish)(handle)
        raise
    else:
        reporter.finish(handle)


def track(iterable: Iterable[T], *, total: int | None = None, description: str = "") -> Iterator[T]:
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with task(total, description) as advance:
        for item in iterable:
            yield item
            advance(1)


LOG_INTERVAL_ENV = "CM_PROGRESS_INTERVAL"  # seconds between log lines of a running task (default 30)


def format_eta(seconds: float | None) -> str:
    """``1:02:03`` / ``2:03``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class _LogTask:
    description: str
    total: int | None
    started: float
    done: int = 0
    last_line: float = field(default=0.0)
    announced: bool = False


class LogReporter:
    """Progress as timestamped lines, for logs that are not terminals (SLURM, nohup, CI).

    A line when a task has run for ``START_DELAY`` seconds (so a task that ends at once,
    or fails at once, adds only its "finished" line, or none), then at least every
    ``interval`` seconds while it runs (a heartbeat thread writes one even when no item
    finishes in that time) with done/total, rate, elapsed time and ETA, and one when it
    ends: a job log always shows that the job is alive and when it should end.
    """

    START_DELAY = 1.0

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        heartbeat: bool = True,
    ):
        if interval is None:
            try:
                interval = float(os.environ.get(LOG_INTERVAL_ENV, "30"))
            except ValueError:
                interval = 30.0
        self.stream = stream
        self.interval = max(0.0, float(interval))
        self.clock, self.wall = clock, wall
        self._tasks: dict[int, _LogTask] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = heartbeat and self.interval > 0

    # -- Reporter protocol
    def start(self, description: str, total: int | None) -> object:
        now = self.clock()
        with self._lock:
            handle = self._next
            self._next += 1
            self._tasks[handle] = _LogTask(description, total, now, last_line=now)
            if self._heartbeat and self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._beat, args=(self._stop,), name="cm-progress-log", daemon=True
                )
                self._thread.start()
        return handle

    def advance(self, handle: object, n: int = 1) -> None:
        with self._lock:
            state = self._tasks.get(handle)  # type: ignore[arg-type]
            if state is None:
                return
            state.done += n
            if state.announced and self.clock() - state.last_line >= self.interval:
                self._status(state)

    def abandon(self, handle: object) -> None:
        """End a task that failed, without a line."""
        with self._lock:
            self._tasks.pop(handle, None)  # type: ignore[arg-type]
            if not self._tasks:
                self._stop_thread()

    def finish(self, handle: object) -> None:
        with self._lock:
            state = self._tasks.pop(handle, None)  # type: ignore[arg-type]
            if state is not None:
                elapsed = self.clock() - state.started
                count = f"{state.done}/{state.total}" if state.total is not None else f"{state.done}"
                self._write(f"{state.description}: finished {count} in {format_eta(elapsed)}")
            if not self._tasks:
                self._stop_thread()

    # -- lines
    def line(self, state: _LogTask) -> str:
        """``desc: 120/450 (27%), 3.1/s, elapsed 0:39, ETA 1:46`` for one running task."""
        elapsed = self.clock() - state.started
        rate = state.done / elapsed if elapsed > 0 else 0.0
        if state.total:
            percent = 100.0 * state.done / state.total
            eta = (state.total - state.done) / rate if rate > 0 else None
            return (
                f"{state.description}: {state.done}/{state.total} ({percent:.0f}%), {rate:.2f}/s, "
                f"elapsed {format_eta(elapsed)}, ETA {format_eta(eta)}"
            )
        return f"{state.description}: {state.done} done, {rate:.2f}/s, elapsed {format_eta(elapsed)}"

    def _status(self, state: _LogTask) -> None:
        state.last_line = self.clock()
        self._write(self.line(state))

    def _write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.wall()))
        stream = self.stream or sys.stderr
        try:
            stream.write(f"{stamp} {text}\n")
            stream.flush()
        except (OSError, ValueError):  # a closed log must not stop the work
            pass

    def beat(self) -> None:
        """Write a line for every task whose last line is ``interval`` old (the heartbeat thread's step)."""
        with self._lock:
            now = self.clock()
            for state in list(self._tasks.values()):
                if not state.announced and now - state.started >= self.START_DELAY:
                    state.announced = True
                    state.last_line = now
                    self._write(
                        f"{state.description}: started" + (f", {state.total} to do" if state.total is not None else "")
                    )
                elif state.announced and now - state.last_line >= self.interval:
                    self._status(state)

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(min(self.interval, self.START_DELAY)):
            self.beat()

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread = None
