"""A parameter's values: what a user may give, checked and turned into a read-only 1-D grid.

Everything here refuses what a NetCDF file or a swept function could not keep exactly
(mixed kinds, ints beyond 64 bits, NaN, text with a NUL), with a message saying what to give.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import keyword
import reprlib
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..text import MAX_NAME_BYTES, NC_MAX_NAME, text_problem

_ALLOWED_KINDS = {"b": "bool", "i": "int", "u": "unsigned int", "f": "float", "U": "str"}


_SUPPORTED = "int, unsigned int, float, str, bool"


_EXAMPLES = "e.g. values=[1, 2, 3], values=range(5) or values=np.linspace(0, 1, 11)"


#: Each numpy dtype kind of a grid, named in the plural for messages.
KIND_PLURALS = {"b": "bools", "i": "ints", "u": "unsigned ints", "f": "floats", "U": "strings"}


# Values shown in messages: whole unless huge (a 10**400 int, a megabyte string).
_REPR = reprlib.Repr()


_REPR.maxstring, _REPR.maxlong, _REPR.maxother = 200, 60, 200


def short_repr(value: Any) -> str:
    """A value as shown in messages: its repr, shortened when huge."""
    return _REPR.repr(value)


def _check_text(name: str, what: str, text: str) -> None:
    problem = text_problem(text)
    if problem:
        raise ParameterError(
            f"Parameter {name!r}: {what} {short_repr(text)} {problem}. NetCDF files hold text "
            "as UTF-8 that ends at the first NUL, so the results file could not keep it. Remove or "
            "replace the character."
        )


def check_text_attribute(name: str, what: str, text: Any) -> None:
    """Refuse a parameter's ``units`` or ``description`` unless None or text a file keeps."""
    if text is None:
        return
    if not isinstance(text, str):
        raise ParameterError(
            f"Parameter {name!r}: {what} must be a str or None, not {short_repr(text)} "
            f"({type(text).__name__}), e.g. {what}={'m' if what == 'units' else 'beam length'!r}."
        )
    _check_text(name, what, text)


def _hint(value: Any) -> str:
    """A suggestion for a value of an unsupported type."""
    if value is None:
        return (
            " None cannot be a grid value; to mean 'not set' use a string such as 'none', or "
            "a separate bool parameter."
        )
    if isinstance(value, (complex, np.complexfloating)):
        return " Sweep the real and imaginary parts as two float parameters."
    if isinstance(value, (bytes, bytearray, np.bytes_)):
        return " Decode bytes to str, e.g. values=[v.decode() for v in values]."
    if isinstance(
        value, (datetime.date, datetime.time, datetime.timedelta, np.datetime64, np.timedelta64)
    ):
        return (
            " Give dates and times as strings (d.isoformat()) or as numbers (e.g. seconds "
            "since a reference time)."
        )
    if isinstance(value, (decimal.Decimal, fractions.Fraction)):
        return " Convert it with float() or int()."
    return ""


def _kind_of(tp: type) -> str | None:
    """The kind of grid value a Python or numpy type gives: one of 'bool', 'int', 'float',
    'str', 'nested' (a sequence: the values are not 1-D), or None (not supported)."""
    if issubclass(tp, (bool, np.bool_)):
        return "bool"
    if issubclass(tp, (int, np.integer)):
        return "int"
    if issubclass(tp, (float, np.floating)):
        return "float"
    if issubclass(tp, str):
        return "str"
    if issubclass(tp, (list, tuple, range, set, frozenset, np.ndarray)):
        return "nested"
    return None


def _unsupported(name: str, value: Any) -> ParameterError:
    return ParameterError(
        f"Parameter {name!r}: values of type {type(value).__name__} (such as {short_repr(value)}) "
        f"are not supported. Values must all be of one of these kinds: {_SUPPORTED}.{_hint(value)}"
    )


def _from_items(name: str, items: list) -> np.ndarray:
    """The array of a list of Python or numpy scalars, refusing anything it would change."""
    if not items:
        raise ParameterError(f"Parameter {name!r}: values is empty. Give at least one value.")
    if any(isinstance(v, np.ndarray) for v in items):
        items = [v[()] if isinstance(v, np.ndarray) and v.ndim == 0 else v for v in items]
    kinds = _kinds(name, items)
    if "str" in kinds:
        for v in items:
            _check_text(name, "value", v)
        return np.array(items, dtype=str)
    if "bool" in kinds:
        return np.array(items, dtype=bool)
    if "float" in kinds:
        _check_float_items(name, items, mixed="int" in kinds)
    try:
        arr = np.asarray(items)
    except (ValueError, TypeError, OverflowError):
        arr = np.asarray(items, dtype=object)
    if set(kinds) == {"int"} and arr.dtype.kind not in "iu":
        # numpy gives floats (or objects) when the ints fit no single 64-bit type.
        arr = _int_array(name, items)
    _check_held_exactly(name, items, arr)
    return arr


