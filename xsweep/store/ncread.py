"""Reading whole NetCDF files: the layout on disk, checked as it is read (see :mod:`.ncfile`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import xarray as xr

from .._version import __version__
from ..errors import StoreError
from ..file_format import (
    COMPUTED,
    DTYPE_ATTR,
    ENCODING_ATTR,
    FINGERPRINT_ATTR,
    FLAG_VALUES,
    FORMAT_ATTR,
    FORMAT_VERSION,
    FUNCTION_ATTR,
    FUNCTIONS_ATTR,
    GENERATION_ATTR,
    GENERATION_ID,
    HOLES_ATTR,
    KEPT_FINGERPRINTS_ATTR,
    KIND_ATTR,
    NAME_ATTR,
    OUTPUTS_ATTR,
    PARAMETERS_ATTR,
    PART_ATTR,
    PART_CELLS_ATTR,
    PART_SELECTION_ATTR,
    default_long_name,
    describe_codes,
    refinement_round_name,
    variable_prefix,
)
from ..outputs import OutputSpec, VariableSpec
from ..text import clean_message, name_problem
from .budget import physical_memory
from .buffers import CellBuffer, InMemory
from .chars import ENCODING, is_text, own_dims, read_text
from .grid import Grid
from .nclock import locked
from .ondisk import NcSource, OnDisk, streams
from .parts import PartRecord, read_part_record
from .table import FunctionTable

if TYPE_CHECKING:
    import netCDF4


class FileContents(NamedTuple):
    """What a results file holds, as read by :func:`read_file`."""

    generation: str  # the id of this snapshot (journals and staged files name it)
    created: str  # when the first snapshot of the file was written
    grid: Grid
    tables: dict[str, FunctionTable]
    history: list[str]  # the CF history attribute's lines, newest first


@locked
def read_file(path: str, outputs: bool = True, budget: int | None = None) -> FileContents:
    """Read and check a results file (raises ``StoreError`` saying what is wrong).

    ``outputs=False`` reads everything but the output variables (whose tables then hold no
    buffers): a summary of a file of any size. A function whose array outputs need more than
    ``budget`` bytes keeps them in the file (``OnDisk``), read when asked for.
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
        if FORMAT_ATTR not in attrs:
            raise StoreError(
                f"The file {path} is a NetCDF file but not an xsweep results file (it has no "
                f"{FORMAT_ATTR!r} attribute). Nothing was changed. Use another cache path: "
                "xsweep never overwrites a file it did not write."
            )
        if str(attrs[FORMAT_ATTR]) != FORMAT_VERSION:
            raise StoreError(
                f"The file {path} uses xsweep file format {attrs[FORMAT_ATTR]}, which this "
                f"xsweep ({__version__}) does not know. Nothing was changed. Upgrade xsweep "
                "(pip install --upgrade xsweep-nc) or use another cache path."
            )
        try:
            return _read_layout(path, nc, attrs, outputs, budget)
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


def _names_attr(owner: netCDF4.Dataset | netCDF4.Variable, name: str) -> list[str]:
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


def _text_attr(var: netCDF4.Variable, name: str) -> str:
    if name not in var.ncattrs() or not isinstance(var.getncattr(name), str):
        raise _Damaged(f"variable {var.name!r} lacks the text attribute {name!r}")
    return var.getncattr(name)


def _memory_limit() -> int:
    """Bytes of results a store may hold in memory: half of this machine's memory."""
    return physical_memory() // 2


