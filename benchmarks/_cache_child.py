"""Swept functions of ``bench_cache.py`` and its child process (a fresh interpreter).

``bench_cache.py`` and the child both import this module as ``_cache_child``, so that each
function has the same cache key (``_cache_child:f``) and the same code fingerprint in both
processes, and the child's cache file is the parent's.

Child: ``python _cache_child.py <mode> <cache path> <n>`` prints one JSON line of timings.

* ``warm``: open a complete ``n`` x ``n`` store of :func:`f` and sweep it (everything cached),
  then sweep it again in the same process.
* ``resume``: open a half-done store of :func:`resume_fn` and sweep it; the function stops the
  sweep (``KeyboardInterrupt``) at its first call, i.e. once the missing cells are found.
"""

from __future__ import annotations

import json
import sys
import time

perf = time.perf_counter


def f(a, b):
    return a * b


#: ``resume_fn`` raises KeyboardInterrupt (a Ctrl-C) at call number ``stop``.
RESUME = {"calls": 0, "stop": None, "first": None}


def resume_fn(a, b):
    RESUME["calls"] += 1
    if RESUME["calls"] == RESUME["stop"]:
        RESUME["first"] = (perf(), a, b)
        raise KeyboardInterrupt
    return a * b


#: The images :func:`image` returns, set by the caller.
IMAGES: list = []


def image(i):
    return IMAGES[i]


def main(argv):
    t0 = perf()
    import numpy as np
    import xarray as xr

    import xsweep as xs

    t_import = perf() - t0
    mode, path, n = argv[0], argv[1], int(argv[2])
    # xarray imports its optional duck-array backends (dask, when installed) the first time any
    # Variable is built in a process: a one-off cost of xarray, not of xsweep, timed apart.
    t0 = perf()
    xr.Dataset({"v": ("x", np.zeros(2))})
    t_xarray = perf() - t0

    ps = xs.ParameterSpace(
        [xs.Parameter("a", values=range(n)), xs.Parameter("b", values=range(n))]
    )
    out = {"import_s": t_import, "xarray_first_s": t_xarray}
    t0 = perf()
    ps.enable_cache(path)
    t1 = perf()
    out["open_s"] = t1 - t0
    if mode == "warm":
        ds = ps.sweep(f)
        t2 = perf()
        out["sweep_s"] = t2 - t1
        out["computed"] = int((ds["f_status"].values == 1).sum())
        expected = np.multiply.outer(np.arange(n), np.arange(n))
        out["exact"] = bool(np.array_equal(ds["f"].values, expected))
        t2 = perf()
        ps.sweep(f)
        out["sweep2_s"] = perf() - t2
    elif mode == "resume":
        RESUME["stop"] = 1
        try:
            ps.sweep(resume_fn)
            out["error"] = "the sweep did not call the function: nothing was missing"
        except KeyboardInterrupt:
            t2 = perf()
            t_first, a, b = RESUME["first"]
            out["scan_s"] = t_first - t1
            out["interrupt_s"] = t2 - t_first
            out["first_missing"] = a * n + b
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    # Run the functions from the module ``_cache_child``, not from ``__main__``: their cache
    # key is the module's name.
    import _cache_child

    _cache_child.main(sys.argv[1:])
