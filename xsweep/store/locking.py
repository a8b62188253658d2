"""A writer lock next to the cache file: one writer at a time, on local and shared disks.

Two ways to hold ``<file>.lock``, chosen per store by what its file system does:

* **flock** (local disks; NFS with its lock daemon; Lustre with ``-o flock``; GPFS): an
  ``flock`` on the file. The kernel drops it when its holder dies, however it dies, so a
  lock left by a killed process is taken over without anyone breaking it by hand.
* **lock file**, where ``flock`` is refused (ENOLCK: NFS without its lock daemon; ENOSYS:
  Lustre without ``-o flock``; EOPNOTSUPP, ENOTSUPP) or only works within one machine
  (Lustre's ``-o localflock``, NFS's ``local_lock=``/``nolock``): the lock *is* the file,
  created whole by a hard link (atomic on NFS too) and removed on release. A holder on
  this machine whose process is gone is taken over; a holder on another machine cannot be
  checked from here, so it is never broken automatically: :class:`StoreLockedError` names
  it and says how to clear it once the user has checked that its sweep is gone.

Either way the file's content names the holder (pid, host, when) for the messages of
whoever waits. A file system that refuses ``flock`` refuses HDF5's locks too: the store is
also where xsweep sets those (:mod:`.hdf5_locking`), before its first netCDF call. What the
file system allows is asked of :mod:`.lock_probe`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shlex
import socket
import stat
import time
import uuid
import weakref
from collections.abc import Iterator

from ..errors import StoreError, StoreLockedError, StoreReadOnlyError
from ..file_format import TEMP_MARK
from .files import unlink_quietly
from .hdf5_locking import REFUSALS, prepare_hdf5, refusal_name
from .lock_probe import node_local_flock, probe_refusal

#: Locks held by this process. A forked child (a process-pool worker) forgets its copies at
#: once: an flock belongs to the open file, so a worker outliving a killed driver would
#: otherwise keep the lock held and block the resume; and a worker must never remove the
#: driver's lock file.
_HELD: weakref.WeakSet[WriterLock] = weakref.WeakSet()

#: The largest lock file read: anyone can write it.
_MAX_RECORD = 4096


def _forget_locks_in_child() -> None:
    for lock in list(_HELD):
        if lock.fd >= 0:
            try:
                os.close(lock.fd)
            except OSError:
                pass
            lock.fd = -1
        lock.linked = None


os.register_at_fork(after_in_child=_forget_locks_in_child)


class WriterLock:
    """Exclusive, non-blocking writer lock on ``path`` (the lock file itself).

    Creating it looks at the store's file system once: whether ``flock`` works there, and
    whether HDF5 can open files there (see :func:`~.hdf5_locking.prepare_hdf5`, which may
    raise a :class:`StoreError` saying what to set).
    """

    def __init__(self, path: str, store_path: str) -> None:
        self.path = path
        self.store_path = store_path
        self.fd = -1  # the flock way: the locked file
        self.linked: tuple[int, int] | None = None  # the lock-file way: (dev, ino) of ours
        #: Why ``flock`` cannot serve here (a refusal code, or a mount option), or None.
        self.refusal = probe_refusal(store_path)
        self.node_local = node_local_flock(store_path) if self.refusal is None else None
        prepare_hdf5(store_path, self.refusal)

    @property
    def by_file(self) -> bool:
        """Whether this lock is a lock file rather than an ``flock``."""
        return self.refusal is not None or self.node_local is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreLockedError` naming the holder."""
        if self.fd >= 0 or self.linked is not None:
            return
        if self.by_file:
            self._acquire_file()
        else:
            self._acquire_flock()

    # -- the flock way ----------------------------------------------------------------------------
    def _acquire_flock(self) -> None:
        for _ in range(20):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = parse_holder(_pread(fd))
                os.close(fd)
                raise StoreLockedError(self._busy_message(holder, "flock")) from None
            except OSError as exc:
                if exc.errno not in REFUSALS:
                    os.close(fd)
                    raise
                # The probe could not tell (the folder was read-only then): a lock file it is
                self._drop_if_empty(fd)
                self.refusal = exc.errno
                self._acquire_file()
                return
            # The holder before us may have unlinked the file between our open and flock:
            # then we locked an orphan inode; go round and lock the file at the path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            # A lock file made where flock is refused (another machine's mount options may
            # differ from ours) is a lock all the same: its holder must be gone.
            holder = parse_holder(_pread(fd))
            if holder.get("kind") == "file":
                verdict = judge(holder)
                if verdict != "gone":
                    os.close(fd)
                    raise StoreLockedError(self._busy_message(holder, verdict))
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(self._record("flock")).encode(), 0)
            self.fd = fd
            _HELD.add(self)
            return
        raise StoreLockedError(self._keeps_changing())

    def _open(self) -> int:
        """Open (creating) the lock file; never through a planted link, never a non-file."""
        try:
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                0o644,
            )
        except OSError as exc:
            raise self._open_error(exc) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._foreign("not a regular file")
        return fd

    def _drop_if_empty(self, fd: int) -> None:
        """Remove the empty file our open created, so that the lock-file way finds none."""
        try:
            mine = os.fstat(fd)
            there = os.stat(self.path, follow_symlinks=False)
            if mine.st_size == 0 and (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(fd)

    # -- the lock-file way ------------------------------------------------------------------------
    def _acquire_file(self) -> None:
        for _ in range(20):
            ours = self._link_record()
            if ours is not None:
                self.linked = ours
                _HELD.add(self)
                return
            raw = self._read_file()
            if raw is None:  # released meanwhile: try again
                continue
            holder = parse_holder(raw)
            verdict = judge(holder)
            if verdict != "gone":
                raise StoreLockedError(self._busy_message(holder, verdict))
            if not self._take_over(raw):
                raise StoreLockedError(self._busy_message(holder, "gone, not taken"))
        raise StoreLockedError(self._keeps_changing())

    def _link_record(self) -> tuple[int, int] | None:
        """Create the lock file whole, if there is none: ``(dev, ino)`` of ours, else None.

        The record is written to a file of our own first and hard-linked to the lock's
        name: the link either makes it or finds a lock there, atomically even over NFS, and
        no one ever sees a half-written lock. (Where the file system has no hard links, an
        exclusive create, then the record.)
        """
        tmp = f"{self.store_path}{TEMP_MARK}{os.getpid()}-lock-{uuid.uuid4().hex[:8]}"
        record = json.dumps(self._record("file")).encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise self._open_error(exc) from None
        try:
            os.write(fd, record)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return None
        except OSError as exc:
            # NFS may answer a retried link with an error although it made it: the count says
            if os.stat(tmp).st_nlink == 2:
                return (st.st_dev, st.st_ino)
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
                raise
            return self._create_record(record)
        finally:
            unlink_quietly(tmp)
        return (st.st_dev, st.st_ino)

    def _create_record(self, record: bytes) -> tuple[int, int] | None:
        try:
            fd = os.open(
                self.path,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
            )
        except FileExistsError:
            return None
        try:
            os.write(fd, record)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return (st.st_dev, st.st_ino)

    def _read_file(self) -> bytes | None:
        """The lock file's first bytes; None if it is gone. Never through a planted link."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._open_error(exc) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self._foreign("not a regular file")
            return _pread(fd)
        finally:
            os.close(fd)

    def _take_over(self, raw: bytes) -> bool:
        """Remove the lock file of a holder gone from this machine, if it is still ``raw``.

        Only processes on this machine ever remove a lock they do not hold, and they take
        turns (a machine-wide mutex): each looks again under the mutex, so none removes a
        lock another has just taken. False where no such mutex is to be had.
        """
        with _machine_mutex(self.path) as held:
            if not held:
                return False
            if self._read_file() == raw:
                unlink_quietly(self.path)
        return True

    # -- both ways --------------------------------------------------------------------------------
    def release(self) -> None:
        if self.fd >= 0:
            # Unlink before unlocking so that a waiter never locks a file about to vanish.
            unlink_quietly(self.path)
            os.close(self.fd)
            self.fd = -1
        elif self.linked is not None:
            try:
                there = os.stat(self.path, follow_symlinks=False)
                if (there.st_dev, there.st_ino) == self.linked:
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.linked = None
        _HELD.discard(self)

    def _record(self, kind: str) -> dict:
        return {**this_process(), "since": time.time(), "kind": kind}

    def _open_error(self, exc: OSError) -> Exception:
        if exc.errno == errno.ELOOP:
            return self._foreign("a symbolic link")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return StoreReadOnlyError(
                f"Cannot write next to {self.store_path}: creating its lock file "
                f"{self.path} failed ({exc.strerror}). Cached cells can still be read; to "
                "compute and store new ones, make the folder writable or copy the file to "
                "a folder you can write and enable_cache there."
            )
        if exc.errno == errno.EISDIR:
            return self._foreign("a folder")
        return exc

    def _foreign(self, what: str) -> StoreError:
        return StoreError(
            f"The lock file {self.path} is {what}, which xsweep never makes; it was not "
            "touched. Remove it (it holds nothing of value) and try again."
        )

    def _keeps_changing(self) -> str:
        return (
            f"Could not lock {self.store_path}: its lock file {self.path} keeps changing. "
            "Another process is opening and closing it; try again."
        )

    def _busy_message(self, holder: dict, verdict: str) -> str:
        """What holds the file, and what to do: wait, stop it, or (checked) clear it."""
        pid, host = holder.get("pid", "?"), holder.get("host", "?")
        since = holder.get("since")
        when = (
            f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
            if isinstance(since, (int, float)) and 0 < since < 1e11
            else ""
        )
        lock = f"lock file {self.path}"
        wait = (
            "Only one writer at a time keeps the file intact: wait for that sweep to finish, "
            "stop it, or use another cache path. Reading the file with xarray.open_dataset "
            "works meanwhile."
        )
        if verdict == "self":
            return (
                f"The cache file {self.store_path} is being written by another ParameterSpace "
                f"in this same process ({lock}). {wait}"
            )
        if verdict in ("flock", "alive"):
            return (
                f"The cache file {self.store_path} is being written by process {pid} on host "
                f"{host} ({lock}). {wait}"
            )

        def clear(verb: str) -> str:
            return (
                f"{verb} the lock file (rm {shlex.quote(self.path)}) and try again: it holds "
                "nothing of value, and every computed cell is kept in the file and its journal."
            )

        if verdict == "unknown":
            return (
                f"The cache file {self.store_path} is locked by {self.path}, which names no "
                f"writer xsweep can check ({self._why_file()}). If no sweep is writing this "
                f"file (another process may be taking the lock right now: try again first), "
                + clear("remove")
            )
        if verdict == "gone, not taken":
            return (
                f"The cache file {self.store_path} was locked by process {pid} on this host "
                f"{host} ({lock}), which is gone, but xsweep cannot take its lock over safely "
                "on this system. " + clear("Remove")
            )
        where = {
            "elsewhere": f"host {host}, not on this host ({socket.gethostname()})",
            "other boot": f"host {host}, which has restarted since, or is another machine "
            "of the same name",
            "other namespace": f"host {host}, in another container (PID namespace) of it",
        }[verdict]
        why = self._why_file()
        return (
            f"The cache file {self.store_path} is being written by process {pid} on {where}. "
            f"{why[0].upper()}{why[1:]} ({self.path}{when}); a lock taken there cannot be "
            "checked from here, so it is never broken automatically. Wait for that sweep to "
            f"finish, or stop it. If it is gone (on {host}, `ps -p {pid}` shows no such "
            "process, or its batch job has ended), " + clear("remove")
        )

    def _why_file(self) -> str:
        if self.refusal is not None:
            return (
                f"this file system refuses flock ({refusal_name(self.refusal)}), so xsweep "
                "locks it with a lock file"
            )
        if self.node_local is not None:
            return (
                f"flock works only within one machine here ({self.node_local}), so xsweep "
                "locks it with a lock file"
            )
        return "its lock is a lock file, made where flock is refused"


# -------------------------------------------------------------------------------------------------
# Who holds a lock, and whether that holder is gone
# -------------------------------------------------------------------------------------------------
def this_process() -> dict:
    """What names this process in a lock file: pid, host, and how to check it is alive.

    ``boot`` (the kernel's boot id), ``pidns`` (the PID namespace) and ``start`` (clock
    ticks since boot when the process started) let a process on the same host tell that
    a holder is gone even after its pid was reused.

    Examples
    --------
    >>> import os
    >>> this_process()["pid"] == os.getpid()
    True
    """
    pid = os.getpid()
    if _ME.get("pid") != pid:  # read once per process (a forked child reads its own)
        _ME.update(
            pid=pid,
            boot=_read_text("/proc/sys/kernel/random/boot_id"),
            pidns=_pid_namespace(),
            start=_start_ticks(pid),
        )
    return {"pid": pid, "host": socket.gethostname(), **{k: _ME[k] for k in _IDS}}


_ME: dict = {}
_IDS = ("boot", "pidns", "start")


_TYPES = {
    "pid": (int,),
    "host": (str,),
    "since": (int, float),
    "kind": (str,),
    "boot": (str,),
    "pidns": (int,),
    "start": (int,),
}


def parse_holder(data: bytes) -> dict:
    """The holder a lock file names: only plain values of known keys (anyone can write it).

    Examples
    --------
    >>> parse_holder(b'{"pid": 12, "host": "node7", "extra": [1]}')
    {'pid': 12, 'host': 'node7'}
    >>> parse_holder(b"[]"), parse_holder(b"\\xff")
    ({}, {})
    """
    try:
        holder = json.loads(data.decode()) if data else {}
    except (ValueError, RecursionError):
        return {}
    if not isinstance(holder, dict):
        return {}
    plain = {k: v for k, v in holder.items() if k in _TYPES and type(v) in _TYPES[k]}
    # A name shown in messages: printable and short, else not shown
    for key in ("host", "kind", "boot"):
        if key in plain and not (plain[key].isprintable() and len(plain[key]) <= 255):
            del plain[key]
    return plain


def judge(holder: dict) -> str:
    """Whether the holder a lock file names is alive, as far as this process can tell.

    ``"gone"``: on this host, same boot and PID namespace, and its process has ended (or
    its pid now belongs to a process started later). ``"self"``: this process.
    ``"alive"``: on this host and running. Else it cannot be checked from here:
    ``"elsewhere"`` (another host), ``"other boot"``, ``"other namespace"``, ``"unknown"``
    (no holder named).

    Examples
    --------
    >>> judge(this_process())
    'self'
    >>> judge({"pid": 1, "host": "no-such-host.invalid"})
    'elsewhere'
    """
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int) or pid <= 0 or not isinstance(host, str):
        return "unknown"
    me = this_process()
    if host != me["host"]:
        return "elsewhere"
    if holder.get("boot", me["boot"]) != me["boot"]:
        return "other boot"
    if holder.get("pidns", me["pidns"]) != me["pidns"]:
        return "other namespace"
    if pid == me["pid"]:
        return "self"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # another user's process: alive
    start = holder.get("start")
    if start is not None and _start_ticks(pid) not in (start, None):
        return "gone"  # the pid was reused by a process started later
    return "alive"


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read(200).strip()
    except OSError:
        return ""


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; field 22 of /proc/PID/stat)."""
    text = _read_text(f"/proc/{pid}/stat")
    try:
        return int(text.rpartition(")")[2].split()[19])
    except (IndexError, ValueError):
        return None


def _pread(fd: int) -> bytes:
    try:
        return os.pread(fd, _MAX_RECORD, 0)
    except OSError:
        return b""


@contextlib.contextmanager
def _machine_mutex(path: str) -> Iterator[bool]:
    """One process of this machine at a time (per lock file); yields False if unavailable.

    An abstract Unix socket name: no file to plant or leave behind, and the kernel frees it
    when its holder dies. (Linux only; elsewhere nothing is taken over automatically.)
    """
    key = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:40]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                sock.bind(f"\0xsweep-lock-{key}")
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.005)
        yield True
    finally:
        sock.close()

