"""Writing and reading whole NetCDF files: the layout on disk, checked when read."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import xarray as xr

from .._version import __version__
from ..errors import (
    StoreError,
)
from ..outputs import OutputSpec, VariableSpec
from ..text import clean_message, name_problem
from .codec import _STAGE_ID
from .grid import Grid
from .schema import COMPUTED, FLAG_VALUES, FORMAT_VERSION, default_long_name, variable_prefix
from .table import FunctionTable

if TYPE_CHECKING:  # annotations only: that module imports this one
    from .staging import _StagePlan


class FileContents(NamedTuple):
    """What a results file holds, as read by :func:`_read_file`."""

    generation: str  # the id of this snapshot (journals and staged files name it)
    created: str  # when the first snapshot of the file was written
    grid: Grid
    tables: dict[str, FunctionTable]
    history: list[str]  # the CF history attribute's lines, newest first


# ---------------------------------------------------------------------------------------------
# The NetCDF file itself
# ---------------------------------------------------------------------------------------------
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _provenance() -> dict[str, str]:
    import netCDF4

    return {
        "xsweep_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "netCDF4_version": netCDF4.__version__,
        "netcdf_library_version": netCDF4.__netcdf4libversion__,
        "hdf5_version": netCDF4.__hdf5libversion__,
    }


#: Output cells at least this big get a layout of their own (see :func:`_create_cells`).
BIG_CELL_BYTES = 256 * 1024


#: From this fraction of computed cells on, a variable of big cells is stored contiguously.
DENSE_FRACTION = 0.9


def _create_cells(
    nc,
    name: str,
    dims: tuple[str, ...],
    data: np.ndarray,
    cell_ndim: int,
    computed: np.ndarray,
    attrs: dict[str, Any],
    later: list,
) -> None:
    """Create a variable of big cells (images, fields); queue the writes of computed cells.

    Mostly computed (``DENSE_FRACTION``): one contiguous variable written in a single call,
    which HDF5 turns into one plain write, as fast as a raw ``write`` (chunked writes of the
    same bytes measured 3-4x slower). Sparsely computed: one chunk per cell and only the
    computed cells written, so a barely started sweep of images costs disk space for what is
    computed only.
    """
    grid_shape = data.shape[: data.ndim - cell_ndim]
    ncells = int(np.prod(grid_shape, dtype=np.int64))
    if computed.size >= DENSE_FRACTION * ncells:
        var = _define_big(nc, name, data.dtype, dims, attrs, contiguous=True)
        later.append((_put, var, data))
        return
    chunks = (1,) * len(grid_shape) + data.shape[len(grid_shape) :]
    var = _define_big(nc, name, data.dtype, dims, attrs, chunksizes=chunks)
    cells = data.reshape((-1, *data.shape[len(grid_shape) :]))
    for flat in computed.tolist():
        later.append((_put, var, cells[flat], np.unravel_index(flat, grid_shape)))


def _define_big(nc, name: str, dtype: np.dtype, dims, attrs: dict[str, Any], **layout):
    """Define a variable of big cells with the given layout (contiguous, or chunk sizes).

    Floats get a NaN ``_FillValue``. Others keep the format's default fill and no
    ``_FillValue`` attribute, so that xarray keeps their dtype and every value; the status
    says which cells are computed. A contiguous variable is written whole, so HDF5 is told
    not to fill it first (that would write every byte twice).
    """
    contiguous = layout.get("contiguous", False)
    if contiguous:
        nc.set_fill_off()
    if dtype.kind == "f":
        var = nc.createVariable(name, dtype, dims, fill_value=dtype.type(np.nan), **layout)
    else:
        var = nc.createVariable(name, "i1" if dtype.kind == "b" else dtype, dims, **layout)
        if dtype.kind == "b":
            attrs = {**attrs, "dtype": "bool"}
    if contiguous:
        nc.set_fill_on()
    for k, v in attrs.items():
        var.setncattr(k, list(v) if isinstance(v, tuple) else v)
    return var


def _is_big(var: VariableSpec) -> bool:
    return var.dtype != object and var.dtype.itemsize * int(np.prod(var.shape)) >= BIG_CELL_BYTES


def _create_staged(nc, var: VariableSpec, table: FunctionTable, attrs, later, stage) -> None:
    """A staged table's big output: contiguous, no fill; a marker in its first cell."""
    v = _define_big(nc, var.name, var.dtype, table.dims + var.dims, attrs, contiguous=True)
    dtype = "i1" if var.dtype.kind == "b" else var.dtype
    # The marker fills the head of the first cell (see _cell_head): HDF5 allocates the whole
    # variable on this first write and writes these few bytes only.
    suffix, head = _cell_head(var)
    marker = np.resize(np.frombuffer(os.urandom(32), dtype=np.uint8), head)
    block = marker.view(dtype).reshape([var.shape[i] for i, s in enumerate(suffix) if s != 0])
    stage.markers[marker.tobytes()] = var.name
    later.append((v.__setitem__, (0,) * len(table.dims) + suffix, block))


