"""Outputs of big cells (images, fields) in a file: their layouts and block copies.

Three layouts, chosen when a file is written (:func:`xsweep.store.ncfile.write_file`):
contiguous when the grid is mostly computed (one plain write, as fast as a raw ``write``),
one chunk per cell when it is barely computed (disk space for computed cells only), and a
staged layout whose places are fixed so that a sweep writes each cell straight there (see
:mod:`xsweep.store.staging`). Outputs kept on disk (:mod:`xsweep.store.ondisk`) are copied a
block at a time, read through their buffer (:mod:`xsweep.store.buffers`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..file_format import COMPUTED, DTYPE_ATTR
from ..outputs import VariableSpec
from .buffers import CellBuffer
from .cells import blocks, cells_per_copy, slabs
from .table import FunctionTable

if TYPE_CHECKING:
    import netCDF4

#: Output cells at least this big get a layout of their own (see :func:`create_cells`).
BIG_CELL_BYTES = 256 * 1024


#: From this fraction of computed cells on, a variable of big cells is stored contiguously.
DENSE_FRACTION = 0.9


def create_cells(
    nc: netCDF4.Dataset,
    name: str,
    dims: tuple[str, ...],
    data: np.ndarray,
    cell_ndim: int,
    computed: np.ndarray,
    attrs: dict[str, Any],
    later: list,
    fill: Any = None,
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
        var = _define_big(nc, name, data.dtype, dims, attrs, fill, contiguous=True)
        later.append((write_values, var, data))
        if fill is not None and computed.size < ncells:  # the few holes get the fill
            hole = np.full(data.shape[len(grid_shape) :], fill, dtype=data.dtype)
            done = np.zeros(ncells, dtype=bool)
            done[computed] = True
            for flat in np.flatnonzero(~done).tolist():
                later.append((write_values, var, hole, np.unravel_index(flat, grid_shape)))
        return
    chunks = (1,) * len(grid_shape) + data.shape[len(grid_shape) :]
    var = _define_big(nc, name, data.dtype, dims, attrs, fill, chunksizes=chunks)
    cells = data.reshape((-1, *data.shape[len(grid_shape) :]))
    for flat in computed.tolist():
        later.append((write_values, var, cells[flat], np.unravel_index(flat, grid_shape)))


def _define_big(
    nc: netCDF4.Dataset,
    name: str,
    dtype: np.dtype,
    dims: tuple[str, ...],
    attrs: dict[str, Any],
    fill: Any = None,
    **layout: Any,
) -> netCDF4.Variable:
    """Define a variable of big cells with the given layout (contiguous, or chunk sizes).

    Floats get a NaN ``_FillValue``, ints ``fill`` if given (see :mod:`.holes`). Others keep
    the format's default fill and no ``_FillValue`` attribute, so that xarray keeps their
    dtype and every value; the status says which cells are computed. A contiguous variable
    is written whole, so HDF5 is told not to fill it first (that would write every byte
    twice).
    """
    contiguous = layout.get("contiguous", False)
    if contiguous:
        nc.set_fill_off()
    if fill is not None:
        var = nc.createVariable(name, np.asarray(fill).dtype, dims, fill_value=fill, **layout)
    elif dtype.kind == "f":
        var = nc.createVariable(name, dtype, dims, fill_value=dtype.type(np.nan), **layout)
    else:
        var = nc.createVariable(name, "i1" if dtype.kind == "b" else dtype, dims, **layout)
        if dtype.kind == "b" and DTYPE_ATTR not in attrs:
            attrs = {**attrs, "dtype": "bool"}
    if contiguous:
        nc.set_fill_on()
    for k, v in attrs.items():
        var.setncattr(k, list(v) if isinstance(v, tuple) else v)
    return var


def create_streamed(
    nc: netCDF4.Dataset,
    var: VariableSpec,
    buf: CellBuffer,
    table: FunctionTable,
    attrs: dict[str, Any],
    later: list,
) -> None:
    """An output kept on disk: laid out as :func:`create_cells` does; copied in blocks.

    Its cells are read from wherever they are (the previous file, a staged file) a block of
    at most ``cells.COPY_BYTES`` at a time: memory stays bounded whatever the grid.
    """
    computed = np.flatnonzero(table.status == COMPUTED)
    dims = table.dims + var.dims
    if computed.size >= DENSE_FRACTION * table.size:
        v = _define_big(nc, var.name, var.dtype, dims, attrs, contiguous=True)
        cells = np.arange(table.size)
    else:
        chunks = (1,) * len(table.dims) + tuple(var.shape)
        v = _define_big(nc, var.name, var.dtype, dims, attrs, chunksizes=chunks)
        cells = computed
    later.append((_copy_cells, v, buf, table.shape, cells))


def _copy_cells(
    v: netCDF4.Variable, buf: CellBuffer, grid_shape: tuple[int, ...], cells: np.ndarray
) -> None:
    """Write ``cells`` of ``buf`` into the file variable ``v``, a block at a time."""
    for part in blocks(cells, cells_per_copy(buf.var)):
        values = buf.read(part)
        if values.dtype.kind == "b":
            values = values.astype(np.int8)
        first = int(part[0])
        if part.size == int(part[-1]) - first + 1:  # a run: hyper-slabs
            for index, a, b in slabs(grid_shape, first, int(part[-1]) + 1):
                v[index] = values[a - first : b - first]
        else:
            for row, flat in enumerate(part.tolist()):
                v[tuple(int(i) for i in np.unravel_index(flat, grid_shape))] = values[row]


def is_big(var: VariableSpec) -> bool:
    """Whether ``var``'s cells are big enough for a layout of their own (``BIG_CELL_BYTES``)."""
    return var.dtype != object and var.dtype.itemsize * int(np.prod(var.shape)) >= BIG_CELL_BYTES


def create_staged(
    nc: netCDF4.Dataset,
    var: VariableSpec,
    table: FunctionTable,
    attrs: dict[str, Any],
    later: list,
    stage: Any,
) -> None:
    """A staged table's big output: contiguous, no fill; a marker in its first cell."""
    v = _define_big(nc, var.name, var.dtype, table.dims + var.dims, attrs, contiguous=True)
    dtype = "i1" if var.dtype.kind == "b" else var.dtype
    # The marker fills the head of the first cell (see cell_head): HDF5 allocates the whole
    # variable on this first write and writes these few bytes only.
    suffix, head = cell_head(var)
    marker = np.resize(np.frombuffer(os.urandom(32), dtype=np.uint8), head)
    block = marker.view(dtype).reshape([var.shape[i] for i, s in enumerate(suffix) if s != 0])
    stage.markers[marker.tobytes()] = var.name
    later.append((v.__setitem__, (0,) * len(table.dims) + suffix, block))


def cell_head(var: VariableSpec) -> tuple[tuple, int]:
    """The first block of a cell made of whole trailing rows, of at least 32 bytes.

    Returns its index within the cell (zeros, then full slices) and its size in bytes.
    """
    ndim = len(var.shape)
    for k in range(1, ndim + 1):
        head = int(np.prod(var.shape[ndim - k :])) * var.dtype.itemsize
        if head >= 32 or k == ndim:
            return (0,) * (ndim - k) + (slice(None),) * k, head
    return (), var.dtype.itemsize


def write_values(var: netCDF4.Variable, data: np.ndarray, index: Any = ...) -> None:
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
