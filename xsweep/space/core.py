"""The part of a ParameterSpace every other part builds on: its parameters and shared state.

:class:`SpaceCore` owns the state the verbs share, declared once here: the parameters, how
each swept function maps onto them (:class:`~xsweep.functions.binding.Bindings`), where the
results live (:class:`~xsweep.space.results.Results`), the open views and the background
jobs; and the helpers they all use. The verbs sit in one module per group
(``caching``, ``single_cells``, ``inspecting``, ``parameter_space``), each a subclass of
this class, and :class:`~xsweep.ParameterSpace` is their union.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import numpy as np
import xarray as xr

from ..errors import ParameterError, StoreLockedError, SweepError
from ..functions.binding import Binding, Bindings
from ..parameters import Parameter
from ..running import jobs
from ..running.execution import ValueSetter
from ..store import Grid
from .plan import refuse_unknown
from .results import Results


class SpaceCore:
    """The parameters of a space, its grid, and the state its verbs share.

    Parameters
    ----------
    parameters : iterable of Parameter
        The axes, in the order they become dims of the results.

    Examples
    --------
    >>> import xsweep as xs
    >>> from xsweep.space.core import SpaceCore
    >>> core = SpaceCore([xs.Parameter("a", values=[1, 2]), xs.Parameter("b", values=[3])])
    >>> core.dims, core.shape
    (('a', 'b'), (2, 1))
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
        #: Which store each verb reads and writes, and when a sweep writes (space.results).
        self._results = Results(self._grid)
        self._functions = Bindings(params)  # how each swept function maps onto the space
        self._views: dict[str | tuple[str, str], Any] = {}  # views open per function (explore)
        self._jobs: list[jobs.SweepJob] = []  # background sweeps (ps.sweep_async)
        #: Held while refinement adds values to parameters and grows the store with them,
        #: and by verbs that turn parameter values into a store's cells: a view's thread
        #: never looks up a cell by indices of another grid than the store's.
        self._growing = threading.RLock()
        #: Held by a running ps.refine: one refinement of a space at a time.
        self._refining = threading.Lock()

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
        lines = [f"ParameterSpace({self.size} cells, cache={self._results.path!r})"]
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

    def _refuse_unknown(self, names: Iterable[str], said: Callable[[str], str]) -> None:
        """The one check of parameter names a verb was given (:func:`.plan.refuse_unknown`)."""
        refuse_unknown(self._params, names, said)

    def _grid(self) -> Grid:
        grid = Grid({p.name: (p.values, p.attrs) for p in self})
        for p in self:
            if p.refinement_rounds is not None:
                grid.rounds[p.name] = p.refinement_rounds
        return grid

    # -- background jobs ------------------------------------------------------------------------
    def _start_job(
        self, verb: Callable[..., xr.Dataset], fn: Callable[..., Any], options: dict[str, Any]
    ) -> jobs.SweepJob:
        """Run ``verb(fn, **options)`` (``sweep``, ``refine``) in the background: a job.

        Its options are checked against the verb's, and the function's binding is checked
        here, so that mistakes raise now rather than later from ``job.result()``.
        """
        allowed = set(inspect.signature(verb).parameters) - {"fn"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise SweepError(
                f"{verb.__name__}_async got {unknown}, which {verb.__name__} does not take; "
                f"its options are {sorted(allowed)}."
            )
        running = [job for job in self._jobs if not job.done()]
        self._jobs = running
        if running and self._results.cache is not None:
            raise StoreLockedError(
                f"A background sweep into {self._results.path} is running ({running[0]!r}). "
                "Wait for it with job.result(), or stop it with job.stop() or "
                "ps.stop_sweep(), then try again."
            )
        remembered = ("name", "set_values", "depends_on", "version")
        self._remember(fn, **{k: options[k] for k in remembered if k in options})
        self._binding(fn, computing=True)  # refused here, not later from job.result()
        # _remember refused a name= that is not a str; a function's __name__ is one
        name = cast(str, options.get("name") or getattr(fn, "__name__", "sweep"))
        job = jobs.SweepJob(name, lambda: verb(fn, **options))
        self._jobs.append(job)
        return job

    # -- the cache ------------------------------------------------------------------------------
    # -- binding functions ----------------------------------------------------------------------
    def _binding(self, fn: Callable[..., Any], computing: bool = False) -> Binding:
        """How ``fn`` maps onto the space, with its fingerprint as of now; ``computing``:
        refuse a function that reads a parameter it is not swept over, before any cell."""
        return self._functions.of(fn, computing)

    def _remember(self, fn: Callable[..., Any], **options: Any) -> None:
        """Record per-function options of a sweep; later calls (run_process) use them too."""
        self._functions.remember(fn, **options)

    # -- calling a function at a cell ---------------------------------------------------------
    def _callable(
        self, fn: Callable[..., Any], binding: Binding
    ) -> tuple[Callable[..., Any], dict[Parameter, int]]:
        """What the execution layer calls per cell, and the values to restore afterwards."""
        if not binding.sets_values:
            return fn, {}
        params = [self._params[d] for d in binding.dims]
        return ValueSetter(fn, params, binding.takes), {p: p.position for p in params}

    def _call_at(self, fn: Callable[..., Any], binding: Binding, indices: dict[str, int]) -> Any:
        """Call ``fn`` at the cell ``indices`` (else current values), as a sweep would."""
        args = [
            self._params[d].values[indices.get(d, self._params[d].position)].item()
            for d in binding.dims
        ]
        if binding.sets_values:
            call, saved = self._callable(fn, binding)
            try:
                return call(*args)
            finally:
                for param, index in saved.items():
                    param.move_to(index, callbacks=False, watchers=False)
        return fn(**dict(zip(binding.dims, args)))

    def _cell_indices(self, binding: Binding, indices: dict[str, int]) -> dict[str, int]:
        """The space's index of each of ``fn``'s parameters: ``indices``, else the current."""
        return {d: indices.get(d, self._params[d].position) for d in binding.dims}
