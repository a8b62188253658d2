"""Encodings: values a NetCDF file has no type for, stored natively, given back as returned."""

from __future__ import annotations

import datetime
import json
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import xarray as xr

from ..errors import OutputError
from ..file_format import ENCODING_ATTR
from ..text import text_problem
from .base import CONVERT_HINT, describe, imported_pil

if TYPE_CHECKING:  # annotations only: spec imports this module
    import PIL.Image

    from .spec import VariableSpec


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
    added: tuple[str, ...] = (ENCODING_ATTR,)  # attributes the encoding writes

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
        return type(self.var).coerce(self.var, arr)  # the plain check, not this codec

    def user_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """``attrs`` without those the encoding added."""
        return {k: v for k, v in attrs.items() if k not in self.added}


def codec_for(var: VariableSpec, encoding: Any) -> _Codec:
    """The codec of ``var``'s encoding attribute; ``ValueError`` if unknown or not fitting."""
    if not isinstance(encoding, str):
        raise ValueError(f"the {ENCODING_ATTR} of {var.name!r} is not a string")
    head, _, arg = encoding.partition(":")
    if encoding in ("list", "tuple", "list of arrays", "tuple of arrays"):
        return _ListCodec(var, encoding)
    if head == "image":
        return ImageCodec(var, arg)
    if encoding.startswith(("datetime64[", "timedelta64[")):
        return _TimeCodec(var, encoding)
    if encoding in ("complex64", "complex128"):
        return ComplexCodec(var, encoding)
    if encoding == "json":
        return _JsonCodec(var, encoding)
    raise ValueError(f"output {var.name!r} has the unknown {ENCODING_ATTR} {encoding!r:.40}")


def list_as_array(value: list | tuple) -> np.ndarray | None:
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
            arr = list_as_array(value)
        else:
            arr = value if isinstance(value, np.ndarray) else None
        if arr is None:
            raise OutputError(f"got {describe(value)} where earlier cells gave {self.what}")
        return self.plain(arr)

    def decode(self, values: np.ndarray, kind: str) -> Any:
        if self.of_arrays:
            return self.container(np.array(row) for row in values)
        out = np.asarray(values).tolist()
        return _to_tuples(out) if self.container is tuple else out


class ImageCodec(_Codec):
    """A PIL image, stored as its ``np.asarray`` array; given back in the same mode."""

    def __init__(self, var: VariableSpec, mode: str) -> None:
        super().__init__(var, mode)
        if not mode or len(var.shape) not in (2, 3):
            raise ValueError(f"output {var.name!r} cannot be an image of mode {mode!r:.20}")
        self.mode = mode

    def coerce(self, value: Any) -> Any:
        image = imported_pil()
        if image is None or not isinstance(value, image.Image):
            h, w = self.var.shape[:2]
            raise OutputError(
                f"got {describe(value)} where earlier cells gave a PIL image of mode "
                f"{self.mode!r} and size {w}x{h}"
            )
        if value.mode != self.mode:
            raise OutputError(
                f"got a PIL image of mode {value.mode!r} where earlier cells gave mode "
                f"{self.mode!r}; convert it: image.convert({self.mode!r})"
            )
        return self.plain(np.asarray(value))

    def decode(self, values: np.ndarray, kind: str) -> Any:
        return image_from_array(np.asarray(values), self.mode)


def image_from_array(arr: np.ndarray, mode: str) -> PIL.Image.Image:
    """The PIL image of mode ``mode`` whose ``np.asarray`` is ``arr``."""
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


#: numpy time units a file stores, with their CF names (pandas and xarray know no others).
TIME_UNITS = {
    "D": "days",
    "h": "hours",
    "m": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
}
_NAT = np.iinfo(np.int64).min  # NaT as an int64, in every unit
#: The units xarray decodes times at.
TimeUnit = Literal["s", "ms", "us", "ns"]
#: Attributes the time encoding writes; a returned DataArray may not have them itself.
TIME_ATTRS = ("units", "calendar", "missing_value", "dtype")


