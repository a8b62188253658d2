"""Turn what a swept function returned into typed, shaped cell values, and back.

The first successful cell fixes an :class:`OutputSpec` (names, dtypes, shapes, extra dims);
every later cell is checked against it by :meth:`OutputSpec.extract`, which runs once per cell
and so stays lean: no xarray object is built per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from .errors import OutputError
from .text import MAX_NAME_BYTES, name_problem, text_problem

#: What a swept function may return, for error messages.
ALLOWED_OUTPUTS = (
    "a scalar (int, float, bool, str or numpy scalar), a numpy array, a dict of those, "
    "an xarray.DataArray or an xarray.Dataset"
)
_ALLOWED_DTYPE_KINDS = "biufU"
_KIND_NAMES = "bool, int, unsigned int, float, str"

# Python types accepted for a scalar variable of each dtype kind without a numpy cast check.
_FAST_TYPES = {
    "f": (float, int, bool, np.floating, np.integer, np.bool_),
    "i": (int, bool, np.integer, np.bool_),
    "u": (int, bool, np.unsignedinteger, np.bool_),
    "b": (bool, np.bool_),
    "U": (str, np.str_),
}


def _storable_dtype(name: str, dtype: np.dtype) -> None:
    """Refuse dtypes a NetCDF file has no type for, saying how to convert."""
    if dtype.kind == "f" and dtype.itemsize not in (4, 8):
        raise OutputError(
            f"output {name!r} has dtype {dtype}, which NetCDF files cannot hold (they have "
            "32- and 64-bit floats only). Convert it: .astype(np.float32) or np.float64."
        )
    if dtype.kind == "c":
        raise OutputError(
            f"output {name!r} is complex ({dtype}), which NetCDF files cannot hold. Return the "
            "parts as two outputs: {'re': z.real, 'im': z.imag}."
        )


def _scalar_dtype(value: Any) -> np.dtype | None:
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(value, (int, np.integer)):
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
    return f"{type(value).__name__} {value!r}"[:120]


@dataclass
class VariableSpec:
    """One output variable: its name, dtype and the shape and dims of one cell's value.

    ``dtype`` is ``object`` for strings (stored as variable-length strings).
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

    @property
    def fill(self) -> Any:
        """The value a not-computed cell holds: NaN for floats, else zero/empty."""
        if self._kind == "f":
            return np.nan
        return "" if self._kind == "U" else 0

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
            raise OutputError(f"got shape {arr.shape} where earlier cells gave shape {self.shape}")
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

    ``kind`` is one of ``"scalar"``, ``"array"``, ``"dict"``, ``"dataarray"``, ``"dataset"``:
    it decides how a stored cell is given back to the user as "what the function returned".
    """

    kind: str
    variables: tuple[VariableSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

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
            if result.dims != var.dims:
                raise OutputError(
                    f"got DataArray dims {result.dims} where earlier cells gave {var.dims}"
                )
            return (var.coerce(result.values),)
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
            if da.dims != var.dims:
                raise OutputError(
                    f"variable {var.name!r}: got dims {da.dims} where earlier cells gave {var.dims}"
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
            if var.scalar:
                if var.dtype.kind in "fiu" and var.dtype.itemsize < 8:
                    return var.dtype.type(values)  # a float32 stays a numpy float32
                return values.item()
            return np.array(values, copy=True)

        if self.kind in ("scalar", "array"):
            return plain(self.variables[0])
        if self.kind == "dict":
            return {v.name: plain(v) for v in self.variables}
        sub = cell[list(self.names)].drop_vars(param_coords, errors="ignore").copy(deep=True)
        sub.attrs = {}
        if self.kind == "dataarray":
            return sub[self.names[0]]
        return sub


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
        raise OutputError(f"output {name!r} is {_describe(value)}; allowed: {ALLOWED_OUTPUTS}")
    if value.size == 0:
        raise OutputError(
            f"output {name!r} is an empty array (shape {value.shape}); every cell must hold "
            "at least one value. Return a fixed-size array (padded with NaN where a cell has "
            "fewer values), or leave the output out."
        )
    dtype = value.dtype
    _storable_dtype(name, dtype)
    if dtype.kind == "U":
        dtype = np.dtype(object)
    elif dtype.kind not in _ALLOWED_DTYPE_KINDS:
        raise OutputError(
            f"output {name!r} has dtype {dtype}, which xsweep cannot store. "
            f"Allowed dtype kinds: {_KIND_NAMES}."
        )
    if dims is None:
        if name in output_dims:
            dims = tuple(output_dims[name])
            if len(dims) != value.ndim:
                raise OutputError(
                    f"output_dims[{name!r}] = {dims} names {len(dims)} dims but the output has "
                    f"{value.ndim} (shape {value.shape})."
                )
        else:
            dims = tuple(f"{name}_dim_{i}" for i in range(value.ndim))
    for dim in dims:
        _check_var_name(dim, f"output {name!r}", "a dim")
    return VariableSpec(name, dtype, value.shape, dims, coords=coords or {}, attrs=attrs or {})


def infer_spec(
    result: Any, default_name: str, output_dims: dict[str, tuple[str, ...]] | None = None
) -> OutputSpec:
    """Work out the output structure from one cell's return value.

    Parameters
    ----------
    result
        What the function returned for its first successful cell.
    default_name
        The variable name of a scalar, array or unnamed DataArray output (the function's name).
    output_dims
        Names for the extra dims of array outputs, ``{variable: (dim, ...)}``.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.outputs import infer_spec
    >>> spec = infer_spec(np.zeros((4, 5, 3), np.uint8), "img", {"img": ("y", "x", "rgb")})
    >>> spec.kind, spec.variables[0].dims, spec.variables[0].dtype
    ('array', ('y', 'x', 'rgb'), dtype('uint8'))
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
        raise OutputError(f"the function returned {_describe(result)}; allowed: {ALLOWED_OUTPUTS}")
    unused = set(output_dims) - set(spec.names)
    if unused:
        raise OutputError(
            f"output_dims names {sorted(unused)}, which the function does not return; "
            f"its outputs are {list(spec.names)}."
        )
    _check_dim_lengths(spec)
    return spec


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
        attrs=dict(da.attrs),
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
