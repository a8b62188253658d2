"""What a function may return, in words, and the small checks every output module uses."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..file_format import DIMS_ATTR, RETURNED_DIMS_ATTR

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
#: Attribute of an output whose dims the store named after its function (JSON list: the
#: output's own names, one per dim); ``file_format.DIMS_ATTR``, by the name store/ uses.
NAMED_DIMS = DIMS_ATTR
#: Attribute of a DataArray output whose dims ``output_dims`` renamed (JSON list: the dims
#: the function returned); ``file_format.RETURNED_DIMS_ATTR``, by the name store/ uses.
RETURNED_DIMS = RETURNED_DIMS_ATTR


def fits_within(small: tuple[int, ...], big: tuple[int, ...]) -> bool:
    """Whether an array of shape ``small`` fits in one of shape ``big`` (as many dims)."""
    return len(small) == len(big) and all(a <= b for a, b in zip(small, big))


def describe(value: Any) -> str:
    """A returned value in a few words (type, shape, dtype), for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, xr.DataArray):
        return f"DataArray with dims {value.dims} and shape {value.shape}"
    if isinstance(value, pd.Series):
        return f"Series of length {len(value)} and dtype {value.dtype}"
    if isinstance(value, pd.DataFrame):
        return f"DataFrame with columns {list(value.columns)!r:.60} and {len(value)} rows"
    image = imported_pil()
    if image is not None and isinstance(value, image.Image):
        return f"PIL image of mode {value.mode!r} and size {value.width}x{value.height}"
    return f"{type(value).__name__} {value!r}"[:120]


def imported_pil() -> types.ModuleType | None:
    """The ``PIL.Image`` module if it is imported (else no value can be a PIL image)."""
    return sys.modules.get("PIL.Image")
