"""Flat cell indices: runs and blocks of cells, hyper-slabs of a grid, raw writes of fills.

A table addresses a function's cells by their flat (C-order) index over its grid; an output's
cell is ``cell_nbytes`` bytes. Copies between files go a block of at most ``COPY_BYTES`` at a
time, and a contiguous variable of a file is written a run of neighbouring cells per call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..outputs import VariableSpec
from .files import pwrite_all

#: Bytes of cells read or written at a time when cells are copied between files (working
#: memory on top of the budget; copies run at disk speed from a few MiB on).
COPY_BYTES = 8 << 20


def cell_nbytes(var: VariableSpec) -> int:
    """Bytes of one cell of ``var``."""
    return var.dtype.itemsize * int(np.prod(var.shape, dtype=np.int64))


def cells_per_copy(var: VariableSpec) -> int:
    """How many cells of ``var`` one block of a copy holds (``COPY_BYTES``, at least one)."""
    return max(COPY_BYTES // max(cell_nbytes(var), 1), 1)


def runs(cells: np.ndarray) -> Iterator[tuple[int, int]]:
    """``(first, stop)`` of each run of consecutive values in sorted ``cells``."""
    if cells.size == 0:
        return
    breaks = np.flatnonzero(np.diff(cells) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [cells.size]))
    for a, b in zip(starts.tolist(), stops.tolist()):
        yield int(cells[a]), int(cells[b - 1]) + 1


def blocks(cells: np.ndarray, per_block: int) -> Iterator[np.ndarray]:
    """``cells`` in consecutive pieces of at most ``per_block``."""
    per_block = max(int(per_block), 1)
    for i in range(0, cells.size, per_block):
        yield cells[i : i + per_block]


def slabs(shape: tuple[int, ...], start: int, stop: int) -> Iterator[tuple[tuple, int, int]]:
    """Split flat cells ``[start, stop)`` of a C-order grid into hyper-slabs.

    Yields ``(index, first, stop)``: ``index`` is a basic index into the grid (integers,
    then one slice) covering flat cells ``[first, stop)``.
    """
    if not shape:
        if start < stop:
            yield (), 0, 1
        return
    row = shape[-1]
    at = start
    while at < stop:
        end = min(stop, (at // row + 1) * row) if row else stop
        head = np.unravel_index(at, shape)
        index = tuple(int(i) for i in head[:-1]) + (slice(int(head[-1]), int(head[-1]) + end - at),)
        yield index, at, end
        at = end


def write_fill_runs(
    fd: int, var: VariableSpec, cells: np.ndarray, base: int, fill: Any = None
) -> None:
    """``pwrite`` the output's fill (or ``fill``) over ``cells`` of a contiguous variable
    at ``base``."""
    if cells.size == 0:
        return
    nbytes = cell_nbytes(var)
    per = min(max(COPY_BYTES // max(nbytes, 1), 1), cells.size)
    dtype = np.dtype("i1") if var.dtype.kind == "b" else var.dtype
    block = np.full((per, *var.shape), var.fill if fill is None else fill, dtype=dtype)
    raw = memoryview(block.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # numpy's stubs: an ndarray is a Buffer
    for first, stop in runs(cells):
        at = first
        while at < stop:
            n = min(per, stop - at)
            pwrite_all(fd, raw[: n * nbytes], base + at * nbytes)
            at += n
