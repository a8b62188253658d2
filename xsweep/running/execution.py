"""Running a function over the cells of a sweep: serially here, or on an executor.

:func:`run_sweep` opens the store's write session and hands the cells to the serial loop
below or to :func:`xsweep.running.parallel.run_parallel`. The serial loop runs once per cell,
millions of times in a big sweep, so it is written flat: a precomputed iterator of (flat
index, argument values) (:mod:`xsweep.running.cells`), a direct call, and the store's ``record``
callable, which writes into numpy buffers (and the journal, with a cache). Every computed
cell reaches the store through the one write path, :class:`xsweep.running.sink.Sink`: this loop,
an executor's results, and ``run_process``'s cells (:func:`write_cell`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._version import __version__
from ..errors import OutputError, SkipCell, StoreLockedError, SweepError
from ..functions.binding import Binding
from ..parameters.parameter import Parameter
from ..store import FunctionTable, Store, status_counts
from ..store.table import own_dim_names
from ..text import describe_exception
from .cells import CellPlan, iter_cells
from .parallel import run_parallel
from .sink import Sink, SweepOptions, SweepReport, start_sweep


class ValueSetter:
    """A swept function that reads parameters: sets each one's ``.value``, then calls it.

    TINC's ``force_values``: the cell's values are set silently (no callbacks) on the
    space's parameters, then ``fn`` is called with the arguments it takes, in the same
    order as ``dims``. Shipped to worker processes, it is pickled together with ``fn``, so
    a function pickled by value keeps reading the very parameters set here; a function
    pickled by reference (from an importable module) reads its module's own parameters,
    which are looked up by name in its globals when the worker first calls it.

    Parameters are shared by every thread of a process, so cells that read them run one at
    a time per process (a lock): threads of one worker would otherwise read each other's
    values.
    """

    def __init__(self, fn: Callable[..., Any], params: Sequence[Any], takes: Sequence[str]):
        self.fn = fn
        self.params = tuple(params)
        names = [p.name for p in self.params]
        self.picks = tuple(names.index(t) for t in takes)
        self.takes = tuple(takes)
        self._bound = True  # here: the space's own parameters
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"fn": self.fn, "params": self.params, "picks": self.picks, "takes": self.takes}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bound = False
        self._lock = threading.Lock()

    def _bind(self) -> None:
        """In a worker: prefer the parameters the function itself sees in its globals."""
        found: dict[str, Any] = {}
        for value in list(getattr(self.fn, "__globals__", {}).values()):
            if isinstance(value, Parameter):
                found.setdefault(value.name, value)
            elif hasattr(value, "parameters") and hasattr(value, "sweep"):
                for p in getattr(value, "parameters", ()):
                    if isinstance(p, Parameter):
                        found.setdefault(p.name, p)
        self.params = tuple(p if found.get(p.name, p) is p else found[p.name] for p in self.params)
        self._bound = True

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            if not self._bound:
                self._bind()
            for param, value in zip(self.params, args):
                param.move_to(param.index(value), callbacks=False, watchers=False)
            return self.fn(**{self.takes[i]: args[k] for i, k in enumerate(self.picks)})


def write_cell(
    store: Store,
    key: str,
    name: str,
    dims: tuple[str, ...],
    fingerprint: str | None,
    indices: dict[str, int],
    args: tuple,
    result: Any,
    seconds: float,
    force_recompute: bool = False,
) -> None:
    """Store one cell computed outside a sweep (``run_process``), the way a sweep would.

    ``indices``: the space's index of each of ``dims``' values; ``args``: those values.
    """
    with store.writing(publish=False):
        table = store.table(
            key, name, dims, fingerprint, "recompute" if force_recompute else "raise"
        )
        sink = Sink(store, table, name, None, dims, sweeping=False)
        sink.ok(store.grid.flat_index(dims, indices), args, result, seconds)


def _may_restructure(
    name: str,
    table: FunctionTable,
    plan: CellPlan,
    out_dims: dict[str, tuple[str, ...]],
    force_recompute: bool,
) -> bool:
    """Whether this sweep may give ``fn`` a new output structure; refuse what it cannot.

    A whole-grid ``force_recompute`` starts the structure afresh from its first cell
    (the old variables are replaced once it records one); ``output_dims`` that differ
    from the stored dims are applied that way, or refused with the ways out.
    """
    spec = table.spec
    whole = plan.part is None and int(np.prod([len(s) for s in plan.selected])) == table.size
    if spec is None:
        return False
    if force_recompute and whole:
        return True
    stored = {v.name: v.named_dims for v in spec.variables if v.dims}
    wanted = {k: d for k, d in out_dims.items() if k in stored and stored[k] != d}
    unknown = sorted(set(out_dims) - set(stored))
    if wanted or unknown:
        what = (
            f"output_dims={out_dims!r} names outputs {unknown} that {name} does "
            f"not return with extra dims (its outputs with dims: {stored})"
            if unknown
            else f"{name}'s outputs are stored with dims {stored}, but "
            f"output_dims asks for {wanted}"
        )
        raise SweepError(
            f"{what}. The stored cells keep their structure: to rename the dims, sweep "
            "the whole grid again with force_recompute=True (the old variables are "
            f"replaced), or ps.clear_cache({name}) first."
        )
    return False


def run_sweep(
    fn: Callable[..., Any],
    store: Store,
    binding: Binding,
    plan: CellPlan,
    options: SweepOptions,
    pool: Any = None,
    *,
    on_interrupt: Callable[[], None] | None = None,
    when_locked: Callable[[], tuple[SweepReport, xr.Dataset] | None] | None = None,
) -> tuple[SweepReport, xr.Dataset]:
    """Sweep ``fn`` over ``plan`` into ``store`` in one write session; the report and results.

    ``fn`` runs serially in this process when ``pool`` is None, else on the pool.
    ``options`` are ``ps.sweep``'s, checked and built once there (:mod:`xsweep.space.plan`).
    ``when_locked``: when another writer holds the store, so that the session cannot start,
    its answer (None: the refusal stands). See :mod:`xsweep.space.results`.
    """
    name = binding.name
    table = None
    try:
        with store.writing():
            table = store.table(
                binding.key, name, binding.dims, binding.fingerprint, options.on_change
            )
            options.restructure = _may_restructure(
                name, table, plan, options.output_dims or {}, options.force_recompute
            )
            if plan.part is not None:  # before any cell: a task killed now says what it owes
                store.record_part(table, plan.part, plan.selected)
            if pool is None:
                report = run_serial(fn, name, store, table, plan, options)
            else:
                report = run_parallel(
                    fn, name, store, table, plan, pool, options, options.chunksize, on_interrupt
                )
            if report.computed or report.failed:
                store.add_history(
                    f"xsweep {__version__} swept {name}: {report.computed} cells computed, "
                    f"{report.failed} failed" + (" (stopped)" if report.stopped else "")
                )
    except StoreLockedError:
        if table is None and when_locked is not None:  # refused before anything was written
            answer = when_locked()
            if answer is not None:
                return answer
        raise
    except KeyboardInterrupt as exc:
        if table is not None:  # counted once the session has ended: the file is published
            note = _interrupted_note(store, table, name)
            if hasattr(exc, "add_note"):  # shown under the traceback
                exc.add_note(note)
            else:  # Python 3.10
                print(note, file=sys.stderr)
        raise
    # The caller owns what a sweep returns: a store never changes it afterwards.
    return report, own_dim_names(store.result(table, lazy=options.lazy), table)


def _interrupted_note(store: Store, table: FunctionTable, name: str) -> str:
    """What a Ctrl-C'd sweep kept, and what the next sweep does, as a note on the exception."""
    counts = status_counts(table.status)
    done, failed = counts["computed"], counts["failed"]
    missing = table.size - done - failed
    if not store.persistent:
        return (
            f"xsweep: the sweep of {name} was interrupted after {done + failed} of its "
            f"{table.size} cells; without a cache they are not kept. ps.enable_cache("
            "'results.nc') before sweeping keeps every finished cell, and the next sweep "
            "then resumes."
        )
    retried = f" and retries the {failed} failed" if failed else ""
    return (
        f"xsweep: the sweep of {name} was interrupted. {done} of its {table.size} cells are "
        f"computed and safe in {store.path}"
        + (f" ({failed} failed)" if failed else "")
        + f"; the next ps.sweep({name}) resumes: it computes the {missing} missing cells"
        + retried
        + ", not the finished ones."
    )


