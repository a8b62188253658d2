"""A results file as a virtual Zarr dataset (VirtualiZarr): references to its bytes, no copy.

``virtualizarr.open_virtual_dataset`` with its HDF5 parser reads an xsweep file as it is,
with two limits this module works around (see ``docs/sharing.md``):

- string coordinates (string parameter values, a DataArray's string labels) are
  variable-length strings in the file, whose bytes VirtualiZarr cannot point at: they are
  read here and kept in memory (they are small), as loaded variables are;
- a big output written contiguously (a sweep of images that completed) is one HDF5 block,
  which VirtualiZarr makes one chunk of the size of the whole output: it is split here into
  one chunk per cell, each a byte range of the same block (cells lie in C order).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..file_format import PARAMETERS_ATTR
from .bigcells import BIG_CELL_BYTES

if TYPE_CHECKING:  # the cloud extra, imported where used
    from obspec_utils.registry import ObjectStoreRegistry

#: HDF5 and netCDF-4 bookkeeping attributes, which are not the variable's own.
_INTERNAL_ATTRS = {
    "DIMENSION_LIST",
    "REFERENCE_LIST",
    "CLASS",
    "NAME",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_nc3_strict",
}
_NEEDS = "pip install 'xsweep-nc[cloud]' (virtualizarr, obstore, h5py)"


def open_virtual(path_or_url: str | os.PathLike, registry: Any = None) -> xr.Dataset:
    """A results file as a virtual dataset: references to its chunks, nothing copied.

    What ``virtualizarr.open_virtual_dataset(url, registry, HDFParser())`` returns, with
    string coordinates loaded (VirtualiZarr cannot point at variable-length strings) and a
    big output that is one contiguous block split into a chunk per cell. Write it as
    references with ``ds.vz.to_icechunk(...)`` or ``ds.vz.to_kerchunk(...)``.

    Parameters
    ----------
    path_or_url : str or os.PathLike
        A local results file, or a URL (``s3://bucket/r.nc``) that ``registry`` resolves.
    registry : obspec_utils.registry.ObjectStoreRegistry, optional
        Where URLs are read from; default: the local file system, for a path.

    Returns
    -------
    xarray.Dataset
        Its variables are ``ManifestArray`` references, but for the loaded string
        coordinates.

    Examples
    --------
    >>> import os, tempfile, numpy as np, xsweep as xs
    >>> ps = xs.ParameterSpace([xs.Parameter("material", values=["steel", "oak"])])
    >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
    >>> def picture(material):
    ...     return np.zeros((300, 400, 3), np.uint8)
    >>> _ = ps.sweep(picture, progress=False)
    >>> vds = xs.open_virtual(ps.cache_path)
    >>> vds["material"].values.tolist()
    ['steel', 'oak']
    >>> vds["picture"].data.chunks                    # one chunk per image, no copy
    (1, 300, 400, 3)
    """
    try:
        from obspec_utils.registry import ObjectStoreRegistry
        from obstore.store import LocalStore
        from virtualizarr import open_virtual_dataset
        from virtualizarr.parsers import HDFParser
    except ImportError as exc:
        raise ImportError(f"Opening a virtual dataset needs VirtualiZarr: {_NEEDS}.") from exc
    url = os.fspath(path_or_url)
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    if registry is None:
        registry = ObjectStoreRegistry({"file://": LocalStore()})
    strings = _string_variables(url, registry)
    with warnings.catch_warnings():
        # zarr: its type of a text's chars (|S1) has no v3 specification yet; it reads them
        warnings.filterwarnings("ignore", message=".*Zarr V3 specification")
        vds = open_virtual_dataset(
            url, registry=registry, parser=HDFParser(drop_variables=list(strings))
        )
    vds = vds.assign_coords(strings)
    grid = set(json.loads(vds.attrs.get(PARAMETERS_ATTR, "[]")))
    for name, var in list(vds.data_vars.items()):
        split = cell_chunked(var.variable, grid)
        if split is not None:
            vds[name] = split
    return vds


def _string_variables(url: str, registry: ObjectStoreRegistry) -> dict[str, xr.Variable]:
    """The variable-length string variables of the file at ``url``, read."""
    import h5py
    from obspec_utils.readers import BlockStoreReader

    store, path = registry.resolve(url)
    out: dict[str, xr.Variable] = {}
    with h5py.File(BlockStoreReader(store, path), mode="r") as f:
        for name, dset in f.items():
            if not isinstance(dset, h5py.Dataset) or h5py.check_string_dtype(dset.dtype) is None:
                continue
            if dset.dtype.kind != "O":
                continue  # fixed-length: VirtualiZarr points at it
            dims = [str(d[0].name).lstrip("/") if len(d) else name for d in dset.dims]
            attrs = {k: _attr(v) for k, v in dset.attrs.items() if k not in _INTERNAL_ATTRS}
            values = np.array(dset.asstr()[...], dtype=str)
            out[name] = xr.Variable(dims, values, attrs)
    return out


def _attr(value: Any) -> Any:
    """An HDF5 attribute as netCDF4 and xarray give it (text as ``str``, one value bare)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.size == 1 and value.ndim <= 1:
        return value.reshape(()).item() if value.dtype.kind in "OSU" else value
    return value


def cell_chunked(var: xr.Variable, grid: set[str]) -> xr.Variable | None:
    """``var`` with a chunk per cell, if it is a big output stored as one uncompressed block.

    None when it is not: small cells, chunked already (one chunk per cell, or compressed).
    """
    from virtualizarr.manifests import ChunkManifest, ManifestArray
    from zarr.core.chunk_grids import RegularChunkGrid

    array = var.data
    if not isinstance(array, ManifestArray):
        return None
    cells = sum(d in grid for d in var.dims)
    if cells == 0 or any(d in grid for d in var.dims[cells:]):
        return None  # parameters first, then the output's own dims: else not an output
    cell_shape = var.shape[cells:]
    cell_bytes = var.dtype.itemsize * int(np.prod(cell_shape, dtype=np.int64))
    entries = array.manifest.dict()
    if cell_bytes < BIG_CELL_BYTES or len(entries) != 1:
        return None
    (entry,) = entries.values()
    if len(array.metadata.codecs) != 1 or int(entry["length"]) != cell_bytes * int(
        np.prod(var.shape[:cells], dtype=np.int64)
    ):
        return None  # compressed, or not the plain block of every cell
    grid_shape = var.shape[:cells]
    ncells = int(np.prod(grid_shape, dtype=np.int64))
    shape = (*grid_shape, *(1,) * len(cell_shape))
    offsets = int(entry["offset"]) + cell_bytes * np.arange(ncells, dtype=np.uint64)
    manifest = ChunkManifest.from_arrays(
        paths=np.full(shape, entry["path"], dtype=np.dtypes.StringDType()),
        offsets=offsets.reshape(shape),
        lengths=np.full(shape, cell_bytes, dtype=np.uint64),
    )
    chunk_grid = RegularChunkGrid(chunk_shape=(*(1,) * cells, *cell_shape))
    metadata = dataclasses.replace(array.metadata, chunk_grid=chunk_grid)
    return xr.Variable(var.dims, ManifestArray(metadata, manifest), var.attrs, var.encoding)
