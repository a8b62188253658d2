"""Living stores: growing and subsetting grids, new parameters, changed functions, merging,
slices for job arrays, and the command line. Calls are counted to prove reuse."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import xsweep as xs


class Counted:
    """A swept function ``a * b`` that records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, a, b):
        self.calls.append((a, b))
        return a * b


def counted():
    f = Counted()
    f.__name__ = f.__qualname__ = "product"
    return f


def space(a_values, b_values=(1, 2)):
    return xs.ParameterSpace(
        [
            xs.Parameter("a", values=list(a_values), units="m"),
            xs.Parameter("b", values=list(b_values)),
        ]
    )


def open_plain(path):
    with xr.open_dataset(path) as ds:
        return ds.load()


def test_adding_values_anywhere_reuses_every_computed_cell(tmp_path):
    path = tmp_path / "r.nc"
    ps = space([2, 4])
    ps.enable_cache(path)
    f = counted()
    ps.sweep(f)
    assert len(f.calls) == 4
    grown = space([1, 2, 3, 4, 5])  # new values before, between and after the old ones
    grown.enable_cache(path)
    f.calls.clear()
    ds = grown.sweep(f)
    assert sorted(f.calls) == [(1, 1), (1, 2), (3, 1), (3, 2), (5, 1), (5, 2)]
    assert ds["a"].values.tolist() == [1, 2, 3, 4, 5]
    assert ds["product"].values.tolist() == [[1, 2], [2, 4], [3, 6], [4, 8], [5, 10]]
    plain = open_plain(path)
    assert plain["a"].values.tolist() == [1, 2, 3, 4, 5] and plain["a"].attrs["units"] == "m"
    assert (plain["product_status"] == 1).all()


def test_string_values_added_keep_space_order(tmp_path):
    path = tmp_path / "r.nc"
    calls = []

    def label(m):
        calls.append(m)
        return m.upper()

    one = xs.ParameterSpace([xs.Parameter("m", values=["oak", "steel"])])
    one.enable_cache(path)
    one.sweep(label)
    two = xs.ParameterSpace([xs.Parameter("m", values=["pine", "steel", "oak"])])
    two.enable_cache(path)
    ds = two.sweep(label)
    assert calls == ["oak", "steel", "pine"]
    assert ds["m"].values.tolist() == ["pine", "steel", "oak"]
    assert ds["label"].values.tolist() == ["PINE", "STEEL", "OAK"]


def test_subset_reuses_cells_and_keeps_the_others_in_the_file(tmp_path):
    path = tmp_path / "r.nc"
    full = space([1, 2, 3])
    full.enable_cache(path)
    f = counted()
    full.sweep(f)
    subset = space([1, 3], b_values=[2])
    subset.enable_cache(path)
    f.calls.clear()
    ds = subset.sweep(f)
    assert f.calls == []
    assert ds["product"].values.tolist() == [[2], [6]]
    assert subset.run_process(f, a=3, b=2) == 6 and f.calls == []
    subset.sweep(lambda a, b: a - b)  # a write through the subset space ...
    subset.disable_cache()
    plain = open_plain(path)
    assert plain["a"].values.tolist() == [1, 2, 3]  # ... keeps the values it does not use
    assert (plain["product_status"] == 1).all()
    assert plain["product"].sel(a=2, b=1).item() == 2


def test_new_parameter_needs_an_explicit_computed_at(tmp_path):
    path = tmp_path / "r.nc"
    old = space([1, 2])
    old.enable_cache(path)
    calls = []

    def model(a, b, damping=0.0):
        calls.append(damping)
        return a * b * (1 - damping)

    old.sweep(model)
    assert calls == [0.0] * 4
    new = xs.ParameterSpace(
        [*space([1, 2]).parameters, xs.Parameter("damping", values=[0.0, 0.5], default=0.0)]
    )
    new.enable_cache(path)
    with pytest.raises(
        xs.StoreMismatchError,
        match=r"computed before \['damping'\] existed.*computed_at=\{'damping': <value>\}",
    ):
        new.sweep(model)
    new.enable_cache(path, computed_at={"damping": 0.0})
    calls.clear()
    ds = new.sweep(model)
    assert calls == [0.5] * 4  # damping=0.0 came from the file
    assert ds["model"].dims == ("a", "b", "damping")
    assert ds["model"].sel(damping=0.0).values.tolist() == [[1.0, 2.0], [2.0, 4.0]]
    assert ds["model"].sel(damping=0.5).values.tolist() == [[0.5, 1.0], [1.0, 2.0]]
    with pytest.raises(ValueError, match="Nearest valid values"):
        new.enable_cache(path, computed_at={"damping": 0.25})


def test_dropped_argument_is_an_error(tmp_path):
    path = tmp_path / "r.nc"
    ps = space([1, 2])
    ps.enable_cache(path)

    def model(a, b):
        return a + b

    ps.sweep(model)

    def model(a):  # noqa: F811
        return a

    with pytest.raises(xs.StoreMismatchError, match=r"no longer takes \['b'\].*clear_cache"):
        ps.sweep(model)


