"""The NetCDF store: results persisted in one NetCDF4 file, crash-safe.

How the NetCDF store keeps every computed cell through any interruption:

* Live results sit in numpy buffers, one per output, plus a per-cell status (not computed,
  computed, failed), the seconds each cell took and the failure messages.
* Each finished cell is appended to ``<file>.journal`` as one framed, checksummed record,
  copied into a shared memory map of it (or written with one ``pwritev`` when big; see
  :mod:`xsweep.store.journal`): a killed process keeps every record finished before the kill;
  ``fdatasync`` runs every ``fsync_interval`` seconds against power loss.
* A sweep of big cells (images) that will leave its grid mostly computed first writes the next
  snapshot next to the file, with those cells' places fixed, and writes each finished cell
  straight there; its journal record holds a checksum of the bytes (see
  :mod:`xsweep.store.staging`). Every byte of an image is thus written once, not to the
  journal and again to the file.
* The NetCDF file is only ever replaced whole: a complete new file is written next to it,
  fsynced and ``os.replace``-d over it, at the end of each write session (a sweep), whenever the
  journal outgrows the file, and on any change of layout. Readers therefore always see a
  complete file, and never block the writer (it holds no HDF5 handle on that file).
* Opening replays the journal onto the file when both belong to the same snapshot generation.
* A sweep's returned Dataset is the caller's: big results are handed over rather than copied,
  and the store reads them back from the file if it needs them again (``result``).
* ``<file>.lock`` admits one writer at a time: an ``flock``, which the kernel drops when its
  holder dies, so a dead holder's lock is taken over; where ``flock`` is refused or works
  only within one machine (NFS, Lustre), a lock file naming its holder (:mod:`.locking`).

The store is its tables (:class:`~xsweep.store.tablestore.TableStore`, as the in-memory
store) plus the file's lifecycle, one :class:`~xsweep.store.results_file.ResultsFile`: which
snapshot this process holds, its journal, the staged file and when to publish next.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import (
    DamagedSideFileWarning,
    StoreError,
    StoreLockedError,
    StoreReadOnlyError,
    warn_user,
)
from ..file_format import DONE, LOCK_SUFFIX, Coords
from ..outputs import OutputSpec
from .base import Recorder
from .budget import default_budget
from .durability import empty_file_message
from .files import clean_temp_files, wait_discards
from .grid import Grid
from .journal import HEADER_LEN, JournalWriter
from .lazy import lazy_dataset
from .locking import WriterLock
from .ncread import read_file, read_outputs
from .ondisk import streams
from .publishing import publish
from .recording import make_recorder
from .replay import replay_journal
from .results_file import ResultsFile
from .table import FunctionTable
from .tablestore import TableStore


# ---------------------------------------------------------------------------------------------
# The NetCDF store
# ---------------------------------------------------------------------------------------------
class NetCDFStore(TableStore):
    """Results persisted in one NetCDF4 file, crash-safe (see the module docstring).

    The tables live in memory (:class:`~xsweep.store.tablestore.TableStore`); the file's
    lifecycle (its identity, journal, staged file and publish clock) is ``file``, a
    :class:`~xsweep.store.results_file.ResultsFile`.

    Parameters
    ----------
    path : str
        The NetCDF file. Sidecars ``<path>.journal`` and ``<path>.lock`` live next to it
        while a sweep runs or results await publishing.
    grid : Grid or dict
        The space's parameters (a :class:`~xsweep.store.grid.Grid`, or
        ``name -> (values, attrs)``); None to use the file's own.
    fsync_interval : float or None
        Seconds between flushes of the journal to stable storage: the most a power loss or OS
        crash can cost. 0 flushes after every cell; None only when a snapshot is published.
    computed_at : dict, optional
        Values of parameters added since results were stored, at which those were computed.
    snapshot_interval : float
        During a sweep, publish the file at least this often (seconds), so that readers see
        progress; never more often than 20 times the time a publish takes.
    outputs : bool
        False: read only the bookkeeping (a summary of a file of any size; never written).
    memory_budget : int, optional
        Bytes: a function whose array outputs over its grid need more stays on disk
        (streamed, read lazily); default :func:`~xsweep.store.budget.default_budget`.

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
    path: str  # always a file

    def __init__(
        self,
        path: str,
        grid: Grid | Coords | None,
        *,
        fsync_interval: float | None = 1.0,
        computed_at: dict[str, Any] | None = None,
        snapshot_interval: float = 60.0,
        outputs: bool = True,
        memory_budget: int | None = None,
    ):
        super().__init__(grid or {})
        #: Bytes of a function's array outputs kept in memory; beyond, they stay on disk.
        self.memory_budget = default_budget() if memory_budget is None else memory_budget
        #: The space's own grid; the store's (``grid``) is its union with the file's.
        self.space_grid = self.grid.copy()
        self.computed_at = dict(computed_at or {})
        self.path = os.path.abspath(os.fspath(path))
        self._threads = threading.RLock()
        #: The results file's lifecycle: identity, journal, staged file, publish clock.
        self.file = ResultsFile(self.path, fsync_interval, snapshot_interval, self._threads)
        self.journal_path = self.file.journal_path
        self._lock = WriterLock(self.path + LOCK_SUFFIX, self.path)
        self._in_session = False
        self._sweeping_thread: int | None = None  # the thread whose sweep holds the session
        #: Why this session cannot write (the folder is read-only), or None.
        self._read_only: str | None = None
        #: A summary (``xsweep info``) of a file of any size: it never writes.
        self.summary_only = not outputs
        self._load()

    # -- loading ------------------------------------------------------------------------------
    def _load(self) -> None:
        for table in self.tables.values():
            table.close()
        self.tables = {}
        file = self.file
        file.unload()
        signature = file.on_disk_signature()
        empty = signature is not None and signature[2] == 0
        if empty:  # it never held results: the next publish replaces it
            warn_user(empty_file_message(self.path), DamagedSideFileWarning)
        if signature is None or empty:
            file.found_none(signature)
            self.grid = self.space_grid.copy()
            return
        contents = read_file(self.path, not self.summary_only, self.memory_budget)
        file.read(signature, contents)
        self.tables = contents.tables
        # Journal records index cells in the file's grid: replay before the grid grows.
        in_file = {key: np.isin(t.status, DONE) for key, t in self.tables.items()}
        replayed = replay_journal(
            self.path, self.journal_path, file.generation, list(self.tables.values())
        )
        journal_only = {
            key: int(np.count_nonzero(np.isin(t.status, DONE) & ~in_file[key]))
            for key, t in self.tables.items()
        }
        file.replayed(replayed, journal_only)
        self._grow_grid(contents.grid)

    def _grow_grid(self, file_grid: Grid) -> None:
        """Make the store's grid the union of the file's and the space's values.

        Values the space adds get new, not computed cells; values it lacks stay in the file
        with their results. Nothing reaches the file until the next write.
        """
        self.grid, moved = file_grid.with_space(self.space_grid, self.path)
        for table in self.tables.values():
            positions = {d: moved[d] for d in table.dims if d in moved}
            if positions:
                table.regrid(table.dims, self.grid.shape(table.dims), positions, {})
        if moved:
            self.file.layout_dirty = True

    def grow_to(self, space: Grid) -> None:
        """The space's values changed (refinement): the store's grid becomes the union of
        its values and the new space's; the file follows at the next write session.

        Waits for a write session that another thread runs in this store (a sweep, a
        publish) to end: its tables must not move under it.
        """
        with self._threads:
            self.space_grid = space.copy()
            self._grow_grid(self.grid)

    # -- write sessions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, publish: bool = True) -> Iterator[None]:
        """Hold the writer lock for a sweep (``publish=True``) or a single write.

        On entry, results another writer published since we loaded are read back in. On exit
        the results are published as a new complete file (``publish=True``, or when the
        journal has grown past the file), the journal is removed, and the lock released.
        """
        if self.summary_only:
            raise StoreError(f"{self.path} was opened for a summary only; it cannot be written.")
        # A notebook view's thread and the main thread take turns for short writes; a sweep
        # that another thread runs (a background sweep) is an error at once, not a wait.
        if not self._threads.acquire(blocking=False):
            if self._sweeping_thread not in (None, threading.get_ident()):
                raise StoreLockedError(
                    f"A sweep into {self.path} is running in another thread of this process "
                    "(a background sweep). Wait for it with job.result(), or stop it with "
                    "job.stop() or ps.stop_sweep(), then try again."
                )
            self._threads.acquire()
        try:
            if self._in_session:  # nested (run_process inside a sweep): already writing
                yield
                return
            if publish:
                self._sweeping_thread = threading.get_ident()
            try:
                with self._session(publish):
                    yield
            finally:
                self._sweeping_thread = None
        finally:
            self._threads.release()

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
        self.file.session_publish = publish
        try:
            if self.file.stale():
                self._load()
            if self._read_only is None:
                clean_temp_files(self.path, keep=self.file.stage_in_journal)
                self.file.drop_foreign_journal()
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
                elif not ok and self.file.writer is None:
                    self._roll_back()
                else:
                    self._end_session(publish or not ok)
        finally:
            self._in_session = False
            self._lock.release()

    def _roll_back(self) -> None:
        """Forget a failed session that recorded nothing: the file stays byte-identical.

        The session may have added a table or an output structure for a function whose
        first cell was then refused (a bad return value, a name clash); publishing that
        would leave an empty table behind, and keep the refused structure.
        """
        if not self.file.layout_dirty:
            return
        try:
            self._load()
        except Exception:
            self.file.reload_next_session()

    def _check_writable(self) -> None:
        if self._read_only is not None:
            raise StoreReadOnlyError(self._read_only)

    def _end_session(self, publish: bool) -> None:
        file = self.file
        # Records may also come from earlier run_process writes or a killed writer's journal.
        dirty = file.holds_records()
        if file.layout_dirty or (
            dirty and (publish or file.journal_outgrown(self.journal_limit()))
        ):
            self.publish_snapshot()
        file.close_journal()

    def journal_limit(self) -> int:
        """Journal size that triggers a publish: the size of the results it would hold.

        Keeping the journal at most as big as the data bounds replay time and disk use, and
        costs at most one extra write of the data; measuring the data (not the file, which
        is sparse for big cells) keeps that from happening over and over as the file grows.
        """
        data = sum(
            table.memory_bytes()
            + table.status.nbytes
            + table.seconds.nbytes
            + (min(self.memory_budget, table.size * 1024) if table.streamed else 0)
            for table in self.tables.values()
        )
        return max(data, 64 << 20)

    def open_journal(self) -> JournalWriter:
        """The session's journal, publishing first any layout the file does not hold yet."""
        if self.file.layout_dirty or self.file.generation is None:
            self.publish_snapshot()
        return self.file.open_journal()

    def record_part(
        self, table: FunctionTable, part: tuple[int, int], selected: Sequence[np.ndarray]
    ) -> bool:
        """Note the part ``table`` is asked for, and publish the note at once.

        Cells reach the file through the journal, the note only with a publish: without one
        now, a task killed before its first cell (or during a long first cell) would leave
        no file saying what it owes. One publish per change of the note, not per sweep.
        """
        if self._read_only is not None:
            return False  # a session that cannot write changes nothing (its reads go on)
        changed = super().record_part(table, part, selected)
        if changed:
            self.publish_snapshot()
        return changed

    def recorder(self, table: FunctionTable, expect: int = 0) -> Recorder:
        """Per-cell writes: a journal record, then the table in memory.

        The record goes first, so that a cell in memory is always a cell on disk; after a
        publish, the next record starts a new journal (and perhaps a staged file).
        """
        self._check_writable()  # before any cell is computed, not after
        return make_recorder(self, table, expect)

    def rotate(self) -> None:
        """Publish mid-session (the journal outgrew the file, or time is up); new journal."""
        self.publish_snapshot()
        self.file.schedule_publish(self.journal_limit())

    def publish_snapshot(self) -> None:
        """Replace the file with a complete new snapshot, now, in a write session (see
        :mod:`xsweep.store.publishing`)."""
        publish(self.file, self.grid, self.tables)

    # -- reading --------------------------------------------------------------------------------
    def readable(
        self, key: str, name: str, dims: tuple[str, ...], fingerprint: str | None
    ) -> FunctionTable | None:
        if self._in_session or self._sweeping_thread is not None:
            return None  # a session of this process writes the tables: take turns with it
        return super().readable(key, name, dims, fingerprint)

    def result(self, table: FunctionTable, lazy: bool | None = None) -> xr.Dataset:
        """The caller's own copy of ``table``'s results.

        ``lazy`` (default: when the outputs are kept on disk) makes the outputs read from
        the published file when indexed (dask arrays, chunked by whole cells, when dask is
        installed); the file is published first if the journal holds cells it lacks.

        Otherwise, when the file holds exactly what memory holds (just published, nothing
        journaled since: the end of every sweep), the caller takes over the buffers instead
        of a copy, and the store reads them back from the file if it needs them again. A
        sweep of images then returns without a second pass over its results, and peak
        memory stays at one copy of them.
        """
        with self._threads:
            if lazy is None:
                lazy = table.streamed
            if lazy:
                return self._lazy_result(table)
            if self._lendable(table):
                return table.lend(self.grid)
            self._reclaim()
            table = self.tables.get(table.key, table)
            return table.to_dataset(self.grid, copy=True).load()

    def _lendable(self, table: FunctionTable) -> bool:
        """Whether the caller may take over ``table``'s buffers: big, the store's own, and
        in the file as they are, with no journal open that the session may still write."""
        return (
            self.tables.get(table.key) is table
            and table.spec is not None
            and sum(buf.nbytes for buf in table.buffers) >= LEND_BYTES
            and not table.lent
            and not table.streamed
            and self.file.writer is None
            and self.file.is_current()
        )

    def _lazy_result(self, table: FunctionTable) -> xr.Dataset:
        """``table``'s results with its array outputs read lazily from the published file.

        When the file cannot be made current (a read-only folder while another writer's
        journal holds cells), the outputs read through the store instead: lazily too, and
        never stale.
        """
        if not self._in_session and not self.file.is_current():
            with contextlib.suppress(StoreError):
                self.publish()
        table = self.tables.get(table.key, table)
        if not self.file.is_current():
            return table.to_dataset(self.grid, copy=True)  # reads through the store
        assert self.file.generation is not None  # the file is current
        return lazy_dataset(self.path, self.file.generation, table, self.grid, self.memory_budget)

    def reclaim(self) -> None:
        """Give lent tables buffers of their own again, read back from the file.

        If another writer replaced the file since, the whole store is reloaded from it.
        """
        if not any(t.lent for t in self.tables.values()):
            return  # the common case, without waiting for a session another thread holds
        with self._threads:
            self._reclaim()

    def _reclaim(self) -> None:
        lent = [t for t in self.tables.values() if t.lent]
        if not lent:
            return
        if self.file.replaced():
            self._load()  # another writer published since: everything comes back from disk
            return
        read_outputs(self.path, lent)

    def journal_only_cells(self, key: str) -> int:
        """Computed cells of ``key`` that only the journal holds, not the file yet."""
        return self.file.journal_only.get(key, 0)

    # -- the table set's hooks ------------------------------------------------------------------
    def layout_changed(self) -> None:
        """The next journal record publishes first: records only carry cell values."""
        # New functions and output structures reach the file before any journal record
        # that refers to them (see open_journal).
        if not self._in_session:
            raise StoreError(
                f"Internal error: the layout of {self.path} changed outside a write session."
            )
        self.file.layout_dirty = True

    def keeps_on_disk(self, table: FunctionTable, spec: OutputSpec) -> bool:
        """Stream ``table``'s array outputs when they need more than the memory budget."""
        arrays = sum(v.dtype.itemsize * int(np.prod(v.shape)) for v in spec.variables if streams(v))
        return table.size * arrays > self.memory_budget

    # -- housekeeping ---------------------------------------------------------------------------
    def compact(self) -> dict[str, int]:
        """Drop from the file every parameter value the space does not have.

        Returns how many values were dropped per parameter. Results at those values are
        deleted: the caller asked for it.
        """
        with self.writing():
            self._check_writable()
            dropped = {}
            for name, (values, attrs) in self.space_grid.items():
                if self.grid.is_space(name):
                    continue
                keep = self.grid.positions[name]
                dropped[name] = len(self.grid[name].values) - len(keep)
                for table in self.tables.values():
                    if name in table.dims:
                        table.take(name, keep)
                rounds = self.grid.rounds.get(name)
                self.grid.set(
                    name,
                    values,
                    {**self.grid[name].attrs, **attrs},
                    rounds=None if rounds is None else rounds[keep],
                )
            if dropped:
                self.file.layout_dirty = True
            return dropped

    def publish(self) -> None:
        """Write into the file what only the journal holds, now (a write session)."""
        with self.writing():
            self._check_writable()

    def add_history(self, line: str) -> None:
        """Note ``line`` in the file's ``history`` attribute (newest first, the last 100)."""
        # Not a change of layout (that would keep a sweep's staged file from becoming the
        # file): the line reaches the file with the publish of the cells it describes.
        self.file.add_history(line)

    def clear(self, key: str | None = None) -> None:
        with self.writing():
            self._check_writable()
            super().clear(key)
            self.file.layout_dirty = True  # publish the cleared state even with nothing journaled

    def close(self) -> None:
        """Publish results that only the journal holds (after ``run_process`` writes)."""
        if self.file.journal_size() > HEADER_LEN and not self._in_session and not self.summary_only:
            try:
                with self.writing():
                    pass
            except StoreError:
                pass  # another writer holds it; it will publish the journal
        self.file.close()  # flushes what a failed publish left pending
        wait_discards()  # no sidecar outlives disable_cache()


#: Results at least this big are handed to the caller rather than copied (``result``).
LEND_BYTES = 1 << 20
