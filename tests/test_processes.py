"""Real processes against one cache file: SIGKILLs at random moments, a second writer, a stale
lock, resuming in a new process, and run_process write-backs cut short by a kill.

Children run ``tests/helpers/sweep_child.py`` (imported as ``sweep_child`` on both sides, so the
swept function has the same key, ``sweep_child:product``, in the child and here). A child
reports, with one ``os.write`` per line on an ``O_APPEND`` file, every cell it has handed to the
store: in a sweep, a cell is recorded before the function is called for the next one, so each
call reports the previous call's cell. A reported cell must survive anything.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xsweep as xs
from xsweep.store.journal import HEADER_LEN, read_records

HELPERS = Path(__file__).resolve().parent / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

import sweep_child  # noqa: E402
from guards import hang_guard  # noqa: E402
from sweep_child import expected, flat_index, make_space, product  # noqa: E402

#: Every variable a cache file holds for ``product``.
NAMES = ("product", "product_status", "product_seconds", "product_error", "product_messages")
TIMEOUT = 60.0


# ---------------------------------------------------------------------------------------------
# Children and what they report
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def children():
    """Start children; any still running at teardown are SIGKILLed (by their own pid)."""
    started: list[subprocess.Popen] = []

    def start(tmp_path: Path, **cfg) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HELPERS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        env.setdefault("MPLBACKEND", "Agg")
        cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()}
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sweep_child; sweep_child.main()", json.dumps(cfg)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def finish(proc: subprocess.Popen, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Wait for ``proc``; its return code and stderr."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child {proc.pid} did not finish in {timeout} s:\n{err.decode()}")
    return proc.returncode, err.decode()


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            rc, err = finish(proc)
            pytest.fail(f"child exited ({rc}) before {what}:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def read_report(path: Path, nb: int) -> tuple[list[int], bool]:
    """Flat indices of the cells a child reported, in order, and whether it reported done.

    Only complete lines count (each was one ``os.write``).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], False
    cells, done = [], False
    for line in data.split(b"\n")[:-1]:
        if line == b"done":
            done = True
        else:
            a, b = line.split()
            cells.append(flat_index(a, b, nb))
    return cells, done


