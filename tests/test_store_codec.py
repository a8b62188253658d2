"""Journal records of cells, end to end: encoded by the codec, framed into a journal file, read
back and applied to a fresh table, as a store's recorder writes them and its replay reads them.

The framing alone is pinned byte by byte in ``test_journal.py``, crafted records in
``test_hostile.py``; here every kind of cell record goes through the real path, and damage at
the end of the journal (a torn, zeroed or flipped record) costs exactly the damaged records.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xsweep.file_format import COMPUTED, FAILED, NO_VALUE, NOT_COMPUTED
from xsweep.outputs import infer_spec
from xsweep.store.codec import RECORD_SLOT as _SLOT
from xsweep.store.codec import RecordCodec as _Codec
from xsweep.store.journal import HEADER_LEN, SUM_BYTES, JournalWriter, read_records
from xsweep.store.table import FunctionTable

GENERATION = "0123456789abcdef" * 2
CELLS = 6


def image(k: int) -> np.ndarray:
    """A 120 kB uint8 image (a big record, framed with the 64-bit sum), distinct per ``k``."""
    img = np.full((200, 200, 3), 255, dtype=np.uint8)
    img[k, :, 0] = np.arange(200, dtype=np.uint8)
    img[0, 0] = [k, 7, 9]
    return img


#: One function per output kind: (name, what cell k returns).
KINDS = {
    "real": lambda k: 0.1 * k - 1.5,
    "count": lambda k: -(2**53) - k,  # beyond float64's integers: must stay an int
    "small": lambda k: np.arange(6, dtype=np.uint8).reshape(2, 3) * (k + 1),
    "big": image,
    "text": lambda k: f'cell {k}: naïve ✓ "quoted" \\ {"x" * k}',
    "mixed": lambda k: {"x": k / 3, "label": f"k={k}", "v": np.full(4, k, dtype=np.int16)},
}


def tables() -> list[FunctionTable]:
    """A fresh table per kind (slot = its position), with its output structure set."""
    out = []
    for name, make in KINDS.items():
        table = FunctionTable(f"tests:{name}", name, ("a",), (CELLS,))
        table.set_spec(infer_spec(make(0), name, None))
        out.append(table)
    return out


def write_journal(path: Path, payloads: list) -> list[int]:
    """Append ``payloads`` as the recorder does; the journal size after each record."""
    writer = JournalWriter(str(path), GENERATION, None)
    ends = []
    try:
        for payload in payloads:
            writer.append(payload)
            ends.append(writer.size)
    finally:
        writer.close()
    return ends


def replay(data: bytes, fresh: list[FunctionTable]) -> list[int]:
    """Apply every intact record to ``fresh`` as the store's replay does; their slots."""
    codecs = [_Codec(t, slot) for slot, t in enumerate(fresh)]
    slots = []
    for _, payload in read_records(data, HEADER_LEN):
        slot = _SLOT.unpack_from(payload)[0]
        assert codecs[slot].apply(payload)
        slots.append(slot)
    return slots


def assert_same(got: FunctionTable, want: FunctionTable) -> None:
    """Two tables hold exactly the same cells (values, statuses, seconds, messages)."""
    np.testing.assert_array_equal(got.status, want.status)
    np.testing.assert_array_equal(got.seconds, want.seconds)  # NaN == NaN here
    assert got.errors == want.errors
    for var, a, b in zip(want.spec.variables, got.buffers, want.buffers):
        assert a.dtype == b.dtype, var.name
        np.testing.assert_array_equal(a, b, err_msg=var.name)


def record_everything(live: list[FunctionTable]) -> tuple[list, list]:
    """Per function: cells 0-2 computed, 3 failed, 4 returned None, 5 not computed.

    Each record is encoded by the function's codec and the cell also put into ``live`` (as the
    recorder does); returns the payloads in order and the slot of each.
    """
    payloads, slots = [], []
    for k in range(5):
        for slot, (table, make) in enumerate(zip(live, KINDS.values())):
            codec = _Codec(table, slot)
            seconds = 0.5 + slot + k / 8  # exact in float32
            if k < 3:
                values = table.spec.extract(make(k))
                payloads.append(codec.encode(k, values, seconds))
                table.put(k, values, seconds)
            elif k == 3:
                message = f"ValueError: {table.name} said no to ünïcode ✓"
                payloads.append(codec.encode_failure(k, message, seconds))
                table.put_failure(k, message, seconds)
            else:
                payloads.append(codec.encode_none(k, seconds))
                table.put_none(k, seconds)
            slots.append(slot)
    return payloads, slots


