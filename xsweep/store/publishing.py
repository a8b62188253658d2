"""Publishing: the NetCDF file is only ever replaced whole, by a complete new snapshot.

Read :func:`publish` top to bottom: write the snapshot next to the file (the sweep's staged
file completed, else a new file written whole), make it durable and rename it over the file
(readers only ever see whole files), then start a new journal for the new generation. The
file's lifecycle (:class:`~xsweep.store.results_file.ResultsFile`) records each step.
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np

from ..errors import StoreError
from ..file_format import COMPUTED, TEMP_MARK
from .files import unlink_quietly, write_cause
from .grid import Grid
from .journal import HEADER_LEN
from .ncfile import write_file
from .ondisk import NcSource, is_on_disk
from .results_file import ResultsFile
from .staging import Stage, finish_stage
from .table import FunctionTable


def publish(file: ResultsFile, grid: Grid, tables: dict[str, FunctionTable]) -> None:
    """Replace ``file`` with a complete new snapshot of ``tables`` over ``grid``.

    1. Write the snapshot next to the file: the sweep's staged file completed (its big
       cells are in place already), else a new file written whole.
    2. Make it durable and rename it over the file: readers only ever see whole files.
    3. Discard the journal: its records are in the new file. A new journal, for the new
       generation, takes the next records.
    """
    started = time.monotonic()
    stage = file.publish_started()  # recorders open the new journal at their next cell
    tmp, generation = write_snapshot(file, grid, tables, stage)
    # A brand-new file that holds no results yet (the layout a sweep's first cell brings)
    # need not wait for its folder entry: a power cut before the next journal flush (which
    # makes the entry durable first) leaves no file, and loses nothing that was computed.
    # Its bytes are always on disk before its name is: never an empty file under the name.
    new_layout = file.generation is None and not any(
        table.status.any() for table in tables.values()
    )
    try:
        file.durable.replace(tmp, entry=not new_layout)
    except OSError as exc:
        if stage is None or tmp != stage.path:
            unlink_quietly(tmp)  # a staged file stays: the journal's records need its cells
        raise publish_error(file, exc) from exc
    repoint(file.path, tables, stage if stage is not None and tmp == stage.path else None)
    file.published(generation, list(tables), started)
    file.restart_journal(generation)


def repoint(path: str, tables: dict[str, FunctionTable], finished: Stage | None) -> None:
    """After a publish: on-disk outputs read from the new file ``path`` (bounded open files).

    A staged file that became the file is still where its table's cells are; any other
    table's on-disk outputs were copied into the new file, which they read from now (its
    inode, opened at once: a later publish cannot change what they read).
    """
    for table in tables.values():
        if not table.streamed:
            continue
        if finished is not None and finished.table is table:
            for buf in table.buffers:
                if is_on_disk(buf):
                    buf.live = None
            continue
        computed = np.flatnonzero(table.status == COMPUTED)
        assert table.spec is not None  # streamed outputs
        for var, buf in zip(table.spec.variables, table.buffers):
            if is_on_disk(buf):
                source = NcSource(path, var.name, table.shape, var.shape, var.dtype)
                source.open()
                buf.rebase(source, computed)


def write_snapshot(
    file: ResultsFile, grid: Grid, tables: dict[str, FunctionTable], stage: Stage | None
) -> tuple[str, str]:
    """Step 1 of a publish: ``(path, generation)`` of a complete file next to ours."""
    if stage is not None:
        current = not file.layout_dirty and tables.get(stage.table.key) is stage.table
        if finish_stage(stage, current, file.history):
            return stage.path, stage.generation
    generation = uuid.uuid4().hex
    tmp = f"{file.path}{TEMP_MARK}{os.getpid()}"
    try:
        write_file(tmp, grid, tables, file.creation_time(), generation, history=file.history)
    except (OSError, RuntimeError) as exc:  # netCDF4 reports HDF5 errors as these
        unlink_quietly(tmp)
        raise publish_error(file, exc) from exc
    except BaseException:
        unlink_quietly(tmp)
        raise
    return tmp, generation


def publish_error(file: ResultsFile, exc: Exception) -> StoreError:
    """The error of a publish that failed, saying why and where the results are safe."""
    if file.generation is None and file.journal_size() <= HEADER_LEN:
        safe = "Nothing had been computed yet, so nothing is lost"
    else:
        stage = f" and {file.stage_in_journal}" if file.stage_in_journal is not None else ""
        safe = (
            f"Every cell computed so far is safe in the previous {file.path} and "
            f"{file.journal_path}{stage}"
        )
    return StoreError(
        f"Could not write the cache file {file.path}: {write_cause(exc, file.path)}. "
        f"{safe}; fix the cause and sweep again to publish them."
    )
