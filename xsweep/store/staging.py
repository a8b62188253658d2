"""Staged files: the next snapshot, with big cells written straight to their place."""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from typing import TYPE_CHECKING

import numpy as np

from ..file_format import COMPUTED, DONE, FAILED, HOLES_ATTR, NO_VALUE, STAGE_MARK
from ..outputs import VariableSpec
from .bigcells import DENSE_FRACTION, cell_head, is_big, write_values
from .buffers import CellBuffer, InMemory
from .cells import COPY_BYTES, blocks, runs, write_fill_runs
from .files import pwrite_all, unlink_quietly
from .grid import Grid
from .holes import mark_staged_holes, maskable, staged_form, table_mask
from .ncfile import is_text, timestamp, write_file, write_text_late
from .nclock import NC_LOCK, locked
from .ondisk import RawSource, is_on_disk
from .table import FunctionTable

if TYPE_CHECKING:
    import netCDF4


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
# written into the staged file through netCDF4 (its text variables defined then, when their
# widths are known: see .chars), and it replaces the published file. A crash
# at any moment leaves the published file alone; replay reads each journaled cell's bytes
# from the staged file at its place, checks the sum, and stops at the first that does not
# match, as it does at a torn record. HDF5 never moves the raw data of a contiguous
# variable, so the places hold however the rest of the staged file is left.
class StageUnavailable(Exception):
    """The staged layout could not be set up; cells are journaled whole instead."""


class StagePlan:
    """What writing a staged file needs: its table, and the markers of its big outputs."""

    def __init__(self, table: FunctionTable) -> None:
        self.table = table
        self.markers: dict[bytes, str] = {}  # marker -> variable name


class Stage:
    """An open staged file: ``places`` maps variable index to (offset, cell bytes).

    HDF5 keeps the file open for the whole sweep, with nothing to flush between its
    creation (synced) and its completion: a forked child that exits through HDF5's exit
    handler therefore writes nothing that differs (tests/test_processes.py forks one).
    """

    def __init__(
        self,
        path: str,
        generation: str,
        nc: netCDF4.Dataset,
        fd: int,
        table: FunctionTable,
        places: dict[int, tuple[int, int]],
    ) -> None:
        self.path = path
        self.generation = generation
        self.nc: netCDF4.Dataset | None = nc
        self.fd = fd
        self.table = table
        self.places: dict[int, tuple[int, int]] = places
        self.finalizable = True

    def close(self) -> None:
        if self.nc is not None:
            with NC_LOCK, contextlib.suppress(Exception):
                self.nc.close()
            self.nc = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@locked
def create_stage(
    results: str,
    grid: Grid,
    tables: dict[str, FunctionTable],
    table: FunctionTable,
    created: str | None,
    history: list[str],
) -> Stage:
    """Write the next snapshot of the file ``results`` for a sweep of ``table`` (see above).

    ``grid`` and ``tables`` are what the snapshot holds, ``created`` and ``history`` its
    provenance (``created`` None: now). Raises ``StageUnavailable`` if the places of the big
    outputs cannot be established and checked (the staged file is then removed), ``OSError``
    if the disk refuses.
    """
    generation = uuid.uuid4().hex
    path = f"{results}{STAGE_MARK}{generation}"
    plan = StagePlan(table)
    try:
        nc = write_file(
            path, grid, tables, created or timestamp(), generation, plan, history=history
        )
    except Exception as exc:  # a full disk, say: the cells then go to the journal whole
        unlink_quietly(path)
        raise StageUnavailable(str(exc)) from exc
    except BaseException:
        unlink_quietly(path)
        raise
    assert nc is not None  # with a plan, write_file returns the file open
    fd = -1
    try:
        nc.set_auto_maskandscale(False)
        found = _find_markers(path, plan.markers)
        fd = os.open(path, os.O_RDWR)
        places = {}
        not_computed = table.status != COMPUTED
        assert table.spec is not None  # a table with big outputs
        for i, (var, buf) in enumerate(zip(table.spec.variables, table.buffers)):
            if var.name not in found:
                continue
            base, nbytes = found[var.name], buf.itemsize * int(np.prod(var.shape))
            row = _check_place(nc, fd, var, table, base, nbytes)
            places[i] = (base, nbytes)
            if is_on_disk(buf):
                _copy_into_stage(fd, buf, table, base, nbytes)
                continue
            assert isinstance(buf, InMemory)  # not on disk
            # The cells computed so far (a resumed sweep); then what the markers and the
            # probe overwrote gets the store's content back.
            _write_runs(fd, buf, np.flatnonzero(~not_computed), base, nbytes)
            flat = buf.reshape(table.size, -1).view(np.uint8)
            pwrite_all(fd, memoryview(flat[0, :row]), base)  # type: ignore[arg-type]  # numpy's stubs: an ndarray is a Buffer
            pwrite_all(fd, memoryview(flat[-1, :row]), base + (table.size - 1) * nbytes)  # type: ignore[arg-type]  # numpy's stubs: an ndarray is a Buffer
        if len(places) != len(plan.markers):
            raise StageUnavailable(f"markers not found in {path}")
    except Exception as exc:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(Exception):
            nc.close()
        unlink_quietly(path)
        if isinstance(exc, StageUnavailable):
            raise
        raise StageUnavailable(str(exc)) from exc
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(Exception):
            nc.close()
        unlink_quietly(path)
        raise
    return Stage(path, generation, nc, fd, table, places)