def _cell_head(var: VariableSpec) -> tuple[tuple, int]:
    """The first block of a cell made of whole trailing rows, of at least 32 bytes.

    Returns its index within the cell (zeros, then full slices) and its size in bytes.
    """
    ndim = len(var.shape)
    for k in range(1, ndim + 1):
        head = int(np.prod(var.shape[ndim - k :])) * var.dtype.itemsize
        if head >= 32 or k == ndim:
            return (0,) * (ndim - k) + (slice(None),) * k, head
    return (), var.dtype.itemsize


def _create(
    nc,
    name: str,
    dims: tuple[str, ...],
    data: Any,
    attrs: dict[str, Any],
    later: list,
    *,
    coord: bool = False,
) -> None:
    """Create one variable, keeping its dtype exactly (no fill values on ints); queue its write.

    Coordinates (``coord``) get no fill value at all: CF wants them free of missing values.
    """
    data = np.asarray(data)
    attrs = dict(attrs)
    if data.dtype.kind in "OU":
        var = nc.createVariable(name, str, dims)
    elif data.dtype.kind == "b":
        var = nc.createVariable(name, "i1", dims, fill_value=False)
        attrs["dtype"] = "bool"  # xarray's convention: it decodes this back to bool
    elif data.dtype.kind == "f" and not coord:
        var = nc.createVariable(name, data.dtype, dims, fill_value=data.dtype.type(np.nan))
    else:
        # No _FillValue: readers would otherwise turn real values equal to it (a 255 pixel)
        # into NaN and the integers into floats. The status variable says what is computed.
        var = nc.createVariable(name, data.dtype, dims, fill_value=False)
    for k, v in attrs.items():
        var.setncattr(k, list(v) if isinstance(v, tuple) else v)
    later.append((_put, var, data))


def _write_file(
    path: str,
    grid: Grid,
    tables: dict[str, FunctionTable],
    created: str,
    generation: str,
    stage: _StagePlan | None = None,
    history: list[str] | None = None,
):
    """Write ``tables`` over ``grid`` as a complete file at ``path``.

    With ``stage``, the file is a staged snapshot: ``stage.table``'s big outputs are laid
    out contiguously with a marker in their first cell, and the file is returned open
    (synced), for :func:`_create_stage` to go on with.
    """
    import netCDF4

    now = _now()
    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        nc.setncatts(
            {
                "Conventions": "CF-1.10",
                "title": "Parameter sweep results written by xsweep",
                "xsweep_format": FORMAT_VERSION,
                "xsweep_generation": generation,
                "xsweep_functions": json.dumps(list(tables)),
                "xsweep_parameters": json.dumps(list(grid)),
                "created": created,
                "updated": now,
                "history": "\n".join(history or [f"{created}: created by xsweep {__version__}"]),
                **_provenance(),
            }
        )
        # Every variable is defined before any is written: netCDF-4 creates the HDF5 datasets
        # when it leaves define mode, and leaving it once rather than per variable saves
        # about a third of the time a small file takes.
        later: list = []
        for name, (values, attrs) in grid.items():
            nc.createDimension(name, len(values))
            _create(nc, name, (name,), values, attrs, later, coord=True)
        written_coords: set[str] = set(grid)
        for table in tables.values():
            staged = stage if stage is not None and stage.table is table else None
            _write_table(nc, table, written_coords, later, staged)
        for write, *args in later:
            write(*args)
        if stage is not None:
            nc.sync()
            return nc
    except BaseException:
        nc.close()
        raise
    nc.close()
    return None


