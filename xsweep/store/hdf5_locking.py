"""HDF5's own file locking, set so that stores work on file systems that refuse locks.

HDF5 locks every file it opens (``flock``: shared to read, exclusive to write) and fails the
open when the lock is refused. NFS without a reachable lock daemon refuses with ENOLCK, some
file systems with EOPNOTSUPP; Lustre mounted without ``-o flock`` answers ENOSYS, which
HDF5's default ignores (it is built "best effort"). There netCDF4 fails every open with an
opaque ``NetCDF: HDF error`` (``Permission denied`` for a new file) unless the environment
variable ``HDF5_USE_FILE_LOCKING`` was ``FALSE`` when HDF5 started.

xsweep needs none of HDF5's locks: one writer at a time is its own lock's job
(:mod:`.locking`), new files are written under a temporary name that only that writer
uses, and the results file is replaced whole by a rename, never written in place. So:

* where the store's folder takes locks, or refuses them with ENOSYS, nothing is changed;
* where it refuses them otherwise, and ``netCDF4`` is not imported yet, xsweep imports it
  with ``HDF5_USE_FILE_LOCKING=FALSE`` and then restores the environment: HDF5 reads the
  variable once, when the library starts (measured with HDF5 2.2.0 of the netCDF4 wheel;
  HDF5's sources say "we only parse it once"), so netCDF4 in this process keeps it, while
  ``h5py`` (its own copy of HDF5) and child processes see the environment the user set;
* a value the user set is respected: if it cannot work there, or netCDF4 was imported
  too early for xsweep to set it, :func:`prepare_hdf5` raises a :class:`StoreError` that
  says what to set, before anything is read or written.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import uuid

from ..errors import StoreError
from ..file_format import TEMP_MARK
from .files import unlink_quietly
from .nclock import NC_LOCK

#: The variable HDF5 reads when it starts.
ENV = "HDF5_USE_FILE_LOCKING"
#: Linux's internal "not supported" code, which some file systems let through to users.
ENOTSUPP = 524
#: What ``flock`` answers on a file system that does not lock (rather than "held").
REFUSALS = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, ENOTSUPP})

_state = {"set_by_xsweep": False}
#: File systems (by device) where netCDF4 was seen creating a file: checked once a process.
_VERIFIED: set[int] = set()
_env_guard = threading.Lock()


def refusal_name(code: int) -> str:
    """The name of a refusal code, as ``flock``'s man page and HDF5's messages spell it.

    Examples
    --------
    >>> refusal_name(37), refusal_name(524)
    ('ENOLCK', 'ENOTSUPP')
    """
    return "ENOTSUPP" if code == ENOTSUPP else errno.errorcode.get(code, str(code))


def hdf5_refuses(code: int, setting: str | None) -> bool:
    """Whether HDF5 fails to open files where ``flock`` fails with ``code``.

    ``setting`` is ``HDF5_USE_FILE_LOCKING`` as HDF5 saw it (None: unset). Unset and
    ``BEST_EFFORT`` ignore ENOSYS only; ``TRUE``/``1`` ignore nothing; ``FALSE``/``0`` lock
    nothing.

    Examples
    --------
    >>> import errno
    >>> hdf5_refuses(errno.ENOLCK, None), hdf5_refuses(errno.ENOSYS, None)
    (True, False)
    >>> hdf5_refuses(errno.ENOSYS, "TRUE"), hdf5_refuses(errno.ENOLCK, "false")
    (True, False)
    """
    value = (setting or "").strip().upper()
    if value in ("FALSE", "0"):
        return False
    if value in ("TRUE", "1"):
        return True
    return code != errno.ENOSYS


def prepare_hdf5(store_path: str, refusal: int | None) -> None:
    """Make netCDF4's HDF5 able to open files next to ``store_path``, or say why not.

    Called before xsweep's first netCDF call for a store. ``refusal`` is what ``flock``
    answered in the store's folder (None: locks work, or the folder is not writable and
    could not be probed). Changes nothing where HDF5 would open files there as it is.

    Parameters
    ----------
    store_path : str
        The results file.
    refusal : int or None
        The errno with which the file system refused a lock.

    Raises
    ------
    StoreError
        HDF5 in this process would refuse every file there, and it is too late (netCDF4
        was imported) or not xsweep's call (the user set ``HDF5_USE_FILE_LOCKING``) to
        change that. Nothing was read or written.

    Examples
    --------
    >>> import tempfile, os
    >>> prepare_hdf5(os.path.join(tempfile.mkdtemp(), "r.nc"), None)  # locks work: no change
    """
    if refusal is None:
        return
    user = os.environ.get(ENV)
    if user is None and not _state["set_by_xsweep"] and hdf5_refuses(refusal, None):
        with _env_guard:
            if "netCDF4" not in sys.modules:
                os.environ[ENV] = "FALSE"
                try:
                    import netCDF4  # noqa: F401  (HDF5 reads the variable now, once)
                finally:
                    os.environ.pop(ENV, None)
                _state["set_by_xsweep"] = True
    expected = _state["set_by_xsweep"] or not hdf5_refuses(refusal, user)
    folder = os.path.dirname(store_path) or "."
    # Where we can, we check rather than trust the reasoning: a copy of HDF5 shared with a
    # module imported earlier (h5py, in some installs) may have started with locks on.
    try:
        device = os.stat(folder).st_dev
    except OSError:
        return  # no folder: the store's own messages say so
    if device in _VERIFIED:
        return
    works = _hdf5_creates_here(store_path) if os.access(folder, os.W_OK) else expected
    if not works:
        raise StoreError(_cannot_open_message(store_path, refusal, user))
    _VERIFIED.add(device)


def _hdf5_creates_here(store_path: str) -> bool:
    """Whether netCDF4 creates a file next to ``store_path`` (a lock it needs is refused).

    HDF5 reports a refused lock as "Permission denied" (EACCES) in a folder we may write.
    """
    probe = f"{store_path}{TEMP_MARK}{os.getpid()}-hdf5-{uuid.uuid4().hex[:8]}"
    import netCDF4

    try:
        with NC_LOCK:
            netCDF4.Dataset(probe, "w", format="NETCDF4").close()
    except OSError as exc:
        # A full disk is not a lock: the store's own messages say that, at its first write
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
    finally:
        unlink_quietly(probe)
    return True


def _cannot_open_message(store_path: str, refusal: int, user: str | None) -> str:
    folder = os.path.dirname(store_path) or "."
    name = refusal_name(refusal)
    if user is not None:
        why = f"you set {ENV}={user}, with which HDF5 locks every file it opens"
    elif "netCDF4" in sys.modules and not _state["set_by_xsweep"]:
        why = (
            "netCDF4 was imported (by xarray.open_dataset, or your code) before xsweep could "
            f"start it with {ENV}=FALSE, and HDF5 reads that variable only when it starts"
        )
    else:
        why = (
            "HDF5 in this process locks the files it opens (a copy of HDF5 that started "
            "before xsweep's netCDF4, as h5py's in some installs, decides that)"
        )
    return (
        f"HDF5 cannot open files in {folder}: this file system refuses file locks "
        f"({name}), and {why}. Nothing was read or written. xsweep does not need HDF5's "
        f"locks (it has its own): set {ENV}=FALSE in the environment before Python starts "
        f"(export {ENV}=FALSE in your shell or job script), or open the cache "
        "(enable_cache) before anything opens a NetCDF file in this process."
    )
