"""Stores on shared file systems that refuse locks, and writers on two machines.

NFS without its lock daemon refuses every lock with ENOLCK, Lustre without ``-o flock`` with
ENOSYS, others with EOPNOTSUPP: HDF5 then fails every open, and ``flock`` cannot keep one
writer at a time. The kernel here has no NFS client, so these tests mount ``lockless_fs``
(tests/helpers/lockless_fs.c, a FUSE mirror that refuses locks with the chosen code; built
on first use) and run real sweeps in real processes on it: killed, resumed, read back, and
contended. Two machines are two processes with their own hostname and PID namespace
(``unshare``). Without FUSE or root the tests skip with a notice; in CI as root they must
run (a skip there would hide a broken build).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import xsweep as xs
from tests.helpers import shared_fs
from xsweep.errors import StoreLockedError
from xsweep.store.hdf5_locking import hdf5_refuses
from xsweep.store.lock_probe import node_local_flock
from xsweep.store.locking import this_process

REPO = Path(__file__).resolve().parent.parent
CHILD = REPO / "tests" / "helpers" / "shared_fs_child.py"
ENV_VAR = "HDF5_USE_FILE_LOCKING"


def _unavailable(why: str) -> None:
    if shared_fs.must_run():
        pytest.fail(f"the lock-refusing file system should run in CI (root, FUSE) but: {why}")
    print(f"\nNOTICE: shared-file-system tests skipped: {why}")
    pytest.skip(f"cannot mount a lock-refusing file system here: {why}")


@pytest.fixture(scope="module")
def lockless_binary() -> str:
    try:
        return shared_fs.build()
    except shared_fs.Unavailable as exc:
        _unavailable(str(exc))


@pytest.fixture
def mount(tmp_path, lockless_binary):
    """``mount(code)``: a folder whose file system refuses every lock with ``code``."""
    mounts = []

    def make(code: str) -> Path:
        where = shared_fs.LocklessMount(
            lockless_binary, code, str(tmp_path / f"disk-{code}"), str(tmp_path / code)
        )
        try:
            mounts.append(where.__enter__())
        except shared_fs.Unavailable as exc:
            _unavailable(str(exc))
        return Path(where.mount)

    yield make
    for where in reversed(mounts):
        where.__exit__()


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["XS_CALLS"] = str(tmp_path / "calls")
    env.update(extra)
    return env


def sweep_in_child(tmp_path: Path, path: Path, cells: int = 10, env=None, host=None, **args):
    """Run tests/helpers/shared_fs_child.py: (returncode, its JSON or None, stderr)."""
    argv = [sys.executable, str(CHILD), json.dumps({"path": str(path), "cells": cells, **args})]
    if host is not None:
        argv = shared_fs.as_host(host, argv)
    done = subprocess.run(
        argv, env=env or child_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    lines = done.stdout.strip().splitlines()
    return done.returncode, (json.loads(lines[-1]) if lines else None), done.stderr


def start_in_child(tmp_path: Path, path: Path, name: str, host=None, cells=10, delay="1.0"):
    """A slow sweep in the background; returns (process, what it reported at its first cell)."""
    ready = tmp_path / f"{name}.ready"
    env = child_env(tmp_path, XS_READY=str(ready), XS_DELAY=delay)
    argv = [sys.executable, str(CHILD), json.dumps({"path": str(path), "cells": cells})]
    if host is not None:
        argv = shared_fs.as_host(host, argv)
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # killpg ends unshare and everything in its namespace
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate() if proc.poll() is not None else ("", "")
            kill(proc)
            pytest.fail(f"the writer {name} never started its sweep:\n{out}\n{err}")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())


def wait_for_calls(tmp_path: Path, n: int, timeout: float = 60) -> None:
    """Wait until the writers have started ``n`` cells (a loaded machine may be slow)."""
    deadline = time.monotonic() + timeout
    while len(calls(tmp_path)) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def calls(tmp_path: Path) -> list[int]:
    path = tmp_path / "calls"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def squares(n: int) -> list[int]:
    return [i * i for i in range(n)]


# ---------------------------------------------------------------------------------------------
# 1. The facts the design rests on (HDF5 2.2.0 of the netCDF4 wheel)
# ---------------------------------------------------------------------------------------------
FACT = """
import os, sys
when, where = sys.argv[1], sys.argv[2]
if when == "before import":
    os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
