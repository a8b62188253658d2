"""Running a function over cells: the per-cell loop, failures, and the single writer.

The loop here runs once per cell, millions of times in a big sweep, so it is written flat:
a precomputed iterator of (flat index, argument values), a direct call, and the store's
``record`` callable, which writes into numpy buffers (and the journal, with a cache).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import OutputError
from .outputs import infer_spec
from .store import COMPUTED, FAILED, FunctionTable, MemoryStore


@dataclass
class CellPlan:
    """Which cells of a function's table to compute, and how to call the function."""

    dims: tuple[str, ...]
    values: Sequence[np.ndarray]  # per dim, the grid values
    selected: Sequence[np.ndarray]  # per dim, the indices to sweep (one index for held dims)
    positional: bool  # call fn(*values) instead of fn(**dict(zip(dims, values)))


@dataclass
class SweepReport:
    """What a sweep did: counts of cells found cached, computed and failed."""

    cached: int = 0
    computed: int = 0
    failed: int = 0


def describe_cell(dims: Sequence[str], values: Sequence[Any]) -> str:
    """``"length=2, width=3"`` for error messages."""
    return ", ".join(f"{d}={v!r}" for d, v in zip(dims, values))


def selected_flat(plan: CellPlan, shape: tuple[int, ...]) -> np.ndarray:
    """Flat C-order indices of the selected cells, in the order the loop visits them."""
    if not plan.dims:
        return np.zeros(1, dtype=np.int64)
    grids = np.meshgrid(*plan.selected, indexing="ij")
    return np.ravel_multi_index(grids, shape).ravel()


def run_serial(
    fn: Callable[..., Any],
    name: str,
    store: MemoryStore,
    table: FunctionTable,
    plan: CellPlan,
    *,
    output_dims: dict[str, tuple[str, ...]] | None,
    force_recompute: bool,
    retry_failed: bool,
    errors: str,
) -> SweepReport:
    """Compute the plan's missing cells one after another in this process.

    Cells already computed (and failed ones when ``retry_failed`` is false) are skipped
    unless ``force_recompute``. Every computed or failed cell goes to the store as soon as
    it finishes, so an interruption (Ctrl-C, an exception, a kill) loses only the cell in
    flight.
    """
    flat = selected_flat(plan, table.shape)
    report = SweepReport()
    if force_recompute:
        todo = np.ones(flat.size, dtype=bool)
    else:
        status = table.status[flat]
        todo = status != COMPUTED
        if not retry_failed:
            todo &= status != FAILED
        report.cached = int(flat.size - np.count_nonzero(todo))
    if not todo.any():
        return report

    value_lists = [v[sel].tolist() for v, sel in zip(plan.values, plan.selected)]
    cells = itertools.compress(zip(flat.tolist(), itertools.product(*value_lists)), todo.tolist())
    dims = plan.dims
    positional = plan.positional
    perf_counter = time.perf_counter
    spec = table.spec
    record, record_failure = store.recorder(table)
    extract = spec.extract if spec is not None else None
    computed = failed = 0
    try:
        for index, args in cells:
            t0 = perf_counter()
            try:
                result = fn(*args) if positional else fn(**dict(zip(dims, args)))
            except Exception as exc:
                seconds = perf_counter() - t0
                record_failure(index, f"{type(exc).__name__}: {exc}", seconds)
                failed += 1
                if errors == "raise":
                    _add_note(
                        exc,
                        f"xsweep: raised by {name}({describe_cell(dims, args)}); the "
                        f"{computed} cells computed before it are kept, the cell is recorded as "
                        "failed. Pass errors='record' to record failures and go on.",
                    )
                    raise
                continue
            seconds = perf_counter() - t0
            if extract is None:
                spec = _infer(result, name, output_dims, dims, args)
                store.set_spec(table, spec)
                record, record_failure = store.recorder(table)
                extract = spec.extract
            try:
                values = extract(result)
            except OutputError as exc:
                raise OutputError(
                    f"Cell {describe_cell(dims, args)} of {name}: {exc}. Every cell must return "
                    f"the same structure; {computed} cells computed before it are kept."
                ) from None
            record(index, values, seconds)
            computed += 1
    finally:
        report.computed = computed
        report.failed = failed
    return report


def _infer(result, name, output_dims, dims, args):
    try:
        return infer_spec(result, name, output_dims)
    except OutputError as exc:
        raise OutputError(f"Cell {describe_cell(dims, args)} of {name}: {exc}.") from None


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
