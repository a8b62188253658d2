"""A writer lock next to the cache file: one writer at a time, dead holders taken over.

The lock is an ``flock`` on ``<file>.lock``. The kernel drops it when its holder dies, however
it dies, so a lock left by a killed process is taken over without anyone breaking it by hand.
The file's content names the holder (pid, host) for the error message of whoever waits.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
import weakref

from ..errors import StoreError, StoreLockedError, StoreReadOnlyError

#: Locks held by this process. A forked child (a process-pool worker) closes its copies at
#: once: an flock belongs to the open file, so a worker outliving a killed driver would
#: otherwise keep the lock held and block the resume.
_HELD: weakref.WeakSet[WriterLock] = weakref.WeakSet()


def _forget_locks_in_child() -> None:
    for lock in list(_HELD):
        if lock.fd >= 0:
            try:
                os.close(lock.fd)
            except OSError:
                pass
            lock.fd = -1


os.register_at_fork(after_in_child=_forget_locks_in_child)


class WriterLock:
    """Exclusive, non-blocking writer lock on ``path`` (the lock file itself)."""

    def __init__(self, path: str, store_path: str) -> None:
        self.path = path
        self.store_path = store_path
        self.fd = -1

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreLockedError` naming the holder."""
        if self.fd >= 0:
            return
        for _ in range(20):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise StoreLockedError(self._busy_message(holder)) from None
            # The holder before us may have unlinked the file between our open and flock:
            # then we locked an orphan inode; go round and lock the file at the path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            self.fd = fd
            _HELD.add(self)
            return
        raise StoreLockedError(
            f"Could not lock {self.store_path}: its lock file {self.path} keeps changing. "
            "Another process is opening and closing it; try again."
        )

    def _open(self) -> int:
        """Open (creating) the lock file; never through a planted link, never a non-file."""
        try:
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                0o644,
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._foreign("a symbolic link") from None
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise StoreReadOnlyError(
                    f"Cannot write next to {self.store_path}: creating its lock file "
                    f"{self.path} failed ({exc.strerror}). Cached cells can still be read; to "
                    "compute and store new ones, make the folder writable or copy the file to "
                    "a folder you can write and enable_cache there."
                ) from None
            if exc.errno == errno.EISDIR:
                raise self._foreign("a folder") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._foreign("not a regular file")
        return fd

    def _foreign(self, what: str) -> StoreError:
        return StoreError(
            f"The lock file {self.path} is {what}, which xsweep never makes; it was not "
            "touched. Remove it (it holds nothing of value) and try again."
        )

    def release(self) -> None:
        if self.fd < 0:
            return
        # Unlink before unlocking so that a waiter never locks a file about to vanish.
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = -1
        _HELD.discard(self)

    def _busy_message(self, holder: dict) -> str:
        me = os.getpid() == holder.get("pid") and socket.gethostname() == holder.get("host")
        who = (
            "another ParameterSpace in this same process"
            if me
            else f"process {holder.get('pid', '?')} on host {holder.get('host', '?')}"
        )
        return (
            f"The cache file {self.store_path} is being written by {who} (lock file "
            f"{self.path}). Only one writer at a time keeps the file intact: wait for that sweep "
            "to finish, stop it, or use another cache path. Reading the file with "
            "xarray.open_dataset works meanwhile."
        )


def _read_holder(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode()) if data else {}
    except (OSError, ValueError, RecursionError):
        return {}
    # Anyone can write this file: only a dict of plain values names a holder.
    if not isinstance(holder, dict):
        return {}
    return {k: v for k, v in holder.items() if k in ("pid", "host") and type(v) in (int, str)}