def _write_table(
    nc, table: FunctionTable, written: set[str], later: list, stage: _StagePlan | None = None
) -> None:
    if table.spec is not None:
        for var, buf in zip(table.spec.variables, table.buffers):
            for dim, n in zip(var.dims, var.shape):
                if dim not in nc.dimensions:
                    nc.createDimension(dim, n)
            for cname, cvar in var.coords.items():
                if cname not in written:
                    cattrs = {"long_name": default_long_name(cname, table.name), **cvar.attrs}
                    _create(nc, cname, cvar.dims, cvar.values, cattrs, later, coord=True)
                    written.add(cname)
            attrs = dict(var.attrs)
            attrs.setdefault("long_name", default_long_name(var.name, table.name))
            attrs["xsweep_function"] = table.key
            extra = [c for c, cv in var.coords.items() if cv.dims != (c,)]
            if extra:
                attrs["coordinates"] = " ".join(extra)
            data = buf.reshape(table.shape + var.shape)
            if stage is not None and _is_big(var):
                _create_staged(nc, var, table, attrs, later, stage)
            elif _is_big(var):
                computed = np.flatnonzero(table.status == COMPUTED)
                _create_cells(
                    nc,
                    var.name,
                    table.dims + var.dims,
                    data,
                    len(var.shape),
                    computed,
                    attrs,
                    later,
                )
            else:
                _create(nc, var.name, table.dims + var.dims, data, attrs, later)
    shape = table.shape
    _create(
        nc, table.names.status, table.dims, table.status.reshape(shape), table.status_attrs(), later
    )
    seconds = table.seconds.reshape(shape)
    _create(nc, table.names.seconds, table.dims, seconds, table.seconds_attrs(), later)
    codes, messages = table.error_codes()
    _create(nc, table.names.error, table.dims, codes.reshape(shape), table.error_attrs(), later)
    # A staged file's messages grow in place when it is completed: an unlimited dim.
    nc.createDimension(f"{table.name}_message", None if stage else (len(messages) or None))
    _create(
        nc,
        table.names.messages,
        (f"{table.name}_message",),
        np.array(messages, dtype=object),
        {"long_name": f"distinct error messages of {table.key}"},
        later,
    )


def _put(var, data: np.ndarray, index: Any = ...) -> None:
    """Write ``data`` to ``var`` (whole, or at ``index``) in the file's types.

    Strings go as NC_STRING objects, bools as int8 (the ``dtype: bool`` attribute says so).
    """
    data = np.asarray(data)
    if data.dtype.kind in "OU":
        data = data.astype(object)
    elif data.dtype.kind == "b":
        data = data.astype(np.int8)
    if data.ndim == 0 and index is ...:
        var.assignValue(data.item())
    elif data.size:
        var[index] = data


def _read_file(path: str, outputs: bool = True) -> FileContents:
    """Read and check a results file (raises ``StoreError`` saying what is wrong).

    ``outputs=False`` reads everything but the output variables (whose tables then hold no
    buffers): a summary of a file of any size.
    """
    import netCDF4

    try:
        nc = netCDF4.Dataset(path, "r")
    except OSError as exc:
        raise StoreError(
            f"The cache file {path} cannot be read as NetCDF ({exc}); it is not a results file, "
            "or it is truncated. Nothing was changed. Use another cache path, or move the file "
            "away if you know what it is."
        ) from None
    with nc:
        nc.set_auto_maskandscale(False)
        attrs = nc.__dict__
        if "xsweep_format" not in attrs:
            raise StoreError(
                f"The file {path} is a NetCDF file but not an xsweep results file (it has no "
                "'xsweep_format' attribute). Nothing was changed. Use another cache path: "
                "xsweep never overwrites a file it did not write."
            )
        if str(attrs["xsweep_format"]) != FORMAT_VERSION:
            raise StoreError(
                f"The file {path} uses xsweep file format {attrs['xsweep_format']}, which this "
                f"xsweep ({__version__}) does not know. Upgrade xsweep or use another cache path."
            )
        try:
            return _read_layout(path, nc, attrs, outputs)
        except _Damaged as exc:
            raise StoreError(
                f"The cache file {path} is damaged or was edited: {exc}. Nothing was changed. "
                "Move it away and sweep again, or restore it from a copy; xarray.open_dataset "
                "may still read what it holds."
            ) from None
        except (KeyError, ValueError, IndexError, TypeError, AttributeError, RecursionError) as exc:
            raise StoreError(
                f"The cache file {path} is damaged or was edited: {exc!r} is missing or "
                "malformed. Nothing was changed. Move it away and sweep again, or restore it "
                "from a copy; xarray.open_dataset may still read what it holds."
            ) from None


class _Damaged(ValueError):
    """What is wrong with a file that claims to be an xsweep results file."""


_KINDS = ("scalar", "array", "dict", "dataarray", "dataset", "json", "series", "dataframe")


def _names_attr(owner, name: str) -> list[str]:
    """A JSON list of names in attribute ``name`` (of the file or of a variable), checked."""
    if name not in owner.ncattrs():
        raise _Damaged(f"the attribute {name!r} is missing")
    value = owner.getncattr(name)
    try:
        names = json.loads(str(value))
    except ValueError:
        names = None
    if (
        not isinstance(names, list)
        or not all(isinstance(n, str) for n in names)
        or len(set(names)) != len(names)
    ):
        raise _Damaged(f"the attribute {name!r} should be a JSON list of names, not {value!r:.80}")
    return names


