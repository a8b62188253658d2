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
from .codec import RecordCodec
from .files import write_cause
from .journal import JournalWriter
from .staging import wants_stage
from .table import FunctionTable

if TYPE_CHECKING:  # annotations only: that module imports this one
    from .netcdf import NetCDFStore


def make_recorder(store: NetCDFStore, table: FunctionTable, expect: int = 0) -> Recorder:
    """The recorder of ``table``'s cells into ``store`` (see the module docstring).

    ``expect``: how many cells will be computed when the session ends (a layout hint).
    """
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
        writer = store._writer
        put = table.putter()
        journal_of = store._publishes
        store._publish_at = store._journal_limit()
        writer.on_sync = store._maybe_publish_soon

    def append(payload: bytes | list) -> None:
        try:
            writer.append(payload)
        except StoreError:
            raise
        except OSError as exc:
            raise journal_error(store, exc) from exc

    def record(index: int, values: tuple, seconds: float) -> None:
        if journal_of != store._publishes:
            start()
        try:
            writer.append(encode(index, values, seconds))
        except StoreError:
            raise
        except OSError as exc:
            raise journal_error(store, exc) from exc
        put(index, values, seconds)
        if writer.size > store._publish_at:
            store._rotate()

    def record_failure(index: int, message: str, seconds: float) -> None:
        if journal_of != store._publishes:
            start()
        append(codec.encode_failure(index, message, seconds))
        table.put_failure(index, message, seconds)

    def record_none(index: int, seconds: float) -> None:
        if journal_of != store._publishes:
            start()
        append(codec.encode_none(index, seconds))
        table.put_none(index, seconds)

    return Recorder(record, record_failure, record_none)


def open_codec(store: NetCDFStore, table: FunctionTable, expect: int) -> RecordCodec:
    """Open the store's journal (and the sweep's staged file, if it wants one): the codec
    that encodes ``table``'s cells for them. Once per journal, not per cell."""
    try:
        store._open_journal()
        stage = store._stage
        if stage is None and store._session_publish and wants_stage(table, expect):
            stage = store._begin_stage(table)
        elif stage is not None and stage.table is not table:
            stage.finalizable = False  # another function's cells are not in it
    except StoreError:
        raise
    except OSError as exc:
        raise journal_error(store, exc) from exc
    slot = store._slot_of[table.key]
    if stage is not None and stage.table is table:
        return RecordCodec(table, slot, stage.fd, stage.places)
    return RecordCodec(table, slot)


def journal_error(store: NetCDFStore, exc: OSError) -> StoreError:
    """The error of a cell that could not be recorded, saying why and that the rest is safe."""
    return StoreError(
        f"Could not record a finished cell in {store.journal_path}: "
        f"{write_cause(exc, store.path)}. Every cell recorded before it is safe (in "
        f"{store.path} and the journal); the cell being recorded is not. Fix the cause and "
        "sweep again: it resumes with the missing cells."
    )
