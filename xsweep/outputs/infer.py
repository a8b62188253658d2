"""Working out a function's output structure from its first cell."""

from __future__ import annotations

import datetime
import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import OutputError
from ..file_format import (
    DIMS_ATTR,
    DTYPE_ATTR,
    ENCODING_ATTR,
    HOLES_ATTR,
    PANDAS_ATTR,
    RETURNED_DIMS_ATTR,
)
from ..text import MAX_NAME_BYTES, name_problem
from .base import ALLOWED_OUTPUTS, CONVERT_HINT, describe, imported_pil
from .encodings import (
    TIME_ATTRS,
    TIME_UNITS,
    ImageCodec,
    complex_comment,
    image_from_array,
    is_json_dict,
    json_text,
    list_as_array,
    python_time,
    time_attrs,
)
from .frames import pandas_values
from .images import image_dims
from .spec import OutputSpec, VariableSpec

_ALLOWED_DTYPE_KINDS = "biufU"
_KIND_NAMES = "bool, int, unsigned int, float, complex, str, datetime64, timedelta64"
#: The labels of the (real, imag) pair dim of complex outputs.
_PAIR = np.array(["real", "imag"])
#: Variable attributes that describe how xsweep stored the values.
_OWN_ATTRS = (ENCODING_ATTR, PANDAS_ATTR, DTYPE_ATTR, HOLES_ATTR, DIMS_ATTR, RETURNED_DIMS_ATTR)


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
        assert dtype is not None  # _is_scalar(value)
        _storable_dtype(name, dtype)
        return VariableSpec(name, dtype, (), (), scalar=True)
    if not isinstance(value, np.ndarray):
        spec = _value_spec(name, value, output_dims) if dims is None else None
        if spec is None:
            raise OutputError(
                f"output {name!r} is {describe(value)}; allowed: {ALLOWED_OUTPUTS}. {_hint(value)}"
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
    if dims is None and name not in output_dims:
        named = image_dims(value)
        if named is not None:
            dims, coords = named[0], {**named[1], **(coords or {})}
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
        attrs[ENCODING_ATTR] = dtype.name
        attrs.setdefault("comment", complex_comment(name, pair))
        floats = np.dtype(np.float32 if dtype.itemsize == 8 else np.float64)
        return VariableSpec(name, floats, (*arr.shape, 2), dims, coords=coords, attrs=attrs)
    unit, count = np.datetime_data(dtype)
    if unit not in TIME_UNITS or count != 1:
        raise OutputError(
            f"output {name!r} has dtype {dtype}; a file stores times in days, hours, minutes, "
            f"seconds, ms, us or ns. Convert it: .astype('{dtype.kind}8[s]') (or "
            f"np.{'datetime64' if dtype.kind == 'M' else 'timedelta64'}(value, 's'))."
        )
    clash = [k for k in TIME_ATTRS if k in attrs]
    if clash:
        raise OutputError(
            f"output {name!r} holds times and has the attributes {clash}, which the file "
            "needs to describe them; rename or drop those attributes"
        )
    attrs.update(time_attrs(dtype))
    dims = () if scalar else _dims(name, arr.shape, output_dims, dims)
    return VariableSpec(
        name, np.dtype(np.int64), arr.shape, dims, scalar=scalar, coords=coords, attrs=attrs
    )


def _value_spec(
    name: str, value: Any, output_dims: dict[str, tuple[str, ...]]
) -> VariableSpec | None:
    """The variable of a value that is neither a plain scalar nor an array, or None."""
    if isinstance(value, (list, tuple)):
        arr = list_as_array(value)
        if arr is None:
            return None
        encoding = "tuple" if isinstance(value, tuple) else "list"
        if all(isinstance(v, np.ndarray) for v in value):
            encoding += " of arrays"
        return _array_spec(name, arr, output_dims, attrs={ENCODING_ATTR: encoding})
    if isinstance(value, (complex, np.complexfloating, np.datetime64, np.timedelta64)):
        arr = np.asarray(value)
        _storable_dtype(name, arr.dtype)
        return _encoded_spec(name, arr, output_dims, None, None, None, scalar=True)
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):  # datetime subclasses, in ns
        arr = np.asarray(value.to_numpy())
        return _encoded_spec(name, arr, output_dims, None, None, None, scalar=True)
    if isinstance(value, (datetime.datetime, datetime.timedelta)):
        arr = np.asarray(python_time(value))
        spec = _encoded_spec(name, arr, output_dims, None, None, None, scalar=True)
        python = "datetime" if arr.dtype.kind == "M" else "timedelta"
        attrs = {**spec.attrs, ENCODING_ATTR: f"{arr.dtype.name}:{python}"}
        return VariableSpec(name, spec.dtype, (), (), scalar=True, attrs=attrs)
    image = imported_pil()
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
    if not arr.dtype.isnative or image_from_array(arr, mode).tobytes() != image.tobytes():
        raise OutputError(
            f"{what}, which xsweep cannot store exactly; convert it: image.convert('RGB'), "
            "'RGBA', 'L', 'I' or 'F', or return np.asarray(image)"
        )
    if name in output_dims:
        dims = tuple(output_dims[name])
    else:
        dims = ("y", "x", mode.lower())[: arr.ndim]
    return _array_spec(name, arr, {name: dims}, attrs={ENCODING_ATTR: f"image:{mode}"})