def make_model(version_body):
    namespace = {}
    exec(f"def model(a, b):\n    {version_body}\n", namespace)  # noqa: S102
    return namespace["model"]


def test_changed_function_is_detected_and_the_ways_out_work(tmp_path):
    path = tmp_path / "r.nc"
    ps = space([1, 2])
    ps.enable_cache(path)
    v1 = make_model("return a * b")
    ps.sweep(v1)
    same = make_model('"""A docstring."""\n    # a comment\n    return a  *  b')
    ps.sweep(same)  # docstrings, comments and spacing do not count
    v2 = make_model("return a * b + 1")
    with pytest.raises(
        xs.FunctionChangedError,
        match="different version.*force_recompute=True.*on_change='keep'.*xs.version",
    ):
        ps.sweep(v2)
    ps["a"].value = 2
    with pytest.raises(xs.FunctionChangedError):
        ps.run_process(v2)
    ds = ps.sweep(v2, on_change="keep")
    assert ds["model"].values.tolist() == [[1, 2], [2, 4]]  # old results kept on purpose
    assert "kept on purpose" in open_plain(path)["model_status"].attrs["comment"]
    v3 = make_model("return a * b + 2")
    ds = ps.sweep(v3, force_recompute=True)
    assert ds["model"].values.tolist() == [[3, 4], [4, 6]]
    assert ps.run_process(v3) == 4


def test_declared_versions_replace_the_fingerprint(tmp_path):
    path = tmp_path / "r.nc"
    ps = space([1, 2])
    ps.enable_cache(path)
    calls = []
    v1 = xs.version("1")(make_model("return a * b"))
    ps.sweep(v1)
    v1b = xs.version("1")(make_model("return b * a  # refactored"))
    ps.sweep(v1b)  # same declared version: reused
    v2 = make_model("return a * b")
    calls.append(1)
    with pytest.raises(xs.FunctionChangedError):
        ps.sweep(v2, version="2")
    ps.sweep(v2, version="1")  # declared for this space through sweep()
    assert calls == [1]


def test_two_lambdas_never_share_results(tmp_path):
    ps = space([1, 2])
    ps.enable_cache(tmp_path / "r.nc")
    make = [lambda a, b: a + b, lambda a, b: a * b]  # same qualified name
    ps.sweep(make[0])
    with pytest.raises(xs.FunctionChangedError):
        ps.sweep(make[1])


def test_closure_values_count(tmp_path):
    ps = space([1, 2])
    ps.enable_cache(tmp_path / "r.nc")

    def scaled(k):
        def model(a, b):
            return a * b * k

        return model

    ps.sweep(scaled(2))
    ps.sweep(scaled(2))
    with pytest.raises(xs.FunctionChangedError):
        ps.sweep(scaled(3))


def test_job_array_parts_then_merge(tmp_path):
    grid = space(range(10), b_values=[1, 2, 3])
    paths = []
    for job in range(3):
        path = tmp_path / f"job{job}.nc"
        grid.enable_cache(path)
        grid.sweep(counted(), part=(job, 3))
        paths.append(str(path))
    grid.disable_cache()
    computed = [int((open_plain(p)["product_status"] == 1).sum()) for p in paths]
    assert computed == [10, 10, 10]
    out = xs.merge_stores(paths, tmp_path / "all.nc")
    merged = open_plain(out)
    assert (merged["product_status"] == 1).all()
    expected = np.arange(10)[:, None] * np.array([1, 2, 3])[None, :]
    np.testing.assert_array_equal(merged["product"].values, expected)
    with pytest.raises(xs.StoreError, match="already exists"):
        xs.merge_stores(paths, out)
    with pytest.raises(xs.SweepError, match=r"part must be \(k, n\)"):
        grid.sweep(counted(), part=(3, 3))


def test_merge_of_different_grids_and_conflicts(tmp_path):
    a = space([1, 2])
    a.enable_cache(tmp_path / "a.nc")
    a.sweep(counted())
    b = space([2, 3])
    b.enable_cache(tmp_path / "b.nc")
    b.sweep(counted())
    out = xs.merge_stores([tmp_path / "a.nc", tmp_path / "b.nc"], tmp_path / "ab.nc")
    merged = open_plain(out)
    assert merged["a"].values.tolist() == [1, 2, 3]
    assert merged["product"].values.tolist() == [[1, 2], [2, 4], [3, 6]]

    v1 = make_model("return a * b")
    v2 = make_model("return a * b + 100")
    for name, fn in (("c.nc", v1), ("d.nc", v2)):
        other = space([2])
        other.enable_cache(tmp_path / name)
        other.sweep(fn)
        other.disable_cache()
    with pytest.raises(xs.FunctionChangedError, match="another version"):
        xs.merge_stores([tmp_path / "c.nc", tmp_path / "d.nc"], tmp_path / "cd.nc")


