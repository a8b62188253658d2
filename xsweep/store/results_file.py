"""The results file's lifecycle: which snapshot we hold, its journal, and when to publish.

A :class:`~xsweep.store.netcdf.NetCDFStore` holds its results in tables; this module owns
everything about the *file* they go to: its identity as this process last read or wrote it
(the signature on disk, the snapshot generation, its CF provenance), the journal writer
that extends that snapshot, the staged file of a sweep of big cells, the publish clock
(when the next publish is due), and :class:`~xsweep.store.durability.Durability`. It answers
"does the file hold everything the store holds?" in one place (:meth:`ResultsFile.is_current`).

Publishing itself (:mod:`xsweep.store.publishing`) and the per-cell write path
(:mod:`xsweep.store.recording`) change it only through its public methods.
"""

from __future__ import annotations

import os
import threading
import time

from .._version import __version__
from ..file_format import JOURNAL_SUFFIX, TEMP_MARK
from .durability import Durability
from .files import discard, unlink_quietly
from .journal import HEADER_LEN, JournalWriter, open_journal, read_header, remove_journal
from .ncfile import timestamp
from .ncread import FileContents
from .replay import Replayed
from .staging import Stage


class ResultsFile:
    """The lifecycle of one results file: identity, journal, staged file, publish clock.

    Parameters
    ----------
    path : str
        The results file (absolute); its journal is ``<path>.journal``.
    fsync_interval : float or None
        Seconds between journal flushes (see :class:`~xsweep.store.durability.Durability`).
    snapshot_interval : float
        During a sweep, publish at least this often (seconds), never more often than 20
        times the time a publish takes.
    lock : threading.RLock
        The store's lock (a timed flush waits for a write session to end).

    Examples
    --------
    >>> import os, tempfile, threading
    >>> from xsweep.store.results_file import ResultsFile
    >>> file = ResultsFile(os.path.join(tempfile.mkdtemp(), "r.nc"), 1.0, 60.0, threading.RLock())
    >>> file.generation is None, file.is_current()  # no file yet: nothing is published
    (True, False)
    """

    def __init__(
        self,
        path: str,
        fsync_interval: float | None,
        snapshot_interval: float,
        lock: threading.RLock,
    ) -> None:
        self.path = path
        self.journal_path = path + JOURNAL_SUFFIX
        self.fsync_interval = fsync_interval
        self.snapshot_interval = snapshot_interval
        # -- the file as this process last read or wrote it
        #: The published snapshot's id; None: no file.
        self.generation: str | None = None
        #: The file's identity on disk (inode, mtime, size) when we last read or wrote it.
        self.signature: tuple | None = None
        self.created: str | None = None
        #: The file's CF history lines, newest first.
        self.history: list[str] = []
        #: Function key -> its slot in journal records (the order of the file's tables).
        self.slot_of: dict[str, int] = {}
        #: The layout in memory (tables, output structures, grid) is not the file's yet.
        self.layout_dirty = False
        #: Computed cells per function that only the journal holds (replaced, never mutated).
        self.journal_only: dict[str, int] = {}
        # -- the journal and the staged file
        self.writer: JournalWriter | None = None
        self._journal_loaded = 0  # the journal's size when we last read it
        self._journal_intact = 0  # end of the journal's last intact record
        #: This session's staged file (see :mod:`xsweep.store.staging`).
        self.stage: Stage | None = None
        #: The staged file that journal records point into, kept until a publish.
        self.stage_in_journal: str | None = None
        # -- the publish clock
        self.published_at = time.monotonic()
        self.publish_seconds = 0.0
        #: The journal size past which the next record publishes (0: the next record does).
        self.publish_at = 0
        #: Publishes so far: recorders start again (new journal, new codec) after each.
        self.publishes = 0
        #: This session publishes at its end (a sweep), so that it may stage big cells.
        self.session_publish = False
        #: What is not on disk yet that journal records depend on (the one owner of fsync).
        self.durable = Durability(path, fsync_interval, lock, self._stage_fd)

    def _stage_fd(self) -> int:
        return self.stage.fd if self.stage is not None else -1

    # -- what is on disk ------------------------------------------------------------------------
    def on_disk_signature(self) -> tuple | None:
        """The file's identity now (inode, mtime, size), or None if there is no file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def journal_size(self) -> int:
        """The journal's size now (0: none)."""
        try:
            return os.lstat(self.journal_path).st_size  # never follow a planted link
        except FileNotFoundError:
            return 0

    def replaced(self) -> bool:
        """Whether the file on disk is not the one we last read or wrote (another writer's)."""
        return self.on_disk_signature() != self.signature

    def stale(self) -> bool:
        """Whether the file or the journal changed on disk since we last read them."""
        return self.replaced() or self.journal_size() != self._journal_loaded

    def is_current(self) -> bool:
        """Whether the published file holds everything the store holds.

        That is: a file we published or read, still in place, whose layout is the store's,
        with no journal records beside it (ours or another process's).
        """
        return (
            self.generation is not None
            and self.signature is not None
            and not self.layout_dirty
            and (self.writer is None or self.writer.size <= HEADER_LEN)
            and self.journal_size() <= HEADER_LEN
            and self.on_disk_signature() == self.signature
        )

    def holds_records(self) -> bool:
        """Whether a journal holds records (this session's, earlier writes', a dead writer's)."""
        size = self.writer.size if self.writer is not None else self.journal_size()
        return size > HEADER_LEN

    def journal_outgrown(self, limit: int) -> bool:
        """Whether this session's journal grew past ``limit`` bytes."""
        return (self.writer.size if self.writer is not None else 0) > limit

    # -- loading --------------------------------------------------------------------------------
    def unload(self) -> None:
        """Forget the file's identity before reading it again (a failed read leaves none)."""
        self.generation = None
        self.created = None
        self.history = []
        self.layout_dirty = False

    def found_none(self, signature: tuple | None) -> None:
        """There is no file to read (``signature`` None), or an empty one: nothing to replay.

        A journal left beside it is an orphan, removed when a write session starts.
        """
        self.signature = signature
        self._journal_loaded = self.journal_size()
        self._journal_intact = 0
        self.stage_in_journal = None
        self.journal_only = {}

    def read(self, signature: tuple, contents: FileContents) -> None:
        """The file (of identity ``signature``) was read: its snapshot and provenance."""
        self.signature = signature
        self.generation, self.created = contents.generation, contents.created
        self.history = contents.history
        self.slot_of = {key: i for i, key in enumerate(contents.tables)}

    def replayed(self, replayed: Replayed, journal_only: dict[str, int]) -> None:
        """The journal was replayed onto the file's tables (``journal_only``: cells per key)."""
        self.journal_only = journal_only
        self._journal_loaded, self._journal_intact = replayed.size, replayed.intact
        self.durable.loaded(replayed.intact > HEADER_LEN)
        self.stage_in_journal = replayed.stage_path

    def reload_next_session(self) -> None:
        """Read the file again at the start of the next write session."""
        self.signature = None

    # -- the journal ----------------------------------------------------------------------------
    def drop_foreign_journal(self) -> None:
        """Remove a journal that does not extend our file: nothing in it can be replayed.

        Left by a process killed mid-publish (the file already holds its records), killed
        while creating it (no complete header, so no records), without a file to replay onto,
        or not a journal at all (a link).
        """
        if os.path.lexists(self.journal_path) and read_header(self.journal_path) != self.generation:
            remove_journal(self.journal_path)
            self._journal_loaded = self._journal_intact = 0

    def open_journal(self) -> JournalWriter:
        """This session's journal writer, opened on the published file if not yet open."""
        if self.writer is None:
            assert self.generation is not None  # a session's file is published first
            self.writer = open_journal(
                self.journal_path, self.generation, self._journal_intact, self.fsync_interval
            )
            self.durable.opened(self.writer)
        return self.writer

    def schedule_publish(self, limit: int) -> None:
        """Publish at the record that takes the journal past ``limit`` bytes, or earlier when
        the snapshot interval is up (checked at each flush, :meth:`maybe_publish_soon`)."""
        self.publish_at = limit
        assert self.writer is not None  # opened by open_journal()
        self.writer.on_sync = self.maybe_publish_soon

    def maybe_publish_soon(self, now: float) -> None:
        """At a journal flush: make the next record publish if the snapshot interval is up."""
        # Readers of the file see progress at least every snapshot_interval seconds, while
        # publishing never takes more than 1/20 of the sweep's time on big files.
        if self.stage is not None and self.stage.table.streamed:
            # Not for a streamed sweep: a publish would copy every cell computed so far
            # into a new staged file. Its cells are safe in the staged file and the
            # journal (xsweep readers see them); the file is published when it ends, or
            # on demand (ps.publish(), xsweep publish).
            return
        due = self.published_at + max(self.snapshot_interval, 20 * self.publish_seconds)
        if now >= due:
            self.publish_at = 0  # the next record publishes

    def staged(self, stage: Stage) -> None:
        """``stage`` was created and named in the journal: its cells go there now."""
        self.stage = stage
        self.stage_in_journal = stage.path
        self.durable.new_entry()

    def close_journal(self) -> None:
        """A write session ends: close its journal (removed if it holds no records)."""
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                self.durable.ended(writer)  # run_process: flushed within fsync_interval
            finally:
                writer.close()
            if writer.size <= HEADER_LEN:
                unlink_quietly(self.journal_path)
        self._journal_loaded = self.journal_size()
        self._journal_intact = self._journal_loaded  # we appended whole records only

    # -- publishing -----------------------------------------------------------------------------
    def publish_started(self) -> Stage | None:
        """A publish begins: hands over the staged file it may complete (None if none).

        Recorders open the new journal at their next cell.
        """
        self.publishes += 1
        stage, self.stage = self.stage, None
        return stage

    def creation_time(self) -> str:
        """When the file was created (now, for a file first written now)."""
        if self.created is None:
            self.created = timestamp()
        return self.created

    def published(self, generation: str, keys: list[str], started: float) -> None:
        """The snapshot ``generation`` of tables ``keys`` is in place (publish began at
        ``started``, ``time.monotonic``)."""
        self.generation = generation
        self.journal_only = {}
        self.signature = self.on_disk_signature()
        self.slot_of = {key: i for i, key in enumerate(keys)}
        self.layout_dirty = False
        self.published_at = time.monotonic()
        self.publish_seconds = self.published_at - started

    def restart_journal(self, generation: str) -> None:
        """After a publish: the old journal is inside the new file; open a new one."""
        if self.writer is not None:
            self.writer.close()
        tomb = f"{self.path}{TEMP_MARK}{os.getpid()}-{generation}{JOURNAL_SUFFIX}"
        discard(self.journal_path, tomb)
        if self.stage_in_journal is not None:
            unlink_quietly(self.stage_in_journal)  # gone already if it became the file
            self.stage_in_journal = None
        if self.writer is not None:
            self.writer = JournalWriter(self.journal_path, generation, self.fsync_interval)
            self.durable.opened(self.writer)

    # -- provenance and closing -----------------------------------------------------------------
    def add_history(self, line: str) -> None:
        """Note ``line`` in the file's ``history`` attribute (newest first, the last 100)."""
        created = self.creation_time()
        if not self.history:
            self.history = [f"{created}: created by xsweep {__version__}"]
        self.history = [f"{timestamp()}: {line}", *self.history][:100]

    def close(self) -> None:
        """Flush what is pending (the store lets go of the file), and stop the flush timer."""
        self.durable.close()
