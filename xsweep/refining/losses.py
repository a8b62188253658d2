"""How bad each interval between neighbouring values of a parameter is: the refinement loss.

A loss looks at one refined parameter at a time. Its values ``x`` are sorted (``n`` of them),
and the output that drives refinement is seen along ``x`` on every *line* of the grid: one
line per combination of the values of the other swept parameters, ``y`` of shape
``(lines, n)``. The loss of interval ``i`` (between ``x[i]`` and ``x[i + 1]``) is the largest
over the lines: a slab is added for the whole grid, so the worst line decides.

Cells without a value (not computed yet, failed, ``None``, or a NaN or infinite result)
are NaN in ``y``. The built-in losses skip them: each interval is judged between the nearest
cells with a value on either side, so a failed cell neither stops refinement near it nor
makes a loss NaN. An interval no line can judge has loss 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import SweepError

#: A loss: ``loss(x, y)`` with ``x`` of shape ``(n,)`` and ``y`` of ``(lines, n)``, returning
#: the loss of each interval, ``(n - 1,)`` or per line ``(lines, n - 1)``.
LossFunction = Callable[[np.ndarray, np.ndarray], Any]


def _brackets(known: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line and interval ``i``: the last known index ``<= i``, the first ``>= i + 1``,
    and whether both exist."""
    n = known.shape[-1]
    index = np.arange(n)
    last = np.maximum.accumulate(np.where(known, index, -1), axis=-1)[:, :-1]
    first = np.minimum.accumulate(np.where(known, index, n)[:, ::-1], axis=-1)[:, ::-1][:, 1:]
    both = (last >= 0) & (first < n)
    return np.where(both, last, 0), np.where(both, first, 0), both