def test_merge_conflicting_values_rules(tmp_path):
    def write(path, offset):
        ps = space([1, 2])
        ps.enable_cache(path)
        fn = xs.version("same")(make_model(f"return a * b + {offset}"))
        ps.sweep(fn)
        ps.disable_cache()

    write(tmp_path / "x.nc", 0)
    write(tmp_path / "y.nc", 10)
    with pytest.raises(
        xs.StoreMismatchError,
        match=r"4 cells .* different values, first at "
        r"a=1, b=1 .*on_conflict='first' or 'last'",
    ):
        xs.merge_stores([tmp_path / "x.nc", tmp_path / "y.nc"], tmp_path / "xy.nc")
    assert not os.path.exists(tmp_path / "xy.nc")
    first = xs.merge_stores(
        [tmp_path / "x.nc", tmp_path / "y.nc"], tmp_path / "f.nc", on_conflict="first"
    )
    last = xs.merge_stores(
        [tmp_path / "x.nc", tmp_path / "y.nc"], tmp_path / "l.nc", on_conflict="last"
    )
    assert open_plain(first)["model"].values.tolist() == [[1, 2], [2, 4]]
    assert open_plain(last)["model"].values.tolist() == [[11, 12], [12, 14]]


def test_cells_selects_values(tmp_path):
    ps = space([1, 2, 3])
    ps.enable_cache(tmp_path / "r.nc")
    f = counted()
    ds = ps.sweep(f, cells={"a": [3, 1]})
    assert sorted(f.calls) == [(1, 1), (1, 2), (3, 1), (3, 2)]
    assert ds["product_status"].sel(a=2).values.tolist() == [0, 0]
    with pytest.raises(ValueError, match="Nearest valid values"):
        ps.sweep(f, cells={"a": [7]})


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "xsweep", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_line_info_failures_merge(tmp_path):
    ps = space([0, 1, 2])
    ps.enable_cache(tmp_path / "r.nc")

    def inverse(a, b):
        return b / a

    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(inverse)
    ps.disable_cache()
    done = run_cli("info", tmp_path / "r.nc")
    assert done.returncode == 0, done.stderr
    assert "a [m]: 3 values [0, 1, 2]" in done.stdout
    assert "4 computed, 2 failed, 0 missing of 6 cells" in done.stdout
    assert "xsweep_version" in done.stdout
    info = json.loads(run_cli("info", tmp_path / "r.nc", "--json").stdout)
    assert info["functions"][0]["failed"] == 2 and info["parameters"][1]["values"] == [1, 2]
    fails = run_cli("failures", tmp_path / "r.nc")
    assert "inverse(a=0, b=1): ZeroDivisionError: division by zero" in fails.stdout

    part = space([3])
    part.enable_cache(tmp_path / "s.nc")
    part.sweep(inverse)
    part.disable_cache()
    merged = run_cli("merge", tmp_path / "r.nc", tmp_path / "s.nc", "-o", tmp_path / "all.nc")
    assert merged.returncode == 0, merged.stderr
    assert open_plain(tmp_path / "all.nc")["a"].values.tolist() == [0, 1, 2, 3]

    (tmp_path / "junk.nc").write_text("junk")
    for args in (
        ("info", tmp_path / "junk.nc"),
        ("info", tmp_path / "missing.nc"),
        ("failures", tmp_path / "junk.nc"),
        ("merge", tmp_path / "r.nc", "-o", tmp_path / "all.nc"),
    ):
        bad = run_cli(*args)
        assert bad.returncode == 1
        assert bad.stderr.count("\n") == 1 and "error:" in bad.stderr
        assert "Traceback" not in bad.stderr


def test_compact_cache_drops_only_when_asked(tmp_path):
    path = tmp_path / "r.nc"
    full = space([1, 2, 3, 4])
    full.enable_cache(path)

    def fails_at_3(a, b):
        if a == 3:
            raise ValueError("three")
        return a * b

    with pytest.warns(xs.SweepFailuresWarning):
        full.sweep(fails_at_3)
    full.disable_cache()
    narrow = space([4, 2])
    narrow.enable_cache(path)
    assert open_plain(path)["a"].values.tolist() == [1, 2, 3, 4]  # kept until asked
    assert narrow.compact_cache() == {"a": 2}
    plain = open_plain(path)
    assert plain["a"].values.tolist() == [4, 2]
    assert plain["fails_at_3"].values.tolist() == [[4, 8], [2, 4]]
    assert (plain["fails_at_3_status"] == 1).all()
    ds = narrow.sweep(fails_at_3)
    assert ds["fails_at_3"].values.tolist() == [[4, 8], [2, 4]]
    assert narrow.compact_cache() == {}
    with pytest.raises(xs.SweepError, match="caching is off"):
        space([1]).compact_cache()


def test_compact_cache_keeps_failure_messages_of_kept_cells(tmp_path):
    path = tmp_path / "r.nc"
    full = space([1, 2, 3])
    full.enable_cache(path)

    def picky(a, b):
        if a == 3:
            raise ValueError(f"bad {b}")
        return a

    with pytest.warns(xs.SweepFailuresWarning):
        full.sweep(picky)
    full.disable_cache()
    narrow = space([3, 1])
    narrow.enable_cache(path)
    narrow.compact_cache()
    assert narrow.failures(picky).to_dict("records") == [
        {"a": 3, "b": 1, "error": "ValueError: bad 1"},
        {"a": 3, "b": 2, "error": "ValueError: bad 2"},
    ]
