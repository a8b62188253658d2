"""ParameterSpace: sweep() and sweep_async(). Orchestrates; owns no format.

The class is built from parts, one module each: :mod:`.core` (the parameters, the grid and
the state every part shares), :mod:`.caching` (enable_cache, ...), :mod:`.single_cells`
(run_process, cell) and :mod:`.inspecting` (status, failures, watch, explore, grid_view);
:mod:`.results` decides which store a verb talks to, :mod:`.plan` what a sweep will do.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from ..errors import (
    SweepFailuresWarning,
)
from ..outputs.encodings import decode_times
from ..running import jobs
from ..running.cells import CellPlan
from ..running.execution import run_sweep
from ..running.pools import resolve_executor, stop_pool
from ..running.progress import Progress, progress_wanted
from ..running.sink import SweepOptions, SweepReport
from ..store import Store, status_variables, view_dtypes
from .caching import CacheMethods
from .inspecting import ViewMethods
from .plan import check_output_dims, check_sweep_options, plan_cells
from .refining import RefineMethods
from .single_cells import CellMethods


class SweptReport(NamedTuple):
    """What one sweep did (:class:`~xsweep.running.sink.SweepReport`), of which function,
    over how many selected cells."""

    counts: SweepReport
    key: str
    name: str
    total: int

    @property
    def failed(self) -> int:
        return self.counts.failed


class ParameterSpace(CacheMethods, CellMethods, ViewMethods, RefineMethods):
    """An ordered set of parameters to sweep functions over.

    Parameters
    ----------
    parameters : iterable of Parameter
        The axes, in the order they become dims of the results.

    Examples
    --------
    >>> import xsweep as xs
    >>> ps = xs.ParameterSpace([
    ...     xs.Parameter("length", values=[1, 2, 3], units="m"),
    ...     xs.Parameter("width", values=[10, 20]),
    ... ])
    >>> ps.dims, ps.shape, ps.size
    (('length', 'width'), (3, 2), 6)
    >>> def area(length, width):
    ...     return length * width
    >>> ds = ps.sweep(area)
    >>> int(ds["area"].sel(length=2, width=20))
    40
    """

    # -- sweeping -------------------------------------------------------------------------------
    def sweep(
        self,
        fn: Callable[..., Any],
        *,
        params: Sequence[str] | None = None,
        output_dims: Mapping[str, Sequence[str]] | None = None,
        force_recompute: bool = False,
        errors: str = "record",
        retry_failed: bool = True,
        executor: Any = None,
        workers: int | None = None,
        chunksize: int | None = None,
        progress: bool | None = None,
        on_change: str = "raise",
        version: str | None = None,
        cells: Mapping[str, Sequence[Any]] | None = None,
        part: tuple[int, int] | None = None,
        name: str | None = None,
        set_values: bool = False,
        depends_on: Sequence[str] | None = None,
        order: str = "grid",
        lazy: bool | None = None,
    ) -> xr.Dataset:
        """Run ``fn`` over every cell of the grid and return the results as a Dataset.

        Parameters
        ----------
        fn : callable
            Its argument names are parameter names; it is called once per cell with the
            cell's values. It may return a scalar, a numpy array, a dict of those, an
            ``xarray.DataArray`` or an ``xarray.Dataset``.
        params : list of str, optional
            Sweep only these parameters; the others ``fn`` takes are held at their current
            ``.value`` (and appear as scalar coordinates of the result).
        output_dims : dict, optional
            Names for the extra dims of array outputs, e.g. ``{"image": ("y", "x", "rgb")}``;
            by default ``<variable>_dim_0``, ``<variable>_dim_1``, ...
        force_recompute : bool, default False
            With a cache, compute every selected cell again instead of reusing it.
        errors : {"record", "raise"}, default "record"
            What a cell that raises does: ``"record"`` marks it failed with its message and
            goes on (a :class:`SweepFailuresWarning` at the end says how many); ``"raise"``
            stops the sweep with that exception. Cells computed before are kept either way.
        retry_failed : bool, default True
            Compute again cells that failed in an earlier sweep.
        executor : concurrent.futures.Executor or distributed.Client, optional
            Compute cells on this executor (threads, processes, loky, dask, mpi4py). Results
            are identical to a serial sweep; only this process writes the cache.
        workers : int, optional
            Shortcut: compute on a new local process pool of this many workers, shut down
            when the sweep ends.
        chunksize : int, optional
            Cells per task on an executor; by default batches grow until a task lasts about
            0.2 s, so cheap cells are batched and expensive ones go one per task.
        progress : bool, optional
            Show a progress bar (cached / computed / failed counts and an ETA). By default
            on in a notebook or a terminal, off when output goes to a log or ``CI`` is set.
        on_change : {"raise", "keep"}, default "raise"
            When the cache holds results of another version of ``fn``'s code: ``"raise"``
            an error that lists the ways out, or ``"keep"`` the old results as valid (noted
            in the file). ``force_recompute=True`` recomputes them instead.
        version : str, optional
            Your own version label for ``fn`` in this space, replacing the code fingerprint
            (see :func:`xsweep.version` to attach one to the function itself).
        cells : dict, optional
            Compute only these values of some parameters, e.g. ``{"length": [1, 2]}``.
        part : (int, int), optional
            Compute only slice ``k`` of ``n`` equal slices of the selected cells, e.g.
            ``part=(int(os.environ["SLURM_ARRAY_TASK_ID"]), 10)`` in a job array.
        name : str, optional
            The name the results are stored under (variables ``<name>``, ``<name>_status``,
            ...); by default the function's ``__name__``. Give two different functions with
            one name (two lambdas) names of their own. The space remembers it for
            ``run_process(fn)``.
        set_values : bool, default False
            ``fn`` reads parameters' ``.value`` instead of (or besides) taking them as
            arguments (TINC's ``force_values``): each cell sets the swept parameters' values
            silently (no callbacks) while ``fn`` runs, also on process-pool workers, and the
            values are restored after the sweep. Cells that read parameters run one at a
            time per process. A function that takes no parameter at all is swept this way
            over the whole space. Remembered by the space for this function.
        depends_on : list of str, optional
            Parameters ``fn`` reads without taking them (TINC's ``dependencies``): they become
            dims of its results and are set per cell as with ``set_values``. A function that
            reads the ``.value`` of a parameter that is not one of its dims (itself, or in a
            helper of your code) is refused before any cell runs, with or without
            ``set_values``: its cells would hold a value the cache cannot tell apart.
        order : {"grid", "spread"}, default "grid"
            The order cells are computed in: ``"grid"`` row by row; ``"spread"`` coarse
            sub-grids first (each parameter's ends, then its middle, then the quarters...),
            so that a sweep stopped half-way is already a low-resolution picture of the
            whole space.
        lazy : bool, optional
            Whether the array outputs in the returned Dataset are read from the cache file
            only when indexed (dask arrays chunked by whole cells when dask is installed,
            else xarray's lazily indexed arrays; ``.load()`` reads them). By default they
            are when the function's results are beyond the cache's ``memory_budget``
            (they never were all in memory); ``False`` loads them, ``True`` needs a cache.

        Returns
        -------
        xarray.Dataset
            Dims: the swept parameters plus any extra output dims. Variables: the outputs,
            ``<name>_status`` (0 not computed, 1 computed, 2 failed, 3 computed but
            returned None), ``<name>_seconds``,
            ``<name>_error`` and ``<name>_messages``. Not computed cells of float outputs
            read NaN.

        Examples
        --------
        >>> import numpy as np, xsweep as xs
        >>> ps = xs.ParameterSpace([
        ...     xs.Parameter("a", values=[1, 2]), xs.Parameter("b", values=[0.5, 1.5])
        ... ])
        >>> def stats(a, b):
        ...     return {"sum": a + b, "trace": np.full(3, a * b)}
        >>> ds = ps.sweep(stats, output_dims={"trace": ("t",)})
        >>> ds["trace"].dims
        ('a', 'b', 't')
        >>> float(ds["sum"].sel(a=2, b=1.5))
        3.5

        A function that reads parameters instead of taking them:

        >>> a = ps["a"]
        >>> def doubled():
        ...     return 2 * a.value
        >>> ps.sweep(doubled)["doubled"].dims
        ('a', 'b')
        """
        report, ds = self._sweep_cells(
            fn,
            params=params,
            output_dims=output_dims,
            force_recompute=force_recompute,
            errors=errors,
            retry_failed=retry_failed,
            executor=executor,
            workers=workers,
            chunksize=chunksize,
            progress=progress,
            on_change=on_change,
            version=version,
            cells=cells,
            part=part,
            name=name,
            set_values=set_values,
            depends_on=depends_on,
            order=order,
            lazy=lazy,
        )
        if report.failed:
            warnings.warn(
                f"{report.failed} of {report.total} cells of {report.key} failed and are "
                f"recorded as failed. List them with ps.failures({report.name}); the next "
                "sweep retries them.",
                SweepFailuresWarning,
                stacklevel=2,
            )
        return ds

    def _sweep_cells(
        self,
        fn: Callable[..., Any],
        *,
        params: Sequence[str] | None,
        output_dims: Mapping[str, Sequence[str]] | None,
        force_recompute: bool,
        errors: str,
        retry_failed: bool,
        executor: Any,
        workers: int | None,
        chunksize: int | None,
        progress: bool | None,
        on_change: str,
        version: str | None,
        cells: Mapping[str, Sequence[Any]] | None,
        part: tuple[int, int] | None,
        name: str | None,
        set_values: bool,
        depends_on: Sequence[str] | None,
        order: str,
        lazy: bool | None,
    ) -> tuple[SweptReport, xr.Dataset]:
        """:meth:`sweep`, without the warning about failed cells: what it did, and its
        Dataset (``ps.refine`` sums the reports of its rounds)."""
        check_sweep_options(
            errors=errors,
            force_recompute=force_recompute,
            retry_failed=retry_failed,
            progress=progress,
            chunksize=chunksize,
            version=version,
            params=params,
            cells=cells,
            on_change=on_change,
            order=order,
            set_values=set_values,
            lazy=lazy,
        )
        self._results.check_lazy(lazy)
        self._remember(fn, name=name, set_values=set_values, depends_on=depends_on, version=version)
        binding = self._binding(fn, computing=True)
        store = self._results.for_sweep(binding.key)
        plan = plan_cells(self._params, binding, store.grid, params, cells, part, order)
        pool, owned = resolve_executor(executor, workers)
        call, saved = self._callable(fn, binding)
        bar = Progress(binding.name) if progress_wanted(progress) else None
        counts = getattr(jobs.hooks, "counts", None)  # a background sweep's live counts
        if counts is not None:
            counts.bar, bar = bar, counts
        options = SweepOptions(  # built once, here: every layer below reads these
            output_dims=check_output_dims(output_dims),
            force_recompute=force_recompute,
            retry_failed=retry_failed,
            errors=errors,
            progress=bar,
            stop=getattr(jobs.hooks, "stop", None),
            on_change="recompute" if force_recompute else on_change,
            lazy=lazy,
            chunksize=chunksize,
        )
        try:
            report, ds = run_sweep(
                call,
                store,
                binding,
                plan,
                options,
                pool,
                on_interrupt=(lambda: stop_pool(pool)) if owned and pool is not None else None,
                when_locked=lambda: self._results.read_complete(store, binding, plan, options),
            )
        finally:
            for param, index in saved.items():
                param.move_to(index, callbacks=False, watchers=False)
            if bar is not None:
                bar.close()
            if owned and pool is not None:  # owned: made here
                pool.shutdown(wait=True, cancel_futures=True)
        swept = SweptReport(
            report, binding.key, binding.name, int(np.prod([len(s) for s in plan.selected]))
        )
        return swept, self._space_view(decode_times(ds), store, plan, params)

    def sweep_async(self, fn: Callable[..., Any], **options: Any) -> jobs.SweepJob:
        """Start :meth:`sweep` in the background; a :class:`~xsweep.running.jobs.SweepJob`.

        The notebook stays usable while it runs: look at cached cells with
        :meth:`run_process` or :meth:`explore`, watch ``job.counts()``, stop it with
        ``job.stop()`` (or :meth:`stop_sweep`); ``job.result()`` waits for the Dataset and
        raises what the sweep raised. Cells run in a thread of this process, or on the
        ``executor`` / ``workers`` given, as with :meth:`sweep`.

        Parameters
        ----------
        fn : callable
            As for :meth:`sweep`.
        **options
            Any option of :meth:`sweep` (``workers=``, ``executor=``, ``progress=``, ...).

        Returns
        -------
        SweepJob
            ``done()``, ``result(timeout=None)``, ``stop()``, ``stopped()``, ``counts()``.

        Notes
        -----
        One sweep at a time writes a cache file: another sweep of the same space's cache
        while one runs raises :class:`~xsweep.StoreLockedError` saying so. Functions with
        ``set_values=True`` move the parameters' values while they run.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=range(4))])
        >>> def square(a):
        ...     return a * a
        >>> job = ps.sweep_async(square, progress=False)
        >>> job.result(timeout=60)["square"].values.tolist()
        [0, 1, 4, 9]
        """
        return self._start_job(self.sweep, fn, options)

    def stop_sweep(self, wait: bool = True) -> None:
        """Stop this space's background sweeps (see :meth:`sweep_async`).

        Cells in flight finish and are recorded; with the cache on, the next sweep
        resumes with the missing cells.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.stop_sweep()  # nothing running: nothing to do
        """
        for job in self._jobs:
            job.stop(wait=False)
        if wait:
            for job in self._jobs:
                job.stop(wait=True)
        self._jobs = [job for job in self._jobs if not job.done()]

    def _space_view(
        self, ds: xr.Dataset, store: Store, plan: CellPlan, params: Sequence[str] | None
    ) -> xr.Dataset:
        """The store's Dataset at this space's values; held parameters as scalar coords."""
        index: dict[str, int | np.ndarray] = {}
        for d, sel in zip(plan.dims, plan.selected):
            if params is not None and d not in params:
                index[d] = int(sel[0])
            elif not store.grid.is_space(d):
                index[d] = store.grid.positions[d]
        if not index:
            return ds
        # The store's grid may have holes where this view has none: its own dtypes then
        view = ds.isel(index)
        for status in status_variables(view).values():
            view = view_dtypes(view, status)
        return view

