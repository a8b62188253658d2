"""Where a space's results live: the one owner of the choice of store and of when to write.

A :class:`~xsweep.space.ParameterSpace` holds one :class:`Results`. It decides, in one place:

* **which store** a verb talks to: the cache file's :class:`~xsweep.store.NetCDFStore` when
  caching is on; else a new in-memory store per sweep, the last of which each function's
  ``ps.failures`` / ``ps.status`` read;
* **the read policy**: a sweep whose every selected cell is already computed needs no write
  session, so while another writer holds the cache file it answers from the file exactly as
  ``run_process`` does, instead of being refused (:meth:`Results.read_complete`). When the
  file is free a sweep still takes it: its session publishes what the journal holds.
* **the lazy check**: ``lazy=True`` reads outputs from a cache file, so it needs one;
* **the grid a store holds**: a continuous parameter gains values when a sweep is refined;
  every store a verb gets here has grown to hold the space's values as they are now
  (``Store.follow``), and while ``ps.refine`` runs without a cache, its rounds share one
  in-memory store (:meth:`Results.keeping`).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import TypeVar

import xarray as xr

from ..errors import SweepError
from ..functions.binding import Binding
from ..running.cells import CellPlan, cells_to_compute
from ..running.sink import SweepOptions, SweepReport
from ..store import Grid, MemoryStore, NetCDFStore, Store
from ..store.nclock import close_soon
from ..store.table import own_dim_names

StoreT = TypeVar("StoreT", bound=Store)


class Results:
    """The results of one space: its cache file's store, or in-memory stores per sweep.

    Parameters
    ----------
    grid : callable
        Returns the space's :class:`~xsweep.store.Grid` as of now (values may change
        between sweeps).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.space.results import Results
    >>> from xsweep.store import Grid
    >>> results = Results(lambda: Grid({"a": (np.array([1, 2]), {})}))
    >>> results.cache is None, results.path
    (True, None)
    >>> store = results.for_sweep("square")
    >>> results.for_reading("square") is store
    True
    """

    def __init__(self, grid: Callable[[], Grid]) -> None:
        self._grid = grid
        #: The cache file's store, or None when caching is off.
        self.cache: NetCDFStore | None = None
        self._finalizer: weakref.finalize | None = None
        #: Without a cache: each function's last in-memory store (``ps.failures(fn)``).
        self._last: dict[str, Store] = {}
        #: Functions whose sweeps share one in-memory store (``ps.refine`` without a cache).
        self._kept: set[str] = set()

    @property
    def path(self) -> str | None:
        """The cache file's absolute path, or None when caching is off."""
        return self.cache.path if self.cache is not None else None

    # -- the cache switch -------------------------------------------------------------------
    def enable(self, owner: object, store: NetCDFStore) -> None:
        """Make ``store`` the cache; it is closed when ``owner`` is collected or on disable."""
        self.disable()
        self.cache = store
        # The garbage collector may free the owner inside a netCDF read of this very thread
        # (a plain xr.open_dataset holds xarray's half of the lock), where waiting for the
        # lock would never end: the store is then closed at the lock's next release.
        self._finalizer = weakref.finalize(owner, close_soon, store.close)

    def disable(self) -> None:
        """Close the cache's store (its file stays); results go to memory again."""
        if self._finalizer is not None:
            if self._finalizer.detach() is not None and self.cache is not None:
                self.cache.close()  # asked for: now, waiting for the lock if need be
            self._finalizer = None
        self.cache = None

    def detach_at_exit(self) -> None:
        """Forget closing the cache at exit (a test's stand-in for a killed process)."""
        if self._finalizer is not None:
            self._finalizer.detach()

    def require_cache(self, verb: str) -> NetCDFStore:
        """The cache's store, or a :class:`SweepError` saying ``verb`` needs one."""
        if self.cache is None:
            raise SweepError(_NO_CACHE.get(verb, _NO_CACHE["publish"]))
        return self._following(self.cache)

    def cached(self) -> NetCDFStore | None:
        """The cache's store holding the space's values as they are now, or None."""
        return None if self.cache is None else self._following(self.cache)

    # -- which store --------------------------------------------------------------------------
    def for_sweep(self, key: str) -> Store:
        """The store a sweep of function ``key`` writes into."""
        if self.cache is not None:
            return self._following(self.cache)
        if key in self._kept and key in self._last:
            return self._following(self._last[key])
        store = MemoryStore(self._grid())
        self._last[key] = store  # ps.failures(fn) reads it, even after an interruption
        return store

    def for_reading(self, key: str) -> Store | None:
        """The store that holds function ``key``'s results: the cache, else its last sweep."""
        store = self.cache if self.cache is not None else self._last.get(key)
        return None if store is None else self._following(store)

    @contextlib.contextmanager
    def keeping(self, key: str) -> Iterator[None]:
        """Without a cache, sweeps of ``key`` share one in-memory store meanwhile (its
        grid grows with the space's), so that each computes only the cells it lacks."""
        self._kept.add(key)
        self._last.pop(key, None)  # a store of an earlier sweep holds other cells
        try:
            yield
        finally:
            self._kept.discard(key)

    def _following(self, store: StoreT) -> StoreT:
        store.follow(self._grid())
        return store

    def read_complete(
        self, store: Store, binding: Binding, plan: CellPlan, options: SweepOptions
    ) -> tuple[SweepReport, xr.Dataset] | None:
        """A sweep's answer read from ``store`` when none of its cells needs computing.

        None when one does (or the output structure would change): then only a write
        session can answer, and the sweep is refused while another writer holds the file.
        The same checks as ``run_process``'s read: the function's dims, name and fingerprint.
        """
        if options.force_recompute:
            return None
        table = store.readable(binding.key, binding.name, binding.dims, binding.fingerprint)
        if table is None:
            return None
        assert table.spec is not None  # readable() checks it
        stored = {v.name: v.named_dims for v in table.spec.variables if v.dims}
        if any(stored.get(k) != d for k, d in (options.output_dims or {}).items()):
            return None
        flat, todo, cached = cells_to_compute(plan, table, False, options.retry_failed)
        if todo.any():
            return None
        if options.progress is not None:
            options.progress.start(int(flat.size), cached)
        report = SweepReport(cached=cached)
        return report, own_dim_names(store.result(table, lazy=options.lazy), table)

    def check_lazy(self, lazy: bool | None) -> None:
        """Refuse ``lazy=True`` without a cache file, before anything runs."""
        if lazy and self.cache is None:
            raise SweepError(
                "lazy=True reads results from a cache file, and this space has none: call "
                "ps.enable_cache('results.nc') first, or leave lazy at its default."
            )


#: What each cache verb says when caching is off.
_NO_CACHE = {
    "clear": "There is no cache to clear: caching is off. Call ps.enable_cache(path) first.",
    "compact": (
        "There is no cache to compact: caching is off. Call ps.enable_cache(path) first."
    ),
    "publish": "No cache is enabled: ps.enable_cache(path) first.",
}
