"""netCDF calls from several threads of one process: background sweeps, readers, forks.

netCDF-C and HDF5 are not thread-safe; xsweep holds one process-wide lock (xarray's own
netCDF4 lock, made re-entrant: ``xsweep.store.nclock``) around each of its netCDF calls.
Without it these scenarios crash the process (SIGSEGV, SIGBUS, "NetCDF: Not a valid ID") in
most runs; with a lock that is taken the wrong way they hang. So each runs in a child process
(a crash must fail the test, not kill pytest) under a timeout (a hang fails too), a few times.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import xarray as xr

import xsweep as xs
from xsweep.store.nclock import NC_LOCK, close_soon

ROOT = str(Path(__file__).resolve().parents[1])
HANG = 240  # seconds for a child: a guard against deadlocks, never a measure of speed


def run_child(code: str, folder: Path, *args: str) -> str:
    """Run ``code`` in a fresh interpreter on this checkout; its stdout, or fail saying why."""
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONFAULTHANDLER="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(folder), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG,
            cwd=folder,  # not this checkout: the child imports xsweep from PYTHONPATH
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the child hung (deadlock?) for {HANG} s:\n{exc.stderr}") from None
    assert proc.returncode == 0 and "ok" in proc.stdout, (
        f"the child exited with {proc.returncode} (negative: killed by that signal)\n"
        f"{proc.stderr[-3000:]}"
    )
    return proc.stdout


SWEEPS_AT_ONCE = """
import os, sys, numpy as np, xsweep as xs
folder = sys.argv[1]
def f(a):
    return np.arange(3.0) * a
jobs = []
for i in range(8):
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(50)))])
    ps.enable_cache(os.path.join(folder, f"{i}.nc"))
    jobs.append(ps.sweep_async(f, name="f", progress=False))
for job in jobs:
    assert job.result(timeout=200)["f"].sel(a=49).values.tolist() == [0.0, 49.0, 98.0]
for i in range(8):  # every file is whole and says what it is
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(50)))])
    ps.enable_cache(os.path.join(folder, f"{i}.nc"))
    assert ps.sweep(f, name="f", progress=False)["f"].sel(a=7).values.tolist() == [0, 7, 14]
print("ok")
"""


def test_background_sweeps_into_different_files_at_once(tmp_path):
    # Before the lock: 6 runs in 6 crashed (SIGSEGV, SIGBUS)
    for attempt in range(3):
        run_child(SWEEPS_AT_ONCE, tmp_path / str(attempt))


READ_WHILE_PUBLISHING = """
import os, sys, threading, numpy as np, xarray as xr, xsweep as xs
folder = sys.argv[1]
xr.set_options(file_cache_maxsize=2)  # xarray closes and reopens lazy results' files
def f(a):
    return np.arange(1000.0) * a
def space(n=100):
    return xs.ParameterSpace([xs.Parameter("a", values=list(range(n)))])
spaces = []
for k in range(3):
    ps = space()
    ps.enable_cache(os.path.join(folder, f"done{k}.nc"))
    ps.sweep(f, progress=False)
    spaces.append(ps)
kept = [ps.sweep(f, progress=False, lazy=True) for ps in spaces]
finished = threading.Event()
errors = []
def background():  # one sweep at a time: each crash is a reader's against a publish
    try:
        for r in range(30):  # small sweeps: many publishes
            ps = space(20)
            ps.enable_cache(os.path.join(folder, f"w{r}.nc"))
            ds = ps.sweep_async(f, progress=False).result(timeout=200)
            assert ds["f"].sel(a=19).values[1] == 19.0
    except BaseException as exc:
        errors.append(exc)
    finally:
        finished.set()
thread = threading.Thread(target=background)
thread.start()
reads = 0
while not finished.is_set() or reads < 3:
    for ds in kept:  # lazy results kept: read (and reopened) by xarray through the lock
        assert ds["f"].sel(a=39).values[1] == 39.0
    reads += 1
thread.join()
assert not errors, errors
print("ok", reads)
"""


# A child's start: a reference file swept, and a flag for the background writer
_REFERENCE_SWEPT = """
import os, sys, threading, numpy as np, xsweep as xs
folder = sys.argv[1]
def f(a):
    return np.arange(300.0) * a
def space():
    return xs.ParameterSpace([xs.Parameter("a", values=list(range(40)))])
ref = space()
ref.enable_cache(os.path.join(folder, "ref.nc"))
ref.sweep(f, progress=False)
finished = threading.Event()
"""

REOPEN_WHILE_PUBLISHING = """
import os, sys, threading, numpy as np, xsweep as xs
folder = sys.argv[1]
def f(a):
    return np.arange(1000.0) * a
