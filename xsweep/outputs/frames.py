"""pandas: a Series or DataFrame is stored as variables over its index; this is its layout.

The layout checks each cell's Series or DataFrame and gives stored cells back as one;
``infer`` works the variables out from a first cell.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import OutputError
from ..file_format import ENCODING_ATTR, PANDAS_ATTR
from .base import describe

if TYPE_CHECKING:  # annotations only: spec builds a layout for its pandas outputs
    from .spec import OutputSpec


# ---------------------------------------------------------------------------------------------
# pandas: a Series or DataFrame is stored as variables over its index
# ---------------------------------------------------------------------------------------------
class PandasLayout:
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
        self.meta = [json.loads(v.attrs[PANDAS_ATTR]) for v in spec.variables]
        self.names = [m["name"] for m in self.meta] if spec.kind == "series" else []
        self.dim = first.value_dims[0]
        if any(v.value_dims != (self.dim,) for v in spec.variables):
            raise ValueError("a pandas output's variables are over its index only")
        self.index = _index_from(first.coords[self.dim], self.meta[0]["index"])

    def extract(self, result: Any) -> tuple[Any, ...]:
        if self.kind == "series":
            if not isinstance(result, pd.Series):
                raise OutputError(f"got {describe(result)} where earlier cells gave a Series")
            self._check_index(result)
            return (self.variables[0].coerce(result.to_numpy()),)
        if not isinstance(result, pd.DataFrame):
            raise OutputError(f"got {describe(result)} where earlier cells gave a DataFrame")
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
    encoding = coord.attrs.get(ENCODING_ATTR)
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


def pandas_values(series: pd.Series, what: str) -> np.ndarray:
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
