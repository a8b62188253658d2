"""Parallel sweeps on real executors: threads, processes, a dask LocalCluster."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xsweep as xs

HELPERS = Path(__file__).resolve().parent / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

from guards import HANG, hang_guard  # noqa: E402
from interrupts import CHILD_CTRL_C  # noqa: E402


def make_space(n=6):
    return xs.ParameterSpace(
        [xs.Parameter("a", values=list(range(n))), xs.Parameter("b", values=[0.5, 1.5, 2.5])]
    )


def outputs(ds):
    return ds.drop_vars([v for v in ds.data_vars if v.endswith("_seconds")])


def counting(log_path, scale):
    """A closure that logs each call to a file (calls happen in other processes)."""

    def work(a, b):
        with open(log_path, "a") as fh:
            fh.write(f"{a} {b}\n")
        return {"value": a * b * scale, "image": np.full((2, 3), a, dtype=np.uint8)}

    return work


def calls_in(log_path):
    if not os.path.exists(log_path):
        return []
    with open(log_path) as fh:
        return [tuple(line.split()) for line in fh]


def test_threads_and_processes_match_serial_exactly(tmp_path):
    ps = make_space()
    offset = 0.1  # a closure: must travel to the process workers

    def f(a, b):
        return {"x": a * b + offset, "v": np.arange(3) * a, "s": f"{a}-{b}"}

    serial = outputs(ps.sweep(f))
    with ThreadPoolExecutor(2) as pool:
        xr.testing.assert_identical(outputs(ps.sweep(f, executor=pool)), serial)
    with ProcessPoolExecutor(2) as pool:
        xr.testing.assert_identical(outputs(ps.sweep(f, executor=pool)), serial)
    xr.testing.assert_identical(outputs(ps.sweep(f, workers=2)), serial)
    xr.testing.assert_identical(outputs(ps.sweep(f, workers=2, chunksize=4)), serial)


def test_process_pool_with_cache_resumes(tmp_path):
    log = tmp_path / "calls.txt"
    work = counting(str(log), 2)
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    ps["b"].value = 1.5
    ps.sweep(work, params=["a"], workers=2)
    assert len(calls_in(log)) == 6
    ds = ps.sweep(work, workers=2)
    assert len(calls_in(log)) == 18  # only the 12 missing cells
    assert ds["value"].sel(a=5, b=2.5).item() == 25.0
    assert ds["image"].dtype == np.uint8
    with xr.open_dataset(tmp_path / "r.nc") as plain:
        assert (plain["work_status"] == 1).all()
        np.testing.assert_array_equal(plain["value"].values, ds["value"].values)


def test_image_sweep_on_a_process_pool_writes_each_image_once_and_exactly(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("i", values=list(range(24)))])
    ps.enable_cache(path)

    def frame(i):
        img = np.full((300, 400, 3), 255, dtype=np.uint8)  # 360 kB: a big, staged cell
        img[0, :, 0] = i
        return img

    ds = ps.sweep(frame, workers=2)
    assert ds["frame"].values[:, 0, 0, 0].tolist() == list(range(24))
    ps.disable_cache()
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]
    with xr.open_dataset(path) as plain:
        assert plain["frame"].encoding["contiguous"] and plain["frame"].dtype == np.uint8
        assert plain["frame"].values[:, 0, 0, 0].tolist() == list(range(24))
        assert (plain["frame"].values[:, 1:] == 255).all()


def test_failures_and_errors_raise_in_parallel():
    ps = make_space()

    def picky(a, b):
        if a == 3:
            raise ValueError(f"no {a}")
        return a

    with pytest.warns(xs.SweepFailuresWarning, match="3 of 18 cells"):
        ds = ps.sweep(picky, workers=2)
    assert (ds["picky_status"].sel(a=3) == 2).all()
    assert ps.failures(picky)["error"].unique().tolist() == ["ValueError: no 3"]
    with pytest.raises(ValueError, match="no 3"):
        ps.sweep(picky, workers=2, errors="raise")
    assert 3 in ps.failures(picky)["a"].tolist()  # recorded even though the sweep raised


def test_unshippable_function_is_a_clear_error():
    lock = threading.Lock()
    ps = make_space()

    def holds_lock(a, b):
        with lock:
            return a

    with pytest.raises(xs.SweepError, match=r"Cannot send .*holds_lock.* to the workers.*lock"):
        ps.sweep(holds_lock, workers=2)
    # Threads share memory: the same function works there.
    with ThreadPoolExecutor(2) as pool:
        assert ps.sweep(holds_lock, executor=pool)["holds_lock"].sum() == 45


def test_killed_worker_is_reported_not_hung(tmp_path):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    marker = tmp_path / "die-once"
    marker.write_text("x")

    def fragile(a, b):
        if a == 4:
            try:
                os.unlink(marker)  # only the first worker to get here dies
            except FileNotFoundError:
                pass
            else:
                os._exit(1)  # the worker process dies
        return a * b

    with (
        hang_guard("the sweep whose worker died never returned"),
        pytest.raises(xs.SweepError, match="A worker failed"),
    ):
        ps.sweep(fragile, workers=2)
    failures = ps.failures(fragile)
    assert len(failures) >= 1 and failures["error"].str.startswith("WorkerError").all()
    assert 4 in failures["a"].tolist()  # the cell that killed the worker is among them
    ds = ps.sweep(fragile, workers=2)  # a fresh pool retries the failed cells
    assert (ds["fragile_status"] == 1).all()
    assert ds["fragile"].sel(a=4, b=2.5).item() == 10.0


def test_batching_sends_fewer_tasks_than_cells():
    class CountingPool(ThreadPoolExecutor):
        tasks = 0

        def submit(self, *args, **kwargs):
            CountingPool.tasks += 1
            return super().submit(*args, **kwargs)

    ps = xs.ParameterSpace([xs.Parameter("i", values=list(range(3000)))])
    with CountingPool(2) as pool:
        ds = ps.sweep(lambda i: i + 1, executor=pool)
    assert ds["lambda"].values.tolist() == list(range(1, 3001))
    assert CountingPool.tasks < 300

    slow = xs.ParameterSpace([xs.Parameter("i", values=list(range(6)))])
    CountingPool.tasks = 0
    with CountingPool(2) as pool:
        slow.sweep(lambda i: time.sleep(0.25) or i, executor=pool)
    assert CountingPool.tasks == 6  # expensive cells: one per task, no idle worker


def test_progress_bar_counts(tmp_path, capsys):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(lambda a, b: a, params=["a"], progress=False)
    assert capsys.readouterr().err == ""
    ps.sweep(lambda a, b: a, progress=True)
    err = capsys.readouterr().err
    assert "18/18" in err and "cached=6" in err and "computed=12" in err and "failed=0" in err


def test_progress_default_is_off_without_a_terminal(capsys):
    make_space().sweep(lambda a, b: a)
    assert capsys.readouterr().err == ""


def test_bad_executor_arguments():
    ps = make_space()
    with pytest.raises(xs.SweepError, match="either executor= or workers="):
        ps.sweep(lambda a: a, workers=2, executor=ThreadPoolExecutor(1))
    with pytest.raises(xs.SweepError, match="workers must be a whole number"):
        ps.sweep(lambda a: a, workers=0)
    with pytest.raises(xs.SweepError, match="must be a concurrent.futures.Executor"):
        ps.sweep(lambda a: a, executor="processes")


SLOW_SWEEP_CHILD = CHILD_CTRL_C + textwrap.dedent(
    """
    import os, sys, time
    import xsweep as xs

    path, cells, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    block_from, log = int(sys.argv[4]), sys.argv[5]
    ps = xs.ParameterSpace([xs.Parameter("i", values=list(range(cells)))])
    ps.enable_cache(path)

    def note(line):
        if log:  # one write on an O_APPEND file: lines from several workers never mix
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(fd, line.encode())
            os.close(fd)

    def slow(i):
        note(f"start {i}\\n")
        if 0 <= block_from <= i:
            time.sleep(3600)  # never returns: only stopping the worker ends this cell
        time.sleep(pause)
        note(f"end {i}\\n")
        return i * 2

    print("started", flush=True)
    try:
        ps.sweep(slow, workers=2, chunksize=1)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def start_slow_sweep(tmp_path, path, cells, pause, block_from=-1, log=""):
    """A child process sweeping ``slow`` on 2 process workers; returns once it has started.

    Cells from ``block_from`` on (if >= 0) never return; each call writes ``start i`` and
    ``end i`` lines to ``log`` (if given).
    """
    script = tmp_path / "child.py"
    script.write_text(SLOW_SWEEP_CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(path), str(cells), str(pause), str(block_from), log],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "started"
    return child


