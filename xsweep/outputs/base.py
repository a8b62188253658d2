"""What a function may return, in words, and the small type checks every output module uses."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import OutputError

#: What a swept function may return, for error messages.
ALLOWED_OUTPUTS = (
    "a scalar (int, float, bool, str, complex, datetime.datetime, datetime.timedelta, or a "
    "numpy scalar, datetime64 and timedelta64 included), a numpy array, a list or tuple of "
    "numbers or strings, a PIL image, a pandas Series or DataFrame, an xarray.DataArray or "
    "Dataset, a dict of those scalars, arrays, lists and images (one variable per key), or a "
    "JSON-like value (dicts with str keys and lists, nested, of str, int, float, bool and None)"
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
#: Attribute of an output whose dims the store named after its function (JSON list: the
#: output's own names, one per dim).
NAMED_DIMS = "xsweep_dims"
#: Attribute of a DataArray output whose dims ``output_dims`` renamed (JSON list: the dims
#: the function returned).
RETURNED_DIMS = "xsweep_returned_dims"
#: Variable attributes that describe how xsweep stored the values.
_OWN_ATTRS = (
    "xsweep_encoding", "xsweep_pandas", "xsweep_dtype", "xsweep_holes", NAMED_DIMS, RETURNED_DIMS
)


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
