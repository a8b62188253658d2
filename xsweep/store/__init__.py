"""Result stores: the only package that knows NetCDF.

The layers above talk to a store through one narrow interface, :class:`Store` (``base``):
write sessions, a table per function, a recorder of cells, ``lookup`` of one cell after
every validity check, results, failures, clear, compact, close. Two stores implement it,
side by side over one table set (``tablestore``): :class:`MemoryStore` (no cache) and
:class:`NetCDFStore` (one NetCDF4 file, the artefact users share), whose file's lifecycle
is one object (``results_file``). A module per idea:

* ``base``: the interface (:class:`Store`, :class:`Recorder`, :data:`NOT_STORED`);
* the file's layout (status codes, variable and attribute names) is spelled once, in
  :mod:`xsweep.file_format`, below this package: ``outputs/`` writes attributes too;
* ``grid``: each parameter's values and attributes, and where a space's values sit in them;
* ``parts``: which cells part ``k`` of ``n`` holds, the record a file keeps of the part it
  was asked to compute, and the report of what a set of part files lacks;
* ``cells``: flat cell indices: runs and blocks of cells, hyper-slabs, raw writes of fills;
* ``buffers``: where an output's cells live, one interface (:class:`~.buffers.CellBuffer`):
  in memory (:class:`~.buffers.InMemory`, a numpy array) or kept on disk (``ondisk``);
* ``table``: one function's results, a buffer per output (:class:`FunctionTable`);
* ``tablestore``: the table set both stores share (a table per function, the checks of
  names and structures, reading cells) and the hooks each store implements;
* ``memory``: the in-memory store;
* ``journal``: the append-only journal file (framing, checksums, the header);
* ``codec``: journal records of cells, encoded and applied;
* ``replay``: replaying a journal onto its file's tables after a crash;
* ``locking``: the one-writer lock (``flock``, or a lock file where that is refused);
* ``lock_probe``: whether a file system refuses locks, or keeps them within one machine;
* ``hdf5_locking``: HDF5's own locks, set for file systems that refuse them;
* ``files``: file-system helpers (pwrite, fsync, discard, what a failed write means);
* ``durability``: when the file, the journal and their folder entries reach the disk;
* ``chars``: text as UTF-8 char arrays, which a virtual Zarr store can read;
* ``ncfile``: writing whole NetCDF files; ``ncread``: reading them back, checked;
* ``bigcells``: the layouts of outputs of big cells (images, fields) in a file;
* ``holes``: cells without a value in int and bool outputs, never read as a number;
* ``nclock``: the one process-wide lock every netCDF call holds (the libraries are not
  thread-safe), shared with xarray's own reads, and opening a file under it;
* ``staging``: big cells written straight into the next snapshot;
* ``results_file``: the results file's lifecycle: its identity as loaded, the journal
  writer, the staged file, the publish clock, durability, whether the file is current;
* ``netcdf``: :class:`NetCDFStore`: loading, write sessions, the store's verbs;
* ``recording``: the per-cell write path (a journal record, then the table);
* ``publishing``: replacing the file with a complete new snapshot;
* ``ondisk``: outputs kept on disk when they exceed the memory budget (``budget``);
* ``lazy``: results read from the file when indexed;
* ``opening``: opening a results file without a space (and part files, ``check_parts``);
* ``merge``: combining results files;
* ``export``: a results file copied to a Zarr v3 store; ``virtual``: a results file as a
  virtual Zarr dataset (VirtualiZarr), nothing copied.

Imports go one way: each module imports only modules listed before it (lowest
first; those on one line import none of each other)::

    files, journal, budget, grid, nclock, parts
    hdf5_locking
    lock_probe
    locking
    cells, durability
    holes, chars
    buffers
    ondisk
    table
    base, bigcells, codec
    tablestore, ncfile, ncread, replay
    memory, lazy, staging
    results_file
    publishing, recording
    netcdf
    opening
    merge, export, virtual

``docs/architecture.md`` tells how they fit; :mod:`xsweep.store.netcdf` how the NetCDF
store keeps every computed cell through any interruption.
"""

from ..file_format import (
    COMPUTED,
    DONE,
    FAILED,
    FLAG_MEANINGS,
    FLAG_VALUES,
    FORMAT_VERSION,
    NO_VALUE,
    NOT_COMPUTED,
    STATUS_COLUMNS,
    Coords,
    failed_rows,
    is_bookkeeping,
    status_counts,
    status_variables,
    variable_names,
    variable_prefix,
)
from .base import NOT_STORED, FunctionSummary, Peek, Recorder, Store
from .grid import Axis, Grid
from .holes import view_dtypes
from .memory import MemoryStore
from .merge import merge_stores
from .ncread import file_attrs
from .netcdf import NetCDFStore
from .opening import check_parts, open_store
from .parts import PartsReport, parts_report
from .table import FunctionTable

__all__ = [
    "COMPUTED",
    "DONE",
    "FAILED",
    "FLAG_MEANINGS",
    "FLAG_VALUES",
    "FORMAT_VERSION",
    "NOT_STORED",
    "NO_VALUE",
    "NOT_COMPUTED",
    "STATUS_COLUMNS",
    "Axis",
    "Coords",
    "Peek",
    "PartsReport",
    "FunctionSummary",
    "FunctionTable",
    "Grid",
    "MemoryStore",
    "NetCDFStore",
    "Recorder",
    "Store",
    "check_parts",
    "failed_rows",
    "file_attrs",
    "is_bookkeeping",
    "merge_stores",
    "open_store",
    "parts_report",
    "status_counts",
    "status_variables",
    "variable_names",
    "variable_prefix",
    "view_dtypes",
]
