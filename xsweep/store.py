"""Result stores: the only module that knows NetCDF.

Two stores share one small interface that :mod:`xsweep.space` and :mod:`xsweep.execution` talk
to:

* :class:`MemoryStore` holds a sweep's results in numpy buffers (no cache enabled).
* :class:`NetCDFStore` adds persistence to one NetCDF4 file, the artefact users share.

How the NetCDF store keeps every computed cell through any interruption:

* Live results sit in numpy buffers, one per output, plus a per-cell status (not computed,
  computed, failed), the seconds each cell took and the failure messages.
* Each finished cell is appended to ``<file>.journal`` as one framed, checksummed record written
  with a single ``os.write`` (see :mod:`xsweep.journal`): a killed process keeps every record
  written before the kill; ``fdatasync`` runs every ``fsync_interval`` seconds against power loss.
* A sweep of big cells (images) that will leave its grid mostly computed first writes the next
  snapshot next to the file, with those cells' places fixed, and writes each finished cell
  straight there; its journal record holds a checksum of the bytes (see "Staged files" below).
  Every byte of an image is thus written once, not to the journal and again to the file.
* The NetCDF file is only ever replaced whole: a complete new file is written next to it,
  fsynced and ``os.replace``-d over it, at the end of each write session (a sweep), whenever the
  journal outgrows the file, and on any change of layout. Readers therefore always see a
  complete file, and never block the writer (it holds no HDF5 handle on that file).
* Opening replays the journal onto the file when both belong to the same snapshot generation.
* A sweep's returned Dataset is the caller's: big results are handed over rather than copied,
  and the store reads them back from the file if it needs them again (``result``).
* ``<file>.lock`` (an ``flock``) admits one writer at a time; the kernel drops it when its
  holder dies, so a dead holder's lock is taken over.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import mmap
import os
import platform
import re
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr

from ._version import __version__
from .errors import (
    DamagedSideFileWarning,
    FunctionChangedError,
    StoreError,
    StoreMismatchError,
    StoreReadOnlyError,
    warn_user,
)
from .journal import (
    HEADER_LEN,
    JournalWriter,
    is_foreign,
    map_journal,
    open_side_file,
    read_header,
    read_records,
    sum64,
)
from .locking import WriterLock
from .outputs import OutputSpec, VariableSpec
from .text import clean_message, name_problem, text_problem

NOT_COMPUTED, COMPUTED, FAILED, NO_VALUE = 0, 1, 2, 3
FLAG_VALUES = np.array([NOT_COMPUTED, COMPUTED, FAILED, NO_VALUE], dtype=np.int8)
FLAG_MEANINGS = "not_computed computed failed computed_no_value"
#: Statuses of cells that are done: computed, with a value or without one (``None``).
DONE = (COMPUTED, NO_VALUE)
FORMAT_VERSION = "1"

#: Coordinates as the space hands them to a store: name -> (values, attrs), in dim order.
Coords = dict[str, tuple[np.ndarray, dict[str, Any]]]


def variable_prefix(fn_name: str) -> str:
    """The name a function's variables are made from: its ``__name__`` made NetCDF-safe.

    Examples
    --------
    >>> from xsweep.store import variable_prefix
    >>> variable_prefix("<lambda>")
    'lambda'
    """
    name = re.sub(r"\W+", "_", fn_name).strip("_")
    return name or "output"


# ---------------------------------------------------------------------------------------------
# One function's results in memory
# ---------------------------------------------------------------------------------------------
class FunctionTable:
    """The results of one function over its parameter dims, in flat numpy buffers.

    ``status``, ``seconds`` and each output buffer are indexed by the flat (C-order) cell
    index over ``dims``; output buffers have shape ``(ncells, *cell_shape)``.
    """

    def __init__(self, key: str, name: str, dims: tuple[str, ...], shape: tuple[int, ...]):
        self.key = key
        self.name = name
        self.dims = dims
        self.shape = shape
        self.size = int(np.prod(shape, dtype=np.int64))
        self.status = np.zeros(self.size, dtype=np.int8)
        self.seconds = np.full(self.size, np.nan, dtype=np.float32)
        self.errors: dict[int, str] = {}
        self.spec: OutputSpec | None = None
        self.buffers: tuple[np.ndarray, ...] = ()
        self.fingerprint: str | None = None
        self.history: list[str] = []  # earlier fingerprints whose cells were kept
        self._view: xr.Dataset | None = None
        #: The output buffers belong to a Dataset handed to the caller (see ``lend``).
        self.lent = False

    # names of the bookkeeping variables in the Dataset and the file
    @property
    def status_name(self) -> str:
        return f"{self.name}_status"

    @property
    def seconds_name(self) -> str:
        return f"{self.name}_seconds"

    @property
    def error_name(self) -> str:
        return f"{self.name}_error"

    @property
    def messages_name(self) -> str:
        return f"{self.name}_messages"

    @property
    def message_dim(self) -> str:
        return f"{self.name}_message"

    @property
    def own_names(self) -> tuple[str, ...]:
        """Every variable name this function owns in a Dataset."""
        outs = self.spec.names if self.spec else ()
        return (*outs, self.status_name, self.seconds_name, self.error_name, self.messages_name)

    def set_spec(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.buffers = tuple(_filled((self.size, *v.shape), v) for v in spec.variables)
        self._view = None

    def regrow(self, spec: OutputSpec) -> None:
        """Take a structure whose ragged outputs grew (see :func:`xsweep.outputs.grow_spec`).

        Every cell keeps its values, padded with the fill; an output that just became
        ragged gets its extent variable, which says the cells computed so far have the old
        shape.
        """
        old = {v.name: (v, buf) for v, buf in zip(self.spec.variables, self.buffers)}
        done = self.status == COMPUTED  # cells without a value keep the fill
        buffers = []
        for var in spec.variables:
            buf = _filled((self.size, *var.shape), var)
            if var.name in old:
                was, data = old[var.name]
                buf[(slice(None), *(slice(0, n) for n in was.shape))] = data
            else:  # the extent of an output that just became ragged: the old shape
                source = next(v for v in spec.variables if v.extent == var.name)
                buf[done] = old[source.name][0].shape
            buffers.append(buf)
        self.spec = spec
        self.buffers = tuple(buffers)
        self._view = None

    def put(self, index: int, values: tuple[Any, ...], seconds: float) -> None:
        for buf, value in zip(self.buffers, values):
            buf[index] = value
        self.status[index] = COMPUTED
        self.seconds[index] = seconds
        if self.errors:
            self.errors.pop(index, None)

    def put_none(self, index: int, seconds: float) -> None:
        """The function returned None: computed, no value (outputs hold their fill)."""
        if self.spec is not None:
            for var, buf in zip(self.spec.variables, self.buffers):
                buf[index] = var.fill
        self.status[index] = NO_VALUE
        self.seconds[index] = seconds
        if self.errors:
            self.errors.pop(index, None)

    def put_failure(self, index: int, message: str, seconds: float) -> None:
        if self.spec is not None:
            for var, buf in zip(self.spec.variables, self.buffers):
                buf[index] = var.fill
        self.status[index] = FAILED
        self.seconds[index] = seconds
        self.errors[index] = message

    def clear(self) -> None:
        self.status[:] = NOT_COMPUTED
        self.seconds[:] = np.nan
        self.errors.clear()
        if self.spec is not None:
            for var, buf in zip(self.spec.variables, self.buffers):
                buf[...] = var.fill

    def regrid(
        self,
        dims: tuple[str, ...],
        shape: tuple[int, ...],
        positions: dict[str, np.ndarray],
        fixed: dict[str, int],
    ) -> None:
        """Move every cell to a new grid: other values, other dim order, or added dims.

        ``positions[d][i]`` is the new index of old index ``i`` along ``d`` (identity when
        absent); ``fixed[d]`` is the index along an added dim ``d`` at which the existing
        cells were computed. New cells are not computed.
        """
        order = [self.dims.index(d) for d in dims if d in self.dims]
        # Added dims are fixed at one index (basic indexing: a view); the others get their
        # old cells placed at new positions with outer (np.ix_) indexing.
        head = tuple(fixed[d] if d in fixed else slice(None) for d in dims)
        outer = np.ix_(
            *[positions.get(d, np.arange(n)) for d, n in zip(dims, shape) if d not in fixed]
        )
        size = int(np.prod(shape, dtype=np.int64))
        ndim = len(self.shape)

        def move(flat: np.ndarray, fill: Any, cell_shape: tuple[int, ...] = ()) -> np.ndarray:
            old = flat.reshape(self.shape + cell_shape)
            old = old.transpose(*order, *range(ndim, ndim + len(cell_shape)))
            new = (
                np.zeros(shape + cell_shape, dtype=flat.dtype)
                if isinstance(fill, int) and fill == 0
                else np.full(shape + cell_shape, fill, dtype=flat.dtype)
            )
            new[head][outer] = old
            return new.reshape((size, *cell_shape))

        codes_old = dict(self.errors)
        self.status = move(self.status, NOT_COMPUTED)
        self.seconds = move(self.seconds, np.nan)
        if self.spec is not None:
            self.buffers = tuple(
                move(buf, var.fill, var.shape)
                for var, buf in zip(self.spec.variables, self.buffers)
            )
        if codes_old:
            flat_old = np.fromiter(codes_old, dtype=np.int64)
            marker = np.full(self.size, -1, dtype=np.int64)
            marker[flat_old] = np.arange(flat_old.size)
            moved = move(marker, -1)
            messages = list(codes_old.values())
            self.errors = {int(i): messages[m] for i, m in enumerate(moved) if m >= 0}
        self.dims, self.shape, self.size = dims, shape, size
        self._view = None

    def take(self, dim: str, keep: np.ndarray) -> None:
        """Keep only the cells at indices ``keep`` along ``dim`` (in that order)."""
        axis = self.dims.index(dim)
        shape = list(self.shape)
        shape[axis] = len(keep)
        shape = tuple(shape)
        size = int(np.prod(shape, dtype=np.int64))

        def cut(flat: np.ndarray, cell_shape: tuple[int, ...] = ()) -> np.ndarray:
            grid = flat.reshape(self.shape + cell_shape)
            return np.ascontiguousarray(np.take(grid, keep, axis=axis)).reshape((size, *cell_shape))

        marker = np.full(self.size, -1, dtype=np.int64)
        old_errors = list(self.errors.items())
        for n, (index, _) in enumerate(old_errors):
            marker[index] = n
        self.status = cut(self.status)
        self.seconds = cut(self.seconds)
        if self.spec is not None:
            self.buffers = tuple(
                cut(buf, var.shape) for var, buf in zip(self.spec.variables, self.buffers)
            )
        moved = cut(marker)
        self.errors = {int(i): old_errors[m][1] for i, m in enumerate(moved) if m >= 0}
        self.shape, self.size = shape, size
        self._view = None

    def error_codes(self) -> tuple[np.ndarray, list[str]]:
        """Per-cell error codes (0: none, k: ``messages[k-1]``) and the distinct messages."""
        codes = np.zeros(self.size, dtype=np.int32)
        messages: list[str] = []
        number: dict[str, int] = {}
        for index, msg in self.errors.items():
            if msg not in number:
                messages.append(msg)
                number[msg] = len(messages)
            codes[index] = number[msg]
        return codes, messages

    # -- xarray views -------------------------------------------------------------------------
    def output_view(self, coords: Coords) -> xr.Dataset:
        """A Dataset of the outputs sharing memory with the buffers (for ``.sel`` reads)."""
        if self._view is None:
            self._view = xr.Dataset(self._output_vars(coords, copy=False), self._coords(coords))
        return self._view

    def lend(self, coords: Coords) -> xr.Dataset:
        """A Dataset that takes over the output buffers, for a caller to own.

        The table must get buffers of its own (``NetCDFStore`` reads them back from its
        file) before it uses them again: the caller may change the Dataset in place.
        """
        ds = self.to_dataset(coords, copy=False)
        self.lent = True
        self._view = None
        return ds

    def to_dataset(self, coords: Coords, copy: bool = True) -> xr.Dataset:
        """A Dataset of everything this function holds (detached from the buffers if ``copy``)."""
        data_vars = self._output_vars(coords, copy=copy)
        codes, messages = self.error_codes()
        data_vars.update(self._bookkeeping_vars(codes, messages))
        return xr.Dataset(data_vars, self._coords(coords))

    def _coords(self, coords: Coords) -> dict[str, xr.Variable]:
        out = {d: xr.Variable(d, coords[d][0], coords[d][1]) for d in self.dims}
        if self.spec is not None:
            for var in self.spec.variables:
                out.update(var.coords)
        return out

    def _output_vars(self, coords: Coords, copy: bool) -> dict[str, xr.Variable]:
        out = {}
        if self.spec is None:
            return out
        for var, buf in zip(self.spec.variables, self.buffers):
            arr = buf.reshape(self.shape + var.shape)
            if var.dtype == object:
                arr = arr.astype(str)
            elif copy:
                arr = arr.copy()
            attrs = dict(var.attrs)
            out[var.name] = xr.Variable(self.dims + var.dims, arr, attrs)
        return out

    def _bookkeeping_vars(self, codes: np.ndarray, messages: list[str]) -> dict[str, xr.Variable]:
        return {
            self.status_name: xr.Variable(
                self.dims, self.status.reshape(self.shape).copy(), self.status_attrs()
            ),
            self.seconds_name: xr.Variable(
                self.dims, self.seconds.reshape(self.shape).copy(), self.seconds_attrs()
            ),
            self.error_name: xr.Variable(self.dims, codes.reshape(self.shape), self.error_attrs()),
            self.messages_name: xr.Variable(
                f"{self.name}_message",
                np.array(messages, dtype=str if messages else "<U1"),
                {"long_name": f"distinct error messages of {self.key}"},
            ),
        }

    def status_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "long_name": f"computation status of {self.key}",
            "flag_values": FLAG_VALUES,
            "flag_meanings": FLAG_MEANINGS,
            "xsweep_function": self.key,
            "xsweep_name": self.name,
        }
        if self.spec is not None:
            attrs["xsweep_kind"] = self.spec.kind
            attrs["xsweep_outputs"] = json.dumps(list(self.spec.names))
        if self.fingerprint is not None:
            attrs["xsweep_fingerprint"] = self.fingerprint
        if self.history:
            attrs["xsweep_kept_fingerprints"] = json.dumps(self.history)
            attrs["comment"] = (
                "Some cells were computed by earlier versions of the function's code, kept on "
                "purpose (on_change='keep'); their fingerprints are in xsweep_kept_fingerprints."
            )
        return attrs

    def seconds_attrs(self) -> dict[str, Any]:
        return {"long_name": f"time taken to compute each cell of {self.key}", "units": "s"}

    def error_attrs(self) -> dict[str, Any]:
        return {
            "long_name": f"error raised by each failed cell of {self.key}",
            "description": f"0 where the cell did not fail; k > 0 means message k of "
            f"{self.messages_name} (1-based)",
        }


def _same_structure(a: OutputSpec, b: OutputSpec) -> bool:
    def shape(spec: OutputSpec) -> list:
        return [(v.name, v.dtype, v.shape, v.dims, v.scalar) for v in spec.variables]

    return a.kind == b.kind and shape(a) == shape(b)


def _filled(shape: tuple[int, ...], var: VariableSpec) -> np.ndarray:
    if var.fill == 0:
        return np.zeros(shape, dtype=var.dtype)  # lazily zeroed pages: no pass over memory
    return np.full(shape, var.fill, dtype=var.dtype)


# ---------------------------------------------------------------------------------------------
# The in-memory store
# ---------------------------------------------------------------------------------------------
class MemoryStore:
    """Results kept in memory only; the store of a sweep with no cache enabled.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.store import MemoryStore
    >>> store = MemoryStore({"a": (np.array([1, 2]), {})})
    >>> table = store.table("m:f", "f", ("a",))
    >>> table.shape
    (2,)
    """

    persistent = False
    path: str | None = None

    def __init__(self, coords: Coords) -> None:
        self.coords = coords
        self.tables: dict[str, FunctionTable] = {}
        #: Per parameter, the store index of each of the space's values.
        self.index_map = {d: np.arange(len(v)) for d, (v, _) in coords.items()}
        #: Values at which cells stored before a parameter existed were computed.
        self.computed_at: dict[str, Any] = {}

    def table(
        self,
        key: str,
        name: str,
        dims: tuple[str, ...],
        fingerprint: str | None = None,
        on_change: str = "raise",
    ) -> FunctionTable:
        """The results of function ``key`` over ``dims``, created empty if new.

        ``fingerprint`` identifies the function's version; when the stored one differs,
        ``on_change`` decides: ``"raise"`` (an error with the ways out), ``"keep"`` (keep the
        old cells, noted in the file) or ``"recompute"`` (forget them).
        """
        table = self.tables.get(key)
        if table is None:
            self._check_new_name(key, name)
            shape = tuple(len(self.coords[d][0]) for d in dims)
            table = FunctionTable(key, name, dims, shape)
            table.fingerprint = fingerprint
            self.tables[key] = table
            self._layout_changed()
            return table
        if table.dims != dims:
            self._conform(table, dims)
        if fingerprint is not None and table.fingerprint not in (None, fingerprint):
            self._function_changed(table, fingerprint, on_change)
        elif fingerprint is not None and table.fingerprint is None:
            table.fingerprint = fingerprint
            self._layout_changed()
        return table

    def _function_changed(self, table: FunctionTable, fingerprint: str, on_change: str) -> None:
        if on_change == "raise":
            raise FunctionChangedError(
                f"{self._where()} holds results of {table.key} computed by a different version "
                f"of its code, or of another function named {table.name!r} (fingerprint "
                f"{table.fingerprint}, now {fingerprint}; the fingerprint covers the code, the "
                "globals it reads and the helpers it calls). Choose: recompute them (sweep "
                "with force_recompute=True, or ps.clear_cache(fn)); keep them as valid for the "
                "new code (sweep with on_change='keep', recorded in the file); declare "
                "versions yourself with @xs.version('...') so that only a version you change "
                "counts; or, for another function with the same name (two lambdas), give it "
                "its own: ps.sweep(fn, name='...')."
            )
        if on_change == "keep":
            table.history.append(table.fingerprint)
        else:
            table.clear()
        table.fingerprint = fingerprint
        self._layout_changed()

    def _conform(self, table: FunctionTable, dims: tuple[str, ...]) -> None:
        """Bring a table stored over other dims to ``dims`` (reordered or with new params)."""
        old, new = set(table.dims), set(dims)
        added = [d for d in dims if d not in old]
        missing = [d for d in added if d not in self.computed_at]
        if not old <= new or missing:
            dropped = sorted(old - new)
            if dropped:
                why = (
                    f"it no longer takes {dropped}, and its stored cells differ along "
                    f"{'it' if len(dropped) == 1 else 'them'}"
                )
                fix = "Clear them with ps.clear_cache(fn) or use another cache path."
            else:
                example = ", ".join(f"{d!r}: <value>" for d in missing)
                why = f"the stored cells were computed before {missing} existed"
                fix = (
                    "If they were computed at one value of each new parameter (say its "
                    f"default), declare it: ps.enable_cache(path, computed_at={{{example}}}). "
                    "Otherwise clear them with ps.clear_cache(fn) or use another cache path."
                )
            raise StoreMismatchError(
                f"{self._where()} holds results of {table.key} over the parameters "
                f"{list(table.dims)}, but the function now takes {list(dims)}: {why}. {fix}"
            )
        fixed = {}
        for d in added:
            values = self.coords[d][0]
            hits = np.flatnonzero(values == np.asarray(self.computed_at[d], dtype=values.dtype))
            if not hits.size:
                raise StoreMismatchError(
                    f"computed_at[{d!r}] = {self.computed_at[d]!r} is not one of the values of "
                    f"parameter {d!r}: {_short(values)}."
                )
            fixed[d] = int(hits[0])
        shape = tuple(len(self.coords[d][0]) for d in dims)
        table.regrid(dims, shape, {}, fixed)
        self._layout_changed()

    def set_spec(self, table: FunctionTable, spec: OutputSpec) -> None:
        """Fix the output structure of ``table`` (the first successful cell's).

        A table that has a structure already keeps it (and its cells) when ``spec`` is the
        same; a different one (a whole-grid recompute of an edited function) replaces it,
        and the old cells, which cannot hold the new structure, count as not computed.
        """
        if table.spec is not None and _same_structure(table.spec, spec):
            return
        self._check_spec(table, spec)
        if table.spec is not None:
            table.clear()
        table.set_spec(spec)
        self._layout_changed()

    def grow_spec(self, table: FunctionTable, spec: OutputSpec) -> None:
        """Give ``table`` a structure whose ragged outputs grew; its cells keep their values."""
        self._check_spec(table, spec)
        table.regrow(spec)
        self._layout_changed()

    @contextlib.contextmanager
    def writing(self, publish: bool = True) -> Iterator[None]:
        """A write session (a sweep, or one ``run_process`` write)."""
        yield

    def recorder(self, table: FunctionTable, expect: int = 0):
        """``(record, record_failure)`` callables for the per-cell hot path.

        ``expect``: how many of ``table``'s cells will be computed when the write session
        ends if every cell succeeds (a hint for the file layout).
        """
        return table.put, table.put_failure, table.put_none

    def result(self, table: FunctionTable) -> xr.Dataset:
        """``table``'s results as a Dataset the caller owns (call after the write session).

        An in-memory store is never written again, so its buffers are shared, not copied.
        """
        return table.to_dataset(self.coords, copy=False)

    def reclaim(self) -> None:
        """Make sure every table's buffers are the store's own, before reading them."""

    def clear(self, key: str | None = None) -> None:
        """Forget functions' results, fingerprints and output structures entirely."""
        for table in self._select(key):
            del self.tables[table.key]
        self._layout_changed()

    def close(self) -> None:
        pass

    # -- checks -------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"The cache file {self.path}" if self.path else "This sweep"

    def _select(self, key: str | None) -> list[FunctionTable]:
        if key is None:
            return list(self.tables.values())
        return [self.tables[key]] if key in self.tables else []

    def _layout_changed(self) -> None:
        pass

    def _taken_names(self, exclude: str) -> dict[str, str]:
        """Every variable and dim name in the file, mapped to what uses it.

        Variables and dims share one namespace in a NetCDF file (a dim may only share its
        name with its own coordinate variable), so both are listed.
        """
        taken = {name: f"parameter {name!r}" for name in self.coords}
        for table in self.tables.values():
            if table.key == exclude:
                continue
            for n in (*table.own_names, table.message_dim):
                taken[n] = f"function {table.key}"
            if table.spec is not None:
                for var in table.spec.variables:
                    for d in var.dims:
                        taken.setdefault(d, f"an output dim of {table.key}")
                    for c in var.coords:
                        taken.setdefault(c, f"an output coordinate of {table.key}")
        return taken

    def _check_new_name(self, key: str, name: str) -> None:
        for table in self.tables.values():
            if table.name == name:
                raise StoreMismatchError(
                    f"{self._where()} already holds results of function {table.key} under the "
                    f"name {name!r}; function {key} has the same name and would mix with them. "
                    "Rename one of the functions, or use another cache path."
                )
        taken = self._taken_names(key)
        probe = FunctionTable(key, name, (), ())
        for n in (*probe.own_names, probe.message_dim):
            problem = name_problem(n)
            if problem:
                raise StoreMismatchError(
                    f"The results of {key} would be stored as {n!r:.80}, which {problem}. "
                    "Give the function a shorter name."
                )
            if n in taken:
                raise StoreMismatchError(
                    f"The results of {key} need the name {n!r} in {self._where_short()}, but "
                    f"{taken[n]} uses it already. Rename the function or that "
                    f"{'parameter' if n in self.coords else 'function'}."
                )

    def _where_short(self) -> str:
        return "the cache file" if self.path else "the results"

    def _check_spec(self, table: FunctionTable, spec: OutputSpec) -> None:
        taken = self._taken_names(table.key)
        own = {
            table.status_name,
            table.seconds_name,
            table.error_name,
            table.messages_name,
            table.message_dim,
        }
        dim_sizes = self._dim_sizes(exclude=table.key)
        names = set(spec.names)
        for var in spec.variables:
            owner = taken.get(var.name) or ("its own status variables" if var.name in own else None)
            if owner is not None:
                raise StoreMismatchError(
                    f"{table.key} returns an output named {var.name!r}, but that name is already "
                    f"used by {owner}. Two variables never share a "
                    "name: rename the output (return a dict with another key) or the function."
                )
            for dim, n in zip(var.dims, var.shape):
                if dim in self.coords:
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has a dim named {dim!r}, which is a "
                        "parameter. Name the output's dims differently with output_dims=."
                    )
                clash = dim in own or dim in names or (
                    dim in taken and dim not in dim_sizes
                )
                if clash:
                    user = taken.get(dim) or (
                        f"output {dim!r}" if dim in names else f"a status variable of {table.key}"
                    )
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has a dim named {dim!r}, but "
                        f"{user} uses that name. Name the output's dims differently with "
                        "output_dims=."
                    )
                if dim in dim_sizes and dim_sizes[dim] != n:
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has dim {dim!r} of length {n}, but "
                        f"another function's output has it with length {dim_sizes[dim]}. Name "
                        "the dims differently with output_dims=."
                    )
            for cname in var.coords:
                if cname not in var.dims and (cname in taken or cname in own or cname in names):
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has a coordinate named {cname!r}, "
                        f"but {taken.get(cname, 'another variable')} uses that name. Rename "
                        "the coordinate."
                    )
            for attr, value in var.attrs.items():
                problem = name_problem(attr) if isinstance(attr, str) else "is not a string"
                if problem:
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has an attribute named "
                        f"{attr!r:.80}, which {problem}. Rename or drop the attribute."
                    )
                if isinstance(value, str) and text_problem(value):
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has attribute {attr!r}, whose text "
                        f"{text_problem(value)}. Remove or replace that character."
                    )
                if not isinstance(value, (str, int, float, np.number, np.ndarray, list, tuple)):
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has attribute {attr!r} of type "
                        f"{type(value).__name__}, which a NetCDF file cannot hold. Use strings, "
                        "numbers or lists of numbers as attribute values."
                    )

    def _dim_sizes(self, exclude: str) -> dict[str, int]:
        sizes = {}
        for table in self.tables.values():
            if table.key != exclude and table.spec is not None:
                for var in table.spec.variables:
                    sizes.update(zip(var.dims, var.shape))
        return sizes


