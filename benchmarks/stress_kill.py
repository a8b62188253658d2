"""SIGKILL stress test of the cache: kill a caching sweep at random moments, check the store.

Each trial starts ``_stress_child.py`` in a fresh folder: it sweeps a cheap function over a grid
(200 x 200 = 40,000 cells by default, enough for the journal to outgrow the file and trigger a
publish mid-sweep) with the cache on, logging each cell's index to a side file as the cell
starts. The parent SIGKILLs it at a random moment chosen, in turn, four ways: a random delay
(0 to 1.25 x the sweep's duration, calibrated by uninterrupted runs), a random number of cells
started (watching the side file), and twice inside a publish of the NetCDF file (within 1.2 x
the publish's calibrated duration after its temporary file appears): the first publish, which
writes the file's layout after the first cell, and the next publish after a random cell
(mid-sweep when the journal outgrows the file, or the final one). Then, in the parent:

1. ``xarray.open_dataset`` on the cache file (no xsweep) must succeed and, once a cell has been
   handed over, hold every variable; every cell it marks computed must hold the exact value.
2. xsweep opens the store (``enable_cache``) and resumes the sweep with a function that records
   which cells it is called for. Every cell the child logged, except the last one (in flight
   when killed), must already be in the store (else it is a LOST cell); the store must hold no
   cell the child never started; after the resume every value must be exact, in the returned
   Dataset and in the file.

A trial with any failure of 1. or 2. (other than lost cells, counted apart) is a CORRUPT store.
Prints one line per trial with ``--verbose`` and a summary; exits 1 on any corrupt store or
lost cell.

With ``--images`` each cell also returns a 262 kB uint8 image, on a 12 x 12 grid by default:
such sweeps write each image straight into a staged copy of the next file, and the kills
land while images are written there, while the staged file is completed, and in the layout
publish; checks 1. and 2. then cover the images too. Its fourth way of choosing the moment
aims at the end of the sweep (the staged file's completion) instead of a temporary file.

With ``--pool`` the child sweeps on a process pool that xsweep owns (``workers=2``, one cell of
~1 ms per task, 60 x 60 grid by default) and runs in its own session. Trials alternate between
SIGKILL to the driver alone and SIGKILL to its whole process group (each kind meets every way
of choosing the moment). After each kill the parent watches the child's process group: no
process of it (the pool's workers) may outlive the driver by more than ``ORPHAN_LIMIT`` seconds;
it reports the longest one did. Checks 1. and 2. apply, except that the pool may have cells in
flight: the driver hands a cell's result to the store before it submits a further cell and
keeps at most ``2 * workers`` cells submitted, so once cell ``m`` has started every cell below
``m`` but ``2 * workers - 1`` must be in the store (else the missing ones beyond those are LOST).

With ``--streamed`` each cell also returns a 65 kB uint8 image (128 x 170 x 3), on a 20 x 20 grid
by default, and the cache is opened with ``memory_budget=200_000`` (in the child and in the
parent's resume): the grid's images need ~130 x the budget, so the sweep streams them to the
file (issue 14) and returns them lazily. The kills are chosen as with ``--images``, and checks
1. and 2. cover the images, read from the resume's lazy Dataset while the cache is on; the
summary also says how the resumes' Datasets held the images (dask, lazy or memory) and whether
they could still be read after ``disable_cache`` (noted, not judged). If xsweep has no
``memory_budget`` yet, the mode reports NOT RUN (and fails) instead of starting.

With none of ``--images``, ``--pool`` and ``--streamed``, a run does the default set: the
scalar trials (``--trials``), then ``--streamed-trials`` streamed ones (default 20, 4 with
``--quick``; 0 skips them); it exits 1 if either fails.

Run:  python benchmarks/stress_kill.py [--trials 50] [--streamed-trials 20] [--quick]
                                       [--side 200] [--seed N]
      python benchmarks/stress_kill.py --images [--trials 50]
      python benchmarks/stress_kill.py --pool [--trials 10]
      python benchmarks/stress_kill.py --streamed [--trials 20] [--side 20]
"""

