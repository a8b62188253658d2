"""Working out a function's output structure from its first cell, and growing it."""

from __future__ import annotations

import datetime
import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import OutputError
from ..text import MAX_NAME_BYTES, name_problem
from .base import (
    _ALLOWED_DTYPE_KINDS,
    _KIND_NAMES,
    _OWN_ATTRS,
    _PAIR,
    _TIME_ATTRS,
    _TIME_UNITS,
    ALLOWED_OUTPUTS,
    CONVERT_HINT,
    RETURNED_DIMS,
    _describe,
    _fits,
    _is_scalar,
    _pil,
    _scalar_dtype,
    _storable_dtype,
)
from .encodings import (
    _as_array,
    _complex_comment,
    _image_from_array,
    _ImageCodec,
    _is_json_dict,
    _json_text,
    _time_attrs,
    python_time,
)
from .images import image_dims
from .spec import OutputSpec, VariableSpec


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
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):  # datetime subclasses, in ns
        arr = np.asarray(value.to_numpy())
        return _encoded_spec(name, arr, output_dims, None, None, None, scalar=True)
    if isinstance(value, (datetime.datetime, datetime.timedelta)):
        arr = np.asarray(python_time(value))
        spec = _encoded_spec(name, arr, output_dims, None, None, None, scalar=True)
        python = "datetime" if arr.dtype.kind == "M" else "timedelta"
        attrs = {**spec.attrs, "xsweep_encoding": f"{arr.dtype.name}:{python}"}
        return VariableSpec(name, spec.dtype, (), (), scalar=True, attrs=attrs)
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
        from .frames import _pandas_spec  # frames uses this module's helpers

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
            attrs[RETURNED_DIMS] = json.dumps(list(returned))
    rename = dict(zip(returned, dims))
    coords = {}
    for k, c in da.coords.items():
        if set(c.dims) <= set(returned):
            var = c.variable.copy(deep=True)
            var.dims = tuple(rename[d] for d in c.dims)
            coords[rename.get(str(k), str(k)) if c.dims == (k,) else str(k)] = var
    return _array_spec(name, np.asarray(da.values), {}, dims=dims, coords=coords, attrs=attrs)


def _is_image(value: Any) -> bool:
    pil = _pil()
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
                c.dims = tuple(rename.get(d, d) for d in c.dims)
                coords[rename.get(k, k)] = c
            dims = tuple(rename.get(d, d) for d in var.dims)
            var = VariableSpec(
                var.name, var.dtype, var.shape, dims, var.scalar, coords=coords, attrs=var.attrs
            )
        for d, n in zip(var.dims, var.shape):
            sizes.setdefault(d, n)
        out.append(var)
    return tuple(out)


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
    if spec.kind not in ("array", "dict", "dataarray", "dataset") or spec._pandas is not None:
        return None
    try:
        new = infer_spec(result, default_name, output_dims)
    except OutputError:
        return None
    grown = union_spec(spec, new)
    return None if grown is None or grown is spec else grown


def union_spec(spec: OutputSpec, other: OutputSpec) -> OutputSpec | None:
    """The structure that holds the cells of both ``spec`` and ``other``, if only the
    shapes of their arrays differ (ragged outputs, padded to the larger extent).

    Returns ``spec`` itself when it holds ``other``'s cells as it is, and None when padding
    cannot hold them (another kind, other names, or an array of another dtype or number of
    dims): a real change of structure. The dtypes of arrays of one shape are not compared
    here. Used to grow a sweep's structure cell by cell (:func:`grow_spec`) and to
    merge results files whose parts were padded to different extents.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.outputs import infer_spec, union_spec
    >>> short, long = infer_spec(np.zeros(2), "trace"), infer_spec(np.zeros(4), "trace")
    >>> [(v.name, v.shape) for v in union_spec(short, long).variables]
    [('trace', (4,)), ('trace_extent', (1,))]
    >>> union_spec(long, long) is long
    True
    """
    if spec.kind not in ("array", "dict", "dataarray", "dataset") or spec._pandas is not None:
        return spec if _same_variables(spec, other) else None
    if other.kind != spec.kind or other._pandas is not None:
        return None
    old = [v for i, v in enumerate(spec.variables) if i not in set(spec._extents.values())]
    new = [v for i, v in enumerate(other.variables) if i not in set(other._extents.values())]
    if [v.name for v in new] != [v.name for v in old]:
        return None
    variables: list[VariableSpec] = []
    grew = False
    for was, now in zip(old, new):
        if _fits(now.shape, was.shape) and (
            was.shape == now.shape and now.extent is None or was.extent is not None
        ):
            variables.append(was)
            if was.extent is not None:
                variables.append(spec.variables[spec.names.index(was.extent)])
            continue
        plain = was._codec is None and now._codec is None and not was.scalar
        same_kind = was.dtype == now.dtype or (
            now.dtype.kind in "biuf" and np.can_cast(now.dtype, was.dtype, "safe")
        )
        same_dims = was.named_dims == now.named_dims
        if not plain or not same_kind or len(was.shape) != len(now.shape) or not same_dims:
            return None
        shape = tuple(max(a, b) for a, b in zip(was.shape, now.shape))
        extent = was.extent or now.extent or f"{was.name}_extent"
        attrs = {**was.attrs, "xsweep_extent": extent}
        coords = _grown_coords(was, now, shape)
        variables.append(
            VariableSpec(was.name, was.dtype, shape, was.dims, coords=coords, attrs=attrs)
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
    if not grew:
        return spec
    grown = OutputSpec(spec.kind, tuple(variables))
    try:
        _check_dim_lengths(grown)
    except OutputError:  # a dim shared with an output that did not grow with it
        return None
    return grown


def _same_variables(spec: OutputSpec, other: OutputSpec) -> bool:
    mine = [(v.name, v.dtype, v.shape) for v in spec.variables]
    return other.kind == spec.kind and mine == [(v.name, v.dtype, v.shape) for v in other.variables]


def _grown_coords(
    was: VariableSpec, now: VariableSpec, shape: tuple[int, ...]
) -> dict[str, xr.Variable]:
    """The coordinates of a DataArray output padded to ``shape``.

    A coordinate along a ragged dim is taken from the cell that spans all of it (the
    longest), so a shorter cell's coordinate is its start (``t = 0, 1, 2`` of ``0 .. 4``),
    which is what a time axis or an index is; one that no cell spans whole is dropped.
    """
    sizes = dict(zip(was.dims, shape))
    coords = {}
    for name in {**was.coords, **now.coords}:
        for source in (now.coords.get(name), was.coords.get(name)):
            if source is not None and all(sizes.get(d) == n for d, n in source.sizes.items()):
                coords[name] = source
                break
    return coords
