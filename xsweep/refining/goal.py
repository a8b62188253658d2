"""What a refinement aims at, checked once before anything runs, and what each round reports."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import SweepError
from .losses import LossFunction, resolve_loss

#: Why a refinement ends (``RoundReport.stop``), in words for messages and docs.
STOP_REASONS = {
    "tolerance": "no interval's weighted loss is above the tolerance",
    "converged": "no interval that can still be split has a loss above 0",
    "max_cells": "no slab fits in max_cells",
    "max_seconds": "max_seconds passed",
    "stopped": "it was stopped (job.stop())",
}


class RoundReport(NamedTuple):
    """What one round of ``ps.refine`` did (given to ``on_round``).

    Attributes
    ----------
    round : int
        The round: the first report is of the grid as it was (0 when declared, or the
        round a resumed refinement found in the file); each later one added values.
    added : dict
        Per refined parameter, the values this round added (sorted); empty for the first.
    cells : int
        Cells of the grid after the round (every swept parameter's values multiplied).
    computed, failed : int
        Cells this round's sweep computed, and how many of them failed.
    worst : float
        The largest weighted loss of an interval that can still be split, after the round.
    seconds : float
        Wall time of the round: growing the grid and sweeping its new cells.
    overhead : float
        Wall time spent after the round's sweep on reading the output, the losses and
        choosing the next values (``on_round`` is called then, before the grid grows).
    stop : str or None
        Why refinement ends after this round (a key of ``STOP_REASONS``), or None.
    """

    round: int
    added: dict[str, list]
    cells: int
    computed: int
    failed: int
    worst: float
    seconds: float
    overhead: float
    stop: str | None


@dataclass(frozen=True)
class RefineGoal:
    """``ps.refine``'s own options, checked (see :func:`check_goal`)."""

    output: str | None
    reduce: Callable[[Any], Any] | None
    loss: LossFunction
    tolerance: float | None
    max_cells: int | None
    max_seconds: float | None
    per_round: int | None
    on_round: Callable[[RoundReport], Any] | None


def _number(name: str, value: Any, *, whole: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(
        value, (int, np.integer) if whole else (int, float, np.integer, np.floating)
    )
    if not ok or (not whole and not math.isfinite(value)) or value <= 0:
        kind = "a whole number >= 1" if whole else "a number > 0"
        raise SweepError(f"{name} must be {kind} or None, not {value!r:.60}.")


def check_goal(
    *,
    output: str | None = None,
    reduce: Callable[[Any], Any] | None = None,
    loss: Any = "curvature",
    tolerance: float | None = None,
    max_cells: int | None = None,
    max_seconds: float | None = None,
    per_round: int | None = None,
    on_round: Callable[[RoundReport], Any] | None = None,
) -> RefineGoal:
    """``ps.refine``'s options, refused with what to give before anything runs.

    Examples
    --------
    >>> from xsweep.refining.goal import check_goal
    >>> check_goal(max_cells=100).max_cells
    100
    >>> check_goal()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xsweep.errors.SweepError: ps.refine needs a goal to stop at: max_cells=..., ...
    """
    if output is not None and not isinstance(output, str):
        raise SweepError(f"output must be the name of an output (a str), not {output!r:.60}.")
    for name, value in (("reduce", reduce), ("on_round", on_round)):
        if value is not None and not callable(value):
            raise SweepError(f"{name} must be a callable or None, not {value!r:.60}.")
    if tolerance is not None:
        ok = isinstance(tolerance, (int, float, np.integer, np.floating)) and not isinstance(
            tolerance, bool
        )
        if not ok or not math.isfinite(tolerance) or tolerance < 0:
            raise SweepError(f"tolerance must be a number >= 0 or None, not {tolerance!r:.60}.")
    for name, limit, whole in (
        ("max_cells", max_cells, True),
        ("max_seconds", max_seconds, False),
        ("per_round", per_round, True),
    ):
        if limit is not None:
            _number(name, limit, whole=whole)
    if max_cells is None and max_seconds is None and tolerance is None:
        raise SweepError(
            "ps.refine needs a goal to stop at: max_cells=... (the most cells the grid may "
            "grow to), max_seconds=... (a time budget) or tolerance=... (the largest weighted "
            "loss left), or several; it stops at the first one met."
        )
    return RefineGoal(
        output,
        reduce,
        resolve_loss(loss),
        None if tolerance is None else float(tolerance),
        None if max_cells is None else int(max_cells),
        None if max_seconds is None else float(max_seconds),
        None if per_round is None else int(per_round),
        on_round,
    )