def _json_spec(result: Any, name: str) -> OutputSpec:
    json_text(result)  # refuse what JSON cannot hold now, naming it
    var = VariableSpec(name, np.dtype(object), (), (), scalar=True, attrs={ENCODING_ATTR: "json"})
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
        if is_json_dict(result):
            spec = _json_spec(result, default_name)
        else:
            variables = []
            for key, value in result.items():
                _check_var_name(key, "a returned dict key")
                if value is None:
                    raise OutputError(f"output {key!r} is None; allowed: {ALLOWED_OUTPUTS}")
                variables.append(_array_spec(key, value, output_dims))
            implicit = {k for k, v in result.items() if k not in output_dims and _is_image(v)}
            spec = OutputSpec("dict", _images_apart(variables, implicit))
    elif isinstance(result, xr.DataArray):
        name = _check_var_name(result.name or default_name, "the returned DataArray's name")
        spec = OutputSpec("dataarray", (_from_dataarray(name, result, output_dims),))
    elif isinstance(result, xr.Dataset):
        if not result.data_vars:
            raise OutputError(
                "the function returned an empty Dataset; return at least one variable"
            )
        spec = OutputSpec(
            "dataset",
            tuple(
                _from_dataarray(
                    _check_var_name(k, "a returned Dataset variable"), result[k], output_dims
                )
                for k in result.data_vars
            ),
        )
    else:
        spec = _other_spec(result, default_name, output_dims)
    for var in spec.variables:
        if var.name in output_dims and not var.dims:
            raise OutputError(
                f"output_dims names {var.name!r}, which holds one value per cell (no dims "
                "to name); leave it out of output_dims."
            )
    unused = set(output_dims) - set(spec.names)
    if unused:
        raise OutputError(
            f"output_dims names {sorted(unused)}, which the function does not return; "
            f"its outputs are {list(spec.names)}."
        )
    check_dim_lengths(spec)
    return spec