def _copy_into_stage(
    fd: int, buf: CellBuffer, table: FunctionTable, base: int, nbytes: int
) -> None:
    """Copy an on-disk output's computed cells into the staged file, a block at a time.

    The first and last cells are written whatever their status: the marker and the probe
    were written over their heads.
    """
    cells = np.union1d(np.flatnonzero(table.status == COMPUTED), [0, table.size - 1])
    for part in blocks(cells, COPY_BYTES // max(nbytes, 1)):
        values = buf.read(part)
        raw = values.reshape(part.size, -1).view(np.uint8).reshape(part.size, nbytes)
        pos = 0
        for first, stop in runs(part):
            n = stop - first
            pwrite_all(fd, memoryview(raw[pos : pos + n]).cast("B"), base + first * nbytes)  # type: ignore[arg-type]  # numpy's stubs: an ndarray is a Buffer
            pos += n


def stream_into(stage: Stage) -> None:
    """Point the stage table's on-disk outputs at the staged file, which now holds them."""
    table = stage.table
    computed = np.flatnonzero(table.status == COMPUTED)
    assert table.spec is not None  # a table with big outputs
    for i, (var, buf) in enumerate(zip(table.spec.variables, table.buffers)):
        if is_on_disk(buf) and i in stage.places:
            buf.rebase(RawSource(stage.fd, stage.places[i][0], var.dtype, var.shape), computed)
            buf.live = 0


def _check_place(
    nc: netCDF4.Dataset, fd: int, var: VariableSpec, table: FunctionTable, base: int, nbytes: int
) -> int:
    """Check through HDF5 that the last cell of ``var`` is where ``base`` says it is.

    A probe is written over the head of the last cell (see :func:`cell_head`) and read back
    through netCDF4; returns the bytes the probe took.
    """
    last = table.size - 1
    suffix, head = cell_head(var)
    probe = np.resize(np.frombuffer(b"xsweep-probe" + os.urandom(20), dtype=np.uint8), head)
    pwrite_all(fd, memoryview(probe), base + last * nbytes)  # type: ignore[arg-type]  # numpy's stubs: an ndarray is a Buffer
    index = tuple(int(i) for i in np.unravel_index(last, table.shape)) + suffix
    got = np.asarray(nc.variables[var.name][index])
    if got.tobytes() != probe.tobytes():
        raise StageUnavailable(f"{var.name} is not laid out as expected")
    return head


def _write_runs(fd: int, buf: InMemory, cells: np.ndarray, base: int, nbytes: int) -> None:
    """``pwrite`` the given flat cells of ``buf``, one call per run of neighbours."""
    if cells.size == 0:
        return
    flat = buf.reshape(buf.shape[0], -1).view(np.uint8).reshape(buf.shape[0], nbytes)
    for first, stop in runs(cells):
        pwrite_all(fd, memoryview(flat[first:stop]).cast("B"), base + first * nbytes)  # type: ignore[arg-type]  # numpy's stubs: an ndarray is a Buffer


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
                raise StageUnavailable(f"cannot find the data in {path}: {exc}") from exc
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


def wants_stage(table: FunctionTable, expect: int) -> bool:
    """Stage a sweep's big cells when the file it ends with will be mostly computed.

    A staged file lays big outputs out contiguously (see :func:`create_stage`); a barely
    computed grid stays with the sparse layout of :func:`~xsweep.store.bigcells.create_cells`.
    """
    spec = table.spec
    if table.streamed:
        return True  # its outputs never are in memory: they go to their place or nowhere
    if spec is None or not any(is_big(var) for var in spec.variables):
        return False
    return expect >= DENSE_FRACTION * table.size


@locked
def finish_stage(stage: Stage, current: bool, history: list[str]) -> bool:
    """Complete the staged file as the next snapshot; False when it cannot be.

    It cannot be when it is not ``current`` (a new layout arrived since it was staged), when
    another function's cells arrived, or when too few cells were computed to keep its dense
    layout: a new file is written instead, and the staged file stays until that publish
    succeeds, since the journal's records point into it.
    """
    table = stage.table
    done = np.count_nonzero(np.isin(table.status, DONE))
    # Streamed outputs: filling the cells not computed costs less than copying the
    # computed ones into a new file as long as they are fewer.
    dense = (
        done >= DENSE_FRACTION * table.size
        or _holes_read_as_fill(table)
        or (table.streamed and 2 * done >= table.size)
    )
    if not (current and stage.finalizable and dense):
        stage.close()
        return False
    try:
        return _finalize_stage(stage, history)
    except Exception:  # a full disk, say: writing a new file says what went wrong
        return False
    finally:
        stage.close()


def _holes_read_as_fill(table: FunctionTable) -> bool:
    """Whether every staged output is on disk with a zero fill (ints): cells never written
    are holes that read as the fill, so a sparsely computed staged file needs no filling."""
    if table.spec is None:  # no outputs: none streamed
        return False
    return table.streamed and all(
        not np.any(np.asarray(var.fill))
        for var, buf in zip(table.spec.variables, table.buffers)
        if is_on_disk(buf)
    )


def _finalize_stage(stage: Stage, history: list[str]) -> bool:
    """Write the small variables into the staged file and close it; False if it can't be.

    The big outputs' cells that are not computed get the fill the store holds for them
    (NaN, or 0), as a file written whole would have.
    """
    table = stage.table
    nc = stage.nc
    assert nc is not None  # open until finished
    assert table.spec is not None  # a table with big outputs
    codes, messages = table.error_codes()
    not_computed = np.flatnonzero(table.status != COMPUTED)
    for i, (var, buf) in enumerate(zip(table.spec.variables, table.buffers)):
        if i in stage.places and is_on_disk(buf):
            # Cells never written read as a zero fill (holes); failed ones may hold bytes.
            cells = (
                not_computed
                if np.any(np.asarray(var.fill))
                else np.flatnonzero(np.isin(table.status, (FAILED, NO_VALUE)))
            )
            write_fill_runs(stage.fd, var, cells, stage.places[i][0])
        elif i in stage.places:
            assert isinstance(buf, InMemory)  # on-disk ones are above
            base, nbytes = stage.places[i]
            _write_runs(stage.fd, buf, not_computed, base, nbytes)
        else:
            assert isinstance(buf, InMemory)  # the table's on-disk outputs are all staged
            data = buf.reshape(table.shape + var.shape)
            if maskable(var):
                data = staged_form(data, table_mask(table, var), nc.variables[var.name])
            if not is_text(var):  # text: write_text_late, below
                write_values(nc.variables[var.name], data)
        if i in stage.places and HOLES_ATTR in nc.variables[var.name].ncattrs():
            mark_staged_holes(stage, i, var, table)
    shape = table.shape
    write_values(nc.variables[table.names.status], table.status.reshape(shape))
    write_values(nc.variables[table.names.seconds], table.seconds.reshape(shape))
    write_values(nc.variables[table.names.error], codes.reshape(shape))
    write_text_late(nc, table, messages)
    nc.setncattr("updated", timestamp())
    if history:  # the line of the sweep that filled it came after it was staged
        nc.setncattr("history", "\n".join(history))
    nc.close()
    stage.nc = None
    stage.close()
    return True
