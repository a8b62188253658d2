"""Turn what a swept function returned into typed, shaped cell values, and back.

The first successful cell fixes an :class:`OutputSpec` (names, dtypes, shapes, extra dims);
every later cell is checked against it by :meth:`OutputSpec.extract`, which runs once per cell
and so stays lean: no xarray object is built per cell.

Values a NetCDF file has no type for are stored natively, in a form plain ``xarray`` reads
(never pickled), and given back as the function returned them (docs/outputs.md):

* a list or tuple of numbers or strings: an array;
* a PIL image: an array over ``y``, ``x`` and a band dim named after the mode;
* a pandas Series or DataFrame: variables over the index, laid out as ``to_xarray()`` does;
* ``datetime64`` and ``timedelta64``: int64 with CF ``units``, which xarray decodes;
* complex numbers: floats with a trailing (real, imag) dim;
* other nested values (dicts of dicts, lists mixing kinds): JSON text.

A variable's encoding is its ``xsweep_encoding`` attribute, and a pandas output's layout its
``xsweep_pandas`` attribute: both are read back from the file's attributes, so the store knows
none of this. Plain scalars and arrays have no encoding and keep the per-cell fast path.
"""

from __future__ import annotations

import datetime
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import OutputError
from .text import MAX_NAME_BYTES, name_problem, text_problem

#: What a swept function may return, for error messages.
ALLOWED_OUTPUTS = (
    "a scalar (int, float, bool, str, complex, or a numpy scalar, datetime64 and timedelta64 "
    "included), a numpy array, a list or tuple of numbers or strings, a PIL image, a pandas "
    "Series or DataFrame, an xarray.DataArray or Dataset, a dict of those scalars, arrays, "
    "lists and images (one variable per key), or a JSON-like value (dicts with str keys and "
    "lists, nested, of str, int, float, bool and None)"
)
#: How to return anything else, for error messages.
CONVERT_HINT = (
    "Convert anything else yourself: np.asarray(x) for an array-like, a dict of arrays for "
    "several outputs, json.dumps(x) or str(x) for any other object"
)
_IN_JSON = (
    "a JSON value holds dicts with str keys, lists, tuples (given back as lists), str, int, "
    "float, bool, None and numpy arrays of numbers or strings (given back as lists)"
)
_ALLOWED_DTYPE_KINDS = "biufU"
_KIND_NAMES = "bool, int, unsigned int, float, complex, str, datetime64, timedelta64"

# Python types accepted for a scalar variable of each dtype kind without a numpy cast check.
_FAST_TYPES = {
    "f": (float, int, bool, np.floating, np.integer, np.bool_),
    "i": (int, bool, np.integer, np.bool_),
    "u": (int, bool, np.unsignedinteger, np.bool_),
    "b": (bool, np.bool_),
    "U": (str, np.str_),
}

#: numpy time units a file stores, with their CF names (pandas and xarray know no others).
_TIME_UNITS = {
    "D": "days",
    "h": "hours",
    "m": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
}
_NAT = np.iinfo(np.int64).min  # NaT as an int64, in every unit
#: Attributes the time encoding writes; a returned DataArray may not have them itself.
_TIME_ATTRS = ("units", "calendar", "missing_value", "dtype")
_PAIR = np.array(["real", "imag"])
#: Variable attributes that describe how xsweep stored the values.
_OWN_ATTRS = ("xsweep_encoding", "xsweep_pandas")


def _storable_dtype(name: str, dtype: np.dtype) -> None:
    """Refuse dtypes a NetCDF file has no type for, saying how to convert."""
    if dtype.kind == "f" and dtype.itemsize not in (4, 8):
        raise OutputError(
            f"output {name!r} has dtype {dtype}, which NetCDF files cannot hold (they have "
            "32- and 64-bit floats only). Convert it: .astype(np.float32) or np.float64."
        )
    if dtype.kind == "c" and dtype.itemsize not in (8, 16):
        raise OutputError(
            f"output {name!r} has dtype {dtype}, which NetCDF files cannot hold (complex "
            "numbers are stored as pairs of 32- or 64-bit floats). Convert it: "
            ".astype(np.complex128)."
        )


def _fits(small: tuple[int, ...], big: tuple[int, ...]) -> bool:
    return len(small) == len(big) and all(a <= b for a, b in zip(small, big))


def _scalar_dtype(value: Any) -> np.dtype | None:
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(value, (int, np.integer)):
        if isinstance(value, np.timedelta64):  # numpy makes it an integer type
            return None
        return np.dtype(np.int64) if isinstance(value, int) else value.dtype
    if isinstance(value, (float, np.floating)):
        return np.dtype(np.float64) if isinstance(value, float) else value.dtype
    if isinstance(value, (str, np.str_)):
        return np.dtype(object)
    return None


def _is_scalar(value: Any) -> bool:
    return _scalar_dtype(value) is not None


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, xr.DataArray):
        return f"DataArray with dims {value.dims} and shape {value.shape}"
    if isinstance(value, pd.Series):
        return f"Series of length {len(value)} and dtype {value.dtype}"
    if isinstance(value, pd.DataFrame):
        return f"DataFrame with columns {list(value.columns)!r:.60} and {len(value)} rows"
    image = _pil()
    if image is not None and isinstance(value, image.Image):
        return f"PIL image of mode {value.mode!r} and size {value.width}x{value.height}"
    return f"{type(value).__name__} {value!r}"[:120]


def _pil():
    """The ``PIL.Image`` module if it is imported (else no value can be a PIL image)."""
    return sys.modules.get("PIL.Image")


