"""The one write path of computed cells: the sweep's sink, its options, its start and its report.

Every computed cell reaches the store through :class:`Sink`, whoever computed it: the
serial loop (:mod:`xsweep.running.execution`), an executor (:mod:`xsweep.running.parallel`)
or ``run_process`` (:func:`xsweep.running.execution.write_cell`). Both loops start with
:func:`start_sweep` and fill in the same :class:`SweepReport`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OutputError, UnstorableValueError
from ..outputs import grow_spec, infer_spec
from ..store import FunctionTable, Store
from ..text import clean_message
from .cells import CellPlan, cells_to_compute, describe_cell, expected_computed
from .progress import Progress


@dataclass
class SweepReport:
    """What a sweep did: counts of cells found cached, computed and failed."""

    cached: int = 0
    computed: int = 0
    failed: int = 0
    stopped: bool = False  # stopped on request (a background sweep's stop()) before the end


@dataclass
class SweepOptions:
    """How a sweep treats its cells (``ps.sweep``'s options, checked there)."""

    output_dims: dict[str, tuple[str, ...]] | None = None
    force_recompute: bool = False
    retry_failed: bool = True
    errors: str = "record"
    progress: Progress | None = None
    #: The first cell sets the output structure again (a whole-grid recompute).
    restructure: bool = False
    #: Set by another thread to stop the sweep: no new cell starts; cells in flight finish.
    #: Checked before each cell (serially) and before each batch is sent (on executors).
    stop: threading.Event | None = None
    #: When the stored cells are of another version of the code: "raise", "keep", "recompute".
    on_change: str = "raise"
    #: Outputs read from the file when indexed (None: when they are beyond the memory budget).
    lazy: bool | None = None
    #: Cells per task on an executor (None: batches sized to last about 0.2 s).
    chunksize: int | None = None


class Sink:
    """The one write path of computed cells, whoever computed them: hands them to the store.

    Infers the output structure from the first cell and checks every other against it
    (growing it for arrays whose shape varies); counts the cells computed and failed, for
    the report and the notes on errors. The serial loop calls ``extract`` and ``record``
    itself per cell (the fast path) and comes here for the rest.
    """

    def __init__(
        self,
        store: Store,
        table: FunctionTable,
        name: str,
        output_dims: dict[str, tuple[str, ...]] | None,
        dims: tuple[str, ...],
        expect: int = 0,
        restructure: bool = False,
        sweeping: bool = True,
    ) -> None:
        self.store = store
        self.sweeping = sweeping
        self.table = table
        self.name = name
        self.output_dims = output_dims
        self.dims = dims
        self.expect = expect
        self.computed = 0
        self.failed = 0
        self.record, self.record_failure, self.record_none = store.recorder(table, expect)
        # restructure: the first cell sets the structure again (a whole-grid recompute).
        spec = table.spec
        self.extract = spec.extractor() if spec is not None and not restructure else None

    def none(self, index: int, seconds: float) -> None:
        """Record a cell whose function returned None: computed, nothing to store."""
        self.record_none(index, seconds)

    def ok(self, index: int, args: tuple, result: Any, seconds: float) -> None:
        """Record a computed cell; the first sets the structure, a wider one grows it."""
        if result is None:
            self.record_none(index, seconds)
            self.computed += 1
            return
        if self.extract is None:
            self.set_spec(result, args)
        assert self.extract is not None  # set by set_spec
        try:
            values = self.extract(result)
        except OutputError as exc:
            assert self.table.spec is not None  # set with extract
            grown = grow_spec(self.table.spec, result, self.name, self.output_dims)
            if grown is not None:  # arrays whose shape varies: padded, with extents
                self.store.grow_spec(self.table, grown)
                self.record, self.record_failure, self.record_none = self.store.recorder(
                    self.table, self.expect
                )
                self.extract = grown.extractor()
                self.record(index, self.extract(result), seconds)
                self.computed += 1
                return
            if isinstance(exc, UnstorableValueError):
                kept = f"; {kept_note(self.computed)}" if self.sweeping else ""
                raise OutputError(
                    f"Cell {describe_cell(self.dims, args)} of {self.name}: {exc}{kept}."
                ) from None
            kept = (
                kept_note(self.computed)
                if self.sweeping
                else "the cache holds it with another structure"
            )
            raise OutputError(
                f"Cell {describe_cell(self.dims, args)} of {self.name}: {exc}. Every cell must "
                f"return the same structure; {kept}. If you changed the function on purpose, "
                f"sweep the whole grid again with ps.sweep({self.name}, force_recompute=True) "
                f"(it replaces the old structure), or ps.clear_cache({self.name}) first."
            ) from None
        self.record(index, values, seconds)
        self.computed += 1

    def set_spec(self, result: Any, args: tuple) -> None:
        """Fix the output structure from the first result (``args``: its cell)."""
        try:
            spec = infer_spec(result, self.name, self.output_dims)
        except OutputError as exc:
            raise OutputError(
                f"Cell {describe_cell(self.dims, args)} of {self.name}: {exc}."
            ) from None
        self.store.set_spec(self.table, spec)
        self.record, self.record_failure, self.record_none = self.store.recorder(
            self.table, self.expect
        )
        self.extract = spec.extractor()

    def fail(self, index: int, args: tuple, message: str, seconds: float) -> None:
        """Record a failed cell with its message."""
        # Messages from workers arrive unchecked: NULs and surrogates would poison the file.
        self.record_failure(index, clean_message(message), seconds)
        self.failed += 1

    def raise_note(self, args: tuple) -> str:
        """The note for an exception a cell raised under errors='raise'."""
        kept = kept_note(self.computed)
        return (
            f"xsweep: raised by {self.name}({describe_cell(self.dims, args)}); {kept}, the "
            "cell is recorded as failed. Pass errors='record' to record failures and go on."
        )

    def note_raised(self, exc: BaseException, args: tuple) -> None:
        """Note on ``exc``, raised by the cell ``args`` under errors='raise', what was kept."""
        if hasattr(exc, "add_note"):
            exc.add_note(self.raise_note(args))


def kept_note(computed: int) -> str:
    """What a note says about the cells a sweep computed before it stopped."""
    if computed == 0:
        return "no cell was computed before it"
    if computed == 1:
        return "the 1 cell computed before it is kept"
    return f"the {computed} cells computed before it are kept"


def start_sweep(
    store: Store, table: FunctionTable, name: str, plan: CellPlan, options: SweepOptions
) -> tuple[np.ndarray, np.ndarray, SweepReport, Sink | None]:
    """``(flat, todo, report, sink)`` of a sweep; ``sink`` is None when nothing is to do.

    ``flat``: the selected cells' flat indices; ``todo``: which of them to compute. The
    progress display starts here, with the cells found cached.
    """
    flat, todo, cached = cells_to_compute(
        plan, table, options.force_recompute, options.retry_failed
    )
    report = SweepReport(cached=cached)
    if options.progress is not None:
        options.progress.start(int(flat.size), cached)
    if not todo.any():
        return flat, todo, report, None
    sink = Sink(
        store,
        table,
        name,
        options.output_dims,
        plan.dims,
        expected_computed(table, flat, todo),
        options.restructure,
    )
    return flat, todo, report, sink
