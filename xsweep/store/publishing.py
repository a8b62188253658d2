"""Publishing: the NetCDF file is only ever replaced whole, by a complete new snapshot.

Read :func:`publish` top to bottom: write the snapshot next to the file (the sweep's staged
file completed, else a new file written whole), make it durable and rename it over the file
(readers only ever see whole files), then start a new journal for the new generation.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING

import numpy as np

from ..errors import StoreError
from ..file_format import COMPUTED, JOURNAL_SUFFIX, TEMP_MARK
from .files import discard, unlink_quietly, write_cause
from .journal import HEADER_LEN, JournalWriter
from .ncfile import timestamp, write_file
from .ondisk import NcSource, is_on_disk
from .staging import Stage, finish_stage

if TYPE_CHECKING:  # annotations only: that module imports this one
    from .netcdf import NetCDFStore


def publish(store: NetCDFStore) -> None:
    """Replace the file with a complete new snapshot of everything in memory.

    1. Write the snapshot next to the file: the sweep's staged file completed (its big
       cells are in place already), else a new file written whole.
    2. Make it durable and rename it over the file: readers only ever see whole files.
    3. Discard the journal: its records are in the new file. A new journal, for the new
       generation, takes the next records.
    """
    started = time.monotonic()
    store._publishes += 1  # recorders open the new journal at their next cell
    stage, store._stage = store._stage, None
    tmp, generation = write_snapshot(store, stage)
    # A brand-new file that holds no results yet (the layout a sweep's first cell brings)
    # need not wait for its folder entry: a power cut before the next journal flush (which
    # makes the entry durable first) leaves no file, and loses nothing that was computed.
    # Its bytes are always on disk before its name is: never an empty file under the name.
    new_layout = store._file_generation is None and not any(
        table.status.any() for table in store.tables.values()
    )
    try:
        store._durable.replace(tmp, entry=not new_layout)
    except OSError as exc:
        if stage is None or tmp != stage.path:
            unlink_quietly(tmp)  # a staged file stays: the journal's records need its cells
        raise publish_error(store, exc) from exc
    store._file_generation = generation
    store._journal_only = {}
    repoint(store, stage if stage is not None and tmp == stage.path else None)
    store._signature = store._file_signature()
    store._slot_of = {key: i for i, key in enumerate(store.tables)}
    store._layout_dirty = False
    store._published_at = time.monotonic()
    store._publish_seconds = store._published_at - started
    start_journal(store, generation)


def repoint(store: NetCDFStore, finished: Stage | None) -> None:
    """After a publish: on-disk outputs read from the new file (bounded open files).

    A staged file that became the file is still where its table's cells are; any other
    table's on-disk outputs were copied into the new file, which they read from now (its
    inode, opened at once: a later publish cannot change what they read).
    """
    for table in store.tables.values():
        if not table.streamed:
            continue
        if finished is not None and finished.table is table:
            for buf in table.buffers:
                if is_on_disk(buf):
                    buf.live = None
            continue
        computed = np.flatnonzero(table.status == COMPUTED)
        for var, buf in zip(table.spec.variables, table.buffers):
            if is_on_disk(buf):
                source = NcSource(store.path, var.name, table.shape, var.shape, var.dtype)
                source.open()
                buf.rebase(source, computed)


def write_snapshot(store: NetCDFStore, stage: Stage | None) -> tuple[str, str]:
    """Step 1 of a publish: ``(path, generation)`` of a complete file next to ours."""
    if stage is not None:
        current = not store._layout_dirty and store.tables.get(stage.table.key) is stage.table
        if finish_stage(stage, current, store._history):
            return stage.path, stage.generation
    generation = uuid.uuid4().hex
    tmp = f"{store.path}{TEMP_MARK}{os.getpid()}"
    if store._created is None:
        store._created = timestamp()
    try:
        write_file(
            tmp, store.grid, store.tables, store._created, generation, history=store._history
        )
    except (OSError, RuntimeError) as exc:  # netCDF4 reports HDF5 errors as these
        unlink_quietly(tmp)
        raise publish_error(store, exc) from exc
    except BaseException:
        unlink_quietly(tmp)
        raise
    return tmp, generation


def start_journal(store: NetCDFStore, generation: str) -> None:
    """Step 3 of a publish: the old journal is inside the new file; open a new one."""
    if store._writer is not None:
        store._writer.close()
    tomb = f"{store.path}{TEMP_MARK}{os.getpid()}-{generation}{JOURNAL_SUFFIX}"
    discard(store.journal_path, tomb)
    if store._stage_in_journal is not None:
        unlink_quietly(store._stage_in_journal)  # gone already if it became the file
        store._stage_in_journal = None
    if store._writer is not None:
        store._writer = JournalWriter(store.journal_path, generation, store.fsync_interval)
        store._durable.opened(store._writer)


def publish_error(store: NetCDFStore, exc: Exception) -> StoreError:
    if store._file_generation is None and store._journal_size() <= HEADER_LEN:
        safe = "Nothing had been computed yet, so nothing is lost"
    else:
        stage = f" and {store._stage_in_journal}" if store._stage_in_journal is not None else ""
        safe = (
            f"Every cell computed so far is safe in the previous {store.path} and "
            f"{store.journal_path}{stage}"
        )
    return StoreError(
        f"Could not write the cache file {store.path}: {write_cause(exc, store.path)}. "
        f"{safe}; fix the cause and sweep again to publish them."
    )
