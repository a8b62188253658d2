"""Exporting a results file to a Zarr v3 store: the same Dataset, for object storage.

Everything in the file goes across, as ``xarray.open_dataset`` reads it: the outputs, every
function's status, timings, error codes and messages, and all attributes, so that
``xarray.open_zarr`` on the copy gives back what the file holds. Outputs are copied a chunk
at a time (through dask, one chunk in memory at once): a big output's chunk is one cell, as
it is in a file written while streaming, and smaller ones are packed into chunks of about
``CHUNK_BYTES``. See ``docs/sharing.md``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Literal

import numpy as np
import xarray as xr

from ..errors import StoreError
from ..file_format import FORMAT_ATTR, PARAMETERS_ATTR
from .bigcells import BIG_CELL_BYTES
from .nclock import open_dataset
from .opening import open_store

#: Chunks of outputs with small cells hold about this many bytes.
CHUNK_BYTES = 4 << 20
_NEEDS = "pip install 'xsweep-nc[cloud]' (zarr and dask)"


def export_zarr(
    path: str | os.PathLike,
    dest: Any,
    *,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Copy the results file ``path`` to a new Zarr v3 store ``dest``, chunk by chunk.

    The store holds the same Dataset as the file, bookkeeping included: each function's
    ``<name>_status``, ``<name>_error`` and ``<name>_messages`` and every attribute, so that
    ``xarray.open_zarr(dest)`` gives what ``xarray.open_dataset(path)`` gives, and
    ``ds.xsweep.failures()`` works on it. Output cells of 256 kB or more (images, fields)
    get a chunk each, read and written one at a time: memory stays bounded whatever the size
    of the file. The file itself is only read.

    Parameters
    ----------
    path : str or os.PathLike
        An xsweep results file (``ps.cache_path``).
    dest : str, os.PathLike or zarr store
        Where to write: a local folder, an fsspec URL (``memory://``, ``s3://bucket/r.zarr``:
        the protocol's fsspec package must be installed), or a ``zarr`` store object.
    overwrite : bool
        Replace what ``dest`` holds; by default an existing store is left alone and
        ``StoreError`` raised.
    storage_options : dict, optional
        Passed to fsspec for a URL ``dest`` (credentials, endpoint).

    Raises
    ------
    StoreError
        ``path`` is not a results file, or ``dest`` exists and ``overwrite`` is False.
    ImportError
        zarr or dask is not installed (``pip install 'xsweep-nc[cloud]'``).

    Examples
    --------
    >>> import os, tempfile, warnings, xarray as xr, xsweep as xs
    >>> folder = tempfile.mkdtemp()
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    >>> ps.enable_cache(os.path.join(folder, "r.nc"))
    >>> def inverse(a):
    ...     if a == 2:
    ...         raise ValueError("not two")
    ...     return 1 / a
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     _ = ps.sweep(inverse, progress=False)
    >>> xs.export_zarr(ps.cache_path, os.path.join(folder, "r.zarr"))
    >>> z = xr.open_zarr(os.path.join(folder, "r.zarr"))
    >>> z["inverse_status"].values.tolist(), z["inverse"].values.tolist()
    ([1, 2, 1], [1.0, nan, 0.3333333333333333])
    >>> z.xsweep.failures()["error"].tolist()
    ['ValueError: not two']
    """
    try:
        import dask
        import zarr  # noqa: F401  (xarray's Zarr backend)
    except ImportError as exc:
        raise ImportError(f"Exporting to Zarr needs zarr and dask: {_NEEDS}.") from exc
    path = os.fspath(path)
    open_store(path, outputs=False).close()  # a results file, readable: else a clear error
    mode: Literal["w", "w-"] = "w" if overwrite else "w-"
    # Raw values with their CF attributes, decoded by the reader as from the file: xarray
    # decoding, then encoding again, would round a uint64 hole's fill through float64.
    # cache=False: xarray would otherwise keep each variable whole after its first read.
    with open_dataset(path, decode_cf=False, cache=False) as ds:
        grid = _grid_dims(ds)
        out = ds.copy()  # new Variables over the same lazily read data
        for name, var in out.variables.items():
            var.encoding = {}
            if var.dims == (name,):
                continue  # a dimension's coordinate: in memory already, an index
            chunks = cell_chunks(var.shape, [d in grid for d in var.dims], var.dtype.itemsize)
            var.data = var.chunk(dict(zip(var.dims, chunks))).data
        with warnings.catch_warnings(), dask.config.set(scheduler="synchronous"):
            # zarr warns that its string types and consolidated metadata are not in the v3
            # specification yet: they are zarr-python's and xarray's way to store them
            warnings.filterwarnings("ignore", message=".*Zarr V3 specification")
            warnings.filterwarnings("ignore", message=".*not part of the Zarr format 3")
            try:
                out.to_zarr(
                    dest,
                    mode=mode,
                    zarr_format=3,
                    consolidated=True,
                    storage_options=storage_options,
                )
            except (FileExistsError, zarr_contains_error()) as exc:
                raise StoreError(
                    f"{dest} already holds a Zarr store ({exc}). Nothing was written. Give "
                    "another destination, or overwrite=True (--overwrite) to replace it."
                ) from None


def zarr_contains_error() -> type[Exception]:
    """The exception zarr raises when a store to create already holds something."""
    with contextlib.suppress(ImportError, AttributeError):
        from zarr.errors import ContainsGroupError

        return ContainsGroupError
    return FileExistsError


def _grid_dims(ds: xr.Dataset) -> set[str]:
    """The parameter dims of a results file (its ``xsweep_parameters``)."""
    import json

    if FORMAT_ATTR not in ds.attrs:
        raise StoreError("the file is not an xsweep results file")
    return set(json.loads(ds.attrs[PARAMETERS_ATTR]))


def cell_chunks(shape: tuple[int, ...], grid: list[bool], itemsize: int) -> tuple[int, ...]:
    """Zarr chunks of a variable of ``shape``: whole cells, one per chunk if big.

    ``grid`` says which dims are parameters; the others (an output's own) are never split.
    Cells of ``BIG_CELL_BYTES`` or more get a chunk each; smaller ones are packed into
    chunks of about ``CHUNK_BYTES``, filling the last parameter dims first.

    Examples
    --------
    >>> from xsweep.store.export import cell_chunks
    >>> cell_chunks((10, 20, 480, 640, 3), [True, True, False, False, False], 1)
    (1, 1, 480, 640, 3)
    >>> cell_chunks((1000, 1000), [True, True], 8)
    (524, 1000)
    """
    cell = itemsize * int(np.prod([n for n, g in zip(shape, grid) if not g], dtype=np.int64))
    room = 1 if cell >= BIG_CELL_BYTES else max(1, CHUNK_BYTES // max(cell, 1))
    chunks = []
    for n, is_grid in zip(reversed(shape), reversed(grid)):
        if not is_grid:
            chunks.append(max(n, 1))
            continue
        take = max(1, min(n, room))
        chunks.append(take)
        room = room // n if take == n else 0
    return tuple(reversed(chunks))
