"""Background sweeps: ``ps.sweep_async`` returns at once; the job fills, stops and resumes.

Cells wait on events the test sets, so nothing here depends on how fast the machine is; the
only clock is a generous hang guard (HANG) whose expiry is a failure with a message.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings

import numpy as np
import pytest
import xarray as xr

import xsweep as xs

HANG = 120.0  # seconds: a guard against hangs, never a measure of speed

GATE = threading.Event()  # cells after the first OPEN ones wait for it
STARTED: list[int] = []
OPEN = {"cells": 0}


def gated(a, b):
    STARTED.append(a * 10 + b)
    if len(STARTED) > OPEN["cells"]:
        assert GATE.wait(HANG), "the test never opened the gate"
    return a * 10 + b


TOKENS = threading.Semaphore(0)


def one_at_a_time(a, b):
    STARTED.append(a * 10 + b)
    assert TOKENS.acquire(timeout=HANG), "the test never let the cell run"
    return a * 10 + b


@pytest.fixture(autouse=True)
def reset():
    GATE.clear()
    STARTED.clear()
    OPEN["cells"] = 0
    while TOKENS.acquire(blocking=False):
        pass
    yield
    GATE.set()  # never leave a job's thread waiting
    for _ in range(100):
        TOKENS.release()


def space() -> xs.ParameterSpace:
    return xs.ParameterSpace(
        [xs.Parameter("a", values=range(4)), xs.Parameter("b", values=range(5))]
    )


def until(condition, what: str) -> None:
    deadline = time.monotonic() + HANG
    while not condition():
        assert time.monotonic() < deadline, f"hang guard: {what}"
        time.sleep(0.01)


def expected(ds: xr.Dataset) -> np.ndarray:
    return ds["a"].values[:, None] * 10 + ds["b"].values[None, :]


def test_a_background_sweep_returns_at_once_and_fills_while_the_caller_works():
    ps = space()
    job = ps.sweep_async(gated, progress=False)
    # The first cell is waiting for the gate, yet we are here: the call did not block.
    until(lambda: len(STARTED) == 1, "the first cell never started")
    assert not job.done()
    assert job.counts["computed"] == 0
    with pytest.raises(TimeoutError, match="still running.*job.stop"):
        job.result(timeout=0.01)
    GATE.set()
    ds = job.result(timeout=HANG)
    assert job.done() and np.array_equal(ds["gated"].values, expected(ds))
    assert job.counts == {"cached": 0, "computed": 20, "failed": 0, "left": 0}
    assert "done, 20 computed" in repr(job)


def test_counts_are_live_while_it_runs(tmp_path):
    """Cells are let through one by one; the counts follow while the sweep runs (they are
    reported when a cell starts, at most every 0.2 s) and are exact at the end."""
    ps = space()
    ps.enable_cache(str(tmp_path / "r.nc"))
    job = ps.sweep_async(one_at_a_time, progress=False)
    seen = []
    deadline = time.monotonic() + HANG
    while not job.done():
        assert time.monotonic() < deadline, f"hang guard: counts stayed at {job.counts}"
        seen.append(job.counts["computed"])
        TOKENS.release()
        time.sleep(0.05)
    running = [n for n in seen if n]
    assert running and min(running) < 20, f"no count was seen while it ran: {seen}"
    assert seen == sorted(seen)  # counts only grow
    assert job.counts == {"cached": 0, "computed": 20, "failed": 0, "left": 0}


def test_stop_keeps_what_was_computed_and_the_next_sweep_resumes_exactly(tmp_path):
    """Stop lets the cell in flight finish; no new cell starts once the sweep sees the stop
    (it looks when a cell starts, at most every 0.2 s: a handful of cells here)."""
    path = tmp_path / "r.nc"
    ps = space()
    ps.enable_cache(str(path))
    job = ps.sweep_async(one_at_a_time, progress=False)
    for _ in range(6):
        TOKENS.release()
    until(lambda: len(STARTED) == 7, "the first six cells did not run")
    job.stop(wait=False)
    deadline = time.monotonic() + HANG
    while not job.done():  # cells go on one at a time until the sweep sees the stop
        assert time.monotonic() < deadline, "hang guard: the stop was never seen"
        TOKENS.release()
        time.sleep(0.02)
    ds = job.result(timeout=HANG)
    assert job.stopped and "stopped" in repr(job)
    done = ds["one_at_a_time_status"].values.ravel() == 1
    assert 7 <= done.sum() < 20 and done.sum() == len(STARTED) == job.counts["computed"]
    values = ds["one_at_a_time"].values.ravel()
    assert np.array_equal(values[done], expected(ds).ravel()[done])
    with xr.open_dataset(path) as shared:  # the file was published, as after any stop
        assert int((shared["one_at_a_time_status"] == 1).sum()) == done.sum()
    computed_before = len(STARTED)
    STARTED.clear()
    for _ in range(20):
        TOKENS.release()
    again = ps.sweep(one_at_a_time, progress=False)
    assert len(STARTED) == 20 - computed_before  # only the missing cells
    assert np.array_equal(again["one_at_a_time"].values, expected(again))
    assert (again["one_at_a_time_status"] == 1).all()


def test_ps_stop_sweep_stops_it_too(tmp_path):
    ps = space()
    ps.enable_cache(str(tmp_path / "r.nc"))
    job = ps.sweep_async(one_at_a_time, progress=False)
    until(lambda: len(STARTED) == 1, "the first cell did not start")
    stopper = threading.Thread(target=ps.stop_sweep)
    stopper.start()
    until(lambda: job.stopped, "stop_sweep never stopped it")
    deadline = time.monotonic() + HANG
    while stopper.is_alive():
        assert time.monotonic() < deadline, "hang guard: stop_sweep never returned"
        TOKENS.release()
        time.sleep(0.02)
    assert job.done() and job.counts["computed"] < 20


def test_the_cache_answers_while_a_background_sweep_runs_and_a_second_sweep_is_refused(tmp_path):
    ps = space()
    ps.enable_cache(str(tmp_path / "r.nc"))
    OPEN["cells"] = 20
    ps.sweep(gated, cells={"a": [0]}, progress=False)  # row a=0 cached
    STARTED.clear()
    OPEN["cells"] = 0
    job = ps.sweep_async(gated, progress=False)
    until(lambda: len(STARTED) == 1, "the background sweep did not start")
    # The kernel stays usable: cached cells come back without waiting for the sweep.
    answered = threading.Event()
    result = {}

    def ask():
        result["value"] = ps.run_process(gated, a=0, b=3)
        answered.set()

    threading.Thread(target=ask, daemon=True).start()
    assert answered.wait(HANG), "run_process waited for the background sweep"
    assert result["value"] == 3
    # A cell the cache lacks is computed and returned, not cached: the sweep writes the file.
    with pytest.warns(UserWarning, match="computed but not cached.*background sweep"):
        assert ps.run_process(slow_cell, a=3, b=4) == 34
    with pytest.raises(xs.StoreLockedError, match="background sweep.*job.stop"):
        ps.sweep_async(gated)
    with pytest.raises(xs.StoreLockedError, match="another thread.*ps.stop_sweep"):
        ps.sweep(gated, progress=False)
    GATE.set()
    ds = job.result(timeout=HANG)
    assert job.counts["cached"] == 5 and job.counts["computed"] == 15
    assert np.array_equal(ds["gated"].values, expected(ds))


def failing(a, b):
    if a == 2:
        raise ValueError(f"no {b}")
    return a


def test_a_failing_cell_behaves_as_in_sweep():
    ps = space()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ps.sweep_async(failing, progress=False).result(timeout=HANG)
    assert any(issubclass(w.category, xs.SweepFailuresWarning) for w in caught)
    assert int((ds["failing_status"] == 2).sum()) == 5
    job = ps.sweep_async(failing, errors="raise", progress=False)
    with pytest.raises(ValueError, match="no 0") as info:
        job.result(timeout=HANG)
    if sys.version_info >= (3, 11):  # exception notes (PEP 678): Python 3.11+
        assert "errors='record'" in info.value.__notes__[0]
    assert job.done() and "failed" in repr(job)


def test_unknown_options_are_refused_at_once():
    with pytest.raises(xs.SweepError, match="workerz.*its options are"):
        space().sweep_async(gated, workerz=2)


def slow_cell(a, b):
    time.sleep(0.02)
    return a * 10 + b


def test_a_background_sweep_on_a_process_pool_stops_and_resumes_exactly(tmp_path):
    path = tmp_path / "r.nc"
    ps = space()
    ps.enable_cache(str(path))
    job = ps.sweep_async(slow_cell, workers=2, progress=False)
    until(lambda: (job.counts["computed"] or 0) >= 2 or job.done(), "no cell came back")
    job.stop()
    ds = job.result(timeout=HANG)
    done = ds["slow_cell_status"].values.ravel() == 1
    assert done.sum() >= 2
    assert np.array_equal(ds["slow_cell"].values.ravel()[done], expected(ds).ravel()[done])
    again = ps.sweep_async(slow_cell, workers=2, progress=False).result(timeout=HANG)
    assert np.array_equal(again["slow_cell"].values, expected(again))
    with xr.open_dataset(path) as shared:
        assert (shared["slow_cell_status"] == 1).all()