def _text_attr(var, name: str) -> str:
    if name not in var.ncattrs() or not isinstance(var.getncattr(name), str):
        raise _Damaged(f"variable {var.name!r} lacks the text attribute {name!r}")
    return var.getncattr(name)


def _memory_limit() -> int:
    """Bytes of results a store may hold in memory: half of this machine's memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _read_layout(path: str, nc, attrs: dict[str, Any], outputs: bool = True) -> FileContents:
    """Check the file's layout and load it; ``_Damaged`` says what does not fit."""
    generation = str(attrs.get("xsweep_generation", ""))
    if not _STAGE_ID.fullmatch(generation):
        raise _Damaged("the attribute 'xsweep_generation' is missing or malformed")
    variables = nc.variables
    grid = Grid()
    for name in _names_attr(nc, "xsweep_parameters"):
        var = variables.get(name)
        if var is None or var.dimensions != (name,):
            raise _Damaged(f"parameter {name!r} has no coordinate variable")
        grid.set(name, _values(var), _attrs(var))
    status_vars = {}
    for v in variables.values():
        if "flag_meanings" in v.ncattrs() and "xsweep_function" in v.ncattrs():
            status_vars[str(v.getncattr("xsweep_function"))] = v
    keys = _names_attr(nc, "xsweep_functions")
    # A file claims its grid; check what loading it costs before allocating anything.
    need = 0
    for key in keys:
        if key not in status_vars:
            raise _Damaged(f"function {key!r} has no status variable")
        status_var = status_vars[key]
        if not set(status_var.dimensions) <= set(grid):
            raise _Damaged(f"the status of {key!r} is over {status_var.dimensions}, not parameters")
        cells = int(np.prod(grid.shape(status_var.dimensions), dtype=float))
        need += cells * 9  # status, seconds, error code
        if "xsweep_outputs" in status_var.ncattrs():
            for out in _names_attr(status_var, "xsweep_outputs"):
                if out not in variables:
                    raise _Damaged(f"output variable {out!r} of {key!r} is missing")
                var = variables[out]
                itemsize = var.dtype.itemsize if isinstance(var.dtype, np.dtype) else 16
                need += int(np.prod(var.shape, dtype=float)) * itemsize * outputs
    if need > _memory_limit():
        raise StoreError(
            f"The cache file {path} holds (or claims to hold) results that need "
            f"{need / 2**30:.1f} GiB of memory, more than half of this machine's memory, and "
            "this version of xsweep keeps a cache's results in memory. Nothing was changed. "
            "Read it lazily with xarray.open_dataset(path) (xsweep info summarises it); if it "
            "should not be this big, it is damaged."
        )
    tables = {}
    for key in keys:
        table = _read_table(nc, key, status_vars[key], grid, outputs)
        # Results live under the function's name; files of 0.1 keyed them "module:qualname".
        if table.name in tables:
            raise _Damaged(f"two functions store results under the name {table.name!r}")
        table.key = table.name
        tables[table.name] = table
    history = [line for line in str(attrs.get("history", "")).splitlines() if line.strip()]
    return FileContents(generation, str(attrs.get("created")), grid, tables, history)


def _values(var) -> np.ndarray:
    data = var[...]
    data = np.asarray(data)
    if "dtype" in var.ncattrs() and var.getncattr("dtype") == "bool":
        return data.astype(bool)
    if data.dtype == object:
        return data.astype(str)
    return data


def _value_dtype(var) -> np.dtype:
    """The dtype :func:`_values` gives ``var``'s data, from its metadata alone."""
    if "dtype" in var.ncattrs() and var.getncattr("dtype") == "bool":
        return np.dtype(bool)
    return np.dtype(object) if var.dtype is str else np.dtype(var.dtype)


def _attrs(var) -> dict[str, Any]:
    skip = {"_FillValue", "xsweep_function", "coordinates", "dtype"}
    return {k: var.getncattr(k) for k in var.ncattrs() if k not in skip}


