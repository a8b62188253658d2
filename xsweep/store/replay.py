"""Replaying a journal onto the tables read from its file: the way back after a crash."""

from __future__ import annotations

import json
import mmap
import os
from typing import NamedTuple

import numpy as np

from ..errors import DamagedSideFileWarning, warn_user
from ..file_format import GENERATION_ID, STAGE_MARK
from .bigcells import is_big
from .codec import (
    CONTROL_SLOT,
    RECORD_ERRORS,
    RECORD_HEAD,
    RECORD_SLOT,
    MalformedRecord,
    RecordCodec,
)
from .journal import HEADER_LEN, is_foreign, map_journal, open_side_file, read_records
from .ondisk import streams
from .table import FunctionTable


class Replayed(NamedTuple):
    """What replaying a journal found."""

    size: int  # the journal's size when read
    intact: int  # the end of its last intact record (0: no journal of this file)
    stage_path: str | None  # the staged file its records point into, if any


def replay_journal(
    path: str, journal_path: str, generation: str | None, tables: list[FunctionTable]
) -> Replayed:
    """Apply the journal's records to ``tables`` (those of the file ``path``, in slot order).

    The journal may be damaged or crafted (it travels with a shared file): its header is
    checked before anything else is read; a record that passes its checksum but does not
    decode to a valid cell is skipped with a warning (the next writer's publish drops it); a
    record naming a staged file is followed only to a file xsweep made next to the store.
    Nothing in it can make an open fail.
    """
    data, size = map_journal(journal_path, generation)
    if data is None:
        if is_foreign(journal_path):
            warn_user(
                f"{journal_path} is not a regular file (a link, a folder or a device) and was "
                "ignored: xsweep never follows links next to a results file. The next sweep "
                "into this file replaces it (a folder must be moved away).",
                DamagedSideFileWarning,
            )
        # Written against an older snapshot (which the file already contains), or empty.
        return Replayed(size, 0, None)
    decoders = [RecordCodec(t, i) for i, t in enumerate(tables)]
    intact = HEADER_LEN
    stage_path = None
    opened: list[int] = []
    skipped: list[str] = []
    try:
        for end, payload in read_records(data, HEADER_LEN):
            try:
                slot = RECORD_SLOT.unpack_from(payload)[0]
                if slot == CONTROL_SLOT:
                    found, fd = _open_stage(path, payload, decoders)
                    if fd is None:
                        break  # cells staged in a file that is gone: not recoverable
                    opened.append(fd)
                    stage_path = found
                elif slot >= len(decoders):
                    raise MalformedRecord(f"function slot {slot} does not exist")
                elif not decoders[slot].apply(payload):
                    break
            except RECORD_ERRORS as exc:
                skipped.append(f"at byte {end - len(payload)}: {exc}")
            intact = end
    finally:
        for decoder in decoders:
            decoder.staged(-1, {})  # on-disk outputs stop taking cells as staged
        for fd in opened:
            os.close(fd)
        if isinstance(data, mmap.mmap):
            data.close()
    if skipped:
        warn_user(
            f"{journal_path} holds {len(skipped)} damaged record(s) that were skipped (first "
            f"{skipped[0]}). Every other record was read; the cells they described count as "
            "not computed and the next sweep computes them again.",
            DamagedSideFileWarning,
        )
    return Replayed(size, intact, stage_path)


def _open_stage(
    path: str, payload: bytes, decoders: list[RecordCodec]
) -> tuple[str | None, int | None]:
    """Check a control record and open the staged file it names: ``(its path, fd)``.

    The fd is None when the file is gone. Raises ``MalformedRecord`` unless the record names
    ``<file>.xsweep-stage-<hex id>`` in the store's own folder and places that fit the
    function's big (or streamed) outputs.
    """
    info = json.loads(payload[RECORD_HEAD.size :].decode("utf-8"))
    if not isinstance(info, dict):
        raise MalformedRecord("a control record that is not a JSON object")
    name, slot, places = info.get("file"), info.get("slot"), info.get("places")
    prefix = os.path.basename(path) + STAGE_MARK
    if not (
        isinstance(name, str)
        and name.startswith(prefix)
        and GENERATION_ID.fullmatch(name[len(prefix) :])
    ):
        raise MalformedRecord(f"a control record naming {name!r}, not a staged file of this store")
    if type(slot) is not int or not 0 <= slot < len(decoders):
        raise MalformedRecord(f"a control record for function slot {slot!r}")
    table = decoders[slot].table
    if table.spec is None or not isinstance(places, dict):
        raise MalformedRecord("a control record without places")
    checked: dict[int, tuple[int, int]] = {}
    for key, place in places.items():
        i = int(key)
        var = table.spec.variables[i] if 0 <= i < len(table.spec.variables) else None
        if (
            var is None
            or not (is_big(var) or streams(var))
            or not isinstance(place, list)
            or len(place) != 2
            or not all(type(x) is int for x in place)
            or place[0] < 0
            or place[1] != var.dtype.itemsize * int(np.prod(var.shape))
        ):
            raise MalformedRecord(f"a control record with place {key!r}: {place!r}")
        checked[i] = (place[0], place[1])
    stage_path = os.path.join(os.path.dirname(path), name)
    fd = open_side_file(stage_path)
    if fd is None:
        return None, None
    decoders[slot].staged(fd, checked)
    return stage_path, fd
