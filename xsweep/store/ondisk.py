"""Outputs kept on disk: a streamed output's cells stay in files, never all in memory.

A function whose array outputs over its whole grid need more than the store's memory budget
(see :mod:`xsweep.store.budget`) is *streamed*: its array outputs' buffers are
:class:`OnDisk` objects instead of in-memory ones; both answer the verbs of
:class:`~xsweep.store.buffers.CellBuffer`. An ``OnDisk`` says, per cell, in which *source*
the cell's bytes are and at which cell there:

* :class:`RawSource`: a contiguous variable at a known place in a file (a sweep's staged file:
  the codec ``pwrite``-s each finished cell there; it stays the same inode once published);
* :class:`NcSource`: a variable of a published results file, read through netCDF4;
* :class:`MemSource`: a few cells in memory (``run_process`` write-backs and journal records
  that hold a cell whole), published with the next snapshot.

Sources are opened files, not paths: a file replaced by a later publish keeps the old inode
readable, so every cell an ``OnDisk`` points at stays what it was. Cells that point nowhere
read as the output's fill. Moving cells (a grid that grows, ``compact``) moves the two small
per-cell index arrays, never the data.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import numpy as np

from ..errors import StoreError
from ..outputs import VariableSpec
from .budget import available_memory, size_text
from .buffers import CellBuffer, Move
from .cells import blocks, cell_nbytes, cells_per_copy, runs, slabs
from .holes import lazy_masked
from .nclock import close_soon, locked, open_for_reading

if TYPE_CHECKING:
    import netCDF4

#: Array outputs with cells at least this big are streamed (smaller ones stay in memory).
STREAM_CELL_BYTES = 1024


def streams(var: VariableSpec) -> bool:
    """Whether ``var`` is kept on disk in a streamed table (arrays of sizeable cells)."""
    return var.dtype != object and not var.scalar and cell_nbytes(var) >= STREAM_CELL_BYTES


class _Source:
    cell_shape: tuple[int, ...]

    def read(self, at: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class RawSource(_Source):
    """Cells of a contiguous variable at ``base`` in a file (its own descriptor)."""

    def __init__(self, fd: int, base: int, dtype: np.dtype, cell_shape: tuple[int, ...]):
        self.fd = os.dup(fd)
        self.base = base
        self.dtype = np.dtype("i1") if dtype.kind == "b" else dtype
        self.cell_shape = cell_shape
        self.nbytes = self.dtype.itemsize * int(np.prod(cell_shape, dtype=np.int64))

    def read(self, at: np.ndarray) -> np.ndarray:
        out = np.empty((at.size, *self.cell_shape), dtype=self.dtype)
        flat = out.reshape(at.size, -1).view(np.uint8).reshape(at.size, self.nbytes)
        order = np.argsort(at, kind="stable")
        sorted_at = at[order]
        pos = 0
        for first, stop in runs(sorted_at):
            n = stop - first
            want = n * self.nbytes
            data = b""
            while len(data) < want:  # pread may return less than asked (signals)
                more = os.pread(
                    self.fd, want - len(data), self.base + first * self.nbytes + len(data)
                )
                if not more:
                    raise OSError(
                        f"a results file ends before cell {first + len(data) // self.nbytes}"
                    )
                data += more
            rows = order[pos : pos + n]
            flat[rows] = np.frombuffer(data, dtype=np.uint8).reshape(n, self.nbytes)
            pos += n
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class NcSource(_Source):
    """Cells of a variable of a NetCDF file, read through netCDF4 (opened once, kept)."""

    def __init__(
        self,
        path: str,
        name: str,
        grid_shape: tuple[int, ...],
        cell_shape: tuple[int, ...],
        dtype: np.dtype,
    ) -> None:
        self.path = path
        self.name = name
        self.grid_shape = grid_shape
        self.cell_shape = tuple(cell_shape)
        self.dtype = dtype
        self._nc: netCDF4.Dataset | None = None

    def _variable(self) -> netCDF4.Variable:
        if self._nc is None:
            self._nc = open_for_reading(self.path)
        return self._nc.variables[self.name]

    @locked
    def open(self) -> None:
        """Open the file now: later reads see this inode even if the path is replaced."""
        self._variable()

    @locked
    def read(self, at: np.ndarray) -> np.ndarray:
        var = self._variable()
        out = np.empty((at.size, *self.cell_shape), dtype=self.dtype)
        order = np.argsort(at, kind="stable")
        sorted_at = at[order]
        pos = 0
        for first, stop in runs(sorted_at):
            for index, a, b in slabs(self.grid_shape, first, stop):
                data = np.asarray(var[index]).reshape((b - a, *self.cell_shape))
                out[order[pos : pos + b - a]] = data
                pos += b - a
        return out

    @locked
    def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                self._nc.close()
            self._nc = None

    def __del__(self) -> None:
        # Never waits for the lock (see nclock.close_soon)
        nc, self._nc = getattr(self, "_nc", None), None
        if nc is not None:
            close_soon(nc.close)


class MemSource(_Source):
    """A few cells held in memory until the next snapshot holds them."""

    def __init__(self, cell_shape: tuple[int, ...], dtype: np.dtype):
        self.cell_shape = cell_shape
        self.dtype = dtype
        self.cells: dict[int, np.ndarray] = {}

    def read(self, at: np.ndarray) -> np.ndarray:
        out = np.empty((at.size, *self.cell_shape), dtype=self.dtype)
        for row, i in enumerate(at.tolist()):
            out[row] = self.cells[i]
        return out


class OnDisk(CellBuffer):
    """A streamed output's buffer: which source holds each cell (see the module docstring).

    The verbs of :class:`~xsweep.store.buffers.CellBuffer`; whole-grid operations read in
    blocks. Its own: the sources (``add``, ``point``, ``rebase``) and ``live``.
    """

    on_disk = True

    def __init__(self, var: VariableSpec, ncells: int):
        self.var = var
        self._ncells = ncells
        self.sources: list[_Source | None] = []
        self.where = np.full(ncells, -1, dtype=np.int16)  # source number, -1: the fill
        self.at = np.zeros(ncells, dtype=np.int64)  # the cell's index in its source
        #: The staged file of the write session, whose places the codec writes: a value
        #: put while it is set is already there (see ``put``).
        self.live: int | None = None
        self._memory: int | None = None  # the MemSource's number, once there is one

    # -- what it holds --------------------------------------------------------------------
    @property
    def ncells(self) -> int:
        return self._ncells

    @property
    def memory_bytes(self) -> int:
        return 0  # a few cells at most (MemSource), until the next publish

    # -- writing --------------------------------------------------------------------------
    def sink(self) -> OnDisk:
        return self

    def put(self, flat: Any, value: Any) -> None:
        if not isinstance(flat, (int, np.integer)):
            if np.ndim(value) == 0:  # the fill, for many cells
                self.where[flat] = -1
                return
            raise TypeError("cells of an output kept on disk are written one at a time")
        if np.ndim(value) == 0:  # the fill: not computed, failed or no value
            self.where[flat] = -1
        elif self.live is not None:
            self.where[flat] = self.live
            self.at[flat] = flat
        else:
            self.memory().cells[int(flat)] = np.array(value, dtype=self.dtype, copy=True)
            assert self._memory is not None  # made by memory()
            self.where[flat] = self._memory
            self.at[flat] = flat

    __setitem__ = put  # ``sink()[flat] = value``

    def clear(self) -> None:
        self.where[:] = -1

    def stage_at(self, fd: int, base: int | None) -> None:
        if base is None:
            self.live = None
        else:
            self.live = self.add(RawSource(fd, base, self.dtype, self.cell_shape))

    def memory(self) -> MemSource:
        if self._memory is None:
            self._memory = self.add(MemSource(self.cell_shape, self.dtype))
        return cast(MemSource, self.sources[self._memory])

    # -- sources --------------------------------------------------------------------------
    def add(self, source: _Source) -> int:
        self.sources.append(source)
        return len(self.sources) - 1

    def point(self, cells: np.ndarray, source: int) -> None:
        """The ``cells`` are at the same index in ``source`` (a file over this grid)."""
        self.where[cells] = source
        self.at[cells] = cells

    def rebase(self, source: _Source, cells: np.ndarray) -> None:
        """Everything lives in ``source`` now (a new file): drop the old sources."""
        old = self.sources
        self.sources = [source]
        self._memory = None
        self.live = None
        self.where[:] = -1
        self.at[:] = 0
        self.point(cells, 0)
        for src in old:
            if src is not None and src is not source:
                src.close()

    def close(self) -> None:
        for src in self.sources:
            if src is not None:
                src.close()
        self.sources = []
        self._memory = None
        self.live = None
        self.where[:] = -1

    # -- reading --------------------------------------------------------------------------
    def read(self, cells: np.ndarray | slice) -> np.ndarray:
        if not isinstance(cells, np.ndarray) or cells.dtype == bool:  # a slice, a mask
            cells = np.atleast_1d(np.arange(self.ncells)[cells])
        cells = np.asarray(cells, dtype=np.int64)
        _check_room(self, cells.size)
        out = np.empty((cells.size, *self.cell_shape), dtype=self.dtype)
        where = self.where[cells]
        if (where < 0).any():
            out[where < 0] = self.var.fill
        for k in np.unique(where[where >= 0]).tolist():
            rows = np.flatnonzero(where == k)
            out[rows] = self._read_source(k, self.at[cells[rows]])
        return out

    def _read_source(self, number: int, at: np.ndarray) -> np.ndarray:
        """Cells ``at`` of source ``number``, in this output's dtype and cell shape."""
        source = self.sources[number]
        assert source is not None  # where points at open sources only
        data = source.read(at)
        if data.dtype != self.dtype:
            data = data.astype(self.dtype)
        if tuple(source.cell_shape) != self.cell_shape:  # cells from before a regrow
            pad = np.full((at.size, *self.cell_shape), self.var.fill, dtype=self.dtype)
            pad[(slice(None),) + tuple(slice(0, n) for n in source.cell_shape)] = data
            data = pad
        return data

    def grid_data(self, grid_shape: tuple[int, ...], holes: np.ndarray | None, copy: bool) -> Any:
        from xarray.core import indexing

        cells = _LazyCells(self, grid_shape)
        if holes is None:
            return indexing.LazilyIndexedArray(cells)
        return lazy_masked(cells.read_outer, cells.shape, self.dtype, holes)

    # -- moving cells (the table moves its other flat arrays the same way) -------------------
    def moved(self, move: Move, ncells: int) -> OnDisk:
        self.where = move(self.where, -1, ())
        self.at = move(self.at, 0, ())
        self._ncells = ncells
        return self

    def regrown(self, var: VariableSpec) -> OnDisk:
        self.var = var  # reads pad the cells of the sources written before
        return self

    def take_from(self, cells: np.ndarray, other: CellBuffer) -> None:
        if isinstance(other, OnDisk):  # the cells stay in their file until the merged one
            self._share_sources(cells, other)
            return
        for part in blocks(cells, cells_per_copy(self.var)):
            for flat, value in zip(part.tolist(), other.read(part)):
                self.put(flat, value)

    def _share_sources(self, cells: np.ndarray, other: OnDisk) -> None:
        """Make ``cells`` read what ``other`` holds at the same cells, from its sources."""
        numbers: dict[int, int] = {}
        for k in np.unique(other.where[cells]).tolist():
            if k >= 0:
                numbers[k] = self.add(other.sources[k])
        for k, mine in numbers.items():
            rows = cells[other.where[cells] == k]
            self.where[rows] = mine
            self.at[rows] = other.at[rows]
        none = cells[other.where[cells] < 0]
        self.where[none] = -1