def leftovers(path: Path) -> list[str]:
    """Files next to the cache file that belong to it (journal, lock, temporary files)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "."))


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def check_file(path: Path, na: int, nb: int, *, layout: bool = True) -> np.ndarray:
    """Open the file as a colleague without xsweep would and check what it says is right.

    Every variable is there (with ``layout``); the cells it marks computed hold their exact
    value and the others NaN. Returns the flat indices of the computed cells.
    """
    with xr.open_dataset(path) as ds:
        ds.load()
    if not layout and "product_status" not in ds:
        return np.array([], dtype=np.int64)
    missing = [n for n in NAMES if n not in ds.variables]
    assert not missing, f"{path} lacks {missing}; it has {list(ds.variables)}"
    assert ds["product"].dims == ("a", "b")
    np.testing.assert_array_equal(ds["a"].values, np.arange(1, na + 1))
    np.testing.assert_array_equal(ds["b"].values, 0.5 * np.arange(nb))
    status = ds["product_status"].values.reshape(-1)
    assert set(np.unique(status).tolist()) <= {0, 1}, np.unique(status)
    computed = status == 1
    values = ds["product"].values.reshape(-1)
    want = expected(na, nb).reshape(-1)
    wrong = np.flatnonzero(computed & (values != want))
    assert wrong.size == 0, f"computed cells with wrong values: {wrong[:10]}"
    assert np.isnan(values[~computed]).all(), "a cell not computed does not read NaN"
    return np.flatnonzero(computed)


def check_complete(ds: xr.Dataset, na: int, nb: int) -> None:
    assert (ds["product_status"].values == 1).all()
    np.testing.assert_array_equal(ds["product"].values, expected(na, nb))


def check_recovered_cells(ps: xs.ParameterSpace, cells, nb: int, rng: random.Random) -> None:
    """Each of ``cells`` is read from the cache by run_process, exactly, with no call.

    Up to 400 of them: the last 200 (nearest the kill) and 200 others at random.
    """
    cells = list(cells)
    if len(cells) > 400:
        cells = rng.sample(cells[:-200], 200) + cells[-200:]
    a_values = ps["a"].values
    b_values = ps["b"].values
    sweep_child.CALLS.clear()
    for index in cells:
        i, j = divmod(index, nb)
        a, b = a_values[i].item(), b_values[j].item()
        value = ps.run_process(product, a=a, b=b)
        assert value == a * b, f"cell a={a}, b={b} read {value!r} from the cache"
    assert sweep_child.CALLS == [], (
        f"reported cells were not in the cache and were computed again: {sweep_child.CALLS[:10]}"
    )


def resume_and_check(
    path: Path, na: int, nb: int, starts: set[int], *, reported=(), rng=None
) -> int:
    """Sweep the cache to completion in this process and check only missing cells ran.

    The cells computed before were a prefix ``[0, k)`` of the C-order grid, ``k`` in
    ``starts``: the sweep must call exactly the cells from ``k`` on, once each, in order.
    ``reported`` cells are first read back with run_process. Returns ``k``.
    """
    total = na * nb
    ps = make_space(na, nb)
    ps.enable_cache(path)
    if reported:
        check_recovered_cells(ps, reported, nb, rng or random.Random(0))
    sweep_child.CALLS.clear()
    ds = ps.sweep(product)
    called = [flat_index(a, b, nb) for a, b in sweep_child.CALLS]
    k = total - len(called)
    assert k in starts, (
        f"the resumed sweep made {len(called)} calls, so {k} cells were found computed; "
        f"expected one of {sorted(starts)}"
    )
    assert called == list(range(k, total)), (
        f"the resumed sweep called cells other than the missing ones: first {called[:5]}"
    )
    check_complete(ds, na, nb)
    assert leftovers(path) == [], f"sidecars left after a completed sweep: {leftovers(path)}"
    assert check_file(path, na, nb).size == total
    ps.disable_cache()
    assert leftovers(path) == []
    return k


# ---------------------------------------------------------------------------------------------
# 1. SIGKILL at random moments
# ---------------------------------------------------------------------------------------------
# (mode, na, nb, seconds per call, when to kill). "when" is a window in seconds after the
# child is ready (a random moment in it), or ("publish", n): a random moment within the n-th
# snapshot the child writes, seen as a new file appearing next to the cache file.
_SMALL = ("sweep", 60, 50, 0.0002)  # 3,000 cells, ~1 s of sweeping
_LARGE = ("sweep", 200, 200, 0.0)  # 40,000 cells: the journal outgrows 1 MB mid-sweep
_WRITE_BACKS = ("run_process", 30, 40, 0.0)  # 1,200 run_process write-backs, ~1 s
KILL_TRIALS = [
    (*_SMALL, 1.1),
    (*_SMALL, 1.1),
    (*_SMALL, ("publish", 1)),  # the first snapshot, with the layout, at the first cell
    (*_SMALL, ("publish", 2)),  # the snapshot at the end of the sweep
    (*_LARGE, 0.45),
    (*_LARGE, 0.45),
    (*_LARGE, ("publish", 2)),  # the mid-sweep snapshot, when the journal outgrew the file
    (*_LARGE, ("publish", 3)),  # the snapshot at the end of the sweep
    (*_WRITE_BACKS, 1.2),
    (*_WRITE_BACKS, 1.2),
]


def _trial_id(i: int) -> str:
    mode, na, nb, _, when = KILL_TRIALS[i]
    moment = f"publish{when[1]}" if isinstance(when, tuple) else "timed"
    return f"{mode}-{na * nb}-{moment}-{i}"


def kill_during_publish(proc, path: Path, known: set[str], nth: int, rng) -> None:
    """SIGKILL ``proc`` a random few ms into the ``nth`` snapshot it writes of ``path``.

    A snapshot shows as activity: a file other than ``known`` next to ``path`` (where a
    complete file is written before it replaces ``path``), or ``path`` itself changing. It
    ends after 5 ms without activity. If the child finishes first, it is not killed.
    """

    def signature():
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    seen, active, quiet_since, last = 0, False, None, signature()
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        now_signature = signature()
        busy = now_signature != last or any(n not in known for n in os.listdir(path.parent))
        last = now_signature
        if busy:
            quiet_since = None
            if not active:
                active, seen = True, seen + 1
                if seen == nth:
                    time.sleep(rng.uniform(0.0, 0.008))
                    break
        elif active:
            quiet_since = quiet_since or time.monotonic()
            active = time.monotonic() - quiet_since < 0.005
        time.sleep(0.0003)
    proc.send_signal(signal.SIGKILL)


def kill_when(proc, when, path: Path, report: Path, ready: Path, nb: int, rng):
    """SIGKILL a sweeping child once ready: a random moment within ``when`` seconds, or inside
    its ``when[1]``-th publish. Returns the cells it reported and whether it reported done."""
    wait_for(ready.exists, proc, "the child is ready to sweep")
    if isinstance(when, tuple):
        known = {path.name, f"{path.name}.journal", f"{path.name}.lock", report.name, ready.name}
        kill_during_publish(proc, path, known, when[1], rng)
    else:
        time.sleep(rng.uniform(0.0, when))
        proc.send_signal(signal.SIGKILL)
    rc, err = finish(proc)
    reported, done = read_report(report, nb)
    assert rc == -signal.SIGKILL or (rc == 0 and done), f"child failed ({rc}):\n{err}"
    return reported, done


@pytest.mark.parametrize("trial", range(len(KILL_TRIALS)), ids=_trial_id)
def test_sigkill_at_a_random_moment_loses_no_reported_cell(tmp_path, children, trial):
    mode, na, nb, delay, when = KILL_TRIALS[trial]
    rng = random.Random(f"xsweep-kill-{trial}")
    path, report, ready = tmp_path / "cache.nc", tmp_path / "report", tmp_path / "ready"
    proc = children(
        tmp_path,
        mode=mode,
        path=path,
        na=na,
        nb=nb,
        delay=delay,
        report=report,
        ready=ready,
        cells="all",
    )
    reported, done = kill_when(proc, when, path, report, ready, nb, rng)
    total = na * nb
    assert reported == list(range(len(reported))), "the child reported cells out of order"
    if done:
        assert len(reported) == total

    # The file opens whatever the moment of the kill, with every variable once a cell is in.
    if reported:
        assert path.exists(), f"{len(reported)} cells were reported but {path} does not exist"
    if path.exists():
        in_file = check_file(path, na, nb, layout=bool(reported))
        # Only cells the child called can be computed: the reported ones and the one in flight.
        assert in_file.size == 0 or in_file.max() <= len(reported)

    # Reported cells come back from the cache; the resumed sweep computes only the rest.
    starts = {total} if done else {len(reported), len(reported) + 1}
    resume_and_check(path, na, nb, starts, reported=reported, rng=rng)


# Image cells take the other paths: journal records checked by a 64-bit sum, the journal freed
# in the background after a publish, a contiguous variable in the file, and the returned
# Dataset taking over the store's buffers.
IMAGE_TRIALS = [0.05, 0.15, 0.25, 0.35, ("publish", 1), ("publish", 2)]


@pytest.mark.parametrize("trial", range(len(IMAGE_TRIALS)))
def test_sigkill_during_an_image_sweep_keeps_every_reported_image(tmp_path, children, trial):
    na, nb = 4, 10  # 40 images of 360 kB, 5 ms each
    when = IMAGE_TRIALS[trial]
    rng = random.Random(f"xsweep-image-kill-{trial}")
    path, report, ready = tmp_path / "cache.nc", tmp_path / "report", tmp_path / "ready"
    cfg = dict(mode="sweep", fn="image", path=path, na=na, nb=nb, delay=0.005)
    proc = children(tmp_path, **cfg, report=report, ready=ready)
    reported, done = kill_when(proc, when, path, report, ready, nb, rng)
    if reported:
        assert path.exists(), f"{len(reported)} images were reported but {path} does not exist"

    ps = make_space(na, nb)
    ps.enable_cache(path)
    sweep_child.CALLS.clear()
    for index in reported:
        i, j = divmod(index, nb)
        a, b = ps["a"].values[i].item(), ps["b"].values[j].item()
        np.testing.assert_array_equal(
            ps.run_process(sweep_child.image, a=a, b=b), sweep_child.expected_image(a, b)
        )
    assert sweep_child.CALLS == [], "reported images were computed again"
    ds = ps.sweep(sweep_child.image)
    called = [flat_index(a, b, nb) for a, b in sweep_child.CALLS]
    total = na * nb
    k = total - len(called)
    assert k in ({total} if done else {len(reported), len(reported) + 1})
    assert called == list(range(k, total))
    want = sweep_child.expected_images(na, nb)
    np.testing.assert_array_equal(ds["image"].values, want)
    ps.disable_cache()
    assert leftovers(path) == [], f"sidecars left after a completed sweep: {leftovers(path)}"
    with xr.open_dataset(path) as plain:
        assert plain["image"].dtype == np.uint8
        np.testing.assert_array_equal(plain["image"].values, want)
        assert (plain["image_status"].values == 1).all()


def test_staged_cells_outlive_a_second_writer_killed_before_it_published(tmp_path, children):
    """A sweep of images is killed; a second process writes one more cell with run_process
    and is killed too, before anything published the journal. The first sweep's cells live
    in its staged file, which the second writer must keep: a third process gets them all."""
    na, nb = 4, 10
    path, report, ready = tmp_path / "cache.nc", tmp_path / "report", tmp_path / "ready"
    cfg = dict(fn="image", path=path, na=na, nb=nb)
    proc = children(tmp_path, mode="sweep", **cfg, delay=0.01, report=report, ready=ready)
    wait_for(lambda: len(read_report(report, nb)[0]) >= 15, proc, "15 images")
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    reported, _ = read_report(report, nb)
    assert any(".xsweep-stage-" in name for name in leftovers(path)), leftovers(path)
    second = tmp_path / "second"
    proc = children(tmp_path, mode="run_process", **cfg, cells=[[4, 4.5]], report=second)
    rc, err = finish(proc)
    assert rc == -signal.SIGKILL and read_report(second, nb) == ([flat_index(4, 4.5, nb)], True)
    ps = make_space(na, nb)
    ps.enable_cache(path)
    sweep_child.CALLS.clear()
    for index in [*reported, flat_index(4, 4.5, nb)]:
        i, j = divmod(index, nb)
        a, b = ps["a"].values[i].item(), ps["b"].values[j].item()
        got = ps.run_process(sweep_child.image, a=a, b=b)
        np.testing.assert_array_equal(got, sweep_child.expected_image(a, b))
    assert sweep_child.CALLS == [], f"cells computed again: {sweep_child.CALLS}"
    ps.disable_cache()


@pytest.mark.parametrize("damage", ["cell-5", "missing"])
def test_damaged_staged_cells_are_computed_again_never_read_wrong(tmp_path, children, damage):
    """What a power cut (or a user deleting files) can do to a staged file: replay takes the
    cells before the first damaged one and computes the rest again."""
    na, nb = 4, 10
    path, report = tmp_path / "cache.nc", tmp_path / "report"
    proc = children(
        tmp_path, mode="sweep", fn="image", path=path, na=na, nb=nb, delay=0.01, report=report
    )
    wait_for(lambda: len(read_report(report, nb)[0]) >= 15, proc, "15 images")
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    (stage,) = [path.parent / n for n in leftovers(path) if ".xsweep-stage-" in n]
    if damage == "missing":
        stage.unlink()
        first_lost = 0
    else:
        data = bytearray(stage.read_bytes())
        a, b = make_space(na, nb)["a"].values[0].item(), 2.5  # cell 5
        at = data.find(sweep_child.expected_image(a, b).tobytes())
        assert at > 0
        data[at + 1000] ^= 0xFF
        stage.write_bytes(bytes(data))
        first_lost = 5
    ps = make_space(na, nb)
    ps.enable_cache(path)
    sweep_child.CALLS.clear()
    ds = ps.sweep(sweep_child.image)
    called = [flat_index(a, b, nb) for a, b in sweep_child.CALLS]
    assert called == list(range(first_lost, na * nb))
    np.testing.assert_array_equal(ds["image"].values, sweep_child.expected_images(na, nb))
    ps.disable_cache()
    assert leftovers(path) == []


FORK_CHILD = textwrap.dedent(
    """
    import ctypes, os, sys
    import numpy as np
    import xsweep as xs

    ps = xs.ParameterSpace([xs.Parameter("i", values=range(20))])
    ps.enable_cache(sys.argv[1])

    def frame(i):
        if i == 10:  # a fork whose child exits through C's exit(), so HDF5's exit handler
            pid = os.fork()  # closes the staged file the child inherited open
            if pid == 0:
                ctypes.CDLL(None).exit(0)
            os.waitpid(pid, 0)
        img = np.full((300, 400, 3), 255, dtype=np.uint8)
        img[0, :, 0] = i
        return img

    ps.sweep(frame)
    """
)


def test_a_fork_during_an_image_sweep_leaves_the_file_intact(tmp_path):
    path = tmp_path / "r.nc"
    script = tmp_path / "child.py"
    script.write_text(FORK_CHILD)
    done = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    with xr.open_dataset(path) as ds:
        assert ds["frame"].values[:, 0, 0, 0].tolist() == list(range(20))
        assert (ds["frame_status"] == 1).all() and (ds["frame"].values[:, 1:] == 255).all()
    assert leftovers(path) == []


# ---------------------------------------------------------------------------------------------
# 2. A second writer is refused; readers are not
# ---------------------------------------------------------------------------------------------
def test_second_writer_is_refused_while_readers_read_the_snapshot(tmp_path, children):
    na, nb = 5, 6  # 30 cells of 80 ms: the child holds the file for 2.4 s
    path, report = tmp_path / "cache.nc", tmp_path / "report"
    proc = children(tmp_path, mode="sweep", path=path, na=na, nb=nb, delay=0.08, report=report)
    # Once a cell is handed to the store, the child holds the file and has published it.
    wait_for(lambda: len(read_report(report, nb)[0]) >= 2, proc, "the child's first cells")
    # Freeze the writer while it holds the file: it can neither finish nor let go, so a
    # second writer that waits for the file, or a reader that needs the writer, hangs instead
    # of passing, however slow the machine.
    proc.send_signal(signal.SIGSTOP)
    try:
        assert proc.poll() is None, "the child finished too early for this test to mean anything"
        frozen = read_report(report, nb)
        assert not frozen[1]

        ps = make_space(na, nb)
        ps.enable_cache(path)
        sweep_child.CALLS.clear()
        with (
            hang_guard("the second writer waited for the file instead of being refused"),
            pytest.raises(xs.StoreLockedError) as info,
        ):
            ps.sweep(product)
        message = str(info.value)
        assert str(path) in message
        assert re.search(rf"\b{proc.pid}\b", message), f"the child's pid is not in: {message}"
        assert socket.gethostname() in message
        assert sweep_child.CALLS == [], "the refused sweep called the function"

        # A reader opens the published snapshot meanwhile, and holding it open blocks nobody.
        with hang_guard("opening the file for reading waited for its writer"):
            ds = xr.open_dataset(path)
        assert read_report(report, nb) == frozen, "the writer went on while frozen"
    finally:
        proc.send_signal(signal.SIGCONT)
    seen = len(frozen[0])
    try:
        status = ds["product_status"].values.reshape(-1)
        values = ds["product"].values.reshape(-1)
        assert set(np.unique(status).tolist()) <= {0, 1}
        want = expected(na, nb).reshape(-1)
        np.testing.assert_array_equal(values[status == 1], want[status == 1])
        assert np.isnan(values[status != 1]).all()
        rc, err = finish(proc)  # the child sweeps on and publishes while we hold the file
        assert rc == 0, f"the child's sweep failed while a reader held the file ({rc}):\n{err}"
    finally:
        ds.close()
    reported, done = read_report(report, nb)
    assert done and reported == list(range(na * nb)) and len(reported) > seen

    assert check_file(path, na, nb).size == na * nb
    assert leftovers(path) == []
    # The space that was refused now finds everything computed by the other process.
    sweep_child.CALLS.clear()
    check_complete(ps.sweep(product), na, nb)
    assert sweep_child.CALLS == []
    assert leftovers(path) == []
    ps.disable_cache()
    assert leftovers(path) == []


# ---------------------------------------------------------------------------------------------
# 3. The lock of a killed writer is taken over
# ---------------------------------------------------------------------------------------------
def test_stale_lock_of_a_killed_writer_is_taken_over(tmp_path, children):
    na, nb = 4, 5
    path, report = tmp_path / "cache.nc", tmp_path / "report"
    proc = children(tmp_path, mode="sweep", path=path, na=na, nb=nb, delay=0.05, report=report)
    wait_for(lambda: len(read_report(report, nb)[0]) >= 3, proc, "the child's first cells")
    proc.send_signal(signal.SIGKILL)
    rc, err = finish(proc)
    assert rc == -signal.SIGKILL, err
    lock = Path(f"{path}.lock")
    assert lock.exists(), f"no lock file left by the killed writer: {leftovers(path)}"
    assert str(proc.pid) in lock.read_text(), "the lock file does not name its holder"
    reported, done = read_report(report, nb)
    assert not done

    # The lock is taken over because its holder is dead, not because it is old: dated a day
    # ahead, it looks as fresh as a lock can, and a sweep waiting for it to age would hang.
    ahead = time.time() + 86_400
    holder = json.loads(lock.read_text())
    holder["since"] = ahead
    lock.write_text(json.dumps(holder))
    os.utime(lock, (ahead, ahead))
    # Otherwise no one touches the lock: the next sweep takes it over and resumes.
    with hang_guard("the next sweep waited for the dead writer's lock"):
        resume_and_check(path, na, nb, {len(reported), len(reported) + 1}, reported=reported)
    assert not lock.exists() and not Path(f"{path}.journal").exists()


# ---------------------------------------------------------------------------------------------
# 4. Resume in a new process
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "how, na, nb, stop_after, returncode",
    [
        ("interrupt", 10, 12, 45, 3),  # KeyboardInterrupt out of the function
        ("exit", 10, 12, 45, 4),  # sys.exit(4) from inside the function
        ("sigkill", 10, 12, 45, -signal.SIGKILL),  # the function SIGKILLs its own process
        # 36,000 cells of journal: more than 1 MB, so one mid-sweep publish came before the kill
        ("sigkill", 200, 200, 36_000, -signal.SIGKILL),
    ],
    ids=["interrupt", "exit", "sigkill", "sigkill-after-journal-rotation"],
)
def test_resume_in_a_new_process_calls_only_missing_cells(
    tmp_path, children, how, na, nb, stop_after, returncode
):
    path = tmp_path / "cache.nc"
    proc = children(
        tmp_path, mode="sweep", path=path, na=na, nb=nb, stop_after=stop_after, stop_how=how
    )
    rc, err = finish(proc)
    assert rc == returncode, f"first child ended with {rc}:\n{err}"
    computed = check_file(path, na, nb)
    if how == "sigkill":
        assert computed.size == 0 or computed.max() < stop_after
    else:
        # Stopped by an exception: the sweep published what it had and released the file.
        np.testing.assert_array_equal(computed, np.arange(stop_after))
        assert leftovers(path) == [], leftovers(path)

    calls = tmp_path / "calls"
    proc = children(tmp_path, mode="sweep", path=path, na=na, nb=nb, calls=calls)
    rc, err = finish(proc)
    assert rc == 0, f"second child ended with {rc}:\n{err}"
    called, _ = read_report(calls, nb)
    assert called == list(range(stop_after, na * nb)), (
        f"the second process made {len(called)} calls, first {called[:5]}; expected the "
        f"{na * nb - stop_after} cells from {stop_after} on"
    )
    assert check_file(path, na, nb).size == na * nb
    assert leftovers(path) == [], leftovers(path)


# ---------------------------------------------------------------------------------------------
# 5. run_process write-backs, and a kill in the middle of one
# ---------------------------------------------------------------------------------------------
def test_run_process_write_backs_survive_a_kill(tmp_path, children):
    na, nb = 6, 8
    cells = [(1, 0.0), (2, 1.5), (6, 3.5), (3, 0.5), (4, 2.0), (5, 1.0)]
    path, report = tmp_path / "cache.nc", tmp_path / "report"
    # The sixth call SIGKILLs the child inside the function, before anything is written back.
    proc = children(
        tmp_path,
        mode="run_process",
        path=path,
        na=na,
        nb=nb,
        cells=cells,
        report=report,
        stop_after=5,
        stop_how="sigkill",
    )
    rc, err = finish(proc)
    assert rc == -signal.SIGKILL, err
    reported, done = read_report(report, nb)
    written = sorted(flat_index(a, b, nb) for a, b in cells[:5])
    assert sorted(reported) == written and not done
    check_file(path, na, nb)  # opens, with every variable; the values may be journal-only

    ps = make_space(na, nb)
    ps.enable_cache(path)
    check_recovered_cells(ps, reported, nb, random.Random(0))
    sweep_child.CALLS.clear()
    ds = ps.sweep(product)
    called = sorted(flat_index(a, b, nb) for a, b in sweep_child.CALLS)
    assert called == sorted(set(range(na * nb)) - set(written))
    check_complete(ds, na, nb)
    assert leftovers(path) == []
    assert check_file(path, na, nb).size == na * nb
    ps.disable_cache()
    assert leftovers(path) == []


# ---------------------------------------------------------------------------------------------
# 6. A torn journal, as a power loss leaves it, does not swallow later cells
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("torn", ["last-record", "header"])
def test_cells_journaled_after_a_torn_journal_survive_a_kill(tmp_path, children, torn):
    """A first writer is killed; its journal then lacks its end: the last record is cut in
    half (as a SIGKILL in the middle of a large record's ``os.write`` leaves it, or a power
    loss), or the journal keeps only its first 20 bytes (a power loss, which may cost
    ``fsync_interval`` seconds of cells). A second writer resumes and is killed too: every
    cell it handed to the store after that must survive the kill.
    """
    na, nb = 10, 12
    path = tmp_path / "cache.nc"
    journal = Path(f"{path}.journal")
    proc = children(
        tmp_path, mode="sweep", path=path, na=na, nb=nb, stop_after=40, stop_how="sigkill"
    )
    rc, err = finish(proc)
    assert rc == -signal.SIGKILL, err
    assert journal.exists(), f"the killed writer left no journal: {leftovers(path)}"
    # The journal's records end before the space its writer reserved ahead (zeros).
    ends = [end for end, _ in read_records(journal.read_bytes(), HEADER_LEN)]
    assert len(ends) >= 39, f"the killed writer journaled only {len(ends)} records"
    os.truncate(journal, ends[-1] - 5 if torn == "last-record" else 20)

    # The second writer resumes from wherever the torn journal lets it, computes 30 cells
    # (each handed to the store before the next call) and is killed inside the 31st call.
    calls = tmp_path / "calls"
    proc = children(
        tmp_path,
        mode="sweep",
        path=path,
        na=na,
        nb=nb,
        calls=calls,
        stop_after=30,
        stop_how="sigkill",
    )
    rc, err = finish(proc)
    assert rc == -signal.SIGKILL, err
    called, _ = read_report(calls, nb)
    assert len(called) == 30 and called == list(range(called[0], called[0] + 30))
    if torn == "last-record":
        # Cells 0-38 were intact records; only the torn cell 39 may be computed again.
        assert 39 <= called[0] <= 40, f"the second writer started at cell {called[0]}"
    # Its 30 cells are in the store: this process computes only the cells after them.
    resume_and_check(path, na, nb, {called[-1] + 1}, reported=called)


# ---------------------------------------------------------------------------------------------
# 7. A full disk: a clear error, a readable file, and nothing recorded lost
# ---------------------------------------------------------------------------------------------
FULL_DISK_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    import numpy as np
    import xsweep as xs

    path, limit = sys.argv[1], int(sys.argv[2])
    # Writes past `limit` bytes fail with EFBIG, as they would with ENOSPC on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    ps = xs.ParameterSpace([xs.Parameter("i", values=list(range(40)))])
    ps.enable_cache(path)

    def block(i):
        return np.full((100, 1000), i, dtype=np.float64)  # 800 kB per cell

    try:
        ps.sweep(block)
    except xs.StoreError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
    """
)


def test_full_disk_is_a_clear_error_and_loses_nothing_recorded(tmp_path):
    path = tmp_path / "r.nc"
    script = tmp_path / "child.py"
    script.write_text(FULL_DISK_CHILD)
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(6 * 10**6)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    message = json.loads(done.stdout.strip().splitlines()[-1])["error"]
    assert "File too large" in message or "No space" in message
    assert "sweep again" in message
    with xr.open_dataset(path) as ds:  # the published file is intact
        assert "block_status" in ds
    ps = xs.ParameterSpace([xs.Parameter("i", values=list(range(40)))])
    ps.enable_cache(path)
    calls = []

    def block(i):
        calls.append(i)
        return np.full((100, 1000), i, dtype=np.float64)

    block.__qualname__ = "block"
    block.__module__ = "__main__"
    ds = ps.sweep(block, on_change="keep")
    recorded = 40 - len(calls)
    assert recorded >= 5  # the cells recorded before the disk filled came back
    assert calls == list(range(recorded, 40))
    assert (ds["block_status"] == 1).all()
    for i in (0, recorded - 1, 39):
        assert (ds["block"].sel(i=i).values == i).all()
