"""One read policy: a sweep with nothing to compute reads, as run_process does, whoever writes.

A second process holds the cache file's writer lock (it is sweeping another function). A
sweep of a function whose cells are all computed answers from the file, like ``run_process``
of one of its cells; a sweep that has cells to compute is refused, naming the writer.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import xsweep as xs

HOLDER = textwrap.dedent(
    """
    import os, sys, time
    import xsweep as xs

    path, started, release = sys.argv[1:4]
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    ps.enable_cache(path)

    def slow(a):
        open(started, "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.02)
        return a

    ps.sweep(slow, progress=False)
    """
)

CALLS: list[int] = []


def square(a):
    CALLS.append(a)
    return a * a


def cube(a):
    CALLS.append(a)
    return a**3


def space() -> xs.ParameterSpace:
    return xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])


@pytest.fixture
def holder(tmp_path):
    """A results file with ``square`` computed, then a process holding its writer lock."""
    path = tmp_path / "r.nc"
    first = space()
    first.enable_cache(path)
    first.sweep(square, progress=False)
    first.disable_cache()
    started, release = tmp_path / "started", tmp_path / "release"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(started), str(release)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the holder never started its sweep"
        time.sleep(0.02)
    try:
        yield path, proc
    finally:
        release.touch()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()


def test_a_complete_function_is_read_while_another_process_writes_the_file(holder):
    path, proc = holder
    ps = space()
    ps.enable_cache(path)
    CALLS.clear()
    assert ps.run_process(square, a=2) == 4  # the read path run_process always had
    ds = ps.sweep(square, progress=False)  # was StoreLockedError: every sweep took the lock
    assert ds["square"].values.tolist() == [1, 4, 9]
    assert (ds["square_status"] == 1).all()
    assert CALLS == []
    assert proc.poll() is None, "the writer let go of the file: the test proves nothing"
    # A part of the grid reads the same way.
    assert int(ps.sweep(square, cells={"a": [3]}, progress=False)["square"].sel(a=3)) == 9
    assert CALLS == []
    ps.disable_cache()


def test_a_function_with_cells_to_compute_is_still_refused_naming_the_writer(holder):
    path, proc = holder
    ps = space()
    ps.enable_cache(path)
    CALLS.clear()
    with pytest.raises(xs.StoreLockedError, match=rf"being written by process {proc.pid}\b"):
        ps.sweep(cube, progress=False)
    with pytest.raises(xs.StoreLockedError):
        ps.sweep(square, force_recompute=True, progress=False)
    assert CALLS == []
    ps.disable_cache()


def test_the_refused_sweep_runs_once_the_writer_is_done(tmp_path, holder):
    path, proc = holder
    ps = space()
    ps.enable_cache(path)
    with pytest.raises(xs.StoreLockedError):
        ps.sweep(cube, progress=False)
    (tmp_path / "release").touch()
    assert proc.wait(timeout=60) == 0
    CALLS.clear()
    np.testing.assert_array_equal(ps.sweep(cube, progress=False)["cube"].values, [1, 8, 27])
    assert CALLS == [1, 2, 3]
    ps.disable_cache()