def _check_room(buf: OnDisk, count: int) -> None:
    """Refuse to read cells that would not fit in memory (a file may claim any size)."""
    need = count * buf.cell_bytes
    if need > (64 << 20) and need > available_memory():
        raise StoreError(
            f"Reading {count:,} cell(s) of {buf.var.name} needs {size_text(need)} "
            f"({need / 1e9:.1f} GB) of memory, more than is available; nothing was read. "
            "Read only the part you need, lazily: xarray.open_dataset(path)"
            f"[{buf.var.name!r}].isel(...), or the Dataset a sweep returns (lazy=True)."
        )


def is_on_disk(buf: Any) -> TypeGuard[OnDisk]:
    """Whether ``buf`` is an output kept on disk (``buf.on_disk`` of a table's buffer)."""
    return isinstance(buf, OnDisk)


def _lazy_base() -> type:
    from xarray.backends import BackendArray

    return BackendArray


class _LazyCells(_lazy_base()):  # type: ignore[misc]
    """An output kept on disk laid out on its grid, for xarray (reads on indexing)."""

    def __init__(self, buf: OnDisk, grid_shape: tuple[int, ...]):
        self.buf = buf
        self.grid_shape = tuple(grid_shape)
        self.shape = self.grid_shape + buf.cell_shape
        self.dtype = buf.dtype

    def __getitem__(self, key: Any) -> Any:
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self.read_outer
        )

    def read_outer(self, key: tuple) -> np.ndarray:
        """The cells an outer-indexing ``key`` (grid dims, then cell dims) selects."""
        ngrid = len(self.grid_shape)
        picks, squeeze = [], []
        for axis, (k, n) in enumerate(zip(key[:ngrid], self.grid_shape)):
            if isinstance(k, (int, np.integer)):
                picks.append(np.array([int(k) % n if n else 0]))
                squeeze.append(axis)
            else:
                picks.append(np.arange(n)[k])
        lens = tuple(len(p) for p in picks)
        if picks:
            flat = np.ravel_multi_index(np.ix_(*picks), self.grid_shape).reshape(-1)
        else:
            flat = np.zeros(1, dtype=np.int64)
        data = self.buf.read(flat).reshape(lens + self.buf.cell_shape)
        data = data[(slice(None),) * ngrid + tuple(key[ngrid:])]
        return data.squeeze(axis=tuple(squeeze)) if squeeze else data
