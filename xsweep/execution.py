"""Running a function over cells: serially or on an executor, with one writer.

Serial: the loop runs once per cell, millions of times in a big sweep, so it is written flat:
a precomputed iterator of (flat index, argument values), a direct call, and the store's
``record`` callable, which writes into numpy buffers (and the journal, with a cache).

Parallel: any ``concurrent.futures.Executor`` (threads, processes, loky, dask, MPI) computes
batches of cells; the function travels to the workers once, pickled with cloudpickle so that
closures and notebook functions work. Results come back to this process, which alone writes
the store: HDF5 files must never be written concurrently.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ._version import __version__
from .errors import CellError, OutputError, SweepError
from .outputs import grow_spec, infer_spec
from .pools import executor_workers
from .progress import Progress
from .store import DONE, FAILED, FunctionTable, Store
from .text import clean_message, describe_exception


@dataclass
class CellPlan:
    """Which cells of a function's table to compute, and how to call the function.

    Indices are the store's (its grid may hold more values than the space).
    """

    dims: tuple[str, ...]
    values: Sequence[np.ndarray]  # per dim, the store's grid values
    selected: Sequence[np.ndarray]  # per dim, the indices to sweep (one index for held dims)
    positional: bool  # call fn(*values) instead of fn(**dict(zip(dims, values)))
    part: tuple[int, int] | None = None  # (k, n): only the k-th of n equal slices
    order: str = "grid"  # "grid": C order; "spread": coarse sub-grids first (see spread_order)


@dataclass
class SweepReport:
    """What a sweep did: counts of cells found cached, computed and failed."""

    cached: int = 0
    computed: int = 0
    failed: int = 0
    stopped: bool = False  # stopped on request (a background sweep's stop()) before the end


def describe_cell(dims: Sequence[str], values: Sequence[Any]) -> str:
    """``"length=2, width=3"`` for error messages."""
    return ", ".join(f"{d}={v!r}" for d, v in zip(dims, values))


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
        from .parameters import Parameter

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
                param._set_index(param.index(value), fire=False, notify=False)
            return self.fn(**{self.takes[i]: args[k] for i, k in enumerate(self.picks)})


def selected_flat(plan: CellPlan, shape: tuple[int, ...]) -> np.ndarray:
    """Flat C-order indices of the selected cells, in the order the loop visits them.

    One int64 per cell: the index grids are broadcast, never materialised per dim.
    """
    if not plan.dims:
        flat = np.zeros(1, dtype=np.int64)
    else:
        flat = np.ravel_multi_index(np.ix_(*plan.selected), shape).ravel()
    if plan.part is not None:
        k, n = plan.part
        flat = np.array_split(flat, n)[k]
    if plan.order == "spread" and flat.size > 1:
        flat = flat[spread_order(flat, shape)]
    return flat


def bisection_ranks(n: int) -> np.ndarray:
    """Each of ``n`` positions' rank in a coarse-to-fine order: the ends, the middle, the
    quarters, ... so that the first k positions spread evenly over all n.

    Examples
    --------
    >>> from xsweep.execution import bisection_ranks
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


def _todo(plan: CellPlan, table: FunctionTable, force_recompute: bool, retry_failed: bool):
    """The selected flat indices, which of them to compute, and how many are cached."""
    flat = selected_flat(plan, table.shape)
    if force_recompute:
        return flat, np.ones(flat.size, dtype=bool), 0
    status = table.status[flat]
    todo = ~np.isin(status, DONE)
    if not retry_failed:
        todo &= status != FAILED
    return flat, todo, int(flat.size - np.count_nonzero(todo))


def _expected(table: FunctionTable, flat: np.ndarray, todo: np.ndarray) -> int:
    """How many of the table's cells are computed after the sweep, if every cell succeeds."""
    computed = np.isin(table.status, DONE)
    redone = np.count_nonzero(computed[flat[todo]])
    return int(np.count_nonzero(computed) - redone + np.count_nonzero(todo))


#: Cells whose arguments are made into Python objects at a time: the loop's memory stays
#: bounded (a whole grid of Python ints would cost ~100 bytes per cell).
CELL_BATCH = 1 << 16


