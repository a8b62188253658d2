"""Which cells a sweep computes, and in what order: the plan, flat indices, the cell iterator.

A sweep computes the cells of a :class:`CellPlan` (store indices per parameter) that its
table does not hold yet, in grid order or coarse sub-grids first (``order="spread"``); the
iterator hands out ``(flat index, argument values)`` built a batch of cells at a time, so
that memory stays bounded however big the grid.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..store import DONE, FAILED, FunctionTable
from ..store.parts import part_positions  # which cells a part holds: the file records it


@dataclass
class CellPlan:
    """Which cells of a function's table to compute, and how to call the function.

    Indices are the store's (its grid may hold more values than the space).
    """

    dims: tuple[str, ...]
    values: Sequence[np.ndarray]  # per dim, the store's grid values
    selected: Sequence[np.ndarray]  # per dim, the indices to sweep (one index for held dims)
    positional: bool  # call fn(*values) instead of fn(**dict(zip(dims, values)))
    part: tuple[int, int] | None = None  # (k, n): only the k-th of n equal shares (part_positions)
    order: str = "grid"  # "grid": C order; "spread": coarse sub-grids first (see spread_order)


def describe_cell(dims: Sequence[str], values: Sequence[Any]) -> str:
    """``"length=2, width=3"`` for error messages."""
    return ", ".join(f"{d}={v!r}" for d, v in zip(dims, values))


def selected_flat(plan: CellPlan, shape: tuple[int, ...]) -> np.ndarray:
    """Flat C-order indices of the selected cells, in the order the loop visits them.

    One int64 per cell: the index grids are broadcast, never materialised per dim.
    """
    if not plan.dims:
        flat = np.zeros(1, dtype=np.int64)
    else:
        flat = np.ravel_multi_index(np.ix_(*plan.selected), shape).ravel()
    if plan.part is not None:
        flat = flat[part_positions(flat.size, *plan.part)]
    if plan.order == "spread" and flat.size > 1:
        flat = flat[spread_order(flat, shape)]
    return flat


def bisection_ranks(n: int) -> np.ndarray:
    """Each of ``n`` positions' rank in a coarse-to-fine order: the ends, the middle, the
    quarters, ... so that the first k positions spread evenly over all n.

    Examples
    --------
    >>> from xsweep.running.cells import bisection_ranks
    >>> order = bisection_ranks(9).argsort()
    >>> order.tolist()
    [0, 8, 4, 2, 6, 1, 3, 5, 7]
    """
    order = [0] if n else []
    if n > 1:
        order.append(n - 1)
    intervals = [(0, n - 1)]
    while intervals:
        nxt = []
        for lo, hi in intervals:
            if hi - lo > 1:
                mid = (lo + hi) // 2
                order.append(mid)
                nxt += [(lo, mid), (mid, hi)]
        intervals = nxt
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    return ranks


def spread_order(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The order that visits ``flat``'s cells coarse sub-grids first (``order="spread"``).

    A cell's level is the highest bisection rank of its positions along each dim among the
    selected positions; cells are visited by level, so that the first k**d cells are the
    sub-grid of each dim's first k positions, and a half-done sweep is already a coarse
    picture of the whole space.
    """
    index = np.unravel_index(flat, shape)
    level = np.zeros(flat.size, dtype=np.int64)
    for positions in index:
        used, local = np.unique(positions, return_inverse=True)
        level = np.maximum(level, bisection_ranks(used.size)[local])
    return np.argsort(level, kind="stable")


def cells_to_compute(
    plan: CellPlan, table: FunctionTable, force_recompute: bool, retry_failed: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """The selected flat indices, which of them to compute, and how many are cached."""
    flat = selected_flat(plan, table.shape)
    if force_recompute:
        return flat, np.ones(flat.size, dtype=bool), 0
    status = table.status[flat]
    todo = ~np.isin(status, DONE)
    if not retry_failed:
        todo &= status != FAILED
    return flat, todo, int(flat.size - np.count_nonzero(todo))


def expected_computed(table: FunctionTable, flat: np.ndarray, todo: np.ndarray) -> int:
    """How many of the table's cells are computed after the sweep, if every cell succeeds."""
    computed = np.isin(table.status, DONE)
    redone = np.count_nonzero(computed[flat[todo]])
    return int(np.count_nonzero(computed) - redone + np.count_nonzero(todo))


#: Cells whose arguments are made into Python objects at a time: the loop's memory stays
#: bounded (a whole grid of Python ints would cost ~100 bytes per cell).
CELL_BATCH = 1 << 16


def iter_cells(
    plan: CellPlan, shape: tuple[int, ...], flat: np.ndarray, todo: np.ndarray
) -> Iterator[tuple[int, tuple]]:
    """``(flat index, argument values)`` of the cells to compute, in order."""

    def batch(start: int) -> Iterator[tuple[int, tuple]]:
        part = flat[start : start + CELL_BATCH][todo[start : start + CELL_BATCH]]
        index = np.unravel_index(part, shape)
        columns = [values[i].tolist() for values, i in zip(plan.values, index)]
        args = zip(*columns) if columns else itertools.repeat((), part.size)
        return zip(part.tolist(), args)

    # chain.from_iterable: per cell, C code only (a generator here costs ~25 ns per cell).
    return itertools.chain.from_iterable(map(batch, range(0, flat.size, CELL_BATCH)))