@dataclass
class VariableSpec:
    """One output variable: its name, dtype and the shape and dims of one cell's value.

    ``dtype`` is ``object`` for strings (stored as variable-length strings). An
    ``xsweep_encoding`` attribute says how the stored values differ from the returned ones
    (see the module docstring); ``coerce`` and the fill then follow it.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    scalar: bool = False
    coords: dict[str, xr.Variable] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = "U" if self.dtype == object else self.dtype.kind
        self._fast = _FAST_TYPES[kind] if self.scalar else ()
        self._kind = kind
        if kind in "iu":
            info = np.iinfo(self.dtype)
            self._range = (int(info.min), int(info.max))
        self._fill = np.nan if kind == "f" else "" if kind == "U" else 0
        #: The dims of the value the function returns (a complex pair dim is not one).
        self.value_dims = self.dims
        #: Ragged: cells may be smaller than ``shape`` (padded with the fill); the variable
        #: named here holds each cell's own shape (see :func:`grow_spec`).
        self.extent = self.attrs.get("xsweep_extent")
        self.seen_shape: tuple[int, ...] = self.shape
        encoding = self.attrs.get("xsweep_encoding")
        self._codec = None if encoding is None else _codec(self, encoding)
        if self._codec is not None:
            self._fast = ()
            self.coerce = self._codec.coerce  # type: ignore[method-assign]
            self.value_dims = self._codec.value_dims
            if self._codec.fill is not None:
                self._fill = self._codec.fill

    @property
    def fill(self) -> Any:
        """The value a not-computed cell holds: NaN for floats, NaT for times, else zero/empty."""
        return self._fill

    def coerce(self, value: Any) -> Any:
        """Return ``value`` in this variable's canonical form or raise ``OutputError``."""
        if self.scalar:
            if isinstance(value, self._fast):
                if self._kind in "iu" and not self._range[0] <= value <= self._range[1]:
                    raise OutputError(
                        f"{value!r} does not fit in {self.dtype} (the integers a NetCDF file "
                        "holds); return it as a float, or as a str to keep every digit"
                    )
                if self._kind == "U" and text_problem(value):
                    raise OutputError(
                        f"the text {value!r:.80} {text_problem(value)}; remove or replace "
                        "that character"
                    )
                return value
            if isinstance(value, np.ndarray) and value.shape == () and self._castable(value):
                return value.item()
            raise OutputError(
                f"got {_describe(value)} where earlier cells gave a {self._type_name()}"
            )
        arr = value if isinstance(value, np.ndarray) else None
        if arr is None:
            raise OutputError(
                f"got {_describe(value)} where earlier cells gave an array of shape "
                f"{self.shape} and dtype {self.dtype}"
            )
        if arr.shape != self.shape:
            if self.extent is None or not _fits(arr.shape, self.shape):
                raise OutputError(
                    f"got shape {arr.shape} where earlier cells gave shape {self.shape}"
                )
            self.seen_shape = arr.shape
            padded = np.full(self.shape, self._fill, dtype=self.dtype)
            padded[tuple(slice(0, n) for n in arr.shape)] = self.coerce_full(arr, padded)
            return padded
        elif self.extent is not None:
            self.seen_shape = arr.shape
        if self._kind == "U":
            for item in arr.flat:
                if isinstance(item, str) and text_problem(item):
                    raise OutputError(
                        f"the text {item!r:.80} {text_problem(item)}; remove or replace that "
                        "character"
                    )
        if arr.dtype != self.dtype:
            if not self._castable(arr):
                raise OutputError(
                    f"got dtype {arr.dtype} where earlier cells gave {self.dtype}, which cannot "
                    "hold it without loss; return the same dtype from every cell"
                )
            arr = arr.astype(self.dtype)
        return arr

    def coerce_full(self, arr: np.ndarray, like: np.ndarray) -> np.ndarray:
        """``arr`` checked as a cell of this dtype (a ragged cell, before padding)."""
        if arr.dtype != self.dtype and not self._castable(arr):
            raise OutputError(
                f"got dtype {arr.dtype} where earlier cells gave {self.dtype}, which cannot "
                "hold it without loss; return the same dtype from every cell"
            )
        return arr

    def _castable(self, arr: np.ndarray) -> bool:
        if self._kind == "U":
            return arr.dtype.kind == "U" or (
                arr.dtype == object and all(isinstance(v, str) for v in arr.flat)
            )
        return arr.dtype.kind in "biuf" and np.can_cast(arr.dtype, self.dtype, "safe")

    def _type_name(self) -> str:
        return {"f": "float", "i": "int", "u": "unsigned int", "b": "bool", "U": "str"}[self._kind]


# ---------------------------------------------------------------------------------------------
# Encodings: values stored in another form than the function returned them
# ---------------------------------------------------------------------------------------------
class _Codec:
    """How one variable's stored values differ from the values the function returned.

    ``coerce`` stands in for :meth:`VariableSpec.coerce` (it checks a cell's value and gives
    its stored form); ``decode`` gives stored values back as the function returned them.
    Raises ``ValueError`` if the encoding does not fit the variable (a damaged file).
    """

    fill: Any = None  # the variable's fill if not its dtype's usual one
    added: tuple[str, ...] = ("xsweep_encoding",)  # attributes the encoding writes

    def __init__(self, var: VariableSpec, arg: str) -> None:
        self.var = var
        self.value_dims = var.dims
        self.value_shape = var.shape

    def coerce(self, value: Any) -> Any:
        raise NotImplementedError

    def decode(self, values: np.ndarray, kind: str) -> Any:
        """The value as returned; ``kind`` is the output's (DataArrays need arrays)."""
        raise NotImplementedError

    def plain(self, arr: np.ndarray) -> np.ndarray:
        """The checks every array gets: shape, dtype, text."""
        return VariableSpec.coerce(self.var, arr)

    def user_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """``attrs`` without those the encoding added."""
        return {k: v for k, v in attrs.items() if k not in self.added}


def _codec(var: VariableSpec, encoding: Any) -> _Codec:
    if not isinstance(encoding, str):
        raise ValueError(f"the xsweep_encoding of {var.name!r} is not a string")
    head, _, arg = encoding.partition(":")
    if encoding in ("list", "tuple", "list of arrays", "tuple of arrays"):
        return _ListCodec(var, encoding)
    if head == "image":
        return _ImageCodec(var, arg)
    if encoding.startswith(("datetime64[", "timedelta64[")):
        return _TimeCodec(var, encoding)
    if encoding in ("complex64", "complex128"):
        return _ComplexCodec(var, encoding)
    if encoding == "json":
        return _JsonCodec(var, encoding)
    raise ValueError(f"output {var.name!r} has the unknown xsweep_encoding {encoding!r:.40}")