def space(n=100):
    return xs.ParameterSpace([xs.Parameter("a", values=list(range(n)))])
for k in range(3):
    space().sweep(f, progress=False)
    ps = space()
    ps.enable_cache(os.path.join(folder, f"done{k}.nc"))
    ps.sweep(f, progress=False)
del ps
finished = threading.Event()
def background():
    try:
        for r in range(30):
            ps = space(20)
            ps.enable_cache(os.path.join(folder, f"w{r}.nc"))
            ps.sweep_async(f, progress=False).result(timeout=200)
    finally:
        finished.set()
thread = threading.Thread(target=background)
thread.start()
reads = 0
while not finished.is_set() or reads < 3:
    # A notebook cell run again: a space opens a file, its lazy results are dropped unclosed,
    # often while the background sweep holds the lock.
    ps = space()
    ps.enable_cache(os.path.join(folder, f"done{reads % 3}.nc"))
    assert ps.sweep(f, progress=False, lazy=True)["f"].sel(a=3).values[2] == 6.0
    reads += 1
thread.join()
del ps
import gc; gc.collect()
xs.open_dataset(os.path.join(folder, "done0.nc")).close()  # takes and releases the lock
def target(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the descriptor of the listing itself
        return ""
left = [p for p in map(target, os.listdir("/proc/self/fd")) if "done" in os.path.basename(p)]
assert not left, f"files of dropped lazy results left open: {left}"
print("ok", reads)
"""


def test_dropped_lazy_results_are_closed_while_a_background_sweep_publishes(tmp_path):
    # xarray leaves the file of a collected manager open when the lock is busy; files piled
    # up open (several on one path) crash netCDF-C. With the lock but without the deferred
    # close, 8 runs in 8 crashed.
    for attempt in range(2):
        run_child(REOPEN_WHILE_PUBLISHING, tmp_path / str(attempt))


def test_reading_results_while_a_background_sweep_publishes(tmp_path):
    # Before the lock: 10 runs in 10 crashed (SIGSEGV, SIGBUS, abort, "NetCDF: HDF error")
    for attempt in range(3):
        run_child(READ_WHILE_PUBLISHING, tmp_path / str(attempt))


OPEN_WHILE_PUBLISHING = _REFERENCE_SWEPT + """
writing = []
def background():
    try:
        for r in range(12):
            ps = space()
            writing.append(ps)
            ps.enable_cache(os.path.join(folder, f"w{r}.nc"))
            ps.sweep_async(f, progress=False).result(timeout=200)
    finally:
        finished.set()
thread = threading.Thread(target=background)
thread.start()
reads = 0
while not finished.is_set() or reads < 3:
    with xs.open_dataset(ref.cache_path) as ds:  # the notebook's own reads
        assert float(ds["f"].sel(a=39).values[1]) == 39.0
    path = writing[-1].cache_path if writing else None
    if path and os.path.exists(path):  # the file being written, between its publishes
        with xs.open_dataset(path) as ds:
            ds.load()
    reads += 1
thread.join()
print("ok", reads)
"""


def test_xs_open_dataset_while_a_background_sweep_publishes(tmp_path):
    # xarray.open_dataset reads metadata without a lock (pydata/xarray#4100): with it in
    # place of xs.open_dataset, 3 runs in 6 still crash even with xsweep's lock.
    for attempt in range(3):
        run_child(OPEN_WHILE_PUBLISHING, tmp_path / str(attempt))


FORK_WHILE_PUBLISHING = _REFERENCE_SWEPT + """
def background():
    try:
        for r in range(8):
            ps = space()
            ps.enable_cache(os.path.join(folder, f"w{r}.nc"))
            ps.sweep_async(f, progress=False).result(timeout=200)
    finally:
        finished.set()
thread = threading.Thread(target=background)
thread.start()
forks = 0
while not finished.is_set() or forks < 3:
    pid = os.fork()
    if pid == 0:  # a forked worker reads a file: it must not inherit the lock held
        code = 1
        try:
            with xs.open_dataset(ref.cache_path) as ds:
                code = 0 if float(ds["f"].sel(a=39).values[1]) == 39.0 else 2
        finally:
            os._exit(code)
    for _ in range(600):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        threading.Event().wait(0.05)
    else:
        os.kill(pid, 9)
        raise SystemExit("a forked child hung on the netCDF lock")
    assert os.waitstatus_to_exitcode(status) == 0, status
    forks += 1
thread.join()
print("ok", forks)
"""


def test_forking_while_a_background_sweep_publishes(tmp_path):
    for attempt in range(2):
        run_child(FORK_WHILE_PUBLISHING, tmp_path / str(attempt))


# -- the lock itself (in this process: these cannot crash, at worst they would hang) -------
def _in_thread(fn, timeout: float = 30.0):
    """Run ``fn`` in a thread; its result, or fail if it does not finish (a deadlock)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn} did not finish in {timeout} s: a deadlock"
    return out[0] if out else None