import netCDF4
if when == "after import":
    os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
try:
    netCDF4.Dataset(os.path.join(where, "fact.nc"), "w").close()
    print("created")
except OSError as exc:
    print(f"refused: {exc}")
"""


def test_hdf5_reads_its_locking_setting_once_when_it_starts(tmp_path, mount):
    """Why xsweep sets the variable around netCDF4's import, and which refusals need it."""
    where = {code: mount(code) for code in ("ENOLCK", "ENOSYS", "EOPNOTSUPP")}

    def create(code: str, when: str, setting: str | None = None) -> str:
        env = child_env(tmp_path)
        if setting is not None:
            env[ENV_VAR] = setting
        for leftover in where[code].glob("fact.nc"):
            leftover.unlink()
        done = subprocess.run(
            [sys.executable, "-c", FACT, when, str(where[code])],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout.strip()

    # Read once, when HDF5 starts (at import netCDF4): set afterwards, it changes nothing
    assert create("ENOLCK", "before import") == "created"
    assert create("ENOLCK", "after import").startswith("refused")
    # Unset and BEST_EFFORT ignore ENOSYS only; TRUE ignores nothing; FALSE locks nothing
    for code in where:
        for setting in (None, "BEST_EFFORT", "TRUE", "FALSE"):
            made = create(code, "never", setting)
            assert made.startswith("refused") == hdf5_refuses(getattr(errno, code), setting), (
                code,
                setting,
                made,
            )


# ---------------------------------------------------------------------------------------------
# 2. A cached sweep where locks are refused: killed, resumed, read back
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["ENOLCK", "ENOSYS", "EOPNOTSUPP"])
def test_a_sweep_killed_then_resumed_and_read_where_locks_are_refused(tmp_path, mount, code):
    path = mount(code) / "results.nc"
    rc, out, err = sweep_in_child(tmp_path, path, env=child_env(tmp_path, XS_KILL_AT="5"))
    assert rc == -signal.SIGKILL, (out, err)
    assert calls(tmp_path) == [0, 1, 2, 3, 4]
    lock = json.loads(Path(f"{path}.lock").read_text())  # a lock file: flock is refused
    assert lock["kind"] == "file" and lock["host"] == socket.gethostname()

    # The dead writer was on this host: its lock is taken over, only missing cells run
    rc, out, err = sweep_in_child(tmp_path, path, h5py=(code == "ENOLCK"))
    assert rc == 0 and "error" not in out, (out, err)
    assert out["values"] == squares(10) and out["read"] == squares(10)
    assert out["status"] == [1] * 10
    assert calls(tmp_path) == list(range(10))
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.nc"]
    # The user's environment is as it was: child processes and h5py (its own HDF5) keep
    # HDF5's locks, which this file system refuses
    assert out["hdf5_env"] is None
    if code == "ENOLCK":
        assert "unable to lock file" in out["h5py"], out["h5py"]

    # A reader in another process, without xsweep, is plain HDF5: it needs the variable
    read = [
        sys.executable,
        "-c",
        f"import xarray as xr; print(xr.open_dataset({str(path)!r})['square'].values.tolist())",
    ]
    plain = subprocess.run(read, env=child_env(tmp_path), capture_output=True, text=True)
    assert (plain.returncode != 0) == hdf5_refuses(getattr(errno, code), None), plain.stderr
    told = subprocess.run(
        read, env=child_env(tmp_path, **{ENV_VAR: "FALSE"}), capture_output=True, text=True
    )
    assert json.loads(told.stdout) == squares(10), told.stderr


# ---------------------------------------------------------------------------------------------
# 3. One writer at a time where flock is refused
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["ENOLCK", "ENOSYS"])
def test_a_second_writer_is_refused_and_a_dead_one_on_this_host_is_taken_over(
    tmp_path, mount, code
):
    path = mount(code) / "results.nc"
    first, holder = start_in_child(tmp_path, path, "first")
    try:
        rc, out, err = sweep_in_child(tmp_path, path)
        assert rc == 0 and out["error"] == "StoreLockedError", (out, err)
        assert f"process {holder['pid']} on host {holder['host']}" in out["message"]
        assert "being written by" in out["message"]
    finally:
        kill(first)  # SIGKILL: its lock file stays, naming a dead process of this host
    assert Path(f"{path}.lock").exists()
    rc, out, err = sweep_in_child(tmp_path, path)
    assert rc == 0 and out.get("values") == squares(10), (out, err)
    assert not Path(f"{path}.lock").exists()