def run_serial(
    fn: Callable[..., Any],
    name: str,
    store: Store,
    table: FunctionTable,
    plan: CellPlan,
    options: SweepOptions,
) -> SweepReport:
    """Compute the plan's missing cells one after another in this process.

    Cells already computed (and failed ones when ``retry_failed`` is false) are skipped
    unless ``force_recompute``. Every computed or failed cell goes to the store as soon as
    it finishes, so an interruption (Ctrl-C, an exception, a kill) loses only the cell in
    flight.
    """
    flat, todo, report, sink = start_sweep(store, table, name, plan, options)
    if sink is None:
        return report
    progress, errors, stop = options.progress, options.errors, options.stop
    dims = plan.dims
    positional = plan.positional
    perf_counter = time.perf_counter
    record = sink.record
    extract = sink.extract
    computed = 0
    next_report = perf_counter() + 0.2 if progress is not None else float("inf")
    # A stop is seen before every cell (no new cell starts, as job.stop() promises): a
    # bound is_set costs ~40 ns per cell, and nothing without a stop (benchmarks in the
    # report of the fix); the progress reports stay every 0.2 s.
    stopped = stop.is_set if stop is not None else None
    try:
        for index, args in iter_cells(plan, table.shape, flat, todo):
            if stopped is not None and stopped():
                report.stopped = True
                break
            t0 = perf_counter()
            if t0 >= next_report:  # every 0.2 s, not per cell
                assert progress is not None  # else next_report is inf
                progress.update(computed, sink.failed)
                next_report = t0 + 0.2
            try:
                result = fn(*args) if positional else fn(**dict(zip(dims, args)))
            except SkipCell:
                continue  # left not computed, on purpose
            except Exception as exc:
                sink.fail(index, args, describe_exception(exc), perf_counter() - t0)
                sink.computed = computed
                if errors == "raise":
                    sink.note_raised(exc, args)
                    raise
                continue
            t1 = perf_counter()
            if result is None:  # a missing value: computed, nothing to store
                sink.none(index, t1 - t0)
                computed += 1
                continue
            if extract is None:
                sink.set_spec(result, args)
                record, extract = sink.record, sink.extract
                assert extract is not None  # set by set_spec
            try:
                values = extract(result)
            except OutputError:
                sink.computed = computed
                sink.ok(index, args, result, t1 - t0)  # grows the structure, or raises
                record, extract = sink.record, sink.extract
                computed += 1
                continue
            record(index, values, t1 - t0)
            computed += 1
    finally:
        report.computed = computed
        report.failed = sink.failed
        if progress is not None:
            progress.update(computed, sink.failed)
    return report
