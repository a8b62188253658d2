"""The child processes of the power-loss trials (see ``powerloss_harness.py``).

``python powerloss_child.py MODE KIND PATH LOG``: MODE ``sweep`` sweeps KIND (scalar, image,
streamed) into the cache file PATH; ``run_process`` computes scalar cells one by one with
``ps.run_process``; ``verify`` opens PATH with plain xarray, resumes the sweep and prints a JSON
verdict. Each cell returned is logged to LOG (``index time``), outside the LazyFS mount.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import xsweep as xs

N_SCALAR = 3000
N_IMAGE = 100
SHAPE = (256, 352, 3)  # 270 kB: a big cell, written straight into the staged file
N_RUN = 25  # run_process calls: ~0.2 s each on LazyFS
INTERVAL = float(os.environ.get("XSWEEP_PL_INTERVAL", "0.2"))  # fsync_interval


class _Log:
    fd = -1
    inside = True  # the swept function logs its cell; run_process logs once it returned


def note(i: int, returned: bool = False) -> None:
    if _Log.inside or returned:
        os.write(_Log.fd, f"{i} {time.time():.6f}\n".encode())


# Versioned: the log they write to differs between processes, not their results.
@xs.version("1")
def scalar(i):
    time.sleep(0.0003)
    note(i)
    return i * 1.5 + 0.25


def expected_scalar(i):
    return i * 1.5 + 0.25


@xs.version("1")
def image(i):
    time.sleep(0.01)
    note(i)
    return expected_image(i)


def expected_image(i):
    out = np.full(SHAPE, i % 251, dtype=np.uint8)
    out[i % SHAPE[0]] = 255 - i % 7
    return out


def space(kind):
    n = N_SCALAR if kind == "scalar" else N_IMAGE
    param = xs.Parameter("i", values=range(n))
    return xs.ParameterSpace([param]), param


def enable(ps, kind, path):
    budget = "1MiB" if kind == "streamed" else None
    snapshot = float(os.environ.get("XSWEEP_PL_SNAPSHOT", "60"))
    ps.enable_cache(path, fsync_interval=INTERVAL, snapshot_interval=snapshot, memory_budget=budget)


def sweep(ps, kind):
    if kind == "scalar":
        return ps.sweep(scalar)
    return ps.sweep(image, output_dims={"image": ("y", "x", "rgb")})


def expected(fn, i):
    return expected_scalar(i) if fn == "scalar" else expected_image(i)


def main(argv):
    mode, kind, path, log = argv
    _Log.fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    ps, param = space(kind)
    if mode == "verify":
        return verify(ps, kind, path, log)
    enable(ps, kind, path)
    _Log.inside = mode == "sweep"
    if mode == "sweep":
        sweep(ps, kind)
    else:  # one cell at a time, each written back by run_process
        for i in range(int(os.environ.get("XSWEEP_PL_CELLS", N_RUN))):
            param.value = i
            ps.run_process(scalar)
            note(i, returned=True)
        # Idle with the cache on, as a notebook does between calls: what it returned must
        # reach the disk within fsync_interval all the same.
        time.sleep(float(os.environ.get("XSWEEP_PL_IDLE", "0")))
    ps.disable_cache()
    print("done")
    return 0


def verify(ps, kind, path, log):
    """Plain xarray first (never unreadable), then a resumed sweep (every value exact)."""
    import xarray as xr

    wrong = []
    fn = "scalar" if kind == "scalar" else "image"
    present = os.path.exists(path)
    if present:
        try:
            with xr.open_dataset(path) as ds:
                if f"{fn}_status" in ds:
                    status = ds[f"{fn}_status"].values
                    values = ds[fn].values
                    for i in np.flatnonzero(status == 1):
                        if not np.array_equal(values[i], expected(fn, int(i))):
                            wrong.append(f"file {fn}[{i}]")
        except Exception as exc:  # noqa: BLE001 - the verdict is the point
            print(f"UNREADABLE {path}: {type(exc).__name__}: {exc}")
            return 1
    enable(ps, kind, path)
    got = sweep(ps, kind)[fn].values
    for i in range(len(got)):
        if not np.array_equal(got[i], expected(fn, i)):
            wrong.append(f"resumed {fn}[{i}]")
    ps.disable_cache()
    os.close(_Log.fd)
    with open(log) as fh:
        recomputed = [int(line.split()[0]) for line in fh if line.strip()]
    verdict = {"file": "present" if present else "absent", "recomputed": recomputed}
    print(json.dumps({**verdict, "wrong": wrong[:20]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