def _cells(
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


class _Sink:
    """Hands finished cells to the store: infers the output structure, checks every cell."""

    def __init__(
        self,
        store: Store,
        table: FunctionTable,
        name: str,
        output_dims,
        dims,
        expect: int = 0,
        restructure: bool = False,
        sweeping: bool = True,
    ):
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
        self.record_none(index, seconds)

    def ok(self, index: int, args: tuple, result: Any, seconds: float) -> None:
        if result is None:
            self.record_none(index, seconds)
            self.computed += 1
            return
        if self.extract is None:
            self.set_spec(result, args)
        try:
            values = self.extract(result)
        except OutputError as exc:
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
            kept = (
                _kept(self.computed)
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
        # Messages from workers arrive unchecked: NULs and surrogates would poison the file.
        self.record_failure(index, clean_message(message), seconds)
        self.failed += 1

    def raise_note(self, args: tuple) -> str:
        kept = _kept(self.computed)
        return (
            f"xsweep: raised by {self.name}({describe_cell(self.dims, args)}); {kept}, the "
            "cell is recorded as failed. Pass errors='record' to record failures and go on."
        )


def _kept(computed: int) -> str:
    """What a note says about the cells a sweep computed before it stopped."""
    if computed == 0:
        return "no cell was computed before it"
    if computed == 1:
        return "the 1 cell computed before it is kept"
    return f"the {computed} cells computed before it are kept"


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
        sink = _Sink(store, table, name, None, dims, sweeping=False)
        sink.ok(store.grid.flat_index(dims, indices), args, result, seconds)


def _may_restructure(
    name: str, table: FunctionTable, plan: CellPlan, out_dims: dict, force_recompute: bool
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
    stored = {v.name: v.dims for v in spec.variables if v.dims}
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
    key: str,
    name: str,
    dims: tuple[str, ...],
    fingerprint: str | None,
    plan: CellPlan,
    pool: Any = None,
    *,
    on_change: str,
    output_dims: dict[str, tuple[str, ...]],
    force_recompute: bool,
    retry_failed: bool,
    errors: str,
    chunksize: int | None = None,
    progress: Progress | None = None,
    on_interrupt: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[SweepReport, xr.Dataset]:
    """Sweep ``fn`` over ``plan`` into ``store`` in one write session; the report and results.

    ``fn`` runs serially in this process when ``pool`` is None, else on the pool.
    """
    with store.writing():
        table = store.table(key, name, dims, fingerprint, on_change)
        options = SweepOptions(
            output_dims,
            force_recompute,
            retry_failed,
            errors,
            progress,
            restructure=_may_restructure(name, table, plan, output_dims, force_recompute),
            stop=stop,
        )
        if pool is None:
            report = run_serial(fn, name, store, table, plan, options)
        else:
            report = run_parallel(
                fn, name, store, table, plan, pool, options, chunksize, on_interrupt
            )
        if report.computed or report.failed:
            store.add_history(
                f"xsweep {__version__} swept {name}: {report.computed} cells computed, "
                f"{report.failed} failed" + (" (stopped)" if report.stopped else "")
            )
    # The caller owns what a sweep returns: a store never changes it afterwards.
    return report, store.result(table)


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
    #: Checked with the progress reports (every 0.2 s), never per cell.
    stop: threading.Event | None = None


def _begin(store: Store, table: FunctionTable, name: str, plan: CellPlan, options: SweepOptions):
    """``(flat, todo, report, sink)`` of a sweep; ``sink`` is None when nothing is to do."""
    flat, todo, cached = _todo(plan, table, options.force_recompute, options.retry_failed)
    report = SweepReport(cached=cached)
    if options.progress is not None:
        options.progress.start(int(flat.size), cached)
    if not todo.any():
        return flat, todo, report, None
    sink = _Sink(
        store,
        table,
        name,
        options.output_dims,
        plan.dims,
        _expected(table, flat, todo),
        options.restructure,
    )
    return flat, todo, report, sink


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
    flat, todo, report, sink = _begin(store, table, name, plan, options)
    if sink is None:
        return report
    progress, errors, stop = options.progress, options.errors, options.stop
    dims = plan.dims
    positional = plan.positional
    perf_counter = time.perf_counter
    record = sink.record
    extract = sink.extract
    computed = 0
    reporting = progress is not None or stop is not None
    next_report = perf_counter() + 0.2 if reporting else float("inf")
    try:
        for index, args in _cells(plan, table.shape, flat, todo):
            t0 = perf_counter()
            if t0 >= next_report:  # every 0.2 s, not per cell
                if progress is not None:
                    progress.update(computed, sink.failed)
                next_report = t0 + 0.2
                if stop is not None and stop.is_set():
                    report.stopped = True
                    break
            try:
                result = fn(*args) if positional else fn(**dict(zip(dims, args)))
            except Exception as exc:
                sink.fail(index, args, describe_exception(exc), perf_counter() - t0)
                sink.computed = computed
                if errors == "raise":
                    _add_note(exc, sink.raise_note(args))
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


# ---------------------------------------------------------------------------------------------
# Parallel
# ---------------------------------------------------------------------------------------------
_FUNCTIONS: dict[str, Callable[..., Any]] = {}


def _load_function(key: str, blob: bytes) -> Callable[..., Any]:
    fn = _FUNCTIONS.get(key)
    if fn is None:
        fn = _FUNCTIONS[key] = _pickler().loads(blob)
    return fn


def run_batch(key: str, fn: Any, dims: tuple[str, ...], positional: bool, batch: list):
    """Compute a batch of cells in a worker; returns ``[(index, ok, value, seconds), ...]``.

    ``fn`` is the function, or its pickled bytes (loaded once per worker process).
    ``value`` is the function's result, or for a failure ``(message, exception or None)``.
    Module-level so that every executor can import it by name in its workers.
    """
    if isinstance(fn, bytes):
        fn = _load_function(key, fn)
    if isinstance(batch, bytes):
        batch = pickle.loads(batch)
    out = []
    perf_counter = time.perf_counter
    for index, args in batch:
        t0 = perf_counter()
        try:
            result = fn(*args) if positional else fn(**dict(zip(dims, args)))
        except Exception as exc:
            out.append(
                (
                    index,
                    False,
                    (describe_exception(exc), _portable(exc)),
                    perf_counter() - t0,
                )
            )
        else:
            out.append((index, True, result, perf_counter() - t0))
    return out


def _portable(exc: Exception) -> Exception | None:
    """The exception itself if it survives pickling (to re-raise it in the driver)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return None
    return exc


def _pickler():
    try:
        import cloudpickle
    except ImportError:  # plain pickle handles module-level functions
        return pickle
    return cloudpickle


def ship(fn: Callable[..., Any]) -> bytes:
    """Serialize ``fn`` for the workers, or raise ``SweepError`` saying why it cannot go."""
    pickler = _pickler()
    try:
        return pickler.dumps(fn)
    except Exception as exc:
        hint = (
            "Install cloudpickle (pip install 'xsweep[dask]') so that closures, lambdas and "
            "notebook functions can be sent. "
            if pickler is pickle
            else ""
        )
        raise SweepError(
            f"Cannot send {getattr(fn, '__qualname__', fn)!r} to the workers: "
            f"{type(exc).__name__}: {exc}. {hint}A function run in other processes must not "
            "hold things that only live in this one (open files, locks, database connections, "
            "GUI objects): create them inside the function, or sweep with threads "
            "(executor=ThreadPoolExecutor()) or serially (no executor)."
        ) from None


def run_parallel(
    fn: Callable[..., Any],
    name: str,
    store: Store,
    table: FunctionTable,
    plan: CellPlan,
    executor: Executor,
    options: SweepOptions,
    chunksize: int | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> SweepReport:
    """Compute the plan's missing cells on ``executor``; this process alone writes the store.

    Batches: with ``chunksize=None`` the first tasks hold one cell each; once cell times are
    known, batches grow so that a task lasts about 0.2 s (cheap cells stop drowning in
    per-task overhead) while every worker keeps work (expensive cells stay one per task).
    At most two tasks per worker are queued, so Ctrl-C stops within one task's time.
    """
    flat, todo, report, sink = _begin(store, table, name, plan, options)
    if sink is None:
        return report
    progress, errors, stop = options.progress, options.errors, options.stop
    remaining = int(np.count_nonzero(todo))
    if isinstance(executor, ThreadPoolExecutor):
        blob, key = fn, name  # threads share memory: nothing to send
    else:
        blob = ship(fn)
        key = f"{name}-{hashlib.sha1(blob).hexdigest()}"
    workers = executor_workers(executor)
    cells = _cells(plan, table.shape, flat, todo)
    args_of: dict[int, tuple] = {}
    pending: dict[Future, list] = {}
    busy_seconds = 0.0
    done_cells = 0

    def next_batch() -> list:
        if chunksize is not None:
            size = chunksize
        elif done_cells == 0:
            size = 1
        else:
            mean = busy_seconds / done_cells
            size = int(min(max(0.2 / max(mean, 1e-9), 1), max(remaining // (2 * workers), 1)))
        return list(itertools.islice(cells, size))

    try:
        while True:
            while len(pending) < 2 * workers:
                if stop is not None and stop.is_set():
                    report.stopped = True  # cells in flight finish; no new one starts
                    break
                batch = next_batch()
                if not batch:
                    break
                remaining -= len(batch)
                for index, args in batch:
                    args_of[index] = args
                # Other processes get the batch as one opaque bytes object: cheap to send
                # and for dask to key, unlike a long list of tuples.
                payload = batch if blob is fn else pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
                fut = executor.submit(run_batch, key, blob, plan.dims, plan.positional, payload)
                pending[fut] = batch
            if not pending:
                break
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                batch = pending.pop(fut)
                try:
                    results = fut.result()
                except Exception as exc:  # the worker died or the task could not run
                    failed = _worker_failed(sink, batch, pending, exc)
                    raise SweepError(
                        f"A worker failed while computing cells of {name} ({type(exc).__name__}: "
                        f"{exc}). The {failed} cells that were in flight are recorded as failed "
                        "(the culprit is among them) and everything finished before is kept; "
                        "sweep again to retry them (with a fresh executor if this one is "
                        "broken)."
                    ) from exc
                for index, ok, value, seconds in results:
                    args = args_of.pop(index)
                    busy_seconds += seconds
                    done_cells += 1
                    if ok:
                        sink.ok(index, args, value, seconds)
                        continue
                    message, original = value
                    sink.fail(index, args, message, seconds)
                    if errors == "raise":
                        exc = (
                            original
                            if original is not None
                            else CellError(message, dict(zip(plan.dims, args)))
                        )
                        _add_note(exc, sink.raise_note(args))
                        raise exc
                if progress is not None:
                    progress.update(sink.computed, sink.failed)
    finally:
        for fut in pending:
            fut.cancel()
        if pending and on_interrupt is not None:
            on_interrupt()
        report.computed = sink.computed
        report.failed = sink.failed
        if progress is not None:
            progress.update(sink.computed, sink.failed)
    return report


def _worker_failed(sink: _Sink, batch: list, pending: dict[Future, list], exc: Exception) -> int:
    """Record what a failed task leaves behind; return how many cells were marked failed.

    When a worker process dies, every task in flight on the pool fails at once and which
    cell killed it is unknown: all of them are recorded failed. Tasks that did finish are kept.
    """
    message = f"WorkerError: {describe_exception(exc)}"
    lost = list(batch)
    finished, _ = wait(list(pending), timeout=5)
    for fut in finished:
        other = pending.pop(fut)
        try:
            results = fut.result()
        except Exception:
            lost += other
            continue
        args_of = dict(other)
        for index, ok, value, seconds in results:
            args = args_of[index]
            if ok:
                sink.ok(index, args, value, seconds)
            else:
                sink.fail(index, args, value[0], seconds)
    for fut, other in pending.items():  # still running on a healthy executor: given up
        fut.cancel()
        lost += other
    pending.clear()
    for index, args in lost:
        sink.fail(index, args, message, float("nan"))
    return len(lost)


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
