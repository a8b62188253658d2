"""Writing whole NetCDF files: the layout on disk (read back by :mod:`.ncread`)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import xarray as xr

from .._version import __version__
from ..file_format import (
    COMPUTED,
    FORMAT_ATTR,
    FORMAT_VERSION,
    FUNCTION_ATTR,
    FUNCTIONS_ATTR,
    GENERATION_ATTR,
    HOLES_ATTR,
    PARAMETERS_ATTR,
    VERSION_ATTR,
    default_long_name,
    refinement_round_attrs,
    refinement_round_name,
)
from ..outputs import VariableSpec
from .bigcells import create_cells, create_staged, create_streamed, is_big, write_values
from .chars import create_text, write_text
from .grid import Grid
from .holes import file_form, maskable, table_mask
from .nclock import locked
from .table import FunctionTable

if TYPE_CHECKING:  # annotations only: that module imports this one
    import netCDF4

    from .staging import StagePlan


# ---------------------------------------------------------------------------------------------
# The NetCDF file itself
# ---------------------------------------------------------------------------------------------
def timestamp() -> str:
    """The time now as the file's ``created``, ``updated`` and history lines spell it."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _provenance() -> dict[str, str]:
    import netCDF4

    return {
        VERSION_ATTR: __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "netCDF4_version": netCDF4.__version__,
        "netcdf_library_version": netCDF4.__netcdf4libversion__,
        "hdf5_version": netCDF4.__hdf5libversion__,
    }


def _create(
    nc: netCDF4.Dataset,
    name: str,
    dims: tuple[str, ...],
    data: Any,
    attrs: dict[str, Any],
    later: list,
    *,
    coord: bool = False,
    fill: Any = None,
    taken: AbstractSet[str] = frozenset(),
) -> None:
    """Create one variable, keeping its dtype exactly; queue its write.

    Ints get no fill value unless given one (``fill``, see :mod:`xsweep.store.holes`).
    Coordinates (``coord``) get no fill value at all: CF wants them free of missing values.
    Text is a char array (:mod:`.chars`; its string-length dim avoids the names in
    ``taken``), but for coordinates, which stay variable-length strings.
    """
    data = np.asarray(data)
    attrs = dict(attrs)
    if data.dtype.kind in "OU" and not coord:
        var, width = create_text(nc, name, dims, data, taken)
        for k, v in attrs.items():
            var.setncattr(k, list(v) if isinstance(v, tuple) else v)
        later.append((write_text, var, data, width))
        return
    if data.dtype.kind in "OU":
        var = nc.createVariable(name, str, dims)
    elif fill is not None:
        var = nc.createVariable(name, data.dtype, dims, fill_value=fill)
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
    later.append((write_values, var, data))


