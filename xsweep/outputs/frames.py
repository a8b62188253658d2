"""pandas: a Series or DataFrame is stored as variables over its index."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import OutputError
from .base import _TIME_UNITS, _describe
from .encodings import _time_attrs
from .infer import _array_spec, _check_var_name
from .spec import OutputSpec


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
