"""Journal records of cells: how a finished cell is encoded, and applied on replay."""

from __future__ import annotations

import contextlib
import json
import os
import struct
from typing import Any

import numpy as np

from ..file_format import COMPUTED, FAILED
from ..outputs import VariableSpec
from ..text import clean_message, text_problem
from .files import pwrite_all
from .journal import sum64
from .table import FunctionTable

# ---------------------------------------------------------------------------------------------
# Journal record encoding
# ---------------------------------------------------------------------------------------------
#: Every record's head: function slot, cell index, status, seconds.
RECORD_HEAD = struct.Struct("<HQBf")


_U32 = struct.Struct("<I")


_U64 = struct.Struct("<Q")


_STRUCT_CHARS = {
    ("f", 8): "d", ("f", 4): "f", ("f", 2): "e",
    ("i", 8): "q", ("i", 4): "i", ("i", 2): "h", ("i", 1): "b",
    ("u", 8): "Q", ("u", 4): "I", ("u", 2): "H", ("u", 1): "B",
    ("b", 1): "?",
}  # fmt: skip


#: Journal record statuses besides COMPUTED and FAILED: a computed cell whose big outputs
#: went straight to the staged file (the record holds their checksums), and the control
#: record that names a staged file (slot CONTROL_SLOT).
STAGED, NONE_RECORD, STAGE = 3, 4, 7


CONTROL_SLOT = 0xFFFF


#: A record's first field alone: the function slot (or ``CONTROL_SLOT``).
RECORD_SLOT = struct.Struct("<H")


class MalformedRecord(ValueError):
    """A journal record that passed its checksum but does not describe a valid cell."""


#: What decoding a crafted or damaged record can raise; such a record is skipped.
RECORD_ERRORS = (
    MalformedRecord,
    struct.error,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    OverflowError,
    UnicodeError,
    RecursionError,
)


#: Bytes of staged cells after which their writeback to disk is started (see _start_writeback).
WRITEBACK_BYTES = 64 << 20
_FADVISE = hasattr(os, "posix_fadvise") and hasattr(os, "POSIX_FADV_DONTNEED")


