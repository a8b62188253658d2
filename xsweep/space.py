"""ParameterSpace: sweep(), run_process() and the cache switch. Orchestrates; owns no format."""

from __future__ import annotations

import inspect
import os
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from . import jobs
from .binding import Binding, Bindings
from .cells import CellPlan, describe_cell
from .errors import (
    ParameterError,
    StoreLockedError,
    StoreReadOnlyError,
    SweepError,
    SweepFailuresWarning,
)
from .execution import ValueSetter, run_sweep, write_cell
from .outputs.encodings import decode_times
from .parameters import Parameter
from .pools import resolve_executor, stop_pool
from .progress import Progress, progress_wanted
from .store import FLAG_MEANINGS, FLAG_VALUES, NOT_STORED, Grid, MemoryStore, NetCDFStore, Store
from .store.budget import parse_budget

#: The cache file used by ``enable_cache()`` without a path, in the working directory.
DEFAULT_CACHE_NAME = "xsweep_results.nc"
_ERRORS = ("record", "raise")


class ParameterSpace:
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

    def __init__(self, parameters: Iterable[Parameter]) -> None:
        params: dict[str, Parameter] = {}
        for p in parameters:
            if not isinstance(p, Parameter):
                raise ParameterError(
                    f"ParameterSpace takes Parameter objects; got {type(p).__name__} {p!r}. "
                    "Wrap it: xs.Parameter(name, values=[...])."
                )
            if p.name in params:
                raise ParameterError(
                    f"Two parameters are named {p.name!r}; names must be unique in a space."
                )
            params[p.name] = p
        if not params:
            raise ParameterError("A ParameterSpace needs at least one Parameter.")
        self._params = params
        self._store: NetCDFStore | None = None
        self._finalizer: weakref.finalize | None = None
        self._last: dict[str, Store] = {}
        self._functions = Bindings(params)  # how each swept function maps onto the space
        self._views: dict[str, Any] = {}
        self._jobs: list[jobs.SweepJob] = []

    # -- the grid -----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Parameter:
        try:
            return self._params[name]
        except KeyError:
            raise KeyError(
                f"No parameter named {name!r}; the space has {list(self._params)}."
            ) from None

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._params.values())

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __repr__(self) -> str:
        lines = [f"ParameterSpace({self.size} cells, cache={self.cache_path!r})"]
        lines += [f"  {p!r}" for p in self]
        return "\n".join(lines)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """The parameters, in order.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1]), xs.Parameter("b", values=[2])])
        >>> [p.name for p in ps.parameters]
        ['a', 'b']
        """
        return tuple(self._params.values())

    @property
    def dims(self) -> tuple[str, ...]:
        """The parameter names, in order.

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.ParameterSpace([xs.Parameter("a", values=[1, 2])]).dims
        ('a',)
        """
        return tuple(self._params)

    @property
    def shape(self) -> tuple[int, ...]:
        """The number of values of each parameter.

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.ParameterSpace([xs.Parameter("a", values=[1, 2])]).shape
        (2,)
        """
        return tuple(len(p) for p in self)

    @property
    def size(self) -> int:
        """The number of cells of the whole grid.

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.ParameterSpace([xs.Parameter("a", values=[1, 2]),
        ...                    xs.Parameter("b", values=["x", "y", "z"])]).size
        6
        """
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def coords(self) -> xr.Coordinates:
        """The parameters as xarray coordinates with ``units``, ``long_name``, ``description``.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("t", values=[0.0, 0.5], units="s")])
        >>> ps.coords["t"].attrs["units"]
        's'
        """
        return xr.Coordinates({p.name: xr.Variable(p.name, p.values, p.attrs) for p in self})

    def _grid(self) -> Grid:
        return Grid({p.name: (p.values, p.attrs) for p in self})

    # -- the cache ------------------------------------------------------------------------------
    @property
    def cache_path(self) -> str | None:
        """The cache file's absolute path, or None when caching is off.

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.ParameterSpace([xs.Parameter("a", values=[1])]).cache_path is None
        True
        """
        return self._store.path if self._store is not None else None

    def enable_cache(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fsync_interval: float | None = 1.0,
        computed_at: dict[str, Any] | None = None,
        snapshot_interval: float = 60.0,
        memory_budget: int | str | None = None,
    ) -> None:
        """Keep results in a NetCDF file, filled cell by cell and resumed after interruptions.

        Parameters
        ----------
        path : str or path-like, optional
            The NetCDF file; ``xsweep_results.nc`` in the working directory by default. An
            existing file is opened and checked: it must be an xsweep results file. Its grid
            may differ from the space's: values the space adds become new cells to compute,
            values it lacks stay in the file with their results.
        fsync_interval : float or None, default 1.0
            Seconds between flushes of finished cells to stable storage. A killed process
            (Ctrl-C, crash, SIGKILL) never loses a finished cell whatever this is; a power
            loss or OS crash loses at most this many seconds of cells. 0 flushes every cell
            (slow: the disk's flush latency per cell); None flushes only when the file is
            published (at the end of each sweep).
        computed_at : dict, optional
            For parameters added to the space after results were cached: the value at which
            those results were computed, e.g. ``{"damping": 0.0}``. They are then reused at
            that value; without it, a function that now takes the new parameter is an error.
        snapshot_interval : float, default 60
            During a long sweep the file is republished at least this often (in seconds) so
            that colleagues reading it see progress; at most 1/20 of the sweep's time goes to
            it on big files. (It is also published at the end of every sweep.) Needs
            ``fsync_interval`` to be set: the check rides on the periodic flush.

        Raises
        ------
        StoreError
            The file is not an xsweep results file, is unreadable, or holds another grid.

        Examples
        --------
        >>> import os, tempfile, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
        >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "results.nc"))
        >>> ds = ps.sweep(lambda a: a ** 2)
        >>> os.path.exists(ps.cache_path)
        True
        """
        if path is None:
            path = DEFAULT_CACHE_NAME
        elif not isinstance(path, (str, os.PathLike)):
            raise SweepError(
                f"enable_cache takes a file path (a str or pathlib.Path), not "
                f"{type(path).__name__} {path!r:.60}."
            )
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if os.path.isdir(path):
            raise SweepError(
                f"Cannot cache to {path}: it is a folder. Name a file in it, e.g. "
                f"enable_cache({os.path.join(path, 'results.nc')!r})."
            )
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise SweepError(
                f"Cannot cache to {path}: the folder {parent} does not exist. Create it first."
            )
        if fsync_interval is not None and not _is_seconds(fsync_interval, zero=True):
            raise SweepError(
                f"fsync_interval must be a number of seconds >= 0, or None; got "
                f"{fsync_interval!r:.60}."
            )
        if not _is_seconds(snapshot_interval, zero=False):
            raise SweepError(
                f"snapshot_interval must be a number of seconds > 0 (float('inf') for never); "
                f"got {snapshot_interval!r:.60}."
            )
        if computed_at is not None and not isinstance(computed_at, dict):
            raise SweepError(
                "computed_at must be a dict of parameter values, e.g. "
                f"computed_at={{'damping': 0.0}}; got {computed_at!r:.60}."
            )
        for name, value in (computed_at or {}).items():
            if name not in self._params:
                raise SweepError(
                    f"computed_at names {name!r}, which is not a parameter of the space; the "
                    f"space has {list(self._params)}."
                )
            try:
                self._params[name].index(value)
            except ParameterError as exc:
                raise SweepError(f"computed_at[{name!r}]: {exc}") from None
        try:
            budget = parse_budget(memory_budget)
        except ValueError as exc:
            raise SweepError(str(exc)) from None
        store = NetCDFStore(
            path,
            self._grid(),
            fsync_interval=fsync_interval,
            computed_at=computed_at,
            snapshot_interval=snapshot_interval,
            memory_budget=budget,
        )
        self.disable_cache()
        self._store = store
        self._finalizer = weakref.finalize(self, store.close)

    def disable_cache(self) -> None:
        """Stop caching; results already in the file stay there.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.disable_cache()
        >>> ps.cache_path is None
        True
        """
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._store = None

    def clear_cache(self, fn: Callable[..., Any] | None = None) -> None:
        """Forget cached results: of every function, or only of ``fn``.

        The file stays (with its grid) so that the next sweep refills it.

        Examples
        --------
        >>> import os, tempfile, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "results.nc"))
        >>> def square(a):
        ...     return a * a
        >>> _ = ps.sweep(square)
        >>> ps.clear_cache(square)
        >>> int((ps.sweep(square)["square_status"] == 1).sum())
        2
        """
        if self._store is None:
            raise SweepError(
                "There is no cache to clear: caching is off. Call ps.enable_cache(path) first."
            )
        self._store.clear(None if fn is None else self._binding(fn).key)

    def publish(self) -> None:
        """Write into the cache file the cells only its journal holds, to share it now.

        A sweep publishes the file at its end and at least every ``snapshot_interval``
        seconds; ``run_process`` results are journaled and reach the file when the cache is
        disabled (or the journal grows). ``xsweep publish FILE`` does the same from a shell.

        Examples
        --------
        >>> import os, tempfile, xarray as xr, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
        >>> def triple(a):
        ...     return 3 * a
        >>> ps.run_process(triple, a=2)
        6
        >>> ps.publish()
        >>> with xr.open_dataset(ps.cache_path) as shared:
        ...     int(shared["triple"].sel(a=2))
        6
        """
        if self._store is None:
            raise SweepError("No cache is enabled: ps.enable_cache(path) first.")
        self._store.publish()

    def compact_cache(self) -> dict[str, int]:
        """Delete from the cache file the parameter values this space no longer has.

        A space with fewer values than its file reuses the file and leaves the other values'
        results in it (nothing computed is discarded unless you ask). This is how you ask:
        the file keeps only this space's values. Returns how many values were dropped per
        parameter.

        Examples
        --------
        >>> import os, tempfile, xsweep as xs
        >>> path = os.path.join(tempfile.mkdtemp(), "results.nc")
        >>> wide = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
        >>> wide.enable_cache(path)
        >>> _ = wide.sweep(lambda a: a * 10)
        >>> wide.disable_cache()
        >>> narrow = xs.ParameterSpace([xs.Parameter("a", values=[2, 4])])
        >>> narrow.enable_cache(path)
        >>> narrow.compact_cache()
        {'a': 2}
        """
        if self._store is None:
            raise SweepError(
                "There is no cache to compact: caching is off. Call ps.enable_cache(path) first."
            )
        return self._store.compact()

    def failures(self, fn: Callable[..., Any]):
        """The failed cells of ``fn`` with their error messages, as a pandas DataFrame.

        Reads the cache when it is on, else the last sweep of ``fn`` in this space.

        Examples
        --------
        >>> import warnings, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2])])
        >>> def inverse(a):
        ...     return 1 / a
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds = ps.sweep(inverse)
        >>> ps.failures(inverse)
           a                                  error
        0  0  ZeroDivisionError: division by zero
        """
        import pandas as pd

        binding = self._binding(fn)
        store = self._store if self._store is not None else self._last.get(binding.key)
        rows = store.failures(binding.key) if store is not None else []
        dims = next((f.dims for f in store.functions() if f.key == binding.key), binding.dims)
        return pd.DataFrame(
            [{k: v for k, v in row.items() if k != "function"} for row in rows],
            columns=[*dims, "error"],
        )

    # -- binding functions ----------------------------------------------------------------------
    def _binding(self, fn: Callable[..., Any]) -> Binding:
        """How ``fn`` maps onto the space, with its fingerprint as of now."""
        return self._functions.of(fn)

    def _remember(self, fn, **options: Any) -> None:
        """Record per-function options of a sweep; later calls (run_process) use them too."""
        self._functions.remember(fn, **options)

    def _plan(
        self,
        binding: Binding,
        store: Store,
        params: Sequence[str] | None,
        cells: dict[str, Sequence[Any]] | None = None,
        part: tuple[int, int] | None = None,
        order: str = "grid",
    ) -> CellPlan:
        """Which cells to compute, in the store's indices."""
        dims = binding.dims
        if isinstance(params, str):
            params = [params]
        for name in list(params or ()) + list(cells or ()):
            if name not in self._params:
                raise SweepError(
                    f"{name!r} is not a parameter of the space; the space has {list(self._params)}."
                )
            if name not in dims:
                raise SweepError(
                    f"{name!r} is named, but {binding.key} does not take it; it takes {list(dims)}."
                )
        swept = set(dims) if params is None else set(params)
        chosen = {}
        for d in dims:
            p = self._params[d]
            if cells is not None and d in cells:
                wanted = cells[d]
                wanted = [wanted] if isinstance(wanted, (str, int, float, bool)) else wanted
                chosen[d] = np.array(sorted({p.index(v) for v in wanted}), dtype=np.int64)
            elif d in swept:
                chosen[d] = np.arange(len(p))
            else:
                chosen[d] = np.array([p._index])
        if part is not None:
            if (
                not isinstance(part, tuple)
                or len(part) != 2
                or not all(isinstance(x, int) for x in part)
                or not 0 <= part[0] < part[1]
            ):
                raise SweepError(
                    f"part must be (k, n) with 0 <= k < n, e.g. part=(job_index, n_jobs); got "
                    f"{part!r}."
                )
        selected = [store.grid.positions[d][chosen[d]] for d in dims]
        values = [store.grid[d].values for d in dims]
        return CellPlan(dims, values, selected, binding.positional, part, order)

    # -- sweeping -------------------------------------------------------------------------------
    def sweep(
        self,
        fn: Callable[..., Any],
        *,
        params: Sequence[str] | None = None,
        output_dims: dict[str, Sequence[str]] | None = None,
        force_recompute: bool = False,
        errors: str = "record",
        retry_failed: bool = True,
        executor: Any = None,
        workers: int | None = None,
        chunksize: int | None = None,
        progress: bool | None = None,
        on_change: str = "raise",
        version: str | None = None,
        cells: dict[str, Sequence[Any]] | None = None,
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
            dims of its results and are set per cell as with ``set_values``.
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
        if errors not in _ERRORS:
            raise SweepError(f"errors={errors!r} is not one of {list(_ERRORS)}.")
        _check_sweep_options(
            force_recompute=force_recompute,
            retry_failed=retry_failed,
            progress=progress,
            chunksize=chunksize,
            version=version,
            params=params,
            cells=cells,
        )
        if on_change not in ("raise", "keep"):
            raise SweepError(f"on_change={on_change!r} is not one of ['raise', 'keep'].")
        if order not in ("grid", "spread"):
            raise SweepError(f"order={order!r:.60} is not one of ['grid', 'spread'].")
        if not isinstance(set_values, (bool, np.bool_)):
            raise SweepError(f"set_values must be True or False, not {set_values!r:.60}.")
        if lazy not in (None, True, False):
            raise SweepError(f"lazy must be True, False or None, not {lazy!r:.60}.")
        if lazy and self._store is None:
            raise SweepError(
                "lazy=True reads results from a cache file, and this space has none: call "
                "ps.enable_cache('results.nc') first, or leave lazy at its default."
            )
        self._remember(fn, name=name, set_values=set_values, depends_on=depends_on, version=version)
        binding = self._binding(fn)
        out_dims = _check_output_dims(output_dims)
        store = self._store if self._store is not None else MemoryStore(self._grid())
        if not store.persistent:  # ps.failures(fn) reads it, even after an interruption
            self._last[binding.key] = store
        plan = self._plan(binding, store, params, cells, part, order)
        pool, owned = resolve_executor(executor, workers)
        call, saved = self._callable(fn, binding)
        bar = Progress(binding.name) if progress_wanted(progress) else None
        counts = getattr(jobs.hooks, "counts", None)  # a background sweep's live counts
        if counts is not None:
            counts.bar, bar = bar, counts
        try:
            report, ds = run_sweep(
                call,
                store,
                binding.key,
                binding.name,
                binding.dims,
                binding.fingerprint,
                plan,
                pool,
                on_change="recompute" if force_recompute else on_change,
                output_dims=out_dims,
                force_recompute=force_recompute,
                retry_failed=retry_failed,
                errors=errors,
                progress=bar,
                chunksize=chunksize,
                on_interrupt=(lambda: stop_pool(pool)) if owned else None,
                stop=getattr(jobs.hooks, "stop", None),
                lazy=lazy,
            )
        finally:
            for param, index in saved.items():
                param._set_index(index, fire=False, notify=False)
            if bar is not None:
                bar.close()
            if owned:
                pool.shutdown(wait=True, cancel_futures=True)
        if report.failed:
            total = int(np.prod([len(s) for s in plan.selected]))
            warnings.warn(
                f"{report.failed} of {total} cells of {binding.key} failed and are recorded "
                f"as failed. List them with ps.failures({binding.name}); the next sweep "
                "retries them.",
                SweepFailuresWarning,
                stacklevel=2,
            )
        return self._space_view(decode_times(ds), store, plan, params)

    def sweep_async(self, fn: Callable[..., Any], **options: Any) -> jobs.SweepJob:
        """Start :meth:`sweep` in the background and return a :class:`~xsweep.jobs.SweepJob`.

        The notebook stays usable while it runs: look at cached cells with
        :meth:`run_process` or :meth:`explore`, watch ``job.counts``, stop it with
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
            ``done()``, ``result(timeout=None)``, ``stop()``, ``counts``.

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
        allowed = set(inspect.signature(self.sweep).parameters) - {"fn"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise SweepError(
                f"sweep_async got {unknown}, which sweep does not take; its options are "
                f"{sorted(allowed)}."
            )
        running = [job for job in self._jobs if not job.done()]
        self._jobs = running
        if running and self._store is not None:
            raise StoreLockedError(
                f"A background sweep into {self._store.path} is running ({running[0]!r}). "
                "Wait for it with job.result(), or stop it with job.stop() or "
                "ps.stop_sweep(), then try again."
            )
        name = options.get("name") or getattr(fn, "__name__", "sweep")
        job = jobs.SweepJob(name, lambda: self.sweep(fn, **options))
        self._jobs.append(job)
        return job

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

    def _callable(self, fn: Callable[..., Any], binding: Binding):
        """What the execution layer calls per cell, and the values to restore afterwards."""
        if not binding.sets_values:
            return fn, {}
        params = [self._params[d] for d in binding.dims]
        return ValueSetter(fn, params, binding.takes), {p: p._index for p in params}

    def _space_view(self, ds: xr.Dataset, store: Store, plan: CellPlan, params) -> xr.Dataset:
        """The store's Dataset at this space's values; held parameters as scalar coords."""
        index = {}
        for d, sel in zip(plan.dims, plan.selected):
            if params is not None and d not in params:
                index[d] = int(sel[0])
            elif not store.grid.is_space(d):
                index[d] = store.grid.positions[d]
        return ds.isel(index) if index else ds

    # -- notebooks ------------------------------------------------------------------------------
    def widgets(self):
        """A box of notebook controls, one per parameter, synced with their ``.value``.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2]),
        ...                         xs.Parameter("m", values=["x", "y"])])
        >>> [type(c).__name__ for c in ps.widgets().children]
        ['SelectionSlider', 'ToggleButtons']
        """
        from .widgets import space_widgets

        return space_widgets(self)

    def explore(self, fn: Callable[..., Any], *, background: bool = True):
        """Controls for ``fn``'s parameters and a live view of ``ps.run_process(fn)``.

        Images show as images, Matplotlib figures as figures, 1-D and 2-D arrays as plots,
        scalars and dicts as text. Cached cells show at once without calling ``fn``; other
        cells are computed (and cached when the cache is on). With ``background=True`` the
        view computes in a thread and skips stale slider positions.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
        >>> view = ps.explore(lambda a: {"square": a * a}, background=False)
        >>> view.controls["a"].value = 3
        >>> "9" in view.text.value
        True
        """
        from .widgets import SpaceExplorer

        # Re-running a notebook cell replaces its view rather than leaving the old one live.
        key = self._binding(fn).key
        old = self._views.pop(key, None)
        if old is not None:
            old.close()
        view = self._views[key] = SpaceExplorer(self, fn, background=background)
        return view

    def status(self, fn: Callable[..., Any]) -> xr.DataArray:
        """Each cell's status for ``fn`` over the space's values, read without waiting.

        Codes: 0 not computed, 1 computed, 2 failed, 3 computed without a value (the
        function returned None); a cell of another version of ``fn``'s code reads 0. Reads
        no output, takes no lock: safe and cheap while a sweep (in the background, or in
        another thread) fills the grid. The cache when it is on, else ``fn``'s last sweep.

        Examples
        --------
        >>> import warnings, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
        >>> def inverse(a):
        ...     return 1 / (a - 2)
        >>> ps.status(inverse).values.tolist()
        [0, 0, 0, 0]
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     _ = ps.sweep(inverse, cells={"a": [1, 2, 3]})
        >>> ps.status(inverse).values.tolist()
        [1, 2, 1, 0]
        """
        binding = self._binding(fn)
        return xr.DataArray(
            self._peek(binding, None).status,
            dims=binding.dims,
            coords={d: self._params[d].values for d in binding.dims},
            name=f"{binding.name}_status",
            attrs={"flag_values": list(FLAG_VALUES), "flag_meanings": FLAG_MEANINGS},
        )

    def seconds(self, fn: Callable[..., Any]) -> xr.DataArray:
        """How long each of ``fn``'s cells took, in seconds (NaN: not computed).

        Timings are not in the Datasets sweeps return (they would make two runs' results
        differ); they are here, and in the cache file as ``<name>_seconds``. Read without
        waiting for a running sweep, like :meth:`status`.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> def square(a):
        ...     return a * a
        >>> _ = ps.sweep(square, cells={"a": [2]})
        >>> seconds = ps.seconds(square)
        >>> bool(seconds.isnull().sel(a=1)), bool(seconds.sel(a=2) >= 0)
        (True, True)
        """
        binding = self._binding(fn)
        seen = self._peek(binding, None)
        return xr.DataArray(
            seen.seconds,
            dims=binding.dims,
            coords={d: self._params[d].values for d in binding.dims},
            name=f"{binding.name}_seconds",
            attrs={"long_name": f"time taken to compute each cell of {binding.key}", "units": "s"},
        )

    def _peek(self, binding: Binding, output: str | None) -> _Seen:
        """Statuses (and one scalar output) over the space's own values, live."""
        shape = tuple(len(self._params[d].values) for d in binding.dims)
        nothing = _Seen(
            np.zeros(shape, np.int8), None, lambda indices: "", (), np.full(shape, np.nan)
        )
        store = self._store if self._store is not None else self._last.get(binding.key)
        found = None
        if store is not None:
            found = store.peek(binding.key, binding.dims, binding.fingerprint, output)
        if found is None:
            return nothing
        try:
            where = np.ix_(*[store.grid.positions[d] for d in binding.dims])
            values = found.values[where] if found.values is not None else None
            status, seconds = found.status[where], found.seconds[where]
        except (IndexError, KeyError, ValueError):  # the grid changed under us
            return nothing._replace(outputs=found.outputs)

        def message_of(indices: dict[str, int]) -> str:
            return found.errors.get(store.grid.flat_index(binding.dims, indices), "")

        return _Seen(status, values, message_of, found.outputs, seconds)

    def grid_view(
        self,
        fn: Callable[..., Any],
        *,
        x: str | None = None,
        y: str | None = None,
        facet: str | None = None,
        show: str = "status",
        interval: float | None = 0.5,
    ):
        """A live map of ``fn``'s whole grid: every cell's status (or a scalar output).

        Cells are coloured by status (not computed, computed, failed, no value) or, with
        ``show="name"``, by that numeric scalar output. The map follows a sweep as it fills
        the grid (``sweep_async`` or ``sweep`` in another thread; it reads without waiting
        for it). Sliders under it choose a cell: its output (an image, a plot, a value) or
        its failure message shows below. Needs ipywidgets.

        Parameters
        ----------
        fn : callable
            As for :meth:`sweep`.
        x, y, facet : str, optional
            The parameters across, down and in side-by-side panels; by default ``fn``'s last,
            second-to-last and third-to-last. Its other parameters are held at their current
            values (controls above the map move them).
        show : str, default "status"
            ``"status"``, or the name of a numeric scalar output to colour by (viridis).
        interval : float or None, default 0.5
            Seconds between looks at the results; None: only when :meth:`GridView.update`
            is called.

        Returns
        -------
        xsweep.gridview.GridView

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2]),
        ...                         xs.Parameter("b", values=[1, 2, 3])])
        >>> view = ps.grid_view(lambda a, b: a * b, interval=None)
        >>> view.x, view.y
        ('b', 'a')
        >>> view.close()
        """
        from .gridview import GridView

        # Re-running a notebook cell replaces its view (once the new one is made).
        key = ("grid", self._binding(fn).key)
        view = GridView(self, fn, x=x, y=y, facet=facet, show=show, interval=interval)
        old = self._views.pop(key, None)
        if old is not None:
            old.close()
        self._views[key] = view
        return view

    def is_computed(self, fn: Callable[..., Any], **values: Any) -> bool:
        """Whether the cache holds ``fn``'s cell at these values (default: current values).

        True exactly when ``run_process`` would answer from the cache: a cell of another
        version of ``fn``'s code (its fingerprint changed) does not count.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
        >>> ps.is_computed(lambda a: a)  # no cache enabled
        False
        """
        store = self._store
        if store is None:
            return False
        binding = self._binding(fn)
        indices = {name: self[name].index(v) for name, v in values.items()}
        return store.contains(
            binding.key, binding.dims, binding.fingerprint, self._cell_indices(binding, indices)
        )

    # -- one cell -------------------------------------------------------------------------------
    def run_process(
        self,
        fn: Callable[..., Any],
        *,
        force_recompute: bool = False,
        set_values: bool = False,
        **overrides: Any,
    ) -> Any:
        """Return ``fn`` at the parameters' current values, from the cache when it is there.

        Parameters
        ----------
        fn : callable
            As for :meth:`sweep`.
        force_recompute : bool, default False
            Call ``fn`` even when the cell is cached, and store the new result.
        set_values : bool, default False
            ``fn`` reads parameters' ``.value`` instead of taking them as arguments (as
            with ``sweep(fn, set_values=True)``); a function that takes no parameter at all
            is always run this way, over the whole space.
        **overrides
            Parameter values to set first, e.g. ``length=3`` (checked against the grid).

        Returns
        -------
        What ``fn`` returns (an ndarray stays an ndarray, a DataArray a DataArray), read from
        the cache with ``.sel()`` when the cell is computed there.

        Notes
        -----
        A cached cell is returned without calling ``fn`` and without firing parameter
        callbacks (``overrides`` then set the values silently). Otherwise the overrides are
        set as ``p.value = ...`` does, firing callbacks, ``fn`` is called, and with a cache
        the result is written back.

        Examples
        --------
        >>> import xsweep as xs
        >>> length = xs.Parameter("length", values=[1, 2, 3])
        >>> ps = xs.ParameterSpace([length])
        >>> def double(length):
        ...     return 2 * length
        >>> length.value = 3
        >>> ps.run_process(double)
        6
        >>> ps.run_process(double, length=2)
        4
        >>> length.value
        2
        """
        if set_values:
            self._remember(fn, set_values=True)
        binding = self._binding(fn)
        indices = {}
        for name, value in overrides.items():
            if name not in self._params:
                raise SweepError(
                    f"run_process got {name}={value!r}, but {name!r} is not a parameter; the "
                    f"space has {list(self._params)}."
                )
            indices[name] = self._params[name].index(value)
        store = self._store
        if store is not None and not force_recompute:
            cached = self._cached_cell(store, binding, indices)
            if cached is not NOT_STORED:
                for name, i in indices.items():
                    self._params[name]._set_index(i, fire=False)
                return cached
        for name, i in indices.items():
            self._params[name]._set_index(i, fire=True)
        if store is None:
            return fn(**{d: self._params[d].value for d in binding.takes})
        return self._compute_cell(fn, store, binding, indices, force_recompute)

    def cell(self, fn: Callable[..., Any], **values: Any) -> Cell:
        """``fn``'s cell at ``values`` (default: current values), and whether it was cached.

        Like :meth:`run_process`, but it leaves the parameters' values alone and fires no
        callback: views that compute in the background must never move the controls.

        Returns
        -------
        Cell
            ``(value, cached)``: what ``fn`` returns there, and True when it came from the
            cache without calling ``fn``.

        Examples
        --------
        >>> import xsweep as xs
        >>> a = xs.Parameter("a", values=[1, 2, 3])
        >>> ps = xs.ParameterSpace([a])
        >>> ps.cell(lambda a: 10 * a, a=3), a.value
        (Cell(value=30, cached=False), 1)
        """
        binding = self._binding(fn)
        for name in values:
            if name not in self._params:
                raise SweepError(
                    f"cell got {name}={values[name]!r:.60}, but {name!r} is not a parameter; "
                    f"the space has {list(self._params)}."
                )
        indices = {d: self._params[d].index(values[d]) for d in binding.dims if d in values}
        store = self._store
        if store is None:
            return Cell(self._call_at(fn, binding, indices), False)
        cached = self._cached_cell(store, binding, indices)
        if cached is not NOT_STORED:
            return Cell(cached, True)
        return Cell(self._compute_cell(fn, store, binding, indices, False), False)

    def parameters_of(self, fn: Callable[..., Any]) -> tuple[str, ...]:
        """The parameters ``fn``'s results are stored over, in dim order.

        Examples
        --------
        >>> import xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1]), xs.Parameter("b", values=[2])])
        >>> ps.parameters_of(lambda b: b)
        ('b',)
        """
        return self._binding(fn).dims

    def _call_at(self, fn, binding: Binding, indices: dict[str, int]) -> Any:
        """Call ``fn`` at the cell ``indices`` (else current values), as a sweep would."""
        args = [
            self._params[d].values[indices.get(d, self._params[d]._index)].item()
            for d in binding.dims
        ]
        if binding.sets_values:
            call, saved = self._callable(fn, binding)
            try:
                return call(*args)
            finally:
                for param, index in saved.items():
                    param._set_index(index, fire=False, notify=False)
        return fn(**dict(zip(binding.dims, args)))

    def _compute_cell(self, fn, store, binding, indices, force_recompute) -> Any:
        cell = self._cell_indices(binding, indices)
        args = tuple(self._params[d].values[cell[d]].item() for d in binding.dims)
        t0 = time.perf_counter()
        result = self._call_at(fn, binding, indices)
        seconds = time.perf_counter() - t0
        try:
            write_cell(
                store,
                binding.key,
                binding.name,
                binding.dims,
                binding.fingerprint,
                cell,
                args,
                result,
                seconds,
                force_recompute,
            )
        except (StoreLockedError, StoreReadOnlyError) as exc:
            warnings.warn(
                f"The result of {binding.name}({describe_cell(binding.dims, args)}) was "
                f"computed but not cached: {exc}",
                stacklevel=3,
            )
        return result

    def _cell_indices(self, binding: Binding, indices: dict[str, int]) -> dict[str, int]:
        """The space's index of each of ``fn``'s parameters: ``indices``, else the current."""
        return {d: indices.get(d, self._params[d]._index) for d in binding.dims}

    def _cached_cell(self, store: Store, binding: Binding, indices: dict[str, int]) -> Any:
        return store.lookup(
            binding.key, binding.dims, binding.fingerprint, self._cell_indices(binding, indices)
        )


