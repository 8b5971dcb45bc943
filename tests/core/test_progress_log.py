"""Progress in job logs (issue 31): timestamped lines with done/total and ETA, at least every interval."""

from __future__ import annotations

import io
import re
import time

import pytest

from cm_cli.core.progress import LogReporter, format_eta, task, track, use_reporter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reporter(interval: float = 30.0):
    clock, stream = Clock(), io.StringIO()
    return LogReporter(stream, interval=interval, clock=clock, wall=lambda: 0.0, heartbeat=False), clock, stream


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_format_eta():
    assert [format_eta(v) for v in (0, 59.4, 61, 3723, None, -1)] == ["0:00", "0:59", "1:01", "1:02:03", "?", "?"]


def test_lines_are_timestamped_and_give_done_total_rate_and_eta():
    log, clock, stream = reporter()
    with use_reporter(log):
        with task(100, "scoring") as advance:
            clock.now += 1.0
            log.beat()  # the heartbeat announces the task once it has run START_DELAY
            clock.now += 39.0
            advance(40)  # 40 s since start, 39 s since the last line: a status line
            clock.now += 10.0
            advance(10)  # 10 s since the last line: silent
            clock.now += 25.0
            log.beat()  # 35 s without a line: the heartbeat writes one although nothing finished
        out = lines(stream)
    assert len(out) == 4, out
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line) for line in out)
    assert out[0].endswith("scoring: started, 100 to do")
    assert out[1].endswith("scoring: 40/100 (40%), 1.00/s, elapsed 0:40, ETA 1:00")
    assert out[2].endswith("scoring: 50/100 (50%), 0.67/s, elapsed 1:15, ETA 1:15")
    assert out[3].endswith("scoring: finished 50/100 in 1:15")


def test_a_quick_task_gets_only_its_finished_line_and_a_failed_one_none():
    log, clock, stream = reporter()
    with use_reporter(log):
        for _ in track(range(3), description="quick"):
            clock.now += 0.1
        with pytest.raises(ValueError):
            with task(5, "doomed"):
                raise ValueError("boom")
    out = lines(stream)
    assert len(out) == 1 and out[0].endswith("quick: finished 3/3 in 0:00"), out


def test_the_heartbeat_thread_writes_while_an_item_takes_long():
    stream = io.StringIO()
    log = LogReporter(stream, interval=0.2)
    with use_reporter(log):
        with task(2, "slow item"):
            time.sleep(1.8)  # one item longer than START_DELAY + several intervals
    out = lines(stream)
    assert out[0].endswith("slow item: started, 2 to do")
    assert sum("slow item: 0/2 (0%)" in line and "ETA ?" in line for line in out) >= 2, out
    assert re.search(r"slow item: finished 0/2 in 0:0\d$", out[-1]), out
    assert log._thread is None  # stopped with the last task


def test_outside_a_terminal_the_commands_get_log_lines(monkeypatch):
    from cm_cli.commands._common import rich_reporter
    from cm_cli.core.context import Context

    assert isinstance(rich_reporter(Context()), LogReporter)  # pytest's stderr is not a terminal
    assert rich_reporter(Context(json=True)) is None and rich_reporter(Context(quiet=True)) is None
