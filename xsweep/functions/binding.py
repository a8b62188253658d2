"""How a function maps onto a space's parameters: its dims, how to call it, its identity.

A function's argument names are parameter names; a function may also read parameters
instead (``set_values=True``, ``depends_on=``). Its results are stored under its name
(:func:`function_key`, or ``name=``) and checked against a fingerprint of its code (or a
declared ``version``). :class:`Bindings` keeps these per-function options for one space.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SweepError
from ..store import variable_prefix
from ..text import name_problem
from .fingerprint import fingerprint, inspect_function


@dataclass(frozen=True)
class Binding:
    """How a function maps onto the space: which parameters it takes and how to call it.

    ``dims`` are the cells' axes; ``takes`` the ones passed as arguments (all of ``dims``
    unless ``sets_values``, when each cell also sets every dim's parameter ``.value``).
    """

    key: str
    name: str
    dims: tuple[str, ...]
    positional: bool
    fingerprint: str
    takes: tuple[str, ...] = ()
    sets_values: bool = False


def function_key(fn: Callable[..., Any]) -> str:
    """The name a function's results are stored under: its ``__name__``, made NetCDF-safe.

    The same code keeps its results when it moves between modules (a notebook's function
    pasted into ``mymodel.py``); two different functions with one name are told apart by
    their code fingerprint, and ``ps.sweep(fn, name=...)`` gives one its own name.

    Examples
    --------
    >>> from xsweep.functions.binding import function_key
    >>> def area(length, width):
    ...     return length * width
    >>> function_key(area)
    'area'
    >>> import functools
    >>> function_key(functools.partial(area, width=2))
    'area'
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return variable_prefix(str(name))


