"""What a sweep will do, checked before anything runs or is written: its options and cells.

``ps.sweep`` (and ``sweep_async``, ``run_process``, ``cell``, ``enable_cache``) check what
they were given here, once: option values, output dim names, parameter names; then
:func:`plan_cells` turns the chosen parameters and values into a
:class:`~xsweep.running.cells.CellPlan` in the store's indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import SweepError
from ..functions.binding import Binding
from ..parameters.parameter import Parameter
from ..running.cells import CellPlan
from ..store import Grid

#: The choices of ``sweep(errors=...)``.
ERRORS = ("record", "raise")


def refuse_unknown(
    parameters: Mapping[str, Parameter], names: Iterable[str], said: Callable[[str], str]
) -> None:
    """The one check of parameter names a verb was given: ``said(name)`` starts the error.

    Examples
    --------
    >>> import xsweep as xs
    >>> from xsweep.space.plan import refuse_unknown
    >>> refuse_unknown({"a": xs.Parameter("a", values=[1])}, ["b"], lambda n: f"{n!r} is unknown")
    Traceback (most recent call last):
    ...
    xsweep.errors.SweepError: 'b' is unknown; the space has ['a'].
    """
    for name in names:
        if name not in parameters:
            raise SweepError(f"{said(name)}; the space has {list(parameters)}.")


def plan_cells(
    parameters: Mapping[str, Parameter],
    binding: Binding,
    grid: Grid,
    params: Sequence[str] | None,
    cells: Mapping[str, Sequence[Any]] | None = None,
    part: tuple[int, int] | None = None,
    order: str = "grid",
) -> CellPlan:
    """Which cells to compute, in the store's indices."""
    dims = binding.dims
    if isinstance(params, str):
        params = [params]
    named = list(params or ()) + list(cells or ())
    refuse_unknown(parameters, named, lambda name: f"{name!r} is not a parameter of the space")
    for name in named:
        if name not in dims:
            raise SweepError(
                f"{name!r} is named, but {binding.key} does not take it; it takes {list(dims)}."
            )
    swept = set(dims) if params is None else set(params)
    chosen = {}
    for d in dims:
        p = parameters[d]
        if cells is not None and d in cells:
            wanted = cells[d]
            wanted = [wanted] if isinstance(wanted, (str, int, float, bool)) else wanted
            chosen[d] = np.array(sorted({p.index(v) for v in wanted}), dtype=np.int64)
        elif d in swept:
            chosen[d] = np.arange(len(p))
        else:
            chosen[d] = np.array([p.position])
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
    selected = [grid.positions[d][chosen[d]] for d in dims]
    values = [grid[d].values for d in dims]
    return CellPlan(dims, values, selected, binding.positional, part, order)


def check_sweep_options(**options: Any) -> None:
    """Refuse bad sweep arguments before anything runs or is written, naming them.

    Examples
    --------
    >>> from xsweep.space.plan import check_sweep_options
    >>> check_sweep_options(errors="ignore")
    Traceback (most recent call last):
    ...
    xsweep.errors.SweepError: errors='ignore' is not one of ['record', 'raise'].
    """
    options = {**_DEFAULTS, **options}
    errors = options["errors"]
    if errors not in ERRORS:
        raise SweepError(f"errors={errors!r} is not one of {list(ERRORS)}.")
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
    if cells is not None and not isinstance(cells, Mapping):
        raise SweepError(
            f"cells must be a dict of parameter values, e.g. cells={{'length': [1, 2]}}, not "
            f"{cells!r:.60}."
        )
    _check_choices(options)


def _check_choices(options: dict[str, Any]) -> None:
    """The options that pick one of a few behaviours."""
    on_change, order = options["on_change"], options["order"]
    if on_change not in ("raise", "keep"):
        raise SweepError(f"on_change={on_change!r} is not one of ['raise', 'keep'].")
    if order not in ("grid", "spread"):
        raise SweepError(f"order={order!r:.60} is not one of ['grid', 'spread'].")
    set_values, lazy = options["set_values"], options["lazy"]
    if not isinstance(set_values, (bool, np.bool_)):
        raise SweepError(f"set_values must be True or False, not {set_values!r:.60}.")
    if lazy not in (None, True, False):
        raise SweepError(f"lazy must be True, False or None, not {lazy!r:.60}.")


#: ``ps.sweep``'s defaults, for the options :func:`check_sweep_options` is not given.
_DEFAULTS: dict[str, Any] = {
    "errors": "record",
    "force_recompute": False,
    "retry_failed": True,
    "progress": None,
    "chunksize": None,
    "version": None,
    "params": None,
    "cells": None,
    "on_change": "raise",
    "order": "grid",
    "set_values": False,
    "lazy": None,
}


def check_output_dims(
    output_dims: Mapping[str, Sequence[str]] | None,
) -> dict[str, tuple[str, ...]]:
    if output_dims is None:
        return {}
    if not isinstance(output_dims, Mapping):
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
