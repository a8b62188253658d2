"""The in-memory store: the store of a sweep with no cache enabled."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import xarray as xr

from ..errors import StoreError
from ..outputs import OutputSpec
from .base import Recorder
from .budget import check_fits
from .table import FunctionTable
from .tablestore import TableStore


class MemoryStore(TableStore):
    """Results kept in memory only; the store of a sweep with no cache enabled.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.store import MemoryStore
    >>> store = MemoryStore({"a": (np.array([1, 2]), {})})
    >>> table = store.table("m:f", "f", ("a",))
    >>> table.shape
    (2,)
    """

    persistent = False

    @contextlib.contextmanager
    def writing(self, publish: bool = True) -> Iterator[None]:
        """A write session (a sweep, or one ``run_process`` write)."""
        yield

    def recorder(self, table: FunctionTable, expect: int = 0) -> Recorder:
        """The per-cell write verbs for ``table`` (see :class:`~xsweep.store.base.Recorder`).

        ``expect``: how many of ``table``'s cells will be computed when the write session
        ends if every cell succeeds (a hint for the file layout).
        """
        return Recorder(table.putter(), table.put_failure, table.put_none)

    def result(self, table: FunctionTable, lazy: bool | None = None) -> xr.Dataset:
        """``table``'s results as a Dataset the caller owns (call after the write session).

        An in-memory store is never written again, so its buffers are shared, not copied.
        ``lazy=True`` needs a file to read from: a ``StoreError`` says to enable a cache.
        """
        if lazy:
            raise StoreError(
                "lazy=True reads results from a cache file, and this space has none: call "
                "ps.enable_cache('results.nc') first, or sweep with lazy=None (the default)."
            )
        return table.to_dataset(self.grid, copy=False)

    def close(self) -> None:
        """Nothing to release: the results live as long as the store."""

    # -- the table set's hooks ------------------------------------------------------------------
    def layout_changed(self) -> None:
        """Nothing to do: there is no file to bring up to date."""

    def keeps_on_disk(self, table: FunctionTable, spec: OutputSpec) -> bool:
        """Never: in memory they must fit (else a ``ResultsTooLargeError`` says what to do)."""
        need = table.size * sum(v.dtype.itemsize * int(np.prod(v.shape)) for v in spec.variables)
        check_fits(table.name, need, table.size)
        return False

    def reclaim(self) -> None:
        """Nothing to do: the buffers are always the store's own (shared, never lent)."""
