"""``FunctionTable``: one function's results in flat buffers, moved and cut cell by cell.

Only the table's own methods and an ``OutputSpec`` from :func:`xsweep.outputs.infer_spec` are
used here: the xarray views (``to_dataset``, ``lend``, ``output_view``) are tested through
sweeps elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from xsweep.file_format import COMPUTED, FAILED, NO_VALUE, NOT_COMPUTED
from xsweep.outputs import infer_spec
from xsweep.store.table import FunctionTable


def sample(k: int) -> dict:
    """A result with one output of each kind, distinct per ``k``: float, int, image, text."""
    return {
        "x": k + 0.25,
        "n": -(2**40) - k,  # not representable as a float32: an int stays an int
        "img": (np.arange(6, dtype=np.uint8).reshape(2, 3) + 10 * k).astype(np.uint8),
        "s": f"cell-{k}-é",
    }


def new_table(dims=("a", "b"), shape=(2, 3), result=None) -> FunctionTable:
    table = FunctionTable("tests:f", "f", dims, shape)
    spec = infer_spec(sample(0) if result is None else result, "f", None)
    table.set_spec(spec)
    return table


def put(table: FunctionTable, index: int, k: int, seconds: float | None = None) -> None:
    table.put(index, table.spec.extract(sample(k)), float(k) if seconds is None else seconds)


def cell(table: FunctionTable, index: int) -> dict:
    """What the table holds for one cell, by output name."""
    return {v.name: buf[index] for v, buf in zip(table.spec.variables, table.buffers)}


def assert_holds(table: FunctionTable, index: int, k: int) -> None:
    want = sample(k)
    got = cell(table, index)
    assert got["x"] == want["x"] and got["n"] == want["n"] and got["s"] == want["s"]
    np.testing.assert_array_equal(got["img"], want["img"])
    assert table.status[index] == COMPUTED
    assert table.seconds[index] == np.float32(k)
    assert index not in table.errors


def assert_empty(table: FunctionTable, index: int, status: int = NOT_COMPUTED) -> None:
    """The cell holds every output's fill: NaN, 0, zeros, ''."""
    got = cell(table, index)
    assert np.isnan(got["x"]) and got["n"] == 0 and got["s"] == ""
    assert not got["img"].any()
    assert table.status[index] == status


# ---------------------------------------------------------------------------------------------
# put, put_failure, put_none, clear
# ---------------------------------------------------------------------------------------------
def test_a_new_table_is_all_not_computed_and_filled():
    table = new_table()
    assert table.size == 6
    assert [b.shape for b in table.buffers] == [(6,), (6,), (6, 2, 3), (6,)]
    assert [b.dtype for b in table.buffers] == [np.float64, np.int64, np.uint8, np.dtype(object)]
    for i in range(6):
        assert_empty(table, i)
    assert np.isnan(table.seconds).all() and table.errors == {}


def test_put_stores_each_output_exactly_at_its_cell_only():
    table = new_table()
    put(table, 4, 7)
    assert_holds(table, 4, 7)
    for i in (0, 1, 2, 3, 5):
        assert_empty(table, i)
    put(table, 4, 8)  # a cell computed again takes the new values
    assert_holds(table, 4, 8)


def test_put_failure_records_the_message_and_empties_a_computed_cell():
    table = new_table()
    put(table, 1, 3)
    table.put_failure(1, "ValueError: no", 0.5)
    assert_empty(table, 1, FAILED)
    assert table.errors == {1: "ValueError: no"}
    assert table.seconds[1] == np.float32(0.5)
    put(table, 1, 3)  # computed after a failure: the message goes
    assert_holds(table, 1, 3)
    assert table.errors == {}


def test_put_none_is_computed_without_a_value_and_drops_an_earlier_failure():
    table = new_table()
    put(table, 2, 5)
    table.put_none(2, 1.5)
    assert_empty(table, 2, NO_VALUE)
    assert table.seconds[2] == np.float32(1.5)
    table.put_failure(3, "boom", 0.0)
    table.put_none(3, 2.0)
    assert_empty(table, 3, NO_VALUE)
    assert table.errors == {}


def test_put_none_and_put_failure_work_before_the_structure_is_known():
    table = FunctionTable("tests:f", "f", ("a",), (3,))
    table.put_none(0, 1.0)
    table.put_failure(2, "first cell failed", 2.0)
    assert table.status.tolist() == [NO_VALUE, NOT_COMPUTED, FAILED]
    assert table.errors == {2: "first cell failed"}
    assert table.spec is None and table.buffers == ()


def test_clear_forgets_every_cell_but_keeps_the_structure():
    table = new_table()
    for i in range(6):
        put(table, i, i)
    table.put_failure(0, "x", 1.0)
    table.put_none(5, 1.0)
    spec = table.spec
    table.clear()
    assert table.spec is spec
    for i in range(6):
        assert_empty(table, i)
    assert np.isnan(table.seconds).all() and table.errors == {}
    put(table, 3, 9)  # and it still takes cells
    assert_holds(table, 3, 9)


# ---------------------------------------------------------------------------------------------
# regrid
# ---------------------------------------------------------------------------------------------
def filled_2x3() -> FunctionTable:
    """A 2 x 3 table over (a, b): cell (i, j) holds sample(10 i + j), (1, 2) failed."""
    table = new_table()
    for i in range(2):
        for j in range(3):
            put(table, i * 3 + j, 10 * i + j)
    table.put_failure(5, "failed at (1, 2)", 3.0)
    return table


