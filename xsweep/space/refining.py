"""ParameterSpace's adaptive refinement: refine() and refine_async().

A thin layer over :mod:`xsweep.refining`: it checks the options, picks the parameters to
refine, adopts the values an interrupted refinement left in the cache file, and gives the
loop of rounds (:func:`xsweep.refining.rounds.run_rounds`) its two verbs: sweep the grid
as it is now (the ordinary sweep: cache, executors, failures, ``order=``, stops), and add
values to parameters (the space's parameters and its store grow together, under the lock
that views and ``run_process`` take to turn values into cells).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ParameterError, SweepError, SweepFailuresWarning
from ..functions.binding import Binding
from ..refining.goal import RefineGoal, RoundReport, check_goal
from ..refining.observed import Observed
from ..refining.rounds import run_rounds
from ..running import jobs
from ..running.pools import executor_workers, resolve_executor, stop_pool
from .core import SpaceCore
from .plan import check_sweep_options


class RefineMethods(SpaceCore):
    """Adaptive refinement of :class:`~xsweep.space.ParameterSpace` (a mixin of it)."""

    def refine(
        self,
        fn: Callable[..., Any],
        *,
        along: Sequence[str] | str | None = None,
        output: str | None = None,
        reduce: Callable[[np.ndarray], float] | None = None,
        loss: str | Callable[[np.ndarray, np.ndarray], Any] = "curvature",
        tolerance: float | None = None,
        max_cells: int | None = None,
        max_seconds: float | None = None,
        per_round: int | None = None,
        on_round: Callable[[RoundReport], Any] | None = None,
        params: Sequence[str] | None = None,
        output_dims: dict[str, Sequence[str]] | None = None,
        errors: str = "record",
        retry_failed: bool = True,
        executor: Any = None,
        workers: int | None = None,
        chunksize: int | None = None,
        progress: bool | None = False,
        on_change: str = "raise",
        version: str | None = None,
        name: str | None = None,
        set_values: bool = False,
        depends_on: Sequence[str] | None = None,
        order: str = "grid",
        lazy: bool | None = None,
    ) -> xr.Dataset:
        """Sweep ``fn``, then add values of continuous parameters where its output changes.

        The grid is swept first (only its missing cells, as :meth:`sweep` does). Then, round
        after round, each interval between neighbouring values of the refined parameters
        gets a loss (how much the output changes across it, over every combination of the
        other parameters), weighed by the interval's width and by the cells a new value
        costs (a whole slab: the product of the other parameters' numbers of values); the
        worst intervals are split at their midpoints, and only the new cells are swept.
        It stops at the first goal met: ``max_cells``, ``max_seconds`` or ``tolerance``.
        The refined parameters keep the values added (``p.values``, sorted), and so does
        the cache file, with the round that added each one (``<p>_refinement_round``). See
        docs/refining.md.

        Parameters
        ----------
        fn : callable
            As for :meth:`sweep`.
        along : str or list of str, optional
            The parameters to refine: continuous ones (declared with ``bounds=``) that
            ``fn`` is swept over. By default every such parameter. Discrete parameters are
            swept and never refined.
        output : str, optional
            The output that drives refinement; needed when ``fn`` returns several.
        reduce : callable, optional
            ``reduce(value) -> float``: turns each cell's output (a numpy array: an image,
            a field) into the number refinement judges, e.g. ``lambda img: img.mean()``.
            Called once per computed cell, in this process. Needed for an array output.
        loss : {"curvature", "change"} or callable, default "curvature"
            How bad an interval is. ``"curvature"``: how far its ends stray from the
            straight line through their neighbours (the error linear interpolation would
            make there: straight stretches cost nothing); ``"change"``: how much the output
            changes across it, ``|y[i+1] - y[i]|`` (spends cells on steep straight stretches
            too). A callable ``loss(x, y)`` gets ``x`` (the ``n`` sorted values of one
            refined parameter, float64) and ``y`` (float64, ``(lines, n)``: the output along
            ``x`` for each combination of the other swept parameters, NaN where a cell has
            no value) and returns one loss >= 0 per interval, ``(n - 1,)`` or
            ``(lines, n - 1)`` (then the largest over the lines counts); NaN counts as 0.
            The built-in losses skip cells without a value (failed, not computed): an
            interval is judged between the nearest cells that have one.
        tolerance : float, optional
            Stop when no interval's *weighted* loss (its loss times its width as a share of
            the parameter's bounds, in the output's units) is above this.
        max_cells : int, optional
            The most cells the grid may grow to (all of it, cached cells included, so a
            refinement resumed after an interruption reaches the same grid). A slab that
            would not fit is passed over for a cheaper one.
        max_seconds : float, optional
            Wall time of this call. A round running when it passes stops as a stopped sweep
            does (cells in flight finish; its other new cells stay not computed, and the
            next refinement computes them first).
        per_round : int, optional
            Values added per round (over all refined parameters). By default, the intervals
            of highest priority that hold half the total weighted loss (and, on an
            executor, enough new cells for all its workers).
        on_round : callable, optional
            Called after each round with a :class:`~xsweep.refining.goal.RoundReport`: the
            round, the values it added, the grid's cells, the cells computed and failed,
            the worst weighted loss left, seconds, and why refinement stops (or None).
        params, output_dims, errors, retry_failed, executor, workers, chunksize, on_change, \
