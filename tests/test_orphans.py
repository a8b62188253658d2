"""Workers of a pool that xsweep owns (``workers=``) do not outlive their driver.

Black-box tests on real processes: a child process (the driver) sweeps a slow function with
``workers=2`` and a cache; the test SIGKILLs the driver alone, or its whole process group, or
interrupts it (SIGINT, as Ctrl-C), and then watches the worker processes. A worker that is
a zombie counts as exited: orphans are reparented to init, which may reap them late.

The swept function lives in a small module written next to the cache, imported under the same
name (``orphan_cells``) by the driver, its workers and the test process, so the test process
resumes the killed sweep under the same function key and code fingerprint.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

HELPERS = Path(__file__).resolve().parent / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

from interrupts import CHILD_CTRL_C  # noqa: E402

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads process states from /proc"
)

CELLS = 50
PAUSE = 0.2  # seconds per cell: a sweep of ~5 s on 2 workers
#: How long a worker may outlive its driver (the watchdog polls twice a second).
GRACE = 10.0

MODULE = textwrap.dedent(
    '''
    """Swept by the driver and its workers, and resumed by the test process."""
    import multiprocessing
    import os
    import sys
    import time

    import xsweep as xs

    CELLS = {cells}
    PAUSE = {pause}
    #: Cells called in this process while the log is off (the test process).
    CALLS = []


    def space():
        return xs.ParameterSpace([xs.Parameter("a", values=list(range(CELLS)))])


    def square(a):
        log = os.environ.get("XSWEEP_ORPHAN_LOG")
        if not log:
            CALLS.append(a)
            return a * a
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{{os.getpid()}} {{a}}\\n".encode())  # one write: lines never mix
        finally:
            os.close(fd)
        time.sleep(PAUSE)
        return a * a


    def main(path, start_method=None):
        if start_method is not None:
            multiprocessing.set_start_method(start_method)
        ps = space()
        ps.enable_cache(path)
        try:
            ps.sweep(square, workers=2, progress=False)
        except KeyboardInterrupt:
            sys.exit(3)
    '''
).format(cells=CELLS, pause=PAUSE)


class Driver:
    """A child process sweeping ``orphan_cells.square`` on 2 workers, in a new session."""

    def __init__(self, tmp_path: Path, start_method: str | None = None):
        (tmp_path / "orphan_cells.py").write_text(MODULE)
        self.folder = tmp_path
        self.cache = tmp_path / "cache.nc"
        self.log = tmp_path / "cells.log"
        self.stderr = open(tmp_path / "driver.err", "wb")
        code = (
            f"{CHILD_CTRL_C}; "  # test_ctrl_c_still_stops_the_workers interrupts it
            f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
            f"import orphan_cells; orphan_cells.main({str(self.cache)!r}, {start_method!r})"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, "XSWEEP_ORPHAN_LOG": str(self.log)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            start_new_session=True,  # its own process group: the cleanup kills all of it
        )
        self.pgid = self.proc.pid

    def started(self) -> list[tuple[int, int]]:
        """``(worker pid, cell)`` of every call so far, in order."""
        try:
            text = self.log.read_text()
        except FileNotFoundError:
            return []
        return [tuple(map(int, line.split())) for line in text.splitlines() if line]

    def wait_for_cells(self, n: int, timeout: float = 60.0) -> set[int]:
        """Wait until both workers computed and ``n`` cells started; the workers' pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.started()
            pids = {pid for pid, _ in calls}
            if len(pids) >= 2 and len(calls) >= n:
                return pids
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(
            f"the driver did not get going: exit {self.proc.poll()}, {len(self.started())} "
            f"cells started\n{self.error_text()}"
        )

    def error_text(self) -> str:
        self.stderr.flush()
        return (self.folder / "driver.err").read_text(errors="replace")[-3000:]

    def cleanup(self) -> None:
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has exited: it only awaits its reaper)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat[stat.rindex(b")") + 2 :].split()[0]
    return state not in (b"Z", b"X", b"x")


