"""Writing whole NetCDF files: the layout on disk (read back by :mod:`.ncread`)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
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
)
from ..outputs import VariableSpec
from .bigcells import create_cells, create_staged, create_streamed, is_big, write_values
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
) -> None:
    """Create one variable, keeping its dtype exactly; queue its write.

    Ints get no fill value unless given one (``fill``, see :mod:`xsweep.store.holes`).
    Coordinates (``coord``) get no fill value at all: CF wants them free of missing values.
    """
    data = np.asarray(data)
    attrs = dict(attrs)
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
    nc: netCDF4.Dataset,
    table: FunctionTable,
    written: set[str],
    later: list,
    stage: StagePlan | None = None,
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
            attrs = dict(var.attrs)
            attrs.setdefault("long_name", default_long_name(var.name, table.name))
            attrs[FUNCTION_ATTR] = table.key
            extra = [c for c, cv in var.coords.items() if cv.dims != (c,)]
            if extra:
                attrs["coordinates"] = " ".join(extra)
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
                _create(nc, var.name, table.dims + var.dims, data, attrs, later, fill=fill)
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
