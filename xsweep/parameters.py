"""Parameters: a named axis of values with a current value and change callbacks."""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .errors import ParameterError

# Relative tolerance under which two floats name the same grid value, so that 0.1 + 0.2
# selects 0.3. Far below any spacing a real grid has.
FLOAT_RTOL = 1e-9

_ALLOWED_KINDS = {"b": "bool", "i": "int", "u": "unsigned int", "f": "float", "U": "str"}


def _as_values(name: str, values: Iterable[Any]) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise ParameterError(
            f"Parameter {name!r}: values must be a sequence of values, not a single string "
            f"{values!r}. Wrap it in a list: values=[{values!r}]."
        )
    if isinstance(values, np.ndarray):
        items = values
    else:
        items = list(values)
    try:
        arr = np.asarray(items)
    except (ValueError, TypeError) as exc:
        raise ParameterError(
            f"Parameter {name!r}: values cannot form a 1-D array ({exc}). "
            "Pass a flat list of numbers, strings or bools."
        ) from None
    if arr.ndim != 1:
        raise ParameterError(
            f"Parameter {name!r}: values must be 1-D, got an array of shape {arr.shape}. "
            "Pass a flat list such as [1, 2, 3]."
        )
    if arr.size == 0:
        raise ParameterError(f"Parameter {name!r}: values is empty. Give at least one value.")
    if arr.dtype.kind not in _ALLOWED_KINDS:
        raise ParameterError(
            f"Parameter {name!r}: values of dtype {arr.dtype} are not supported. "
            f"Use one of: {', '.join(_ALLOWED_KINDS.values())} (all values of one kind)."
        )
    if arr.dtype.kind == "U" and not all(isinstance(v, (str, np.str_)) for v in items):
        raise ParameterError(
            f"Parameter {name!r}: values mix strings with other types ({list(items)!r}). "
            "Use values of a single kind."
        )
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ParameterError(f"Parameter {name!r}: values contain NaN. Remove it.")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        dups = [v.item() for v in uniq[counts > 1]]
        raise ParameterError(
            f"Parameter {name!r}: values must be unique, but {dups!r} appear more than once."
        )
    arr.setflags(write=False)
    return arr


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ParameterError(
            f"Parameter name {name!r} is not a valid Python identifier. The name is matched to "
            "the argument names of swept functions: use letters, digits and underscores, "
            "not starting with a digit, e.g. 'beam_length'."
        )
    if name.startswith("_"):
        raise ParameterError(
            f"Parameter name {name!r} starts with an underscore, which NetCDF reserves. "
            f"Use a name such as {name.lstrip('_') or 'p'!r}."
        )