def calls_logged(log) -> tuple[set[int], set[int]]:
    """The cells whose call started, and those whose call returned, per the child's log."""
    started, ended = set(), set()
    if os.path.exists(log):
        with open(log) as fh:
            for line in fh:
                if line.endswith("\n"):
                    what, i = line.split()
                    (started if what == "start" else ended).add(int(i))
    return started, ended


def test_ctrl_c_stops_the_pool_at_once_and_keeps_results(tmp_path):
    # Cells 0-5 return at once; from cell 6 on a call never returns, so only stopping its
    # worker ends it. With both workers inside such a call, no cell could start or end on its
    # own: whatever happens after the Ctrl-C is the sweep's doing, however loaded the machine.
    path, log, block_from = tmp_path / "r.nc", tmp_path / "calls.log", 6
    child = start_slow_sweep(tmp_path, path, 60, 0.0, block_from, str(log))
    try:
        with hang_guard("the two workers never both reached a blocked cell"):
            while not {block_from, block_from + 1} <= calls_logged(log)[0]:
                assert child.poll() is None, f"the child exited early ({child.returncode})"
                time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        # A pool that is not stopped (workers left running, or waited for) never ends: the
        # blocked cells never return.
        out, _ = child.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the sweep did not stop within {HANG:.0f} s of Ctrl-C: it waits for its pool")
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert "interrupted" in out
    started, ended = calls_logged(log)
    # No cell started after the Ctrl-C (cells 8 and 9 were queued for the pool), and the two
    # running cells were stopped inside the call, not waited for.
    assert started == set(range(block_from + 2)), sorted(started)
    assert ended == set(range(block_from)), sorted(ended)
    with xr.open_dataset(path) as ds:
        ok = ds["slow_status"].values == 1
        done = set(np.flatnonzero(ok).tolist())
        # Results kept: every cell the driver had received (at least one: it handed cell 7
        # to the pool only after some result came back), and no other.
        assert done and done <= set(range(block_from)), sorted(done)
        assert ((ds["slow_status"].values == 0) == ~ok).all()
        np.testing.assert_array_equal(ds["slow"].values[ok], (np.arange(60) * 2)[ok])
        assert np.isnan(ds["slow"].values[~ok]).all()  # no value: NaN, not 0 (issue 21)
    assert not os.path.exists(f"{path}.lock")


