"""Parameters: a named axis of values with a current value and change callbacks."""

from __future__ import annotations

import difflib
import heapq
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..file_format import BOUNDS_ATTR
from .values import (
    KIND_PLURALS,
    as_grid_values,
    check_bounds,
    check_parameter_name,
    check_text_attribute,
    new_values,
    short_repr,
)

# Relative tolerance under which two floats name the same grid value, so that 0.1 + 0.2
# selects 0.3. Far below any spacing a real grid has.
FLOAT_RTOL = 1e-9


class _ReadOnlyError(ParameterError, AttributeError):
    """An attribute of a Parameter that cannot be changed (both a ParameterError and an
    AttributeError, so ``except AttributeError`` and ``except ValueError`` both catch it)."""


def _callback_identity(fn: Any) -> tuple | None:
    """What makes two callbacks "the same one, defined again", or None (never replaced)."""
    func = getattr(fn, "__func__", fn)
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(qualname, str) or "<lambda>" in qualname or not hasattr(func, "__code__"):
        return None
    owner = getattr(fn, "__self__", None)
    return (getattr(func, "__module__", None), qualname, id(owner) if owner is not None else None)


class Parameter:
    """A named axis of a parameter space: its values, current value and metadata.

    Parameters
    ----------
    name : str
        The name; it is matched to the argument names of the functions you sweep, and
        becomes the dimension and coordinate name in the resulting Dataset and file. A Python
        identifier in the form Python gives identifiers in source code (NFKC), not starting
        with an underscore, of at most 255 bytes in UTF-8 (NetCDF's ``NC_MAX_NAME``).
    values : sequence
        The grid values: a non-empty, 1-D sequence of unique values of one kind, int, unsigned
        int, float, str or bool (a list, tuple, ``range``, generator or numpy array). The
        dtype follows the values, so one class covers TINC's float, int, string, choice and
        bool kinds. Ints and floats may mix and become floats when every int is exactly a
        float. Ints that fit no 64-bit type, NaN, float16 and longdouble arrays, and strings
        holding a NUL or a lone surrogate (which NetCDF cannot store) are refused. The values
        are copied: :attr:`values` is a read-only array.
    default : optional
        The initial current value; the first value when omitted. It must be one of the
        values, looked up as :meth:`index` does.
    units, description : str, optional
        Stored as the coordinate's ``units`` and ``description`` attributes; text as for
        string values (no NUL, valid UTF-8).
    bounds : (low, high), optional
        Makes the parameter **continuous**: the range its values may take. Its values must
        then be numbers in increasing order inside the bounds, and
        :meth:`ParameterSpace.refine <xsweep.ParameterSpace.refine>` may add values between
        them (never outside the bounds). Without bounds a parameter is discrete: swept,
        never refined. Stored as the coordinate's ``xsweep_bounds`` attribute.

    Raises
    ------
    ParameterError
        When an argument is not valid; the message names the parameter and says what to do.

    Examples
    --------
    >>> import xsweep as xs
    >>> length = xs.Parameter("length", values=[1, 2, 3], units="m", description="beam length")
    >>> length.value
    1
    >>> length.value = 3
    >>> length.value = 2.5  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xsweep.errors.ParameterError: Parameter 'length': 2.5 is not one of its values. Nearest ...
    >>> xs.Parameter("w", values=None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xsweep.errors.ParameterError: Parameter 'w': values must be a non-empty 1-D sequence ...
    >>> xs.Parameter("s", values=["a\\0b"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xsweep.errors.ParameterError: Parameter 's': value 'a\\x00b' holds a NUL character ...

    A continuous parameter, declared by its range and a first sampling of it:

    >>> import numpy as np
    >>> x = xs.Parameter("x", values=np.linspace(0, 1, 5), bounds=(0.0, 1.0))
    >>> x.bounds, x.refinement_rounds.tolist()
    ((0.0, 1.0), [0, 0, 0, 0, 0])
    >>> xs.Parameter("x", values=[0.0, 2.0], bounds=(0.0, 1.0))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xsweep.errors.ParameterError: Parameter 'x': values [2.0] are outside its bounds (0.0, 1.0). ...
    """

    __slots__ = (
        "name",
        "_values",
        "units",
        "description",
        "_index",
        "_lookup",
        "_callbacks",
        "_watchers",
        "_is_bool",
        "_floats",
        "_rtol",
        "_bounds",
        "_rounds",
    )

    def __init__(
        self,
        name: str,
        values: Iterable[Any],
        *,
        default: Any = None,
        units: str | None = None,
        description: str | None = None,
        bounds: tuple[Any, Any] | None = None,
    ) -> None:
        check_parameter_name(name)
        self.name = name
        values = as_grid_values(name, values)
        check_text_attribute(name, "units", units)
        check_text_attribute(name, "description", description)
        self.units = units
        self.description = description
        self._bounds = None if bounds is None else check_bounds(name, values, bounds)
        self._rounds = None
        if self._bounds is not None:
            self._rounds = np.zeros(values.size, dtype=np.int32)
            self._rounds.setflags(write=False)
        self._is_bool = values.dtype.kind == "b"
        self._set_values(values)
        self._callbacks: list[Callable[[Any], Any]] = []
        self._watchers: list[Callable[[Any], Any]] = []
        self._index = 0 if default is None else self.index(default)

    def _set_values(self, values: np.ndarray) -> None:
        """Make ``values`` (read-only, checked) the grid, with the lookups built from it."""
        self._values = values
        # Exact-match lookup for the common case; floats fall back to a tolerance search.
        self._lookup = {v: i for i, v in enumerate(values.tolist())}
        self._floats = None
        self._rtol = FLOAT_RTOL
        if values.dtype.kind == "f":
            # The finite values as float64; inf and -inf are NaN here so that they never
            # match within a tolerance (they match only themselves, in the lookup above).
            floats = values.astype(np.float64)
            floats[~np.isfinite(floats)] = np.nan
            self._floats = floats
            self._rtol = max(FLOAT_RTOL, float(np.finfo(values.dtype).eps))

    # -- values -----------------------------------------------------------------------------
    @property
    def values(self) -> np.ndarray:
        """The grid values: a read-only 1-D numpy array, fixed when the parameter is created.

        To sweep other values, create a new Parameter and a new ParameterSpace from it; a
        cache file it shares with the old space grows to hold the new values, and keeps the
        results of values it already has.

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("x", values=[1.0, 2.0])
        >>> p.values
        array([1., 2.])
        >>> try:
        ...     p.values = [1.0, 2.0, 3.0]
        ... except xs.ParameterError as exc:  # also an AttributeError
        ...     print(exc)  # doctest: +ELLIPSIS
        Parameter 'x': values cannot be changed once the parameter exists ... Create a new
        Parameter('x', values=...) and a new ParameterSpace from it; ...
        >>> p = xs.Parameter("x", values=[1.0, 2.0, 3.0])  # do this instead
        """
        return self._values

    @values.setter
    def values(self, new: Any) -> None:
        raise _ReadOnlyError(
            f"Parameter {self.name!r}: values cannot be changed once the parameter exists "
            "(the space's grid, cache and widgets are built from them). Create a new "
            f"Parameter({self.name!r}, values=...) and a new ParameterSpace from it; pointed at "
            "the same cache file, it grows the file to hold new values and keeps the results "
            "of values the file already has."
        )

    @values.deleter
    def values(self) -> None:
        self.values = None  # raises

    def __setstate__(self, state: Any) -> None:
        # copy.deepcopy and pickle: restore the slots, and keep the copied values read-only.
        slots = state[1] if isinstance(state, tuple) else state
        for key, value in (slots or {}).items():
            object.__setattr__(self, key, value)
        if not hasattr(self, "_watchers"):
            self._watchers = []
        for name in ("_bounds", "_rounds"):  # pickled by a release without them
            if not hasattr(self, name):
                object.__setattr__(self, name, None)
        self._values.setflags(write=False)
        if self._rounds is not None:
            self._rounds.setflags(write=False)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        units = f", units={self.units!r}" if self.units else ""
        bounds = f", bounds={self._bounds!r}" if self._bounds is not None else ""
        return (
            f"Parameter({self.name!r}, values={self._values.tolist()!r}, "
            f"value={self.value!r}{units}{bounds})"
        )

    # -- continuous parameters ------------------------------------------------------------------
    @property
    def bounds(self) -> tuple[Any, Any] | None:
        """``(low, high)`` of a continuous parameter, None for a discrete one.

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.Parameter("x", values=[0.0, 1.0], bounds=(0, 1)).bounds
        (0.0, 1.0)
        >>> xs.Parameter("n", values=[1, 2]).bounds is None
        True
        """
        return self._bounds

    @property
    def refinement_rounds(self) -> np.ndarray | None:
        """Which refinement round added each value: 0 for declared ones (read-only).

        None for a discrete parameter. Aligned with :attr:`values`.

        Examples
        --------
        >>> import xsweep as xs
        >>> x = xs.Parameter("x", values=[0.0, 1.0], bounds=(0.0, 1.0))
        >>> x.insert_values([0.5], refinement_round=1)
        >>> x.values.tolist(), x.refinement_rounds.tolist()
        ([0.0, 0.5, 1.0], [0, 1, 0])
        """
        return self._rounds

    def insert_values(self, values: Iterable[Any], *, refinement_round: int) -> None:
        """Add values inside the bounds of a continuous parameter; the values stay sorted.

        :meth:`ParameterSpace.refine <xsweep.ParameterSpace.refine>` calls this for each
        round (``refinement_round``, 1, 2, ...; 0 for values a space adopts from its cache
        file). The current value stays the same (no callback fires), and every space using
        the parameter follows at its next sweep or look: new values are new, not computed
        cells. A discrete parameter's values never change.

        Raises
        ------
        ParameterError
            For a discrete parameter, a value outside the bounds, one of another kind, or a
            value the parameter has already (within the tolerance of :meth:`index`).

        Examples
        --------
        >>> import xsweep as xs
        >>> n = xs.Parameter("n", values=[1, 9], bounds=(1, 9))
        >>> n.insert_values([5], refinement_round=1)
        >>> n.values.tolist()
        [1, 5, 9]
        >>> n.insert_values([12], refinement_round=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xsweep.errors.ParameterError: Parameter 'n': cannot add [12]: outside its bounds (1, 9). ...
        """
        if self._bounds is None:
            raise ParameterError(
                f"Parameter {self.name!r} is discrete (declared without bounds=): its values "
                "never change. Declare it with bounds=(low, high) to refine it."
            )
        if isinstance(refinement_round, bool) or not isinstance(refinement_round, int):
            raise ParameterError(
                f"Parameter {self.name!r}: refinement_round must be an int >= 0, not "
                f"{refinement_round!r:.40}."
            )
        added = new_values(self.name, values, self._values.dtype, self._bounds, self._has)
        if added.size == 0:
            return
        current = self.value
        merged = np.concatenate([self._values, added])
        order = np.argsort(merged, kind="stable")
        rounds = np.concatenate(
            [self._rounds, np.full(added.size, max(refinement_round, 0), np.int32)]
        )[order]
        grown = merged[order]
        grown.setflags(write=False)
        rounds.setflags(write=False)
        self._set_values(grown)
        self._rounds = rounds
        self._index = self._lookup[current]

    def _has(self, value: Any) -> bool:
        """Whether ``value`` is one of the values (as :meth:`index` finds them)."""
        if value in self._lookup:
            return True
        return self._floats is not None and self._near_float(value) is not None

    def index(self, value: Any) -> int:
        """Position of ``value`` among the values.

        The rules, by the kind of the values:

        - **float**: ``value`` (an int or float) matches a value ``g`` when
          ``|g - value| <= 1e-9 * max(|g|, |value|)``, so ``0.1 + 0.2`` finds ``0.3``; when
          several values match, the nearest wins. The tolerance is relative to each value
          and there is no absolute one: ``0.0`` matches only ``0.0`` and ``-0.0``, and a tiny
          value such as ``1e-300`` (or a round-off residue like ``0.1 + 0.2 - 0.3``) does not
          find ``0.0``. ``inf`` and ``-inf`` match only themselves. For float32 values, or a
          float32 ``value``, the tolerance is float32's precision (``1.2e-7``), so the
          Python float ``0.1`` finds ``np.float32(0.1)``.
        - **int, unsigned int**: exact. An int matches only itself; a float matches only
          when it is integral and exactly equal (``2.0`` finds ``2``, ``2.5`` finds nothing).
        - **str**: exact.
        - **bool**: exact, and only bools: ``1`` does not find ``True``, and ``True`` finds
          nothing among numbers (in Python ``True == 1``, which here would hide mistakes).

        Raises
        ------
        ParameterError
            When ``value`` is not among the values, or is NaN; the message names the nearest
            ones. It is a ``ValueError``.

        Examples
        --------
        >>> import numpy as np
        >>> import xsweep as xs
        >>> xs.Parameter("x", values=[0.1, 0.2, 0.3]).index(0.1 + 0.2)
        2
        >>> xs.Parameter("x", values=np.float32([0.1, 0.2])).index(0.2)
        1
        >>> xs.Parameter("n", values=[1, 2, 3]).index(2.0)
        1
        >>> xs.Parameter("x", values=np.logspace(0, 18, 19)).index(5.0)
        ... # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        xsweep.errors.ParameterError: Parameter 'x': 5.0 is not one of its values.
        Nearest valid values: 1.0, 10.0.
        >>> xs.Parameter("x", values=[0.0, 1.0]).index(1e-300)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xsweep.errors.ParameterError: Parameter 'x': 1e-300 is not one of its values. ...
        >>> xs.Parameter("n", values=[0, 1, 2]).index(True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xsweep.errors.ParameterError: Parameter 'n': True is not one of its values (a bool never ...
        """
        try:
            i = self._lookup.get(value)
        except TypeError:  # unhashable
            i = None
        if i is not None and isinstance(value, (bool, np.bool_)) == self._is_bool:
            return i
        return self._search(value)

    def _search(self, value: Any) -> int:
        """:meth:`index` when the exact lookup fails: tolerances, conversions and errors."""
        if isinstance(value, np.ndarray) and value.ndim == 0:
            return self.index(value[()])  # a 0-d array: its scalar
        kind = self._values.dtype.kind
        why = ""
        if isinstance(value, (bool, np.bool_)):
            if not self._is_bool:
                why = f" (a bool never matches {KIND_PLURALS[kind]}; give one of the values)"
        elif self._is_bool:
            why = " (the values are bools: give True or False)"
        elif isinstance(value, (float, np.floating)) and value != value:
            why = " (NaN matches no value: a parameter's values are never NaN)"
        elif kind == "f" and isinstance(value, (int, float, np.integer, np.floating)):
            i = self._near_float(value)
            if i is not None:
                return i
        elif kind in "iu" and isinstance(value, (float, np.floating)):
            if np.isfinite(value) and value % 1 == 0:
                i = self._lookup.get(int(value))
                if i is not None:
                    return i
        elif kind in "iuf" and not isinstance(value, (int, np.integer)):
            why = f" (its type is {type(value).__name__}; the values are {KIND_PLURALS[kind]})"
        elif kind == "U" and not isinstance(value, str):
            why = f" (its type is {type(value).__name__}; the values are strings)"
        raise ParameterError(
            f"Parameter {self.name!r}: {short_repr(value)} is not one of its values{why}. "
            f"Nearest valid values: {self._nearest(value)}."
        )

    def _near_float(self, value: Any) -> int | None:
        """The nearest float value within the relative tolerance of ``value``, if any."""
        try:
            v = float(value)
        except OverflowError:  # an int beyond any float: no finite value is near it
            return None
        if math.isinf(v):  # inf matches only inf, found by the exact lookup if there
            return self._lookup.get(v) if np.isinf(value) else None
        rtol = self._rtol
        if isinstance(value, np.floating) and value.dtype.itemsize < 8:
            rtol = max(rtol, float(np.finfo(value.dtype).eps))
        floats = self._floats
        assert floats is not None  # float values (the caller checks the kind)
        with np.errstate(over="ignore", invalid="ignore"):
            diff = np.abs(floats - v)
            close = np.flatnonzero(diff <= rtol * np.maximum(np.abs(floats), abs(v)))
        if close.size == 0:
            return None
        return int(close[np.argmin(diff[close])])

    def _nearest(self, value: Any) -> str:
        """The values nearest ``value`` (or the first values), as text for error messages."""
        vals = self._values
        items = vals.tolist()
        kind = vals.dtype.kind
        near: list = []
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
        if kind in "iuf" and number and value == value:
            near = self._bracket(value)
        elif kind == "U" and isinstance(value, str):
            # The most similar first; equally similar ones in grid order.
            others = [s for s in items if s != value]
            near = heapq.nlargest(
                3, others, key=lambda s: difflib.SequenceMatcher(None, value, s).ratio()
            )
        if not near:
            near = [v for v in items if not (type(v) is type(value) and v == value)][:5]
        if kind in "iuf":
            near = sorted(near)
        text = ", ".join(short_repr(v) if isinstance(v, str) else str(v) for v in near)
        if len(items) <= 10 and len(items) > len(near):
            return f"{text} (all values: [{', '.join(short_repr(v) for v in items)}])"
        return text

    def _bracket(self, value: Any) -> list:
        """The values just below and just above the number ``value`` (two of them: when
        ``value`` is beyond one end, the two nearest it)."""
        vals = self._values
        if vals.dtype.kind in "iu" and isinstance(value, (int, np.integer)):
            target = int(value)  # exact, even beyond float precision
            items = vals.tolist()
            below = [v for v in items if v < target]
            above = [v for v in items if v > target]
            near = ([max(below)] if below else []) + ([min(above)] if above else [])
            rest = [v for v in items if v not in near]
            return near + heapq.nsmallest(2 - len(near), rest, key=lambda v: abs(v - target))
        try:
            v = float(value)
        except OverflowError:  # an int beyond any float: near the end of the grid
            v = math.inf if value > 0 else -math.inf
        floats = vals.astype(np.float64)
        lower, upper = np.flatnonzero(floats < v), np.flatnonzero(floats > v)
        picks = []
        if lower.size:
            picks.append(int(lower[np.argmax(floats[lower])]))
        if upper.size:
            picks.append(int(upper[np.argmin(floats[upper])]))
        if len(picks) < 2 and len(floats) > len(picks):
            with np.errstate(over="ignore", invalid="ignore"):
                key = -floats if v == math.inf else floats if v == -math.inf else abs(floats - v)
            key = np.where(np.isnan(key), np.inf, key)
            key[picks] = np.nan  # argsort puts NaN last
            picks += np.argsort(key, kind="stable")[: 2 - len(picks)].tolist()
        return vals[picks].tolist()

    # -- current value ------------------------------------------------------------------------
    @property
    def value(self) -> Any:
        """The current value, a plain Python scalar. Setting it fires the callbacks.

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("x", values=[0.1, 0.2, 0.3])
        >>> p.value = 0.1 + 0.1
        >>> p.value
        0.2
        """
        return self._values[self._index].item()

    @value.setter
    def value(self, new: Any) -> None:
        self.move_to(self.index(new), callbacks=True)

    @property
    def position(self) -> int:
        """Where the current value sits in :attr:`values` (its index).

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("x", values=[10, 20, 30], default=20)
        >>> p.position
        1
        """
        return self._index

    def move_to(self, index: int, *, callbacks: bool, watchers: bool = True) -> None:
        """Make ``values[index]`` the current value, telling the callbacks or not.

        ``callbacks``: call them, as setting :attr:`value` does; ``watchers``: call the
        functions given to :meth:`watch` (views). A value read from the cache moves the
        value without callbacks while views still follow; a sweep that sets values per
        cell (``set_values=True``) tells no one.

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("x", values=[10, 20, 30])
        >>> p.register_callback(lambda v: print("callback", v))
        >>> p.move_to(2, callbacks=False)
        >>> p.value
        30
        >>> p.move_to(0, callbacks=True)
        callback 10
        """
        if index == self._index:
            return
        self._index = index
        if callbacks or (watchers and self._watchers):
            new = self._values[index].item()
            if watchers:
                for watcher in list(self._watchers):
                    watcher(new)
            if callbacks:
                for cb in list(self._callbacks):
                    cb(new)

    def watch(self, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(new_value)`` on every change of the current value, silent ones included.

        Unlike callbacks, watchers also hear the changes that do not fire callbacks, such as
        ``run_process`` answering from the cache: they are for views that mirror the value
        (a widget). A sweep with ``set_values=True`` moves values per cell without telling
        anyone.

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("p", values=[1, 2, 3])
        >>> p.watch(lambda v: print("shown", v))
        >>> p.value = 3
        shown 3
        """
        if not callable(fn):
            raise ParameterError(f"Parameter {self.name!r}: watcher {fn!r} is not callable.")
        if fn not in self._watchers:
            self._watchers.append(fn)

    def unwatch(self, fn: Callable[[Any], Any]) -> None:
        """Stop calling a watcher; nothing happens if it is not watching.

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("p", values=[1, 2])
        >>> p.watch(print)
        >>> p.unwatch(print)
        >>> p.value = 2
        """
        if fn in self._watchers:
            self._watchers.remove(fn)

    # -- callbacks ----------------------------------------------------------------------------
    def register_callback(self, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(new_value)`` whenever the current value changes.

        Exceptions raised by ``fn`` propagate to the code that set the value. Registering
        a function with the same module and qualified name as one already registered (a
        notebook cell run again) replaces it; lambdas and other callables are always added.

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("p", values=[1, 2, 3])
        >>> p.register_callback(lambda v: print("now", v))
        >>> p.value = 2
        now 2
        >>> def report(v):
        ...     print("report", v)
        >>> p.register_callback(report)
        >>> def report(v):  # the cell is run again with an edit
        ...     print("new report", v)
        >>> p.register_callback(report)
        >>> p.value = 3
        now 3
        new report 3
        """
        if not callable(fn):
            raise ParameterError(f"Parameter {self.name!r}: callback {fn!r} is not callable.")
        # Re-running a notebook cell defines the callback anew: the new one replaces the old
        # (same module and qualified name; for methods, of the same object), never both.
        same = _callback_identity(fn)
        if same is not None:
            self._callbacks[:] = [cb for cb in self._callbacks if _callback_identity(cb) != same]
        self._callbacks.append(fn)

    def remove_callback(self, fn: Callable[[Any], Any]) -> None:
        """Stop calling ``fn`` on changes.

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("p", values=[1, 2])
        >>> show = print
        >>> p.register_callback(show)
        >>> p.remove_callback(show)
        >>> p.value = 2
        """
        try:
            self._callbacks.remove(fn)
        except ValueError:
            raise ParameterError(
                f"Parameter {self.name!r}: {fn!r} is not a registered callback "
                f"({len(self._callbacks)} registered)."
            ) from None

    def widget(self) -> Any:
        """A notebook control for this parameter, synced with ``.value`` both ways.

        A selection slider for numbers, a dropdown or toggle buttons for strings, a checkbox
        for bools (needs ``pip install 'xsweep-nc[notebook]'``); see
        :func:`xsweep.views.widgets.parameter_widget`.

        Examples
        --------
        >>> import xsweep as xs
        >>> flag = xs.Parameter("smooth", values=[False, True])
        >>> type(flag.widget()).__name__
        'Checkbox'
        """
        from ..views.widgets import parameter_widget

        return parameter_widget(self)

    # -- xarray -------------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        """The coordinate attributes: ``long_name``, ``units``, ``description``, and for a
        continuous parameter ``xsweep_bounds`` (an array ``[low, high]``).

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.Parameter("length", values=[1, 2], units="m").attrs
        {'long_name': 'length', 'units': 'm'}
        >>> xs.Parameter("x", values=[0.0, 1.0], bounds=(0, 1)).attrs["xsweep_bounds"]
        array([0., 1.])
        """
        attrs: dict[str, Any] = {"long_name": self.name}
        if self.units:
            attrs["units"] = self.units
        if self.description:
            attrs["description"] = self.description
        if self._bounds is not None:
            attrs[BOUNDS_ATTR] = np.array(self._bounds, dtype=self._values.dtype)
        return attrs