def _read_table(nc, key: str, status_var, grid: Grid, outputs: bool = True) -> FunctionTable:
    variables = nc.variables
    dims = tuple(status_var.dimensions)
    name = _text_attr(status_var, "xsweep_name")
    if name_problem(name) or name != variable_prefix(name):
        raise _Damaged(f"the function name {name!r:.80} of {key!r} is not a valid name")
    table = FunctionTable(key, name, dims, grid.shape(dims))
    attrs = status_var.ncattrs()
    if "xsweep_fingerprint" in attrs:
        table.fingerprint = str(status_var.getncattr("xsweep_fingerprint"))
    if "xsweep_kept_fingerprints" in attrs:
        table.history = json.loads(status_var.getncattr("xsweep_kept_fingerprints"))
    for own in (status_var, variables[table.names.seconds], variables[table.names.error]):
        if own.dimensions != dims:
            raise _Damaged(f"variable {own.name!r} is not over {list(dims)}")
    status = np.asarray(status_var[...]).reshape(-1)
    if status.dtype.kind not in "iu" or not np.isin(status, FLAG_VALUES).all():
        raise _Damaged(f"variable {status_var.name!r} holds codes other than 0, 1 and 2")
    table.status[:] = status
    table.seconds[:] = np.asarray(variables[table.names.seconds][...], dtype=np.float32).reshape(-1)
    codes = np.asarray(variables[table.names.error][...]).reshape(-1)
    if codes.dtype.kind not in "iu":
        raise _Damaged(f"variable {table.names.error!r} does not hold integer codes")
    messages = np.asarray(variables[table.names.messages][...]).tolist() if codes.any() else []
    if codes.any() and (codes.min() < 0 or codes.max() > len(messages)):
        raise _Damaged(f"variable {table.names.error!r} refers to messages that do not exist")
    for index in np.flatnonzero(codes):
        table.errors[int(index)] = clean_message(str(messages[codes[index] - 1]))
    if "xsweep_kind" in status_var.ncattrs():
        kind = status_var.getncattr("xsweep_kind")
        if kind not in _KINDS:
            raise _Damaged(f"the output kind {kind!r:.40} of {key!r} is not one of {_KINDS}")
        specs = []
        buffers = []
        for out in _names_attr(status_var, "xsweep_outputs"):
            var = variables[out]
            if tuple(var.dimensions[: len(dims)]) != dims:
                raise _Damaged(f"output {out!r} is not over the parameters {list(dims)}")
            extra = tuple(var.dimensions[len(dims) :])
            cell_shape = tuple(len(nc.dimensions[d]) for d in extra)
            data = _values(var) if outputs else None
            coords = {}
            wanted = [d for d in extra if d in variables]
            if "coordinates" in var.ncattrs():
                wanted += var.getncattr("coordinates").split()
            for c in wanted:
                cv = variables[c]
                cattrs = _attrs(cv)
                if cattrs.get("long_name") == default_long_name(c, name):
                    del cattrs["long_name"]  # the file's, not the function's
                coords[c] = xr.Variable(cv.dimensions, _values(cv), cattrs)
            dtype = _value_dtype(var) if data is None else data.dtype
            dtype = np.dtype(object) if dtype.kind in "OU" else dtype
            var_attrs = _attrs(var)
            if var_attrs.get("long_name") == default_long_name(out, name):
                del var_attrs["long_name"]  # the file's, not the function's: as it returned
            specs.append(
                VariableSpec(
                    out,
                    dtype,
                    cell_shape,
                    extra,
                    scalar=(kind != "array" and not extra),
                    coords=coords,
                    attrs=var_attrs,
                )
            )
            buffers.append(data)
        table.spec = OutputSpec(kind, tuple(specs))
        if outputs:
            _load_buffers(table, buffers)
    return table


def _read_outputs(path: str, tables: list[FunctionTable]) -> None:
    """Read the output variables of ``tables`` back from the file into their buffers."""
    import netCDF4

    with netCDF4.Dataset(path, "r") as nc:
        nc.set_auto_maskandscale(False)
        for table in tables:
            _load_buffers(table, [_values(nc.variables[v.name]) for v in table.spec.variables])


def _load_buffers(table: FunctionTable, arrays: list[np.ndarray]) -> None:
    """Make the output variables read from a file ``table``'s buffers.

    Whatever the file holds at cells not computed, memory holds the fill there.
    """
    not_computed = table.status != COMPUTED
    buffers = []
    for var, data in zip(table.spec.variables, arrays):
        buf = np.ascontiguousarray(data.astype(var.dtype, copy=False))
        buf = buf.reshape((table.size, *var.shape))
        if not_computed.any():
            buf[not_computed] = var.fill
        buffers.append(buf)
    table.buffers = tuple(buffers)
    table.lent = False
    table._view = None


def file_attrs(path: str) -> dict[str, Any]:
    """The global attributes of a results file (provenance)."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        return {k: nc.getncattr(k) for k in nc.ncattrs()}