def _as_array(value: list | tuple) -> np.ndarray | None:
    """A list or tuple as the non-empty array of numbers or strings it spells, else None."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    kind = arr.dtype.kind
    if arr.size == 0 or kind not in "biufU":
        return None
    if kind == "U" and not all(isinstance(v, str) for v in np.asarray(value, dtype=object).flat):
        return None  # numpy made numbers into strings
    return arr


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


class _ListCodec(_Codec):
    """A list or tuple of numbers or strings (nested: rectangular), stored as an array."""

    def __init__(self, var: VariableSpec, arg: str) -> None:
        super().__init__(var, arg)
        self.container = tuple if arg.startswith("tuple") else list
        self.of_arrays = arg.endswith("of arrays")
        dtype = "str" if var.dtype == object else var.dtype
        self.what = f"a {self.container.__name__} of shape {var.shape} and dtype {dtype}"

    def coerce(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            arr = _as_array(value)
        else:
            arr = value if isinstance(value, np.ndarray) else None
        if arr is None:
            raise OutputError(f"got {_describe(value)} where earlier cells gave {self.what}")
        return self.plain(arr)

    def decode(self, values: np.ndarray, kind: str) -> Any:
        if self.of_arrays:
            return self.container(np.array(row) for row in values)
        out = np.asarray(values).tolist()
        return _to_tuples(out) if self.container is tuple else out


class _ImageCodec(_Codec):
    """A PIL image, stored as its ``np.asarray`` array; given back in the same mode."""

    def __init__(self, var: VariableSpec, mode: str) -> None:
        super().__init__(var, mode)
        if not mode or len(var.shape) not in (2, 3):
            raise ValueError(f"output {var.name!r} cannot be an image of mode {mode!r:.20}")
        self.mode = mode

    def coerce(self, value: Any) -> Any:
        image = _pil()
        if image is None or not isinstance(value, image.Image):
            h, w = self.var.shape[:2]
            raise OutputError(
                f"got {_describe(value)} where earlier cells gave a PIL image of mode "
                f"{self.mode!r} and size {w}x{h}"
            )
        if value.mode != self.mode:
            raise OutputError(
                f"got a PIL image of mode {value.mode!r} where earlier cells gave mode "
                f"{self.mode!r}; convert it: image.convert({self.mode!r})"
            )
        return self.plain(np.asarray(value))

    def decode(self, values: np.ndarray, kind: str) -> Any:
        return _image_from_array(np.asarray(values), self.mode)


def _image_from_array(arr: np.ndarray, mode: str):
    try:
        from PIL import Image
    except ImportError:
        raise OutputError(
            "this output is a PIL image, and Pillow is not installed: pip install pillow (or "
            "read the stored array with xarray)"
        ) from None
    arr = np.ascontiguousarray(arr)
    image = Image.fromarray(arr)
    if image.mode != mode:  # modes numpy cannot tell apart (CMYK from RGBA, ...)
        image = Image.frombytes(mode, (arr.shape[1], arr.shape[0]), arr.tobytes())
    return image


class _TimeCodec(_Codec):
    """``datetime64`` or ``timedelta64`` values, stored as int64 counts with CF units."""

    fill = _NAT
    added = ("xsweep_encoding", *_TIME_ATTRS)

    def __init__(self, var: VariableSpec, arg: str) -> None:
        super().__init__(var, arg)
        self.dtype = np.dtype(arg)
        unit, count = np.datetime_data(self.dtype)
        if var.dtype != np.int64 or unit not in _TIME_UNITS or count != 1:
            raise ValueError(f"output {var.name!r} cannot hold {arg!r:.30} as {var.dtype}")
        self.kind = self.dtype.kind
        self.type = np.datetime64 if self.kind == "M" else np.timedelta64
        # The store drops a "dtype" attribute when it reads a file; xarray needs it.
        for key, value in _time_attrs(self.dtype).items():
            var.attrs.setdefault(key, value)

    def coerce(self, value: Any) -> Any:
        var = self.var
        if isinstance(value, (np.ndarray, self.type)):
            arr = np.asarray(value)
            if arr.dtype != self.dtype:
                if arr.dtype.kind != self.kind or not np.can_cast(arr.dtype, self.dtype, "safe"):
                    raise OutputError(
                        f"got {_describe(value)} where earlier cells gave {self.dtype}; return "
                        f"the same dtype from every cell (.astype('{self.dtype}'))"
                    )
                arr = arr.astype(self.dtype)
            if arr.shape != var.shape:
                raise OutputError(
                    f"got shape {arr.shape} where earlier cells gave shape {var.shape}"
                )
            ints = arr.view(np.int64)
            return int(ints) if var.scalar else ints
        what = "a" if var.scalar else f"an array of shape {var.shape} and dtype"
        raise OutputError(f"got {_describe(value)} where earlier cells gave {what} {self.dtype}")

    def decode(self, values: np.ndarray, kind: str) -> Any:
        out = np.array(values, dtype=np.int64).view(self.dtype)
        return out[()] if self.var.scalar and kind in ("scalar", "dict") else out


def _time_attrs(dtype: np.dtype) -> dict[str, Any]:
    """CF attributes under which ``xarray.open_dataset`` decodes int64 counts of ``dtype``."""
    unit = np.datetime_data(dtype)[0]
    attrs: dict[str, Any] = {"xsweep_encoding": dtype.name}
    if dtype.kind == "M":
        attrs["units"] = f"{_TIME_UNITS[unit]} since 1970-01-01"
        attrs["calendar"] = "proleptic_gregorian"
    else:
        attrs["units"] = _TIME_UNITS[unit]
        # xarray decodes timedeltas with this attribute only, at pandas' resolutions.
        attrs["dtype"] = f"timedelta64[{unit if unit in ('s', 'ms', 'us', 'ns') else 's'}]"
    attrs["missing_value"] = np.int64(_NAT)  # not-computed cells read as NaT
    return attrs


def _complex_comment(name: str, pair: str) -> str:
    return (
        f"complex numbers stored as (real, imag) float pairs along the last dim {pair!r}: "
        f"{name} = {name}.sel({pair}='real') + 1j * {name}.sel({pair}='imag')"
    )


class _ComplexCodec(_Codec):
    """Complex values, stored as floats with a trailing (real, imag) dim of length 2."""

    def __init__(self, var: VariableSpec, arg: str) -> None:
        super().__init__(var, arg)
        self.dtype = np.dtype(arg)
        if var.shape[-1:] != (2,) or var.dtype.itemsize * 2 != self.dtype.itemsize:
            raise ValueError(f"output {var.name!r} cannot hold {arg} as {var.dtype}")
        if var.dtype.kind != "f":
            raise ValueError(f"output {var.name!r} cannot hold {arg} as {var.dtype}")
        self.value_dims = var.dims[:-1]
        self.value_shape = var.shape[:-1]
        self.pair = var.dims[-1]
        self.comment = _complex_comment(var.name, self.pair)

    def coerce(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            arr = value
        elif isinstance(value, (complex, float, int, np.number)) and not isinstance(
            value, np.timedelta64
        ):
            arr = np.asarray(value)
        else:
            raise OutputError(
                f"got {_describe(value)} where earlier cells gave complex values of shape "
                f"{self.value_shape} and dtype {self.dtype}"
            )
        if arr.dtype != self.dtype:
            weak = type(value) in (complex, float, int)  # Python numbers fit any precision
            if arr.dtype.kind not in "biufc" or not (
                weak or np.can_cast(arr.dtype, self.dtype, "safe")
            ):
                raise OutputError(
                    f"got dtype {arr.dtype} where earlier cells gave {self.dtype}, which cannot "
                    "hold it without loss; return the same dtype from every cell"
                )
        if arr.shape != self.value_shape:
            raise OutputError(
                f"got shape {arr.shape} where earlier cells gave shape {self.value_shape}"
            )
        pairs = np.ascontiguousarray(arr, dtype=self.dtype).reshape(-1).view(self.var.dtype)
        return pairs.reshape(self.var.shape)

    def decode(self, values: np.ndarray, kind: str) -> Any:
        out = np.array(values, dtype=self.var.dtype, order="C").view(self.dtype)[..., 0]
        if not self.value_shape and kind in ("scalar", "dict"):
            # as for floats: a complex128 comes back a Python complex, a complex64 stays numpy
            return out[()].item() if self.dtype.itemsize == 16 else out[()]
        return out

    def user_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        out = super().user_attrs(attrs)
        if out.get("comment") == self.comment:
            del out["comment"]
        return out


class _JsonCodec(_Codec):
    """A nested JSON-like value, stored as its JSON text."""

    def __init__(self, var: VariableSpec, arg: str) -> None:
        super().__init__(var, arg)
        if var.dtype != object or var.shape:
            raise ValueError(f"output {var.name!r} cannot hold JSON text as {var.dtype}")

    def coerce(self, value: Any) -> Any:
        return _json_text(value)

    def decode(self, values: np.ndarray, kind: str) -> Any:
        return json.loads(np.asarray(values).item())


def _json_text(value: Any) -> str:
    """``value`` as JSON text a NetCDF string keeps exactly, or ``OutputError``."""
    try:
        plain = _jsonable(value, "")
    except RecursionError:
        raise OutputError(
            "the value is nested too deeply to be stored as JSON, or holds itself"
        ) from None
    text = json.dumps(plain, ensure_ascii=False)
    if text_problem(text):  # a lone surrogate inside (JSON escapes NULs): \u escapes keep it
        text = json.dumps(plain)
    return text


def _jsonable(value: Any, where: str) -> Any:
    """``value`` made of JSON types only (numpy scalars and arrays converted), or raise."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)) and not isinstance(
        value, np.timedelta64
    ):
        return value.item()
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise OutputError(
                    f"the dict at {where or 'the top'} has the key {key!r:.40}, which is not a "
                    "string; JSON keys are strings: convert them ({str(k): v for k, v in "
                    "d.items()}) or return the dict as arrays"
                )
            out[key] = _jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufU":
        return value.tolist()
    raise OutputError(
        f"the value holds {_describe(value)} at {where or 'the top'}, which JSON cannot hold: "
        f"{_IN_JSON}. {CONVERT_HINT}"
    )