def _kinds(name: str, items: list) -> dict[str, Any]:
    """Each kind of value among ``items`` and its first value; refuses what no grid holds:
    unsupported types, nested sequences, and mixed kinds other than ints with floats."""
    kinds: dict[str, Any] = {}  # kind -> its first value
    for tp in set(map(type, items)):
        kind = _kind_of(tp)
        if kind is None or kind == "nested":
            first = next(v for v in items if type(v) is tp)
            if kind is None:
                raise _unsupported(name, first)
            raise ParameterError(
                f"Parameter {name!r}: values must be 1-D, a flat sequence of single values, "
                f"but it holds {short_repr(first)} ({type(first).__name__}). Pass a flat list "
                f"such as [1, 2, 3] of one of these kinds: {_SUPPORTED}."
            )
        kinds.setdefault(kind, next(v for v in items if type(v) is tp))
    if len(kinds) > 1 and set(kinds) != {"int", "float"}:
        shown = ", ".join(f"{k} ({short_repr(v)})" for k, v in sorted(kinds.items()))
        raise ParameterError(
            f"Parameter {name!r}: values mix kinds: {shown}. Use values of a single kind "
            f"({_SUPPORTED}); ints and floats may mix and become floats."
        )
    return kinds


def _check_float_items(name: str, items: list, mixed: bool) -> None:
    """Refuse NaN among float values, and (``mixed`` with ints) an int no float holds."""
    if any(isinstance(v, (float, np.floating)) and v != v for v in items):
        raise ParameterError(f"Parameter {name!r}: values contain NaN. Remove it.")
    if not mixed:
        return
    for v in items:
        if isinstance(v, (int, np.integer)) and not _exact_float(int(v)):
            raise ParameterError(
                f"Parameter {name!r}: values mix floats with the int {short_repr(v)}, which "
                "no float holds exactly, so it would silently change. Give all values as "
                "ints, or all as floats if approximate values will do."
            )


def _int_array(name: str, items: list) -> np.ndarray:
    """The int64 or uint64 array of ints numpy could not type, or why none holds them."""
    ints = [int(v) for v in items]
    lo, hi = min(ints), max(ints)
    if -(2**63) <= lo and hi < 2**63:
        return np.array(ints, dtype=np.int64)
    if lo >= 0 and hi < 2**64:
        return np.array(ints, dtype=np.uint64)
    raise ParameterError(
        f"Parameter {name!r}: the ints range from {short_repr(lo)} to {short_repr(hi)}, which "
        "no 64-bit integer type holds "
        "(int64 holds -2**63 to 2**63 - 1, uint64 holds 0 to 2**64 - 1), and NetCDF "
        "stores at most 64-bit integers. Use smaller ints, or floats if approximate "
        "values will do."
    )


def _check_held_exactly(name: str, items: list, arr: np.ndarray) -> None:
    """Refuse an array that is not numeric or does not hold every one of ``items``."""
    if arr.dtype.kind not in "iuf" or arr.tolist() != items:
        lost = next(
            (v for v, a in zip(items, arr.tolist()) if arr.dtype.kind not in "iuf" or a != v),
            items[0],
        )
        raise ParameterError(
            f"Parameter {name!r}: {short_repr(lost)} cannot be held exactly among these values "
            f"(they become {arr.dtype} values). Give all values as floats, e.g. float(v), or "
            "all as ints that fit 64 bits."
        )


def _exact_float(v: int) -> bool:
    try:
        return float(v) == v
    except OverflowError:
        return False


def as_grid_values(name: str, values: Iterable[Any]) -> np.ndarray:
    """The validated, read-only, private 1-D array of a parameter's values."""
    _refuse_unordered(name, values)
    if isinstance(values, (np.ndarray, np.generic)) or hasattr(values, "__array__"):
        arr = _from_array(name, values)
    else:
        try:
            items = list(values)
        except TypeError:
            raise _not_a_sequence(name, values) from None
        arr = _from_items(name, items)
    if arr.dtype.kind == "f":
        _check_floats(name, arr)
    _check_unique(name, arr)
    arr.setflags(write=False)
    return arr