from __future__ import annotations

import argparse
import glob
import inspect
import json
import os
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import xarray as xr

import xsweep as xs

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "_stress_child.py")
sys.path.insert(0, HERE)
import _stress_child  # noqa: E402

#: Where a kill landed, as seen afterwards: publishes leave their temporary file behind.
PHASES = ("before the first cell", "mid-sweep", "in the first publish", "in a mid-sweep publish",
          "in the final publish", "after the last cell", "after the sweep returned")
#: How trials choose their moment to kill, in turn (the last one: "end" with --images).
MODES = ("time", "progress", "first publish", "next publish")
#: Every variable the file holds once a cell has been handed over ("img" with --images).
VARIABLES = ["prod", "x", "cell_status", "cell_seconds", "cell_error", "cell_messages"]
#: --pool: seconds a process of the killed driver's group may live on after the kill.
ORPHAN_LIMIT = 5.0
#: --pool: how long to watch for orphans before killing them (and counting them).
ORPHAN_WATCH = 15.0


def expected_grid(na, nb, images=False, streamed=False):
    a = np.arange(na)[:, None]
    b = np.arange(nb)[None, :]
    if not (images or streamed):
        return a * b + 1, a / 7 + b * 0.001, None
    _stress_child.set_columns(nb, images=images, streamed=streamed)
    imgs = np.stack([[_stress_child.expected_image(i, j) for j in range(nb)] for i in range(na)])
    return a * b + 1, a / 7 + b * 0.001, imgs


