"""The loop of a refinement: sweep, judge the intervals, grow the grid, sweep the new cells.

It knows nothing of spaces or stores: the space gives it how to sweep the grid as it is now
(``sweep``) and how to add values to parameters (``grow``). Each round's Dataset is the
truth it reads: the values of every parameter, the cells' statuses and the driving output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..file_format import refinement_round_name
from .choice import Choice, RefinedAxis, choose
from .goal import RefineGoal, RoundReport
from .losses import interval_losses
from .observed import Observed

#: ``sweep(added)``: sweep the grid as it is now: all of it (``added`` None, the first sweep,
#: which may retry failed cells), or only the slabs of the values just ``added``. Returns
#: (cells computed, cells failed, whether a stop ended it, the whole grid's Dataset).
Sweep = Callable[[Mapping[str, np.ndarray] | None], tuple[int, int, bool, xr.Dataset]]
#: ``grow(added, round)``: add these values (per parameter) as refinement round ``round``.
Grow = Callable[[Mapping[str, np.ndarray], int], None]


def lines(values: np.ndarray, axis: int) -> np.ndarray:
    """``values`` as lines along ``axis``: shape ``(cells / n, n)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.refining.rounds import lines
    >>> lines(np.arange(6).reshape(2, 3), 0).tolist()
    [[0, 3], [1, 4], [2, 5]]
    """
    moved = np.moveaxis(values, axis, -1)
    return moved.reshape(-1, moved.shape[-1])


def latest_round(ds: xr.Dataset, along: Sequence[str]) -> int:
    """The highest refinement round among the refined parameters' values in ``ds``.

    Examples
    --------
    >>> import xarray as xr
    >>> from xsweep.refining.rounds import latest_round
    >>> ds = xr.Dataset(coords={"x": [0.0, 0.5, 1.0], "x_refinement_round": ("x", [0, 2, 0])})
    >>> latest_round(ds, ["x"])
    2
    """
    rounds = [
        int(ds[refinement_round_name(p)].max())
        for p in along
        if refinement_round_name(p) in ds.coords
    ]
    return max(rounds, default=0)


def _judge(
    goal: RefineGoal,
    observed: Observed,
    ds: xr.Dataset,
    along: Sequence[str],
    spans: Mapping[str, float],
    min_cells: int,
) -> tuple[Choice, int]:
    """The next round's values (a :class:`~xsweep.refining.choice.Choice`) and the grid's size."""
    y = observed.read(ds)
    dims = observed.dims(ds)
    sizes = {d: int(ds.sizes[d]) for d in dims}
    axes = []
    for name in along:
        x = np.asarray(ds[name].values)
        losses = interval_losses(x.astype(np.float64), lines(y, dims.index(name)), goal.loss, name)
        axes.append(RefinedAxis(name, x, spans[name], losses))
    choice = choose(
        axes,
        sizes,
        tolerance=goal.tolerance,
        max_cells=goal.max_cells,
        per_round=goal.per_round,
        min_cells=min_cells,
    )
    size = int(np.prod(list(sizes.values()), dtype=np.int64))
    return choice, size


def run_rounds(
    goal: RefineGoal,
    observed: Observed,
    along: Sequence[str],
    spans: Mapping[str, float],
    sweep: Sweep,
    grow: Grow,
    *,
    stopped: Callable[[], bool],
    deadline: float,
    min_cells: int = 1,
) -> tuple[xr.Dataset, int]:
    """Refine until the goal is met; the last round's Dataset and the cells that failed.

    ``stopped()``: whether a stop was asked for (a background job's); ``deadline``: the
    ``time.monotonic()`` of ``max_seconds`` (``inf`` without one). Sweeps stop at either
    too (the space passes them the same stop), so a round may end with cells not computed;
    the next refinement computes them first.

    Examples
    --------
    The loop needs no space: here a list of values plays the grid.

    >>> import math
    >>> import numpy as np, xarray as xr
    >>> from xsweep.refining.goal import check_goal
    >>> from xsweep.refining.observed import Observed
    >>> from xsweep.refining.rounds import run_rounds
    >>> grid = {0.0: 0, 1.0: 0}  # value: the round that added it
    >>> def sweep(added):
    ...     x = np.array(sorted(grid))
    ...     return len(added or grid), 0, False, xr.Dataset(
    ...         {"f": ("x", np.abs(x - 0.3))},
    ...         coords={"x": x, "f_status": ("x", np.ones(x.size, int)),
    ...                 "x_refinement_round": ("x", [grid[v] for v in x])})
    >>> def grow(added, number):
    ...     grid.update({v: number for v in added["x"].tolist()})
    >>> ds, failed = run_rounds(check_goal(max_cells=6), Observed(None, None, "f"), ["x"],
    ...                         {"x": 1.0}, sweep, grow, stopped=lambda: False,
    ...                         deadline=math.inf)
    >>> ds.x.values.tolist()
    [0.0, 0.125, 0.25, 0.375, 0.5, 1.0]
    """
    started = time.monotonic()
    computed, failed, halted, ds = sweep(None)
    seconds = time.monotonic() - started
    current = latest_round(ds, along)  # 0, or the round a resumed refinement was in
    added: dict[str, list] = {}
    failures = failed
    while True:
        t0 = time.monotonic()
        choice, size = _judge(goal, observed, ds, along, spans, min_cells)
        stop = choice.stop
        if stopped():
            stop = "stopped"
        elif halted or time.monotonic() >= deadline:
            stop = "max_seconds"
        overhead = time.monotonic() - t0
        if goal.on_round is not None:
            report = RoundReport(
                current, added, size, computed, failed, choice.worst, seconds, overhead, stop
            )
            goal.on_round(report)
        if stop is not None:
            return ds, failures
        current += 1
        added = {name: values.tolist() for name, values in choice.added.items()}
        t1 = time.monotonic()
        grow(choice.added, current)
        computed, failed, halted, ds = sweep(choice.added)
        seconds = time.monotonic() - t1
        failures += failed
