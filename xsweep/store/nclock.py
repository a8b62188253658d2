"""One process-wide lock around every netCDF-C/HDF5 call xsweep makes.

The netCDF-C and HDF5 libraries in the netCDF4 wheel are not thread-safe, and netCDF4-python
releases the GIL inside them: two threads in them at once (two background sweeps publishing
different files, or a lazy Dataset read while a sweep publishes) crash the process or corrupt
a file. :data:`NC_LOCK` holds the same locks as xarray's netCDF4 backend (``NETCDFC_LOCK`` and
``HDF5_LOCK``, in xarray's own order), so xsweep's calls also exclude xarray's reads in other
threads. xarray's lock is not re-entrant; :data:`NC_LOCK` is (an owner and a depth, like
``threading.RLock``), so that a locked function may call another, and it is what xsweep hands
xarray for the files it opens through it (lazy results), so that xarray's acquisitions nest
in ours instead of deadlocking. Code holding it must never wait for another thread that may
need it (nothing in xsweep does: the lock is held around file operations only).

The per-cell path of a sweep makes no netCDF call (cells go to memory, the journal and
``pwrite`` into a staged file), so the lock costs nothing per cell.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import xarray as xr
from xarray.backends import CachingFileManager
from xarray.backends.locks import HDF5_LOCK, NETCDFC_LOCK, combine_locks

if TYPE_CHECKING:
    import netCDF4

F = TypeVar("F", bound=Callable[..., Any])


class _NetCDFLock:
    """Re-entrant, process-wide: xarray's netCDF4 lock plus an owner and a depth."""

    def __init__(self) -> None:
        # xarray's NetCDF4DataStore default lock: the same two locks, sorted the same way
        self.inner = combine_locks([NETCDFC_LOCK, HDF5_LOCK])
        self._parts = tuple(getattr(self.inner, "locks", (self.inner,)))
        self._owner: int | None = None
        self._depth = 0
        # Closings left for the next release by finalizers that could not wait for the lock
        # (see close_soon): callables, run holding it
        self._pending: list[Callable[[], Any]] = []

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        if self._owner == me:  # only this thread ever sets it to its own id
            self._depth += 1
            return True
        if not self._acquire_parts(blocking):
            return False
        self._owner = me
        self._depth = 1
        return True

    def _acquire_parts(self, blocking: bool) -> bool:
        # One at a time, in xarray's order: a non-blocking attempt that gets one part and not
        # the other gives the first back (older xarray's CombinedLock kept it, and the next
        # acquisition anywhere then waited forever: a finalizer's close_soon inside a read)
        taken: list[Any] = []
        for part in self._parts:
            if not (part.acquire() if blocking else part.acquire(blocking=False)):
                for held in reversed(taken):
                    held.release()
                return False
            taken.append(part)
        return True

    def release(self) -> None:
        if self._owner != threading.get_ident():
            raise RuntimeError("xsweep's netCDF lock released by a thread that does not hold it")
        if self._depth == 1:
            try:
                while self._pending:
                    _quietly(self._pending.pop())
            finally:  # even on KeyboardInterrupt: a lock never released hangs every thread
                self._owner = None
                self._depth = 0
                self.inner.release()
        else:
            self._depth -= 1

    def held(self) -> bool:
        """Whether the calling thread holds the lock."""
        return self._owner == threading.get_ident()

    def locked(self) -> bool:
        return self.inner.locked()  # type: ignore[attr-defined]  # xarray's Lock type omits it; its CombinedLock has it

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __reduce__(self) -> str:
        # Pickled with a lazy Dataset's file manager: each process has its own
        return "NC_LOCK"

    def __repr__(self) -> str:
        return f"<xsweep NC_LOCK owner={self._owner} depth={self._depth}>"


#: The lock; ``with NC_LOCK:`` around any use of a netCDF4 object.
NC_LOCK = _NetCDFLock()