def test_every_kind_of_cell_record_round_trips_exactly(tmp_path):
    live = tables()
    payloads, slots = record_everything(live)
    path = tmp_path / "r.nc.journal"
    write_journal(path, payloads)
    fresh = tables()
    assert replay(path.read_bytes(), fresh) == slots
    for got, want, make in zip(fresh, live, KINDS.values()):
        assert_same(got, want)
        assert got.status.tolist() == [COMPUTED] * 3 + [FAILED, NO_VALUE, NOT_COMPUTED]
        for k in range(3):
            for var, buf, value in zip(got.spec.variables, got.buffers, got.spec.extract(make(k))):
                np.testing.assert_array_equal(buf[k], value, err_msg=var.name)
        assert got.errors == {3: f"ValueError: {got.name} said no to ünïcode ✓"}
        assert np.isnan(got.seconds[5])  # never recorded


def test_big_cells_take_the_summed_frame_and_small_ones_the_crc_frame(tmp_path):
    # The image's record must be the sum-framed kind for the big-record path to be tested.
    live = tables()
    big = list(KINDS).index("big")
    payload = _Codec(live[big], big).encode(0, live[big].spec.extract(image(0)), 1.0)
    assert isinstance(payload, list)
    assert sum(memoryview(p).nbytes for p in payload[1:]) >= SUM_BYTES
    path = tmp_path / "j"
    ends = write_journal(path, [payload, _Codec(live[0], 0).encode(0, (1.0,), 1.0)])
    data = path.read_bytes()
    assert data[HEADER_LEN : HEADER_LEN + 2] == b"\xabS"
    assert data[ends[0] : ends[0] + 2] == b"\xabR"


def test_a_later_record_of_a_cell_replaces_the_earlier_one(tmp_path):
    # Failed, then computed, then None, then computed again: replay ends where the sweeps did.
    live = tables()[:1]
    codec = _Codec(live[0], 0)
    payloads = [
        codec.encode_failure(2, "first try failed", 1.0),
        codec.encode(2, (7.25,), 2.0),
        codec.encode_none(2, 3.0),
        codec.encode(2, (-0.5,), 4.0),
    ]
    path = tmp_path / "j"
    write_journal(path, payloads)
    fresh = tables()[:1]
    replay(path.read_bytes(), fresh)
    assert fresh[0].status[2] == COMPUTED and fresh[0].buffers[0][2] == -0.5
    assert fresh[0].seconds[2] == 4.0 and fresh[0].errors == {}


def test_a_record_for_a_function_without_outputs_yet(tmp_path):
    # Until a first cell returns a value, a function has no structure: failures and None
    # records still replay.
    live = FunctionTable("tests:g", "g", ("a",), (3,))
    codec = _Codec(live, 0)
    path = tmp_path / "j"
    write_journal(path, [codec.encode_none(0, 1.0), codec.encode_failure(2, "no", 2.0)])
    fresh = FunctionTable("tests:g", "g", ("a",), (3,))
    replay(path.read_bytes(), [fresh])
    assert fresh.status.tolist() == [NO_VALUE, NOT_COMPUTED, FAILED]
    assert fresh.errors == {2: "no"} and fresh.spec is None


# ---------------------------------------------------------------------------------------------
# Damage at the end: what a crash or a power cut leaves
# ---------------------------------------------------------------------------------------------
def journal_of_all(tmp_path: Path) -> tuple[bytes, list[int], list, list[FunctionTable]]:
    """A journal of every record of :func:`record_everything`: bytes, ends, payloads, live."""
    live = tables()
    payloads, _ = record_everything(live)
    path = tmp_path / "r.nc.journal"
    ends = write_journal(path, payloads)
    return path.read_bytes(), ends, payloads, live


