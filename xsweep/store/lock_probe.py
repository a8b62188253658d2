"""What a store's file system does with locks: refuses them, or keeps them within one machine.

:mod:`.locking` asks once per store opened, to choose between an ``flock`` and a lock file
(see its docstring): :func:`probe_refusal` tries a lock next to the store, and
:func:`node_local_flock` reads the mount options under which an ``flock`` works but only
within one machine (Lustre's ``localflock``, NFS's ``local_lock=``/``nolock``).
"""

from __future__ import annotations

import fcntl
import os
import stat
import uuid

from ..file_format import TEMP_MARK
from .files import unlink_quietly
from .hdf5_locking import REFUSALS


def probe_refusal(store_path: str) -> int | None:
    """The code with which the store's file system refuses ``flock``; None if it locks.

    Tries a lock on a new file of its own next to the store (removed at once), or, in a
    folder it cannot write, a shared lock on the results file. None too where neither can
    be tried (nothing is read or written there). Each store opened probes anew (tens of
    microseconds on a local disk): a device number may come back as another mount.

    Examples
    --------
    >>> import tempfile, os
    >>> probe_refusal(os.path.join(tempfile.mkdtemp(), "r.nc")) is None   # a local disk
    True
    """
    probe = f"{store_path}{TEMP_MARK}{os.getpid()}-probe-{uuid.uuid4().hex[:8]}"
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(probe, flags, 0o644)
    except OSError:
        return _try_lock(store_path, fcntl.LOCK_SH, os.O_RDONLY)
    try:
        return _lock_answer(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)
        unlink_quietly(probe)


def _try_lock(path: str, how: int, mode: int) -> int | None:
    try:
        fd = os.open(path, mode | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return _lock_answer(fd, how)
    finally:
        os.close(fd)


def _lock_answer(fd: int, how: int) -> int | None:
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        return None  # held by someone: locks work
    except OSError as exc:
        return exc.errno if exc.errno in REFUSALS else None
    return None


def node_local_flock(store_path: str, mountinfo: str | None = None) -> str | None:
    """Why ``flock`` on the store's file system excludes only processes of one machine.

    Lustre mounted with ``-o localflock``, and NFS mounted with ``local_lock=flock`` or
    ``local_lock=all`` (``nolock``), grant ``flock`` locally: two machines would both get
    the lock. Read from ``mountinfo`` (default ``/proc/self/mountinfo``): the mount of the
    store's folder, by device number. None where flock is coherent, or unknown.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> dev = os.stat(folder).st_dev
    >>> line = (f"36 25 {os.major(dev)}:{os.minor(dev)} / /scratch rw,relatime - lustre "
    ...         "10.0.0.1@tcp:/scratch rw,localflock")
    >>> node_local_flock(os.path.join(folder, "r.nc"), line)
    'Lustre mounted with -o localflock'
    """
    try:
        device = os.stat(os.path.dirname(store_path) or ".").st_dev
    except OSError:
        return None
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
                mountinfo = fh.read(1 << 22)
        except OSError:
            return None
    want = f"{os.major(device)}:{os.minor(device)}"
    found: tuple[str, set[str]] | None = None
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if sep and len(fields) >= 6 and len(rest) >= 3 and fields[2] == want:
            found = (rest[0], set(fields[5].split(",")) | set(rest[2].split(",")))
    if found is None:
        return None
    fstype, options = found
    if fstype == "lustre" and "localflock" in options:
        return "Lustre mounted with -o localflock"
    local = sorted(options & {"local_lock=flock", "local_lock=all"})
    if fstype.startswith("nfs") and local:
        return f"NFS mounted with {local[0]}"
    return None
