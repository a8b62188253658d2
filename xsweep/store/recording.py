"""The per-cell write path of the NetCDF store: a journal record, then the table.

Kept apart from :mod:`xsweep.store.netcdf` because it is the code that runs once per cell:
everything it needs is bound once per journal (``start``), so that ``record`` is a handful of
calls. The record goes first, so that a cell in memory is always a cell on disk; after a
publish, the next record starts a new journal (and perhaps a staged file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from .base import Recorder
from .codec import RecordCodec, control_record
from .files import unlink_quietly, write_cause
from .journal import HEADER_LEN, JournalWriter
from .staging import Stage, StageUnavailable, create_stage, stream_into, wants_stage
from .table import FunctionTable

if TYPE_CHECKING:  # annotations only: that module imports this one
    from .netcdf import NetCDFStore


def make_recorder(store: NetCDFStore, table: FunctionTable, expect: int = 0) -> Recorder:
    """The recorder of ``table``'s cells into ``store`` (see the module docstring).

    ``expect``: how many cells will be computed when the session ends (a layout hint).
    """
    file = store.file  # the results file's lifecycle: its journal, stage and publish clock
    rotate = store.rotate
    # What the hot path uses, set again by start() after every publish (a new journal).
    codec: RecordCodec | None = None
    writer: JournalWriter | None = None
    encode: Any = None  # codec.encode, or the struct of all-scalar cells (fast path)
    put = table.putter()
    journal_of = -1  # the publish count they were made for

    def start() -> None:
        nonlocal codec, writer, encode, put, journal_of
        codec = open_codec(store, table, expect)
        encode = codec.encode
        writer = file.writer
        put = table.putter()
        journal_of = file.publishes
        file.schedule_publish(store.journal_limit())

    def append(payload: bytes | list) -> None:
        assert writer is not None  # set by start()
        try:
            writer.append(payload)
        except StoreError:
            raise
        except OSError as exc:
            raise journal_error(store, exc) from exc

    def record(index: int, values: tuple, seconds: float) -> None:
        if journal_of != file.publishes:
            start()
        assert writer is not None  # set by start()
        try:
            writer.append(encode(index, values, seconds))
        except StoreError:
            raise
        except OSError as exc:
            raise journal_error(store, exc) from exc
        put(index, values, seconds)
        if writer.size > file.publish_at:
            rotate()

    def record_failure(index: int, message: str, seconds: float) -> None:
        if journal_of != file.publishes:
            start()
        assert codec is not None  # set by start()
        append(codec.encode_failure(index, message, seconds))
        table.put_failure(index, message, seconds)

    def record_none(index: int, seconds: float) -> None:
        if journal_of != file.publishes:
            start()
        assert codec is not None  # set by start()
        append(codec.encode_none(index, seconds))
        table.put_none(index, seconds)

    return Recorder(record, record_failure, record_none)


def open_codec(store: NetCDFStore, table: FunctionTable, expect: int) -> RecordCodec:
    """Open the store's journal (and the sweep's staged file, if it wants one): the codec
    that encodes ``table``'s cells for them. Once per journal, not per cell."""
    file = store.file
    try:
        store.open_journal()
        stage = file.stage
        if stage is None and file.session_publish and wants_stage(table, expect):
            stage = begin_stage(store, table)
        elif stage is not None and stage.table is not table:
            stage.finalizable = False  # another function's cells are not in it
    except StoreError:
        raise
    except OSError as exc:
        raise journal_error(store, exc) from exc
    slot = file.slot_of[table.key]
    if stage is not None and stage.table is table:
        return RecordCodec(table, slot, stage.fd, stage.places)
    return RecordCodec(table, slot)


def begin_stage(store: NetCDFStore, table: FunctionTable) -> Stage | None:
    """Create the staged file for ``table`` and name it in the journal (None: unavailable)."""
    file = store.file
    writer = file.writer
    if file.layout_dirty or writer is None or writer.size > HEADER_LEN:
        # The staged file starts a journal of its own; earlier records go to the file.
        store.publish_snapshot()
        writer = store.open_journal()
    try:
        stage = create_stage(file.path, store.grid, store.tables, table, file.created, file.history)
    except StageUnavailable:
        return None  # journal the cells whole instead: slower, as safe
    control = control_record(stage.path, file.slot_of[table.key], stage.places)
    try:
        writer.append(control)
    except BaseException:
        stage.close()
        unlink_quietly(stage.path)
        raise
    file.staged(stage)
    stream_into(stage)
    return stage


def journal_error(store: NetCDFStore, exc: OSError) -> StoreError:
    """The error of a cell that could not be recorded, saying why and that the rest is safe."""
    return StoreError(
        f"Could not record a finished cell in {store.journal_path}: "
        f"{write_cause(exc, store.path)}. Every cell recorded before it is safe (in "
        f"{store.path} and the journal); the cell being recorded is not. Fix the cause and "
        "sweep again: it resumes with the missing cells."
    )