def test_a_crafted_lock_file_is_judged_by_its_holder_and_the_way_out_works(tmp_path, mount):
    """In this process: HDF5's default ignores ENOSYS, so the test process can open stores
    there (on ENOLCK its netCDF4, imported long ago with locks, could not)."""
    path = mount("ENOSYS") / "results.nc"
    lock = Path(f"{path}.lock")
    ps = xs.ParameterSpace([xs.Parameter("n", values=range(4))])
    ps.enable_cache(path)

    lock.write_text("not a record")  # names no holder: never broken automatically
    with pytest.raises(StoreLockedError, match=r"names no writer.*rm "):
        ps.sweep(lambda n: n + 1, name="one", progress=False)
    lock.unlink()  # the way out the message gives

    # A holder of this host whose process is gone: taken over
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = this_process()
    lock.write_text(json.dumps({**me, "pid": gone.pid, "start": None, "kind": "file"}))
    assert ps.sweep(lambda n: n + 1, name="one", progress=False)["one"].values.tolist() == [
        1,
        2,
        3,
        4,
    ]
    assert not lock.exists()

    # A holder on another host: refused with the way out, which works
    lock.write_text(json.dumps({"pid": 4242, "host": "node17", "since": time.time()}))
    with pytest.raises(StoreLockedError) as caught:
        ps.sweep(lambda n: n + 2, name="two", progress=False)
    message = str(caught.value)
    assert "process 4242 on host node17" in message and "never broken automatically" in message
    assert f"rm {lock}" in message and "ps -p 4242" in message
    assert lock.exists()
    lock.unlink()
    assert ps.sweep(lambda n: n + 2, name="two", progress=False)["two"].values.tolist() == [
        2,
        3,
        4,
        5,
    ]

    # Two spaces of this process: the second is told so, while the first sweeps
    other = xs.ParameterSpace([xs.Parameter("n", values=range(4))])
    other.enable_cache(path)
    seen = {}

    def nested(n):
        if n == 0:
            try:
                other.sweep(lambda n: n + 3, name="three", progress=False)
            except StoreLockedError as exc:
                seen["message"] = str(exc)
        return n

    ps.sweep(nested, progress=False)
    assert "another ParameterSpace in this same process" in seen["message"]
    ps.disable_cache()
    other.disable_cache()


# ---------------------------------------------------------------------------------------------
# 4. Too late, or the user's own setting: a clear error, and the way out
# ---------------------------------------------------------------------------------------------
def test_hdf5_started_with_locks_is_a_clear_error_and_the_way_out_works(tmp_path, mount):
    path = mount("ENOLCK") / "results.nc"
    rc, out, err = sweep_in_child(tmp_path, path, netcdf4_first=True)
    assert rc == 0 and out.get("error") == "StoreError", (out, err)
    assert "refuses file locks (ENOLCK)" in out["message"]
    assert "netCDF4 was imported" in out["message"]
    assert "export HDF5_USE_FILE_LOCKING=FALSE" in out["message"]
    assert not path.exists() and list(path.parent.iterdir()) == []  # nothing written
    env = child_env(tmp_path, **{ENV_VAR: "FALSE"})
    rc, out, err = sweep_in_child(tmp_path, path, env=env, netcdf4_first=True)
    assert rc == 0 and out.get("values") == squares(10), (out, err)

    # The user's own setting is respected: TRUE cannot work where locks are refused
    path = mount("ENOSYS") / "results.nc"
    env = child_env(tmp_path, **{ENV_VAR: "TRUE"})
    rc, out, err = sweep_in_child(tmp_path, path, env=env)
    assert out.get("error") == "StoreError", (out, err)
    assert "you set HDF5_USE_FILE_LOCKING=TRUE" in out["message"]
    rc, out, err = sweep_in_child(tmp_path, path)  # unset: HDF5's default ignores ENOSYS
    assert rc == 0 and out.get("values") == squares(10), (out, err)