def change_loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|y[i + 1] - y[i]|`` per line and interval: how much the output changes across it.

    Cells without a value are skipped (the change is taken between the nearest cells with
    one); NaN where a line has no value on one side.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.refining.losses import change_loss
    >>> change_loss(np.array([0.0, 1.0, 2.0, 3.0]), np.array([[0.0, 1.0, np.nan, 7.0]]))
    array([[1., 6., 6.]])
    """
    left, right, both = _brackets(np.isfinite(y))
    step = np.take_along_axis(y, right, -1) - np.take_along_axis(y, left, -1)
    return np.where(both, np.abs(step), np.nan)


def curvature_loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How far the output bends near each interval: per line and interval, the larger of
    its two ends' distances from the straight line through their neighbours.

    That is the error linear interpolation would make at each end had it not been computed:
    ``|y[j] - (y[j-1] + (y[j+1] - y[j-1]) * (x[j] - x[j-1]) / (x[j+1] - x[j-1]))|``. Flat and
    straight stretches cost nothing, bends and kinks do. An interval neither of whose ends
    has two neighbours (a line of two values) falls back on :func:`change_loss`. Cells
    without a value are skipped, as there.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.refining.losses import curvature_loss
    >>> x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    >>> curvature_loss(x, np.array([[0.0, 1.0, 2.0, 3.0, 4.0]]))  # a straight line
    array([[0., 0., 0., 0.]])
    >>> curvature_loss(x, np.array([[0.0, 0.0, 1.0, 2.0, 3.0]]))  # a kink at x = 1
    array([[0.5, 0.5, 0. , 0. ]])
    """
    known = np.isfinite(y)
    lines, n = y.shape
    index = np.arange(n)
    seen = np.maximum.accumulate(np.where(known, index, -1), axis=-1)
    before = np.concatenate([np.full((lines, 1), -1), seen[:, :-1]], axis=-1)
    ahead = np.minimum.accumulate(np.where(known, index, n)[:, ::-1], axis=-1)[:, ::-1]
    after = np.concatenate([ahead[:, 1:], np.full((lines, 1), n)], axis=-1)
    inner = known & (before >= 0) & (after < n)
    b, a = np.where(inner, before, 0), np.where(inner, after, 0)
    xb, xa = x[b], x[a]
    yb, ya = np.take_along_axis(y, b, -1), np.take_along_axis(y, a, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        line = yb + (ya - yb) * (x[np.newaxis, :] - xb) / (xa - xb)
    bend = np.where(inner, np.abs(y - line), np.nan)
    left, right, both = _brackets(known)
    ends = np.stack([np.take_along_axis(bend, left, -1), np.take_along_axis(bend, right, -1)])
    with np.errstate(invalid="ignore"):
        loss = np.fmax(ends[0], ends[1])
    loss = np.where(both, loss, np.nan)
    return np.where(np.isnan(loss), change_loss(x, y), loss)


#: The losses refinement knows by name.
BUILT_IN: dict[str, LossFunction] = {"change": change_loss, "curvature": curvature_loss}


def resolve_loss(loss: str | LossFunction) -> LossFunction:
    """The loss function ``ps.refine(loss=...)`` names, or the user's callable.

    Examples
    --------
    >>> from xsweep.refining.losses import resolve_loss
    >>> resolve_loss("change").__name__
    'change_loss'
    >>> resolve_loss("steepness")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xsweep.errors.SweepError: loss='steepness' is not one of ['change', 'curvature'], ...
    """
    if isinstance(loss, str):
        if loss not in BUILT_IN:
            raise SweepError(
                f"loss={loss!r:.60} is not one of {list(BUILT_IN)}, nor a callable "
                "loss(x, y) returning one loss per interval (see docs/refining.md)."
            )
        return BUILT_IN[loss]
    if not callable(loss):
        raise SweepError(
            f"loss must be 'change', 'curvature' or a callable loss(x, y); got "
            f"{type(loss).__name__} {loss!r:.60}."
        )
    return loss


def interval_losses(x: np.ndarray, y: np.ndarray, loss: LossFunction, name: str) -> np.ndarray:
    """The loss of each interval of parameter ``name``: ``(n - 1,)``, every one >= 0.

    ``y`` is ``(lines, n)``; a loss given per line is reduced to its largest over the lines
    (the worst line decides, since a new value adds a slab across all of them). A NaN loss
    (nothing to judge by) counts as 0; ``inf`` is allowed (split this first). A callable
    that returns anything else is refused with what it returned.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.refining.losses import change_loss, interval_losses
    >>> y = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 3.0]])
    >>> interval_losses(np.array([0.0, 0.5, 1.0]), y, change_loss, "x")
    array([1., 3.])
    """
    n = x.size
    if n < 2:
        return np.zeros(0)
    try:
        raw = loss(x, y)
    except Exception as exc:
        raise SweepError(
            f"The loss {getattr(loss, '__name__', loss)!r:.60} raised for parameter {name!r}: "
            f"{type(exc).__name__}: {exc}. It is called as loss(x, y), x the {n} values of "
            f"{name!r} and y of shape {y.shape} (one line per combination of the other "
            "parameters, NaN where a cell has no value)."
        ) from exc
    try:
        losses = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        losses = None
    if losses is None or losses.shape not in ((n - 1,), (y.shape[0], n - 1)):
        shape = None if losses is None else losses.shape
        raise SweepError(
            f"The loss {getattr(loss, '__name__', loss)!r:.60} returned "
            f"{type(raw).__name__} of shape {shape} for parameter {name!r}; it must return one "
            f"number per interval: shape ({n - 1},), or ({y.shape[0]}, {n - 1}) per line."
        )
    if (losses < 0).any():
        raise SweepError(
            f"The loss {getattr(loss, '__name__', loss)!r:.60} returned negative losses for "
            f"parameter {name!r}; a loss is >= 0 (0: nothing to gain by splitting)."
        )
    if losses.ndim == 2:
        known = ~np.isnan(losses)
        losses = np.where(known.any(axis=0), np.nanmax(np.where(known, losses, -1.0), axis=0), 0)
    return np.where(np.isnan(losses), 0.0, losses)
