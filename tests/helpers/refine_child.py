"""A refinement run in a child process, for the SIGKILL tests of ``tests/test_refine.py``.

The test process and its children import this module under the same name, ``refine_child``
(with ``tests/helpers`` on ``sys.path``), so that :func:`bump` has the same function key in
every process and a child's cache file is the parent's.

A child runs ``python -c "import refine_child; refine_child.main()" '<json config>'``:
``path`` (the cache file), ``calls`` (a side file: one ``x y`` line per call of
:func:`bump`, written with one ``os.write`` when the call starts), ``rounds`` (a side file:
one line per round reported), ``delay`` (seconds each call sleeps) and ``kill_at`` (the
call at which :func:`bump` SIGKILLs its own process, or None).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np

import xsweep as xs

#: The goal of every refinement in these tests: the grid may grow to this many cells.
MAX_CELLS = 150


def make_space() -> xs.ParameterSpace:
    """5 x 5 values of two continuous parameters over [-1, 1]."""
    return xs.ParameterSpace(
        [
            xs.Parameter("x", values=np.linspace(-1, 1, 5), bounds=(-1.0, 1.0)),
            xs.Parameter("y", values=np.linspace(-1, 1, 5), bounds=(-1.0, 1.0)),
        ]
    )


def exact(x, y):
    """A bump whose slopes are steep on one side: where refinement must go."""
    return float(np.tanh((x - 0.3 * y - 0.2) / 0.08))


class _Config:
    calls_fd = -1
    delay = 0.0
    kill_at: int | None = None
    count = 0


_cfg = _Config()
#: Every call of :func:`bump` in this process, as ``(x, y)``.
CALLS: list[tuple[float, float]] = []


def bump(x, y):
    """:func:`exact`, logging each call (and SIGKILLing this process at ``kill_at``)."""
    cfg = _cfg
    cfg.count += 1
    if cfg.kill_at is not None and cfg.count >= cfg.kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    CALLS.append((x, y))
    if cfg.calls_fd >= 0:
        os.write(cfg.calls_fd, f"{x!r} {y!r}\n".encode())
    if cfg.delay:
        time.sleep(cfg.delay)
    return exact(x, y)


def read_calls(path) -> list[tuple[float, float]]:
    """The calls a child logged (complete lines only: each was one ``os.write``)."""
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        return []
    return [tuple(float(v) for v in line.split()) for line in data.split(b"\n")[:-1]]


def main(argv: list[str] | None = None) -> None:
    cfg = json.loads((sys.argv[1:] if argv is None else argv)[0])
    if cfg.get("calls"):
        _cfg.calls_fd = os.open(cfg["calls"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _cfg.delay = float(cfg.get("delay", 0.0))
    _cfg.kill_at = cfg.get("kill_at")
    rounds_fd = os.open(cfg["rounds"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def on_round(report) -> None:
        os.write(rounds_fd, f"{report.round} {report.cells}\n".encode())

    ps = make_space()
    ps.enable_cache(cfg["path"])
    ps.refine(bump, max_cells=MAX_CELLS, on_round=on_round)
    os.write(rounds_fd, b"done\n")
    sys.exit(0)