class Bindings:
    """The functions swept over one space's ``params``: their bindings and options.

    Examples
    --------
    >>> import xsweep as xs
    >>> from xsweep.functions.binding import Bindings
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1]), xs.Parameter("b", values=[2])])
    >>> Bindings({p.name: p for p in ps}).of(lambda b, a: a + b).dims
    ('a', 'b')
    """

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = params
        self._by_id = {id(p): name for name, p in params.items()}
        self._cache: dict[Any, Binding] = {}
        self._versions: dict[Any, str] = {}
        #: Per function (weak key): name=, and the parameters it reads (set_values, depends_on).
        self._names: dict[Any, str] = {}
        self._reads: dict[Any, tuple[bool, tuple[str, ...]]] = {}

    def of(self, fn: Callable[..., Any], computing: bool = False) -> Binding:
        """How ``fn`` maps onto the parameters, with its fingerprint as of now.

        The signature is read once per function; the fingerprint is taken again on every
        call (tens of microseconds), since the globals and helpers it covers may have
        changed since the last sweep in this same space. ``computing``: ``fn`` is about to
        be called, so refuse it if it reads a parameter it is not swept over (the same walk
        of its code gives both).
        """
        try:
            binding = self._cache[fn]
        except (KeyError, TypeError):
            binding = self._bind(fn)
        label = self._versions.get(_weak_key(fn))
        if computing:
            found = inspect_function(fn)
            self._refuse_stray_reads(binding, found.objects, found.attributes)
            own = getattr(fn, "__xsweep_version__", None)
            now = label or (f"version:{own}" if own is not None else found.fingerprint)
        else:
            now = label or fingerprint(fn)
        return (
            binding if now == binding.fingerprint else dataclasses.replace(binding, fingerprint=now)
        )

    def _refuse_stray_reads(
        self, binding: Binding, objects: tuple[tuple[str, Any], ...], attributes: frozenset[str]
    ) -> None:
        """Refuse a function that reads ``p.value`` of a parameter that is not one of its dims.

        Its cells would hold whatever value that parameter had when they ran, stored as if
        they did not depend on it: a stale value the cache would serve forever. Refused
        rather than swept over silently: reading the parameter is not proof that the result
        depends on it, and a dim the user did not ask for multiplies the cells.
        """
        if "value" not in attributes:  # reads .values, .name, .units...: no cell value
            return
        stray: dict[str, str] = {}
        for how, obj in objects:
            param = self._by_id.get(id(obj))
            if param is not None and param not in binding.dims:
                stray.setdefault(param, how)
        if not stray:
            return
        names = list(stray)
        reads = ", ".join(
            f"{p!r} (as {how}.value)" if how != p else repr(p) for p, how in stray.items()
        )
        one = len(names) == 1
        them, they = ("it", "it becomes a dim") if one else ("them", "they become dims")
        raise SweepError(
            f"{binding.name} reads the parameter{'' if one else 's'} {reads}, but its results "
            f"are stored over {list(binding.dims)} only: each cell would hold whatever value "
            f"{them} had when it ran, and the cache could not tell those apart. Declare "
            f"{them}, and {they} of its results, set per cell: ps.sweep({binding.name}, "
            f"depends_on={names!r}) (run_process takes depends_on= too; the space remembers "
            f"it for run_process, cell and explore), or make {them} "
            f"{'an argument' if one else 'arguments'} of {binding.name}."
        )

    def _bind(self, fn: Callable[..., Any]) -> Binding:
        if not callable(fn):
            raise SweepError(f"Expected a function to sweep, got {type(fn).__name__} {fn!r}.")
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise SweepError(f"Cannot read the arguments of {fn!r} ({exc}).") from None
        takes: set[str] = set()
        takes_all = False
        order: list[str] = []
        for arg in sig.parameters.values():
            if arg.kind is arg.VAR_KEYWORD:
                takes_all = True
            elif arg.kind is arg.VAR_POSITIONAL:
                continue
            elif arg.name in self._params:
                if arg.kind is arg.POSITIONAL_ONLY:
                    raise SweepError(
                        f"{fn.__qualname__}: argument {arg.name!r} is positional-only; xsweep "
                        "passes parameters by name. Remove the '/' from its signature."
                    )
                takes.add(arg.name)
                order.append(arg.name)
            elif arg.default is arg.empty:
                raise SweepError(
                    f"{getattr(fn, '__qualname__', fn)!r} takes an argument {arg.name!r} that is "
                    f"not a parameter of the space and has no default. The space's parameters "
                    f"are {list(self._params)}; rename the argument or give it a default."
                )
        takes_dims = tuple(n for n in self._params if takes_all or n in takes)
        sets_values, reads = self._reads.get(_weak_key(fn), (False, ()))
        if not takes_dims and not reads:
            sets_values = True  # TINC's save_graph(): reads every parameter's .value
            reads = tuple(self._params)
        dims = tuple(n for n in self._params if n in takes_dims or n in reads)
        sets_values = sets_values or bool(reads)
        plain = [a.name for a in sig.parameters.values() if a.kind is a.POSITIONAL_OR_KEYWORD]
        positional = sets_values or (not takes_all and plain[: len(dims)] == list(dims))
        name = self._names.get(_weak_key(fn)) or function_key(fn)
        binding = Binding(
            name,
            name,
            dims,
            positional,
            self._versions.get(_weak_key(fn)) or fingerprint(fn),
            takes_dims,
            sets_values,
        )
        try:
            self._cache[fn] = binding
        except TypeError:
            pass
        return binding

    def remember(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        set_values: bool = False,
        depends_on: Sequence[str] | None = None,
        version: str | None = None,
    ) -> None:
        """Record per-function options of a sweep; later calls (run_process) use them too."""
        key = _weak_key(fn)
        if name is not None:
            problem = name_problem(name) if isinstance(name, str) else "is not a str"
            if problem or name != variable_prefix(name):
                raise SweepError(
                    f"name={name!r:.80} cannot name a function's results: use letters, digits "
                    "and underscores, not starting with '_' (e.g. name='beam_model')."
                )
            self._names[key] = name
        if version is not None:
            self._versions[key] = f"version:{version}"
        if depends_on is not None:
            if isinstance(depends_on, str):
                depends_on = [depends_on]
            if not isinstance(depends_on, (list, tuple)) or not all(
                isinstance(d, str) for d in depends_on
            ):
                raise SweepError(
                    f"depends_on must be a list of parameter names, e.g. depends_on=['length'], "
                    f"not {depends_on!r:.60}."
                )
            unknown = [d for d in depends_on if d not in self._params]
            if unknown:
                raise SweepError(
                    f"depends_on names {unknown}, which are not parameters of the space; the "
                    f"space has {list(self._params)}."
                )
        if set_values or depends_on is not None:
            self._reads[key] = (bool(set_values), tuple(depends_on or ()))
        if name is not None or version is not None or set_values or depends_on is not None:
            self._cache.pop(fn, None)


def _weak_key(fn: Callable[..., Any]) -> Any:
    """A dict key for ``fn`` (functions are hashable; unhashable callables by id)."""
    try:
        hash(fn)
    except TypeError:
        return id(fn)
    return fn