def _is_json_dict(result: dict) -> bool:
    """Whether a returned dict is stored as one JSON value rather than one variable per key.

    It is when a value is itself a dict, or a list or tuple that is not a rectangular,
    non-empty array of numbers or strings.
    """
    for value in result.values():
        if isinstance(value, dict):
            return True
        if isinstance(value, (list, tuple)) and _as_array(value) is None:
            return True
    return False


@dataclass
class OutputSpec:
    """The structure every cell of one function returns.

    ``kind`` is one of ``"scalar"``, ``"array"``, ``"dict"``, ``"dataarray"``, ``"dataset"``,
    ``"json"``, ``"series"``, ``"dataframe"``: it decides how a stored cell is given back to
    the user as "what the function returned".
    """

    kind: str
    variables: tuple[VariableSpec, ...]

    def __post_init__(self) -> None:
        self._pandas = _PandasLayout(self) if self.kind in ("series", "dataframe") else None
        # Ragged outputs: each has an extent variable, which the function does not return.
        names = [v.name for v in self.variables]
        self._extents = {
            i: names.index(v.extent) for i, v in enumerate(self.variables) if v.extent in names
        }
        if self._extents:
            skip = set(self._extents.values())
            self._returned = OutputSpec(
                self.kind, tuple(v for i, v in enumerate(self.variables) if i not in skip)
            )
            self.extract = self._extract_ragged  # type: ignore[method-assign]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    @property
    def returned_names(self) -> tuple[str, ...]:
        """The names of the outputs the function returns (not the extents of ragged ones)."""
        skip = set(self._extents.values())
        return tuple(v.name for i, v in enumerate(self.variables) if i not in skip)

    def _extract_ragged(self, result: Any) -> tuple[Any, ...]:
        values = iter(self._returned.extract(result))
        out: list[Any] = [None] * len(self.variables)
        skip = set(self._extents.values())
        for i in range(len(self.variables)):
            if i not in skip:
                out[i] = next(values)
        for i, j in self._extents.items():
            out[j] = np.array(self.variables[i].seen_shape, dtype=np.int32)
        return tuple(out)

    def extract(self, result: Any) -> tuple[Any, ...]:
        """Validate one cell's return value and give its values in variable order.

        Raises ``OutputError`` with what differs; the caller adds which cell it was.
        """
        kind = self.kind
        if kind == "scalar" or kind == "array":
            return (self.variables[0].coerce(result),)
        if kind == "dict":
            if type(result) is not dict and not isinstance(result, dict):
                raise OutputError(
                    f"got {_describe(result)} where earlier cells gave a dict with keys "
                    f"{list(self.names)}"
                )
            if len(result) != len(self.variables):
                raise OutputError(
                    f"got dict keys {sorted(result)} where earlier cells gave {list(self.names)}"
                )
            try:
                return tuple(v.coerce(result[v.name]) for v in self.variables)
            except KeyError:
                raise OutputError(
                    f"got dict keys {sorted(result)} where earlier cells gave {list(self.names)}"
                ) from None
        if kind == "dataarray":
            if not isinstance(result, xr.DataArray):
                raise OutputError(f"got {_describe(result)} where earlier cells gave a DataArray")
            var = self.variables[0]
            if result.dims != var.value_dims:
                raise OutputError(
                    f"got DataArray dims {result.dims} where earlier cells gave {var.value_dims}"
                )
            return (var.coerce(result.values),)
        if kind == "json":
            return (self.variables[0].coerce(result),)
        if kind == "series" or kind == "dataframe":
            return self._pandas.extract(result)
        if not isinstance(result, xr.Dataset):
            raise OutputError(f"got {_describe(result)} where earlier cells gave a Dataset")
        if set(result.data_vars) != set(self.names):
            raise OutputError(
                f"got Dataset variables {sorted(result.data_vars)} where earlier cells gave "
                f"{sorted(self.names)}"
            )
        out = []
        for var in self.variables:
            da = result[var.name]
            if da.dims != var.value_dims:
                raise OutputError(
                    f"variable {var.name!r}: got dims {da.dims} where earlier cells gave "
                    f"{var.value_dims}"
                )
            out.append(var.coerce(da.values))
        return tuple(out)

    def rebuild(self, cell: xr.Dataset, param_names: tuple[str, ...]) -> Any:
        """Give a stored cell back as the function returned it.

        ``cell`` is the store's Dataset selected at one cell; parameter coordinates are
        dropped so that a DataArray or Dataset looks as the function built it.
        """
        param_coords = [c for c in cell.coords if c in param_names]

        def plain(var: VariableSpec) -> Any:
            values = cell[var.name].values
            if var.extent is not None:
                extent = np.asarray(cell[var.extent].values).tolist()
                values = values[tuple(slice(0, int(n)) for n in extent)]
            if var._codec is not None:
                return var._codec.decode(values, self.kind)
            if var.scalar:
                if var.dtype.kind in "fiu" and var.dtype.itemsize < 8:
                    return var.dtype.type(values)  # a float32 stays a numpy float32
                return values.item()
            return np.array(values, copy=True)

        if self.kind in ("scalar", "array", "json"):
            return plain(self.variables[0])
        if self.kind == "dict":
            skip = set(self._extents.values())
            return {v.name: plain(v) for i, v in enumerate(self.variables) if i not in skip}
        if self._pandas is not None:
            return self._pandas.rebuild({v.name: plain(v) for v in self.variables})
        sub = cell[list(self.names)].drop_vars(param_coords, errors="ignore").copy(deep=True)
        sub.attrs = {}
        if any(v._codec is not None for v in self.variables):
            sub = self._decoded(sub)
        if self.kind == "dataarray":
            return sub[self.names[0]]
        return sub

    def _decoded(self, sub: xr.Dataset) -> xr.Dataset:
        """``sub`` with its encoded variables as the function returned them."""
        data_vars = {}
        pairs = set()
        for var in self.variables:
            da = sub[var.name]
            codec = var._codec
            if codec is None:
                data_vars[var.name] = da.variable
                continue
            values = codec.decode(da.values, self.kind)
            data_vars[var.name] = xr.Variable(codec.value_dims, values, codec.user_attrs(da.attrs))
            if isinstance(codec, _ComplexCodec):
                pairs.add(codec.pair)
        coords = {k: c.variable for k, c in sub.coords.items() if not pairs & set(c.dims)}
        return xr.Dataset(data_vars, coords)