def test_the_lock_is_xarrays_and_reentrant(tmp_path):
    from xarray.backends.locks import HDF5_LOCK, NETCDFC_LOCK

    path = str(tmp_path / "r.nc")
    xr.Dataset({"v": ("x", np.arange(4.0))}).to_netcdf(path)
    with NC_LOCK, NC_LOCK:  # re-entrant in this thread
        assert HDF5_LOCK.locked() and NETCDFC_LOCK.locked()
        # xarray in another thread waits for it, as for its own lock
        assert not _in_thread(lambda: HDF5_LOCK.acquire(blocking=False))
        with xs.open_dataset(path) as ds:  # xsweep's reads inside take it again, no deadlock
            assert ds["v"].values.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert not HDF5_LOCK.locked() and not NETCDFC_LOCK.locked()
    assert _in_thread(lambda: xr.load_dataset(path))["v"].values.sum() == 6.0


def test_a_finalizer_never_waits_for_the_lock(tmp_path):
    import netCDF4

    path = str(tmp_path / "r.nc")
    xr.Dataset({"v": ("x", np.arange(4.0))}).to_netcdf(path)
    nc = netCDF4.Dataset(path)
    holding, release = threading.Event(), threading.Event()

    def hold():
        with NC_LOCK:
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(30)
    started = time.monotonic()
    close_soon(nc.close)  # as from __del__ in a thread inside an xarray read: returns at once
    assert time.monotonic() - started < 5 and nc.isopen()
    release.set()
    holder.join(30)
    assert not nc.isopen()  # closed when the holder released the lock


def test_a_failed_try_for_the_lock_holds_no_part_of_it():
    from xarray.backends.locks import HDF5_LOCK, NETCDFC_LOCK

    # Another thread inside netCDF holds the part taken last; a finalizer's try (close_soon)
    # gets the first part, fails on that one, and must give the first back.
    first, last = NC_LOCK.inner.locks[0], NC_LOCK.inner.locks[-1]  # in the order taken
    holding, release = threading.Event(), threading.Event()

    def hold():
        with last:
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(30)
    try:
        assert NC_LOCK.acquire(blocking=False) is False
        assert not first.locked()
    finally:
        release.set()
        holder.join(30)
    with NC_LOCK:  # and it is free for the next one
        assert HDF5_LOCK.locked() and NETCDFC_LOCK.locked()


COLLECTED_INSIDE_A_READ = """
import gc, os, sys, threading
import xarray as xr
import xsweep as xs
from xarray.backends.locks import HDF5_LOCK
path = os.path.join(sys.argv[1], "r.nc")

def double(a):
    return a * 2

def scenario():
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(path)
    ps.run_process(double, a=1)  # only the journal holds it
    ps.cycle = ps  # freed by the cyclic garbage collector only
    del ps
    with HDF5_LOCK:  # as inside a plain xr.open_dataset read, in this thread
        gc.collect()
    with xs.open_dataset(path):  # the next release of the lock closes the store: published
        pass
    with xr.open_dataset(path) as ds:
        assert ds["double"].sel(a=1).item() == 2 and not os.path.exists(path + ".journal")
    print("ok")

thread = threading.Thread(target=scenario, daemon=True)
thread.start()
thread.join(60)
assert not thread.is_alive(), "collected inside a read, the space waited for the lock forever"
"""


def test_a_cached_space_collected_inside_a_read_never_waits_for_the_lock(tmp_path):
    # A space in a reference cycle is freed whenever the collector runs, also inside
    # xarray's read of another file: closing its store there used to deadlock the thread.
    assert "ok" in run_child(COLLECTED_INSIDE_A_READ, tmp_path / "child")


def test_the_lock_pickles_to_this_processes_lock(tmp_path):
    import pickle

    assert pickle.loads(pickle.dumps(NC_LOCK)) is NC_LOCK
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(str(tmp_path / "r.nc"))
    ds = ps.sweep(lambda a: np.arange(300.0) * a, name="f", progress=False, lazy=True)
    again = pickle.loads(pickle.dumps(ds))  # dask clusters ship lazy results this way
    assert again["f"].sel(a=2).values[1] == 2.0
