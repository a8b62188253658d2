"""The child process of ``stress_kill.py``: a cached sweep that the parent SIGKILLs.

Run as ``python _stress_child.py <cache path> <log path> <na> <nb> [images|streamed] [pool]``.
With ``images`` each cell also returns a 256 x 342 x 3 uint8 image (262 kB: a big cell, which a
sweep writes straight into its staged file). With ``streamed`` each cell also returns a
128 x 170 x 3 uint8 image (65 kB) and the cache is opened with ``memory_budget=``
:data:`STREAM_BUDGET` (200 kB, a few cells' worth): the images of the grid need many times the
budget, so the sweep streams them to the file (issue 14) and returns them lazily. With
``pool`` the sweep runs on a process pool that xsweep owns, ``workers=2``, one cell per task
(``chunksize=1``); each cell then sleeps :data:`POOL_CELL_SECONDS`, and the workers (forked:
they inherit the log's descriptor) log the cells. It opens the cache, prints ``ready``, waits
for a line on stdin (so that the parent can start it ahead of time), then sweeps :func:`cell`
over the ``na`` x ``nb`` grid. Every call of :func:`cell` first appends the
cell's flat index (4 bytes, one ``os.write`` on an ``O_APPEND`` descriptor) to the log, so the
log lists the cells in the order the sweep started them. The sweep is serial: when cell ``k+1``
starts, cell ``k`` has been handed to the store. So every logged cell but the last one must be
in the store whatever the moment of the kill. (On the pool the driver hands a cell's result to
the store before it submits a further cell, and at most ``2 * workers`` cells are submitted and
not handed over; so when cell ``m`` starts, all but ``2 * workers - 1`` cells below ``m`` are in
the store. The parent checks that instead.)

When the sweep returns it prints ``done <json>`` with the times (seconds after ``go``) of the
first and last calls and of the end, which the parent uses to aim kills at the final publish
(``null`` for the first and last calls on the pool: they happen in the workers).

``stress_kill.py`` imports this module too and resumes the killed sweeps with the same
:func:`cell` (same cache key ``_stress_child:cell``, same code fingerprint); in the parent the
log is off and :data:`CALLED` lists the cells the function is called for.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time

import numpy as np
import xarray as xr

import xsweep as xs

_PACK = struct.Struct("<I").pack
_STATE = {"fd": -1, "nb": 0, "first": None, "last": None, "images": False, "delay": 0.0,
          "shape": (256, 342, 3)}
IMAGE_SHAPE = (256, 342, 3)
#: ``streamed``: each cell's image (65,280 bytes) and the cache's memory budget, 3 cells' worth.
STREAM_SHAPE = (128, 170, 3)
STREAM_BUDGET = 200_000
#: Workers of the pool sweep (``pool``) and each cell's sleep there: a task lasts ~1 ms, long
#: enough for the two workers to share the cells, short enough for a quick sweep.
POOL_WORKERS = 2
POOL_CELL_SECONDS = 0.001
#: The cells :func:`cell` computed in this process while the log is off (the parent).
CALLED: list[int] = []


def expected_values(a, b):
    """The exact outputs of a cell: an int and a float that differ in every cell (and an
    image, in images mode)."""
    out = {"prod": a * b + 1, "x": a / 7 + b * 0.001}
    if _STATE["images"]:
        out["img"] = expected_image(a, b)
    return out


def expected_image(a, b):
    shape = _STATE["shape"]
    img = np.full(shape, 255, dtype=np.uint8)
    img[0, :, 0] = a % 256
    img[0, :, 1] = b % 256
    img[1:, :, 2] = (np.arange(shape[1]) * (a + 3 * b + 1) % 256).astype(np.uint8)
    return img


def set_columns(nb, images=False, streamed=False):
    """Set the grid's columns and the kind of cells (``streamed``: smaller images)."""
    _STATE["nb"] = nb
    _STATE["images"] = images or streamed
    _STATE["shape"] = STREAM_SHAPE if streamed else IMAGE_SHAPE


def cache_options(streamed=False):
    """The ``enable_cache`` options of the sweep (and of its resume in the parent)."""
    return {"memory_budget": STREAM_BUDGET} if streamed else {}


def cell(a, b):
    index = a * _STATE["nb"] + b
    if _STATE["fd"] < 0:
        CALLED.append(index)
        return expected_values(a, b)
    os.write(_STATE["fd"], _PACK(index))
    now = time.perf_counter()
    if _STATE["first"] is None:
        _STATE["first"] = now
    _STATE["last"] = now
    if _STATE["delay"]:
        time.sleep(_STATE["delay"])
    return expected_values(a, b)


def main(argv):
    path, log, na, nb = argv[0], argv[1], int(argv[2]), int(argv[3])
    pool = "pool" in argv[4:]
    streamed = "streamed" in argv[4:]
    set_columns(nb, images="images" in argv[4:], streamed=streamed)
    if pool:
        _STATE["delay"] = POOL_CELL_SECONDS
    _STATE["fd"] = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    ps = xs.ParameterSpace(
        [xs.Parameter("a", values=range(na)), xs.Parameter("b", values=range(nb))]
    )
    ps.enable_cache(path, **cache_options(streamed))
    # xarray imports its optional backends (dask) when it builds its first object, ~0.2 s;
    # do it now, so that the timeline the parent calibrates its kills on is the sweep alone.
    xr.Dataset({"v": ("x", np.zeros(2))})
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    if pool:
        ps.sweep(cell, errors="raise", workers=POOL_WORKERS, chunksize=1)
    else:
        ps.sweep(cell, errors="raise")
    t_end = time.perf_counter()
    rel = {k: (_STATE[k] - t0) if _STATE[k] is not None else None for k in ("first", "last")}
    print("done " + json.dumps({**rel, "end": t_end - t0}), flush=True)


if __name__ == "__main__":
    # Run the function from the module ``_stress_child``, not from ``__main__``: its cache key
    # is the module's name, the same as in the parent.
    import _stress_child

    _stress_child.main(sys.argv[1:])