# ---------------------------------------------------------------------------------------------
# pandas: a Series or DataFrame is stored as variables over its index
# ---------------------------------------------------------------------------------------------
class _PandasLayout:
    """What a Series or DataFrame output needs beyond its variables: its index and names.

    Read from the variables' ``xsweep_pandas`` attribute and index coordinate, so that it
    survives a file. Raises ``ValueError`` (or ``KeyError``) if they are missing or damaged.
    """

    def __init__(self, spec: OutputSpec) -> None:
        self.kind = spec.kind
        self.variables = spec.variables
        first = spec.variables[0]
        if spec.kind == "series" and len(spec.variables) != 1:
            raise ValueError("a Series output has one variable")
        self.meta = [json.loads(v.attrs["xsweep_pandas"]) for v in spec.variables]
        self.names = [m["name"] for m in self.meta] if spec.kind == "series" else []
        self.dim = first.value_dims[0]
        if any(v.value_dims != (self.dim,) for v in spec.variables):
            raise ValueError("a pandas output's variables are over its index only")
        self.index = _index_from(first.coords[self.dim], self.meta[0]["index"])

    def extract(self, result: Any) -> tuple[Any, ...]:
        if self.kind == "series":
            if not isinstance(result, pd.Series):
                raise OutputError(f"got {_describe(result)} where earlier cells gave a Series")
            self._check_index(result)
            return (self.variables[0].coerce(result.to_numpy()),)
        if not isinstance(result, pd.DataFrame):
            raise OutputError(f"got {_describe(result)} where earlier cells gave a DataFrame")
        names = [v.name for v in self.variables]
        if list(result.columns) != names:
            raise OutputError(
                f"got DataFrame columns {list(result.columns)!r:.200} where earlier cells gave "
                f"{names}"
            )
        self._check_index(result)
        return tuple(v.coerce(result[v.name].to_numpy()) for v in self.variables)

    def _check_index(self, result: pd.Series | pd.DataFrame) -> None:
        if not result.index.equals(self.index):
            raise OutputError(
                f"got a {type(result).__name__} with index {_short(result.index)} where earlier "
                f"cells gave {_short(self.index)}; the file holds one index for all cells, so "
                "every cell must return the same index (reindex it, or return arrays)"
            )

    def rebuild(self, columns: dict[str, np.ndarray]) -> pd.Series | pd.DataFrame:
        if self.kind == "series":
            (values,) = columns.values()
            out = _as_dtype(pd.Series(values, index=self.index, name=self.names[0]), self.meta[0])
            return out
        frame = pd.DataFrame(
            {
                name: _as_dtype(pd.Series(values, index=self.index), meta)
                for (name, values), meta in zip(columns.items(), self.meta)
            },
            index=self.index,
        )
        frame.columns.name = self.meta[0].get("columns")
        return frame


def _short(index: pd.Index) -> str:
    return f"{index.tolist()!r:.80} (length {len(index)})"


def _as_dtype(series: pd.Series, meta: dict) -> pd.Series:
    if str(series.dtype) != meta.get("dtype"):
        try:
            return series.astype(meta["dtype"])
        except (TypeError, ValueError, KeyError):
            pass
    return series


def _index_from(coord: xr.Variable, meta: dict) -> pd.Index:
    values = coord.values
    encoding = coord.attrs.get("xsweep_encoding")
    if encoding is not None:
        values = np.asarray(values, dtype=np.int64).view(np.dtype(encoding))
    index = pd.Index(values, name=meta["name"])
    if str(index.dtype) != meta["dtype"]:
        index = index.astype(meta["dtype"])
    if meta.get("range") and len(index) and index.dtype.kind == "i":
        step = int(index[1] - index[0]) if len(index) > 1 else 1
        if step and index.equals(pd.RangeIndex(index[0], index[-1] + step, step)):
            index = pd.RangeIndex(index[0], index[-1] + step, step, name=meta["name"])
    if meta.get("freq") is not None:
        try:
            index = type(index)(index, freq=meta["freq"], name=meta["name"])
        except (TypeError, ValueError):
            pass
    return index