class RecordCodec:
    """Encodes one function's cells as journal payloads and applies decoded ones.

    With ``places`` (variable index -> (offset, cell bytes) in a staged file open as
    ``stage_fd``), those big outputs are written to the staged file and the record carries
    only the 64-bit sum of their bytes.
    """

    def __init__(
        self,
        table: FunctionTable,
        slot: int,
        stage_fd: int = -1,
        places: dict[int, tuple[int, int]] | None = None,
    ):
        self.table = table
        self.slot = slot
        self.stage_fd = stage_fd
        self.places = places or {}
        self._unflushed = 0  # bytes of staged cells written since writeback was started
        spec = table.spec
        self.variables = spec.variables if spec else ()
        chars: list[str] | None
        chars = []
        for v in self.variables:
            if v.scalar and v.dtype != object:
                chars.append(_STRUCT_CHARS[(v.dtype.kind, v.dtype.itemsize)])
            else:
                chars = None
                break
        # All-numeric-scalar outputs (the common case) pack in a single struct call.
        self.flat = struct.Struct("<HQBf" + "".join(chars)) if chars is not None else None

    def _start_writeback(self) -> None:
        # Staged cells are written once and read rarely: have the kernel start writing them
        # to disk now (as it does in the background for a plain sequential write), rather
        # than all at the next fdatasync, and let go of the pages already written, so that
        # a long sweep neither stalls on its periodic flush nor fills the page cache.
        self._unflushed = 0
        if _FADVISE:
            with contextlib.suppress(OSError):
                os.posix_fadvise(self.stage_fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def staged(self, stage_fd: int, places: dict[int, tuple[int, int]]) -> None:
        """Read the big outputs of STAGED records from this staged file (replay).

        Outputs kept on disk do not read the cells into memory: they point at the staged
        file (its checksum is still checked, a cell at a time).
        """
        self.stage_fd = stage_fd
        self.places = places
        for i, buf in enumerate(self.table.buffers):
            buf.stage_at(stage_fd, places[i][0] if i in places else None)

    def encode(self, index: int, values: tuple, seconds: float) -> bytes | list:
        """The payload: one bytes object, or a list of buffers (arrays are not copied)."""
        if self.flat is not None:
            return self.flat.pack(self.slot, index, COMPUTED, seconds, *values)
        places = self.places
        parts: list = [RECORD_HEAD.pack(self.slot, index, STAGED if places else COMPUTED, seconds)]
        for i, (var, value) in enumerate(zip(self.variables, values)):
            if var.dtype == object:
                raw = json.dumps(value if isinstance(value, str) else value.tolist()).encode()
                parts.append(_U32.pack(len(raw)))
                parts.append(raw)
            elif var.scalar:
                parts.append(np.asarray(value, dtype=var.dtype).tobytes())
            elif i in places:
                base, nbytes = places[i]
                view = memoryview(np.ascontiguousarray(value, dtype=var.dtype)).cast("B")  # type: ignore[arg-type]  # numpy's stubs: an ndarray is a Buffer
                pwrite_all(self.stage_fd, view, base + index * nbytes)
                parts.append(_U64.pack(sum64([view])))
                self._unflushed += nbytes
                if self._unflushed >= WRITEBACK_BYTES:
                    self._start_writeback()
            else:
                parts.append(memoryview(np.ascontiguousarray(value)).cast("B"))  # type: ignore[arg-type]  # numpy's stubs: an ndarray is a Buffer
        return parts

    def encode_none(self, index: int, seconds: float) -> bytes:
        return RECORD_HEAD.pack(self.slot, index, NONE_RECORD, seconds)

    def encode_failure(self, index: int, message: str, seconds: float) -> bytes:
        raw = message.encode("utf-8", "replace")
        return RECORD_HEAD.pack(self.slot, index, FAILED, seconds) + _U32.pack(len(raw)) + raw

    def apply(self, payload: bytes) -> bool:
        """Apply one record; False if its staged data is missing or damaged (stop there).

        Raises ``MalformedRecord`` (or a decoding error) for a record that does not describe a
        valid cell of this table; nothing is applied then.
        """
        table = self.table
        _, index, status, seconds = RECORD_HEAD.unpack_from(payload)
        if index >= table.size:
            raise MalformedRecord(f"cell {index} of a table of {table.size} cells")
        if status == FAILED:
            return self._apply_failure(payload, index, seconds)
        if status == NONE_RECORD:
            return self._apply_none(payload, index, seconds)
        if status not in (COMPUTED, STAGED) or table.spec is None:
            raise MalformedRecord(f"status {status} for a function without outputs yet")
        if self.flat is not None:
            if status != COMPUTED:
                raise MalformedRecord(f"status {status} in a record of scalars")
            table.put(index, self.flat.unpack(payload)[4:], seconds)
            return True
        if status == STAGED and not self.places:
            return False
        pos = RECORD_HEAD.size
        values = []
        for i, var in enumerate(self.variables):
            if var.dtype == object:
                (n,) = _U32.unpack_from(payload, pos)
                pos += 4
                if pos + n > len(payload):
                    raise MalformedRecord("a string past the end of its record")
                value = _checked_text(var, json.loads(payload[pos : pos + n].decode("utf-8")))
                pos += n
                values.append(value)
            elif status == STAGED and i in self.places:
                (total,) = _U64.unpack_from(payload, pos)
                pos += 8
                base, nbytes = self.places[i]
                try:
                    data = os.pread(self.stage_fd, nbytes, base + index * nbytes)
                except OSError:
                    return False
                if len(data) != nbytes or sum64([data]) != total:
                    return False  # the cell's bytes never reached the staged file
                values.append(np.frombuffer(data, dtype=var.dtype).reshape(var.shape))
            else:
                count = int(np.prod(var.shape, dtype=np.int64))
                arr = np.frombuffer(payload, dtype=var.dtype, count=count, offset=pos)
                pos += arr.nbytes
                values.append(arr.reshape(var.shape))
        if pos != len(payload):
            raise MalformedRecord(f"{len(payload) - pos} bytes left over after the cell's values")
        table.put(index, tuple(values), seconds)
        return True

    def _apply_failure(self, payload: bytes, index: int, seconds: float) -> bool:
        """Apply a failed cell's record (its message follows the head)."""
        pos = RECORD_HEAD.size
        (n,) = _U32.unpack_from(payload, pos)
        pos += 4
        if pos + n != len(payload):
            raise MalformedRecord("a failure record of the wrong length")
        message = payload[pos : pos + n].decode("utf-8", "replace")
        self.table.put_failure(index, clean_message(message), seconds)
        return True

    def _apply_none(self, payload: bytes, index: int, seconds: float) -> bool:
        """Apply the record of a cell that returned None (a head alone)."""
        if len(payload) != RECORD_HEAD.size:
            raise MalformedRecord("a no-value record of the wrong length")
        self.table.put_none(index, seconds)
        return True


def _checked_text(var: VariableSpec, value: Any) -> Any:
    """A string output decoded from a record, checked as a function's return value is."""
    if var.scalar or var.shape == ():
        if not isinstance(value, str) or text_problem(value):
            raise MalformedRecord(f"{value!r:.40} is not a valid text value")
        return value
    arr = np.array(value, dtype=object)
    if arr.shape != var.shape or not all(
        isinstance(v, str) and not text_problem(v) for v in arr.flat
    ):
        raise MalformedRecord("a text array of the wrong shape or content")
    return arr


def control_record(stage_path: str, slot: int, places: dict[int, tuple[int, int]]) -> bytes:
    """The journal record naming the staged file whose places the next records use.

    It names the file by its base name only: replay looks for it next to the store and
    nowhere else (see :mod:`xsweep.store.replay`).
    """
    info = {
        "file": os.path.basename(stage_path),
        "slot": slot,
        "places": {str(i): list(place) for i, place in places.items()},
    }
    return RECORD_HEAD.pack(CONTROL_SLOT, 0, STAGE, 0.0) + json.dumps(info).encode()