def test_regrid_to_another_dim_order_moves_every_cell_to_its_place():
    table = filled_2x3()
    table.regrid(("b", "a"), (3, 2), {}, {})
    assert table.dims == ("b", "a") and table.shape == (3, 2) and table.size == 6
    for i in range(2):
        for j in range(3):
            new = j * 2 + i
            if (i, j) == (1, 2):
                assert_empty(table, new, FAILED)
                assert table.errors == {new: "failed at (1, 2)"}
            else:
                assert_holds(table, new, 10 * i + j)


def test_regrid_with_an_added_dim_puts_the_cells_at_its_fixed_index():
    table = filled_2x3()
    # c is added between a and b; the cells were computed at its index 1 of 3.
    table.regrid(("a", "c", "b"), (2, 3, 3), {}, {"c": 1})
    assert table.shape == (2, 3, 3) and table.size == 18
    assert [b.shape for b in table.buffers] == [(18,), (18,), (18, 2, 3), (18,)]
    for i in range(2):
        for c in range(3):
            for j in range(3):
                new = (i * 3 + c) * 3 + j
                if c != 1:
                    assert_empty(table, new)  # NaN for the float, 0 for the int
                    assert np.isnan(table.seconds[new])
                elif (i, j) == (1, 2):
                    assert table.status[new] == FAILED
                    assert table.errors == {new: "failed at (1, 2)"}
                else:
                    assert_holds(table, new, 10 * i + j)
    assert int((table.status == NOT_COMPUTED).sum()) == 12


def test_regrid_with_new_values_moves_cells_to_their_new_positions():
    table = filled_2x3()
    # a gains a value before and after its two (new positions 1 and 3 of 4); b is reversed
    # and gains none. Together with a dim reorder.
    positions = {"a": np.array([1, 3]), "b": np.array([2, 1, 0])}
    table.regrid(("b", "a"), (3, 4), positions, {})
    assert table.shape == (3, 4)
    moved = {}
    for i in range(2):
        for j in range(3):
            moved[(2 - j) * 4 + (1, 3)[i]] = (i, j)
    for new in range(12):
        if new not in moved:
            assert_empty(table, new)
        elif moved[new] == (1, 2):
            assert table.status[new] == FAILED and table.errors == {new: "failed at (1, 2)"}
        else:
            i, j = moved[new]
            assert_holds(table, new, 10 * i + j)


def test_regrid_of_a_table_without_structure_moves_statuses_and_messages():
    table = FunctionTable("tests:f", "f", ("a",), (3,))
    table.put_none(0, 1.0)
    table.put_failure(2, "late", 2.0)
    table.regrid(("a", "z"), (3, 2), {}, {"z": 1})
    assert table.status.reshape(3, 2).tolist() == [[0, NO_VALUE], [0, 0], [0, FAILED]]
    assert table.errors == {5: "late"}
    assert table.seconds[1] == np.float32(1.0) and table.seconds[5] == np.float32(2.0)


# ---------------------------------------------------------------------------------------------
# take
# ---------------------------------------------------------------------------------------------
def test_take_keeps_the_chosen_cells_in_the_chosen_order():
    table = filled_2x3()
    table.take("b", np.array([2, 0]))  # b's last value first, its middle one dropped
    assert table.dims == ("a", "b") and table.shape == (2, 2) and table.size == 4
    assert [b.shape for b in table.buffers] == [(4,), (4,), (4, 2, 3), (4,)]
    assert_holds(table, 0, 2)
    assert_holds(table, 1, 0)
    assert table.status[2] == FAILED and table.errors == {2: "failed at (1, 2)"}
    assert_holds(table, 3, 10)


def test_take_drops_the_messages_of_the_cells_it_drops():
    table = filled_2x3()
    table.take("a", np.array([0]))
    assert table.shape == (1, 3) and table.errors == {}
    for j in range(3):
        assert_holds(table, j, j)


# ---------------------------------------------------------------------------------------------
# error_codes
# ---------------------------------------------------------------------------------------------
def test_error_codes_number_each_distinct_message_once():
    table = new_table(dims=("a",), shape=(7,))
    failures = {0: "ValueError: x", 3: "KeyError: 'y'", 4: "ValueError: x", 6: "ValueError: x"}
    for index, message in failures.items():
        table.put_failure(index, message, 0.0)
    put(table, 1, 1)
    codes, messages = table.error_codes()
    assert codes.dtype.kind == "i" and codes.shape == (7,)
    assert sorted(messages) == ["KeyError: 'y'", "ValueError: x"]  # each message once
    for index in range(7):
        if index in failures:
            assert codes[index] >= 1 and messages[codes[index] - 1] == failures[index]
        else:
            assert codes[index] == 0


def test_error_codes_of_a_table_without_failures_are_all_zero():
    table = new_table()
    put(table, 0, 0)
    codes, messages = table.error_codes()
    assert messages == [] and codes.tolist() == [0] * 6


@pytest.mark.parametrize("message", ["", "ünïcode ✓", "line\nbreak", "x" * 10_000])
def test_error_codes_keep_any_message_exactly(message):
    table = new_table(dims=("a",), shape=(2,))
    table.put_failure(1, message, 0.0)
    codes, messages = table.error_codes()
    assert codes.tolist() == [0, 1] and messages == [message]
