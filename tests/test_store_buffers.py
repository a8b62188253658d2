"""``CellBuffer``: an output's cells in memory or kept on disk answer the same verbs alike."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xsweep.outputs import infer_spec, union_spec
from xsweep.store.buffers import CellBuffer, InMemory
from xsweep.store.ondisk import OnDisk

CELL = np.arange(2 * 300, dtype=np.float32).reshape(2, 300)  # 2.4 kB: streamable


def output(value=CELL):
    return infer_spec(value, "f", None).variables[0]


def both(ncells: int = 6) -> list[CellBuffer]:
    var = output()
    return [InMemory.filled(var, ncells), OnDisk(var, ncells)]


def fill_some(buf: CellBuffer) -> None:
    for flat in (0, 2, 5):
        buf.sink()[flat] = CELL + flat  # as the per-cell write path does
    buf.put(2, buf.var.fill)  # the cell holds no value: it reads as the fill


@pytest.mark.parametrize("buf", both(), ids=["memory", "disk"])
def test_cells_written_are_read_back_and_the_rest_is_the_fill(buf):
    fill_some(buf)
    assert (
        buf.shape == (6, 2, 300)
        and buf.dtype == np.float32
        and buf.on_disk == (type(buf) is OnDisk)
    )
    np.testing.assert_array_equal(buf[5], CELL + 5)
    got = buf.read(np.array([5, 0, 1]))
    np.testing.assert_array_equal(got[:2], [CELL + 5, CELL])
    assert np.isnan(got[2]).all() and np.isnan(buf[2]).all()
    np.testing.assert_array_equal(buf.read(slice(0, 1)), [CELL])
    assert buf.memory_bytes == (0 if buf.on_disk else buf.nbytes)
    buf.clear()
    assert np.isnan(buf.read(np.arange(6))).all()


def test_the_two_kinds_move_grow_and_lay_out_cells_alike():
    memory, disk = both()
    for buf in (memory, disk):
        fill_some(buf)

    def reverse(flat, fill, cell_shape):
        return flat[::-1].copy()

    memory, disk = memory.moved(reverse, 6), disk.moved(reverse, 6)
    np.testing.assert_array_equal(memory.read(np.arange(6)), disk.read(np.arange(6)))
    np.testing.assert_array_equal(disk[0], CELL + 5)

    wider = union_spec(
        infer_spec(CELL, "f", None), infer_spec(np.zeros((3, 300), np.float32), "f", None)
    )
    assert wider is not None
    var = wider.variables[0]
    memory, disk = memory.regrown(var), disk.regrown(var)
    assert memory.shape == disk.shape == (6, *var.shape)
    np.testing.assert_array_equal(memory.read(np.arange(6)), disk.read(np.arange(6)))

    eager = memory.grid_data((2, 3), None, copy=True)
    lazy = disk.grid_data((2, 3), None, copy=True)
    dims = ("a", "b", "y", "x")
    np.testing.assert_array_equal(eager, xr.Variable(dims, lazy).values)


@pytest.mark.parametrize("into", [0, 1], ids=["into memory", "into disk"])
@pytest.mark.parametrize("source", [0, 1], ids=["from memory", "from disk"])
def test_take_from_copies_the_chosen_cells_whatever_the_kinds(into, source):
    target, other = both()[into], both()[source]
    fill_some(other)
    target.put(1, CELL * 0)
    target.take_from(np.array([0, 2, 5]), other)
    got = target.read(np.arange(6))
    np.testing.assert_array_equal(got[[0, 5]], [CELL, CELL + 5])
    np.testing.assert_array_equal(got[1], CELL * 0)
    assert np.isnan(got[[2, 3, 4]]).all()


def test_the_in_memory_sink_is_the_numpy_array_itself():
    buf = InMemory.filled(output(np.float64(1.0)), 4)
    assert buf.sink() is buf.array  # one numpy assignment per cell, no Python call
