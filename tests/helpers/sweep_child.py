"""Swept functions and a child-process driver for ``tests/test_processes.py``.

The test process and its children import this module under the same name, ``sweep_child``
(with ``tests/helpers`` on ``sys.path``), so that :func:`product` has the same function key,
``sweep_child:product``, in every process and a child's cache file is the parent's.

A child runs ``python -c "import sweep_child; sweep_child.main()" '<json config>'``; see
:func:`main` for the config. In the test process the side files stay off and :data:`CALLS`
counts the calls.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np
import xarray as xr

import xsweep as xs


def make_space(na: int, nb: int) -> xs.ParameterSpace:
    """An ``na`` x ``nb`` grid: ``a`` = 1..na (ints), ``b`` = 0, 0.5, 1, ... (floats).

    Every product ``a * b`` is exact in float64, so values compare with ``==``.
    """
    return xs.ParameterSpace(
        [
            xs.Parameter("a", values=np.arange(1, na + 1), units="m"),
            xs.Parameter("b", values=0.5 * np.arange(nb)),
        ]
    )


def expected(na: int, nb: int) -> np.ndarray:
    """The correct ``product`` over the grid of :func:`make_space`."""
    return np.multiply.outer(np.arange(1, na + 1), 0.5 * np.arange(nb)).astype(np.float64)


def flat_index(a, b, nb: int) -> int:
    """The C-order cell index of values ``(a, b)`` in the grid of :func:`make_space`."""
    return (int(round(float(a))) - 1) * nb + int(round(float(b) * 2))


class _Config:
    report_fd = -1  # side file: each cell handed to the store, one "a b" line
    calls_fd = -1  # side file: each call of product, one "a b" line
    started_path: str | None = None  # created at the first call
    delay = 0.0  # seconds each call sleeps
    stop_after: int | None = None  # stop at the call after this many
    stop_how = "interrupt"  # interrupt | exit | sigkill


_cfg = _Config()
#: Every call of :func:`product` in this process, as ``(a, b)``.
CALLS: list[tuple] = []
_prev: tuple | None = None


def _line(cell) -> bytes:
    return f"{cell[0]!r} {cell[1]!r}\n".encode()


def product(a, b):
    """``a * b``, reporting to side files what a test needs to know.

    When a call starts, the sweep loop has already recorded the previous call's cell (it
    records a cell before calling the function for the next one), so the previous cell is
    appended to the report file first, with one ``os.write`` on an ``O_APPEND`` fd.
    """
    _called(a, b)
    return a * b


IMAGE_SHAPE = (300, 400, 3)  # 360 kB: a big cell, stored contiguously, summed in the journal


def expected_image(a, b) -> np.ndarray:
    """The image :func:`image` returns for cell ``(a, b)``: distinct per cell, with 255s."""
    img = np.full(IMAGE_SHAPE, 255, dtype=np.uint8)
    k = int(round(float(a))) * 37 + int(round(float(b) * 2))
    img[1:, :, 0] = (np.arange(IMAGE_SHAPE[1]) * k % 256).astype(np.uint8)
    img[0, 0] = [int(round(float(a))), int(round(float(b) * 2)), 7]
    return img


def image(a, b):
    """:func:`expected_image`, reporting like :func:`product`."""
    _called(a, b)
    return expected_image(a, b)


def _called(a, b) -> None:
    global _prev
    cfg = _cfg
    if cfg.report_fd >= 0 and _prev is not None:
        os.write(cfg.report_fd, _line(_prev))
    _prev = None
    if cfg.stop_after is not None and len(CALLS) >= cfg.stop_after:
        if cfg.stop_how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if cfg.stop_how == "exit":
            sys.exit(4)
        raise KeyboardInterrupt
    CALLS.append((a, b))
    if cfg.calls_fd >= 0:
        os.write(cfg.calls_fd, _line((a, b)))
    if cfg.started_path is not None and len(CALLS) == 1:
        os.close(os.open(cfg.started_path, os.O_WRONLY | os.O_CREAT, 0o644))
    if cfg.delay:
        time.sleep(cfg.delay)
    _prev = (a, b)


def _append_fd(path: str | None) -> int:
    if not path:
        return -1
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def main(argv: list[str] | None = None) -> None:
    """Run one child. ``argv[0]`` is a JSON object with keys:

    ``mode`` ("sweep" or "run_process"), ``path`` (the cache file), ``na``, ``nb`` (grid),
    and optionally ``fn`` ("product", the default, or "image": a sweep of big cells),
    ``report``, ``calls``, ``started``, ``ready`` (file paths), ``delay``,
    ``stop_after``, ``stop_how``, ``cells`` (for run_process: ``[[a, b], ...]`` or "all").

    "sweep" sweeps ``product`` with the cache on, reports the last cell and a ``done`` line
    after the sweep returns, checks the result and exits 0; a KeyboardInterrupt out of the
    sweep exits 3. "run_process" calls ``ps.run_process(product, a=a, b=b)`` for each cell,
    reports each cell once it returned and a ``done`` line after the last, then SIGKILLs
    itself, so that no finaliser publishes the journal.
    """
    global _prev
    cfg = json.loads((sys.argv[1:] if argv is None else argv)[0])
    report_fd = _append_fd(cfg.get("report"))
    _cfg.calls_fd = _append_fd(cfg.get("calls"))
    _cfg.started_path = cfg.get("started")
    _cfg.delay = float(cfg.get("delay", 0.0))
    _cfg.stop_after = cfg.get("stop_after")
    _cfg.stop_how = cfg.get("stop_how", "interrupt")
    na, nb = cfg["na"], cfg["nb"]
    ps = make_space(na, nb)
    # xarray imports its optional array modules (dask) when it first builds a Variable; do it
    # now so that the timed part of the child is the sweep itself.
    xr.Variable("x", np.zeros(1))
    if cfg.get("ready"):
        os.close(os.open(cfg["ready"], os.O_WRONLY | os.O_CREAT, 0o644))
    ps.enable_cache(cfg["path"])
    fn = image if cfg.get("fn") == "image" else product
    if cfg["mode"] == "run_process":
        cells = cfg["cells"]
        if cells == "all":  # every cell, in C order
            cells = [(a, b) for a in range(1, na + 1) for b in (0.5 * np.arange(nb)).tolist()]
        for a, b in cells:
            value = ps.run_process(fn, a=a, b=b)
            want = a * b if fn is product else expected_image(a, b)
            if not np.array_equal(value, want):
                sys.exit(f"run_process({a}, {b}) returned {value!r}")
            if report_fd >= 0:  # run_process wrote the cell back before returning
                os.write(report_fd, _line((a, b)))
        if report_fd >= 0:
            os.write(report_fd, b"done\n")
        os.kill(os.getpid(), signal.SIGKILL)
    _cfg.report_fd = report_fd  # product reports the cells handed to the store
    try:
        ds = ps.sweep(fn)
    except KeyboardInterrupt:
        sys.exit(3)
    if report_fd >= 0:
        if _prev is not None:
            os.write(report_fd, _line(_prev))
            _prev = None
        os.write(report_fd, b"done\n")
    status = ds[f"{fn.__name__}_status"].values
    values = ds[fn.__name__].values
    want = expected(na, nb) if fn is product else expected_images(na, nb)
    if not (status == 1).all() or not np.array_equal(values, want):
        sys.exit("the child's sweep returned incomplete or wrong results")
    sys.exit(0)


def expected_images(na: int, nb: int) -> np.ndarray:
    """Every cell's :func:`expected_image`, shaped ``(na, nb, y, x, rgb)``."""
    ps = make_space(na, nb)
    return np.stack([[expected_image(a, b) for b in ps["b"].values] for a in ps["a"].values])