def _refuse_unordered(name: str, values: Any) -> None:
    """Refuse iterables that are not an ordered sequence of values: bytes, a str, sets, maps."""
    if isinstance(values, (bytes, bytearray, memoryview)):
        raise ParameterError(
            f"Parameter {name!r}: values must be a sequence of values, not the bytes "
            f"{short_repr(values)}. Bytes are not supported: decode them to str, e.g. "
            "values=[b.decode() for b in values]."
        )
    if isinstance(values, str):
        raise ParameterError(
            f"Parameter {name!r}: values must be a sequence of values, not a single string "
            f"{values!r}. Wrap it in a list: values=[{values!r}]."
        )
    if isinstance(values, (set, frozenset)):
        raise ParameterError(
            f"Parameter {name!r}: values must be an ordered sequence, not a {type(values).__name__}"
            f" (its order can change from run to run). Use values=sorted(...) or a list."
        )
    if isinstance(values, Mapping):
        raise ParameterError(
            f"Parameter {name!r}: values must be a sequence, not a mapping "
            f"({type(values).__name__}). Pass list(d) for its keys or list(d.values())."
        )


def _from_array(name: str, values: Any) -> np.ndarray:
    """A copy of an array (or array-like) of values, 1-D, of a supported kind, native order."""
    try:
        arr = np.array(values, copy=True)
    except (ValueError, TypeError) as exc:
        raise ParameterError(
            f"Parameter {name!r}: values cannot form a 1-D array ({exc}). Pass a flat "
            "list of numbers, strings or bools."
        ) from None
    if arr.ndim == 0:
        raise _not_a_sequence(name, values)
    if arr.ndim != 1:
        raise ParameterError(
            f"Parameter {name!r}: values must be 1-D, got an array of shape {arr.shape}. "
            "Pass a flat list such as [1, 2, 3]."
        )
    if arr.dtype.kind == "O":
        arr = _from_items(name, arr.tolist())
    elif arr.size == 0:
        raise ParameterError(f"Parameter {name!r}: values is empty. Give at least one value.")
    elif arr.dtype.kind not in _ALLOWED_KINDS:
        raise _unsupported(name, arr[0])
    elif arr.dtype.kind == "U":
        for v in arr.tolist():
            _check_text(name, "value", v)
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _check_floats(name: str, arr: np.ndarray) -> None:
    """Refuse float values NetCDF cannot store, or NaN (it never equals itself)."""
    if arr.dtype.itemsize not in (4, 8):
        raise ParameterError(
            f"Parameter {name!r}: values of dtype {arr.dtype} are not supported: NetCDF "
            "stores float32 and float64 only. Convert them, e.g. "
            "values=np.asarray(values, dtype=np.float64)."
        )
    if np.isnan(arr).any():
        raise ParameterError(f"Parameter {name!r}: values contain NaN. Remove it.")


def _check_unique(name: str, arr: np.ndarray) -> None:
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        dups = [v.item() for v in uniq[counts > 1]]
        zero = " (0.0 and -0.0 are the same value)" if 0.0 in dups and arr.dtype.kind == "f" else ""
        raise ParameterError(
            f"Parameter {name!r}: values must be unique, but {short_repr(dups)} appear more "
            f"than once{zero}."
        )


def _not_a_sequence(name: str, values: Any) -> ParameterError:
    single = (
        f" For a single value, use values=[{short_repr(values)}]."
        if _kind_of(type(values)) in ("bool", "int", "float")
        else ""
    )
    return ParameterError(
        f"Parameter {name!r}: values must be a non-empty 1-D sequence of {_SUPPORTED} values, "
        f"{_EXAMPLES}; got {short_repr(values)} ({type(values).__name__}).{single}"
    )


