"""What must reach the disk before the journal's records may count on it: one owner.

A SIGKILL keeps every written byte (the kernel's page cache survives it); a power cut or an
OS crash keeps only what was flushed, and file system metadata (a folder entry) only when
its folder was flushed. A journal record extends one published file (its generation) and
may point into a staged file, so a flushed record is worth something only if all of these
survive with it:

* the results file's bytes: fsynced before it is renamed into place, always (a rename of
  bytes that are not on disk can leave an empty file under the name after a power cut);
* the folder entries naming the file, the journal and the staged file: the folder is fsynced
  at a publish, or, when nothing computed depends on the entry yet (a new file holding only
  a layout), before the next journal flush;
* a file and journal read from disk: their writer may have been killed before it flushed
  them (a SIGKILL leaves them in the page cache), so they are flushed, with the folder,
  before this process's first record counts on them; a journal holding records that no one
  flushed is flushed at this process's first record;
* the staged file's cells: ``fdatasync`` before the journal records that name them;
* the journal itself: every ``fsync_interval`` seconds, and within that time after a write
  that ended its session with records unflushed (``run_process``), by a timer.

:class:`Durability` tracks what is not proven durable yet and makes it so in
:meth:`Durability.before_flush`, which the journal writer calls before each flush. Nothing
here runs per cell.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

from ..errors import StoreError
from ..file_format import JOURNAL_SUFFIX
from .files import fsync_dir, fsync_file
from .journal import HEADER_LEN, JournalWriter, open_side_file


class Durability:
    """What of a store's files is not proven durable yet, and the flushes that make it so.

    Parameters
    ----------
    path : str
        The results file; its journal is ``<path>.journal``.
    fsync_interval : float or None
        Seconds between journal flushes (None: only publishes flush).
    lock : threading.RLock
        The store's lock: a timed flush never runs during a write session (whose appends
        flush on their own).
    stage_fd : callable
        Returns the open staged file's descriptor, or -1.

    Examples
    --------
    >>> import os, tempfile, threading
    >>> from xsweep.store.durability import Durability
    >>> folder = tempfile.mkdtemp()
    >>> durable = Durability(os.path.join(folder, "r.nc"), 1.0, threading.RLock(), lambda: -1)
    >>> with open(os.path.join(folder, "tmp"), "wb") as fh:
    ...     _ = fh.write(b"a complete file")
    >>> durable.replace(os.path.join(folder, "tmp"), entry=False)  # bytes fsynced, then renamed
    >>> durable.folder_unproven
    True
    >>> durable.before_flush()
    >>> durable.folder_unproven
    False
    """

    def __init__(
        self,
        path: str,
        fsync_interval: float | None,
        lock: threading.RLock,
        stage_fd: Callable[[], int],
    ) -> None:
        self.path = path
        self.folder = os.path.dirname(path)
        self.journal_path = path + JOURNAL_SUFFIX
        self.fsync_interval = fsync_interval
        self._lock = lock
        self._stage_fd = stage_fd
        #: The results file may hold bytes that are not on disk (read from disk, not ours).
        self.file_unproven = False
        #: A folder entry (file, journal, staged file) may not be on disk.
        self.folder_unproven = False
        #: The journal holds records not flushed yet.
        self.pending = False
        #: When the journal was last flushed (``time.monotonic``); -inf: flush at once.
        self.flushed_at = time.monotonic()
        self._timer: threading.Timer | None = None

    # -- what happened ----------------------------------------------------------------------
    def replace(self, tmp: str, entry: bool) -> None:
        """Rename the complete file ``tmp`` over the results file, its bytes durable first.

        ``entry``: make the new folder entry durable now; else the next flush does (only for
        a file on which nothing computed depends yet). Raises ``OSError``.
        """
        fsync_file(tmp)
        os.replace(tmp, self.path)
        if entry:
            fsync_dir(self.folder)
        self.folder_unproven = not entry
        self.file_unproven = False
        self.pending = False  # the journal's records are in the file now
        self.flushed_at = time.monotonic()

    def loaded(self, records: bool) -> None:
        """The file (and journal) were read from disk: prove them before relying on them.

        ``records``: the journal holds records, perhaps never flushed by the process that
        wrote them (killed first): this process's first record flushes them. (A process that
        only reads flushes nothing: it is not its data to wait for.)
        """
        self.file_unproven = os.path.lexists(self.path)
        self.folder_unproven = True
        if records:
            self.flushed_at = -math.inf

    def opened(self, writer: JournalWriter) -> None:
        """A journal writer starts: it flushes through :meth:`before_flush`, on our clock."""
        writer.before_sync = self.before_flush
        # The interval runs across writers: a write session (run_process) is often shorter.
        writer.last_sync = self.flushed_at
        if self.pending or self.flushed_at == -math.inf:
            writer.synced = 0  # records of an earlier session or process wait for a flush
        if writer.created:
            self.folder_unproven = True

    def new_entry(self) -> None:
        """A file that journal records will name was created in the folder (staged file)."""
        self.folder_unproven = True

    # -- making it so -------------------------------------------------------------------------
    def before_flush(self) -> None:
        """Make durable what the journal's records depend on (the writer flushes them next)."""
        if self.file_unproven:
            try:
                fsync_file(self.path)
            except FileNotFoundError:
                pass
            self.file_unproven = False
        fd = self._stage_fd()
        if fd >= 0:
            os.fdatasync(fd)
        if self.folder_unproven:
            fsync_dir(self.folder)
            self.folder_unproven = False
        self.pending = False
        self.flushed_at = time.monotonic()

    def ended(self, writer: JournalWriter) -> None:
        """A write session ends with ``writer``: flush its records within the interval."""
        if writer.size <= max(writer.synced, HEADER_LEN) or self.fsync_interval is None:
            self.flushed_at = max(self.flushed_at, writer.last_sync)
            return
        self.pending = True
        delay = self.flushed_at + self.fsync_interval - time.monotonic()
        if delay <= 0:
            try:
                writer.sync()
            except OSError as exc:
                raise StoreError(
                    f"Could not flush {self.journal_path} to disk ({exc}): the cells just "
                    "computed are journaled, but may not survive a power cut. Check the disk "
                    "(free space, errors), then sweep again: it publishes them into the file."
                ) from exc
            return
        if self._timer is None:
            self._timer = threading.Timer(delay, self._flush_due)
            self._timer.daemon = True
            self._timer.name = "xsweep-flush"
            self._timer.start()

    def _flush_due(self) -> None:
        """The timer: flush records a finished write session left (none if a publish did)."""
        with self._lock:
            self._timer = None
            if not self.pending:
                return
            fd = open_side_file(self.journal_path)
            if fd is None:
                self.pending = False
                return
            try:
                self.before_flush()
                os.fdatasync(fd)
            except OSError:
                pass  # the next write or publish reports a disk that fails
            finally:
                os.close(fd)

    def close(self) -> None:
        """Flush now what is pending (the store lets go of the file), and stop the timer."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if self.pending:
            self._flush_due()


def empty_file_message(path: str) -> str:
    """The warning for an empty results file: what left it, and that nothing is to be done."""
    return (
        f"The cache file {path} is empty (0 bytes) and was ignored: a power cut or an OS "
        "crash while it was first written left it so (xsweep 0.1 renamed a new file into "
        "place before its bytes reached the disk). It never held results; the next sweep "
        f"replaces it. Cells that only {path}.journal held cannot be replayed without it and "
        "are computed again."
    )