# ---------------------------------------------------------------------------------------------
# The NetCDF store
# ---------------------------------------------------------------------------------------------
class NetCDFStore(MemoryStore):
    """Results persisted in one NetCDF4 file, crash-safe (see the module docstring).

    Parameters
    ----------
    path : str
        The NetCDF file. Sidecars ``<path>.journal`` and ``<path>.lock`` live next to it
        while a sweep runs or results await publishing.
    coords : dict
        The space's parameters, ``name -> (values, attrs)``.
    fsync_interval : float or None
        Seconds between flushes of the journal to stable storage: the most a power loss or OS
        crash can cost. 0 flushes after every cell; None only when a snapshot is published.
    computed_at : dict, optional
        Values of parameters added since results were stored, at which those were computed.
    snapshot_interval : float
        During a sweep, publish the file at least this often (seconds), so that readers see
        progress; never more often than 20 times the time a publish takes.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from xsweep.store import NetCDFStore
    >>> path = os.path.join(tempfile.mkdtemp(), "r.nc")
    >>> store = NetCDFStore(path, {"a": (np.array([1, 2]), {})})
    >>> store.path.endswith("r.nc")
    True
    """

    persistent = True

    def __init__(
        self,
        path: str,
        coords: Coords | None,
        *,
        fsync_interval: float | None = 1.0,
        computed_at: dict[str, Any] | None = None,
        snapshot_interval: float = 60.0,
    ):
        super().__init__(coords or {})
        self.snapshot_interval = snapshot_interval
        self.space_coords: Coords = dict(coords or {})
        self.computed_at = dict(computed_at or {})
        self.path = os.path.abspath(os.fspath(path))
        self.journal_path = self.path + ".journal"
        self.fsync_interval = fsync_interval
        self._lock = WriterLock(self.path + ".lock", self.path)
        self._writer: JournalWriter | None = None
        self._in_session = False
        self._threads = threading.RLock()
        self._layout_dirty = False
        self._generation: str | None = None
        self._signature: tuple | None = None
        self._journal_seen = 0
        self._journal_good = 0  # end of the journal's last intact record
        self._file_coords: Coords = {}
        self._created: str | None = None
        self._slots: dict[str, int] = {}
        self._published_at = time.monotonic()
        self._publish_seconds = 0.0
        self._unsynced = False  # the file holds no results yet and is not fsynced
        self._stage: _Stage | None = None  # this session's staged file
        self._journal_stage: str | None = None  # the staged file the journal's records use
        self._session_publish = False
        self._epoch = 0  # counts publishes: recorders start again after each
        #: Why this session cannot write (the folder is read-only), or None.
        self._read_only: str | None = None
        self._load()

    # -- loading ------------------------------------------------------------------------------
    def _file_signature(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _journal_size(self) -> int:
        try:
            return os.lstat(self.journal_path).st_size  # never follow a planted link
        except FileNotFoundError:
            return 0

    def _load(self) -> None:
        self._journal_stage = None
        self.tables = {}
        self._file_coords = {}
        self._generation = None
        self._created = None
        self._layout_dirty = False
        signature = self._file_signature()
        if signature is None:
            self._signature = None
            self._journal_seen = self._journal_size()
            self._journal_good = 0  # an orphan journal: removed when a session starts
            self.coords = dict(self.space_coords)
            self.index_map = {d: np.arange(len(v)) for d, (v, _) in self.coords.items()}
            return
        _read_file(self)
        self._signature = signature
        self.coords = dict(self._file_coords)
        self._slots = {key: i for i, key in enumerate(self.tables)}
        self._journal_seen = self._replay()  # journal indices refer to the file's grid
        self._merge_grid()

    def _merge_grid(self) -> None:
        """Make the store's grid the union of the file's and the space's values.

        Values the space adds get new, not computed cells; values it lacks stay in the file
        with their results. Nothing reaches the file until the next write.
        """
        self.index_map = {}
        for name, (values, attrs) in self.space_coords.items():
            if name not in self.coords:
                self.coords[name] = (values, attrs)
                self.index_map[name] = np.arange(len(values))
                continue
            file_values = self.coords[name][0]
            union, positions = _union(self.path, name, file_values, values)
            # Metadata only a file has is kept; where both say something, the space wins.
            self.coords[name] = (union, {**self.coords[name][1], **attrs})
            lookup = {v: i for i, v in enumerate(union.tolist())}
            self.index_map[name] = np.array([lookup[v] for v in values.tolist()], dtype=np.int64)
            if positions is not None:
                for table in self.tables.values():
                    if name in table.dims:
                        shape = tuple(len(self.coords[d][0]) for d in table.dims)
                        table.regrid(table.dims, shape, {name: positions}, {})
                self._layout_dirty = True

    def _replay(self) -> int:
        """Apply the journal's records to the loaded tables; return the journal size seen.

        The journal may be damaged or crafted (it travels with a shared file): its header is
        checked before anything else is read; a record that passes its checksum but does not
        decode to a valid cell is skipped with a warning (the next writer's publish drops
        it); a record naming a staged file is followed only to a file xsweep made next to
        the store. Nothing in it can make an open fail.
        """
        self._journal_good = 0
        data, size = map_journal(self.journal_path, self._generation)
        if data is None:
            if is_foreign(self.journal_path):
                warn_user(
                    f"{self.journal_path} is not a regular file (a link, a folder or a device) "
                    "and was ignored: xsweep never follows links next to a results file. The "
                    "next sweep into this file replaces it (a folder must be moved away).",
                    DamagedSideFileWarning,
                )
            # Written against an older snapshot (which the file already contains), or empty.
            return size
        tables = list(self.tables.values())
        decoders = [_Codec(t, i) for i, t in enumerate(tables)]
        self._journal_good = HEADER_LEN
        opened: list[int] = []
        skipped: list[str] = []
        try:
            for end, payload in read_records(data, HEADER_LEN):
                try:
                    slot = _SLOT.unpack_from(payload)[0]
                    if slot == CONTROL_SLOT:
                        fd = self._open_stage(payload, decoders)
                        if fd is None:
                            break  # cells staged in a file that is gone: not recoverable
                        opened.append(fd)
                    elif slot >= len(decoders):
                        raise _Malformed(f"function slot {slot} does not exist")
                    elif not decoders[slot].apply(payload):
                        break
                except _RECORD_ERRORS as exc:
                    skipped.append(f"at byte {end - len(payload)}: {exc}")
                self._journal_good = end
        finally:
            for fd in opened:
                os.close(fd)
            if isinstance(data, mmap.mmap):
                data.close()
        if skipped:
            warn_user(
                f"{self.journal_path} holds {len(skipped)} damaged record(s) that were skipped "
                f"(first {skipped[0]}). Every other record was read; the cells they "
                "described count as not computed and the next sweep computes them again.",
                DamagedSideFileWarning,
            )
        return size

    def _open_stage(self, payload: bytes, decoders: list[_Codec]) -> int | None:
        """Check a control record and open the staged file it names (None: file is gone).

        Raises ``_Malformed`` unless the record names ``<file>.xsweep-stage-<hex id>`` in
        the store's own folder and places that fit the function's big outputs.
        """
        info = json.loads(payload[_HEAD.size :].decode("utf-8"))
        if not isinstance(info, dict):
            raise _Malformed("a control record that is not a JSON object")
        name, slot, places = info.get("file"), info.get("slot"), info.get("places")
        prefix = os.path.basename(self.path) + ".xsweep-stage-"
        if not (
            isinstance(name, str)
            and name.startswith(prefix)
            and _STAGE_ID.fullmatch(name[len(prefix) :])
        ):
            raise _Malformed(f"a control record naming {name!r}, not a staged file of this store")
        if type(slot) is not int or not 0 <= slot < len(decoders):
            raise _Malformed(f"a control record for function slot {slot!r}")
        table = decoders[slot].table
        if table.spec is None or not isinstance(places, dict):
            raise _Malformed("a control record without places")
        checked: dict[int, tuple[int, int]] = {}
        for key, place in places.items():
            i = int(key)
            var = table.spec.variables[i] if 0 <= i < len(table.spec.variables) else None
            if (
                var is None
                or not _is_big(var)
                or not isinstance(place, list)
                or len(place) != 2
                or not all(type(x) is int for x in place)
                or place[0] < 0
                or place[1] != var.dtype.itemsize * int(np.prod(var.shape))
            ):
                raise _Malformed(f"a control record with place {key!r}: {place!r}")
            checked[i] = (place[0], place[1])
        path = os.path.join(os.path.dirname(self.path), name)
        fd = open_side_file(path)
        if fd is None:
            return None
        self._journal_stage = path
        decoders[slot].staged(fd, checked)
        return fd

    # -- write sessions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, publish: bool = True) -> Iterator[None]:
        """Hold the writer lock for a sweep (``publish=True``) or a single write.

        On entry, results another writer published since we loaded are read back in. On exit
        the results are published as a new complete file (``publish=True``, or when the
        journal has grown past the file), the journal is removed, and the lock released.
        """
        with self._threads:  # a notebook view's thread and the main thread take turns
            if self._in_session:  # nested (run_process inside a sweep): already writing
                yield
                return
            with self._session(publish):
                yield

    @contextlib.contextmanager
    def _session(self, publish: bool) -> Iterator[None]:
        try:
            self._lock.acquire()
            self._read_only = None
        except StoreReadOnlyError as exc:
            # A shared file in a folder we cannot write: reading it needs no lock (files are
            # only ever replaced whole), writing anything raises (see _check_writable).
            self._read_only = str(exc)
        self._in_session = True
        self._session_publish = publish
        try:
            if (
                self._file_signature() != self._signature
                or self._journal_size() != self._journal_seen
            ):
                self._load()
            if self._read_only is None:
                self._clean_temp_files()
                if (
                    os.path.lexists(self.journal_path)
                    and read_header(self.journal_path) != self._generation
                ):
                    # Left by a process killed mid-publish (the file already holds its
                    # records), killed while creating it (no complete header, so no records),
                    # without a file to replay onto, or not a journal at all (a link): nothing
                    # in it can be replayed.
                    self._remove_journal()
                    self._journal_seen = self._journal_good = 0
            self._reclaim()
            ok = False
            try:
                yield
                ok = True
            finally:
                if self._read_only is not None:
                    # Nothing was written (_check_writable stopped every write); a failed
                    # session's in-memory changes go, as below.
                    if not ok:
                        self._roll_back()
                elif not ok and self._writer is None:
                    self._roll_back()
                else:
                    self._end_session(publish or not ok)
        finally:
            self._in_session = False
            self._lock.release()

    def _remove_journal(self) -> None:
        try:
            _unlink(self.journal_path)
        except OSError as exc:  # a folder planted under the journal's name, say
            raise StoreError(
                f"{self.journal_path} is in the way ({exc.strerror}): it is not a journal "
                "xsweep wrote, and it was not touched. Move it away and try again."
            ) from None

    def _roll_back(self) -> None:
        """Forget a failed session that recorded nothing: the file stays byte-identical.

        The session may have added a table or an output structure for a function whose
        first cell was then refused (a bad return value, a name clash); publishing that
        would leave an empty table behind, and keep the refused structure.
        """
        if not self._layout_dirty:
            return
        try:
            self._load()
        except Exception:
            self._signature = None  # reloaded at the start of the next session

    def _check_writable(self) -> None:
        if self._read_only is not None:
            raise StoreReadOnlyError(self._read_only)

    def _end_session(self, publish: bool) -> None:
        writer = self._writer
        # Records may also come from earlier run_process writes or a killed writer's journal.
        dirty = (writer.size if writer is not None else self._journal_size()) > HEADER_LEN
        if self._layout_dirty or (dirty and (publish or self._journal_outgrown())):
            self._publish()
        writer = self._writer
        self._writer = None
        if writer is not None:
            writer.close()
            if writer.size <= HEADER_LEN:
                _unlink(self.journal_path)
        self._journal_seen = self._journal_size()
        self._journal_good = self._journal_seen  # we appended whole records only

    def _journal_outgrown(self) -> bool:
        size = self._writer.size if self._writer else 0
        return size > self._journal_limit()

    def _journal_limit(self) -> int:
        """Journal size that triggers a publish: the size of the results it would hold.

        Keeping the journal at most as big as the data bounds replay time and disk use, and
        costs at most one extra write of the data; measuring the data (not the file, which
        is sparse for big cells) keeps that from happening over and over as the file grows.
        """
        data = sum(
            buf.nbytes + table.status.nbytes + table.seconds.nbytes
            for table in self.tables.values()
            for buf in table.buffers
        )
        return max(data, 64 << 20)

    def _open_journal(self) -> JournalWriter:
        """The session's journal, publishing first any layout the file does not hold yet."""
        if self._layout_dirty or self._generation is None:
            self._publish()
        if self._writer is None:
            size = self._journal_size()
            if size and read_header(self.journal_path) != self._generation:
                # A torn header (a crash while creating it), another snapshot's journal or
                # not a journal at all: nothing in it can be replayed onto this file.
                self._remove_journal()
            elif size > self._journal_good:
                # A torn record left by a crash: cut it off, or replay would stop there and
                # never reach what we append after it.
                os.truncate(self.journal_path, self._journal_good)
            self._writer = JournalWriter(self.journal_path, self._generation, self.fsync_interval)
            self._writer.before_sync = self._make_durable
        return self._writer

    def recorder(self, table: FunctionTable, expect: int = 0):
        self._check_writable()  # before any cell is computed, not after
        store = self
        state: dict[str, Any] = {}

        def start() -> None:
            # Again after every publish: a new journal, and perhaps a new staged file.
            try:
                store._open_journal()
                stage = store._stage
                if stage is None and store._want_stage(table, expect):
                    stage = store._begin_stage(table)
                elif stage is not None and stage.table is not table:
                    stage.finalizable = False  # another function's cells are not in it
            except StoreError:
                raise
            except OSError as exc:
                raise store._journal_error(exc) from exc
            if stage is not None and stage.table is table:
                codec = _Codec(table, store._slots[table.key], stage.fd, stage.places)
            else:
                codec = _Codec(table, store._slots[table.key])
            state["encode"], state["encode_failure"] = codec.encode, codec.encode_failure
            state["encode_none"] = codec.encode_none
            state["epoch"] = store._epoch
            store._publish_at = store._journal_limit()
            store._writer.on_sync = store._maybe_publish_soon

        put, put_failure = table.put, table.put_failure

        def record(index: int, values: tuple, seconds: float) -> None:
            if state.get("epoch") != store._epoch:
                start()
            writer = store._writer
            try:
                writer.append(state["encode"](index, values, seconds))
            except StoreError:
                raise
            except OSError as exc:
                raise store._journal_error(exc) from exc
            put(index, values, seconds)
            if writer.size > store._publish_at:
                store._rotate()

        def record_failure(index: int, message: str, seconds: float) -> None:
            if state.get("epoch") != store._epoch:
                start()
            try:
                store._writer.append(state["encode_failure"](index, message, seconds))
            except StoreError:
                raise
            except OSError as exc:
                raise store._journal_error(exc) from exc
            put_failure(index, message, seconds)

        def record_none(index: int, seconds: float) -> None:
            if state.get("epoch") != store._epoch:
                start()
            try:
                store._writer.append(state["encode_none"](index, seconds))
            except StoreError:
                raise
            except OSError as exc:
                raise store._journal_error(exc) from exc
            table.put_none(index, seconds)

        return record, record_failure, record_none

    def result(self, table: FunctionTable) -> xr.Dataset:
        """The caller's own copy of ``table``'s results.

        When the file holds exactly what memory holds (just published, nothing journaled
        since: the end of every sweep), the caller takes over the buffers instead of a copy,
        and the store reads them back from the file if it needs them again. A sweep of
        images then returns without a second pass over its results, and peak memory stays
        at one copy of them.
        """
        with self._threads:
            if (
                self.tables.get(table.key) is table
                and table.spec is not None
                and sum(buf.nbytes for buf in table.buffers) >= LEND_BYTES
                and not table.lent
                and not self._layout_dirty
                and self._writer is None
                and self._journal_size() <= HEADER_LEN
                and self._signature is not None
                and self._file_signature() == self._signature
            ):
                return table.lend(self.coords)
            self._reclaim()
            table = self.tables.get(table.key, table)
            return table.to_dataset(self.coords, copy=True)

    def reclaim(self) -> None:
        """Give lent tables buffers of their own again, read back from the file.

        If another writer replaced the file since, the whole store is reloaded from it.
        """
        with self._threads:
            self._reclaim()

    def _reclaim(self) -> None:
        lent = [t for t in self.tables.values() if t.lent]
        if not lent:
            return
        if self._file_signature() != self._signature:
            self._load()  # another writer published since: everything comes back from disk
            return
        import netCDF4

        with netCDF4.Dataset(self.path, "r") as nc:
            nc.set_auto_maskandscale(False)
            for table in lent:
                _load_buffers(table, [_values(nc.variables[v.name]) for v in table.spec.variables])

    # -- staging: big cells written once, straight into the next snapshot -------------------
    def _want_stage(self, table: FunctionTable, expect: int) -> bool:
        """Stage a sweep's big cells when the file it ends with will be mostly computed.

        A staged file lays big outputs out contiguously (see :func:`_create_stage`); a
        barely computed grid stays with the sparse layout of :func:`_create_cells`.
        """
        spec = table.spec
        if not self._session_publish or spec is None:
            return False
        if not any(_is_big(var) for var in spec.variables):
            return False
        return expect >= DENSE_FRACTION * table.size

    def _begin_stage(self, table: FunctionTable) -> _Stage | None:
        """Create the staged file for ``table`` and name it in the journal."""
        writer = self._writer
        if self._layout_dirty or writer is None or writer.size > HEADER_LEN:
            # The staged file starts a journal of its own; earlier records go to the file.
            self._publish()
            writer = self._open_journal()
        try:
            stage = _create_stage(self, table)
        except _StageUnavailable:
            return None  # journal the cells whole instead: slower, as safe
        control = json.dumps(
            {
                "file": os.path.basename(stage.path),
                "slot": self._slots[table.key],
                "places": {str(i): list(place) for i, place in stage.places.items()},
            }
        ).encode()
        try:
            writer.append(_HEAD.pack(CONTROL_SLOT, 0, STAGE, 0.0) + control)
        except BaseException:
            stage.close()
            _unlink(stage.path)
            raise
        self._stage = stage
        self._journal_stage = stage.path
        return stage

    def _journal_error(self, exc: OSError) -> StoreError:
        return StoreError(
            f"Could not record a finished cell in {self.journal_path}: "
            f"{_write_cause(exc, self.path)}. Every cell recorded before it is safe (in "
            f"{self.path} and the journal); the cell being recorded is not. Fix the cause and "
            "sweep again: it resumes with the missing cells."
        )

    def _rotate(self) -> None:
        """Publish mid-session (journal outgrew the file, or time is up); new journal."""
        self._publish()
        self._publish_at = self._journal_limit()
        self._writer.on_sync = self._maybe_publish_soon

    def _maybe_publish_soon(self, now: float) -> None:
        # Readers of the file see progress at least every snapshot_interval seconds, while
        # publishing never takes more than 1/20 of the sweep's time on big files.
        due = self._published_at + max(self.snapshot_interval, 20 * self._publish_seconds)
        if now >= due:
            self._publish_at = 0  # the next record publishes

    def _layout_changed(self) -> None:
        # New functions and output structures reach the file before any journal record
        # that refers to them (see _open_journal), so records only carry cell values.
        if not self._in_session:
            raise StoreError(
                f"Internal error: the layout of {self.path} changed outside a write session."
            )
        self._layout_dirty = True

    def compact(self) -> dict[str, int]:
        """Drop from the file every parameter value the space does not have.

        Returns how many values were dropped per parameter. Results at those values are
        deleted: the caller asked for it.
        """
        with self.writing():
            self._check_writable()
            dropped = {}
            for name, (values, attrs) in self.space_coords.items():
                keep = self.index_map[name]
                if len(keep) == len(self.coords[name][0]) and np.array_equal(
                    keep, np.arange(len(keep))
                ):
                    continue
                dropped[name] = len(self.coords[name][0]) - len(keep)
                for table in self.tables.values():
                    if name in table.dims:
                        table.take(name, keep)
                self.coords[name] = (values, {**self.coords[name][1], **attrs})
                self.index_map[name] = np.arange(len(values))
            if dropped:
                self._layout_dirty = True
            return dropped

    def clear(self, key: str | None = None) -> None:
        with self.writing():
            self._check_writable()
            super().clear(key)
            self._layout_dirty = True  # publish the cleared state even with nothing journaled

    def close(self) -> None:
        """Publish results that only the journal holds (after ``run_process`` writes)."""
        if self._journal_size() > HEADER_LEN and not self._in_session:
            try:
                with self.writing():
                    pass
            except StoreError:
                pass  # another writer holds it; it will publish the journal
        _wait_discards()  # no sidecar outlives disable_cache()

    # -- publishing -----------------------------------------------------------------------------
    def _publish(self) -> None:
        """Replace the file with a complete new snapshot of everything in memory.

        A sweep's staged file, once mostly computed, becomes the snapshot: only its small
        variables are left to write. Otherwise a new file is written whole.
        """
        started = time.monotonic()
        self._epoch += 1
        stage, self._stage = self._stage, None
        tmp = None
        if stage is not None:
            tmp, generation = self._finish_stage(stage)
        if tmp is None:
            generation = uuid.uuid4().hex
            tmp = f"{self.path}.xsweep-tmp-{os.getpid()}"
            try:
                _write_file(self, tmp, generation)
            except (OSError, RuntimeError) as exc:  # netCDF4 reports HDF5 errors as these
                _unlink(tmp)
                raise self._publish_error(exc) from exc
            except BaseException:
                _unlink(tmp)
                raise
        # A brand-new file that holds no results yet (the layout a sweep's first cell
        # brings) is not worth waiting for the disk: it is made durable before the first
        # journal flush that could depend on it (see _make_durable), and a power cut before
        # then loses nothing that was computed.
        lazy = self._generation is None and not any(
            table.status.any() for table in self.tables.values()
        )
        try:
            if not lazy:
                _fsync_file(tmp)
            os.replace(tmp, self.path)
            if not lazy:
                _fsync_dir(os.path.dirname(self.path))
        except OSError as exc:
            if tmp != (stage.path if stage is not None else None):
                _unlink(tmp)  # a staged file stays: the journal's records need its cells
            raise self._publish_error(exc) from exc
        self._generation = generation
        self._unsynced = lazy
        self._signature = self._file_signature()
        self._slots = {key: i for i, key in enumerate(self.tables)}
        self._layout_dirty = False
        self._published_at = time.monotonic()
        self._publish_seconds = self._published_at - started
        # The old journal is inside the new file now; start one for the new generation.
        if self._writer is not None:
            self._writer.close()
        _discard(self.journal_path, f"{self.path}.xsweep-tmp-{os.getpid()}-{generation}.journal")
        if self._journal_stage is not None:
            _unlink(self._journal_stage)  # gone already if it became the file
            self._journal_stage = None
        if self._writer is not None:
            self._writer = JournalWriter(self.journal_path, generation, self.fsync_interval)
            self._writer.before_sync = self._make_durable

    def _publish_error(self, exc: Exception) -> StoreError:
        if self._generation is None and self._journal_size() <= HEADER_LEN:
            safe = "Nothing had been computed yet, so nothing is lost"
        else:
            stage = f" and {self._journal_stage}" if self._journal_stage is not None else ""
            safe = (
                f"Every cell computed so far is safe in the previous {self.path} and "
                f"{self.journal_path}{stage}"
            )
        return StoreError(
            f"Could not write the cache file {self.path}: {_write_cause(exc, self.path)}. "
            f"{safe}; fix the cause and sweep again to publish them."
        )

    def _finish_stage(self, stage: _Stage) -> tuple[str | None, str]:
        """Complete the staged file as the next snapshot: ``(its path, its generation)``.

        ``(None, ...)`` when it cannot be (another function's cells or a new layout arrived
        since it was staged, or too few cells were computed to keep its dense layout):
        the caller writes a new file instead. The staged file then stays until that
        publish succeeds, since the journal's records point into it.
        """
        table = stage.table
        done = np.count_nonzero(np.isin(table.status, DONE))
        if (
            not stage.finalizable
            or self._layout_dirty
            or self.tables.get(table.key) is not table
            or done < DENSE_FRACTION * table.size
        ):
            stage.close()
            return None, ""
        try:
            ok = _finalize_stage(stage)
        except Exception:  # a full disk, say: writing a new file says what went wrong
            ok = False
        finally:
            stage.close()
        return (stage.path, stage.generation) if ok else (None, "")

    def _make_durable(self) -> None:
        """Before the journal is flushed: flush what its records depend on."""
        if self._unsynced:
            _fsync_file(self.path)
            _fsync_dir(os.path.dirname(self.path))
            self._unsynced = False
        stage = self._stage
        if stage is not None:
            os.fdatasync(stage.fd)
            if not stage.synced:
                _fsync_dir(os.path.dirname(self.path))
                stage.synced = True

    def _clean_temp_files(self) -> None:
        # We hold the lock: no other writer is writing one. A staged file stays while the
        # journal's records need its cells.
        folder, name = os.path.split(self.path)
        prefixes = (f"{name}.xsweep-tmp-", f"{name}.xsweep-stage-")
        with os.scandir(folder or ".") as entries:
            for entry in entries:
                if (
                    entry.name.startswith(prefixes)
                    and entry.path != self._journal_stage
                    and not entry.is_dir(follow_symlinks=False)  # never ours: left alone
                ):
                    _unlink(entry.path)


# ---------------------------------------------------------------------------------------------
# Journal record encoding
# ---------------------------------------------------------------------------------------------
_HEAD = struct.Struct("<HQBf")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_STRUCT_CHARS = {
    ("f", 8): "d", ("f", 4): "f", ("f", 2): "e",
    ("i", 8): "q", ("i", 4): "i", ("i", 2): "h", ("i", 1): "b",
    ("u", 8): "Q", ("u", 4): "I", ("u", 2): "H", ("u", 1): "B",
    ("b", 1): "?",
}  # fmt: skip
#: Journal record statuses besides COMPUTED and FAILED: a computed cell whose big outputs
#: went straight to the staged file (the record holds their checksums), and the control
#: record that names a staged file (slot CONTROL_SLOT).
STAGED, NONE_RECORD, STAGE = 3, 4, 7
CONTROL_SLOT = 0xFFFF
_SLOT = struct.Struct("<H")
_STAGE_ID = re.compile(r"[0-9a-f]{32}")


class _Malformed(ValueError):
    """A journal record that passed its checksum but does not describe a valid cell."""


#: What decoding a crafted or damaged record can raise; such a record is skipped.
_RECORD_ERRORS = (
    _Malformed,
    struct.error,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    OverflowError,
    UnicodeError,
    RecursionError,
)


class _Codec:
    """Encodes one function's cells as journal payloads and applies decoded ones.

    With ``places`` (variable index -> (offset, cell bytes) in a staged file open as
    ``stage_fd``), those big outputs are written to the staged file and the record carries
    only the 64-bit sum of their bytes.
    """

    def __init__(
        self,
        table: FunctionTable,
        slot: int,
        stage_fd: int = -1,
        places: dict[int, tuple[int, int]] | None = None,
    ):
        self.table = table
        self.slot = slot
        self.stage_fd = stage_fd
        self.places = places or {}
        spec = table.spec
        self.variables = spec.variables if spec else ()
        chars = []
        for v in self.variables:
            if v.scalar and v.dtype != object:
                chars.append(_STRUCT_CHARS[(v.dtype.kind, v.dtype.itemsize)])
            else:
                chars = None
                break
        # All-numeric-scalar outputs (the common case) pack in a single struct call.
        self.flat = struct.Struct("<HQBf" + "".join(chars)) if chars is not None else None

    def staged(self, stage_fd: int, places: dict[int, tuple[int, int]]) -> None:
        """Read the big outputs of STAGED records from this staged file (replay)."""
        self.stage_fd = stage_fd
        self.places = places

    def encode(self, index: int, values: tuple, seconds: float) -> bytes | list:
        """The payload: one bytes object, or a list of buffers (arrays are not copied)."""
        if self.flat is not None:
            return self.flat.pack(self.slot, index, COMPUTED, seconds, *values)
        places = self.places
        parts: list = [_HEAD.pack(self.slot, index, STAGED if places else COMPUTED, seconds)]
        for i, (var, value) in enumerate(zip(self.variables, values)):
            if var.dtype == object:
                raw = json.dumps(value if var.scalar else value.tolist()).encode()
                parts.append(_U32.pack(len(raw)))
                parts.append(raw)
            elif var.scalar:
                parts.append(np.asarray(value, dtype=var.dtype).tobytes())
            elif i in places:
                base, nbytes = places[i]
                view = memoryview(np.ascontiguousarray(value, dtype=var.dtype)).cast("B")
                _pwrite_all(self.stage_fd, view, base + index * nbytes)
                parts.append(_U64.pack(sum64([view])))
            else:
                parts.append(memoryview(np.ascontiguousarray(value)).cast("B"))
        return parts

    def encode_none(self, index: int, seconds: float) -> bytes:
        return _HEAD.pack(self.slot, index, NONE_RECORD, seconds)

    def encode_failure(self, index: int, message: str, seconds: float) -> bytes:
        raw = message.encode("utf-8", "replace")
        return _HEAD.pack(self.slot, index, FAILED, seconds) + _U32.pack(len(raw)) + raw

    def apply(self, payload: bytes) -> bool:
        """Apply one record; False if its staged data is missing or damaged (stop there).

        Raises ``_Malformed`` (or a decoding error) for a record that does not describe a
        valid cell of this table; nothing is applied then.
        """
        table = self.table
        _, index, status, seconds = _HEAD.unpack_from(payload)
        if index >= table.size:
            raise _Malformed(f"cell {index} of a table of {table.size} cells")
        pos = _HEAD.size
        if status == FAILED:
            (n,) = _U32.unpack_from(payload, pos)
            pos += 4
            if pos + n != len(payload):
                raise _Malformed("a failure record of the wrong length")
            message = payload[pos : pos + n].decode("utf-8", "replace")
            table.put_failure(index, clean_message(message), seconds)
            return True
        if status == NONE_RECORD:
            if len(payload) != _HEAD.size:
                raise _Malformed("a no-value record of the wrong length")
            table.put_none(index, seconds)
            return True
        if status not in (COMPUTED, STAGED) or table.spec is None:
            raise _Malformed(f"status {status} for a function without outputs yet")
        if self.flat is not None:
            if status != COMPUTED:
                raise _Malformed(f"status {status} in a record of scalars")
            table.put(index, self.flat.unpack(payload)[4:], seconds)
            return True
        if status == STAGED and not self.places:
            return False
        values = []
        for i, var in enumerate(self.variables):
            if var.dtype == object:
                (n,) = _U32.unpack_from(payload, pos)
                pos += 4
                if pos + n > len(payload):
                    raise _Malformed("a string past the end of its record")
                value = _checked_text(var, json.loads(payload[pos : pos + n].decode("utf-8")))
                pos += n
                values.append(value)
            elif status == STAGED and i in self.places:
                (total,) = _U64.unpack_from(payload, pos)
                pos += 8
                base, nbytes = self.places[i]
                try:
                    data = os.pread(self.stage_fd, nbytes, base + index * nbytes)
                except OSError:
                    return False
                if len(data) != nbytes or sum64([data]) != total:
                    return False  # the cell's bytes never reached the staged file
                values.append(np.frombuffer(data, dtype=var.dtype).reshape(var.shape))
            else:
                count = int(np.prod(var.shape, dtype=np.int64))
                arr = np.frombuffer(payload, dtype=var.dtype, count=count, offset=pos)
                pos += arr.nbytes
                values.append(arr.reshape(var.shape))
        if pos != len(payload):
            raise _Malformed(f"{len(payload) - pos} bytes left over after the cell's values")
        table.put(index, tuple(values), seconds)
        return True


def _checked_text(var: VariableSpec, value: Any) -> Any:
    """A string output decoded from a record, checked as a function's return value is."""
    if var.scalar:
        if not isinstance(value, str) or text_problem(value):
            raise _Malformed(f"{value!r:.40} is not a valid text value")
        return value
    arr = np.array(value, dtype=object)
    if arr.shape != var.shape or not all(
        isinstance(v, str) and not text_problem(v) for v in arr.flat
    ):
        raise _Malformed("a text array of the wrong shape or content")
    return arr


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


# ---------------------------------------------------------------------------------------------
# The NetCDF file itself
# ---------------------------------------------------------------------------------------------
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _union(
    path: str, name: str, file_values: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """The union of a parameter's values in the file and in the space.

    Returns the union and, when it differs from the file's values, the new position of each
    of the file's values. Sorted grids stay sorted; otherwise new values go at the end.
    """
    if file_values.shape == values.shape and np.array_equal(file_values, values):
        return file_values, None
    kinds = {file_values.dtype.kind, values.dtype.kind}
    if not (kinds <= {"i", "u", "f"} or len(kinds) == 1):
        raise StoreMismatchError(
            f"The cache file {path} has parameter {name!r} with values {_short(file_values)}, "
            f"of another kind than this space's {_short(values)}. Nothing was changed. Use "
            "another cache path, or rename the parameter."
        )
    known = set(file_values.tolist())
    new = [v for v in values.tolist() if v not in known]
    if not new:
        return file_values, None
    dtype = np.result_type(file_values, values) if kinds <= {"i", "u", "f"} else values.dtype
    union = np.concatenate([file_values.astype(dtype), np.asarray(new, dtype=dtype)])
    if kinds <= {"i", "u", "f"} and _increasing(file_values) and _increasing(values):
        union = np.sort(union)
    lookup = {v: i for i, v in enumerate(union.tolist())}
    positions = np.array([lookup[v] for v in file_values.tolist()], dtype=np.int64)
    union.setflags(write=False)
    return union, positions


def _increasing(values: np.ndarray) -> bool:
    return values.size < 2 or bool(np.all(np.diff(values) > 0))


def _short(values: np.ndarray) -> str:
    items = values.tolist()
    return repr(items) if len(items) <= 8 else f"[{items[0]!r}, ..., {items[-1]!r}] ({len(items)})"


def _write_cause(exc: BaseException, path: str) -> str:
    """What made a write next to ``path`` fail, and what to do, in words.

    HDF5 reports a full disk as "HDF error" or even "Permission denied", so the free space
    of the folder is checked before the error's own words are trusted.
    """
    import resource

    folder = os.path.dirname(path) or "."
    code = None
    seen = exc
    while seen is not None and code is None:
        if isinstance(seen, OSError) and seen.errno:
            code = seen.errno
        seen = seen.__cause__ or seen.__context__
    said = f" ({os.strerror(code)})" if code else ""
    try:
        st = os.statvfs(folder)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if code in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < 4 << 20):
        room = f", {free / 1e6:.1f} MB free" if free is not None else ""
        return f"the disk holding {folder} is full{said}{room}; free disk space or check quotas"
    if code == errno.EFBIG or limit != resource.RLIM_INFINITY:
        size = f" of {limit} bytes" if limit != resource.RLIM_INFINITY else ""
        return (
            f"the file would exceed this process's file-size limit{size} (ulimit -f){said}; "
            "raise the limit"
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied in {folder}{said}; make the folder writable or use another path"
    return f"{exc}; check free disk space and the permissions of {folder}"


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


#: Results at least this big are handed to the caller rather than copied (``result``).
LEND_BYTES = 1 << 20
#: Journals at least this big are freed in the background (``_discard``).
DISCARD_BYTES = 8 << 20
_discarding: list[threading.Thread] = []


def _discard(path: str, tomb: str) -> None:
    """Remove a file now for every reader, and free its disk space in the background.

    Freeing a big journal's cached pages takes milliseconds (2 ms for 37 MB here) that the
    caller need not wait for. A process killed first leaves ``tomb``, which the next write
    session removes (it matches ``*.xsweep-tmp-*``); :func:`_wait_discards` waits for them.
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return
    if size < DISCARD_BYTES:
        _unlink(path)
        return
    try:
        os.replace(path, tomb)
    except FileNotFoundError:
        return
    thread = threading.Thread(target=_unlink, args=(tomb,), name="xsweep-discard")
    thread.start()
    _discarding[:] = [t for t in _discarding if t.is_alive()] + [thread]


def _wait_discards() -> None:
    for thread in list(_discarding):
        thread.join()


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _write_file(store: NetCDFStore, path: str, generation: str, stage: _StagePlan | None = None):
    """Write the store as a complete file at ``path``.

    With ``stage``, the file is a staged snapshot: ``stage.table``'s big outputs are laid
    out contiguously with a marker in their first cell, and the file is returned open
    (synced), for :func:`_create_stage` to go on with.
    """
    import netCDF4

    coords = store.coords
    now = _now()
    if store._created is None:
        store._created = now
    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        nc.setncatts(
            {
                "Conventions": "CF-1.10",
                "title": "Parameter sweep results written by xsweep",
                "xsweep_format": FORMAT_VERSION,
                "xsweep_generation": generation,
                "xsweep_functions": json.dumps(list(store.tables)),
                "xsweep_parameters": json.dumps(list(coords)),
                "created": store._created,
                "updated": now,
                **_provenance(),
            }
        )
        # Every variable is defined before any is written: netCDF-4 creates the HDF5 datasets
        # when it leaves define mode, and leaving it once rather than per variable saves
        # about a third of the time a small file takes.
        later: list = []
        for name, (values, attrs) in coords.items():
            nc.createDimension(name, len(values))
            _create(nc, name, (name,), values, attrs, later, coord=True)
        written_coords: set[str] = set(coords)
        for table in store.tables.values():
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
                    _create(nc, cname, cvar.dims, cvar.values, cvar.attrs, later, coord=True)
                    written.add(cname)
            attrs = dict(var.attrs)
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
        nc, table.status_name, table.dims, table.status.reshape(shape), table.status_attrs(), later
    )
    seconds = table.seconds.reshape(shape)
    _create(nc, table.seconds_name, table.dims, seconds, table.seconds_attrs(), later)
    codes, messages = table.error_codes()
    _create(nc, table.error_name, table.dims, codes.reshape(shape), table.error_attrs(), later)
    # A staged file's messages grow in place when it is completed: an unlimited dim.
    nc.createDimension(f"{table.name}_message", None if stage else (len(messages) or None))
    _create(
        nc,
        table.messages_name,
        (f"{table.name}_message",),
        np.array(messages, dtype=object),
        {"long_name": f"distinct error messages of {table.key}"},
        later,
    )


# ---------------------------------------------------------------------------------------------
# Staged files: the next snapshot, with big cells written straight to their place in it
# ---------------------------------------------------------------------------------------------
# A sweep of big cells (images) would otherwise write every byte twice: once to the journal,
# once to the file at the end; on a long sweep the journal also reaches the disk (fsync_interval)
# and the disk does the work twice. Instead, when a sweep starts, the next snapshot is written
# as a complete NetCDF file next to the published one (``<file>.xsweep-stage-<generation>``),
# with the swept function's big outputs contiguous, so that each cell has a fixed place in it.
# Each finished cell is written there with ``pwrite``; its journal record holds the 64-bit sum
# of those bytes. At the end of the sweep, the small variables (status, timings, messages) are
# written into the staged file through netCDF4, and it replaces the published file. A crash
# at any moment leaves the published file alone; replay reads each journaled cell's bytes
# from the staged file at its place, checks the sum, and stops at the first that does not
# match, as it does at a torn record. HDF5 never moves the raw data of a contiguous
# variable, so the places hold however the rest of the staged file is left.
class _StageUnavailable(Exception):
    """The staged layout could not be set up; cells are journaled whole instead."""


class _StagePlan:
    def __init__(self, table: FunctionTable) -> None:
        self.table = table
        self.markers: dict[bytes, str] = {}  # marker -> variable name


class _Stage:
    """An open staged file: ``places`` maps variable index to (offset, cell bytes).

    HDF5 keeps the file open for the whole sweep, with nothing to flush between its
    creation (synced) and its completion: a forked child that exits through HDF5's exit
    handler therefore writes nothing that differs (tests/test_processes.py forks one).
    """

    def __init__(self, path, generation, nc, fd, table, places) -> None:
        self.path = path
        self.generation = generation
        self.nc = nc
        self.fd = fd
        self.table = table
        self.places: dict[int, tuple[int, int]] = places
        self.finalizable = True
        self.synced = False

    def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                self.nc.close()
            self.nc = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _create_stage(store: NetCDFStore, table: FunctionTable) -> _Stage:
    """Write the staged snapshot of ``store`` for a sweep of ``table`` (see above).

    Raises ``_StageUnavailable`` if the places of the big outputs cannot be established
    and checked (the staged file is then removed), ``OSError`` if the disk refuses.
    """
    generation = uuid.uuid4().hex
    path = f"{store.path}.xsweep-stage-{generation}"
    plan = _StagePlan(table)
    try:
        nc = _write_file(store, path, generation, plan)
    except Exception as exc:  # a full disk, say: the cells then go to the journal whole
        _unlink(path)
        raise _StageUnavailable(str(exc)) from exc
    except BaseException:
        _unlink(path)
        raise
    fd = -1
    try:
        nc.set_auto_maskandscale(False)
        found = _find_markers(path, plan.markers)
        fd = os.open(path, os.O_RDWR)
        places = {}
        not_computed = table.status != COMPUTED
        for i, (var, buf) in enumerate(zip(table.spec.variables, table.buffers)):
            if var.name not in found:
                continue
            base, nbytes = found[var.name], buf.itemsize * int(np.prod(var.shape))
            row = _check_place(nc, fd, var, table, base, nbytes)
            places[i] = (base, nbytes)
            # The cells computed so far (a resumed sweep); then what the markers and the
            # probe overwrote gets the store's content back.
            _write_runs(fd, buf, np.flatnonzero(~not_computed), base, nbytes)
            flat = buf.reshape(table.size, -1).view(np.uint8)
            _pwrite_all(fd, memoryview(flat[0, :row]), base)
            _pwrite_all(fd, memoryview(flat[-1, :row]), base + (table.size - 1) * nbytes)
        if len(places) != len(plan.markers):
            raise _StageUnavailable(f"markers not found in {path}")
    except Exception as exc:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(Exception):
            nc.close()
        _unlink(path)
        if isinstance(exc, _StageUnavailable):
            raise
        raise _StageUnavailable(str(exc)) from exc
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(Exception):
            nc.close()
        _unlink(path)
        raise
    return _Stage(path, generation, nc, fd, table, places)


def _check_place(
    nc, fd: int, var: VariableSpec, table: FunctionTable, base: int, nbytes: int
) -> int:
    """Check through HDF5 that the last cell of ``var`` is where ``base`` says it is.

    A probe is written over the head of the last cell (see :func:`_cell_head`) and read back
    through netCDF4; returns the bytes the probe took.
    """
    last = table.size - 1
    suffix, head = _cell_head(var)
    probe = np.resize(np.frombuffer(b"xsweep-probe" + os.urandom(20), dtype=np.uint8), head)
    _pwrite_all(fd, memoryview(probe), base + last * nbytes)
    index = tuple(int(i) for i in np.unravel_index(last, table.shape)) + suffix
    got = np.asarray(nc.variables[var.name][index])
    if got.tobytes() != probe.tobytes():
        raise _StageUnavailable(f"{var.name} is not laid out as expected")
    return head


def _write_runs(fd: int, buf: np.ndarray, cells: np.ndarray, base: int, nbytes: int) -> None:
    """``pwrite`` the given flat cells of ``buf``, one call per run of neighbours."""
    if cells.size == 0:
        return
    flat = buf.reshape(buf.shape[0], -1).view(np.uint8).reshape(buf.shape[0], nbytes)
    breaks = np.flatnonzero(np.diff(cells) != 1) + 1
    for run in np.split(cells, breaks):
        first, last = int(run[0]), int(run[-1])
        _pwrite_all(fd, memoryview(flat[first : last + 1]).cast("B"), base + first * nbytes)


def _find_markers(path: str, markers: dict[bytes, str]) -> dict[str, int]:
    """Offsets of the ``markers`` in the file, reading its data extents only.

    The staged variables are holes but for their markers; other data (small variables,
    other functions' results) is read in windows of 8 MiB.
    """
    found: dict[str, int] = {}
    overlap = max(len(m) for m in markers) - 1
    window = 8 << 20
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size and len(found) < len(markers):
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break  # no data after pos
                raise _StageUnavailable(f"cannot find the data in {path}: {exc}") from exc
            end = os.lseek(fd, start, os.SEEK_HOLE)
            at = start
            while at < end and len(found) < len(markers):
                chunk = os.pread(fd, min(window + overlap, end - at), at)
                for marker, name in markers.items():
                    offset = chunk.find(marker)
                    if offset >= 0 and name not in found:
                        found[name] = at + offset
                at += window
            pos = end
    finally:
        os.close(fd)
    return found


def _finalize_stage(stage: _Stage) -> bool:
    """Write the small variables into the staged file and close it; False if it can't be.

    The big outputs' cells that are not computed get the fill the store holds for them
    (NaN, or 0), as a file written whole would have.
    """
    table = stage.table
    nc = stage.nc
    codes, messages = table.error_codes()
    room = len(nc.dimensions[f"{table.name}_message"])
    if len(messages) < room:
        stage.close()
        return False  # an unlimited dim cannot shrink: write a new file instead
    not_computed = np.flatnonzero(table.status != COMPUTED)
    for i, (var, buf) in enumerate(zip(table.spec.variables, table.buffers)):
        if i in stage.places:
            base, nbytes = stage.places[i]
            _write_runs(stage.fd, buf, not_computed, base, nbytes)
        else:
            _put(nc.variables[var.name], buf.reshape(table.shape + var.shape))
    shape = table.shape
    _put(nc.variables[table.status_name], table.status.reshape(shape))
    _put(nc.variables[table.seconds_name], table.seconds.reshape(shape))
    _put(nc.variables[table.error_name], codes.reshape(shape))
    if messages:
        nc.variables[table.messages_name][0 : len(messages)] = np.array(messages, dtype=object)
    nc.setncattr("updated", _now())
    nc.close()
    stage.nc = None
    stage.close()
    return True


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


def _read_file(store: NetCDFStore) -> None:
    """Load the file's coordinates and tables into ``store`` (raises ``StoreError``)."""
    import netCDF4

    path = store.path
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
            tables = _read_layout(store, nc, attrs)
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
    store.tables = tables


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


def _read_layout(store: NetCDFStore, nc, attrs: dict[str, Any]) -> dict[str, FunctionTable]:
    """Check the file's layout and load it; ``_Damaged`` says what does not fit."""
    store._generation = str(attrs.get("xsweep_generation", ""))
    if not _STAGE_ID.fullmatch(store._generation):
        raise _Damaged("the attribute 'xsweep_generation' is missing or malformed")
    store._created = str(attrs.get("created"))
    variables = nc.variables
    file_coords: Coords = {}
    for name in _names_attr(nc, "xsweep_parameters"):
        var = variables.get(name)
        if var is None or var.dimensions != (name,):
            raise _Damaged(f"parameter {name!r} has no coordinate variable")
        file_coords[name] = (_values(var), _attrs(var))
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
        if not set(status_var.dimensions) <= set(file_coords):
            raise _Damaged(f"the status of {key!r} is over {status_var.dimensions}, not parameters")
        cells = int(np.prod([len(file_coords[d][0]) for d in status_var.dimensions], dtype=float))
        need += cells * 9  # status, seconds, error code
        if "xsweep_outputs" in status_var.ncattrs():
            for out in _names_attr(status_var, "xsweep_outputs"):
                if out not in variables:
                    raise _Damaged(f"output variable {out!r} of {key!r} is missing")
                var = variables[out]
                itemsize = var.dtype.itemsize if isinstance(var.dtype, np.dtype) else 16
                need += int(np.prod(var.shape, dtype=float)) * itemsize
    if need > _memory_limit():
        raise StoreError(
            f"The cache file {store.path} holds (or claims to hold) results that need "
            f"{need / 2**30:.1f} GiB of memory, more than half of this machine's memory, and "
            "this version of xsweep keeps a cache's results in memory. Nothing was changed. "
            "Read it lazily with xarray.open_dataset(path); if it should not be this big, it "
            "is damaged."
        )
    store._file_coords = file_coords
    tables = {}
    for key in keys:
        table = _read_table(nc, key, status_vars[key], file_coords)
        # Results live under the function's name; files of 0.1 keyed them "module:qualname".
        if table.name in tables:
            raise _Damaged(f"two functions store results under the name {table.name!r}")
        table.key = table.name
        tables[table.name] = table
    return tables


def _values(var) -> np.ndarray:
    data = var[...]
    data = np.asarray(data)
    if "dtype" in var.ncattrs() and var.getncattr("dtype") == "bool":
        return data.astype(bool)
    if data.dtype == object:
        return data.astype(str)
    return data


def _attrs(var) -> dict[str, Any]:
    skip = {"_FillValue", "xsweep_function", "coordinates", "dtype"}
    return {k: var.getncattr(k) for k in var.ncattrs() if k not in skip}


def _read_table(nc, key: str, status_var, file_coords: Coords) -> FunctionTable:
    variables = nc.variables
    dims = tuple(status_var.dimensions)
    name = _text_attr(status_var, "xsweep_name")
    if name_problem(name) or name != variable_prefix(name):
        raise _Damaged(f"the function name {name!r:.80} of {key!r} is not a valid name")
    shape = tuple(len(file_coords[d][0]) for d in dims)
    table = FunctionTable(key, name, dims, shape)
    attrs = status_var.ncattrs()
    if "xsweep_fingerprint" in attrs:
        table.fingerprint = str(status_var.getncattr("xsweep_fingerprint"))
    if "xsweep_kept_fingerprints" in attrs:
        table.history = json.loads(status_var.getncattr("xsweep_kept_fingerprints"))
    for own in (status_var, variables[table.seconds_name], variables[table.error_name]):
        if own.dimensions != dims:
            raise _Damaged(f"variable {own.name!r} is not over {list(dims)}")
    status = np.asarray(status_var[...]).reshape(-1)
    if status.dtype.kind not in "iu" or not np.isin(status, FLAG_VALUES).all():
        raise _Damaged(f"variable {status_var.name!r} holds codes other than 0, 1 and 2")
    table.status[:] = status
    table.seconds[:] = np.asarray(variables[table.seconds_name][...], dtype=np.float32).reshape(-1)
    codes = np.asarray(variables[table.error_name][...]).reshape(-1)
    if codes.dtype.kind not in "iu":
        raise _Damaged(f"variable {table.error_name!r} does not hold integer codes")
    messages = np.asarray(variables[table.messages_name][...]).tolist() if codes.any() else []
    if codes.any() and (codes.min() < 0 or codes.max() > len(messages)):
        raise _Damaged(f"variable {table.error_name!r} refers to messages that do not exist")
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
            data = _values(var)
            coords = {}
            wanted = [d for d in extra if d in variables]
            if "coordinates" in var.ncattrs():
                wanted += var.getncattr("coordinates").split()
            for c in wanted:
                cv = variables[c]
                coords[c] = xr.Variable(cv.dimensions, _values(cv), _attrs(cv))
            dtype = np.dtype(object) if data.dtype.kind in "OU" else data.dtype
            specs.append(
                VariableSpec(
                    out,
                    dtype,
                    cell_shape,
                    extra,
                    scalar=(kind != "array" and not extra),
                    coords=coords,
                    attrs=_attrs(var),
                )
            )
            buffers.append(data)
        table.spec = OutputSpec(kind, tuple(specs))
        _load_buffers(table, buffers)
    return table


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


# ---------------------------------------------------------------------------------------------
# Reading and merging whole files
# ---------------------------------------------------------------------------------------------
def open_store(path: str) -> NetCDFStore:
    """Open an existing results file over its own grid (no space needed), for reading.

    Raises ``StoreError`` if the file does not exist or is not an xsweep results file.

    Examples
    --------
    >>> from xsweep.store import open_store
    >>> open_store("no-such-file.nc")
    Traceback (most recent call last):
    ...
    xsweep.errors.StoreError: There is no file no-such-file.nc. Check the path.
    """
    if not os.path.exists(path):
        raise StoreError(f"There is no file {path}. Check the path.")
    return NetCDFStore(path, None)


def file_attrs(store: NetCDFStore) -> dict[str, Any]:
    """The global attributes of the store's file (provenance)."""
    import netCDF4

    with netCDF4.Dataset(store.path) as nc:
        return {k: nc.getncattr(k) for k in nc.ncattrs()}


def merge_stores(
    paths: list[str | os.PathLike[str]], out: str | os.PathLike[str], *, on_conflict: str = "raise"
) -> str:
    """Combine results files computed over parts of a grid (one per cluster job) into one.

    The output's grid is the union of the inputs' grids; every computed cell of every input
    is in it. A cell computed in several inputs must hold the same value in each, unless
    ``on_conflict`` picks one. Failed cells yield to computed ones.

    Parameters
    ----------
    paths : list of str
        The results files, in order.
    out : str
        The merged file to write; it must not exist yet.
    on_conflict : {"raise", "first", "last"}, default "raise"
        What a cell computed with different values in several inputs does: an error naming
        the cell, or the first or last input's value.

    Returns
    -------
    str
        The absolute path of the merged file.

    Examples
    --------
    >>> import os, tempfile, xsweep as xs
    >>> folder = tempfile.mkdtemp()
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
    >>> def square(a):
    ...     return a * a
    >>> for job in range(2):  # as two jobs of a job array would
    ...     ps.enable_cache(os.path.join(folder, f"part{job}.nc"))
    ...     _ = ps.sweep(square, part=(job, 2))
    >>> ps.disable_cache()
    >>> out = xs.merge_stores([os.path.join(folder, f"part{j}.nc") for j in range(2)],
    ...                       os.path.join(folder, "all.nc"))
    >>> import xarray as xr
    >>> with xr.open_dataset(out) as ds:
    ...     ds["square"].values.tolist()
    [1, 4, 9, 16]
    """
    if on_conflict not in ("raise", "first", "last"):
        raise StoreError(f"on_conflict={on_conflict!r} is not one of ['raise', 'first', 'last'].")
    if len(paths) < 1:
        raise StoreError("merge_stores needs at least one input file.")
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(out):
        raise StoreError(
            f"The output file {out} already exists; merging never overwrites a file. Choose "
            "another output path or remove it first."
        )
    sources = [open_store(os.fspath(p)) for p in paths]
    coords: Coords = {}
    for src in sources:
        for name, (values, attrs) in src.coords.items():
            if name in coords:
                values, _ = _union(src.path, name, coords[name][0], values)
            coords[name] = (values, coords.get(name, (None, attrs))[1])
    target = NetCDFStore(out, coords)
    for src in sources:
        for key, table in src.tables.items():
            shape = tuple(len(coords[d][0]) for d in table.dims)
            positions = {}
            for d in table.dims:
                lookup = {v: i for i, v in enumerate(coords[d][0].tolist())}
                positions[d] = np.array([lookup[v] for v in src.coords[d][0].tolist()])
            table.regrid(table.dims, shape, positions, {})
            if key not in target.tables:
                target.tables[key] = table
                continue
            _merge_table(target.tables[key], table, src.path, coords, on_conflict)
    with target.writing():
        target._layout_dirty = True
    return target.path


def _merge_table(
    into: FunctionTable, src: FunctionTable, path: str, coords: Coords, on_conflict: str
) -> None:
    where = f"{src.key} in {path}"
    if into.dims != src.dims:
        raise StoreMismatchError(
            f"{where} is stored over {list(src.dims)}, but over {list(into.dims)} in an earlier "
            "file; only results over the same parameters can be merged."
        )
    if into.fingerprint and src.fingerprint and into.fingerprint != src.fingerprint:
        raise FunctionChangedError(
            f"{where} was computed by another version of the function's code "
            f"({src.fingerprint}) than in an earlier file ({into.fingerprint}); merging them "
            "would mix versions. Recompute one of them, or declare a version with @xs.version."
        )
    if src.spec is not None and into.spec is None:
        into.set_spec(src.spec)
    if src.spec is not None:
        mine = [(v.name, v.dtype, v.shape) for v in into.spec.variables]
        theirs = [(v.name, v.dtype, v.shape) for v in src.spec.variables]
        if mine != theirs:
            raise StoreMismatchError(
                f"{where} has outputs {theirs}, but {mine} in an earlier file; they cannot be "
                "merged."
            )
    both = np.flatnonzero(np.isin(into.status, DONE) & np.isin(src.status, DONE))
    if both.size and src.spec is not None:
        differ = np.zeros(both.size, dtype=bool)
        for a, b in zip(into.buffers, src.buffers):
            x, y = a[both], b[both]
            same = x == y
            if x.dtype.kind == "f":
                same |= np.isnan(x) & np.isnan(y)
            differ |= ~same.reshape(both.size, -1).all(axis=1)
        differ |= into.status[both] != src.status[both]
        if differ.any() and on_conflict == "raise":
            cell = np.unravel_index(both[differ][0], into.shape)
            label = ", ".join(f"{d}={coords[d][0][i].item()!r}" for d, i in zip(into.dims, cell))
            raise StoreMismatchError(
                f"{int(differ.sum())} cells of {src.key} are computed in several files with "
                f"different values, first at {label} (in {path}). Pass on_conflict='first' or "
                "'last' to keep one file's value (merge --on-conflict on the command line)."
            )
    take = np.isin(src.status, DONE)
    if on_conflict == "first":
        take &= ~np.isin(into.status, DONE)
    take |= (src.status == FAILED) & (into.status == NOT_COMPUTED)
    index = np.flatnonzero(take)
    for a, b in zip(into.buffers, src.buffers):
        a[index] = b[index]
    into.status[index] = src.status[index]
    into.seconds[index] = src.seconds[index]
    for i in index.tolist():
        into.errors.pop(i, None)
        if i in src.errors:
            into.errors[i] = src.errors[i]
    into.fingerprint = into.fingerprint or src.fingerprint
