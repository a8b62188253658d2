"""Power-loss trials on LazyFS: build it, mount it, lose what was not synced, check what is left.

LazyFS (``../shared/tools/lazyfs`` beside the repository) is a FUSE file system with its own
page cache: it keeps every write that was not fsynced in memory, and drops it on command (a
power cut) or when it crashes at a chosen operation. A trial mounts a fresh LazyFS over an
empty folder, runs a sweep in a child process (``powerloss_child.py``), loses power in one of
three ways, mounts again (what survived), and checks in fresh processes that

1. the results file opens with plain xarray, or is absent (never present and unreadable),
   and every cell it marks computed holds the exact value;
2. a resumed sweep gives every value exactly;
3. no cell is computed again that the child returned more than ``fsync_interval`` (plus one
   cell) before the loss. The child logs each returned cell with its time to a file outside
   the mount.

Used by ``tests/powerloss/test_powerloss.py`` (a short run in CI) and
``benchmarks/powerloss.py`` (long runs).
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHILD = os.path.join(HERE, "powerloss_child.py")


def _source() -> str:
    """Where the LazyFS source is: ``$XSWEEP_LAZYFS_SOURCE``, else ``shared/`` beside the
    repository (a clean clone in CI), else beside the main checkout of a git worktree."""
    if os.environ.get("XSWEEP_LAZYFS_SOURCE"):
        return os.environ["XSWEEP_LAZYFS_SOURCE"]
    beside = os.path.join(os.path.dirname(REPO), "shared", "tools", "lazyfs")
    if os.path.isdir(beside):
        return beside
    try:
        common = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return beside
    main = os.path.dirname(os.path.dirname(common)) if common else ""
    found = os.path.join(main, "shared", "tools", "lazyfs")
    return found if common and os.path.isdir(found) else beside


SOURCE = _source()
SCENARIOS = ("scalar", "image", "run_process", "resumed", "streamed")
LOSSES = ("kill_clear", "fsync_crash", "rename_crash")
#: The results file's name on the mount: LazyFS cuts commands past 100 bytes.
NAME = "r.nc"
#: fsync_interval of the children: short, so that a trial of a few seconds sees many flushes;
#: longer for run_process, whose calls (~0.2 s each on LazyFS, which emulates the journal's
#: fallocate) must then be flushed by the timer a write session leaves behind.
INTERVAL = 0.2
RUN_PROCESS_INTERVAL = 1.0
#: Slack for the time a flush itself takes and for clock reads around it (seconds). A flush
#: in an image sweep first fdatasyncs the staged images written since the last one (MBs),
#: which takes LazyFS up to ~0.2 s: the journal's records reach the disk after them.
TOLERANCE = {"image": 0.3, "streamed": 0.3}


class Unavailable(Exception):
    """LazyFS cannot run here (why, in words)."""


def build(cache: str | None = None, source: str = SOURCE) -> str:
    """Build LazyFS from ``source`` into ``cache`` once; the binary's path.

    Raises ``Unavailable`` (with the reason) when this machine cannot run it: no source, no
    ``/dev/fuse``, not root (the build installs FUSE 3 with apt-get; mounting needs it).
    """
    script = os.path.join(source, "build.sh")
    if not os.path.isfile(script):
        raise Unavailable(f"no LazyFS source at {source} (a copy of shared/ beside the repo)")
    if not os.path.exists("/dev/fuse"):
        raise Unavailable("no /dev/fuse on this machine (FUSE is needed to mount LazyFS)")
    if os.geteuid() != 0:
        raise Unavailable("not root: building LazyFS installs FUSE 3 with apt-get")
    cache = cache or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "xsweep-lazyfs"
    )
    binary = os.path.join(cache, "lazyfs", "build", "lazyfs")
    if os.access(binary, os.X_OK) and shutil.which("fusermount3"):
        return binary
    proc = subprocess.run(["bash", script, cache], capture_output=True, text=True)
    if proc.returncode != 0 or not os.access(binary, os.X_OK):
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise Unavailable(f"building LazyFS failed ({script} {cache}):\n{tail}")
    if not shutil.which("fusermount3"):
        raise Unavailable("fusermount3 is missing (Debian package fuse3)")
    return binary


class LazyFS:
    """One LazyFS mount of ``backing`` at ``mount``, with its fault FIFOs in ``work``."""

    def __init__(self, binary: str, work: str, backing: str, mount: str) -> None:
        self.binary, self.work, self.backing, self.mount = binary, work, backing, mount
        self.fifo = os.path.join(work, "faults.fifo")
        self.done_fifo = os.path.join(work, "done.fifo")
        self.proc: subprocess.Popen | None = None
        self._done_fd = -1

    def start(self) -> None:
        """Mount (a fresh LazyFS: an empty cache); tries three times, as a mount can fail
        while the previous one's process is still going away."""
        for attempt in range(3):
            try:
                return self._start(attempt)
            except Unavailable:
                self.stop()
                if attempt == 2:
                    raise
                time.sleep(1)

    def _start(self, attempt: int) -> None:
        os.makedirs(self.mount, exist_ok=True)
        for path in (self.fifo, self.done_fifo):
            if os.path.exists(path):
                os.unlink(path)
            os.mkfifo(path)
        # Opened for reading first, so that LazyFS's open for writing does not block.
        self._done_fd = os.open(self.done_fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.mounts = getattr(self, "mounts", 0) + 1
        config = os.path.join(self.work, f"lazyfs{self.mounts}.toml")
        with open(config, "w") as fh:
            fh.write(
                f'[faults]\nfifo_path="{self.fifo}"\nfifo_path_completed="{self.done_fifo}"\n'
                '[cache]\napply_eviction=false\n[cache.simple]\ncustom_size="512mb"\n'
                "blocks_per_page=1\n[filesystem]\nlog_all_operations=false\n"
                f'logfile="{os.path.join(self.work, f"lazyfs{self.mounts}.log")}"\n'
            )
        self.proc = subprocess.Popen(
            [
                self.binary,
                self.mount,
                "--config-path",
                config,
                "-o",
                "allow_other",
                "-o",
                "modules=subdir",
                "-o",
                f"subdir={self.backing}",
                "-f",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not os.path.ismount(self.mount):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"LazyFS did not mount {self.mount} (see {config})")
            time.sleep(0.02)

    def command(self, text: str) -> None:
        assert len(text) < 100, text  # LazyFS cuts longer commands
        fd = os.open(self.fifo, os.O_WRONLY)
        try:
            os.write(fd, (text + "\n").encode())
        finally:
            os.close(fd)

    def clear_cache(self) -> None:
        """Drop every unsynced byte (a power cut); returns once LazyFS says it is done."""
        self.command("lazyfs::clear-cache")
        got = b""
        deadline = time.monotonic() + 30
        while b"clear-cache" not in got and time.monotonic() < deadline:
            ready, _, _ = select.select([self._done_fd], [], [], 0.05)
            if ready:
                got += os.read(self._done_fd, 100)
            if self.crashed():
                return

    def crashed(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self) -> None:
        """Unmount: whatever was not synced is lost (LazyFS drops its cache)."""
        subprocess.run(["fusermount3", "-uz", self.mount], capture_output=True)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._done_fd >= 0:
            os.close(self._done_fd)
            self._done_fd = -1


@dataclass
class Trial:
    scenario: str
    loss: str
    seed: int
    outcome: str = ""  # ok, or what failed
    detail: str = ""
    cells_logged: int = 0
    recomputed: int = 0
    lost: list = field(default_factory=list)
    file: str = ""  # present / absent
    fired: bool = True  # a crash fault met its operation before the child ended


def _child(args: list[str], log: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, CHILD, *args, log],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_log(path: str) -> list[tuple[int, float]]:
    out = []
    try:
        with open(path) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 2:
                    out.append((int(parts[0]), float(parts[1])))
    except FileNotFoundError:
        pass
    return out


def run_trial(
    binary: str,
    scenario: str,
    loss: str,
    seed: int,
    root: str,
    delay: float | None = None,
    cells: int | None = None,
    interval: float | None = None,
    snapshot: float | None = None,
) -> Trial:
    """One trial (see the module docstring); never raises for what it checks.

    ``delay``: seconds from the child's start to the loss (default: random within its run);
    ``cells``: run_process calls, after which the child idles with the cache on;
    ``interval``, ``snapshot``: its ``fsync_interval`` and ``snapshot_interval`` (default: by
    scenario, and at random).
    """
    rng = random.Random(seed)
    trial = Trial(scenario, loss, seed)
    # Short paths without "-o" in them: LazyFS takes a config path holding "-o" (in any
    # case: /tmp/pytest-of-root/...) for an option, and cuts fault commands past 100 bytes.
    # ``root`` keeps the list of failed trials' folders.
    work = tempfile.mkdtemp(prefix="xpl_", dir="/tmp")
    backing, mount = os.path.join(work, "b"), os.path.join(work, "m")
    os.makedirs(backing)
    fs = LazyFS(binary, work, backing, mount)
    if interval is None:
        interval = RUN_PROCESS_INTERVAL if scenario == "run_process" else INTERVAL
    if snapshot is None:  # publishes mid-sweep (renames onto the file), or none
        snapshot = rng.choice([0.5, 60.0])
    env = dict(
        os.environ,
        PYTHONPATH=os.environ.get("PYTHONPATH", REPO),
        XSWEEP_PL_INTERVAL=str(interval),
        XSWEEP_PL_SNAPSHOT=str(snapshot),
    )
    if cells is not None:
        env.update(XSWEEP_PL_CELLS=str(cells), XSWEEP_PL_IDLE="60")
    path = os.path.join(mount, NAME)
    log = os.path.join(work, "cells.log")  # outside the mount: it survives every loss
    try:
        fs.start()
        if scenario == "resumed":
            # A first process killed before its first flush (its file published lazily
            # by older versions), without a power loss: the page cache keeps its bytes.
            first_log = os.path.join(work, "first.log")
            # fsync_interval=5: surely killed before its first flush.
            first = _child(["sweep", "scalar", path], first_log, {**env, "XSWEEP_PL_INTERVAL": "5"})
            _started(first, first_log)
            time.sleep(rng.uniform(0.1, 0.5))
            first.kill()
            first.wait()
        command, armed = _fault(loss, scenario, rng)
        if armed:
            fs.command(command)
        child = _child([_child_mode(scenario), _kind(scenario), path], log, env)
        _started(child, log)  # delays count from the first cell, not from imports
        if delay is None:
            delay = rng.uniform(0.05, 1.0) * _length(scenario)
        lost_at, trial.fired = _lose(fs, child, command, armed, delay)
        out = child.stdout.read() if child.stdout else ""
        fs.stop()
        fs.start()  # what survived
        # The first process's cells count too: the resuming process flushes them.
        logs = [_read_log(p) for p in (os.path.join(work, "first.log"), log)]
        logged = [cell for part in logs for cell in part]
        trial.cells_logged = len(logged)
        check = subprocess.run(
            [sys.executable, CHILD, "verify", _kind(scenario), path, log + ".verify"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check.returncode != 0:
            trial.outcome = "unreadable" if "UNREADABLE" in check.stdout else "error"
            trial.detail = (check.stdout + check.stderr)[-1500:] + "\n--- child:\n" + out[-800:]
            return trial
        verdict = json.loads(check.stdout.strip().splitlines()[-1])
        trial.file = verdict["file"]
        recomputed = set(verdict["recomputed"])
        trial.recomputed = len(recomputed)
        if verdict["wrong"]:
            trial.outcome, trial.detail = "wrong", str(verdict["wrong"][:5])
            return trial
        # Promised: a cell returned more than fsync_interval before the loss, plus one cell
        # for a sweep (its record is written, and due flushes run, once the next cell
        # returns). run_process logs a cell once its write-back has returned.
        # The killed first process never flushed its cells: the resuming one flushes them
        # with its first record, so they are promised once that is done, i.e. once its
        # second cell returned (the sweep is serial).
        tolerance = TOLERANCE.get(scenario, 0.1)
        resumed_at = logs[1][1][1] if len(logs[1]) > 1 else math.inf
        promised = set()
        for part in logs:
            for k, (i, t) in enumerate(part):
                if part is logs[0] and lost_at < resumed_at:
                    break
                if scenario != "run_process":
                    if k + 1 == len(part):
                        break  # the cell in flight
                    t = part[k + 1][1]
                if t + interval + tolerance < lost_at:
                    promised.add(i)
        trial.lost = sorted(promised & recomputed)
        if trial.lost:
            trial.outcome = "lost"
            trial.detail = (
                f"{len(trial.lost)} cells returned more than {interval} s (and one cell) "
                f"before the loss were computed again: {trial.lost[:10]}"
            )
            return trial
        trial.outcome = "ok"
        return trial
    except Unavailable:
        raise
    except Exception as exc:  # the harness itself: reported, not hidden
        trial.outcome, trial.detail = "error", f"{type(exc).__name__}: {exc}"
        return trial
    finally:
        fs.stop()
        if trial.outcome == "ok":
            shutil.rmtree(work, ignore_errors=True)
        else:
            trial.detail += f" (files kept in {work})"
            with open(os.path.join(root, "failed-trials.txt"), "a") as fh:
                fh.write(f"{scenario} {loss} {seed}: {work}\n")


def _child_mode(scenario: str) -> str:
    return "run_process" if scenario == "run_process" else "sweep"


def _kind(scenario: str) -> str:
    return {"image": "image", "streamed": "streamed"}.get(scenario, "scalar")


def _length(scenario: str) -> float:
    """About how long the child's work takes (seconds): losses land within it."""
    return {"image": 2.0, "streamed": 2.0, "run_process": 5.0}.get(scenario, 1.5)


def _fault(loss: str, scenario: str, rng) -> tuple[str | None, bool]:
    """The LazyFS crash command of a kind of loss (None: kill, then clear the cache), and
    whether it is armed before the child starts (else at a random moment during its run)."""
    if loss == "kill_clear":
        return None, False
    if loss == "rename_crash":
        # LazyFS matches a rename by its destination alone when the source pattern cannot
        # match the word "none" (its own quirk): any rename onto the file, from a new file or
        # a completed staged file.
        return f"lazyfs::crash::timing=after::op=rename::from_rgx=xsweep-::to_rgx=/{NAME}$", False
    # Files this scenario fsyncs: the journal always; the staged file (images), a new file
    # before its rename (publishes), the file itself (a resumed sweep proves the file it
    # resumed before its first record: armed from the start, or it would never meet it);
    # or whichever comes first ("/": LazyFS matches the backing path, so every fsync).
    targets = ["journal", "journal", "xsweep-tmp", "/"]
    targets += {"image": ["stage"], "streamed": ["stage"], "resumed": [NAME + "$"]}.get(
        scenario, []
    )
    target = rng.choice(targets)
    return f"lazyfs::crash::timing=after::op=fsync::from_rgx={target}", target == NAME + "$"


def _lose(
    fs: LazyFS, child: subprocess.Popen, command: str | None, armed: bool, delay: float
) -> tuple[float, bool]:
    """Lose power during the child's run: when (``time.time()``), and whether a crash fault
    fired (else the loss came after the child ended: a clear-cache then)."""
    start = time.monotonic()
    if command is None:
        _wait(child, start + delay)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait()
        at = time.time()
        fs.clear_cache()
        return at, True
    if not armed:
        _wait(child, start + delay * 0.5)
        fs.command(command)
    while child.poll() is None and not fs.crashed():
        time.sleep(0.002)
    at = time.time()
    fired = fs.crashed()
    if not fired:  # the child ended first: the loss comes after it
        fs.clear_cache()
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    child.wait()
    return at, fired


def _started(child: subprocess.Popen, log: str) -> None:
    """Wait until the child has returned its first cell (or ended)."""
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline:
        if os.path.exists(log) and os.path.getsize(log) > 0:
            return
        time.sleep(0.005)


def _wait(child: subprocess.Popen, until: float) -> None:
    while time.monotonic() < until and child.poll() is None:
        time.sleep(0.005)


def run_trials(
    n: int, seed: int, binary: str, root: str | None = None, report=print
) -> list[Trial]:
    """``n`` trials, cycling scenarios and kinds of loss in a shuffled order."""
    root = root or tempfile.mkdtemp(prefix="xsweep-powerloss-")
    rng = random.Random(seed)
    combos = [(s, k) for s in SCENARIOS for k in LOSSES]  # read at call time
    trials = []
    order: list = []
    for i in range(n):
        if not order:
            order = combos[:]
            rng.shuffle(order)
        scenario, loss = order.pop()
        trial = run_trial(binary, scenario, loss, rng.randrange(1 << 30), root)
        trials.append(trial)
        report(
            f"trial {i + 1:3d} {scenario:11s} {loss:12s} {trial.outcome:10s} "
            f"file={trial.file or '-':7s} fired={'yes' if trial.fired else 'no '} "
            f"logged={trial.cells_logged:5d} "
            f"recomputed={trial.recomputed:5d} {trial.detail[:300]}"
        )
    return trials


def summary(trials: list[Trial]) -> str:
    lines = []
    for loss in LOSSES:
        mine = [t for t in trials if t.loss == loss]
        ok = sum(t.outcome == "ok" for t in mine)
        late = sum(not t.fired for t in mine)
        note = f" ({late} after the child ended: the fault never met its operation)" if late else ""
        lines.append(f"{loss:12s}: {ok} of {len(mine)} hold{note}")
    bad = {}
    for t in trials:
        if t.outcome != "ok":
            bad[t.outcome] = bad.get(t.outcome, 0) + 1
    lines.append(f"failures by kind: {bad or 'none'}")
    for scenario in SCENARIOS:
        mine = [t for t in trials if t.scenario == scenario]
        ok = sum(t.outcome == "ok" for t in mine)
        lines.append(f"{scenario:12s}: {ok} of {len(mine)} hold")
    return "\n".join(lines)