def live_in_group(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X", b"x"):
            out.append(int(entry))
    return out


def wait_gone(pids, timeout: float = GRACE) -> tuple[list[int], float]:
    """Wait until no pid of ``pids`` is alive; returns (the ones still alive, seconds)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() >= deadline:
            return left, time.monotonic() - t0
        time.sleep(0.05)


def kill_driver(driver: Driver, whole_group: bool) -> None:
    if whole_group:
        os.killpg(driver.pgid, signal.SIGKILL)
    else:
        os.kill(driver.proc.pid, signal.SIGKILL)
    assert driver.proc.wait(timeout=10) == -signal.SIGKILL


@pytest.mark.parametrize("whole_group", [False, True], ids=["driver-only", "process-group"])
def test_workers_exit_when_their_driver_is_killed(tmp_path, whole_group):
    driver = Driver(tmp_path)
    try:
        workers = driver.wait_for_cells(2)
        assert driver.proc.pid not in workers
        kill_driver(driver, whole_group)
        left, seconds = wait_gone(workers | set(live_in_group(driver.pgid)))
        assert not left, f"workers {left} still alive {seconds:.1f} s after the driver's SIGKILL"
        assert not live_in_group(driver.pgid)
        # They exited before finishing the sweep: the kill really landed mid-sweep.
        assert len(driver.started()) < CELLS
    finally:
        driver.cleanup()


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_workers_exit_when_their_driver_is_killed_on_other_start_methods(tmp_path, start_method):
    # Under forkserver the workers' parent is the fork server, which outlives the driver.
    driver = Driver(tmp_path, start_method)
    try:
        workers = driver.wait_for_cells(2)
        kill_driver(driver, whole_group=False)
        left, seconds = wait_gone(workers | set(live_in_group(driver.pgid)))
        assert not left, f"{left} still alive {seconds:.1f} s after the driver's SIGKILL"
    finally:
        driver.cleanup()


def load_cells_module(folder: Path):
    """``orphan_cells`` from ``folder``, loaded in this process under the driver's name."""
    spec = importlib.util.spec_from_file_location("orphan_cells", folder / "orphan_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("whole_group", [False, True], ids=["driver-only", "process-group"])
def test_resume_after_the_kill_returns_exact_values(tmp_path, whole_group):
    driver = Driver(tmp_path)
    try:
        driver.wait_for_cells(10)  # some cells are in the store by then
        kill_driver(driver, whole_group)
    finally:
        driver.cleanup()
    started = [cell for _, cell in driver.started()]
    assert len(set(started)) == len(started), "a cell was computed twice"

    cells = load_cells_module(tmp_path)
    ps = cells.space()
    ps.enable_cache(tmp_path / "cache.nc")
    try:
        ds = ps.sweep(cells.square, errors="raise", progress=False)
    finally:
        ps.disable_cache()
    want = np.arange(CELLS) ** 2
    assert (ds["square_status"].values == 1).all()
    np.testing.assert_array_equal(ds["square"].values, want)
    called = cells.CALLS
    assert len(set(called)) == len(called), "the resume called the function twice for a cell"
    assert 0 < len(called) < CELLS - 5, f"the resume recomputed {len(called)} cells"
    # Every cell the driver never started is computed by the resume.
    assert set(range(CELLS)) - set(started) <= set(called)
    with xr.open_dataset(tmp_path / "cache.nc") as plain:
        assert (plain["square_status"].values == 1).all()
        np.testing.assert_array_equal(plain["square"].values, want)


def test_ctrl_c_still_stops_the_workers(tmp_path):
    driver = Driver(tmp_path)
    try:
        workers = driver.wait_for_cells(2)
        os.kill(driver.proc.pid, signal.SIGINT)  # the driver alone, as KeyboardInterrupt
        assert driver.proc.wait(timeout=10) == 3, driver.error_text()
        left, seconds = wait_gone(workers, timeout=5.0)
        assert not left, f"workers {left} still alive {seconds:.1f} s after the interrupt"
        assert not live_in_group(driver.pgid)
    finally:
        driver.cleanup()