def test_killed_driver_leaves_no_lock_behind_in_its_workers(tmp_path):
    path = tmp_path / "r.nc"
    child = start_slow_sweep(tmp_path, path, cells=40, pause=0.2)
    time.sleep(1.5)
    workers = subprocess.run(["pgrep", "-P", str(child.pid)], capture_output=True, text=True)
    orphans = [int(p) for p in workers.stdout.split()]
    child.kill()
    child.wait()
    try:
        ps = xs.ParameterSpace([xs.Parameter("i", values=list(range(40)))])
        ps.enable_cache(path)

        def slow(i):
            return i * 2

        slow.__qualname__ = "slow"
        slow.__module__ = "__main__"
        ds = ps.sweep(slow, on_change="keep")  # not blocked by the dead driver's workers
        assert (ds["slow_status"] == 1).all()
        assert ds["slow"].values.tolist() == [2 * i for i in range(40)]
    finally:
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_dask_cluster_with_cache_and_resume(tmp_path, dask_client):
    log = tmp_path / "calls.txt"
    work = counting(str(log), 3)
    ps = make_space()
    serial = outputs(make_space().sweep(counting(str(tmp_path / "serial.txt"), 3)))
    ps.enable_cache(tmp_path / "r.nc")
    ps["a"].value = 2
    ps.sweep(work, params=["b"], executor=dask_client)
    assert len(calls_in(log)) == 3
    ds = ps.sweep(work, executor=dask_client.get_executor())
    assert len(calls_in(log)) == 18
    xr.testing.assert_equal(outputs(ds), serial)  # attrs differ: another closure
    with xr.open_dataset(tmp_path / "r.nc") as plain:
        assert int((plain["work_status"] == 1).sum()) == 18