class _Seen(NamedTuple):
    """A live look at a function's cells over the space's values (``ParameterSpace._peek``)."""

    status: np.ndarray
    values: np.ndarray | None
    message_of: Callable[[dict[str, int]], str]
    outputs: tuple[str, ...]
    seconds: np.ndarray


class Cell(NamedTuple):
    """One cell of a function: its value, and whether it came from the cache."""

    value: Any
    cached: bool


def _is_seconds(value: Any, *, zero: bool) -> bool:
    """Whether ``value`` is a real number of seconds (> 0, or >= 0 with ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    if value != value:  # NaN
        return False
    return value >= 0 if zero else value > 0


def _check_sweep_options(**options: Any) -> None:
    """Refuse bad sweep arguments before anything runs or is written, naming them."""
    for name in ("force_recompute", "retry_failed"):
        if not isinstance(options[name], (bool, np.bool_)):
            raise SweepError(f"{name} must be True or False, not {options[name]!r:.60}.")
    progress = options["progress"]
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise SweepError(f"progress must be True, False or None (automatic), not {progress!r:.60}.")
    chunksize = options["chunksize"]
    if chunksize is not None and (
        isinstance(chunksize, bool) or not isinstance(chunksize, (int, np.integer)) or chunksize < 1
    ):
        raise SweepError(f"chunksize must be a whole number >= 1 or None, not {chunksize!r:.60}.")
    version = options["version"]
    if version is not None and not isinstance(version, str):
        raise SweepError(f"version must be a str label such as '2', not {version!r:.60}.")
    params = options["params"]
    if params is not None and not isinstance(params, str):
        if not isinstance(params, (list, tuple)) or not all(isinstance(p, str) for p in params):
            raise SweepError(
                f"params must be a list of parameter names, e.g. params=['length'], not "
                f"{params!r:.60}."
            )
    cells = options["cells"]
    if cells is not None and not isinstance(cells, dict):
        raise SweepError(
            f"cells must be a dict of parameter values, e.g. cells={{'length': [1, 2]}}, not "
            f"{cells!r:.60}."
        )


def _check_output_dims(output_dims: dict[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    if output_dims is None:
        return {}
    if not isinstance(output_dims, dict):
        raise SweepError(
            "output_dims must be a dict mapping output names to dim names, e.g. "
            "{'image': ('y', 'x', 'rgb')}; got " + repr(output_dims)
        )
    out = {}
    for name, dims in output_dims.items():
        dims = (dims,) if isinstance(dims, str) else tuple(dims)
        if len(set(dims)) != len(dims) or not all(isinstance(d, str) and d for d in dims):
            raise SweepError(f"output_dims[{name!r}] = {dims!r} must be distinct non-empty names.")
        out[name] = dims
    return out
