"""Where an output's cells live: one interface, whatever holds their bytes.

A :class:`~xsweep.store.table.FunctionTable` holds one buffer per output, indexed by the flat
(C-order) cell index over its grid. Two kinds answer the same verbs:

* :class:`InMemory`: a numpy array of shape ``(ncells, *cell_shape)`` (every output of a
  table that fits the memory budget);
* :class:`~xsweep.store.ondisk.OnDisk`: a streamed output's cells, kept in files and read
  when asked for (see :mod:`xsweep.store.ondisk`).

The store's functions (writing a file, regridding, merging, handing out a Dataset) call the
verbs and never ask which kind they hold; the few decisions that depend on it (a file's
layout of an output kept on disk, what a publish re-points) read :attr:`CellBuffer.on_disk`.

The per-cell write path binds :meth:`CellBuffer.sink` once: for an in-memory output it is
the numpy array itself, so that a cell costs one numpy assignment and no Python call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from ..outputs import VariableSpec
from .cells import blocks, cell_nbytes, cells_per_copy
from .holes import masked

#: ``move(flat, fill, cell_shape)``: a flat per-cell array moved to another grid (a regrid
#: or a cut), new cells holding ``fill``; see :meth:`CellBuffer.moved`.
Move = Callable[[np.ndarray, Any, tuple[int, ...]], np.ndarray]


class CellBuffer(ABC):
    """One output's cells over a table's grid, wherever their bytes live.

    ``var`` is the output's structure (dtype, cell shape, fill); cells are addressed by
    their flat index over the grid. Cells without a value read as ``var.fill``.
    """

    #: Whether the cells live in files (read when asked for) rather than in memory.
    on_disk: bool = False

    var: VariableSpec

    # -- what it holds ------------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        """The dtype of the cells' values."""
        return self.var.dtype

    @property
    def cell_shape(self) -> tuple[int, ...]:
        """The shape of one cell."""
        return tuple(self.var.shape)

    @property
    @abstractmethod
    def ncells(self) -> int:
        """How many cells (the table's grid size)."""

    @property
    def shape(self) -> tuple[int, ...]:
        """``(ncells, *cell_shape)``, as a numpy buffer of every cell would be."""
        return (self.ncells, *self.cell_shape)

    @property
    def itemsize(self) -> int:
        """Bytes of one value."""
        return self.dtype.itemsize

    @property
    def cell_bytes(self) -> int:
        """Bytes of one cell."""
        return cell_nbytes(self.var)

    @property
    def nbytes(self) -> int:
        """Bytes of every cell, wherever they live."""
        return self.ncells * self.cell_bytes

    @property
    @abstractmethod
    def memory_bytes(self) -> int:
        """Bytes of cells this buffer holds in memory."""

    # -- writing ------------------------------------------------------------------------------
    @abstractmethod
    def sink(self) -> Any:
        """What the per-cell write path assigns into, ``sink[flat] = value``, bound once.

        The numpy array itself in memory (no Python call per cell); the buffer itself on
        disk. Valid until the table's buffers change (a regrid, a new structure, a reload).
        """

    @abstractmethod
    def put(self, flat: int, value: Any) -> None:
        """Set cell ``flat`` to ``value`` (the output's fill: the cell holds no value)."""

    @abstractmethod
    def clear(self) -> None:
        """Make every cell read as the fill."""

    def stage_at(self, fd: int, base: int | None) -> None:  # noqa: B027 - a default
        """The codec writes each cell put from now on to the staged file ``fd`` at ``base``
        (a contiguous variable; None: to no file). In memory nothing changes: the memory
        holds the cell too."""

    def close(self) -> None:  # noqa: B027 - a default: nothing to let go of
        """Let go of the files the cells are read from."""

    # -- reading ------------------------------------------------------------------------------
    @abstractmethod
    def read(self, cells: np.ndarray | slice) -> np.ndarray:
        """The values of ``cells`` (flat indices, or a slice), ``(n, *cell_shape)``.

        In memory a slice gives a view: read it, never write into it.
        """

    def __getitem__(self, key: Any) -> np.ndarray:
        """``buf[flat]`` (one cell's value) or ``buf[cells]`` (:meth:`read`)."""
        if isinstance(key, (int, np.integer)):
            return self.read(np.array([int(key)]))[0]
        return self.read(key)

    @abstractmethod
    def grid_data(self, grid_shape: tuple[int, ...], holes: np.ndarray | None, copy: bool) -> Any:
        """The cells laid out on the grid, ``grid_shape + cell_shape``: the data of an
        xarray Variable.

        ``holes``: the cells' :func:`~xsweep.store.holes.hole_mask` (they read as NaN), or
        None. In memory: a view of the buffer unless ``copy`` (or masked, or text); on disk:
        a lazily indexed array that reads the cells it is indexed with.
        """

    # -- moving cells -------------------------------------------------------------------------
    @abstractmethod
    def moved(self, move: Move, ncells: int) -> CellBuffer:
        """The buffer with its cells moved by ``move`` to a grid of ``ncells`` (a regrid, a
        cut); on disk the per-cell indices move, never the data (the buffer itself, changed)."""

    @abstractmethod
    def regrown(self, var: VariableSpec) -> CellBuffer:
        """The same cells under ``var``, whose cells grew (padded with the fill)."""

    @abstractmethod
    def take_from(self, cells: np.ndarray, other: CellBuffer) -> None:
        """Make ``cells`` hold what ``other`` (over the same grid) holds there (a merge).

        Memory stays bounded: cells are copied a block at a time, and between two outputs
        kept on disk they stay in their files.
        """


