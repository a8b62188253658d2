"""File-system helpers of the NetCDF store: writes, fsync, background discard, write errors."""

from __future__ import annotations

import contextlib
import errno
import os
import threading

from ..file_format import STAGE_MARK, TEMP_MARK


def write_cause(exc: BaseException, path: str) -> str:
    """What made a write next to ``path`` fail, and what to do, in words.

    HDF5 reports a full disk as "HDF error" or even "Permission denied", so the free space
    of the folder is checked before the error's own words are trusted.
    """
    import resource

    folder = os.path.dirname(path) or "."
    code = None
    seen: BaseException | None = exc
    while seen is not None and code is None:
        if isinstance(seen, OSError) and seen.errno:
            code = seen.errno
        seen = seen.__cause__ or seen.__context__
    said = f" ({os.strerror(code)})" if code else ""
    try:
        st = os.statvfs(folder)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if code in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < 4 << 20):
        room = f", {free / 1e6:.1f} MB free" if free is not None else ""
        return f"the disk holding {folder} is full{said}{room}; free disk space or check quotas"
    if code == errno.EFBIG or limit != resource.RLIM_INFINITY:
        size = f" of {limit} bytes" if limit != resource.RLIM_INFINITY else ""
        return (
            f"the file would exceed this process's file-size limit{size} (ulimit -f){said}; "
            "raise the limit"
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied in {folder}{said}; make the folder writable or use another path"
    return f"{exc}; check free disk space and the permissions of {folder}"


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


#: Journals at least this big are freed in the background (``discard``).
DISCARD_BYTES = 8 << 20


_discarding: list[threading.Thread] = []


def discard(path: str, tomb: str) -> None:
    """Remove a file now for every reader, and free its disk space in the background.

    Freeing a big journal's cached pages takes milliseconds (2 ms for 37 MB here) that the
    caller need not wait for. A process killed first leaves ``tomb``, which the next write
    session removes (it matches ``*.xsweep-tmp-*``); :func:`wait_discards` waits for them.
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return
    if size < DISCARD_BYTES:
        unlink_quietly(path)
        return
    try:
        os.replace(path, tomb)
    except FileNotFoundError:
        return
    thread = threading.Thread(target=unlink_quietly, args=(tomb,), name="xsweep-discard")
    thread.start()
    _discarding[:] = [t for t in _discarding if t.is_alive()] + [thread]


def wait_discards() -> None:
    """Wait until the files being freed in the background are gone."""
    for thread in list(_discarding):
        thread.join()


def fsync_file(path: str) -> None:
    """Make the bytes of the file ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make the entries of the folder ``path`` (its renames) durable."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_temp_files(path: str, keep: str | None) -> None:
    """Remove the temporary and staged files of the results file ``path``, but ``keep``.

    Only the writer (holding the lock) calls this: no other writer is writing one. A staged
    file that the journal's records need (``keep``) stays; a folder is never ours.
    """
    folder, name = os.path.split(path)
    prefixes = (name + TEMP_MARK, name + STAGE_MARK)
    with os.scandir(folder or ".") as entries:
        for entry in entries:
            if (
                entry.name.startswith(prefixes)
                and entry.path != keep
                and not entry.is_dir(follow_symlinks=False)
            ):
                unlink_quietly(entry.path)


def pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    """Write all of ``view`` at ``offset`` of ``fd`` (``pwrite`` may write less than asked)."""
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
