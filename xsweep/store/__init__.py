"""Result stores: the only package that knows NetCDF.

Two stores share one small interface that :mod:`xsweep.space` and :mod:`xsweep.execution`
talk to: :class:`MemoryStore` (no cache) and :class:`NetCDFStore` (one NetCDF4 file, the
artefact users share). A module per idea:

* ``schema``: status codes and the naming of a function's variables;
* ``table``: one function's results in numpy buffers (:class:`FunctionTable`);
* ``grid``: the union of a parameter's values in a file and in a space;
* ``memory``: the in-memory store and the checks every store shares;
* ``codec``: journal records of cells, encoded and applied;
* ``files``: file-system helpers (fsync, discard, what a failed write means);
* ``ncfile``: writing and reading whole NetCDF files (with netCDF4);
* ``staging``: big cells written straight into the next snapshot;
* ``netcdf``: :class:`NetCDFStore`, its write sessions, recorder and publishing;
* ``merge``: combining results files.

How the NetCDF store keeps every computed cell through any interruption is told in
:mod:`xsweep.store.netcdf`.
"""

from .memory import MemoryStore
from .merge import merge_stores
from .ncfile import file_attrs
from .netcdf import NetCDFStore, open_store
from .schema import (
    COMPUTED,
    DONE,
    FAILED,
    FLAG_MEANINGS,
    FLAG_VALUES,
    FORMAT_VERSION,
    NO_VALUE,
    NOT_COMPUTED,
    Coords,
    variable_prefix,
)
from .table import FunctionTable

__all__ = [
    "COMPUTED",
    "DONE",
    "FAILED",
    "FLAG_MEANINGS",
    "FLAG_VALUES",
    "FORMAT_VERSION",
    "NO_VALUE",
    "NOT_COMPUTED",
    "Coords",
    "FunctionTable",
    "MemoryStore",
    "NetCDFStore",
    "file_attrs",
    "merge_stores",
    "open_store",
    "variable_prefix",
]