def _read_layout(
    path: str,
    nc: netCDF4.Dataset,
    attrs: dict[str, Any],
    outputs: bool = True,
    budget: int | None = None,
) -> FileContents:
    """Check the file's layout and load it; ``_Damaged`` says what does not fit."""
    generation = str(attrs.get(GENERATION_ATTR, ""))
    if not GENERATION_ID.fullmatch(generation):
        raise _Damaged(f"the attribute {GENERATION_ATTR!r} is missing or malformed")
    variables = nc.variables
    grid = Grid()
    for name in _names_attr(nc, PARAMETERS_ATTR):
        var = variables.get(name)
        if var is None or var.dimensions != (name,):
            raise _Damaged(f"parameter {name!r} has no coordinate variable")
        grid.set(name, _values(var), _attrs(var), rounds=_rounds(variables, name, var.size))
    status_vars = {}
    for v in variables.values():
        if "flag_meanings" in v.ncattrs() and FUNCTION_ATTR in v.ncattrs():
            status_vars[str(v.getncattr(FUNCTION_ATTR))] = v
    keys = _names_attr(nc, FUNCTIONS_ATTR)
    # A file claims its grid; check what loading it costs before allocating anything.
    need = 0
    stream: dict[str, bool] = {}
    for key in keys:
        if key not in status_vars:
            raise _Damaged(f"function {key!r} has no status variable")
        status_var = status_vars[key]
        if not set(status_var.dimensions) <= set(grid):
            raise _Damaged(f"the status of {key!r} is over {status_var.dimensions}, not parameters")
        cells = int(np.prod(grid.shape(status_var.dimensions), dtype=float))
        need += cells * 9  # status, seconds, error code
        if OUTPUTS_ATTR in status_var.ncattrs():
            sizes = []  # (bytes over the grid, streamable)
            for out in _names_attr(status_var, OUTPUTS_ATTR):
                if out not in variables:
                    raise _Damaged(f"output variable {out!r} of {key!r} is missing")
                var = variables[out]
                itemsize = var.dtype.itemsize if isinstance(var.dtype, np.dtype) else 16
                cell = int(np.prod(var.shape[len(status_var.dimensions) :], dtype=float))
                nbytes = int(np.prod(var.shape, dtype=float)) * itemsize
                sizes.append(
                    (
                        nbytes,
                        var.dtype is not str
                        and not is_text(var)
                        and var.ndim > len(status_var.dimensions)
                        and cell * itemsize >= 1024,
                    )
                )
            arrays = sum(n for n, streamable in sizes if streamable)
            stream[key] = budget is not None and arrays > budget
            need += sum(n for n, streamable in sizes if not (stream[key] and streamable)) * outputs
    if need > _memory_limit():
        raise StoreError(
            f"The cache file {path} holds (or claims to hold) results that need "
            f"{need / 2**30:.1f} GiB of memory, more than half of this machine's memory, for "
            "its status and scalar outputs, which xsweep keeps in memory. Nothing was changed. "
            "Read it lazily with xarray.open_dataset(path) (xsweep info summarises it); if it "
            "should not be this big, it is damaged."
        )
    tables = {}
    for key in keys:
        table = _read_table(nc, key, status_vars[key], grid, outputs, stream.get(key, False))
        # Results live under the function's name; files of 0.1 keyed them "module:qualname".
        if table.name in tables:
            raise _Damaged(f"two functions store results under the name {table.name!r}")
        table.key = table.name
        tables[table.name] = table
    history = [line for line in str(attrs.get("history", "")).splitlines() if line.strip()]
    return FileContents(generation, str(attrs.get("created")), grid, tables, history)


def _is_bool(var: netCDF4.Variable) -> bool:
    attrs = var.ncattrs()
    return ("dtype" in attrs and var.getncattr("dtype") == "bool") or (
        DTYPE_ATTR in attrs and var.getncattr(DTYPE_ATTR) == "bool"
    )


def _values(var: netCDF4.Variable) -> np.ndarray:
    if var.dtype is str or is_text(var):
        return read_text(var)
    data = np.asarray(var[...])
    if _is_bool(var):
        return data.astype(bool)
    return data


def _rounds(variables: dict[str, netCDF4.Variable], name: str, size: int) -> np.ndarray | None:
    """The refinement round of each value of parameter ``name``, if the file says (checked)."""
    var = variables.get(refinement_round_name(name))
    if var is None:
        return None
    if var.dimensions != (name,) or np.dtype(var.dtype).kind not in "iu":
        raise _Damaged(f"variable {var.name!r} is not one whole number per value of {name!r}")
    rounds = np.asarray(var[...])
    if rounds.shape != (size,) or (rounds < 0).any() or (rounds > np.iinfo(np.int32).max).any():
        raise _Damaged(f"variable {var.name!r} holds refinement rounds that cannot be")
    return rounds.astype(np.int32)


def _value_dtype(var: netCDF4.Variable) -> np.dtype:
    """The dtype :func:`_values` gives ``var``'s data, from its metadata alone."""
    if _is_bool(var):
        return np.dtype(bool)
    return np.dtype(object) if var.dtype is str or is_text(var) else np.dtype(var.dtype)