class _TimeCodec(_Codec):
    """``datetime64`` or ``timedelta64`` values, stored as int64 counts with CF units."""

    fill = _NAT
    added = (ENCODING_ATTR, *TIME_ATTRS)

    def __init__(self, var: VariableSpec, arg: str) -> None:
        super().__init__(var, arg)
        # "datetime64[us]:datetime": the function returned Python datetime objects
        arg, _, python = arg.partition(":")
        if python not in ("", "datetime", "timedelta"):
            raise ValueError(f"output {var.name!r} has the unknown time encoding {python!r:.30}")
        self.python = python
        self.dtype = np.dtype(arg)
        unit, count = np.datetime_data(self.dtype)
        if var.dtype != np.int64 or unit not in TIME_UNITS or count != 1:
            raise ValueError(f"output {var.name!r} cannot hold {arg!r:.30} as {var.dtype}")
        self.kind = self.dtype.kind
        self.type = np.datetime64 if self.kind == "M" else np.timedelta64
        # The store drops a "dtype" attribute when it reads a file; xarray needs it.
        for key, value in time_attrs(self.dtype).items():
            var.attrs.setdefault(key, value)

    def coerce(self, value: Any) -> Any:
        var = self.var
        if isinstance(value, _PYTHON_TIMES):  # pandas' Timestamp and Timedelta are ones
            value = value.to_numpy() if hasattr(value, "to_numpy") else python_time(value)
        if isinstance(value, (np.ndarray, self.type)):
            arr = np.asarray(value)
            if arr.dtype != self.dtype:
                if arr.dtype.kind != self.kind or not np.can_cast(arr.dtype, self.dtype, "safe"):
                    raise OutputError(
                        f"got {describe(value)} where earlier cells gave {self.dtype}; return "
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
        raise OutputError(f"got {describe(value)} where earlier cells gave {what} {self.dtype}")

    def decode(self, values: np.ndarray, kind: str) -> Any:
        out = np.array(values, dtype=np.int64).view(self.dtype)
        if self.var.scalar and kind in ("scalar", "dict"):
            # microseconds: .item() gives the datetime or timedelta returned (None for NaT)
            return out[()].item() if self.python else out[()]
        return out


_PYTHON_TIMES = (datetime.datetime, datetime.timedelta)


def python_time(value: Any) -> Any:
    """A ``datetime.datetime`` or ``timedelta`` as a numpy time in microseconds (its unit).

    Examples
    --------
    >>> import datetime
    >>> from xsweep.outputs.encodings import python_time
    >>> python_time(datetime.datetime(2024, 5, 1, 12, 30))
    np.datetime64('2024-05-01T12:30:00.000000')
    >>> python_time(datetime.timedelta(seconds=1.5))
    np.timedelta64(1500000,'us')
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            raise OutputError(
                f"got the time {value!r:.80} with a time zone, which a NetCDF file does not "
                "keep; return it in UTC without one: value.astimezone(datetime.timezone.utc)"
                ".replace(tzinfo=None)"
            )
        return np.datetime64(value, "us")
    return np.timedelta64(value, "us")


def time_attrs(dtype: np.dtype) -> dict[str, Any]:
    """CF attributes under which ``xarray.open_dataset`` decodes int64 counts of ``dtype``."""
    unit = np.datetime_data(dtype)[0]
    attrs: dict[str, Any] = {ENCODING_ATTR: dtype.name}
    if dtype.kind == "M":
        attrs["units"] = f"{TIME_UNITS[unit]} since 1970-01-01"
        attrs["calendar"] = "proleptic_gregorian"
    else:
        attrs["units"] = TIME_UNITS[unit]
        # xarray decodes timedeltas with this attribute only, at pandas' resolutions.
        attrs["dtype"] = f"timedelta64[{unit if unit in ('s', 'ms', 'us', 'ns') else 's'}]"
    attrs["missing_value"] = np.int64(_NAT)  # not-computed cells read as NaT
    return attrs


def complex_comment(name: str, pair: str) -> str:
    """The ``comment`` attribute telling a reader how to rebuild complex output ``name``."""
    return (
        f"complex numbers stored as (real, imag) float pairs along the last dim {pair!r}: "
        f"{name} = {name}.sel({pair}='real') + 1j * {name}.sel({pair}='imag')"
    )


class ComplexCodec(_Codec):
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
        self.comment = complex_comment(var.name, self.pair)

    def coerce(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            arr = value
        elif isinstance(value, (complex, float, int, np.number)) and not isinstance(
            value, np.timedelta64
        ):
            arr = np.asarray(value)
        else:
            raise OutputError(
                f"got {describe(value)} where earlier cells gave complex values of shape "
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
        return json_text(value)

    def decode(self, values: np.ndarray, kind: str) -> Any:
        return json.loads(np.asarray(values).item())


_IN_JSON = (
    "a JSON value holds dicts with str keys, lists, tuples (given back as lists), str, int, "
    "float, bool, None and numpy arrays of numbers or strings (given back as lists)"
)


def json_text(value: Any) -> str:
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
        f"the value holds {describe(value)} at {where or 'the top'}, which JSON cannot hold: "
        f"{_IN_JSON}. {CONVERT_HINT}"
    )


def is_json_dict(result: dict) -> bool:
    """Whether a returned dict is stored as one JSON value rather than one variable per key.

    It is when a value is itself a dict, or a list or tuple that is not a rectangular,
    non-empty array of numbers or strings.
    """
    for value in result.values():
        if isinstance(value, dict):
            return True
        if isinstance(value, (list, tuple)) and list_as_array(value) is None:
            return True
    return False


def decode_times(ds: xr.Dataset) -> xr.Dataset:
    """Give datetime and timedelta outputs (stored as CF counts) back as numpy times.

    Each is decoded at the unit it was returned in (at least seconds, pandas' coarsest), so
    that a time before 1582 or beyond ``datetime64[ns]``'s range stays a numpy time, not a
    ``cftime`` object.
    """
    units: dict[TimeUnit, list[Hashable]] = {}
    for name, var in ds.variables.items():
        encoding = str(var.attrs.get(ENCODING_ATTR, ""))
        if encoding.startswith(("datetime64", "timedelta64")):
            # "datetime64[us]", or "datetime64[us]:datetime" for datetime objects
            unit = np.datetime_data(np.dtype(encoding.partition(":")[0]))[0]
            time_unit = cast(TimeUnit, unit if unit in ("s", "ms", "us", "ns") else "s")
            units.setdefault(time_unit, []).append(name)
    for unit, names in units.items():
        decoded = xr.decode_cf(
            ds[names] if set(names) <= set(ds.data_vars) else ds.reset_coords()[names],
            decode_times=xr.coders.CFDatetimeCoder(time_unit=unit),
            decode_timedelta=xr.coders.CFTimedeltaCoder(time_unit=unit),
        )
        for name in names:
            ds[name] = decoded[name] if name in ds.data_vars else ds[name]
            if name in ds.coords:
                ds = ds.assign_coords({name: decoded[name]})
    return ds
