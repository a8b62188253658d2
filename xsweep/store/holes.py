"""Cells without a value in integer and bool outputs: never read as a number.

A float output holds NaN where no value exists. An integer or bool one has no such value,
so xsweep follows xarray's own rule (``reindex``, ``where``): where some of its cells have
no value (not computed, failed, skipped, returned None, or ragged padding), the Dataset a
sweep returns holds it as float with NaN there; with no holes it keeps its dtype.

In the file, such an output gets a ``_FillValue`` no real value equals (the type's minimum
for signed ints, its maximum for unsigned ones, else a value below or above every value
written), written at its holes, so that a plain ``xarray.open_dataset`` masks them. Where
every value of the type is taken (a uint8 image that uses every byte), none is stolen: the
raw bytes stay and ``<fn>_status`` (linked by the CF attribute ``ancillary_variables``) is
the truth. A bool output with holes is stored as int8 with ``_FillValue`` -1 (NetCDF has
no bool, and xarray would read a masked ``dtype: bool`` variable's holes as True).

Everything here runs when a Dataset is handed out or a file written: once per read or
publish, from the status array, never per cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..file_format import (
    COMPUTED,
    DTYPE_ATTR,
    ENCODING_ATTR,
    EXTENT_ATTR,
    HOLES_ATTR,
    STATUS_MEANINGS,
)
from ..outputs import VariableSpec
from .cells import write_fill_runs

if TYPE_CHECKING:
    import netCDF4

# DTYPE_ATTR: the dtype an output was returned in, where holes made it float (in a returned
# Dataset); in a file, "bool" on a bool output stored as int8 with a fill. HOLES_ATTR: set
# where an output's holes hold raw bytes (no free value to mark them).


def maskable(var: VariableSpec) -> bool:
    """Whether ``var``'s holes need masking: an int, unsigned or bool output (not times)."""
    encoding = str(var.attrs.get(ENCODING_ATTR, ""))
    times = encoding.startswith(("datetime64", "timedelta64"))  # NaT marks their holes
    return var.dtype != object and var.dtype.kind in "biu" and not times


def float_dtype(dtype: np.dtype) -> np.dtype:
    """The float an int or bool output becomes with holes (xarray's choice when decoding)."""
    return np.dtype(np.float32 if dtype.itemsize <= 2 else np.float64)


def hole_mask(
    status: np.ndarray,
    grid_shape: tuple[int, ...],
    var: VariableSpec,
    extent: np.ndarray | None = None,
) -> np.ndarray | None:
    """Where ``var`` has no value, broadcastable to ``grid_shape + var.shape``; None if nowhere.

    ``status`` is the flat status array; ``extent`` the flat ``(cells, ndim)`` extents of a
    ragged output (its padding is a hole too).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.outputs import VariableSpec
    >>> from xsweep.store.holes import hole_mask
    >>> var = VariableSpec("f", np.dtype(int), (), (), scalar=True)
    >>> hole_mask(np.array([1, 2, 1], np.int8), (3,), var).tolist()
    [False, True, False]
    >>> hole_mask(np.array([1, 1], np.int8), (2,), var) is None
    True
    """
    cells = status != COMPUTED
    mask = cells.reshape(grid_shape + (1,) * len(var.shape))
    holes = bool(cells.any())
    if extent is not None and var.shape:
        ext = np.asarray(extent).reshape(grid_shape + (len(var.shape),))
        pad = np.zeros(grid_shape + var.shape, dtype=bool)
        for axis, n in enumerate(var.shape):
            index = np.arange(n).reshape(
                (1,) * len(grid_shape) + tuple(n if a == axis else 1 for a in range(len(var.shape)))
            )
            limit = ext[..., axis].reshape(grid_shape + (1,) * len(var.shape))
            pad |= index >= limit
        pad &= ~mask
        if pad.any():
            return pad | mask
    return mask if holes else None


#: 64-bit ints beyond it are not all exact as float64.
EXACT = 2**53


def beyond_float(data: np.ndarray, mask: np.ndarray) -> bool:
    """Whether a real value (outside ``mask``) of a 64-bit int ``data`` is not exact as float64."""
    if data.dtype.kind not in "iu" or data.dtype.itemsize < 8:
        return False
    far = data > EXACT
    if data.dtype.kind == "i":
        far |= data < -EXACT
    far &= ~mask
    return bool(far.any())