def _pandas_spec(result: pd.Series | pd.DataFrame, default_name: str) -> OutputSpec:
    what = f"the returned {type(result).__name__}"
    index = result.index
    if isinstance(index, pd.MultiIndex):
        raise OutputError(
            f"{what} has a MultiIndex, which xsweep stores as one dim; return "
            "result.to_xarray() (one dim per level) or result.reset_index()"
        )
    if isinstance(result, pd.DataFrame) and isinstance(result.columns, pd.MultiIndex):
        raise OutputError(
            f"{what} has MultiIndex columns; flatten them to strings (df.columns = "
            "['_'.join(c) for c in df.columns]) or return df.to_xarray()"
        )
    dim = index.name if isinstance(index.name, str) else "index"
    _check_var_name(dim, f"the index of {what}", "a dim")
    meta_index = {
        "name": _json_scalar(index.name, f"the index name of {what}"),
        "dtype": str(index.dtype),
        "range": isinstance(index, pd.RangeIndex),
        "freq": getattr(index, "freqstr", None),
    }
    coord = _index_coord(index, dim, what)
    if isinstance(result, pd.Series):
        name = result.name if isinstance(result.name, str) else default_name
        _check_var_name(name, f"the name of {what}")
        meta = {"name": _json_scalar(result.name, f"the name of {what}"), "index": meta_index}
        series = {name: result}
        kind = "series"
    else:
        if result.columns.empty:
            raise OutputError(f"{what} has no columns; return at least one")
        if not result.columns.is_unique:
            raise OutputError(f"{what} has duplicate column names; make them unique")
        for col in result.columns:
            if not isinstance(col, str):
                raise OutputError(
                    f"{what} has the column name {col!r:.40}; columns name variables, so they "
                    "must be strings: df.columns = df.columns.astype(str)"
                )
            _check_var_name(col, f"a column of {what}")
        meta = {
            "columns": _json_scalar(result.columns.name, f"the columns name of {what}"),
            "index": meta_index,
        }
        series = {col: result[col] for col in result.columns}
        kind = "dataframe"
    variables = []
    for name, column in series.items():
        values = _pandas_values(column, what if kind == "series" else f"column {name!r} of {what}")
        attrs = {"xsweep_pandas": json.dumps({**meta, "dtype": str(column.dtype)})}
        variables.append(
            _array_spec(name, values, {}, dims=(dim,), coords={dim: coord}, attrs=attrs)
        )
    return OutputSpec(kind, tuple(variables))


def _json_scalar(value: Any, what: str) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise OutputError(f"{what} is {value!r:.40}; use a string (or None)")