def _other_spec(
    result: Any, default_name: str, output_dims: dict[str, tuple[str, ...]]
) -> OutputSpec:
    """The structure of a return value of the kinds added to plain values and xarray."""
    if isinstance(result, (list, tuple)):
        if list_as_array(result) is None:
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
        return OutputSpec("array" if isinstance(var._codec, ImageCodec) else "scalar", (var,))
    raise OutputError(
        f"the function returned {describe(result)}; allowed: {ALLOWED_OUTPUTS}. {_hint(result)}"
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


def _from_dataarray(
    name: str, da: xr.DataArray, output_dims: dict[str, tuple[str, ...]]
) -> VariableSpec:
    returned = tuple(map(str, da.dims))
    # xsweep's own attributes (a DataArray read from a results file has them) would say
    # the values are encoded; what they describe is redone from the values
    attrs = {k: v for k, v in da.attrs.items() if k not in _OWN_ATTRS}
    dims = returned
    if name in output_dims:
        dims = tuple(output_dims[name])
        if len(dims) != len(returned):
            raise OutputError(
                f"output_dims[{name!r}] = {dims} names {len(dims)} dims but the returned "
                f"DataArray has {len(returned)}: {returned}."
            )
        if dims != returned:
            attrs[RETURNED_DIMS_ATTR] = json.dumps(list(returned))
    rename = dict(zip(returned, dims))
    coords = {}
    for k, c in da.coords.items():
        if set(c.dims) <= set(returned):
            var = c.variable.copy(deep=True)
            var.dims = tuple(rename[d] for d in c.dims)
            coords[rename.get(str(k), str(k)) if c.dims == (k,) else str(k)] = var
    return _array_spec(name, np.asarray(da.values), {}, dims=dims, coords=coords, attrs=attrs)


def _is_image(value: Any) -> bool:
    pil = imported_pil()
    return image_dims(value) is not None or (pil is not None and isinstance(value, pil.Image))


def _images_apart(variables: list[VariableSpec], implicit: set[str]) -> tuple[VariableSpec, ...]:
    """A dict's images of several sizes: a later image's dims that an earlier output has with
    another length get its key's name (``side_y``), as no dim has two lengths."""
    sizes: dict[str, int] = {}
    out = []
    for var in variables:
        rename = {
            d: f"{var.name}_{d}"
            for d, n in zip(var.dims, var.shape)
            if var.name in implicit and sizes.get(d, n) != n
        }
        if rename:
            coords = {}
            for k, c in var.coords.items():
                c = c.copy(deep=False)
                c.dims = tuple(rename.get(str(d), str(d)) for d in c.dims)  # dims are str here
                coords[rename.get(str(k), str(k))] = c
            dims = tuple(rename.get(d, d) for d in var.dims)
            var = VariableSpec(
                var.name, var.dtype, var.shape, dims, var.scalar, coords=coords, attrs=var.attrs
            )
        for d, n in zip(var.dims, var.shape):
            sizes.setdefault(d, n)
        out.append(var)
    return tuple(out)


def check_dim_lengths(spec: OutputSpec) -> None:
    """Refuse a structure in which one dim has two lengths, saying how to name them apart."""
    seen: dict[str, tuple[int, str]] = {}
    for var in spec.variables:
        for dim, n in zip(var.dims, var.shape):
            if dim in seen and seen[dim][0] != n:
                raise OutputError(
                    f"dim {dim!r} has length {seen[dim][0]} in output {seen[dim][1]!r} but {n} in "
                    f"{var.name!r}; give the dims different names with output_dims."
                )
            seen[dim] = (n, var.name)


# ---------------------------------------------------------------------------------------------
# pandas: a Series or DataFrame is stored as variables over its index (frames.PandasLayout)
# ---------------------------------------------------------------------------------------------
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
        values = pandas_values(column, what if kind == "series" else f"column {name!r} of {what}")
        attrs = {PANDAS_ATTR: json.dumps({**meta, "dtype": str(column.dtype)})}
        variables.append(
            _array_spec(name, values, {}, dims=(dim,), coords={dim: coord}, attrs=attrs)
        )
    return OutputSpec(kind, tuple(variables))


def _json_scalar(value: Any, what: str) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise OutputError(f"{what} is {value!r:.40}; use a string (or None)")


def _index_coord(index: pd.Index, dim: str, what: str) -> xr.Variable:
    values = pandas_values(pd.Series(index), f"the index of {what}")
    if values.dtype.kind in "mM":
        dtype = values.dtype
        if np.datetime_data(dtype)[0] not in TIME_UNITS:
            raise OutputError(
                f"the index of {what} has dtype {dtype}; convert it to seconds or finer"
            )
        return xr.Variable((dim,), values.view(np.int64), time_attrs(dtype))
    if values.dtype.kind not in "biufU":
        raise OutputError(
            f"the index of {what} has dtype {values.dtype}, which a NetCDF coordinate cannot "
            "hold; use numbers, strings or times"
        )
    return xr.Variable((dim,), values)
