"""Computing cells on an executor: threads, processes, loky, dask, MPI.

Batches of cells go to any ``concurrent.futures.Executor`` (or a dask client); the function
travels to the workers once, pickled with cloudpickle so that closures and notebook functions
work. Results come back to this process, which alone writes the store through the sweep's
sink (:mod:`xsweep.running.sink`): HDF5 files must never be written concurrently.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ThreadPoolExecutor,
    wait,
)
from typing import Any

import numpy as np

from ..errors import CellError, OutputError, SkipCell, SweepError
from ..outputs import infer_spec
from ..store import FunctionTable, Store
from ..text import describe_exception
from .cells import CellPlan, describe_cell, iter_cells
from .pools import executor_workers
from .progress import Progress
from .sink import Sink, SweepOptions, SweepReport, start_sweep

_FUNCTIONS: dict[str, Callable[..., Any]] = {}


def _load_function(key: str, blob: bytes) -> Callable[..., Any]:
    fn = _FUNCTIONS.get(key)
    if fn is None:
        fn = _FUNCTIONS[key] = _pickler().loads(blob)
    return fn


def run_batch(
    key: str, fn: Any, dims: tuple[str, ...], positional: bool, batch: list | bytes
) -> list | bytes:
    """Compute a batch of cells in a worker; returns ``[(index, ok, value, seconds), ...]``.

    ``fn`` is the function, or its pickled bytes (loaded once per worker process).
    ``value`` is the function's result, or for a failure ``(message, exception or None)``.
    ``ok`` is True (computed), False (failed), None (skipped) or :data:`REFUSED` (a result
    that cannot leave this process, ``value`` the refusal's text). Module-level so that
    every executor can import it by name in its workers.

    When the function arrives pickled, its results go back to another process: they are
    returned pickled (see :func:`_packed`).
    """
    remote = isinstance(fn, bytes)
    if remote:
        fn = _load_function(key, fn)
    if isinstance(batch, bytes):
        batch = pickle.loads(batch)
    assert isinstance(batch, list)  # of (index, args)
    out: list[tuple[Any, Any, Any, float]] = []
    perf_counter = time.perf_counter
    for index, args in batch:
        t0 = perf_counter()
        try:
            result = fn(*args) if positional else fn(**dict(zip(dims, args)))
        except SkipCell:
            out.append((index, None, None, perf_counter() - t0))  # left not computed
            continue
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
    return _packed(out) if remote else out


#: ``ok`` of a cell whose result cannot be pickled back to the driver (see :func:`run_batch`).
REFUSED = "refused"


def _packed(out: list) -> bytes:
    """The batch's results, pickled here rather than by the executor.

    An executor that cannot pickle one result fails the whole task ("cannot pickle
    'generator' object"), without saying which cell; here each such result becomes a
    refusal of its own cell, as the serial sweep's (the same ``OutputError``). Pickling the
    batch ourselves costs what the executor's pickling did: it then sends one bytes object.
    """
    try:
        return pickle.dumps(out, pickle.HIGHEST_PROTOCOL)
    except Exception:  # some result cannot be pickled: find which (rare, so twice is fine)
        pass
    sendable = []
    for index, ok, value, seconds in out:
        if ok:
            try:
                pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                ok, value = _unsendable(value, exc)
        sendable.append((index, ok, value, seconds))
    return pickle.dumps(sendable, pickle.HIGHEST_PROTOCOL)


def _unsendable(value: Any, exc: Exception) -> tuple[Any, Any]:
    """``(ok, value)`` of a result that cannot be pickled: the output check's refusal (what
    a serial sweep raises), or if xsweep could store it, a failure saying why it is lost."""
    try:
        infer_spec(value, "result")
    except OutputError as refusal:
        return REFUSED, str(refusal)
    except Exception:  # noqa: BLE001 - the check itself broke: the pickling error says enough
        pass
    message = (
        f"{describe_exception(exc)}: the result cannot be sent back from the worker process. "
        "Return plain values (numbers, plain numpy arrays: np.asarray(x), dicts of them), or "
        "sweep with threads (executor=ThreadPoolExecutor()) or serially."
    )
    return False, (message, None)


def _portable(exc: Exception) -> Exception | None:
    """The exception itself if it survives pickling (to re-raise it in the driver)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return None
    return exc


def _pickler() -> types.ModuleType:
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
            "Install cloudpickle (pip install 'xsweep-nc[dask]') so that closures, lambdas and "
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
    flat, todo, report, sink = start_sweep(store, table, name, plan, options)
    if sink is None:
        return report
    progress = options.progress
    tasks = _Tasks(fn, name, store, table, plan, flat, todo, executor, sink, options, chunksize)
    try:
        while True:
            if tasks.submit(options.stop):
                report.stopped = True  # cells in flight finish; no new one starts
            if not tasks.pending:
                break
            tasks.collect(progress)
    finally:
        tasks.cancel(on_interrupt)
        report.computed = sink.computed
        report.failed = sink.failed
        if progress is not None:
            progress.update(sink.computed, sink.failed)
    return report


class _Tasks:
    """A parallel sweep's tasks: sized, submitted two per worker, their results recorded.

    Owns what is in flight (each task's batch, each cell's arguments) and the cell times
    seen so far, which size the next batches.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        store: Store,
        table: FunctionTable,
        plan: CellPlan,
        flat: np.ndarray,
        todo: np.ndarray,
        executor: Executor,
        sink: Sink,
        options: SweepOptions,
        chunksize: int | None,
    ):
        self.name, self.store, self.table, self.plan = name, store, table, plan
        self.executor, self.sink, self.chunksize = executor, sink, chunksize
        self.errors = options.errors
        self.remote = not isinstance(executor, ThreadPoolExecutor)
        self.blob: bytes | Callable[..., Any]  # what run_batch gets as fn
        if self.remote:
            self.blob = ship(fn)
            self.key = f"{name}-{hashlib.sha1(self.blob).hexdigest()}"
        else:  # threads share memory: nothing to send
            self.blob, self.key = fn, name
        self.workers = executor_workers(executor)
        self.cells = iter_cells(plan, table.shape, flat, todo)
        self.remaining = int(np.count_nonzero(todo))  # cells not yet submitted
        self.args_of: dict[int, tuple] = {}
        self.pending: dict[Future, list] = {}
        self.busy_seconds = 0.0
        self.done_cells = 0

    def submit(self, stop: threading.Event | None) -> bool:
        """Submit batches until two per worker are in flight; True if ``stop`` is set."""
        plan = self.plan
        while len(self.pending) < 2 * self.workers:
            if stop is not None and stop.is_set():
                return True
            batch = self._next_batch()
            if not batch:
                break
            self.remaining -= len(batch)
            for index, args in batch:
                self.args_of[index] = args
            # Other processes get the batch as one opaque bytes object: cheap to send
            # and for dask to key, unlike a long list of tuples.
            payload = pickle.dumps(batch, pickle.HIGHEST_PROTOCOL) if self.remote else batch
            fut = self.executor.submit(
                run_batch, self.key, self.blob, plan.dims, plan.positional, payload
            )
            self.pending[fut] = batch
        return False

    def _next_batch(self) -> list:
        if self.chunksize is not None:
            size = self.chunksize
        elif self.done_cells == 0:
            size = 1
        else:
            mean = self.busy_seconds / self.done_cells
            fill = max(self.remaining // (2 * self.workers), 1)
            size = int(min(max(0.2 / max(mean, 1e-9), 1), fill))
        return list(itertools.islice(self.cells, min(size, self._in_flight_cap())))

    def _in_flight_cap(self) -> int:
        # Backpressure: the results of the tasks in flight (2 per worker) stay within half
        # the store's memory budget, however fast workers are and however big the cells.
        budget = getattr(self.store, "memory_budget", None)
        spec = self.table.spec
        if budget is None or spec is None:
            return 1 << 62
        cell = sum(v.dtype.itemsize * int(np.prod(v.shape)) for v in spec.variables)
        return max(budget // max(4 * self.workers * cell, 1), 1)

    def collect(self, progress: Progress | None) -> None:
        """Wait for a task to finish and record the cells of every finished one."""
        done, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
        for fut in done:
            batch = self.pending.pop(fut)
            self._record(self._results(fut, batch))
            if progress is not None:
                progress.update(self.sink.computed, self.sink.failed)

    def _results(self, fut: Future, batch: list) -> list:
        """A finished task's results; a task that failed as a whole fails the sweep."""
        try:
            results = fut.result()
        except Exception as exc:  # the worker died or the task could not run
            failed = _worker_failed(self.sink, batch, self.pending, exc)
            raise SweepError(
                f"A worker failed while computing cells of {self.name} "
                f"({type(exc).__name__}: {exc}). The {failed} cells that were in flight are "
                "recorded as failed (the culprit is among them) and everything finished "
                "before is kept; sweep again to retry them (with a fresh executor if this "
                "one is broken)."
            ) from exc
        return pickle.loads(results) if isinstance(results, bytes) else results

    def _record(self, results: list) -> None:
        """Hand one task's cells to the sink; a failure under errors='raise' is re-raised."""
        sink, args_of, dims = self.sink, self.args_of, self.plan.dims
        busy_seconds = 0.0
        for index, ok, value, seconds in results:
            args = args_of.pop(index)
            busy_seconds += seconds
            if ok is True:
                sink.ok(index, args, value, seconds)
                continue
            if ok is None:  # the function raised SkipCell
                continue
            if ok == REFUSED:  # as the serial sweep refuses it: nothing is recorded
                raise OutputError(f"Cell {describe_cell(dims, args)} of {self.name}: {value}.")
            message, original = value
            sink.fail(index, args, message, seconds)
            if self.errors == "raise":
                if original is None:
                    original = CellError(message, dict(zip(dims, args)))
                sink.note_raised(original, args)
                raise original
        self.busy_seconds += busy_seconds
        self.done_cells += len(results)

    def cancel(self, on_interrupt: Callable[[], None] | None) -> None:
        """Cancel the tasks still in flight (the sweep ended early); tell ``on_interrupt``."""
        for fut in self.pending:
            fut.cancel()
        if self.pending and on_interrupt is not None:
            on_interrupt()


def _worker_failed(sink: Sink, batch: list, pending: dict[Future, list], exc: Exception) -> int:
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
            if isinstance(results, bytes):
                results = pickle.loads(results)
        except Exception:
            lost += other
            continue
        args_of = dict(other)
        for index, ok, value, seconds in results:
            args = args_of[index]
            if ok is True:
                sink.ok(index, args, value, seconds)
            elif ok == REFUSED:
                sink.fail(index, args, f"OutputError: {value}", seconds)
            elif ok is False:
                sink.fail(index, args, value[0], seconds)
    for fut, other in pending.items():  # still running on a healthy executor: given up
        fut.cancel()
        lost += other
    pending.clear()
    for index, args in lost:
        sink.fail(index, args, message, float("nan"))
    return len(lost)