@locked
def write_file(
    path: str,
    grid: Grid,
    tables: dict[str, FunctionTable],
    created: str,
    generation: str,
    stage: StagePlan | None = None,
    history: list[str] | None = None,
) -> netCDF4.Dataset | None:
    """Write ``tables`` over ``grid`` as a complete file at ``path``.

    With ``stage``, the file is a staged snapshot: ``stage.table``'s big outputs are laid
    out contiguously with a marker in their first cell, and the file is returned open
    (synced), for :func:`~xsweep.store.staging.create_stage` to go on with.
    """
    import netCDF4

    now = timestamp()
    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        nc.setncatts(
            {
                "Conventions": "CF-1.10",
                "title": "Parameter sweep results written by xsweep",
                FORMAT_ATTR: FORMAT_VERSION,
                GENERATION_ATTR: generation,
                FUNCTIONS_ATTR: json.dumps(list(tables)),
                PARAMETERS_ATTR: json.dumps(list(grid)),
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
        # Continuous parameters: which refinement round added each value, a non-index
        # coordinate that the status variables name (so that xarray reads it as one).
        rounds = {name: refinement_round_name(name) for name in grid if name in grid.rounds}
        for name, variable in rounds.items():
            attrs = refinement_round_attrs(name)
            _create(nc, variable, (name,), grid.rounds[name], attrs, later, coord=True)
        written_coords: set[str] = set(grid) | set(rounds.values())
        taken = file_names(grid, tables.values())
        for table in tables.values():
            staged = stage if stage is not None and stage.table is table else None
            _write_table(nc, table, written_coords, later, staged, rounds, taken)
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


def file_names(grid: Grid, tables: Iterable[FunctionTable]) -> set[str]:
    """Every variable and dim name a file of ``grid`` and ``tables`` uses, but text's."""
    names = set(grid)
    names.update(refinement_round_name(name) for name in grid if name in grid.rounds)
    for table in tables:
        names.update((*table.own_names, table.names.message_dim))
        for var in table.spec.variables if table.spec is not None else ():
            names.update(var.dims)
            names.update(var.coords)
    return names


def is_text(var: VariableSpec) -> bool:
    """Whether output ``var`` holds strings (a char array in the file, see :mod:`.chars`)."""
    return var.dtype.kind in "OU"


def output_attrs(table: FunctionTable, var: VariableSpec) -> dict[str, Any]:
    """The attributes of ``table``'s output ``var`` in a file (before those of its holes)."""
    attrs = dict(var.attrs)
    attrs.setdefault("long_name", default_long_name(var.name, table.name))
    attrs[FUNCTION_ATTR] = table.key
    extra = [c for c, cv in var.coords.items() if cv.dims != (c,)]
    if extra:
        attrs["coordinates"] = " ".join(extra)
    return attrs


def _write_table(
    nc: netCDF4.Dataset,
    table: FunctionTable,
    written: set[str],
    later: list,
    stage: StagePlan | None = None,
    rounds: dict[str, str] | None = None,
    taken: AbstractSet[str] = frozenset(),
) -> None:
    if table.spec is not None:
        for var, buf in zip(table.spec.variables, table.buffers):
            for dim, n in zip(var.dims, var.shape):
                if dim not in nc.dimensions:
                    nc.createDimension(dim, n)
            for cname, cvar in var.coords.items():
                if cname not in written:
                    cattrs = {"long_name": default_long_name(cname, table.name), **cvar.attrs}
                    cdims = cast(tuple[str, ...], cvar.dims)  # NetCDF dims: names
                    _create(nc, cname, cdims, cvar.values, cattrs, later, coord=True)
                    written.add(cname)
            if stage is not None and is_text(var):
                continue  # its width is known when the sweep ends: write_text_late
            attrs = output_attrs(table, var)
            status_name = table.names.status
            if stage is not None and (is_big(var) or buf.on_disk):
                # Its cells arrive later, written in place: no values to choose a fill from
                attrs.update(_raw_holes(var, status_name))
                create_staged(nc, var, table, attrs, later, stage)
                continue
            if buf.on_disk:  # copied in blocks: no pass over every value to choose a fill
                if table_mask(table, var) is not None:
                    attrs.update(_raw_holes(var, status_name))
                create_streamed(nc, var, buf, table, attrs, later)
                continue
            data = buf.read(slice(None)).reshape(table.shape + var.shape)
            fill = None
            if maskable(var) and stage is not None:  # see holes.staged_form
                attrs["ancillary_variables"] = status_name
            elif maskable(var):
                # Big cells: the holes are written by create_cells (HDF5's fill, or a few
                # cells), not by a copy of every cell; a ragged cell's padding needs one
                whole = not is_big(var) or var.extent is not None
                data, fill, more = file_form(data, table_mask(table, var), status_name, whole)
                attrs.update(more)
            if is_big(var):
                computed = np.flatnonzero(table.status == COMPUTED)
                create_cells(
                    nc,
                    var.name,
                    table.dims + var.dims,
                    data,
                    len(var.shape),
                    computed,
                    attrs,
                    later,
                    fill,
                )
            else:
                dims = table.dims + var.dims
                _create(nc, var.name, dims, data, attrs, later, fill=fill, taken=taken)
    _write_bookkeeping(nc, table, later, stage, rounds, taken)


def _write_bookkeeping(
    nc: netCDF4.Dataset,
    table: FunctionTable,
    later: list,
    stage: StagePlan | None,
    rounds: dict[str, str] | None,
    taken: AbstractSet[str],
) -> None:
    """A table's status, timings and errors (its messages too, unless staged)."""
    shape = table.shape
    status_attrs = table.status_attrs(file=True)
    known = rounds or {}
    aux = [known[d] for d in table.dims if d in known]
    if aux:
        status_attrs["coordinates"] = " ".join(aux)
    _create(nc, table.names.status, table.dims, table.status.reshape(shape), status_attrs, later)
    seconds = table.seconds.reshape(shape)
    _create(nc, table.names.seconds, table.dims, seconds, table.seconds_attrs(), later)
    codes, messages = table.error_codes()
    _create(nc, table.names.error, table.dims, codes.reshape(shape), table.error_attrs(), later)
    if stage is None:  # a staged file's are known when the sweep ends: write_text_late
        _create_messages(nc, table, messages, later, taken)


def _create_messages(
    nc: netCDF4.Dataset,
    table: FunctionTable,
    messages: list[str],
    later: list,
    taken: AbstractSet[str],
) -> None:
    nc.createDimension(table.names.message_dim, len(messages) or None)
    _create(
        nc,
        table.names.messages,
        (table.names.message_dim,),
        np.array(messages, dtype=object),
        {"long_name": f"distinct error messages of {table.key}"},
        later,
        taken=taken,
    )


def write_text_late(nc: netCDF4.Dataset, table: FunctionTable, messages: list[str]) -> None:
    """Define and write the text of a staged ``table`` (outputs, messages) into open ``nc``.

    A char array's width is that of its longest value, known only once the sweep is done;
    a netCDF-4 file takes new variables at any time, and HDF5 never moves the data of the
    staged outputs' contiguous variables.
    """
    later: list = []
    taken = set(nc.dimensions) | set(nc.variables)
    for var, buf in zip(table.spec.variables if table.spec else (), table.buffers):
        if is_text(var):
            data = buf.read(slice(None)).reshape(table.shape + var.shape)
            dims = table.dims + var.dims
            _create(nc, var.name, dims, data, output_attrs(table, var), later, taken=taken)
    _create_messages(nc, table, messages, later, taken)
    for write, *args in later:
        write(*args)


def _raw_holes(var: VariableSpec, status_name: str) -> dict[str, Any]:
    """The attributes of an int output whose holes keep raw values (status is the truth)."""
    if not maskable(var):
        return {}
    note = (
        "no _FillValue marks cells without a value: read only cells whose "
        f"{status_name} is {COMPUTED}"
    )
    if var.extent is not None:
        note += f", and of each only the shape its {var.extent} gives (the rest is padding)"
    return {"ancillary_variables": status_name, HOLES_ATTR: note}