def _attrs(var: netCDF4.Variable) -> dict[str, Any]:
    skip = {"_FillValue", FUNCTION_ATTR, "coordinates", "dtype", "ancillary_variables"}
    skip.update((DTYPE_ATTR, HOLES_ATTR, ENCODING[0]))
    out = {k: var.getncattr(k) for k in var.ncattrs() if k not in skip}
    if "missing_value" in out and not str(out.get(ENCODING_ATTR, "")).startswith(
        ("datetime64", "timedelta64")
    ):
        del out["missing_value"]  # the holes of an int output (holes.staged_form), not its own
    return out


def _read_table(
    nc: netCDF4.Dataset,
    key: str,
    status_var: netCDF4.Variable,
    grid: Grid,
    outputs: bool = True,
    stream: bool = False,
) -> FunctionTable:
    dims = tuple(status_var.dimensions)
    name = _text_attr(status_var, NAME_ATTR)
    if name_problem(name) or name != variable_prefix(name):
        raise _Damaged(f"the function name {name!r:.80} of {key!r} is not a valid name")
    table = FunctionTable(key, name, dims, grid.shape(dims))
    attrs = status_var.ncattrs()
    if FINGERPRINT_ATTR in attrs:
        table.fingerprint = str(status_var.getncattr(FINGERPRINT_ATTR))
    if KEPT_FINGERPRINTS_ATTR in attrs:
        table.history = json.loads(status_var.getncattr(KEPT_FINGERPRINTS_ATTR))
    _read_bookkeeping(nc.variables, table, status_var)
    if PART_ATTR in attrs:
        table.part = _part_record(status_var, table)
    if KIND_ATTR in attrs:
        kind = status_var.getncattr(KIND_ATTR)
        if kind not in _KINDS:
            raise _Damaged(f"the output kind {kind!r:.40} of {key!r} is not one of {_KINDS}")
        specs = []
        buffers = []
        for out in _names_attr(status_var, OUTPUTS_ATTR):
            spec, buf = _read_output(nc, table, kind, out, outputs, stream)
            specs.append(spec)
            buffers.append(buf)
        table.spec = OutputSpec(kind, tuple(specs))
        if outputs:
            _set_buffers(table, cast(list[CellBuffer], buffers))  # none is None: outputs
    return table


def _part_record(status_var: netCDF4.Variable, table: FunctionTable) -> PartRecord | None:
    """The part record of ``table``; None when it does not fit (ignored, never an error)."""
    try:
        found = {
            a: status_var.getncattr(a)
            for a in (PART_ATTR, PART_CELLS_ATTR, PART_SELECTION_ATTR)
            if a in status_var.ncattrs()
        }
    except (OSError, RuntimeError, ValueError, TypeError, KeyError, UnicodeError):
        return None  # an attribute of a type the library cannot read back
    return read_part_record(found, table.dims, table.shape)


def _read_bookkeeping(
    variables: dict[str, netCDF4.Variable], table: FunctionTable, status_var: netCDF4.Variable
) -> None:
    """Read ``table``'s status, timings and error messages, checked."""
    dims = table.dims
    for own in (status_var, variables[table.names.seconds], variables[table.names.error]):
        if own.dimensions != dims:
            raise _Damaged(f"variable {own.name!r} is not over {list(dims)}")
    status = np.asarray(status_var[...]).reshape(-1)
    if status.dtype.kind not in "iu" or not np.isin(status, FLAG_VALUES).all():
        raise _Damaged(
            f"variable {status_var.name!r} holds codes other than the status codes "
            f"{describe_codes()}"
        )
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


