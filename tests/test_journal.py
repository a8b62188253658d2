"""The journal's record framing: what a torn or damaged record looks like to replay.

Crash behaviour of whole sweeps is tested with real processes in ``test_processes.py``; these
tests pin the format itself, byte by byte, for both kinds of record (CRC32 for small ones, a
64-bit word sum for big ones such as images).
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from xsweep.store.journal import HEADER_LEN, SUM_BYTES, JournalWriter, read_records, sum64


def records(tmp_path, payloads):
    """Write ``payloads`` (bytes, or lists of buffers) to a journal; its bytes and ends."""
    path = tmp_path / "j"
    writer = JournalWriter(str(path), "g" * 32, None)
    ends = []
    for payload in payloads:
        writer.append(payload)
        ends.append(writer.size)
    writer.close()
    return path.read_bytes(), ends


def joined(payload) -> bytes:
    return payload if isinstance(payload, bytes) else b"".join(bytes(p) for p in payload)


def big_payload(seed: int, n: int = SUM_BYTES + 4097) -> list:
    rng = np.random.default_rng(seed)
    # A 15-byte head, then an odd-sized array: words straddle the parts.
    return [bytes(range(15)), memoryview(rng.integers(0, 256, n, dtype=np.uint8)), b"tail"]


def test_sum64_is_the_sum_of_the_joined_words_however_the_parts_are_cut():
    rng = random.Random(0)
    data = np.random.default_rng(1).integers(0, 256, 10_001, dtype=np.uint8).tobytes()
    padded = data + b"\0" * (-len(data) % 8)
    want = int(np.frombuffer(padded, dtype="<u8").sum(dtype=np.uint64))
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(0, 6)))
        parts = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)])]
        assert sum64(parts) == want
    assert sum64([b""]) == 0


def test_small_and_big_records_read_back_exactly(tmp_path):
    payloads = [b"small", big_payload(0), b"x" * 100, big_payload(1)]
    data, ends = records(tmp_path, payloads)
    got = list(read_records(data, HEADER_LEN))
    assert [end for end, _ in got] == ends
    assert [p for _, p in got] == [joined(p) for p in payloads]
    # The big ones are framed with the sum, the small ones with the CRC.
    assert data[ends[0] : ends[0] + 2] == b"\xabS" and data[HEADER_LEN : HEADER_LEN + 2] == b"\xabR"


@pytest.mark.parametrize("cut", [1, 2, 10, 19, 20, 21, 4096, -9, -1])
def test_a_torn_big_record_is_not_replayed(tmp_path, cut):
    payloads = [b"first", big_payload(2)]
    data, ends = records(tmp_path, payloads)
    end = ends[0] + cut if cut > 0 else ends[1] + cut
    got = list(read_records(data[:end], HEADER_LEN))
    assert [p for _, p in got] == [b"first"]


@pytest.mark.parametrize("where", ["head", "array", "tail"])
def test_damaged_big_record_and_everything_after_it_are_not_replayed(tmp_path, where):
    payloads = [b"first", big_payload(3), b"after"]
    data, ends = records(tmp_path, payloads)
    body = ends[0] + 20  # the sum frame is 20 bytes
    offset = {"head": body + 3, "array": body + 15 + 5000, "tail": ends[1] - 2}[where]
    damaged = bytearray(data)
    damaged[offset] ^= 0x01
    assert [p for _, p in read_records(bytes(damaged), HEADER_LEN)] == [b"first"]


def test_a_zeroed_block_in_a_big_record_is_detected(tmp_path):
    # What a power cut can leave in a file's unsynced tail: a block of zeros in the middle.
    data, ends = records(tmp_path, [big_payload(4), b"after"])
    damaged = bytearray(data)
    start = (HEADER_LEN + 8192) // 4096 * 4096
    damaged[start : start + 4096] = bytes(4096)
    assert list(read_records(bytes(damaged), HEADER_LEN)) == []


def test_a_writer_that_never_closes_leaves_zeros_that_replay_stops_at(tmp_path):
    """Records live in a shared memory map over space reserved ahead: a killed writer (here,
    one never closed) leaves that space as zeros after its last record."""
    path = tmp_path / "j"
    writer = JournalWriter(str(path), "g" * 32, None)
    payloads = [f"cell {i}".encode() for i in range(1000)]
    for payload in payloads:
        writer.append(payload)
    data = path.read_bytes()  # what another process sees: the page cache
    assert len(data) > writer.size and not data[writer.size :].strip(b"\0")
    assert [p for _, p in read_records(data, HEADER_LEN)] == payloads
    writer.close()
    assert path.stat().st_size == writer.size  # the reserve is cut on close


def test_a_resumed_journal_appends_after_the_last_intact_record(tmp_path):
    from xsweep.store.journal import open_journal

    path = tmp_path / "j"
    writer = JournalWriter(str(path), "g" * 32, None)
    for i in range(5):
        writer.append(b"first %d" % i)
    intact = writer.size
    writer.append(b"torn")
    os.truncate(path, writer.size - 2)  # the last record torn, as a kill mid-copy leaves it
    again = open_journal(str(path), "g" * 32, intact, None)
    again.append(b"second")
    again.close()
    got = [p for _, p in read_records(path.read_bytes(), HEADER_LEN)]
    assert got == [b"first %d" % i for i in range(5)] + [b"second"]
    # A journal of another snapshot is removed, not appended to.
    other = open_journal(str(path), "h" * 32, 0, None)
    other.append(b"new")
    other.close()
    assert [p for _, p in read_records(path.read_bytes(), HEADER_LEN)] == [b"new"]


def test_without_posix_fallocate_the_space_is_reserved_by_writing_zeros(tmp_path, monkeypatch):
    """macOS has no posix_fallocate: the reserve is written instead (never left unallocated,
    where a copy into the map would fault on a full disk)."""
    monkeypatch.delattr(os, "posix_fallocate")
    path = tmp_path / "j"
    writer = JournalWriter(str(path), "g" * 32, None)
    writer.append(b"cell")
    assert os.stat(path).st_blocks * 512 >= os.stat(path).st_size - 4096  # allocated, not a hole
    writer.close()
    assert [p for _, p in read_records(path.read_bytes(), HEADER_LEN)] == [b"cell"]


def test_a_full_disk_while_reserving_is_an_error_and_keeps_every_record(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk, in a child process (the limit is per process)."""
    script = textwrap.dedent(
        f"""
        import resource, signal
        from xsweep.store.journal import JournalWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        writer = JournalWriter({str(tmp_path / "j")!r}, "g" * 32, None)
        n = 0
        try:
            while True:
                writer.append(b"x" * 100)
                n += 1
        except OSError as exc:
            print(n, exc.errno)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr  # an error, not a crash (SIGBUS)
    count, code = map(int, out.stdout.split())
    assert code == errno.EFBIG and count > 0
    data = (tmp_path / "j").read_bytes()
    assert len(list(read_records(data, HEADER_LEN))) == count