def locked(func: F) -> F:
    """``func`` run holding :data:`NC_LOCK` (for functions that call netCDF4)."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        with NC_LOCK:
            return func(*args, **kwargs)

    return run  # type: ignore[return-value]


@locked
def open_for_reading(path: str) -> netCDF4.Dataset:
    """``path`` open through netCDF4, raw values (no masking or scaling)."""
    import netCDF4

    nc = netCDF4.Dataset(path, "r")
    nc.set_auto_maskandscale(False)
    return nc


def open_dataset(path: str | os.PathLike, **kwargs: Any) -> xr.Dataset:
    """``xarray.open_dataset(path, **kwargs)``, safe while background sweeps write files.

    netCDF-C and HDF5 are not thread-safe, and ``xarray.open_dataset`` reads a file's
    metadata without a lock (pydata/xarray#4100): called in the notebook while a
    ``sweep_async`` job of this process publishes a file (any file), it can crash the
    process. This opens the file holding the lock xsweep holds around its own netCDF
    calls, and gives xarray that lock for the reads it makes later (``.load()``, lazy
    indexing, dask), so that they wait for a publish instead of running into it.

    Parameters
    ----------
    path : str or os.PathLike
        A NetCDF file: a results file (``ps.cache_path``) or any other.
    **kwargs
        Passed to ``xarray.open_dataset`` (``engine=``, ``chunks=``, ``decode_times=``...);
        ``lock=`` is xsweep's lock unless given.

    Returns
    -------
    xarray.Dataset
        Lazily read, as ``xarray.open_dataset`` returns it; close it (or use ``with``) when
        done, or ``.load()`` it for a copy that later publishes do not change.

    Examples
    --------
    >>> import os, tempfile, xsweep as xs
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
    >>> def double(a):
    ...     return 2 * a
    >>> def square(a):
    ...     return a * a
    >>> _ = ps.sweep(double, progress=False)
    >>> job = ps.sweep_async(square, progress=False)
    >>> with xs.open_dataset(ps.cache_path) as ds:  # safe while the job publishes
    ...     ds["double"].values.tolist()
    [2, 4, 6]
    >>> _ = job.result(timeout=60)
    """
    if kwargs.get("engine") in (None, "netcdf4", "h5netcdf", "scipy"):  # those take a lock
        kwargs.setdefault("lock", NC_LOCK)
    with NC_LOCK:
        return xr.open_dataset(path, **kwargs)


def _quietly(close: Callable[[], Any]) -> None:
    try:
        close()
    except Exception:  # noqa: S110 - already closed, or its file is gone: nothing to keep
        pass


def close_soon(close: Callable[[], Any]) -> None:
    """Run ``close`` (a netCDF4 Dataset's ``close``) now if the lock is free, else later.

    For finalizers (``__del__``): the garbage collector may run one in a thread that holds
    the lock, or xarray's half of it, without knowing it (inside a read), where waiting for
    it would never end. A file kept open until then is closed by the next release of the
    lock; left open for good (as xarray leaves the files of its managers when their lock is
    busy), files pile up in the process, and netCDF-C crashes on some files open twice.
    """
    if NC_LOCK.acquire(blocking=False):
        try:
            _quietly(close)
        finally:
            NC_LOCK.release()
    else:
        NC_LOCK._pending.append(close)


class LockedFileManager(CachingFileManager):
    """xarray's ``CachingFileManager``, whose file is closed even when the lock is busy.

    xarray's ``__del__`` closes the file only if it gets the lock at once, and otherwise
    leaves it open in its cache; this one leaves the close to the next release of the lock.
    """

    def __del__(self) -> None:
        close = getattr(super(), "__del__", None)  # removed at exit by xarray: nothing to do
        if close is not None:
            close_soon(close)


def _before_fork() -> None:
    # A child forked while another thread is inside HDF5 would inherit the lock held (its
    # first netCDF call would wait forever) and HDF5 halfway through a call: fork between
    # calls instead.
    NC_LOCK.acquire()


def _after_fork_in_child() -> None:
    NC_LOCK.release()  # the forking thread's ident is the same in the child


os.register_at_fork(
    before=_before_fork, after_in_parent=NC_LOCK.release, after_in_child=_after_fork_in_child
)