def masked(data: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``data`` as float with NaN where ``mask`` (``data`` itself if no mask).

    A 64-bit int output holding a value beyond 2**53, which float64 would round, is
    given as an object array of its exact Python ints with NaN at the holes instead:
    never a rounded value.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.store.holes import masked
    >>> masked(np.array([10, 0, 40], np.uint8), np.array([False, True, False]))
    array([10., nan, 40.], dtype=float32)
    >>> masked(np.array([2**63 - 1, 0], np.int64), np.array([False, True]))
    array([9223372036854775807, nan], dtype=object)
    """
    if mask is None:
        return data
    data = np.asarray(data)
    if beyond_float(data, mask):
        out = data.astype(object)
        np.copyto(out, np.nan, where=mask)
        return out
    out = data.astype(float_dtype(data.dtype))
    np.copyto(out, np.nan, where=mask)  # broadcasts: no full-size index array
    return out


def table_mask(table: Any, var: VariableSpec) -> np.ndarray | None:
    """:func:`hole_mask` of ``var`` in a :class:`~xsweep.store.table.FunctionTable`."""
    if not maskable(var):
        return None
    extent = None
    if var.extent is not None and var.extent in table.spec.names:
        extent = table.buffers[table.spec.names.index(var.extent)].read(slice(None))
    return hole_mask(table.status, table.shape, var, extent)


#: Cells of an output scanned at a time when choosing a fill (bounded memory).
_SCAN_BYTES = 4 << 20


def choose_fill(data: np.ndarray, mask: np.ndarray) -> Any:
    """A value of ``data``'s int type that no real value (outside ``mask``) equals, or None.

    Tries the type's minimum (signed) or maximum (unsigned) first, then the other end, then
    one below the smallest or above the largest real value, then any value not written;
    None when every value of the type is taken, or when a 64-bit output holds a value
    beyond 2**53, which a reader masking it as float64 would round (the caller keeps the
    raw values, the status is the truth). One pass over the cells that hold a value, a few MB
    at a time; a ragged cell's padding counts as written (it may only cost a free value).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.store.holes import choose_fill
    >>> hole = np.array([False, False, True])
    >>> int(choose_fill(np.array([1, 2, 0], np.int32), hole))
    -2147483648
    >>> int(choose_fill(np.array([0, 255, 0], np.uint8), hole))
    254
    >>> choose_fill(np.arange(256, dtype=np.uint8), np.zeros(256, bool)) is None
    True
    """
    dtype = data.dtype
    info = np.iinfo(dtype)
    ends = (info.min, info.max) if dtype.kind == "i" else (info.max, info.min)
    # The mask is over the grid with the cell dims of length 1 (or over every value: the
    # padding of a ragged output): its "cells" are the rows scanned
    grid_ndim = data.ndim
    while grid_ndim and mask.shape[grid_ndim - 1] == 1 and data.shape[grid_ndim - 1] != 1:
        grid_ndim -= 1
    ncells = int(np.prod(data.shape[:grid_ndim], dtype=np.int64))
    cells: np.ndarray = data.reshape((ncells, -1))  # numpy's stubs say 0-d
    real = ~np.asarray(mask).reshape((ncells, -1)).all(axis=1)
    rows = np.flatnonzero(real)
    if rows.size == 0:
        return dtype.type(ends[0])
    wide = dtype.itemsize == 8
    exact = EXACT
    hit = [False, False]
    lo, hi = info.max, info.min
    per = max(_SCAN_BYTES // max(cells.shape[1] * dtype.itemsize, 1), 1)
    for at in range(0, rows.size, per):
        block = cells[rows[at : at + per]]
        lo, hi = min(lo, block.min()), max(hi, block.max())
        if wide:  # readers compare in float64, where values near an end round onto it
            block = block.astype(np.float64)
        targets = [float(e) for e in ends] if wide else ends
        hit = [h or bool((block == e).any()) for h, e in zip(hit, targets)]
    if wide and (int(hi) > exact or int(lo) < -exact):
        # a masked int64 reads as float64 in xarray, which would round this value
        return None
    for end, used in zip(ends, hit):
        if not used:
            return dtype.type(end)
    if hi < info.max and (not wide or abs(int(hi) + 1) < exact):
        return dtype.type(int(hi) + 1)
    if lo > info.min and (not wide or abs(int(lo) - 1) < exact):
        return dtype.type(int(lo) - 1)
    return _free_inside(cells, rows, per, wide)


def _free_inside(cells: np.ndarray, rows: np.ndarray, per: int, wide: bool) -> Any:
    """A value between the type's ends that no real cell holds, or None (every one taken).

    Only reached when both ends and their neighbours are real values (rare).
    """
    dtype = cells.dtype
    info = np.iinfo(dtype)
    if dtype.itemsize <= 2:  # a second pass: which of the 256 or 65536 values are taken
        unsigned = np.dtype(f"u{dtype.itemsize}")
        flip = 0 if dtype.kind == "u" else 1 << (8 * dtype.itemsize - 1)
        taken = np.zeros(1 << (8 * dtype.itemsize), dtype=bool)
        for at in range(0, rows.size, per):
            block = cells[rows[at : at + per]].view(unsigned).ravel()
            counts = np.bincount(block ^ unsigned.type(flip) if flip else block)
            taken[: counts.size] |= counts > 0
        free = np.flatnonzero(~taken)
        return dtype.type(int(free[-1]) + int(info.min)) if free.size else None
    values = np.unique(cells[rows])  # the first gap between the real values
    for i in np.flatnonzero(values[1:] > values[:-1] + 1).tolist():  # no overflow
        # the free value of this gap nearest 0: exact as a float64 where one is
        candidate = min(max(0, int(values[i]) + 1), int(values[i + 1]) - 1)
        if not wide or abs(candidate) < EXACT:
            return dtype.type(candidate)
    return None


def file_form(
    data: np.ndarray, mask: np.ndarray | None, status_name: str, fill_holes: bool = True
) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """What a file stores for an int or bool output: values, ``_FillValue`` (or None), attrs.

    With holes: the values with the fill at the holes (unless not ``fill_holes``: the caller
    writes them) and the fill, or (no free value) the raw values and an attribute that
    says ``status_name`` is the truth. Without holes: the values as they are. ``data`` is
    over the grid and the cell dims.
    """
    attrs: dict[str, Any] = {"ancillary_variables": status_name}
    if mask is None:
        if data.dtype.kind == "b":
            attrs["dtype"] = "bool"
        return data, None, attrs
    if data.dtype.kind == "b":
        stored = np.where(mask, np.int8(-1), data.astype(np.int8))
        attrs[DTYPE_ATTR] = "bool"
        return stored, np.int8(-1), attrs
    fill = choose_fill(data, mask)
    if fill is None:
        why = (
            "values beyond 2**53 would be rounded by a reader that masks it as float64"
            if data.dtype.itemsize == 8
            else f"every value of {data.dtype} is taken"
        )
        attrs[HOLES_ATTR] = (
            f"{why}, so no _FillValue marks cells without a value: read only cells whose "
            f"{status_name} is {COMPUTED} ({STATUS_MEANINGS[COMPUTED]})"
        )
        return data, None, attrs
    return (np.where(mask, fill, data) if fill_holes else data), fill, attrs


def staged_form(
    data: np.ndarray, mask: np.ndarray | None, file_var: netCDF4.Variable
) -> np.ndarray:
    """What to write into a staged file's int or bool output ``file_var``, defined without a
    fill when it was staged (a ``_FillValue`` cannot be set once a variable is written):
    with holes, a free value is marked with the CF attribute ``missing_value`` instead,
    which readers honour as they do ``_FillValue``."""
    stored, fill, attrs = file_form(data, mask, str(file_var.getncattr("ancillary_variables")))
    if fill is not None:
        if "dtype" in file_var.ncattrs():  # a bool with holes: int8, -1 where no value
            file_var.delncattr("dtype")
        attrs["missing_value"] = fill
    for key, value in attrs.items():
        if key != "dtype":
            file_var.setncattr(key, value)
    return stored


def _outer_take(arr: np.ndarray, key: tuple) -> np.ndarray:
    """``arr`` indexed by an outer (orthogonal) key of ints, slices and int arrays.

    An axis of length 1 stands for any length (a mask that broadcasts): it stays 1.
    """
    for axis in range(len(key) - 1, -1, -1):
        k = key[axis]
        if arr.shape[axis] == 1:
            if isinstance(k, (int, np.integer)):
                arr = np.take(arr, 0, axis=axis)
        elif isinstance(k, slice):
            arr = arr[(slice(None),) * axis + (k,)]
        else:
            arr = np.take(arr, k, axis=axis)
    return arr


def _backend_base() -> type:
    from xarray.backends import BackendArray

    return BackendArray


class MaskedCells(_backend_base()):  # type: ignore[misc]
    """A lazily read int or bool output, as float with NaN at its holes (read on indexing).

    ``read(key)`` reads the raw values for an outer-indexing key; ``mask`` is the output's
    :func:`hole_mask`, indexed alongside.
    """

    def __init__(
        self,
        read: Callable[[tuple[Any, ...]], Any],
        shape: tuple[int, ...],
        dtype: np.dtype,
        mask: np.ndarray | None,
    ) -> None:
        self.read = read
        self.shape = tuple(shape)
        # No mask: values read in ``dtype`` itself (a view of a masked output without holes)
        self.dtype = float_dtype(dtype) if mask is not None else np.dtype(dtype)
        self.mask = mask

    def __getitem__(self, key: Any) -> Any:
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._outer
        )

    def _outer(self, key: tuple) -> np.ndarray:
        data = np.asarray(self.read(key))
        if self.mask is None:
            return data.astype(self.dtype)
        mask = _outer_take(self.mask, key)
        if beyond_float(data, np.broadcast_to(mask, data.shape)):
            # its dtype was promised before reading: refuse rather than round
            raise ValueError(
                f"this lazily read {data.dtype} output holds values beyond 2**53, which "
                "float64 (its dtype where cells have no value) would round. Read its exact "
                "values from the results file with xarray.open_dataset (its status variable "
                "says which cells are real), or sweep with lazy=False and a memory_budget "
                "that holds the output."
            )
        out = data.astype(self.dtype)
        np.copyto(out, np.nan, where=mask)
        return out


def lazy_masked(
    read: Callable[[tuple[Any, ...]], Any],
    shape: tuple[int, ...],
    dtype: np.dtype,
    mask: np.ndarray | None,
) -> Any:
    """An xarray-lazy array of :class:`MaskedCells`."""
    from xarray.core import indexing

    return indexing.LazilyIndexedArray(MaskedCells(read, shape, dtype, mask))


def view_dtypes(ds: Any, status_name: str) -> Any:
    """``ds`` (a selection of a sweep's Dataset) with the outputs that holes made float back
    in their own dtype where the selection has none (a ``params=`` sweep of a grid that
    has other cells not computed keeps its ints).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xsweep.store import view_dtypes
    >>> ds = xr.Dataset(
    ...     {"f": ("a", [10.0, np.nan], {"xsweep_dtype": "int64"})},
    ...     coords={"f_status": ("a", np.array([1, 2], np.int8))},
    ... )
    >>> view_dtypes(ds.isel(a=[0]), "f_status")["f"].values
    array([10])
    >>> view_dtypes(ds, "f_status")["f"].values
    array([10., nan])
    """
    import xarray as xr

    if status_name not in ds.coords:
        return ds
    status = np.asarray(ds[status_name].values)
    grid_shape = status.shape
    changed = {}
    for name, da in ds.data_vars.items():
        dtype = da.attrs.get(DTYPE_ATTR)
        if dtype is None or da.dims[: status.ndim] != ds[status_name].dims:
            continue
        cell_shape = da.shape[status.ndim :]
        var = VariableSpec(str(name), np.dtype(dtype), cell_shape, da.dims[status.ndim :])
        extent = da.attrs.get(EXTENT_ATTR)
        extent = ds[extent].values if extent in ds.data_vars else None
        if extent is not None and np.isnan(extent).any():
            continue  # an extent of a cell without a value: a hole
        if hole_mask(status.reshape(-1), grid_shape, var, extent) is not None:
            continue
        attrs = {k: v for k, v in da.attrs.items() if k != DTYPE_ATTR}
        variable = da.variable
        if variable._in_memory or variable.chunks is not None:
            data = variable.data.astype(var.dtype)
        else:  # lazily read: cast when read

            def read(key: tuple, variable: xr.Variable = variable) -> np.ndarray:
                return np.asarray(variable[key].values)

            data = lazy_masked(read, variable.shape, var.dtype, None)
        changed[name] = xr.Variable(da.dims, data, attrs)
    for name, variable in changed.items():
        ds[name] = variable
    return ds


def mark_staged_holes(stage: Any, index: int, var: VariableSpec, table: Any) -> None:
    """Mark the holes of a staged file's big int output ``index`` once its cells are in:
    a free value (one read of the computed cells) written over the cells without a value
    and named by ``missing_value``; none free, the raw bytes stay (``HOLES_ATTR`` says so)."""
    file_var = stage.nc.variables[var.name]
    mask = table_mask(table, var)
    if mask is None:
        if HOLES_ATTR in file_var.ncattrs():
            file_var.delncattr(HOLES_ATTR)
        return
    holes = np.flatnonzero(table.status != COMPUTED)
    if var.extent is not None or holes.size > table.size // 10:
        # Padding inside computed cells, or so many holes that writing a fill over them
        # would allocate what a sparse file leaves unwritten: left raw, the status says
        return
    base = stage.places[index][0]
    dtype = np.dtype(np.int8) if var.dtype.kind == "b" else var.dtype
    cells = np.memmap(
        stage.path, dtype=dtype, mode="r", offset=base, shape=(table.size, *var.shape)
    )
    try:
        fill = np.int8(-1) if var.dtype.kind == "b" else choose_fill(cells, mask)
    finally:
        del cells
    if fill is None:
        return
    write_fill_runs(stage.fd, var, holes, base, fill)
    if var.dtype.kind == "b":
        file_var.delncattr("dtype")
        file_var.setncattr(DTYPE_ATTR, "bool")
    file_var.setncattr("missing_value", fill)
    file_var.delncattr(HOLES_ATTR)
