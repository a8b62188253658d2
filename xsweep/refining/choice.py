"""Which intervals a round splits: each interval's loss, weighed by its width and its cost.

A round adds values at the midpoints of intervals between neighbouring values of the
refined parameters. On a rectilinear grid a new value of one parameter is a whole *slab*
of new cells, one per combination of the other swept parameters: its cost is the product
of their numbers of values. Each interval is therefore ranked by

    priority = loss * (width / span) / cost

- ``loss`` (:mod:`.losses`): how much the output changes (or bends) across the interval,
  the largest over the slab;
- ``width / span``: the interval's share of the parameter's range (its ``bounds``). A
  loss times a width is what the interval adds to the error of linear interpolation over
  the range; weighing by it makes refinement converge where the loss itself never shrinks
  (a step keeps its height however narrow the interval around it);
- ``cost``: cells the slab costs, so that cells go where they buy the most loss.

``loss * width / span`` is the *weighted loss*; a tolerance is compared with it. Each
interval is split at most once per round (the halves' losses are unknown until computed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..parameters.parameter import FLOAT_RTOL

#: Without ``per_round``, a round splits the intervals of highest priority until they hold
#: this share of the total weighted loss (Dörfler's marking in adaptive finite elements):
#: one sharp feature gets a few values per round, a loss spread everywhere many.
MARKED_SHARE = 0.5


@dataclass
class RefinedAxis:
    """One refined parameter as a round sees it: sorted values, range and interval losses."""

    name: str
    values: np.ndarray  # sorted, in the parameter's dtype
    span: float  # high - low of its bounds
    losses: np.ndarray  # (n - 1,), >= 0


class Choice(NamedTuple):
    """What a round adds, or why refinement stops.

    ``added``: per parameter, the new values (sorted; empty when stopping). ``worst``: the
    largest weighted loss of an interval that can still be split (0.0 if none). ``stop``:
    ``"tolerance"`` (no weighted loss above it), ``"converged"`` (no interval that can
    still be split has a loss above 0), ``"max_cells"`` (no slab fits the budget) or None.
    """

    added: dict[str, np.ndarray]
    worst: float
    stop: str | None


def weighted_losses(axis: RefinedAxis) -> np.ndarray:
    """Each interval's loss times its width as a share of the parameter's range.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.refining.choice import RefinedAxis, weighted_losses
    >>> axis = RefinedAxis("x", np.array([0.0, 0.5, 1.0]), 1.0, np.array([2.0, 1.0]))
    >>> weighted_losses(axis)
    array([1. , 0.5])
    """
    widths = np.diff(axis.values.astype(np.float64))
    with np.errstate(invalid="ignore"):  # inf * 0 never happens: widths are > 0
        return axis.losses * (widths / axis.span)


def midpoints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The midpoint of each interval in the values' dtype, and whether it is a new value.

    Ints split at whole numbers (an interval of width 1 cannot be split); floats where the
    midpoint is distinct from both ends within the tolerance by which values are found
    (``Parameter.index``), so that a new value never duplicates an old one.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.refining.choice import midpoints
    >>> midpoints(np.array([1, 2, 5]))
    (array([1, 3]), array([False,  True]))
    >>> mids, ok = midpoints(np.array([0.0, 1.0, 1.0 + 1e-12]))
    >>> float(mids[0]), ok.tolist()
    (0.5, [True, False])
    """
    if values.dtype.kind in "iu":
        low, high = values[:-1], values[1:]
        return low + (high - low) // 2, (high - low) >= 2
    floats = values.astype(np.float64)
    low, high = floats[:-1], floats[1:]
    mids = (low + (high - low) / 2).astype(values.dtype)
    rtol = max(FLOAT_RTOL, float(np.finfo(values.dtype).eps))
    m = mids.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        apart_low = (m - low) > rtol * np.maximum(np.abs(m), np.abs(low))
        apart_high = (high - m) > rtol * np.maximum(np.abs(m), np.abs(high))
    return mids, apart_low & apart_high


def grid_size(sizes: Mapping[str, int], added: Mapping[str, int]) -> int:
    """Cells of the grid with ``added`` more values of some parameters.

    Examples
    --------
    >>> from xsweep.refining.choice import grid_size
    >>> grid_size({"x": 5, "y": 4}, {"x": 1})
    24
    """
    size = 1
    for name, n in sizes.items():
        size *= n + added.get(name, 0)
    return size


def choose(
    axes: Sequence[RefinedAxis],
    sizes: Mapping[str, int],
    *,
    tolerance: float | None = None,
    max_cells: int | None = None,
    per_round: int | None = None,
    min_cells: int = 1,
) -> Choice:
    """The intervals a round splits, by priority (see the module), within the budget.

    ``sizes``: every swept parameter's number of values (the refined ones and the others).
    ``per_round``: split exactly this many intervals (fewer if fewer qualify); without it,
    split intervals until they hold :data:`MARKED_SHARE` of the total weighted loss and the
    round has at least ``min_cells`` new cells (the workers of an executor). ``max_cells``:
    the grid never grows beyond it; a slab that does not fit is passed over for a cheaper
    one. Only intervals whose weighted loss is above ``tolerance`` (above 0 without one)
    are split.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.refining.choice import RefinedAxis, choose
    >>> x = RefinedAxis("x", np.array([0.0, 0.5, 1.0]), 1.0, np.array([0.1, 4.0]))
    >>> choose([x], {"x": 3}, per_round=1)
    Choice(added={'x': array([0.75])}, worst=2.0, stop=None)
    >>> choose([x], {"x": 3}, tolerance=5.0)
    Choice(added={}, worst=2.0, stop='tolerance')
    >>> choose([x], {"x": 3}, max_cells=3)
    Choice(added={}, worst=2.0, stop='max_cells')
    """
    floor = 0.0 if tolerance is None else float(tolerance)
    candidates = []
    worst = 0.0
    for rank, axis in enumerate(axes):
        weighted = weighted_losses(axis)
        mids, splittable = midpoints(axis.values)
        if splittable.any():
            worst = max(worst, float(weighted[splittable].max()))
        cost = grid_size(sizes, {axis.name: 1}) - grid_size(sizes, {})
        for i in np.flatnonzero(splittable & (weighted > floor)):
            w = float(weighted[i])
            candidates.append((-w / max(cost, 1), rank, int(i), w, axis.name, mids[i]))
    if not candidates:
        return Choice({}, worst, "tolerance" if worst > 0 else "converged")
    candidates.sort(key=lambda c: c[:3])
    total = sum(c[3] for c in candidates)
    before = grid_size(sizes, {})
    counts: dict[str, int] = {}
    chosen: dict[str, list] = {}
    gained = 0.0
    for _, _, _, w, name, mid in candidates:
        grown = {**counts, name: counts.get(name, 0) + 1}
        if max_cells is not None and grid_size(sizes, grown) > max_cells:
            continue  # a cheaper slab of another parameter may still fit
        counts = grown
        chosen.setdefault(name, []).append(mid)
        gained += w
        if per_round is not None:
            if sum(counts.values()) >= per_round:
                break
        elif gained >= MARKED_SHARE * total and grid_size(sizes, counts) - before >= min_cells:
            break
    if not chosen:
        return Choice({}, worst, "max_cells")
    dtypes = {axis.name: axis.values.dtype for axis in axes}
    added = {name: np.sort(np.array(v, dtype=dtypes[name])) for name, v in chosen.items()}
    return Choice(added, worst, None)
