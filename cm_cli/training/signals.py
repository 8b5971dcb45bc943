"""Pre-emption: SIGTERM / SIGUSR1 ask the training loop to checkpoint and stop instead of dying."""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["StopFlag", "preemption_guard"]


class StopFlag:
    """Callable ``(step) -> bool``: true once a stop signal has arrived (its name in ``signal``)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self, step: int) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def preemption_guard():
    """SIGTERM / SIGUSR1 set a flag (yielded) instead of killing the process; handlers restored after."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {}

    def handler(signum, frame):  # noqa: ARG001
        flag.signal = signal.Signals(signum).name

    for sig in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