def _read_output(
    nc: netCDF4.Dataset, table: FunctionTable, kind: str, out: str, outputs: bool, stream: bool
) -> tuple[VariableSpec, CellBuffer | None]:
    """The structure of ``table``'s output ``out`` and its buffer: in memory, ``OnDisk``
    (``stream``: sizeable cells stay in the file), or None (not ``outputs``)."""
    variables = nc.variables
    dims = table.dims
    var = variables[out]
    if own_dims(var)[: len(dims)] != dims:
        raise _Damaged(f"output {out!r} is not over the parameters {list(dims)}")
    extra = own_dims(var)[len(dims) :]
    cell_shape = tuple(len(nc.dimensions[d]) for d in extra)
    on_disk = (
        stream
        and var.dtype is not str
        and not is_text(var)
        and bool(extra)
        and np.dtype(var.dtype).itemsize * int(np.prod(cell_shape)) >= 1024
    )
    data = _values(var) if outputs and not on_disk else None
    dtype = _value_dtype(var) if data is None else data.dtype
    dtype = np.dtype(object) if dtype.kind in "OU" else dtype
    var_attrs = _attrs(var)
    if var_attrs.get("long_name") == default_long_name(out, table.name):
        del var_attrs["long_name"]  # the file's, not the function's: as it returned
    spec = VariableSpec(
        out,
        dtype,
        cell_shape,
        extra,
        scalar=(kind != "array" and not extra),
        coords=_output_coords(variables, var, extra, table.name),
        attrs=var_attrs,
    )
    if not outputs:
        return spec, None
    if on_disk and streams(spec):
        buf = OnDisk(spec, table.size)
        source = NcSource(nc.filepath(), out, table.shape, cell_shape, dtype)
        buf.point(np.flatnonzero(table.status == COMPUTED), buf.add(source))
        return spec, buf
    return spec, _in_memory(table, spec, _values(var) if data is None else data)


def _output_coords(
    variables: dict[str, netCDF4.Variable],
    var: netCDF4.Variable,
    extra: tuple[str, ...],
    name: str,
) -> dict[str, xr.Variable]:
    """The coordinates of output ``var`` (its own dims' and those it names) of function ``name``."""
    coords = {}
    wanted = [d for d in extra if d in variables]
    if "coordinates" in var.ncattrs():
        wanted += var.getncattr("coordinates").split()
    for c in wanted:
        cv = variables[c]
        cattrs = _attrs(cv)
        if cattrs.get("long_name") == default_long_name(c, name):
            del cattrs["long_name"]  # the file's, not the function's
        coords[c] = xr.Variable(own_dims(cv), _values(cv), cattrs)
    return coords


@locked
def read_outputs(path: str, tables: list[FunctionTable]) -> None:
    """Read the output variables of ``tables`` back from the file into their buffers."""
    import netCDF4

    with netCDF4.Dataset(path, "r") as nc:
        nc.set_auto_maskandscale(False)
        for table in tables:
            assert table.spec is not None  # tables with outputs
            buffers = [
                _in_memory(table, v, _values(nc.variables[v.name])) for v in table.spec.variables
            ]
            _set_buffers(table, buffers)


def _in_memory(table: FunctionTable, var: VariableSpec, data: np.ndarray) -> InMemory:
    """The output variable ``var`` read from a file as ``table``'s buffer, in memory.

    Whatever the file holds at cells not computed, memory holds the fill there.
    """
    array = np.ascontiguousarray(data.astype(var.dtype, copy=False))
    array = array.reshape((table.size, *var.shape))
    not_computed = table.status != COMPUTED
    if not_computed.any():
        array[not_computed] = var.fill
    return InMemory(var, array)


def _set_buffers(table: FunctionTable, buffers: Sequence[CellBuffer]) -> None:
    """Make the outputs read from a file ``table``'s buffers."""
    table.buffers = tuple(buffers)
    table.lent = False
    table._view = None


@locked
def file_attrs(path: str) -> dict[str, Any]:
    """The global attributes of a results file (provenance)."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        return {k: nc.getncattr(k) for k in nc.ncattrs()}


@locked
def open_generation(
    path: str, mode: netCDF4.AccessMode = "r", generation: str = ""
) -> netCDF4.Dataset:
    """``path`` open through netCDF4 if it is still the snapshot ``generation``.

    The opener of lazy results (:mod:`xsweep.store.lazy`), called by xarray holding
    ``NC_LOCK`` (re-entrant: taken again here). xarray may close a file and open it again
    by its path later; by then a later publish may have replaced it, and reading
    the new file's bytes through the old Dataset's indexes could be silently wrong.
    """
    import netCDF4

    nc = netCDF4.Dataset(path, mode)
    found = str(nc.__dict__.get(GENERATION_ATTR, ""))
    if found != generation:
        nc.close()
        raise StoreError(
            f"{path} was replaced by a later publish (another sweep or run_process write) "
            "since this lazy Dataset was returned, and its cells may have moved. Nothing "
            "was read. Sweep again (cached cells are not recomputed) or open it anew with "
            "xarray.open_dataset(path); .load() a Dataset to keep a copy that never changes."
        )
    return nc
