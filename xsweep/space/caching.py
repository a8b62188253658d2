"""ParameterSpace's cache: enable_cache(), disable_cache(), clear_cache(), compact_cache()."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import (
    ParameterError,
    SweepError,
)
from ..store import NetCDFStore
from ..store.budget import parse_budget
from .core import SpaceCore

#: The cache file used by ``enable_cache()`` without a path, in the working directory.
DEFAULT_CACHE_NAME = "xsweep_results.nc"


def _is_seconds(value: Any, *, zero: bool) -> bool:
    """Whether ``value`` is a real number of seconds (> 0, or >= 0 with ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    if value != value:  # NaN
        return False
    return bool(value >= 0 if zero else value > 0)


class CacheMethods(SpaceCore):
    """The cache switch of :class:`~xsweep.space.ParameterSpace` (a mixin of it)."""

    @property
    def cache_path(self) -> str | None:
        """The cache file's absolute path, or None when caching is off.

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.ParameterSpace([xs.Parameter("a", values=[1])]).cache_path is None
        True
        """
        return self._results.path

    def enable_cache(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fsync_interval: float | None = 1.0,
        computed_at: dict[str, Any] | None = None,
        snapshot_interval: float = 60.0,
        memory_budget: int | str | None = None,
    ) -> None:
        """Keep results in a NetCDF file, filled cell by cell and resumed after interruptions.

        Parameters
        ----------
        path : str or path-like, optional
            The NetCDF file; ``xsweep_results.nc`` in the working directory by default. An
            existing file is opened and checked: it must be an xsweep results file. Its grid
            may differ from the space's: values the space adds become new cells to compute,
            values it lacks stay in the file with their results.
        fsync_interval : float or None, default 1.0
            Seconds between flushes of finished cells to stable storage. A killed process
            (Ctrl-C, crash, SIGKILL) never loses a finished cell whatever this is; a power
            loss or OS crash loses at most this many seconds of cells. 0 flushes every cell
            (slow: the disk's flush latency per cell); None flushes only when the file is
            published (at the end of each sweep).
        computed_at : dict, optional
            For parameters added to the space after results were cached: the value at which
            those results were computed, e.g. ``{"damping": 0.0}``. They are then reused at
            that value; without it, a function that now takes the new parameter is an error.
        snapshot_interval : float, default 60
            During a long sweep the file is republished at least this often (in seconds) so
            that colleagues reading it see progress; at most 1/20 of the sweep's time goes to
            it on big files. (It is also published at the end of every sweep.) Needs
            ``fsync_interval`` to be set: the check rides on the periodic flush.

        Raises
        ------
        StoreError
            The file is not an xsweep results file, is unreadable, or holds another grid.

        Examples
        --------
        >>> import os, tempfile, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
        >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "results.nc"))
        >>> ds = ps.sweep(lambda a: a ** 2)
        >>> os.path.exists(ps.cache_path)
        True
        """
        if path is None:
            path = DEFAULT_CACHE_NAME
        elif not isinstance(path, (str, os.PathLike)):
            raise SweepError(
                f"enable_cache takes a file path (a str or pathlib.Path), not "
                f"{type(path).__name__} {path!r:.60}."
            )
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if os.path.isdir(path):
            raise SweepError(
                f"Cannot cache to {path}: it is a folder. Name a file in it, e.g. "
                f"enable_cache({os.path.join(path, 'results.nc')!r})."
            )
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise SweepError(
                f"Cannot cache to {path}: the folder {parent} does not exist. Create it first."
            )
        if fsync_interval is not None and not _is_seconds(fsync_interval, zero=True):
            raise SweepError(
                f"fsync_interval must be a number of seconds >= 0, or None; got "
                f"{fsync_interval!r:.60}."
            )
        if not _is_seconds(snapshot_interval, zero=False):
            raise SweepError(
                f"snapshot_interval must be a number of seconds > 0 (float('inf') for never); "
                f"got {snapshot_interval!r:.60}."
            )
        if computed_at is not None and not isinstance(computed_at, dict):
            raise SweepError(
                "computed_at must be a dict of parameter values, e.g. "
                f"computed_at={{'damping': 0.0}}; got {computed_at!r:.60}."
            )
        computed_at = computed_at or {}
        self._refuse_unknown(
            computed_at,
            lambda name: f"computed_at names {name!r}, which is not a parameter of the space",
        )
        for name, value in computed_at.items():
            try:
                self._params[name].index(value)
            except ParameterError as exc:
                raise SweepError(f"computed_at[{name!r}]: {exc}") from None
        try:
            budget = parse_budget(memory_budget)
        except ValueError as exc:
            raise SweepError(str(exc)) from None
        store = NetCDFStore(
            path,
            self._grid(),
            fsync_interval=fsync_interval,
            computed_at=computed_at,
            snapshot_interval=snapshot_interval,
            memory_budget=budget,
        )
        self._results.enable(self, store)

    def disable_cache(self) -> None:
        """Stop caching; results already in the file stay there.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.disable_cache()
        >>> ps.cache_path is None
        True
        """
        self._results.disable()

    def clear_cache(self, fn: Callable[..., Any] | None = None) -> None:
        """Forget cached results: of every function, or only of ``fn``.

        The file stays (with its grid) so that the next sweep refills it.

        Examples
        --------
        >>> import os, tempfile, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "results.nc"))
        >>> def square(a):
        ...     return a * a
        >>> _ = ps.sweep(square)
        >>> ps.clear_cache(square)
        >>> int((ps.sweep(square)["square_status"] == 1).sum())
        2
        """
        store = self._results.require_cache("clear")
        store.clear(None if fn is None else self._binding(fn).key)

    def publish(self) -> None:
        """Write into the cache file the cells only its journal holds, to share it now.

        A sweep publishes the file at its end and at least every ``snapshot_interval``
        seconds; ``run_process`` results are journaled and reach the file when the cache is
        disabled (or the journal grows). ``xsweep publish FILE`` does the same from a shell.

        Examples
        --------
        >>> import os, tempfile, xarray as xr, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
        >>> def triple(a):
        ...     return 3 * a
        >>> ps.run_process(triple, a=2)
        6
        >>> ps.publish()
        >>> with xr.open_dataset(ps.cache_path) as shared:
        ...     int(shared["triple"].sel(a=2))
        6
        """
        self._results.require_cache("publish").publish()

    def compact_cache(self) -> dict[str, int]:
        """Delete from the cache file the parameter values this space no longer has.

        A space with fewer values than its file reuses the file and leaves the other values'
        results in it (nothing computed is discarded unless you ask). This is how you ask:
        the file keeps only this space's values. Returns how many values were dropped per
        parameter.

        Examples
        --------
        >>> import os, tempfile, xsweep as xs
        >>> path = os.path.join(tempfile.mkdtemp(), "results.nc")
        >>> wide = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
        >>> wide.enable_cache(path)
        >>> _ = wide.sweep(lambda a: a * 10)
        >>> wide.disable_cache()
        >>> narrow = xs.ParameterSpace([xs.Parameter("a", values=[2, 4])])
        >>> narrow.enable_cache(path)
        >>> narrow.compact_cache()
        {'a': 2}
        """
        return self._results.require_cache("compact").compact()
