"""SIGTERM handling for corpus-scale commands: stop cleanly, say so, keep finished items.

A cluster scheduler sends SIGTERM before killing a job (time limit, pre-emption,
``scancel``). Inside ``stop_on_sigterm`` the signal raises ``Terminated`` in the main
thread, so the ``with``/``finally`` blocks unwind: the temporary file of the item
in progress is removed, the output record says "failed", the lock is released,
and the root handler prints one line and exits 143 (128 + 15). Items committed
before the signal are kept, so rerunning the same command continues the work.
Worker processes call ``raise_on_sigterm`` so they unwind the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator

from cm_cli.core.errors import Reported

__all__ = ["Terminated", "WorkerStop", "stop_on_sigterm", "raise_on_sigterm"]


class Terminated(Reported, BaseException):
    """The job was asked to stop (SIGTERM); exit code 143 like a process killed by it.

    A ``BaseException``, not a ``CmError``: per-item handlers (``except Exception`` or
    ``except CmError`` around decoding one file) must not swallow it as one failed item
    and carry on. The root group prints it like a ``CmError``: one line and the hint.
    """

    exit_code = 143


class WorkerStop(SystemExit):
    """Raised in a worker process by SIGTERM: not an ``Exception``, so no per-item handler records it
    as a failed item and the pool does not keep the worker alive; ``SystemExit`` ends it quietly."""

    def __init__(self) -> None:
        super().__init__(143)


def _handler(what: str):
    owner = os.getpid()

    def handle(signum, frame) -> None:
        if os.getpid() != owner:  # a forked child (a data-loader worker) inherited it: die as before
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        name = signal.Signals(signum).name
        raise Terminated(
            f"{what} stopped by {name}; finished items are kept", "rerun the same command to continue where it stopped"
        )

    return handle


@contextlib.contextmanager
def stop_on_sigterm(what: str = "cm") -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` for the duration of the block (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _handler(what))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def raise_on_sigterm() -> None:
    """For a worker process's initializer: SIGTERM unwinds the worker (temporary files removed) and ends it."""

    def handle(signum, frame) -> None:
        raise WorkerStop()

    signal.signal(signal.SIGTERM, handle)
