"""Output structures: what every cell of a function returns, checked once per cell."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..errors import OutputError, UnstorableValueError
from ..file_format import DIMS_ATTR, ENCODING_ATTR, EXTENT_ATTR, RETURNED_DIMS_ATTR
from ..text import text_problem
from .base import describe, fits_within
from .encodings import ComplexCodec, codec_for
from .frames import PandasLayout

# Python types accepted for a scalar variable of each dtype kind without a numpy cast check.
_FAST_TYPES: dict[str, tuple[type[Any], ...]] = {
    "f": (float, int, bool, np.floating, np.integer, np.bool_),
    "i": (int, bool, np.integer, np.bool_),
    "u": (int, bool, np.unsignedinteger, np.bool_),
    "b": (bool, np.bool_),
    "U": (str, np.str_),
}


def _dim_list(text: Any, attr: str, n: int) -> tuple[str, ...]:
    try:
        names = json.loads(text)
    except (TypeError, ValueError):
        names = None
    if not isinstance(names, list) or len(names) != n or not all(isinstance(d, str) for d in names):
        raise ValueError(f"the {attr} attribute {text!r:.80} is not a list of {n} dim names")
    return tuple(names)


def _text_refused(text: str) -> OutputError:
    """The refusal of text NetCDF cannot hold, with the only advice that helps."""
    return UnstorableValueError(
        f"the text {text!r:.80} {text_problem(text)}; remove or replace that character in "
        "what the function returns"
    )


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
        self.extent = self.attrs.get(EXTENT_ATTR)
        self.seen_shape: tuple[int, ...] = self.shape
        encoding = self.attrs.get(ENCODING_ATTR)
        self._codec = None if encoding is None else codec_for(self, encoding)
        if self._codec is not None:
            self._fast = ()
            self.coerce = self._codec.coerce  # type: ignore[method-assign]
            self.value_dims = self._codec.value_dims
            if self._codec.fill is not None:
                self._fill = self._codec.fill
        #: The output's own dim names: ``dims`` are those in the results, where the store
        #: gives a dim the function's name when another part of the file uses it otherwise.
        self.named_dims = self.dims
        named = self.attrs.get(DIMS_ATTR)
        returned = self.attrs.get(RETURNED_DIMS_ATTR)
        if named is not None or returned is not None:
            self._renamed(named, returned)

    def _renamed(self, named: Any, returned: Any) -> None:
        """Follow the attributes saying how the stored dims were named and returned."""
        if named is not None:
            self.named_dims = _dim_list(named, DIMS_ATTR, len(self.dims))
        to_named = dict(zip(self.dims, self.named_dims))
        value = tuple(to_named[d] for d in self.value_dims)
        if returned is not None:
            # output_dims renamed a returned DataArray's dims: it is given back with its own
            to_returned = dict(zip(value, _dim_list(returned, RETURNED_DIMS_ATTR, len(value))))
            value = tuple(to_returned[d] for d in value)
        self.value_dims = value

    @property
    def dims_returned(self) -> dict[str, str]:
        """Stored dim -> the dim the function returned, where they differ."""
        return {s: r for s, r in zip(self.dims, self.value_dims) if s != r}

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
                    raise _text_refused(value)
                return value
            if isinstance(value, np.ndarray) and value.shape == () and self._castable(value):
                return value.item()
            raise OutputError(
                f"got {describe(value)} where earlier cells gave a {self._type_name()}"
            )
        arr: np.ndarray | str | None  # a text cell may become its str
        arr = value if isinstance(value, np.ndarray) else None
        if arr is None:
            raise OutputError(
                f"got {describe(value)} where earlier cells gave an array of shape "
                f"{self.shape} and dtype {self.dtype}"
            )
        if arr.shape != self.shape:
            if self.extent is None or not fits_within(arr.shape, self.shape):
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
            arr = self._checked_text(arr)
            if isinstance(arr, str):
                return arr
        if arr.dtype != self.dtype:
            if not self._castable(arr):
                raise OutputError(
                    f"got dtype {arr.dtype} where earlier cells gave {self.dtype}, which cannot "
                    "hold it without loss; return the same dtype from every cell"
                )
            arr = arr.astype(self.dtype)
        return arr

    def _checked_text(self, arr: np.ndarray) -> np.ndarray | str:
        """A text cell checked: every item storable; a 0-d one as its str."""
        for item in arr.flat:
            if isinstance(item, str) and text_problem(item):
                raise _text_refused(item)
        if arr.ndim == 0:  # a 0-d text DataArray: its str (an object buffer holds str)
            if not self._castable(arr):
                raise OutputError(f"got {describe(arr)} where earlier cells gave a str")
            return str(arr.item())
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
        self._pandas = None
        if self.kind in ("series", "dataframe"):
            self._pandas = PandasLayout(self)
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

    def extractor(self) -> Callable[[Any], tuple[Any, ...]]:
        """:meth:`extract` for the per-cell hot path: for one int or float scalar (the common
        case), a function that takes the exact Python type without further checks."""
        var = self.variables[0] if len(self.variables) == 1 else None
        if self.kind != "scalar" or var is None or self._extents or not var._fast:
            return self.extract
        coerce = var.coerce
        if var._kind == "f":

            def extract(result: Any) -> tuple[Any, ...]:
                return (result,) if type(result) is float else (coerce(result),)

            return extract
        if var._kind in "iu":
            lo, hi = var._range

            def extract_int(result: Any) -> tuple[Any, ...]:
                if type(result) is int and lo <= result <= hi:
                    return (result,)
                return (coerce(result),)

            return extract_int
        return self.extract

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
                    f"got {describe(result)} where earlier cells gave a dict with keys "
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
                raise OutputError(f"got {describe(result)} where earlier cells gave a DataArray")
            var = self.variables[0]
            if result.dims != var.value_dims:
                raise OutputError(
                    f"got DataArray dims {result.dims} where earlier cells gave {var.value_dims}"
                )
            return (var.coerce(result.values),)
        if kind == "json":
            return (self.variables[0].coerce(result),)
        if kind == "series" or kind == "dataframe":
            assert self._pandas is not None  # made by __post_init__ for these kinds
            return self._pandas.extract(result)
        if not isinstance(result, xr.Dataset):
            raise OutputError(f"got {describe(result)} where earlier cells gave a Dataset")
        if set(result.data_vars) != set(self.names):
            raise OutputError(
                f"got Dataset variables {sorted(result.data_vars, key=str)} where earlier cells "
                f"gave {sorted(self.names)}"
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

    @property
    def needs_dataset(self) -> bool:
        """Whether :meth:`rebuild` needs the cell as a Dataset (DataArray and Dataset kinds)."""
        return self.kind in ("dataarray", "dataset")

    def rebuild_values(self, values: dict[str, np.ndarray]) -> Any:
        """Give a stored cell back as the function returned it, from each variable's values.

        For every kind but DataArray and Dataset (see :attr:`needs_dataset`): no xarray
        object is built.
        """

        def plain(var: VariableSpec) -> Any:
            data = values[var.name]
            if var.extent is not None:
                extent = np.asarray(values[var.extent]).tolist()
                data = data[tuple(slice(0, int(n)) for n in extent)]
            if var._codec is not None:
                return var._codec.decode(data, self.kind)
            if var.scalar:
                if var.dtype.kind in "fiu" and var.dtype.itemsize < 8:
                    return var.dtype.type(data)  # a float32 stays a numpy float32
                return np.asarray(data).item()
            return np.array(data, copy=True)

        if self.kind in ("scalar", "array", "json"):
            return plain(self.variables[0])
        if self.kind == "dict":
            skip = set(self._extents.values())
            return {v.name: plain(v) for i, v in enumerate(self.variables) if i not in skip}
        if self._pandas is not None:
            return self._pandas.rebuild({v.name: plain(v) for v in self.variables})
        raise ValueError(f"a {self.kind} cell is rebuilt from a Dataset (rebuild)")

    def rebuild(self, cell: xr.Dataset, param_names: tuple[str, ...]) -> Any:
        """Give a stored cell back as the function returned it.

        ``cell`` is the store's Dataset selected at one cell; parameter coordinates are
        dropped so that a DataArray or Dataset looks as the function built it.
        """
        if not self.needs_dataset:
            return self.rebuild_values({name: cell[name].values for name in self.names})
        param_coords = [c for c in cell.coords if c in param_names]
        sub = cell[list(self.names)].drop_vars(param_coords, errors="ignore").copy(deep=True)
        sub.attrs = {}
        if self._extents:
            sub = self._unpadded(sub)
        if any(v._codec is not None for v in self.variables):
            sub = self._decoded(sub)
        if any(v.dims_returned or v.dims != v.named_dims for v in self.variables):
            sub = xr.Dataset({v.name: _as_returned(sub[v.name], v) for v in self.variables})
        if self.kind == "dataarray":
            return sub[self.names[0]]
        return sub

    def _unpadded(self, sub: xr.Dataset) -> xr.Dataset:
        """A ragged cell cut to its own shape, without the extent variables."""
        lengths: dict[str, int] = {}
        for i, j in self._extents.items():
            var = self.variables[i]
            extent = np.asarray(sub[self.variables[j].name].values).tolist()
            lengths.update(zip(var.dims, (int(n) for n in extent)))
        sub = sub.drop_vars([self.variables[j].name for j in self._extents.values()])
        sub = sub.isel({d: slice(0, n) for d, n in lengths.items() if d in sub.dims})
        for i in self._extents:
            name = self.variables[i].name
            sub[name].attrs.pop(EXTENT_ATTR, None)
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
            if isinstance(codec, ComplexCodec):
                pairs.add(codec.pair)
        coords = {k: c.variable for k, c in sub.coords.items() if not pairs & set(c.dims)}
        return xr.Dataset(data_vars, coords)


def _as_returned(da: xr.DataArray, var: VariableSpec) -> xr.DataArray:
    """A stored output's DataArray with the dims (and their coordinates) it was returned with."""
    names = {k: r for k, r in var.dims_returned.items() if k in da.dims or k in da.coords}
    da = da.rename(names) if names else da
    da.attrs = {k: v for k, v in da.attrs.items() if k not in (DIMS_ATTR, RETURNED_DIMS_ATTR)}
    return da