class Child:
    """A started child, waiting for ``go`` once it has printed ``ready``."""

    def __init__(self, folder, na, nb, images=False, pool=False, streamed=False):
        os.makedirs(folder)
        self.folder = folder
        self.path = os.path.join(folder, "cache.nc")
        self.log = os.path.join(folder, "cells.log")
        self.pool = pool
        self.proc = subprocess.Popen(
            [sys.executable, CHILD, self.path, self.log, str(na), str(nb)]
            + (["streamed"] if streamed else ["images"] if images else [])
            + (["pool"] if pool else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=pool,  # its own process group: its workers are found by it
        )
        self.ready = False

    def kill_group(self):
        """SIGKILL every process of a pool child's group (its workers too)."""
        if self.pool:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait_ready(self, timeout=120.0):
        if self.ready:
            return
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace")
            raise RuntimeError(f"the child did not start: {line!r}\n{err}")
        self.ready = True

    def go(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        return time.perf_counter()

    def finish(self):
        """Wait for the child's end; return its ``done`` report or None if it was killed."""
        out, err = self.proc.communicate(timeout=300)
        for line in out.decode().splitlines():
            if line.startswith("done "):
                return json.loads(line[5:])
        if self.proc.returncode not in (0, -signal.SIGKILL):
            raise RuntimeError(f"the child failed ({self.proc.returncode}):\n{err.decode()}")
        return None


def live_in_group(pgid, but=()):
    """Live processes of process group ``pgid`` (zombies have exited: they await a reaper)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in but:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X", b"x"):
            pids.append(int(entry))
    return pids


def watch_orphans(child, t_kill):
    """Seconds from the kill until no process of the child's group but the driver lives.

    Returns (seconds, pids seen alive after the kill). Any still alive after ``ORPHAN_WATCH``
    seconds are SIGKILLed (the result is then ``ORPHAN_WATCH``).
    """
    pgid = driver = child.proc.pid
    seen = set()
    while True:
        left = live_in_group(pgid, but=(driver,))
        now = time.perf_counter()
        seen.update(left)
        if not left:
            return now - t_kill, seen
        if now - t_kill > ORPHAN_WATCH:
            child.kill_group()
            return now - t_kill, seen
        time.sleep(0.005)


def pool_lost(started, stored, in_flight):
    """Cells below the highest one started that are missing from the store beyond those
    that may have been in flight on the pool."""
    if not started:
        return 0
    top = max(started)
    missing = top - len([c for c in stored if c < top])
    return max(0, missing - in_flight)


def wait_until(deadline):
    while (left := deadline - time.perf_counter()) > 0:
        time.sleep(min(left, 0.01))


def wait_for_cells(child, n):
    """Wait until the child has started ``n`` cells (or has exited)."""
    size = 4 * n
    while child.proc.poll() is None:
        try:
            if os.stat(child.log).st_size >= size:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.0002)


def wait_for_temp_file(child):
    """Wait until the child is writing a new snapshot of the file (or has exited)."""
    pattern = glob.escape(child.path) + ".xsweep-tmp-*"
    while child.proc.poll() is None:
        if glob.glob(pattern):
            return
        time.sleep(0.0002)


def time_temp_file(child):
    """Seconds from the appearance of the next publish's temporary file to its disappearance."""
    pattern = glob.escape(child.path) + ".xsweep-tmp-*"
    wait_for_temp_file(child)
    t0 = time.perf_counter()
    while child.proc.poll() is None and glob.glob(pattern):
        time.sleep(0.0002)
    return time.perf_counter() - t0


def read_log(path):
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    data = data[: len(data) // 4 * 4]
    return np.frombuffer(data, dtype="<u4").astype(np.int64).tolist()


def check_plain(path, started, expected, problems, handed=None, variables=None):
    """The file as a colleague without xsweep reads it. Returns the cells it marks computed.

    ``handed``: how many cells were surely handed to the store (serial: all started but one).
    ``variables``: those the file must hold (:data:`VARIABLES` by default).
    """
    variables = VARIABLES if variables is None else variables
    if handed is None:
        handed = len(started) - 1
    if not os.path.exists(path):
        if handed >= 1:
            problems.append(f"no cache file although {handed} cells were handed over")
        return set()
    try:
        with xr.open_dataset(path) as ds:
            ds.load()
    except Exception as exc:  # any failure to open is corruption
        problems.append(f"xarray.open_dataset failed: {type(exc).__name__}: {exc}")
        return set()
    missing = [v for v in variables if v not in ds.variables]
    if missing:
        if handed >= 1 or "cell_status" in ds.variables:
            problems.append(f"file lacks variables {missing}")
        return set()
    status = ds["cell_status"].values.reshape(-1)
    if ds["prod"].dtype != np.int64 or ds["x"].dtype != np.float64:
        problems.append(f"dtypes changed: prod {ds['prod'].dtype}, x {ds['x'].dtype}")
    if not np.isin(status, (0, 1)).all():
        problems.append(f"unexpected status values {np.unique(status).tolist()}")
    done = status == 1
    prod, x, imgs = expected
    if not np.array_equal(ds["prod"].values.reshape(-1)[done], prod.reshape(-1)[done]):
        problems.append("file: a computed cell holds a wrong prod")
    if not np.array_equal(ds["x"].values.reshape(-1)[done], x.reshape(-1)[done]):
        problems.append("file: a computed cell holds a wrong x")
    if imgs is not None:
        cells = imgs.reshape(-1, *imgs.shape[2:])
        if ds["img"].dtype != np.uint8:
            problems.append(f"dtype changed: img {ds['img'].dtype}")
        got = ds["img"].values.reshape(cells.shape)
        if not np.array_equal(got[done], cells[done]):
            problems.append("file: a computed cell holds a wrong image")
    return set(np.flatnonzero(done).tolist())


def storage_of(var):
    """How a returned Dataset holds a variable: ``dask``, ``lazy`` (file-backed) or ``memory``."""
    if var.chunks is not None:
        return "dask"
    return "memory" if getattr(var.variable, "_in_memory", True) else "lazy"


def check_xsweep(path, na, nb, started, expected, problems, streamed=False, notes=None):
    """Open with xsweep, resume, and check. Returns (lost cells, cells found in the store).

    ``streamed``: open the cache with the child's small ``memory_budget``, so that the resume
    streams too; the returned Dataset is then read (``.values``) before ``disable_cache``, and
    ``notes`` (a dict of counts) records how it held the images and whether it could still be
    read after ``disable_cache``.
    """
    total = na * nb
    _stress_child.set_columns(nb, images=expected[2] is not None, streamed=streamed)
    called_log = _stress_child.CALLED
    called_log.clear()
    ps = xs.ParameterSpace(
        [xs.Parameter("a", values=range(na)), xs.Parameter("b", values=range(nb))]
    )
    prod, x, imgs = expected
    try:
        ps.enable_cache(path, **_stress_child.cache_options(streamed))
        ds = ps.sweep(_stress_child.cell, errors="raise")
        # Read the Dataset while the cache is on: a streamed one is backed by the file.
        status_ok = bool((ds["cell_status"].values == 1).all())
        values_ok = np.array_equal(ds["prod"].values, prod) and np.array_equal(ds["x"].values, x)
        images_ok = imgs is None or np.array_equal(ds["img"].values, imgs)
        if notes is not None and imgs is not None:
            key = f"returned img: {storage_of(ds['img'])}"
            notes[key] = notes.get(key, 0) + 1
    except Exception as exc:
        problems.append(f"xsweep could not open or resume: {type(exc).__name__}: {exc}")
        return 0, set()
    finally:
        ps.disable_cache()
    if streamed and notes is not None:
        try:  # the same Dataset once the cache is off (not a check of the store)
            after = np.array_equal(ds["img"].isel(a=-1, b=-1).values, imgs[-1, -1])
            key = "returned img exact after disable_cache" if after else (
                "returned img WRONG after disable_cache")
        except Exception as exc:
            key = f"returned img unreadable after disable_cache ({type(exc).__name__})"
        notes[key] = notes.get(key, 0) + 1
    called = set(called_log)
    if len(called) != len(called_log):
        problems.append("the resume called the function twice for a cell")
    stored = set(range(total)) - called
    handed_over = set(started[:-1])
    lost = len(handed_over & called)
    phantom = stored - set(started)
    if phantom:
        problems.append(f"{len(phantom)} cells in the store that the child never started")
    if not status_ok:
        problems.append("after the resume, not every cell is computed")
    if not values_ok:
        problems.append("after the resume, the Dataset holds wrong values")
    if not images_ok:
        problems.append("after the resume, the Dataset holds wrong images")
    with xr.open_dataset(path) as fds:
        if not (
            (fds["cell_status"].values == 1).all()
            and np.array_equal(fds["prod"].values, prod)
            and np.array_equal(fds["x"].values, x)
            and (imgs is None or np.array_equal(fds["img"].values, imgs))
        ):
            problems.append("after the resume, the file holds wrong or missing values")
    leftover = [n for n in os.listdir(os.path.dirname(path)) if n.startswith("cache.nc.")]
    if leftover:
        problems.append(f"sidecars left after the resume: {leftover}")
    return lost, stored


def streaming_missing():
    """Why the streamed mode cannot run on this xsweep, or None if it can."""
    if "memory_budget" not in inspect.signature(xs.ParameterSpace.enable_cache).parameters:
        return ("xsweep has no streaming yet: enable_cache() takes no memory_budget (issue 14 "
                "not landed)")
    return None


def run_mode(sweep_kind, trials, side, seed, args):
    """``trials`` SIGKILL trials of one kind of sweep (scalar, images, pool or streamed) on a
    ``side`` x ``side`` grid; prints its summary. Returns True if it passed."""
    na = nb = side
    streamed = sweep_kind == "streamed"
    images = sweep_kind == "images" or streamed  # image cells: checks, phases and modes alike
    pool = sweep_kind == "pool"
    if streamed and (why := streaming_missing()):
        print(f"SUMMARY stress_kill streamed: NOT RUN: {why}: FAIL")
        return False
    #: Cells the pool may hold submitted but not handed over when a further one starts.
    in_flight = 2 * _stress_child.POOL_WORKERS - 1 if pool else 0
    modes_used = MODES[:3] + (("end",) if images else MODES[3:])
    variables = VARIABLES + (["img"] if images else [])
    total = na * nb
    rng = random.Random(seed)
    base = tempfile.mkdtemp(prefix=f"xsweep-stress-kill-{sweep_kind}-")
    expected = expected_grid(na, nb, images and not streamed, streamed)
    t_start = time.perf_counter()
    image_bytes = int(np.prod(_stress_child.STREAM_SHAPE))
    cells_are = {
        "images": " with images",
        "streamed": (f" with {image_bytes:,}-byte images streamed (memory_budget "
                     f"{_stress_child.STREAM_BUDGET:,} bytes; the images "
                     f"{total * image_bytes / _stress_child.STREAM_BUDGET:.0f}x the budget)"),
        "pool": f" on a pool of {_stress_child.POOL_WORKERS} workers",
    }.get(sweep_kind, "")
    print(f"xsweep {xs.__version__}: {trials} SIGKILL trials, {na}x{nb} = {total} cells"
          f"{cells_are}, seed {seed}, folder {base}")
    calibration_runs = 1 if args.quick else 2

    counts = {"corrupt": 0, "lost": 0, "trials": 0}
    phases = dict.fromkeys(PHASES, 0)
    modes = dict.fromkeys(modes_used, 0)
    journal_only = []
    in_flight_lost = 0
    kills = {"driver": 0, "group": 0}
    outlived = {"driver": [], "group": []}  # seconds the last process of the group lived on
    workers_seen = []
    orphans = 0  # trials where a process outlived the driver by more than ORPHAN_LIMIT
    failures = []
    timelines = []
    sweep_s = first_pub_s = last_pub_s = last_s = 0.0
    first_pubs: list[float] = []
    last_pubs: list[float] = []
    notes: dict[str, int] = {}  # streamed: how the resumes' Datasets held the images
    child = current = Child(os.path.join(base, "run-0"), na, nb, images, pool, streamed)
    try:
        for run in range(calibration_runs + trials):
            trial = run - calibration_runs
            calibrating = trial < 0
            child.wait_ready()
            # On the pool, trials alternate driver / group kills, each with every mode in turn.
            turn = trial // 2 if pool else trial
            mode = None if calibrating else modes_used[turn % len(modes_used)]
            kind = "group" if pool and trial % 2 else "driver"
            t_go = child.go()
            current = child
            # Start the next child now: it imports while this one sweeps and is checked. The
            # calibration runs see the same competition for the CPU as the trials.
            if run + 1 < calibration_runs + trials:
                child = Child(
                    os.path.join(base, f"run-{run + 1}"), na, nb, images, pool, streamed
                )
            if mode is not None:
                modes[mode] += 1
                if mode == "time":  # a random moment of the sweep, by the clock
                    wait_until(t_go + rng.uniform(0, sweep_s * 1.25))
                elif mode == "progress":  # a random cell, whatever the machine's speed
                    wait_for_cells(current, rng.randrange(1, total + 1))
                    wait_until(time.perf_counter() + rng.uniform(0, 0.002))
                elif mode == "end":  # from the last cell to the end: the staged file completed
                    wait_for_cells(current, total)
                    wait_until(time.perf_counter() + rng.uniform(0, 1.2 * (sweep_s - last_s)))
                else:  # inside a publish: the first one (layout), or the next after a random cell
                    first = mode == "first publish"
                    wait_for_cells(current, 1 if first else rng.randrange(1, total + 1))
                    wait_for_temp_file(current)
                    window = 1.2 * (first_pub_s if first else last_pub_s)
                    wait_until(time.perf_counter() + rng.uniform(0, window))
                delay = time.perf_counter() - t_go
                if kind == "group":
                    current.kill_group()
                else:
                    current.proc.send_signal(signal.SIGKILL)
                if pool:
                    t_kill = time.perf_counter()
                    kills[kind] += 1
                    lived, seen = watch_orphans(current, t_kill)
                    outlived[kind].append(lived)
                    workers_seen.append(len(seen))
                    if lived > ORPHAN_LIMIT:
                        orphans += 1
            else:  # calibration: how long the first and the final publishes take
                wait_for_cells(current, 1)
                first_pubs.append(time_temp_file(current))
                wait_for_cells(current, total)
                last_pubs.append(time_temp_file(current))
            report = current.finish()

            started = read_log(current.log)
            temp_left = bool(glob.glob(glob.escape(current.path) + ".xsweep-tmp-*"))
            problems: list[str] = []
            handed = max(0, max(started) - in_flight) if pool and started else None
            in_file = check_plain(current.path, started, expected, problems, handed, variables)
            lost, stored = check_xsweep(
                current.path, na, nb, started, expected, problems, streamed,
                None if calibrating else notes,
            )
            if pool:
                lost = pool_lost(started, stored, in_flight)
            if calibrating:
                if problems or lost or report is None or len(stored) != total:
                    raise RuntimeError(f"an uninterrupted sweep left a bad store: {problems}")
                timelines.append(report)
                sweep_s = statistics.median(r["end"] for r in timelines)
                first_pub_s = statistics.median(first_pubs)
                last_pub_s = statistics.median(last_pubs)
                # On the pool the calls happen in the workers: the child knows no call times.
                first_s = statistics.median(r["first"] or 0.0 for r in timelines)
                last_s = statistics.median(r["last"] or 0.0 for r in timelines)
                calls = ("" if pool else
                         f"first call {first_s * 1e3:.0f} ms, last call {last_s * 1e3:.0f} ms, ")
                if trial == -1:
                    print(f"calibration ({calibration_runs} uninterrupted runs, verified): "
                          f"{calls}sweep "
                          f"returned {sweep_s * 1e3:.0f} ms after go; first publish "
                          f"{first_pub_s * 1e3:.1f} ms, final publish {last_pub_s * 1e3:.1f} ms "
                          "(temporary file lifetimes)")
                shutil.rmtree(current.folder, ignore_errors=True)
                continue

            if report is not None:
                phase = "after the sweep returned"
            elif not started:
                phase = "before the first cell"
            elif images and len(started) == total:
                phase = "in the final publish"  # completing the staged file, or the last cell
            elif temp_left:
                # The first publish comes with the first cell handed over: on the pool, other
                # cells may have started by then.
                first = not stored if pool else len(started) == 1
                phase = ("in the first publish" if first else
                         "in the final publish" if len(started) == total else
                         "in a mid-sweep publish")
            else:
                phase = "after the last cell" if len(started) == total else "mid-sweep"
            phases[phase] += 1
            counts["trials"] += 1
            counts["lost"] += lost
            if problems:
                counts["corrupt"] += 1
                failures.append((trial, phase, problems, current.folder))
            if started and (set(started) - stored if pool else started[-1] not in stored):
                in_flight_lost += 1
            journal_only.append(len(stored - in_file))
            if args.verbose:
                if pool:
                    print(f"  trial {trial:3d}: SIGKILL to the {kind:<6}: group gone "
                          f"{outlived[kind][-1]:5.2f} s after the kill "
                          f"({workers_seen[-1]} processes seen after it)")
                print(f"  trial {trial:3d}: kill at {delay * 1e3:6.1f} ms, {phase:<25} "
                      f"started {len(started):6d}, stored {len(stored):6d} "
                      f"(file {len(in_file):6d}), lost {lost}, "
                      f"{'CORRUPT ' + '; '.join(problems) if problems else 'ok'}")
            if not args.keep and not problems:
                shutil.rmtree(current.folder, ignore_errors=True)
    finally:
        for started_child in {child, current}:
            started_child.kill_group()
            proc = started_child.proc
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not args.keep and not failures:
            shutil.rmtree(base, ignore_errors=True)

    elapsed = time.perf_counter() - t_start
    print("kills landed (a publish = its temporary file was left): "
          + ", ".join(f"{k} {v}" for k, v in phases.items()))
    print("kill modes: " + ", ".join(f"{k} {v}" for k, v in modes.items()))
    print(f"in-flight cell missing (allowed): "
          f"{in_flight_lost} trials; cells recovered from the journal only (not yet in the file): "
          f"median {statistics.median(journal_only) if journal_only else 0:.0f}, "
          f"max {max(journal_only, default=0)}")
    for trial, phase, problems, folder in failures:
        print(f"  CORRUPT trial {trial} ({phase}): {'; '.join(problems)} [kept in {folder}]")
    ok = counts["corrupt"] == 0 and counts["lost"] == 0 and orphans == 0
    if pool:
        every = outlived["driver"] + outlived["group"]
        print(f"pool: {kills['driver']} kills of the driver alone, {kills['group']} of its "
              f"whole group; processes of the group seen alive after the kill: "
              f"max {max(workers_seen, default=0)}")
        for kind, what in (("driver", "driver alone"), ("group", "whole group")):
            times = outlived[kind]
            if times:
                print(f"  SIGKILL to the {what}: the group's last process lived on median "
                      f"{statistics.median(times):.2f} s, max {max(times):.2f} s")
        print(f"SUMMARY stress_kill pool: {len(every)} trials, max {max(every, default=0):.2f} s "
              f"a worker outlived its driver (limit {ORPHAN_LIMIT:.0f} s), {orphans} trials over "
              "the limit")
    if notes:
        print("the resumes' returned Datasets: "
              + ", ".join(f"{k} {v}" for k, v in sorted(notes.items())))
    in_publish = sum(v for k, v in phases.items() if k.startswith("in "))
    label = " streamed" if streamed else ""
    print(f"SUMMARY stress_kill{label}: {counts['trials']} trials, {counts['corrupt']} corrupt "
          f"stores, {counts['lost']} lost cells, {in_publish} killed inside a publish (temp file "
          f"left), {elapsed:.0f} s: {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=None,
                        help="kills of the scalar sweep, or of the one mode chosen (default 50, "
                             "4 quick; 20 for --streamed alone)")
    parser.add_argument("--streamed-trials", type=int, default=None,
                        help="kills of the streamed sweep after the scalar ones, in the default "
                             "run (default 20, 4 quick; 0 skips it)")
    parser.add_argument("--quick", action="store_true", help="fast smoke run (< 30 s)")
    parser.add_argument("--side", type=int, default=None,
                        help="grid is side x side cells (default 200, 100 with --quick; 12 with "
                             "--images, 60 with --pool, 20 with --streamed); the default run's "
                             "streamed trials always use 20")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the delays")
    parser.add_argument("--keep", action="store_true", help="keep the trial folders")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per trial")
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--images", action="store_true",
        help="only: cells also return an image (12 x 12 grid)",
    )
    only.add_argument(
        "--pool", action="store_true",
        help="only: sweep on workers=2 (60 x 60 grid); kill the driver alone or its whole group",
    )
    only.add_argument(
        "--streamed", action="store_true",
        help=f"only: cells also return a {np.prod(_stress_child.STREAM_SHAPE):,}-byte image, "
             f"cache memory_budget={_stress_child.STREAM_BUDGET:,} (20 x 20 grid): streamed",
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    kinds = {"images": args.images, "pool": args.pool, "streamed": args.streamed}
    chosen = [k for k, on in kinds.items() if on]
    side_of = {"images": 12, "pool": 60, "streamed": 20,
               "scalar": 100 if args.quick else 200}
    if chosen:  # one mode alone, as asked
        kind = chosen[0]
        trials = args.trials or (4 if args.quick else 20 if kind == "streamed" else 50)
        runs = [(kind, trials, args.side or side_of[kind])]
    else:  # the default set: scalar, then streamed
        streamed_trials = args.streamed_trials
        if streamed_trials is None:
            streamed_trials = 4 if args.quick else 20
        runs = [("scalar", args.trials or (4 if args.quick else 50),
                 args.side or side_of["scalar"])]
        if streamed_trials > 0:
            runs.append(("streamed", streamed_trials, side_of["streamed"]))
    results = []
    for kind, trials, side in runs:
        results.append(run_mode(kind, trials, side, seed, args))
    if len(runs) > 1:
        print("SUMMARY stress_kill all: " + ", ".join(
            f"{kind} {'PASS' if ok else 'FAIL'}" for (kind, _, _), ok in zip(runs, results)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
