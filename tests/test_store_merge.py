"""``merge_stores``: results files of parts of a grid (one per cluster job) combined into one,
through the public API only (spaces, ``enable_cache`` on real files, ``xs.merge_stores``)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

import xsweep as xs

#: What :func:`model` does, set per sweep: a number added to every value, "fail" or "none"
#: (cells at a=1 raise or return None). The environment is not part of a code fingerprint, so
#: every file holds results of the same function, as files of one job array do.
SETTING = "XSWEEP_TEST_MERGE_SETTING"
#: A file each call of :func:`model` appends its cell to, if set.
CALLS = "XSWEEP_TEST_MERGE_CALLS"


def model(a, b):
    setting = os.environ.get(SETTING, "0")
    log = os.environ.get(CALLS)
    if log:
        with open(log, "a") as fh:
            fh.write(f"{a} {b}\n")
    if setting in ("fail", "none") and a == 1:
        if setting == "fail":
            raise ValueError(f"no {a}")
        return None
    offset = 0.0 if setting in ("fail", "none") else float(setting)
    return {"x": a * 100.0 + b + offset, "v": np.arange(3) * (a - 1)}


def space(a=(1, 2, 3, 4), b=(10, 20)) -> xs.ParameterSpace:
    return xs.ParameterSpace([xs.Parameter("a", values=list(a)), xs.Parameter("b", values=list(b))])


def cache(path, fn=model, ps=None, **sweep) -> str:
    """Sweep ``fn`` into the cache file ``path``; returns the path."""
    ps = space() if ps is None else ps
    ps.enable_cache(path)
    ps.sweep(fn, progress=False, **sweep)
    ps.disable_cache()
    return str(path)


def at(monkeypatch, setting: str, path, **kwargs) -> str:
    """:func:`cache` with :func:`model` set to ``setting``."""
    monkeypatch.setenv(SETTING, setting)
    try:
        return cache(path, **kwargs)
    finally:
        monkeypatch.delenv(SETTING)


def read(path) -> dict[str, np.ndarray]:
    with xr.open_dataset(path) as ds:
        return {name: ds[name].values for name in ds.variables}


# ---------------------------------------------------------------------------------------------
# Disjoint and equal cells
# ---------------------------------------------------------------------------------------------
def test_disjoint_parts_merge_into_their_exact_union(tmp_path, monkeypatch):
    parts = [cache(tmp_path / f"part{k}.nc", part=(k, 3)) for k in range(3)]
    for path in parts:  # each job computed only its share
        assert 0 < int((read(path)["model_status"] == 1).sum()) < 8
    out = xs.merge_stores(parts, tmp_path / "all.nc")
    assert out == str(tmp_path / "all.nc")
    whole = read(cache(tmp_path / "whole.nc"))
    merged = read(out)
    assert (merged["model_status"] == 1).all()
    for name in ("x", "v", "a", "b"):
        np.testing.assert_array_equal(merged[name], whole[name], err_msg=name)
    # The merged file is a results file like any other: every cell is found cached.
    log = tmp_path / "calls.txt"
    monkeypatch.setenv(CALLS, str(log))
    ps = space()
    ps.enable_cache(out)
    swept = ps.sweep(model, progress=False)
    ps.disable_cache()
    assert not log.exists(), f"cells were computed again: {log.read_text()}"
    np.testing.assert_array_equal(swept["x"].values, whole["x"])


def test_overlapping_equal_cells_merge_without_a_conflict(tmp_path):
    full = cache(tmp_path / "full.nc")
    ps = space()
    ps["a"].value = 2
    row = cache(tmp_path / "a2.nc", ps=ps, params=["b"])
    out = xs.merge_stores([row, full], tmp_path / "all.nc")  # on_conflict="raise"
    got = read(out)
    np.testing.assert_array_equal(got["x"], read(full)["x"])
    assert (got["model_status"] == 1).all()


def test_equal_nan_values_and_equal_none_cells_are_not_a_conflict(tmp_path, monkeypatch):
    paths = [at(monkeypatch, "nan", tmp_path / f"r{k}.nc") for k in range(2)]
    paths += [at(monkeypatch, "none", tmp_path / f"n{k}.nc") for k in range(2)]
    nan = xs.merge_stores(paths[:2], tmp_path / "nan.nc")
    assert np.isnan(read(nan)["x"]).all() and (read(nan)["model_status"] == 1).all()
    out = xs.merge_stores(paths[2:], tmp_path / "none.nc")
    with xr.open_dataset(out) as ds:
        assert ds["model_status"].sel(a=1).values.tolist() == [3, 3]  # computed, no value
        assert (ds["model_status"].sel(a=[2, 3, 4]) == 1).all()
        assert ds["x"].sel(a=4).values.tolist() == [410.0, 420.0]


def test_failed_cells_yield_to_computed_ones_in_either_order(tmp_path, monkeypatch):
    with pytest.warns(xs.SweepFailuresWarning):
        failed = at(monkeypatch, "fail", tmp_path / "failed.nc")
    good = cache(tmp_path / "good.nc", ps=space(a=(1, 2)))
    for k, order in enumerate([[failed, good], [good, failed]]):
        with xr.open_dataset(xs.merge_stores(order, tmp_path / f"all{k}.nc")) as ds:
            assert (ds["model_status"].values == 1).all(), order
            assert ds["x"].sel(a=1).values.tolist() == [110.0, 120.0]
            assert ds["model_messages"].size == 0 and (ds["model_error"].values == 0).all()
    # A failure that no other file computed is kept, with its message.
    ps = space(a=(1,))
    ps["b"].value = 20
    other = cache(tmp_path / "b20.nc", ps=ps, params=["a"])
    for k, order in enumerate([[failed, other], [other, failed]]):
        with xr.open_dataset(xs.merge_stores(order, tmp_path / f"kept{k}.nc")) as ds:
            st = ds["model_status"]
            assert st.sel(a=1, b=10).item() == 2 and st.sel(a=1, b=20).item() == 1, order
            code = ds["model_error"].sel(a=1, b=10).item()
            assert code >= 1 and ds["model_messages"].values[code - 1] == "ValueError: no 1"


# ---------------------------------------------------------------------------------------------
# Cells computed with different values: on_conflict
# ---------------------------------------------------------------------------------------------
def test_different_values_are_an_error_naming_the_cell_and_the_way_out(tmp_path, monkeypatch):
    first = cache(tmp_path / "first.nc")
    ps = space()
    ps["b"].value = 20
    second = at(monkeypatch, "0.5", tmp_path / "second.nc", ps=ps, params=["a"])
    out = tmp_path / "all.nc"
    with pytest.raises(xs.StoreMismatchError) as info:
        xs.merge_stores([first, second], out)
    message = str(info.value)
    assert "4 cells of model" in message  # a = 1..4 at b = 20
    assert "first at a=1, b=20" in message
    assert second in message
    assert "on_conflict='first' or 'last'" in message and "--on-conflict" in message
    assert not out.exists(), "a refused merge left an output file"
    assert sorted(os.listdir(tmp_path)) == ["first.nc", "second.nc"]


@pytest.mark.parametrize("choice, keep", [("first", 0), ("last", -1)])
def test_on_conflict_first_and_last_keep_that_files_values(tmp_path, monkeypatch, choice, keep):
    settings = ("0", "1000", "2000")
    paths = [at(monkeypatch, s, tmp_path / f"r{s}.nc") for s in settings]
    got = read(xs.merge_stores(paths, tmp_path / "all.nc", on_conflict=choice))
    want = read(paths[keep])
    np.testing.assert_array_equal(got["x"], want["x"])
    assert got["x"][0, 0] == 110.0 + float(settings[keep])
    assert (got["model_status"] == 1).all()


def test_on_conflict_picks_among_the_files_that_hold_the_cell(tmp_path, monkeypatch):
    # "last" is the last file that computed the cell, not the last file: a cell computed
    # only in the first file keeps its value, and the other way round.
    ps = space()
    ps["a"].value = 1
    only_a1 = at(monkeypatch, "5", tmp_path / "a1.nc", ps=ps, params=["b"])
    ps = space()
    ps["b"].value = 10
    only_b10 = at(monkeypatch, "7", tmp_path / "b10.nc", ps=ps, params=["a"])
    for choice, both in [("first", 115.0), ("last", 117.0)]:
        out = xs.merge_stores([only_a1, only_b10], tmp_path / f"{choice}.nc", on_conflict=choice)
        with xr.open_dataset(out) as ds:
            x = ds["x"]
            assert x.sel(a=1, b=10).item() == both  # in both files
            assert x.sel(a=1, b=20).item() == 125.0  # only in the first
            assert x.sel(a=4, b=10).item() == 417.0  # only in the last
            assert np.isnan(x.sel(a=4, b=20).item())  # in neither
            assert ds["model_status"].sel(a=4, b=20).item() == 0


def test_a_value_against_no_value_is_a_conflict(tmp_path, monkeypatch):
    # At a=1 one file holds None and the other a value equal to the fill (NaN, zeros): only
    # the status tells them apart, and it is the first conflict.
    none = at(monkeypatch, "none", tmp_path / "none.nc")
    nan = at(monkeypatch, "nan", tmp_path / "nan.nc")
    assert np.isnan(read(nan)["x"][0]).all() and (read(nan)["v"][0] == 0).all()
    with pytest.raises(xs.StoreMismatchError, match="first at a=1, b=10"):
        xs.merge_stores([none, nan], tmp_path / "all.nc")
    with xr.open_dataset(xs.merge_stores([none, nan], tmp_path / "l.nc", on_conflict="last")) as ds:
        assert (ds["model_status"] == 1).all()


def test_an_unknown_on_conflict_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(xs.StoreError, match=r"'raise', 'first', 'last'"):
        xs.merge_stores([tmp_path / "missing.nc"], tmp_path / "out.nc", on_conflict="newest")
    assert not (tmp_path / "out.nc").exists()


@pytest.mark.parametrize(
    "as_given", [str, os.fsencode, lambda path: path], ids=["str", "bytes", "Path"]
)
def test_one_path_instead_of_a_list_is_refused_with_the_way_out(tmp_path, as_given):
    # A str is a Sequence too: iterated, it would be one "file" per character.
    path = cache(tmp_path / "r.nc")
    out = tmp_path / "all.nc"
    with pytest.raises(xs.StoreError, match=r"list of paths, e\.g\. \[path\]") as caught:
        xs.merge_stores(as_given(tmp_path / "r.nc"), out)
    assert path in str(caught.value) and "nothing was read or written" in str(caught.value)
    assert not out.exists()
    with xr.open_dataset(xs.merge_stores([path], out)) as ds:  # the way out the error names
        assert (ds["model_status"] == 1).all()


def test_an_existing_output_file_is_never_overwritten(tmp_path):
    path = cache(tmp_path / "r.nc")
    out = tmp_path / "all.nc"
    out.write_bytes(b"precious")
    with pytest.raises(xs.StoreError, match="already exists"):
        xs.merge_stores([path], out)
    assert out.read_bytes() == b"precious"


# ---------------------------------------------------------------------------------------------
# Different grids, different functions
# ---------------------------------------------------------------------------------------------
def test_grids_with_different_values_merge_over_their_union(tmp_path):
    one = cache(tmp_path / "one.nc", ps=space(a=(1, 2), b=(10, 20)))
    two = cache(tmp_path / "two.nc", ps=space(a=(2, 3), b=(20, 30)))
    out = xs.merge_stores([one, two], tmp_path / "all.nc")
    with xr.open_dataset(out) as ds:
        assert ds["a"].values.tolist() == [1, 2, 3]
        assert ds["b"].values.tolist() == [10, 20, 30]
        computed = {(1, 10), (1, 20), (2, 10), (2, 20), (2, 30), (3, 20), (3, 30)}
        for a in (1, 2, 3):
            for b in (10, 20, 30):
                st = ds["model_status"].sel(a=a, b=b).item()
                x = ds["x"].sel(a=a, b=b).item()
                v = ds["v"].sel(a=a, b=b).values.tolist()
                if (a, b) in computed:
                    assert (st, x, v) == (1, a * 100.0 + b, [0, a - 1, 2 * a - 2]), (a, b)
                else:  # neither file had it: not computed, NaN (ints too: issue 21)
                    assert st == 0 and np.isnan(x) and np.isnan(v).all(), (a, b)
                    assert np.isnan(ds["model_seconds"].sel(a=a, b=b).item())


def test_different_functions_in_different_files_are_all_kept(tmp_path):
    def square(a, b):
        return a * a

    def total(a, b):
        return a + b

    out = xs.merge_stores(
        [cache(tmp_path / "sq.nc", fn=square), cache(tmp_path / "tot.nc", fn=total)],
        tmp_path / "all.nc",
    )
    with xr.open_dataset(out) as ds:
        assert ds["square"].sel(b=10).values.tolist() == [1, 4, 9, 16]
        assert ds["total"].sel(a=4).values.tolist() == [14, 24]
        assert (ds["square_status"] == 1).all() and (ds["total_status"] == 1).all()


def test_results_of_another_version_of_the_code_are_not_merged(tmp_path):
    def make(version):
        if version == 1:

            def area(a, b):
                return a * b

        else:

            def area(a, b):
                return a * b + 1

        return area

    old = cache(tmp_path / "old.nc", fn=make(1))
    new = cache(tmp_path / "new.nc", fn=make(2), ps=space(a=(5,)))  # no cell in common
    out = tmp_path / "all.nc"
    with pytest.raises(xs.FunctionChangedError) as info:
        xs.merge_stores([old, new], out)
    message = str(info.value)
    assert "area" in message and new in message
    assert "another version of the function's code" in message and "@xs.version" in message
    assert not out.exists()
    # The way out it names: one declared version for both.
    old = cache(tmp_path / "old_v.nc", fn=xs.version("1")(make(1)))
    new = cache(tmp_path / "new_v.nc", fn=xs.version("1")(make(2)), ps=space(a=(5,)))
    merged = xs.merge_stores([old, new], out)
    with xr.open_dataset(merged) as ds:
        assert ds["area"].sel(a=5).values.tolist() == [51, 101]
        assert ds["area"].sel(a=4).values.tolist() == [40, 80]


def failing(a, b):
    raise ValueError(f"attempt {os.environ[SETTING]}")


def test_of_two_failures_on_conflict_picks_the_message(tmp_path, monkeypatch):
    with pytest.warns(xs.SweepFailuresWarning):
        first = at(monkeypatch, "1", tmp_path / "one.nc", fn=failing)
    with pytest.warns(xs.SweepFailuresWarning):
        second = at(monkeypatch, "2", tmp_path / "two.nc", fn=failing)
    for choice, want in (("first", "attempt 1"), ("last", "attempt 2"), ("raise", "attempt 1")):
        out = xs.merge_stores([first, second], tmp_path / f"{choice}.nc", on_conflict=choice)
        with xr.open_dataset(out) as ds:
            assert set(ds.xsweep.failures()["error"]) == {f"ValueError: {want}"}, choice


def renders(a, b):
    return {"x": float(a)}


def test_merging_functions_whose_outputs_share_a_name_says_what_clashes(tmp_path, monkeypatch):
    first = cache(tmp_path / "one.nc")  # model returns an output named "x"
    second = cache(tmp_path / "two.nc", fn=renders)  # so does renders
    with pytest.raises(xs.StoreMismatchError, match="output named 'x'.*function model"):
        xs.merge_stores([first, second], tmp_path / "out.nc")
    assert sorted(os.listdir(tmp_path)) == ["one.nc", "two.nc"]  # nothing written
