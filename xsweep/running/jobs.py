"""Background sweeps: ``ps.sweep_async(fn)`` returns a :class:`SweepJob` at once.

The sweep runs in a thread of this process (the cells themselves run there, or on the
executor it was given), so a notebook's kernel stays free: explore cached cells, plot what is
done so far, stop the sweep. A stopped sweep lets the cells in flight finish, records them,
and publishes the file as any interrupted sweep does: the next sweep resumes it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import xarray as xr

#: What the sweep running in this thread reports to and is stopped by (set by a job's thread).
hooks = threading.local()


class StopAt:
    """A stop signal that is also set once a deadline passes (``ps.refine(max_seconds=)``).

    It answers ``is_set()`` as the ``threading.Event`` a sweep is stopped by does: true
    when ``outer`` (a background job's stop, or None) is set, or when ``time.monotonic()``
    has reached ``deadline``. Sweeps check it before each cell (serially) and before each
    batch (on executors), so a refinement stops within a cell's time of its budget.

    Examples
    --------
    >>> import threading
    >>> from xsweep.running.jobs import StopAt
    >>> job = threading.Event()
    >>> stop = StopAt(job, float("inf"))
    >>> stop.is_set()
    False
    >>> job.set()
    >>> stop.is_set(), StopAt(None, 0.0).is_set()
    (True, True)
    """

    def __init__(self, outer: Any, deadline: float) -> None:
        self.outer = outer
        self.deadline = deadline

    def is_set(self) -> bool:
        return self.stopped() or time.monotonic() >= self.deadline

    def stopped(self) -> bool:
        """Whether the outer stop (``job.stop()``) was asked for, the deadline aside."""
        return self.outer is not None and self.outer.is_set()


@contextlib.contextmanager
def stop_at(deadline: float) -> Iterator[StopAt]:
    """Meanwhile, sweeps in this thread also stop at ``deadline`` (``time.monotonic()``).

    Examples
    --------
    >>> import time
    >>> from xsweep.running.jobs import hooks, stop_at
    >>> with stop_at(time.monotonic() - 1) as stop:
    ...     hooks.stop is stop, stop.is_set()
    (True, True)
    >>> getattr(hooks, "stop", None) is None
    True
    """
    outer = getattr(hooks, "stop", None)
    hooks.stop = stop = StopAt(outer, deadline)
    try:
        yield stop
    finally:
        hooks.stop = outer


class _Counts:
    """The progress hook of a job: keeps the latest counts, and feeds a bar if there is one."""

    def __init__(self, bar: Any = None) -> None:
        self.bar = bar
        self.total = self.cached = self.computed = self.failed = 0
        self.started = False

    def start(self, total: int, cached: int) -> None:
        self.total, self.cached, self.started = total, cached, True
        if self.bar is not None:
            self.bar.start(total, cached)

    def update(self, computed: int, failed: int) -> None:
        self.computed, self.failed = computed, failed
        if self.bar is not None:
            self.bar.update(computed, failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Answer(int):
    """A bool that can also be called: ``job.stopped()``, and ``job.stopped`` as before."""

    def __call__(self) -> bool:
        return bool(self)

    def __repr__(self) -> str:
        return repr(bool(self))


class _CountsNow(dict):
    """The counts, also callable: ``job.counts()``, and ``job.counts[...]`` as before."""

    def __call__(self) -> dict[str, int | None]:
        return dict(self)


class SweepJob:
    """A sweep running in the background; made by :meth:`ParameterSpace.sweep_async`.

    Its state is asked with methods, as of a ``concurrent.futures.Future``: ``done()``,
    ``stopped()``, ``counts()``, ``result()``. (``job.stopped`` and ``job.counts[...]``
    without the call, as earlier releases spelled them, still work.)

    Examples
    --------
    >>> import xsweep as xs
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    >>> job = ps.sweep_async(lambda a: a * 10, name="tenfold")
    >>> job.result(timeout=60)["tenfold"].values.tolist()
    [10, 20, 30]
    >>> job.done(), job.stopped(), job.counts()["computed"]
    (True, False, 3)
    """

    def __init__(self, name: str, run: Callable[[], xr.Dataset]) -> None:
        self.name = name
        self._stop = threading.Event()
        self._counts = _Counts()
        self._result: xr.Dataset | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, args=(run,), name=f"xsweep-{name}", daemon=True
        )
        self._thread.start()

    def _main(self, run: Callable[[], xr.Dataset]) -> None:
        hooks.stop, hooks.counts = self._stop, self._counts
        try:
            self._result = run()
        except BaseException as exc:  # given to whoever asks for the result
            self._error = exc
        finally:
            hooks.stop = hooks.counts = None

    def done(self) -> bool:
        """Whether the sweep has ended (finished, stopped or failed)."""
        return not self._thread.is_alive()

    def result(self, timeout: float | None = None) -> xr.Dataset:
        """The sweep's Dataset, waiting for it; raises what the sweep raised.

        After :meth:`stop`, the Dataset holds the cells computed before it (the others
        read as not computed). Raises ``TimeoutError`` if ``timeout`` seconds pass first.
        """
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(
                f"The sweep of {self.name} is still running after {timeout} s; "
                "job.counts() says how far it is, job.stop() stops it."
            )
        if self._error is not None:
            raise self._error
        assert self._result is not None  # the sweep returned
        return self._result

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop the sweep: no new cell starts, cells in flight finish and are recorded.

        On an executor, cells in flight are the batches already sent to the workers (at
        most two per worker).

        With the cache on, the file is published as after any interruption, and the next
        ``ps.sweep(fn)`` computes only what is missing. ``wait=False`` returns at once.
        """
        self._stop.set()
        if wait:
            self._thread.join(timeout)

    # stopped() and counts() are methods, like done(); as properties whose values can be
    # called, the attribute spelling of earlier releases (job.stopped, job.counts[...]) works.
    @property
    def stopped(self) -> _Answer:
        """``job.stopped()``: whether :meth:`stop` was called."""
        return _Answer(self._stop.is_set())

    @property
    def counts(self) -> _CountsNow:
        """``job.counts()``: live counts of the sweep's cells, ``cached``, ``computed``,
        ``failed`` and ``left``.

        Updated about five times a second while it runs, exact once it has ended; ``left``
        is None until the sweep has found which cells are cached.
        """
        c = self._counts
        left = max(c.total - c.cached - c.computed - c.failed, 0) if c.started else None
        return _CountsNow(cached=c.cached, computed=c.computed, failed=c.failed, left=left)

    def __repr__(self) -> str:
        state = (
            "running"
            if not self.done()
            else "failed"
            if self._error is not None
            else "stopped"
            if self.stopped()
            else "done"
        )
        c = self.counts()
        return (
            f"<SweepJob {self.name}: {state}, {c['computed']} computed, {c['failed']} failed, "
            f"{c['cached']} cached, {c['left']} left>"
        )
