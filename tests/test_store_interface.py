"""The store interface: both stores keep one contract (xsweep.store.base.Store)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import xsweep as xs
from xsweep.errors import FunctionChangedError
from xsweep.outputs import infer_spec
from xsweep.store import NOT_STORED, Grid, MemoryStore, NetCDFStore, Store


@pytest.fixture(params=["memory", "netcdf"])
def make_store(request, tmp_path):
    def make():
        grid = Grid({"a": (np.array([1, 2, 3]), {"units": "m"}), "b": (np.array([0.5, 1.5]), {})})
        if request.param == "memory":
            return MemoryStore(grid)
        return NetCDFStore(str(tmp_path / "r.nc"), grid)

    return make


def fill(store: Store, fingerprint="v1"):
    """Cells (a=1, b=*) computed, (a=2, b=0.5) failed, (a=3, b=1.5) returned None."""
    with store.writing():
        table = store.table("f", "f", ("a", "b"), fingerprint)
        store.set_spec(table, infer_spec(np.float64(1.0), "f", None))
        record, record_failure, record_none = store.recorder(table, 3)
        grid = store.grid
        record(grid.flat_index(("a", "b"), {"a": 0, "b": 0}), (np.float64(10.5),), 0.1)
        record(grid.flat_index(("a", "b"), {"a": 0, "b": 1}), (np.float64(11.5),), 0.1)
        record_failure(grid.flat_index(("a", "b"), {"a": 1, "b": 0}), "ValueError: no", 0.2)
        record_none(grid.flat_index(("a", "b"), {"a": 2, "b": 1}), 0.3)
    return table


def test_both_stores_implement_every_verb():
    abstract = Store.__abstractmethods__
    assert {"writing", "table", "recorder", "lookup", "contains", "result", "failures"} <= abstract
    for cls in (MemoryStore, NetCDFStore):
        assert not inspect.isabstract(cls), cls


def test_lookup_answers_only_for_valid_cells(make_store):
    store = make_store()
    fill(store)
    dims = ("a", "b")
    assert store.lookup("f", dims, "v1", {"a": 0, "b": 1}) == 11.5
    assert store.lookup("f", dims, "v1", {"a": 2, "b": 1}) is None  # computed: returned None
    assert store.lookup("f", dims, "v1", {"a": 1, "b": 0}) is NOT_STORED  # failed
    assert store.lookup("f", dims, "v1", {"a": 2, "b": 0}) is NOT_STORED  # not computed
    assert store.lookup("g", dims, "v1", {"a": 0, "b": 0}) is NOT_STORED  # no such function
    assert store.lookup("f", ("b", "a"), "v1", {"a": 0, "b": 0}) is NOT_STORED  # other dims
    assert store.contains("f", dims, "v1", {"a": 0, "b": 0})
    assert store.contains("f", dims, "v1", {"a": 2, "b": 1})
    assert not store.contains("f", dims, "v1", {"a": 1, "b": 0})


def test_a_cell_of_another_version_is_never_returned(make_store):
    store = make_store()
    fill(store)
    assert not store.contains("f", ("a", "b"), "v2", {"a": 0, "b": 0})
    with pytest.raises(FunctionChangedError, match="force_recompute=True"):
        store.lookup("f", ("a", "b"), "v2", {"a": 0, "b": 0})


def test_failures_and_summaries_come_from_the_store(make_store):
    store = make_store()
    fill(store)
    assert store.failures() == [{"function": "f", "a": 2, "b": 0.5, "error": "ValueError: no"}]
    assert store.failures("other") == []
    (summary,) = store.functions()
    assert summary.counts == {"not_computed": 2, "computed": 3, "failed": 1, "no_value": 1}
    assert summary.outputs == ("f",) and summary.dims == ("a", "b") and summary.cells == 6
    assert summary.fingerprint == "v1"
    assert summary.total_seconds == pytest.approx(0.5, abs=1e-6)


def test_result_is_a_dataset_over_the_grid(make_store):
    store = make_store()
    table = fill(store)
    ds = store.result(table)
    assert ds["f"].sel(a=1).values.tolist() == [10.5, 11.5]
    assert np.isnan(ds["f"].sel(a=2, b=0.5))
    assert ds["a"].attrs["units"] == "m"
    assert ds["f_status"].values.tolist() == [[1, 1], [2, 0], [0, 3]]


def test_clear_forgets_everything_of_one_function(make_store):
    store = make_store()
    fill(store)
    store.clear("f")
    assert store.functions() == []
    assert store.lookup("f", ("a", "b"), "v1", {"a": 0, "b": 0}) is NOT_STORED


def test_a_file_store_answers_the_same_after_reopening(tmp_path):
    path = str(tmp_path / "r.nc")
    grid = Grid({"a": (np.array([1, 2, 3]), {}), "b": (np.array([0.5, 1.5]), {})})
    store = NetCDFStore(path, grid)
    fill(store)
    store.close()
    again = NetCDFStore(path, Grid({"a": (np.array([3, 1]), {}), "b": (np.array([1.5]), {})}))
    # The space's own indices: a=3 is its index 0, b=1.5 its index 0.
    assert again.lookup("f", ("a", "b"), "v1", {"a": 1, "b": 0}) == 11.5
    assert again.lookup("f", ("a", "b"), "v1", {"a": 0, "b": 0}) is None


def test_is_computed_agrees_with_run_process_everywhere(tmp_path):
    """One validity check: is_computed is True exactly where run_process does not call fn."""
    a = xs.Parameter("a", values=[0, 1, 2, 3])
    ps = xs.ParameterSpace([a])
    ps.enable_cache(str(tmp_path / "r.nc"))
    calls = []

    def f(a):
        calls.append(a)
        if a == 1:
            raise ValueError("no")
        return None if a == 2 else a * 2

    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(f, cells={"a": [0, 1, 2]})
    for value in a.values.tolist():
        computed = ps.is_computed(f, a=value)
        before = len(calls)
        try:
            ps.run_process(f, a=value)
        except ValueError:
            pass
        assert computed == (len(calls) == before), value
    assert [ps.is_computed(f, a=v) for v in (0, 1, 2, 3)] == [True, False, True, True]


def test_a_part_is_recorded_before_any_cell_and_a_second_part_joins_it(make_store):
    store = make_store()
    selected = [np.arange(3), np.arange(2)]
    with store.writing():
        table = store.table("f", "f", ("a", "b"), "v1")
        assert store.record_part(table, (1, 4), selected)
        assert not store.record_part(table, (1, 4), selected)  # the same: nothing to do
        if store.persistent:  # in the file already, with no cell computed
            from xsweep.store import open_store

            assert open_store(store.path, outputs=False).tables["f"].part.parts == (1,)
        assert store.record_part(table, (3, 4), selected)
    assert table.part.parts == (1, 3) and table.part.n == 4
    assert [table.part.cells(k) for k in (1, 3)] == [1, 2]  # 6 cells dealt 0,1,2,3,3,2
