"""Run one benchmark function in a fresh Python process and report its time, CPU time and peak RSS.

A peak RSS only means something for a process that did one thing: ``ru_maxrss`` never goes
down, so every script that reports memory per size runs each size through ``measure`` here
instead of carrying its own child-process snippet.

``measure(fn, *args, imports=(...))`` loads the file that defines ``fn`` (a module-level
function of a benchmark script) in a new interpreter, imports ``imports``, records the RSS
then (what the libraries cost before any data), calls ``fn(*args)`` (arguments and return
value JSON-serialisable) and returns::

    {"result": <fn's return value>, "seconds": wall time of the call,
     "cpu_s": user + system CPU of the process and of every child it waited for (ffmpeg, loader workers),
     "base_rss_mib": RSS after the imports, "peak_rss_mib": ru_maxrss of the process,
     "children_peak_rss_mib": ru_maxrss of its largest waited-for child (0 without children)}

``measure_command(cmd)`` does the same for an external command (its process tree).
Run as a script, this file is that child; it is not meant to be called by hand.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["measure", "measure_command", "rss_mib", "run_command", "growth", "parse_sized"]

_MARK = "__cm_bench_measure__ "


def rss_mib() -> float:
    """This process's resident set now (MiB), from /proc; NaN where there is no /proc."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def measure(
    fn: Callable, *args, imports: Sequence[str] = (), env: dict | None = None, timeout: float | None = None
) -> dict:
    """``fn(*args)`` in a fresh interpreter: its result, seconds, CPU seconds and peak RSS (see the module doc)."""
    source = inspect.getsourcefile(fn)
    if source is None or fn.__qualname__ != fn.__name__:
        raise ValueError(f"{fn!r} must be a module-level function defined in a file")
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        source,
        fn.__name__,
        json.dumps(list(args)),
        json.dumps(list(imports)),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(_MARK)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            f"{fn.__name__}{tuple(args)!r} failed in its child process (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len(_MARK) :])


def run_command(cmd: list[str]) -> dict:
    """Run ``cmd`` to completion, its output discarded; its exit status and, when it failed, its stderr's tail."""
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return {"returncode": proc.returncode, "stderr": proc.stderr[-2000:] if proc.returncode else ""}


def measure_command(cmd: list[str], env: dict | None = None, timeout: float | None = None) -> dict:
    """``measure`` of an external command (run with ``env``): ``result`` holds its ``returncode`` (and
    ``stderr`` when it failed), ``children_peak_rss_mib`` is its largest process, ``cpu_s`` the whole tree's CPU."""
    return measure(run_command, list(cmd), env=env, timeout=timeout)


def growth(rows: Sequence[dict], size: str, stages: Sequence, unit: str = "") -> list[str]:
    """One line per consecutive pair of rows: how much ``size`` grew, and each stage's time and memory above imports.

    A stage is a name ``S`` (the row's keys ``S_s``, ``S_peak_rss_mib``, ``S_base_rss_mib``) or a tuple
    ``(label, seconds key, peak RSS key, base RSS key)``.
    """
    lines = []
    keys = [(s, f"{s}_s", f"{s}_peak_rss_mib", f"{s}_base_rss_mib") if isinstance(s, str) else s for s in stages]
    for a, c in zip(rows, rows[1:]):
        parts = []
        for label, seconds, peak, base in keys:
            a_mem, c_mem = max(a[peak] - a[base], 1.0), max(c[peak] - c[base], 1.0)
            parts.append(
                f"{label + ' ' if label else ''}time {c[seconds] / max(a[seconds], 1e-9):.1f}x, "
                f"memory above imports {c_mem / a_mem:.1f}x"
            )
        lines.append(
            f"growth {a[size]} -> {c[size]}{' ' + unit if unit else ''} ({c[size] / a[size]:.1f}x): " + "; ".join(parts)
        )
    return lines


def parse_sized(parser, argv, *, sizes: str, smoke: str, unit: str):
    """Add the options every per-size script shares (``--sizes``, ``--json``, ``--smoke``), parse ``argv``;
    (the parsed options, the sizes as integers: ``smoke``'s under ``--smoke``)."""
    parser.add_argument("--sizes", default=sizes, help=f"comma-separated numbers of {unit}")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--smoke", action="store_true", help=f"{smoke} {unit} only: checks it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes = smoke
    return args, [int(s) for s in args.sizes.split(",") if s.strip()]


def _cpu_seconds(resource) -> float:
    """User + system CPU of this process and of every child it has waited for (microsecond resolution)."""
    return sum(
        u.ru_utime + u.ru_stime
        for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def _child(source: str, name: str, args_json: str, imports_json: str) -> None:
    import resource
    import time

    sys.path.insert(0, str(Path(source).parent))
    spec = importlib.util.spec_from_file_location("_cm_bench_target", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name_ in json.loads(imports_json):
        importlib.import_module(name_)
    fn = getattr(module, name)
    base = rss_mib()
    cpu0 = _cpu_seconds(resource)
    t0 = time.perf_counter()
    result = fn(*json.loads(args_json))
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds(resource) - cpu0
    out = {
        "result": result,
        "seconds": seconds,
        "cpu_s": cpu,
        "base_rss_mib": base,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    sys.stdout.flush()
    print(_MARK + json.dumps(out), flush=True)


if __name__ == "__main__":
    _child(*sys.argv[1:5])
