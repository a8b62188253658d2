"""The NetCDF store: results persisted in one NetCDF4 file, crash-safe.

How the NetCDF store keeps every computed cell through any interruption:

* Live results sit in numpy buffers, one per output, plus a per-cell status (not computed,
  computed, failed), the seconds each cell took and the failure messages.
* Each finished cell is appended to ``<file>.journal`` as one framed, checksummed record written
  with a single ``os.write`` (see :mod:`xsweep.journal`): a killed process keeps every record
  written before the kill; ``fdatasync`` runs every ``fsync_interval`` seconds against power loss.
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
* ``<file>.lock`` (an ``flock``) admits one writer at a time; the kernel drops it when its
  holder dies, so a dead holder's lock is taken over.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr

from ..errors import (
    DamagedSideFileWarning,
    StoreError,
    StoreReadOnlyError,
    warn_user,
)
from ..journal import (
    HEADER_LEN,
    JournalWriter,
    is_foreign,
    map_journal,
    open_side_file,
    read_header,
    read_records,
)
from ..locking import WriterLock
from .codec import _HEAD, _RECORD_ERRORS, _SLOT, _STAGE_ID, CONTROL_SLOT, STAGE, _Codec, _Malformed
from .files import _discard, _fsync_dir, _fsync_file, _unlink, _wait_discards, _write_cause
from .grid import _union
from .memory import MemoryStore
from .ncfile import DENSE_FRACTION, _is_big, _load_buffers, _read_file, _values, _write_file
from .schema import DONE, Coords
from .staging import _create_stage, _finalize_stage, _Stage, _StageUnavailable
from .table import FunctionTable


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


#: Results at least this big are handed to the caller rather than copied (``result``).
LEND_BYTES = 1 << 20


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