version, name, set_values, depends_on, order, lazy
            As for :meth:`sweep`, for every round. ``retry_failed`` applies to the first
            sweep; later rounds never retry failed cells. ``workers=`` starts one process
            pool for the whole refinement.
        progress : bool, optional
            A progress bar per round; off by default (rounds are many and short).

        Returns
        -------
        xarray.Dataset
            As :meth:`sweep` returns, over the refined grid: sorted coordinates, with the
            coordinate ``<p>_refinement_round`` of each continuous parameter (0 for declared
            values, ``k`` for those round ``k`` added).

        Raises
        ------
        SweepError
            Without a goal, for a parameter that cannot be refined, an output that is not
            one number per cell (give ``reduce=``), a loss that returns something else.

        Examples
        --------
        >>> import numpy as np, xsweep as xs
        >>> x = xs.Parameter("x", values=np.linspace(0, 1, 5), bounds=(0.0, 1.0))
        >>> ps = xs.ParameterSpace([x])
        >>> def peak(x):
        ...     return x + 0.01**2 / (0.01**2 + (x - 0.3) ** 2)
        >>> ds = ps.refine(peak, max_cells=30)
        >>> ds.sizes["x"], bool(ds.indexes["x"].is_monotonic_increasing)
        (30, True)
        >>> int(((ds.x > 0.25) & (ds.x < 0.35)).sum())  # near the peak (uniform: 3 of 30)
        18
        >>> ds["x_refinement_round"].values[:5].tolist()  # 0: declared, k: added by round k
        [0, 1, 2, 5, 9]
        >>> x.values.size  # the parameter keeps the values refinement added
        30
        """
        goal = check_goal(
            output=output,
            reduce=reduce,
            loss=loss,
            tolerance=tolerance,
            max_cells=max_cells,
            max_seconds=max_seconds,
            per_round=per_round,
            on_round=on_round,
        )
        check_sweep_options(
            errors=errors,
            retry_failed=retry_failed,
            progress=progress,
            chunksize=chunksize,
            version=version,
            params=params,
            on_change=on_change,
            order=order,
            set_values=set_values,
            lazy=lazy,
        )
        self._results.check_lazy(lazy)
        self._remember(fn, name=name, set_values=set_values, depends_on=depends_on, version=version)
        binding = self._binding(fn, computing=True)
        refined = self._refined(binding, along, params)
        if not self._refining.acquire(blocking=False):
            raise SweepError(
                "A refinement of this space is running (ps.refine_async?): one at a time, "
                "since it adds values to the space's parameters. Wait for it with "
                "job.result(), or stop it with job.stop(), then try again."
            )
        pool, owned = None, False
        try:
            pool, owned = resolve_executor(executor, workers)
            ds, failed = self._refine_rounds(
                fn,
                binding,
                goal,
                refined,
                pool,
                retry_failed,
                dict(
                    params=params,
                    output_dims=output_dims,
                    force_recompute=False,
                    errors=errors,
                    executor=pool,
                    workers=None,
                    chunksize=chunksize,
                    progress=progress,
                    on_change=on_change,
                    version=version,
                    part=None,
                    name=name,
                    set_values=set_values,
                    depends_on=depends_on,
                    order=order,
                    lazy=lazy,
                ),
            )
        except KeyboardInterrupt:
            if owned and pool is not None:  # owned: made here
                stop_pool(pool)
            raise
        finally:
            self._refining.release()
            if owned and pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if failed:
            warnings.warn(
                f"{failed} cells of {binding.key} failed during the refinement and are "
                f"recorded as failed; the losses skipped them. List them with "
                f"ps.failures({binding.name}).",
                SweepFailuresWarning,
                stacklevel=2,
            )
        return ds

    def refine_async(self, fn: Callable[..., Any], **options: Any) -> jobs.SweepJob:
        """Start :meth:`refine` in the background; a :class:`~xsweep.running.jobs.SweepJob`.

        As :meth:`sweep_async`: the notebook stays free (a :meth:`grid_view` shows the grid
        densifying), ``job.counts()`` follows the current round's sweep, ``job.stop()``
        stops it (cells in flight finish; with a cache the next ``ps.refine`` goes on from
        there) and ``job.result()`` gives the Dataset.

        Parameters
        ----------
        fn : callable
            As for :meth:`refine`.
        **options
            Any option of :meth:`refine`.

        Returns
        -------
        SweepJob

        Examples
        --------
        >>> import numpy as np, xsweep as xs
        >>> ps = xs.ParameterSpace([xs.Parameter("x", values=[0.0, 1.0], bounds=(0.0, 1.0))])
        >>> def root(x):
        ...     return np.sqrt(x)
        >>> job = ps.refine_async(root, max_cells=9)
        >>> job.result(timeout=60).sizes["x"]
        9
        """
        return self._start_job(self.refine, fn, options)

    # -- helpers ------------------------------------------------------------------------------
    def _refine_rounds(
        self,
        fn: Callable[..., Any],
        binding: Binding,
        goal: RefineGoal,
        refined: tuple[str, ...],
        pool: Any,
        retry_failed: bool,
        options: dict[str, Any],
    ) -> tuple[xr.Dataset, int]:
        """The rounds of :meth:`refine`, its options checked: the Dataset and failed cells."""
        rounds = SpaceRounds(self, fn, binding, retry_failed, options)
        spans = {}
        for p in refined:
            bounds = self._params[p].bounds
            assert bounds is not None  # _refined refused a parameter without bounds
            low, high = bounds
            spans[p] = float(high - low)
        seconds = goal.max_seconds
        deadline = time.monotonic() + seconds if seconds is not None else math.inf
        with self._results.keeping(binding.key), jobs.stop_at(deadline) as stop:
            self._adopt(binding, refined)
            return run_rounds(
                goal,
                Observed(goal.output, goal.reduce, binding.name),
                refined,
                spans,
                rounds.sweep,
                rounds.grow,
                stopped=stop.stopped,
                deadline=deadline,
                min_cells=executor_workers(pool) if pool is not None else 1,
            )

    def _refined(
        self, binding: Binding, along: Sequence[str] | str | None, params: Any
    ) -> tuple[str, ...]:
        """The parameters to refine, checked: continuous, and swept over by ``fn``."""
        named = () if params is None else [params] if isinstance(params, str) else list(params)
        swept = [d for d in binding.dims if params is None or d in named]
        if along is None:
            chosen = [d for d in swept if self._params[d].bounds is not None]
            if not chosen:
                raise SweepError(
                    f"{binding.key} is swept over no continuous parameter, so there is nothing "
                    f"to refine (it is swept over {swept}). Declare one with bounds, e.g. "
                    "xs.Parameter('x', values=np.linspace(0, 1, 5), bounds=(0.0, 1.0))."
                )
            return tuple(chosen)
        names = [along] if isinstance(along, str) else list(along)
        if not names or not all(isinstance(n, str) for n in names):
            raise SweepError(
                f"along must be a parameter name or a list of them, not {along!r:.60}."
            )
        self._refuse_unknown(names, lambda n: f"along names {n!r}, which is not a parameter")
        for n in names:
            if n not in swept:
                raise SweepError(
                    f"along names {n!r}, but {binding.key} is not swept over it (it is swept "
                    f"over {swept}): refinement adds values of parameters it sweeps."
                )
            if self._params[n].bounds is None:
                raise SweepError(
                    f"along names {n!r}, a discrete parameter: only continuous parameters are "
                    f"refined. Declare it with bounds, e.g. xs.Parameter({n!r}, values=..., "
                    "bounds=(low, high)), or leave it out of along."
                )
        return tuple(dict.fromkeys(names))

    def _adopt(self, binding: Binding, refined: Sequence[str]) -> None:
        """Take into the refined parameters the values the cache file holds for them.

        Those inside the bounds that an earlier refinement added (round > 0 in the file)
        or at which ``fn`` has cells: an interrupted refinement goes on from its grid, and
        computes none of its cells again.
        """
        store = self._results.cached()
        if store is None:
            return
        with self._growing:
            seen = store.peek(binding.key, binding.dims, binding.fingerprint)
            for name in refined:
                param = self._params[name]
                values = store.grid[name].values
                rounds = store.grid.rounds.get(name, np.zeros(values.size, np.int32))
                used = rounds > 0
                if seen is not None:
                    axis = binding.dims.index(name)
                    others = tuple(i for i in range(seen.status.ndim) if i != axis)
                    used = used | (seen.status != 0).any(axis=others)
                for r in np.unique(rounds[used]).tolist():
                    new = [v for v in values[used & (rounds == r)].tolist() if _new(param, v)]
                    if new:
                        param.insert_values(new, refinement_round=int(r))
            store.follow(self._grid())


def _new(param: Any, value: Any) -> bool:
    """Whether ``value`` is inside ``param``'s bounds and not one of its values yet."""
    low, high = param.bounds
    if not low <= value <= high:
        return False
    try:
        param.index(value)
    except ParameterError:
        return True
    return False