def check_parameter_name(name: str) -> None:
    """Refuse a name that no function argument or NetCDF variable can carry."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ParameterError(
            f"Parameter name {name!r} is not a valid Python identifier. The name is matched to "
            "the argument names of swept functions: use letters, digits and underscores, "
            "not starting with a digit, e.g. 'beam_length'."
        )
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        raise ParameterError(
            f"Parameter name {name!r} is not in the normal form (NFKC) Python gives the "
            f"identifiers of source code, so no function argument can carry it. Use {normal!r} "
            f"({ascii(normal)} rather than {ascii(name)})."
        )
    if name.startswith("_"):
        raise ParameterError(
            f"Parameter name {name!r} starts with an underscore, which NetCDF reserves. "
            f"Use a name such as {name.lstrip('_') or 'p'!r}."
        )
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise ParameterError(
            f"Parameter name {name[:20]!r}... is {size} bytes long in UTF-8, but names in a "
            f"NetCDF file hold at most {MAX_NAME_BYTES} bytes (NC_MAX_NAME is {NC_MAX_NAME}, "
            "and a file with a 256-byte name cannot be read back). Use a shorter name."
        )


def check_bounds(name: str, values: np.ndarray, bounds: Any) -> tuple[Any, Any]:
    """A continuous parameter's ``(low, high)``, checked against its values.

    The values must be numbers in increasing order, inside the bounds; the bounds are two
    finite numbers, ``low < high``, of the values' kind (whole numbers for int values).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.parameters.values import check_bounds
    >>> check_bounds("n", np.array([1, 5]), (0, 10.0))
    (0, 10)
    """
    kind = values.dtype.kind
    if kind not in "iuf":
        raise ParameterError(
            f"Parameter {name!r}: bounds= makes a continuous parameter, whose values are "
            f"numbers; its values are {KIND_PLURALS.get(kind, kind)}. Leave bounds out for a "
            "discrete parameter (it is swept, never refined)."
        )
    if isinstance(bounds, (str, bytes, Mapping)) or not hasattr(bounds, "__len__"):
        raise ParameterError(
            f"Parameter {name!r}: bounds must be a pair (low, high), e.g. bounds=(0.0, 1.0); "
            f"got {short_repr(bounds)}."
        )
    if len(bounds) != 2:
        raise ParameterError(
            f"Parameter {name!r}: bounds must be a pair (low, high), e.g. bounds=(0.0, 1.0); "
            f"got {len(bounds)} items."
        )
    pair = []
    for end in bounds:
        number = isinstance(end, (int, float, np.integer, np.floating))
        if not number or isinstance(end, (bool, np.bool_)) or not np.isfinite(end):
            raise ParameterError(
                f"Parameter {name!r}: bounds must be two finite numbers, e.g. bounds=(0.0, "
                f"1.0); got {short_repr(tuple(bounds))}."
            )
        if kind in "iu" and float(end) % 1 != 0:
            raise ParameterError(
                f"Parameter {name!r}: its values are ints, so its bounds must be whole numbers "
                f"(refinement adds whole numbers between them); got {short_repr(tuple(bounds))}."
                " Give float values to refine it continuously."
            )
        pair.append(int(end) if kind in "iu" else float(end))
    low, high = pair
    if not low < high:
        raise ParameterError(
            f"Parameter {name!r}: bounds=({low!r}, {high!r}) must have low < high."
        )
    if values.size > 1 and not bool(np.all(values[1:] > values[:-1])):
        raise ParameterError(
            f"Parameter {name!r}: the values of a continuous parameter (bounds=) must be in "
            "increasing order, so that refinement can add values between neighbours; give "
            "values=np.sort(values)."
        )
    outside = [v for v in values.tolist() if not low <= v <= high]
    if outside:
        raise ParameterError(
            f"Parameter {name!r}: values {short_repr(outside)} are outside its bounds "
            f"({low!r}, {high!r}). Widen the bounds, or leave those values out."
        )
    return low, high


def new_values(
    name: str,
    values: Iterable[Any],
    dtype: np.dtype,
    bounds: tuple[Any, Any],
    has: Callable[[Any], bool],
) -> np.ndarray:
    """Values to add to a continuous parameter, checked: of its dtype exactly, inside its
    ``bounds``, and new (``has(value)``: whether the parameter has it already).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.parameters.values import new_values
    >>> new_values("x", [0.5], np.dtype(float), (0.0, 1.0), lambda v: False)
    array([0.5])
    """
    items = np.asarray(values if isinstance(values, np.ndarray) else list(values))
    low, high = bounds
    if items.size and items.dtype.kind not in "iuf":
        raise ParameterError(
            f"Parameter {name!r}: cannot add {short_repr(items.tolist())}: its values are "
            f"{KIND_PLURALS[dtype.kind]}."
        )
    cast = items.astype(dtype).ravel()
    exact = np.array_equal(cast.astype(np.float64), items.astype(np.float64).ravel())
    if cast.size and not exact:
        raise ParameterError(
            f"Parameter {name!r}: cannot add {short_repr(items.tolist())}: not exactly "
            f"{KIND_PLURALS[dtype.kind]} (the parameter's values keep their kind)."
        )
    outside = [v for v in cast.tolist() if not low <= v <= high]
    if outside:
        raise ParameterError(
            f"Parameter {name!r}: cannot add {short_repr(outside)}: outside its bounds "
            f"({low!r}, {high!r}). Refinement only adds values inside the bounds."
        )
    seen: set = set()
    for v in cast.tolist():
        if v in seen or has(v):
            raise ParameterError(
                f"Parameter {name!r}: cannot add {v!r}: it is one of its values already "
                "(values are unique)."
            )
        seen.add(v)
    return cast