def expected_after(payloads: list, n: int) -> list[FunctionTable]:
    """The tables after applying only the first ``n`` records (straight, without a file)."""
    want = tables()
    codecs = [_Codec(t, slot) for slot, t in enumerate(want)]
    for payload in payloads[:n]:
        data = payload if isinstance(payload, bytes) else b"".join(bytes(p) for p in payload)
        codecs[_SLOT.unpack_from(data)[0]].apply(data)
    return want


def check_kept(data: bytes, payloads: list, n: int) -> None:
    fresh = tables()
    replay(data, fresh)
    for got, want in zip(fresh, expected_after(payloads, n)):
        assert_same(got, want)


def frame_size(data: bytes, start: int) -> int:
    """The size of the frame of the record at ``start``: CRC-framed (small) or summed (big)."""
    return {b"\xabR": 10, b"\xabS": 20}[bytes(data[start : start + 2])]


def last_record_of_kind(data: bytes, ends: list[int], kind: str) -> int:
    """The index of the last record framed for a big (summed) or small (CRC) record."""
    starts = [HEADER_LEN, *ends[:-1]]
    return max(i for i, at in enumerate(starts) if (frame_size(data, at) == 20) == (kind == "big"))


@pytest.mark.parametrize("kind", ["small", "big"])
def test_a_torn_last_record_is_dropped_and_every_earlier_one_kept(tmp_path, kind):
    data, ends, payloads, _ = journal_of_all(tmp_path)
    last = last_record_of_kind(data, ends, kind)
    data, ends, payloads = data[: ends[last]], ends[: last + 1], payloads[: last + 1]
    start = ends[last - 1]
    check_kept(data, payloads, last + 1)  # whole, it is kept
    length = ends[last] - start
    cuts = range(1, length) if length < 200 else [1, 2, 10, 19, 20, 21, 4096, length - 1]
    for cut in cuts:
        check_kept(data[: start + cut], payloads, last)


@pytest.mark.parametrize("kind", ["small", "big"])
@pytest.mark.parametrize("how", ["whole record", "payload only", "zeros appended"])
def test_a_zeroed_tail_is_where_replay_stops(tmp_path, kind, how):
    # After a power cut some file systems show the unsynced end of a file as zeros: the file
    # is as long as it was, but the last blocks never reached the disk.
    data, ends, payloads, _ = journal_of_all(tmp_path)
    last = last_record_of_kind(data, ends, kind)
    data, payloads = data[: ends[last]], payloads[: last + 1]
    start = ends[last - 1]
    body = start + frame_size(data, start)
    damaged = bytearray(data)
    if how == "whole record":
        damaged[start:] = bytes(len(damaged) - start)
        kept = last
    elif how == "payload only":  # the frame reached the disk, the data did not
        damaged[body:] = bytes(len(damaged) - body)
        kept = last
    else:  # the file grew, its new blocks are zeros: every record is intact
        damaged += bytes(4096)
        kept = last + 1
    check_kept(bytes(damaged), payloads, kept)


@pytest.mark.parametrize("where", ["magic", "length", "checksum", "slot", "index", "value"])
def test_a_flipped_byte_fails_its_checksum_and_replay_stops_there(tmp_path, where):
    # read_records stops at the first record that fails its check: that record and every
    # later one are dropped (they were never acknowledged), every earlier one is kept.
    data, ends, payloads, _ = journal_of_all(tmp_path)
    target = 1  # the int function's first cell: a small record, with records after it
    assert isinstance(payloads[target], bytes) and frame_size(data, ends[target - 1]) == 10
    start = ends[target - 1]
    # Small frame: magic (2) | length (4) | crc32 (4) | payload: slot (2) | index (8) | ...
    offset = {"magic": 0, "length": 3, "checksum": 7, "slot": 10, "index": 12, "value": 30}
    damaged = bytearray(data)
    damaged[start + offset[where]] ^= 0x10
    check_kept(bytes(damaged), payloads, target)