# ---------------------------------------------------------------------------------------------
# 5. Two machines on one store
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hosts():
    why = shared_fs.can_be_another_host()
    if why is not None:
        if shared_fs.must_run():
            pytest.fail(f"processes as other hosts should run in CI (root) but: {why}")
        print(f"\nNOTICE: two-host tests skipped: {why}")
        pytest.skip(why)


def test_two_hosts_with_a_lock_file_a_dead_holder_elsewhere_is_never_broken(tmp_path, mount, hosts):
    path = mount("ENOLCK") / "results.nc"
    first, holder = start_in_child(tmp_path, path, "node-a", host="node-a")
    assert holder["host"] == "node-a"
    try:
        rc, out, err = sweep_in_child(tmp_path, path, host="node-b")
        assert out["host"] == "node-b" and out.get("error") == "StoreLockedError", (out, err)
        named = f"process {holder['pid']} on host node-a, not on this host (node-b)"
        assert named in out["message"]
    finally:
        wait_for_calls(tmp_path, 2)  # a cell done, one in flight: a resume has work to skip
        kill(first)
    done_before = len(calls(tmp_path))
    # node-a's writer is dead, but node-b cannot know that: still refused, with the way out
    rc, out, err = sweep_in_child(tmp_path, path, host="node-b")
    assert out.get("error") == "StoreLockedError", (out, err)
    assert "never broken automatically" in out["message"]
    assert f"rm {path}.lock" in out["message"]
    Path(f"{path}.lock").unlink()  # the way out, once the user has checked node-a
    rc, out, err = sweep_in_child(tmp_path, path, host="node-b")
    assert rc == 0 and out.get("values") == squares(10), (out, err)
    # Resumed: only the cell node-a was computing when it died is computed twice
    assert done_before >= 2 and len(calls(tmp_path)) <= 11, calls(tmp_path)


def test_two_hosts_with_flock_a_dead_holder_elsewhere_is_released_by_the_kernel(tmp_path, hosts):
    path = tmp_path / "results.nc"  # a local disk: flock works
    first, holder = start_in_child(tmp_path, path, "node-a", host="node-a")
    try:
        rc, out, err = sweep_in_child(tmp_path, path, host="node-b")
        assert out.get("error") == "StoreLockedError", (out, err)
        assert f"process {holder['pid']} on host node-a" in out["message"]
    finally:
        wait_for_calls(tmp_path, 2)  # a cell done, one in flight: a resume has work to skip
        kill(first)
    done_before = len(calls(tmp_path))
    # One kernel holds every flock here: it dropped node-a's with its process
    rc, out, err = sweep_in_child(tmp_path, path, host="node-b")
    assert rc == 0 and out.get("values") == squares(10), (out, err)
    assert done_before >= 2 and len(calls(tmp_path)) <= 11, calls(tmp_path)
    assert not Path(f"{path}.lock").exists()


# ---------------------------------------------------------------------------------------------
# 6. flock that only works within one machine
# ---------------------------------------------------------------------------------------------
def test_mount_options_that_make_flock_local_to_one_machine_are_recognised(tmp_path):
    dev = os.stat(tmp_path).st_dev
    ids = f"{os.major(dev)}:{os.minor(dev)}"
    store = str(tmp_path / "r.nc")
    nfs = f"40 25 {ids} / /home rw,relatime - nfs server:/home rw,vers=3,local_lock=all\n"
    assert node_local_flock(store, nfs) == "NFS mounted with local_lock=all"
    coherent = nfs.replace("local_lock=all", "local_lock=none")
    assert node_local_flock(store, coherent) is None
    lustre = f"41 25 {ids} / /scratch rw - lustre mgs@tcp:/fs rw,flock\n"
    assert node_local_flock(store, lustre) is None
    other_dev = "42 25 999:999 / /x rw - lustre mgs@tcp:/fs rw,localflock\n"
    assert node_local_flock(store, other_dev) is None


def test_importing_xsweep_does_not_start_hdf5():
    """HDF5 reads HDF5_USE_FILE_LOCKING once, when netCDF4 is imported: xsweep must import it
    only when it opens a store (hdf5_locking decides how), never at ``import xsweep``."""
    code = "import sys, xsweep; print(sorted(m for m in sys.modules if m.startswith('netCDF4')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
