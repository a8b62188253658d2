"""Lazy results: a function's outputs read from the published file only when indexed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import NetCDF4DataStore

from ..file_format import DTYPE_ATTR
from .grid import Grid
from .holes import lazy_masked, table_mask
from .nclock import NC_LOCK, LockedFileManager
from .ncread import open_generation
from .table import FunctionTable


def lazy_dataset(
    path: str, generation: str, table: FunctionTable, grid: Grid, budget: int
) -> xr.Dataset:
    """``table``'s results (statuses in memory) with its array outputs read from ``path``.

    Dask arrays chunked by whole cells when dask is installed, else xarray's lazily indexed
    arrays. The Dataset holds the file it opened: a file that replaces it later (the next
    publish) does not change what it reads. Should xarray close it (its cache of open files
    is full) and open the path again, the file must still be snapshot ``generation``, else
    reading raises a ``StoreError`` that says what to do (see ``ncread.open_generation``).
    It pickles (dask clusters): the workers open the file by path, with the same check.
    """
    ds = table.to_dataset(grid, copy=True)
    arrays = [v for v in (table.spec.variables if table.spec else ()) if not v.scalar]
    arrays = [v for v in arrays if v.dtype != object]
    if not arrays:
        return ds
    chunks = cell_chunks(table, budget) if _has_dask() else None
    # xarray takes NC_LOCK (re-entrant) for each open and read of the file, and it is held
    # over the opening: xarray reads the metadata without a lock of its own.
    manager = LockedFileManager(
        open_generation, path, mode="r", kwargs={"generation": generation}, lock=NC_LOCK
    )
    with NC_LOCK:
        # Raw values: the holes of int outputs are masked from the status (store/holes.py)
        on_file = xr.open_dataset(
            NetCDF4DataStore(manager, lock=NC_LOCK),
            cache=False,
            decode_times=False,
            mask_and_scale=False,
        )
    for var in arrays:
        raw = on_file[var.name].variable
        mask = table_mask(table, var)
        if mask is not None:
            data = lazy_masked(_reader(raw), raw.shape, var.dtype, mask)
            raw = xr.Variable(raw.dims, data)
        if chunks is not None:
            raw = raw.chunk({d: chunks.get(str(d), -1) for d in raw.dims})
        ds[var.name] = raw.copy(deep=False)
        ds[var.name].attrs = dict(var.attrs)
        if mask is not None:
            ds[var.name].attrs[DTYPE_ATTR] = var.dtype.name
        ds[var.name].encoding = {}
    ds.set_close(on_file.close)
    return ds


def _reader(variable: xr.Variable) -> Callable[[tuple[Any, ...]], np.ndarray]:
    """Raw values of a lazily read file variable for an outer-indexing key."""

    def read(key: tuple) -> np.ndarray:
        return np.asarray(variable[key].values)

    return read


def _has_dask() -> bool:
    return importlib.util.find_spec("dask") is not None


def cell_chunks(table: FunctionTable, budget: int) -> dict[str, int]:
    """Dask chunks of whole cells, about 64 MiB (a sixteenth of the budget if less) each."""
    assert table.spec is not None  # a table with outputs
    cell = max((v.dtype.itemsize * int(np.prod(v.shape)) for v in table.spec.variables), default=1)
    room = max(min(64 << 20, budget // 16) // max(cell, 1), 1)
    chunks: dict[str, int] = {}
    for dim, n in reversed(list(zip(table.dims, table.shape))):
        take = max(min(n, room), 1)
        chunks[dim] = take
        room = max(room // max(n, 1), 1) if take == n else 1
    for var in table.spec.variables:
        for dim in var.dims:
            chunks[dim] = -1
    return chunks