class SpaceRounds:
    """The two verbs a refinement's rounds use on a space: sweep it, and grow it."""

    def __init__(
        self,
        space: Any,
        fn: Callable[..., Any],
        binding: Binding,
        retry_failed: bool,
        options: dict[str, Any],
    ) -> None:
        self.space = space
        self.fn = fn
        self.binding = binding
        self.retry_failed = retry_failed
        self.options = options  # ps.sweep's, the same for every round

    def sweep(self, added: Mapping[str, np.ndarray] | None) -> tuple[int, int, bool, xr.Dataset]:
        """Sweep the whole grid (``added`` None: only its missing cells are computed, and
        failed ones retried if asked), or the slabs of the values just added."""
        space, fn, options = self.space, self.fn, self.options
        if added is None:
            swept, ds = space._sweep_cells(
                fn, retry_failed=self.retry_failed, cells=None, **options
            )
            return swept.counts.computed, swept.counts.failed, swept.counts.stopped, ds
        # One parameter at a time (a cell of two new values is computed once, in the first),
        # so that each slab is computed in the order asked for (order="spread": coarse
        # first). Each sweep gives the Dataset of the whole grid.
        computed = failed = 0
        stopped = False
        latest: xr.Dataset | None = None
        for param, values in added.items():
            cells = {param: values.tolist()}
            swept, latest = space._sweep_cells(fn, retry_failed=False, cells=cells, **options)
            computed, failed = computed + swept.counts.computed, failed + swept.counts.failed
            stopped = swept.counts.stopped
            if stopped:
                break
        assert latest is not None, "a round adds values (run_rounds stops when none are chosen)"
        return computed, failed, stopped, latest

    def grow(self, added: Mapping[str, np.ndarray], number: int) -> None:
        """Add ``added`` to the parameters as round ``number``; the store grows at once."""
        space = self.space
        with space._growing:
            for param, values in added.items():
                space[param].insert_values(values, refinement_round=number)
            space._results.for_sweep(self.binding.key)  # its grid grows now, not mid-look