def _pandas_values(series: pd.Series, what: str) -> np.ndarray:
    """A Series' values as a numpy array a variable holds, or ``OutputError``."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind != "O":
        return series.to_numpy()
    values = series.to_numpy(dtype=object)
    if (isinstance(dtype, pd.StringDtype) or dtype.kind == "O") and all(
        isinstance(v, str) for v in values
    ):
        return values.astype(str)
    raise OutputError(
        f"{what} holds values of dtype {dtype}, which a NetCDF file has no type for (it holds "
        "numpy numbers, bools, times and strings without missing values); convert them: "
        ".astype(float) or .astype(str)"
    )


def _index_coord(index: pd.Index, dim: str, what: str) -> xr.Variable:
    values = _pandas_values(pd.Series(index), f"the index of {what}")
    if values.dtype.kind in "mM":
        dtype = values.dtype
        if np.datetime_data(dtype)[0] not in _TIME_UNITS:
            raise OutputError(
                f"the index of {what} has dtype {dtype}; convert it to seconds or finer"
            )
        return xr.Variable((dim,), values.view(np.int64), _time_attrs(dtype))
    if values.dtype.kind not in "biufU":
        raise OutputError(
            f"the index of {what} has dtype {values.dtype}, which a NetCDF coordinate cannot "
            "hold; use numbers, strings or times"
        )
    return xr.Variable((dim,), values)


# ---------------------------------------------------------------------------------------------
# Working out the structure from the first cell
# ---------------------------------------------------------------------------------------------
def _check_var_name(name: Any, where: str, what: str = "an output variable") -> str:
    problem = name_problem(name)
    if problem:
        raise OutputError(
            f"{where}: {name!r:.300} cannot name {what}: it {problem}. Use a non-empty "
            f"string of at most {MAX_NAME_BYTES} bytes, without '/' or control characters, "
            "that does not start with '_'."
        )
    return name


def _array_spec(
    name: str,
    value: Any,
    output_dims: dict[str, tuple[str, ...]],
    *,
    dims: tuple[str, ...] | None = None,
    coords: dict[str, xr.Variable] | None = None,
    attrs: dict[str, Any] | None = None,
) -> VariableSpec:
    if _is_scalar(value) and dims is None:
        dtype = _scalar_dtype(value)
        _storable_dtype(name, dtype)
        return VariableSpec(name, dtype, (), (), scalar=True)
    if not isinstance(value, np.ndarray):
        spec = _value_spec(name, value, output_dims) if dims is None else None
        if spec is None:
            raise OutputError(
                f"output {name!r} is {_describe(value)}; allowed: {ALLOWED_OUTPUTS}. {_hint(value)}"
            )
        return spec
    if value.size == 0:
        raise OutputError(
            f"output {name!r} is an empty array (shape {value.shape}); every cell must hold "
            "at least one value. Return a fixed-size array (padded with NaN where a cell has "
            "fewer values), or leave the output out."
        )
    dtype = value.dtype
    _storable_dtype(name, dtype)
    if dtype.kind in "cmM":
        return _encoded_spec(name, value, output_dims, dims, coords, attrs, scalar=False)
    if dtype.kind == "U":
        dtype = np.dtype(object)
    elif dtype.kind not in _ALLOWED_DTYPE_KINDS:
        raise OutputError(
            f"output {name!r} has dtype {dtype}, which xsweep cannot store. "
            f"Allowed dtype kinds: {_KIND_NAMES}. Convert it, e.g. np.asarray(x, dtype=float)."
        )
    dims = _dims(name, value.shape, output_dims, dims)
    return VariableSpec(name, dtype, value.shape, dims, coords=coords or {}, attrs=attrs or {})


def _dims(
    name: str,
    shape: tuple[int, ...],
    output_dims: dict[str, tuple[str, ...]],
    dims: tuple[str, ...] | None,
    pair: bool = False,
) -> tuple[str, ...]:
    """The dims of an array output: given, from ``output_dims``, or ``<name>_dim_<i>``.

    With ``pair`` (complex values) they end with the (real, imag) pair dim, which
    ``output_dims`` names too: the stored variable has those dims, and a later sweep's
    ``output_dims`` is compared with them.
    """
    ndim = len(shape)
    if dims is None and name in output_dims:
        dims = tuple(output_dims[name])
        if pair and len(dims) != ndim + 1:
            example = (*dims[:ndim], f"{name}_complex")
            raise OutputError(
                f"output_dims[{name!r}] = {dims} names {len(dims)} dims, but output {name!r} "
                f"holds complex values, stored with {ndim + 1}: those of its shape {shape} and "
                f"one for the (real, imag) pair. Name that one too, e.g. {example}"
            )
        if len(dims) != ndim + pair:
            raise OutputError(
                f"output_dims[{name!r}] = {dims} names {len(dims)} dims but the output has "
                f"{ndim} (shape {shape})."
            )
    elif dims is None:
        dims = tuple(f"{name}_dim_{i}" for i in range(ndim))
        dims += (f"{name}_complex",) if pair else ()
    elif pair:
        dims = (*dims, f"{name}_complex")
    for dim in dims:
        _check_var_name(dim, f"output {name!r}", "a dim")
    return dims


def _encoded_spec(
    name: str,
    arr: np.ndarray,
    output_dims: dict[str, tuple[str, ...]],
    dims: tuple[str, ...] | None,
    coords: dict[str, xr.Variable] | None,
    attrs: dict[str, Any] | None,
    *,
    scalar: bool,
) -> VariableSpec:
    """The variable of complex, datetime64 or timedelta64 values (a scalar if ``scalar``)."""
    dtype = arr.dtype
    coords = dict(coords or {})
    attrs = dict(attrs or {})
    if dtype.kind == "c":
        dims = _dims(name, arr.shape, output_dims, dims, pair=True)
        pair = dims[-1]
        coords[pair] = xr.Variable((pair,), _PAIR, {"long_name": "part of a complex number"})
        attrs["xsweep_encoding"] = dtype.name
        attrs.setdefault("comment", _complex_comment(name, pair))
        floats = np.dtype(np.float32 if dtype.itemsize == 8 else np.float64)
        return VariableSpec(name, floats, (*arr.shape, 2), dims, coords=coords, attrs=attrs)
    unit, count = np.datetime_data(dtype)
    if unit not in _TIME_UNITS or count != 1:
        raise OutputError(
            f"output {name!r} has dtype {dtype}; a file stores times in days, hours, minutes, "
            f"seconds, ms, us or ns. Convert it: .astype('{dtype.kind}8[s]') (or "
            f"np.{'datetime64' if dtype.kind == 'M' else 'timedelta64'}(value, 's'))."
        )
    clash = [k for k in _TIME_ATTRS if k in attrs]
    if clash:
        raise OutputError(
            f"output {name!r} holds times and has the attributes {clash}, which the file "
            "needs to describe them; rename or drop those attributes"
        )
    attrs.update(_time_attrs(dtype))
    dims = () if scalar else _dims(name, arr.shape, output_dims, dims)
    return VariableSpec(
        name, np.dtype(np.int64), arr.shape, dims, scalar=scalar, coords=coords, attrs=attrs
    )


def _value_spec(
    name: str, value: Any, output_dims: dict[str, tuple[str, ...]]
) -> VariableSpec | None:
    """The variable of a value that is neither a plain scalar nor an array, or None."""
    if isinstance(value, (list, tuple)):
        arr = _as_array(value)
        if arr is None:
            return None
        encoding = "tuple" if isinstance(value, tuple) else "list"
        if all(isinstance(v, np.ndarray) for v in value):
            encoding += " of arrays"
        return _array_spec(name, arr, output_dims, attrs={"xsweep_encoding": encoding})
    if isinstance(value, (complex, np.complexfloating, np.datetime64, np.timedelta64)):
        arr = np.asarray(value)
        _storable_dtype(name, arr.dtype)
        return _encoded_spec(name, arr, output_dims, None, None, None, scalar=True)
    image = _pil()
    if image is not None and isinstance(value, image.Image):
        return _image_spec(name, value, output_dims)
    return None


def _image_spec(name: str, image: Any, output_dims: dict[str, tuple[str, ...]]) -> VariableSpec:
    mode = image.mode
    what = f"output {name!r} is a PIL image of mode {mode!r}"
    if mode in ("P", "PA") or image.palette is not None:
        raise OutputError(
            f"{what}, whose palette a file would not keep; convert it: image.convert('RGB') "
            "(or 'RGBA')"
        )
    arr = np.asarray(image)
    if arr.size == 0:
        raise OutputError(f"{what} with no pixels; every cell must hold at least one value")
    if not arr.dtype.isnative or _image_from_array(arr, mode).tobytes() != image.tobytes():
        raise OutputError(
            f"{what}, which xsweep cannot store exactly; convert it: image.convert('RGB'), "
            "'RGBA', 'L', 'I' or 'F', or return np.asarray(image)"
        )
    if name in output_dims:
        dims = tuple(output_dims[name])
    else:
        dims = ("y", "x", mode.lower())[: arr.ndim]
    return _array_spec(name, arr, {name: dims}, attrs={"xsweep_encoding": f"image:{mode}"})


def _json_spec(result: Any, name: str) -> OutputSpec:
    _json_text(result)  # refuse what JSON cannot hold now, naming it
    var = VariableSpec(
        name, np.dtype(object), (), (), scalar=True, attrs={"xsweep_encoding": "json"}
    )
    return OutputSpec("json", (var,))


def infer_spec(
    result: Any, default_name: str, output_dims: dict[str, tuple[str, ...]] | None = None
) -> OutputSpec:
    """Work out the output structure from one cell's return value.

    Parameters
    ----------
    result
        What the function returned for its first successful cell.
    default_name
        The variable name of a scalar, array, image, JSON or unnamed DataArray or Series
        output (the function's name).
    output_dims
        Names for the extra dims of array outputs, ``{variable: (dim, ...)}``.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.outputs import infer_spec
    >>> spec = infer_spec(np.zeros((4, 5, 3), np.uint8), "img", {"img": ("y", "x", "rgb")})
    >>> spec.kind, spec.variables[0].dims, spec.variables[0].dtype
    ('array', ('y', 'x', 'rgb'), dtype('uint8'))
    >>> spec = infer_spec([1.0, 2.0], "f")
    >>> spec.kind, spec.variables[0].shape, spec.variables[0].attrs
    ('array', (2,), {'xsweep_encoding': 'list'})
    >>> infer_spec([1, {"more_data": [1, 2, 3]}], "f").kind
    'json'
    >>> spec = infer_spec(1 + 2j, "z")
    >>> spec.variables[0].dims, spec.variables[0].dtype
    (('z_complex',), dtype('float64'))
    >>> spec.extract(3 - 4j)
    (array([ 3., -4.]),)
    """
    output_dims = dict(output_dims or {})
    if result is None:
        raise OutputError(f"the function returned None; it must return {ALLOWED_OUTPUTS}")
    if _is_scalar(result):
        spec = OutputSpec("scalar", (_array_spec(default_name, result, output_dims),))
    elif isinstance(result, np.ndarray):
        spec = OutputSpec("array", (_array_spec(default_name, result, output_dims),))
    elif isinstance(result, dict):
        if not result:
            raise OutputError("the function returned an empty dict; return at least one output")
        if _is_json_dict(result):
            spec = _json_spec(result, default_name)
        else:
            variables = []
            for key, value in result.items():
                _check_var_name(key, "a returned dict key")
                if value is None:
                    raise OutputError(f"output {key!r} is None; allowed: {ALLOWED_OUTPUTS}")
                variables.append(_array_spec(key, value, output_dims))
            spec = OutputSpec("dict", tuple(variables))
    elif isinstance(result, xr.DataArray):
        name = _check_var_name(result.name or default_name, "the returned DataArray's name")
        spec = OutputSpec("dataarray", (_from_dataarray(name, result),))
    elif isinstance(result, xr.Dataset):
        if not result.data_vars:
            raise OutputError(
                "the function returned an empty Dataset; return at least one variable"
            )
        spec = OutputSpec(
            "dataset",
            tuple(
                _from_dataarray(_check_var_name(k, "a returned Dataset variable"), result[k])
                for k in result.data_vars
            ),
        )
    else:
        spec = _other_spec(result, default_name, output_dims)
    unused = set(output_dims) - set(spec.names)
    if unused:
        raise OutputError(
            f"output_dims names {sorted(unused)}, which the function does not return; "
            f"its outputs are {list(spec.names)}."
        )
    _check_dim_lengths(spec)
    return spec


def _other_spec(
    result: Any, default_name: str, output_dims: dict[str, tuple[str, ...]]
) -> OutputSpec:
    """The structure of a return value of the kinds added to plain values and xarray."""
    if isinstance(result, (list, tuple)):
        if _as_array(result) is None:
            return _json_spec(result, default_name)
        return OutputSpec("array", (_array_spec(default_name, result, output_dims),))
    if isinstance(result, (pd.Series, pd.DataFrame)):
        if output_dims:
            raise OutputError(
                "output_dims cannot name the dim of a pandas output: it is named after the "
                "index (result.rename_axis('t') names it 't'; an unnamed index gives 'index')"
            )
        return _pandas_spec(result, default_name)
    var = _value_spec(default_name, result, output_dims)
    if var is not None:
        return OutputSpec("array" if isinstance(var._codec, _ImageCodec) else "scalar", (var,))
    raise OutputError(
        f"the function returned {_describe(result)}; allowed: {ALLOWED_OUTPUTS}. {_hint(result)}"
    )


def _hint(value: Any) -> str:
    """How to return ``value`` in a form xsweep stores."""
    if isinstance(value, (bytes, bytearray)):
        return "Decode bytes to a str (b.decode()) or return np.frombuffer(b, np.uint8)"
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return (
            "Convert it to numpy: np.datetime64(value) or np.timedelta64(value) (a pandas "
            "Timestamp: value.to_datetime64())"
        )
    return CONVERT_HINT


def _from_dataarray(name: str, da: xr.DataArray) -> VariableSpec:
    coords = {
        str(k): c.variable.copy(deep=True)
        for k, c in da.coords.items()
        if set(c.dims) <= set(da.dims)
    }
    return _array_spec(
        name,
        np.asarray(da.values),
        {},
        dims=tuple(map(str, da.dims)),
        coords=coords,
        # xsweep's own attributes (a DataArray read from a results file has them) would say
        # the values are encoded; what they describe is redone from the values
        attrs={k: v for k, v in da.attrs.items() if k not in _OWN_ATTRS},
    )


def _check_dim_lengths(spec: OutputSpec) -> None:
    seen: dict[str, tuple[int, str]] = {}
    for var in spec.variables:
        for dim, n in zip(var.dims, var.shape):
            if dim in seen and seen[dim][0] != n:
                raise OutputError(
                    f"dim {dim!r} has length {seen[dim][0]} in output {seen[dim][1]!r} but {n} in "
                    f"{var.name!r}; give the dims different names with output_dims."
                )
            seen[dim] = (n, var.name)


def grow_spec(
    spec: OutputSpec,
    result: Any,
    default_name: str,
    output_dims: dict[str, tuple[str, ...]] | None = None,
) -> OutputSpec | None:
    """The structure that holds both ``spec``'s cells and ``result``, if arrays just grew.

    Arrays whose shape varies between cells (a time series that stops early) are stored
    padded to the union of their shapes, with the fill, and a per-cell extent variable
    ``<name>_extent`` holds each cell's own shape, so the exact array comes back. Returns
    None when ``result`` differs in any other way (kind, names, dtype, number of dims): a
    real change of structure.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.outputs import grow_spec, infer_spec
    >>> spec = infer_spec(np.zeros(3), "trace")
    >>> grown = grow_spec(spec, np.zeros(5), "trace")
    >>> [(v.name, v.shape) for v in grown.variables]
    [('trace', (5,)), ('trace_extent', (1,))]
    >>> grow_spec(spec, np.zeros((5, 2)), "trace") is None
    True
    """
    if spec.kind not in ("array", "dict") or spec._pandas is not None:
        return None
    try:
        new = infer_spec(result, default_name, output_dims)
    except OutputError:
        return None
    old = [v for i, v in enumerate(spec.variables) if i not in set(spec._extents.values())]
    if new.kind != spec.kind or [v.name for v in new.variables] != [v.name for v in old]:
        return None
    variables: list[VariableSpec] = []
    grew = False
    for was, now in zip(old, new.variables):
        if was.shape == now.shape or (was.extent is not None and _fits(now.shape, was.shape)):
            variables.append(was)
            if was.extent is not None:
                variables.append(spec.variables[spec.names.index(was.extent)])
            continue
        plain = was._codec is None and now._codec is None and not was.scalar
        same_kind = was.dtype == now.dtype or (
            now.dtype.kind in "biuf" and np.can_cast(now.dtype, was.dtype, "safe")
        )
        if not plain or not same_kind or len(was.shape) != len(now.shape) or was.dims != now.dims:
            return None
        shape = tuple(max(a, b) for a, b in zip(was.shape, now.shape))
        extent = was.extent or f"{was.name}_extent"
        attrs = {**was.attrs, "xsweep_extent": extent}
        variables.append(
            VariableSpec(was.name, was.dtype, shape, was.dims, coords={}, attrs=attrs)
        )
        variables.append(
            VariableSpec(
                extent,
                np.dtype(np.int32),
                (len(shape),),
                (f"{was.name}_axis",),
                attrs={
                    "long_name": f"shape of each cell's {was.name} before padding",
                    "description": f"{was.name} is padded with its fill to {list(shape)}; "
                    f"a cell's own values are {was.name}[:n0, :n1, ...] with these n",
                },
            )
        )
        grew = True
    return OutputSpec(spec.kind, tuple(variables)) if grew else None