class InMemory(CellBuffer):
    """An output's cells in a numpy array of shape ``(ncells, *cell_shape)``."""

    def __init__(self, var: VariableSpec, array: np.ndarray):
        self.var = var
        self.array = array

    @classmethod
    def filled(cls, var: VariableSpec, ncells: int) -> InMemory:
        """``ncells`` cells of ``var`` holding its fill."""
        return cls(var, filled((ncells, *var.shape), var))

    # The array's own answers (a loaded file's dtype is the array's).
    @property
    def ncells(self) -> int:
        return self.array.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def nbytes(self) -> int:
        return self.array.nbytes

    @property
    def memory_bytes(self) -> int:
        return self.array.nbytes

    def reshape(self, *shape: Any) -> np.ndarray:
        """The array of every cell reshaped (a view), for code that works on a whole output."""
        return self.array.reshape(*shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype, copy=False)

    def sink(self) -> np.ndarray:
        return self.array

    def put(self, flat: int, value: Any) -> None:
        self.array[flat] = value

    def clear(self) -> None:
        self.array[...] = self.var.fill

    def read(self, cells: np.ndarray | slice) -> np.ndarray:
        return self.array[cells]

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]

    def grid_data(self, grid_shape: tuple[int, ...], holes: np.ndarray | None, copy: bool) -> Any:
        arr = self.array.reshape(grid_shape + tuple(self.var.shape))
        if self.var.dtype == object:
            return arr.astype(str)
        if holes is not None:
            return masked(arr, holes)
        return arr.copy() if copy else arr

    def moved(self, move: Move, ncells: int) -> InMemory:
        return InMemory(self.var, move(self.array, self.var.fill, tuple(self.var.shape)))

    def regrown(self, var: VariableSpec) -> InMemory:
        grown = filled((self.ncells, *var.shape), var)
        grown[(slice(None),) + tuple(slice(0, n) for n in self.var.shape)] = self.array
        return InMemory(var, grown)

    def take_from(self, cells: np.ndarray, other: CellBuffer) -> None:
        for part in blocks(cells, cells_per_copy(self.var)):
            self.array[part] = other.read(part)


def filled(shape: tuple[int, ...], var: VariableSpec) -> np.ndarray:
    """A numpy array of ``shape`` holding ``var``'s fill."""
    if var.fill == 0:
        return np.zeros(shape, dtype=var.dtype)  # lazily zeroed pages: no pass over memory
    return np.full(shape, var.fill, dtype=var.dtype)