class Parameter:
    """A named axis of a parameter space: its values, current value and metadata.

    Parameters
    ----------
    name : str
        The name; it is matched to the argument names of the functions you sweep, and
        becomes the dimension and coordinate name in the resulting Dataset and file.
    values : sequence
        The grid values, 1-D and unique: numbers, strings or bools (the dtype follows the
        values, so one class covers TINC's float, int, string, choice and bool kinds).
    default : optional
        The initial current value; the first value when omitted.
    units, description : str, optional
        Stored as the coordinate's ``units`` and ``description`` attributes.

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
    """

    __slots__ = ("name", "values", "units", "description", "_index", "_lookup", "_callbacks")

    def __init__(
        self,
        name: str,
        values: Iterable[Any],
        *,
        default: Any = None,
        units: str | None = None,
        description: str | None = None,
    ) -> None:
        _check_name(name)
        self.name = name
        self.values = _as_values(name, values)
        self.units = units
        self.description = description
        # Exact-match lookup for the common case; floats fall back to a tolerance search.
        self._lookup = {v.item(): i for i, v in enumerate(self.values)}
        self._callbacks: list[Callable[[Any], Any]] = []
        self._index = 0 if default is None else self.index(default)

    # -- values -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        units = f", units={self.units!r}" if self.units else ""
        return (
            f"Parameter({self.name!r}, values={self.values.tolist()!r}, "
            f"value={self.value!r}{units})"
        )

    def index(self, value: Any) -> int:
        """Position of ``value`` among the values.

        Floats within a relative tolerance of 1e-9 match, so ``0.1 + 0.2`` finds ``0.3``.

        Raises
        ------
        ValueError
            When ``value`` is not among the values; the message names the nearest ones.

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.Parameter("x", values=[0.1, 0.2, 0.3]).index(0.1 + 0.2)
        2
        """
        kind = self.values.dtype.kind
        try:
            i = self._lookup.get(value)
        except TypeError:  # unhashable
            i = None
        if i is not None and (kind != "b" or isinstance(value, (bool, np.bool_))):
            return i
        if kind in "iuf" and isinstance(value, (int, float, np.integer, np.floating)):
            if not isinstance(value, (bool, np.bool_)):
                vals = self.values.astype(float)
                scale = max(float(np.abs(vals).max()), 1.0)
                close = np.flatnonzero(
                    np.abs(vals - float(value))
                    <= FLOAT_RTOL * max(abs(float(value)), 1e-300) + 1e-15 * scale
                )
                if close.size:
                    return int(close[0])
        raise ParameterError(
            f"Parameter {self.name!r}: {value!r} is not one of its values. "
            f"Nearest valid values: {self._nearest(value)}."
        )

    def _nearest(self, value: Any) -> str:
        kind = self.values.dtype.kind
        vals = self.values
        if kind in "iuf" and isinstance(value, (int, float, np.integer, np.floating)):
            order = np.argsort(np.abs(vals.astype(float) - float(value)), kind="stable")[:2]
            near = sorted(vals[order].tolist())
        elif kind == "U" and isinstance(value, str):
            near = difflib.get_close_matches(value, vals.tolist(), n=3, cutoff=0.0)
        else:
            near = vals[:5].tolist()
        text = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in near)
        if len(vals) <= 10:
            return f"{text} (all values: {vals.tolist()!r})" if len(vals) > len(near) else text
        return text

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
        return self.values[self._index].item()

    @value.setter
    def value(self, new: Any) -> None:
        self._set_index(self.index(new), fire=True)

    def _set_index(self, index: int, *, fire: bool) -> None:
        if index == self._index:
            return
        self._index = index
        if fire:
            new = self.values[index].item()
            for cb in list(self._callbacks):
                cb(new)

    # -- callbacks ----------------------------------------------------------------------------
    def register_callback(self, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(new_value)`` whenever the current value changes.

        Exceptions raised by ``fn`` propagate to the code that set the value.

        Examples
        --------
        >>> import xsweep as xs
        >>> p = xs.Parameter("p", values=[1, 2])
        >>> p.register_callback(lambda v: print("now", v))
        >>> p.value = 2
        now 2
        """
        if not callable(fn):
            raise ParameterError(f"Parameter {self.name!r}: callback {fn!r} is not callable.")
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

    def widget(self):
        """A notebook control for this parameter, synced with ``.value`` both ways.

        A selection slider for numbers, a dropdown or toggle buttons for strings, a checkbox
        for bools (needs ``pip install 'xsweep[notebook]'``); see
        :func:`xsweep.widgets.parameter_widget`.

        Examples
        --------
        >>> import xsweep as xs
        >>> flag = xs.Parameter("smooth", values=[False, True])
        >>> type(flag.widget()).__name__
        'Checkbox'
        """
        from .widgets import parameter_widget

        return parameter_widget(self)

    # -- xarray -------------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, str]:
        """The coordinate attributes: ``long_name``, ``units``, ``description``.

        Examples
        --------
        >>> import xsweep as xs
        >>> xs.Parameter("length", values=[1, 2], units="m").attrs
        {'long_name': 'length', 'units': 'm'}
        """
        attrs = {"long_name": self.name}
        if self.units:
            attrs["units"] = self.units
        if self.description:
            attrs["description"] = self.description
        return attrs
