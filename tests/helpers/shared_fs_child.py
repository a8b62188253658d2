"""A cached sweep in its own process, for tests/test_shared_fs.py; prints one line of JSON.

Usage: python shared_fs_child.py '{"path": ..., "cells": 10, ...}'. Keys: ``path`` (the cache
file), ``cells``, ``netcdf4_first`` (import netCDF4 before xsweep opens the cache), ``h5py``
(then open the results file with h5py too). The swept function reads the environment:
``XS_CALLS`` (a file it appends each cell to), ``XS_KILL_AT`` (SIGKILL its own process at
that cell), ``XS_READY`` (a file written at the first cell: pid and host), ``XS_DELAY``.
"""

import json
import os
import signal
import socket
import sys
import time

ARGS = json.loads(sys.argv[1]) if __name__ == "__main__" else {}
if ARGS.get("netcdf4_first"):
    import netCDF4  # noqa: F401  (as a notebook that opened some input file first)

import xarray as xr  # noqa: E402

import xsweep as xs  # noqa: E402
from xsweep.errors import StoreError  # noqa: E402


def square(n):
    if n == int(os.environ.get("XS_KILL_AT", "-1")):
        os.kill(os.getpid(), signal.SIGKILL)
    ready = os.environ.get("XS_READY")
    if ready and not os.path.exists(ready):
        with open(ready + ".tmp", "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, fh)
        os.replace(ready + ".tmp", ready)
    with open(os.environ["XS_CALLS"], "a") as fh:
        fh.write(f"{n}\n")
    time.sleep(float(os.environ.get("XS_DELAY", "0")))
    return n * n


def main() -> None:
    out = {"pid": os.getpid(), "host": socket.gethostname()}
    try:
        ps = xs.ParameterSpace([xs.Parameter("n", values=range(ARGS["cells"]))])
        ps.enable_cache(ARGS["path"])
        out["values"] = ps.sweep(square, progress=False)["square"].values.tolist()
        ps.disable_cache()
        with xr.open_dataset(ARGS["path"]) as f:
            out["read"] = f["square"].values.tolist()
            out["status"] = f["square_status"].values.tolist()
    except StoreError as exc:
        out["error"] = type(exc).__name__
        out["message"] = str(exc)
    out["hdf5_env"] = os.environ.get("HDF5_USE_FILE_LOCKING")
    if ARGS.get("h5py") and "error" not in out:
        import h5py

        try:
            h5py.File(ARGS["path"], "r").close()
            out["h5py"] = "opened"
        except OSError as exc:
            out["h5py"] = str(exc)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
