"""One cell of a space: run_process(), cell(), is_computed() and computing a single cell."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import (
    StoreLockedError,
    StoreReadOnlyError,
    SweepError,
)
from ..functions.binding import Binding
from ..running.cells import describe_cell
from ..running.execution import write_cell
from ..store import NOT_STORED, Store
from .core import SpaceCore


class Cell(NamedTuple):
    """One cell of a function: its value, and whether it came from the cache."""

    value: Any
    cached: bool


class CellMethods(SpaceCore):
    """Single cells of :class:`~xsweep.space.ParameterSpace` (a mixin of it)."""

    # -- one cell -------------------------------------------------------------------------------
    def run_process(
        self,
        fn: Callable[..., Any],
        *values: Mapping[str, Any],
        force_recompute: bool = False,
        set_values: bool = False,
        depends_on: Sequence[str] | None = None,
        **overrides: Any,
    ) -> Any:
        """Return ``fn`` at the parameters' current values, from the cache when it is there.

        Parameters
        ----------
        fn : callable
            As for :meth:`sweep`.
        force_recompute : bool, default False
            Call ``fn`` even when the cell is cached, and store the new result.
        *values : dict, optional
            One dict of parameter values to set first, as TINC takes them:
            ``ps.run_process(fn, {"length": 3})`` is ``ps.run_process(fn, length=3)``.
        set_values : bool, default False
            ``fn`` reads parameters' ``.value`` instead of taking them as arguments (as
            with ``sweep(fn, set_values=True)``); a function that takes no parameter at all
            is always run this way, over the whole space.
        depends_on : list of str, optional
            Parameters ``fn`` reads without taking them, as for :meth:`sweep`: they are
            dims of its results.
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
        >>> ps.run_process(double, {"length": 1})
        2
        """
        overrides = _merged(values, overrides)
        if set_values or depends_on is not None:
            self._remember(fn, set_values=set_values, depends_on=depends_on)
        binding = self._binding(fn, computing=True)
        self._refuse_unknown(
            overrides,
            lambda name: (
                f"run_process got {name}={overrides[name]!r}, but {name!r} is not a parameter"
            ),
        )
        with self._growing:  # the indices and the store's grid are of one moment
            indices = {name: self._params[name].index(value) for name, value in overrides.items()}
            store = self._results.cached()
            if store is not None and not force_recompute:
                cached = self._cached_cell(store, binding, indices)
                if cached is not NOT_STORED:
                    for name, i in indices.items():
                        self._params[name].move_to(i, callbacks=False)
                    return cached
        for name, i in indices.items():
            self._params[name].move_to(i, callbacks=True)
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
        binding = self._binding(fn, computing=True)
        self._refuse_unknown(
            values,
            lambda name: f"cell got {name}={values[name]!r:.60}, but {name!r} is not a parameter",
        )
        with self._growing:  # the indices and the store's grid are of one moment
            indices = {d: self._params[d].index(values[d]) for d in binding.dims if d in values}
            store = self._results.cached()
            if store is None:
                cached = NOT_STORED
            else:
                cached = self._cached_cell(store, binding, indices)
        if store is None:
            return Cell(self._call_at(fn, binding, indices), False)
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

    def _compute_cell(
        self,
        fn: Callable[..., Any],
        store: Store,
        binding: Binding,
        indices: dict[str, int],
        force_recompute: bool,
    ) -> Any:
        cell = self._cell_indices(binding, indices)
        args = tuple(self._params[d].values[cell[d]].item() for d in binding.dims)
        t0 = time.perf_counter()
        result = self._call_at(fn, binding, indices)
        seconds = time.perf_counter() - t0
        try:
            with self._growing:  # values may have been added meanwhile: find the cell again
                cell = {d: self._params[d].index(v) for d, v in zip(binding.dims, args)}
                write_cell(
                    self._results.cached() or store,
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

    def _cached_cell(self, store: Store, binding: Binding, indices: dict[str, int]) -> Any:
        return store.lookup(
            binding.key, binding.dims, binding.fingerprint, self._cell_indices(binding, indices)
        )


def _merged(values: tuple, overrides: dict[str, Any]) -> dict[str, Any]:
    """``run_process``'s parameter values: one dict given after the function (TINC's
    ``run_process(fn, {"length": 3})``) and the keywords, which must agree."""
    if not values:
        return overrides
    given = values[0]
    if len(values) > 1 or not isinstance(given, Mapping):
        shown = ", ".join(f"{v!r:.40}" for v in values)
        raise SweepError(
            f"ps.run_process(fn, {shown}): after the function, ps.run_process takes one dict "
            "of parameter values, e.g. ps.run_process(fn, {'length': 3}), or keywords, "
            "ps.run_process(fn, length=3); options by keyword too (force_recompute=True)."
        )
    merged = dict(overrides)
    for name, value in given.items():
        if not isinstance(name, str):
            raise SweepError(
                f"ps.run_process got the dict {given!r:.80}, whose keys must be parameter "
                f"names (str), not {name!r:.40}."
            )
        if name in merged and merged[name] != value:
            raise SweepError(
                f"ps.run_process got {name}={merged[name]!r:.40} as a keyword and "
                f"{value!r:.40} in the dict: give each parameter once."
            )
        merged[name] = value
    return merged
