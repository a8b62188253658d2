"""The NetCDF cache in one process: read-through, resume, exact round trips, guarantees."""

import os
import time
import warnings

import netCDF4
import numpy as np
import pytest
import xarray as xr

import xsweep as xs


def make_space():
    return xs.ParameterSpace(
        [
            xs.Parameter("a", values=[1, 2, 3], units="m", description="a length"),
            xs.Parameter("b", values=[0.5, 1.5]),
        ]
    )


class Counter:
    """A swept function that counts its calls."""

    def __init__(self, fail_at=None, interrupt_at=None):
        self.calls = []
        self.fail_at = fail_at
        self.interrupt_at = interrupt_at

    def __call__(self, a, b):
        self.calls.append((a, b))
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        if (a, b) == self.fail_at:
            raise RuntimeError("planned failure")
        return a * b


def named(fn, name):
    """Give a callable object the name (and so the cache key) of a function."""
    fn.__name__ = fn.__qualname__ = name
    return fn


def product(a, b):
    return a * b


def open_plain(path):
    with xr.open_dataset(path) as ds:
        return ds.load()


def test_default_path_and_switches(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ps = make_space()
    assert ps.cache_path is None
    ps.enable_cache()
    assert ps.cache_path == str(tmp_path / "xsweep_results.nc")
    ps.sweep(product)
    assert (tmp_path / "xsweep_results.nc").exists()
    # Sidecars are gone once the sweep has published its results.
    assert sorted(os.listdir(tmp_path)) == ["xsweep_results.nc"]
    ps.disable_cache()
    assert ps.cache_path is None
    with pytest.raises(xs.SweepError, match="caching is off.*enable_cache"):
        ps.clear_cache()
    with pytest.raises(xs.SweepError, match="does not exist. Create it first"):
        ps.enable_cache(tmp_path / "missing" / "r.nc")


def test_sweep_fills_file_readable_by_plain_xarray(tmp_path):
    ps = make_space()
    path = tmp_path / "r.nc"
    ps.enable_cache(path)
    ps["b"].value = 1.5
    ps.sweep(product, params=["a"])  # only the b=1.5 column
    ds = open_plain(path)
    assert ds["product"].dims == ("a", "b")
    assert np.isnan(ds["product"].sel(b=0.5)).all()
    assert ds["product"].sel(b=1.5).values.tolist() == [1.5, 3.0, 4.5]
    assert ds["product_status"].values.tolist() == [[0, 1], [0, 1], [0, 1]]
    assert (
        ds["product_status"].attrs["flag_meanings"]
        == "not_computed computed failed computed_no_value"
    )
    assert list(ds["product_status"].attrs["flag_values"]) == [0, 1, 2, 3]
    assert ds["a"].attrs == {"long_name": "a", "units": "m", "description": "a length"}
    assert ds["product_seconds"].attrs["units"] == "s"
    assert np.isnan(ds["product_seconds"].sel(b=0.5)).all()
    assert (ds["product_seconds"].sel(b=1.5) >= 0).all()
    for key in (
        "xsweep_version",
        "python_version",
        "numpy_version",
        "xarray_version",
        "netCDF4_version",
        "hdf5_version",
        "created",
        "updated",
    ):
        assert ds.attrs[key]
    assert ds["product_status"].attrs["xsweep_function"] == "product"


def test_interrupt_and_exception_then_resume_same_process(tmp_path):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    f = named(Counter(interrupt_at=3), "counted")
    with pytest.raises(KeyboardInterrupt):
        ps.sweep(f)
    assert len(f.calls) == 3
    # The two cells finished before Ctrl-C are in the file already.
    assert int((open_plain(tmp_path / "r.nc")["counted_status"] == 1).sum()) == 2
    f.calls.clear()
    f.interrupt_at = None
    f.fail_at = (3, 0.5)
    with pytest.raises(RuntimeError, match="planned failure"):
        ps.sweep(f, errors="raise")
    assert f.calls == [(2, 0.5), (2, 1.5), (3, 0.5)]  # the 2 cached cells were not called
    f.calls.clear()
    f.fail_at = None
    ds = ps.sweep(f)
    assert f.calls == [(3, 0.5), (3, 1.5)]  # failed cell retried, missing one computed
    assert ds["counted"].values.tolist() == [[0.5, 1.5], [1.0, 3.0], [1.5, 4.5]]
    f.calls.clear()
    ps.sweep(f)
    assert f.calls == []


def test_resume_in_new_space_object(tmp_path):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    f = named(Counter(interrupt_at=4), "counted")
    with pytest.raises(KeyboardInterrupt):
        ps.sweep(f)
    ps2 = make_space()
    ps2.enable_cache(tmp_path / "r.nc")
    g = named(Counter(), "counted")
    ps2.sweep(g)
    assert len(g.calls) == 3


def test_failures_recorded_in_file_and_retry_policy(tmp_path):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    f = Counter(fail_at=(2, 0.5))
    f.__name__ = f.__qualname__ = "flaky"
    with pytest.warns(xs.SweepFailuresWarning, match="1 of 6 cells"):
        ps.sweep(f)
    ds = open_plain(tmp_path / "r.nc")
    assert int(ds["flaky_status"].sel(a=2, b=0.5)) == 2
    code = int(ds["flaky_error"].sel(a=2, b=0.5))
    assert ds["flaky_messages"].values[code - 1] == "RuntimeError: planned failure"
    assert ps.failures(f).to_dict("records") == [
        {"a": 2, "b": 0.5, "error": "RuntimeError: planned failure"}
    ]
    f.calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ps.sweep(f, retry_failed=False)  # no retry: no call, and no new failure warning
    assert f.calls == []
    f.fail_at = None
    ps.sweep(f)
    assert f.calls == [(2, 0.5)]
    assert ps.failures(f).empty


def test_run_process_read_through_no_call_no_callbacks(tmp_path):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    f = named(Counter(), "counted")
    ps.sweep(f)
    fired = []
    ps["a"].register_callback(fired.append)
    f.calls.clear()
    assert ps.run_process(f, a=3, b=1.5) == 4.5
    assert f.calls == [] and fired == []  # from the store: no call, no callback
    assert ps["a"].value == 3 and ps["b"].value == 1.5
    assert ps.run_process(f, force_recompute=True) == 4.5
    assert f.calls == [(3, 1.5)]


def test_run_process_miss_computes_and_writes_back(tmp_path):
    path = tmp_path / "r.nc"
    ps = make_space()
    ps.enable_cache(path)
    f = named(Counter(), "counted")
    fired = []
    ps["a"].register_callback(fired.append)
    assert ps.run_process(f, a=2) == 1.0
    assert f.calls == [(2, 0.5)] and fired == [2]
    assert ps.run_process(f) == 1.0
    assert len(f.calls) == 1
    # A second space object (as a new process would) sees it through the journal replay.
    other = make_space()
    other.enable_cache(path)
    other["a"].value = 2
    g = named(Counter(), "counted")
    assert other.run_process(g) == 1.0 and g.calls == []
    # Closing publishes it into the NetCDF file itself.
    ps.disable_cache()
    other.disable_cache()
    assert float(open_plain(path)["counted"].sel(a=2, b=0.5)) == 1.0
    assert not os.path.exists(f"{path}.journal")


def test_two_space_objects_alternate_writes(tmp_path):
    path = tmp_path / "r.nc"
    one, two = make_space(), make_space()
    one.enable_cache(path)
    two.enable_cache(path)
    assert one.run_process(product, a=1) == 0.5
    assert two.run_process(product, a=2) == 1.0
    assert one.run_process(product, a=3) == 1.5
    ds = two.sweep(product, params=["a"])
    assert ds["product_status"].values.tolist() == [1, 1, 1]
    one.disable_cache()
    two.disable_cache()
    assert open_plain(path)["product"].sel(b=0.5).values.tolist() == [0.5, 1.0, 1.5]


def test_nan_results_are_computed_once(tmp_path):
    calls = []

    def nan_maker(a, b):
        calls.append(1)
        return float("nan")

    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(nan_maker)
    ps.sweep(nan_maker)
    assert len(calls) == 6
    ps.run_process(nan_maker)
    assert len(calls) == 6


def test_exact_round_trips_through_the_file(tmp_path):
    path = tmp_path / "r.nc"

    calls = []

    def image(a, b):
        calls.append(a)
        img = np.full((4, 5, 3), 255, dtype=np.uint8)
        img[0, 0] = [a, int(b * 10), 0]
        return img

    def mixed(a, b):
        calls.append(a)
        return {
            "big": 2**53 + 2 * a + 1,
            "name": f"cell-{a}-{b}-é",
            "flag": a == 2,
            "f32": np.float32(b),
            "words": np.array(["x", "yy"]),
        }

    def labelled(a, b):
        calls.append(a)
        return xr.DataArray(
            np.array([a * 1.0, b]),
            dims="freq",
            coords={"freq": [1.0, 2.0], "band": ("freq", ["lo", "hi"])},
            name="power",
            attrs={"units": "W"},
        )

    ps = make_space()
    ps.enable_cache(path)
    for fn, kw in (
        (image, {"output_dims": {"image": ("y", "x", "rgb")}}),
        (mixed, {}),
        (labelled, {}),
    ):
        ps.sweep(fn, **kw)
    ds = open_plain(path)
    assert ds["image"].dtype == np.uint8
    assert ds["image"].sel(a=3, b=1.5).values[0, 0].tolist() == [3, 15, 0]
    assert int(ds["image"].max()) == 255 and ds["image"].values.min() == 0
    assert ds["big"].dtype == np.int64 and int(ds["big"].sel(a=3, b=0.5)) == 2**53 + 7
    assert ds["name"].sel(a=2, b=1.5).item() == "cell-2-1.5-é"
    assert ds["flag"].dtype == bool and ds["flag"].sel(a=2).values.all()
    assert ds["f32"].dtype == np.float32
    assert ds["power"].attrs["units"] == "W"
    assert ds["band"].values.tolist() == ["lo", "hi"]

    # A new space object reads the same values back as the functions returned them.
    ps2 = make_space()
    ps2.enable_cache(path)
    ps2["a"].value, ps2["b"].value = 3, 1.5

    for fn in (image, mixed, labelled):
        before = len(calls)
        got = ps2.run_process(fn)
        assert len(calls) == before  # from the file, not computed
        want = fn(3, 1.5)
        if isinstance(want, np.ndarray):
            assert isinstance(got, np.ndarray) and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        elif isinstance(want, dict):
            assert got.keys() == want.keys()
            for k in want:
                assert type(got[k]) is type(want[k]) or isinstance(want[k], np.ndarray)
                np.testing.assert_array_equal(got[k], want[k])
        else:
            xr.testing.assert_identical(got, want)


def test_force_recompute_and_clear_cache(tmp_path):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    f = named(Counter(), "counted")
    ps.sweep(f)
    ps.sweep(product)
    ps.sweep(f, force_recompute=True)
    assert len(f.calls) == 12
    ps.clear_cache(f)  # forgets f entirely: its variables leave the file
    ds = open_plain(tmp_path / "r.nc")
    assert "counted_status" not in ds and "counted" not in ds
    assert (ds["product_status"] == 1).all()
    ps.clear_cache()
    assert "product_status" not in open_plain(tmp_path / "r.nc")
    f.calls.clear()
    ps.sweep(f)
    assert len(f.calls) == 6


def _file_bytes(path):
    with open(path, "rb") as fh:
        return fh.read()


def test_foreign_files_are_never_overwritten(tmp_path):
    text = tmp_path / "notes.nc"
    text.write_text("not netcdf at all")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"t": ("x", [1.0, 2.0])}).to_netcdf(foreign)
    ps = make_space()
    ps.enable_cache(tmp_path / "good.nc")
    ps.sweep(product)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(_file_bytes(tmp_path / "good.nc")[:200])
    for path, match in (
        (text, "cannot be read as NetCDF"),
        (foreign, "not an xsweep results file"),
        (truncated, "cannot be read as NetCDF"),
    ):
        before = _file_bytes(path)
        with pytest.raises(xs.StoreError, match=match) as info:
            make_space().enable_cache(path)
        assert str(path) in str(info.value) and "another cache path" in str(info.value)
        assert _file_bytes(path) == before


def test_grid_of_another_kind_is_an_error_that_says_what_differs(tmp_path):
    path = tmp_path / "r.nc"
    ps = make_space()
    ps.enable_cache(path)
    ps.sweep(product)
    before = _file_bytes(path)
    other = xs.ParameterSpace(
        [xs.Parameter("a", values=["x", "y"]), xs.Parameter("b", values=[0.5, 1.5])]
    )
    with pytest.raises(
        xs.StoreMismatchError,
        match=r"parameter 'a' with values \[1, 2, 3\], of another kind than this space's "
        r"\['x', 'y'\]",
    ):
        other.enable_cache(path)
    assert _file_bytes(path) == before


def test_functions_never_share_results(tmp_path):
    class A:
        @staticmethod
        def f(a, b):
            return a

    class B:
        @staticmethod
        def f(a, b):
            return b

    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(A.f)
    with pytest.raises(xs.FunctionChangedError, match=r"another function named 'f'.*name="):
        ps.sweep(B.f)
    # The way out the message gives: a name of its own.
    assert ps.sweep(B.f, name="g")["g"].sel(a=1).values.tolist() == [0.5, 1.5]
    assert ps.sweep(A.f)["f"].sel(b=0.5).values.tolist() == [1, 2, 3]

    def one(a, b):
        return {"shared": a}

    def two(a, b):
        return {"shared": b}

    ps.sweep(one)
    with pytest.raises(xs.StoreMismatchError, match="'shared', but that name is already used"):
        ps.sweep(two)
    ds = open_plain(tmp_path / "r.nc")
    assert ds["shared"].sel(b=1.5).values.tolist() == [1, 2, 3]


def test_second_writer_in_same_process_gets_clear_error(tmp_path):
    path = tmp_path / "r.nc"
    outer, inner = make_space(), make_space()
    outer.enable_cache(path)
    inner.enable_cache(path)
    seen = []

    def nested(a, b):
        if not seen:
            with pytest.raises(xs.StoreLockedError, match=f"{path}.*being written by"):
                inner.sweep(product)
            seen.append(True)
        return a

    outer.sweep(nested)
    assert seen == [True]
    inner.sweep(product)  # free again once the first sweep ended


def test_journal_replay_ignores_torn_tail(tmp_path):
    path = tmp_path / "r.nc"
    ps = make_space()
    ps.enable_cache(path)
    ps.run_process(product, a=1, b=0.5)
    ps.run_process(product, a=2, b=0.5)
    with open(f"{path}.journal", "ab") as fh:
        fh.write(b"\xabR\x10\x00\x00\x00garbage")  # a record cut short by a crash
    ps2 = make_space()
    ps2.enable_cache(path)
    ds = ps2.sweep(product, params=["a"])
    assert ds["product"].values.tolist() == [0.5, 1.0, 1.5]


def test_file_has_no_opaque_types(tmp_path):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(lambda a, b: {"x": a, "s": "text"})
    with netCDF4.Dataset(tmp_path / "r.nc") as nc:
        for var in nc.variables.values():
            # text: NC_STRING (coordinates) or a UTF-8 char array (outputs, messages)
            text = var.dtype is str or (var.dtype == "S1" and var.getncattr("_Encoding") == "utf-8")
            assert text or np.dtype(var.dtype).kind in "iuf", var.name


def test_coordinate_metadata_only_in_the_file_is_kept(tmp_path):
    path = tmp_path / "r.nc"
    described = xs.ParameterSpace([xs.Parameter("a", values=[1, 2], units="m", description="d")])
    described.enable_cache(path)
    described.sweep(lambda a: 2 * a)
    bare = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    bare.enable_cache(path)

    def triple(a):
        return 3 * a

    bare.sweep(triple)
    assert open_plain(path)["a"].attrs == {"long_name": "a", "units": "m", "description": "d"}


def test_big_cells_are_stored_sparsely_and_exactly(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace(
        [xs.Parameter("a", values=[0, 1, 2, 3]), xs.Parameter("b", values=[10, 20])]
    )

    def big(a, b):
        img = np.full((200, 300, 3), 255, dtype=np.uint8)  # 180 kB per output cell
        img[0, 0] = [a, b, 0]
        return {
            "img": img,
            "mask": np.tile(np.arange(300) % (a + 2) == 0, (300, 1)),  # bool, 90 kB ...
            "field": np.full((300, 300), a + b / 100, dtype=np.float64),  # float, 720 kB
            "counts": np.full((300, 300), 2**40 + a, dtype=np.int64),  # int64, 720 kB
        }

    ps.enable_cache(path)
    ps["a"].value = 1
    ps.sweep(big, params=["b"])  # 2 of 8 cells
    partial = os.path.getsize(path)
    ds = open_plain(path)
    # Cells not computed are masked (issue 21: they used to read as 0): float with NaN there
    assert ds["img"].dtype == np.float32 and ds["mask"].dtype == np.float32
    assert ds["counts"].dtype == np.float64
    assert np.isnan(ds["img"].sel(a=2)).all() and np.isnan(ds["mask"].sel(a=2)).all()
    assert np.isnan(ds["counts"].sel(a=2)).all()
    assert ds["img"].sel(a=1, b=20).values[0, 0].tolist() == [1, 20, 0]
    assert (ds["img"].sel(a=1, b=20).values[1:] == 255).all()
    np.testing.assert_array_equal(ds["mask"].sel(a=1, b=10).values, big(1, 10)["mask"])
    assert (ds["counts"].sel(a=1).values == 2**40 + 1).all()
    assert np.isnan(ds["field"].sel(a=2)).all()  # not computed: NaN
    assert (ds["big_status"].sel(a=2) == 0).all()
    ps.sweep(big)
    assert os.path.getsize(path) > 2.5 * partial  # unwritten big cells took no space before
    with xr.open_dataset(path) as ds:  # no holes left: every output in its own dtype
        assert ds["img"].dtype == np.uint8 and ds["mask"].dtype == bool
        assert ds["counts"].dtype == np.int64
    ps2 = xs.ParameterSpace(ps.parameters)
    ps2.enable_cache(path)
    for a in range(4):
        for b in (10, 20):
            got = ps2.run_process(big, a=a, b=b)
            want = big(a, b)
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])
    with netCDF4.Dataset(path) as nc:  # complete: each big variable is one contiguous block
        assert all(nc[name].chunking() == "contiguous" for name in want)


def test_mostly_computed_big_cells_are_contiguous_and_the_rest_read_as_missing(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("i", values=range(10))])

    def field(i):
        if i == 4:
            raise ValueError("no field at 4")
        return {
            "f": np.full((300, 300), i + 0.5, dtype=np.float32),  # 360 kB cells
            "flag": np.eye(600, dtype=bool)[:500] ^ (i % 2 == 0),  # 300 kB, bool
        }

    ps.enable_cache(path)
    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(field)  # 9 of 10 cells: the dense layout
    with netCDF4.Dataset(path) as nc:
        assert nc["f"].chunking() == "contiguous" and nc["flag"].chunking() == "contiguous"
    ds = open_plain(path)
    # the bool output with a failed cell reads as float 0/1 with NaN there (issue 21)
    assert ds["f"].dtype == np.float32 and ds["flag"].dtype == np.float32
    assert np.isnan(ds["f"].sel(i=4)).all()  # failed: missing, as the status says
    assert np.isnan(ds["flag"].sel(i=4)).all()
    assert ds["field_status"].sel(i=4) == 2
    for i in (0, 3, 9):
        assert (ds["f"].sel(i=i) == i + 0.5).all()
        np.testing.assert_array_equal(ds["flag"].sel(i=i), field(i)["flag"])


def test_a_sweeps_dataset_is_the_callers_own(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("i", values=range(8))])
    calls = []

    def frame(i):
        calls.append(i)
        img = np.full((400, 500, 3), 255, dtype=np.uint8)  # 600 kB: handed over, not copied
        img[0, 0, 0] = i
        return img

    ps.enable_cache(path)
    ds = ps.sweep(frame)
    assert calls == list(range(8))
    ds["frame"].values[...] = 0  # the caller changes their results in place
    ds["frame_status"].values[...] = 0
    # The store is not affected: the cache, the file and the next sweep hold the real images.
    ps["i"].value = 3
    got = ps.run_process(frame)
    assert got[0, 0, 0] == 3 and (got[1:] == 255).all()
    again = ps.sweep(frame)
    assert calls == list(range(8))
    assert (again["frame"].values[:, 1:] == 255).all()
    assert again["frame"].values[:, 0, 0, 0].tolist() == list(range(8))
    assert (open_plain(path)["frame"].values[:, 1:] == 255).all()
    # Later writes to the store do not reach a Dataset already returned.
    ps.run_process(frame, force_recompute=True, i=5)
    ps.clear_cache(frame)
    assert again["frame"].values[5, 0, 0, 0] == 5 and (again["frame_status"] == 1).all()
    assert "frame_status" not in open_plain(path)
    calls.clear()
    ps.sweep(frame)
    assert calls == list(range(8))


def test_a_journal_left_by_a_killed_publish_is_removed(tmp_path):
    path = tmp_path / "r.nc"
    ps = make_space()
    ps.enable_cache(path)
    ps.sweep(product)
    tomb = tmp_path / "r.nc.xsweep-tmp-99999-0123456789abcdef.journal"
    tomb.write_bytes(b"XSWEEPJ1" + b"0" * 33)
    ps.clear_cache()
    ps.sweep(product)
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]


# -- staged sweeps: big cells written once, straight into the next snapshot ------------------
def frames(n):
    """A space of n frames, a function making distinct 360 kB images (big cells), its calls,
    and ``how``: ``how["stop"]`` raises KeyboardInterrupt at that frame, ``how["broken"]``
    maps frames to error messages, ``how["before"]`` runs before each frame."""
    ps = xs.ParameterSpace([xs.Parameter("i", values=list(range(n)))])
    calls = []
    how = {"stop": None, "broken": {}, "before": None}

    def frame(i):
        if how["before"] is not None:
            how["before"](i)
        if i == how["stop"]:
            raise KeyboardInterrupt
        if i in how["broken"]:
            raise ValueError(how["broken"][i])
        calls.append(i)
        img = np.full((300, 400, 3), 255, dtype=np.uint8)
        img[0, :, 0] = i
        return img

    return ps, frame, calls, how


def staged_files(path):
    return sorted(p.name for p in path.parent.iterdir() if ".xsweep-stage-" in p.name)


def test_an_interrupted_image_sweep_resumes_from_its_staged_cells(tmp_path):
    path = tmp_path / "r.nc"
    ps, frame, calls, how = frames(20)
    ps.enable_cache(path)
    how["stop"] = 12
    with pytest.raises(KeyboardInterrupt):
        ps.sweep(frame)
    assert staged_files(path) == []  # the interruption published the 12 cells
    assert int((open_plain(path)["frame_status"] == 1).sum()) == 12
    calls.clear()
    how["stop"] = None
    ds = ps.sweep(frame)
    assert calls == list(range(12, 20))
    assert ds["frame"].values[:, 0, 0, 0].tolist() == list(range(20))
    with netCDF4.Dataset(path) as nc:
        assert nc["frame"].chunking() == "contiguous"
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]


def test_staged_messages_that_shrink_fall_back_to_a_new_file(tmp_path):
    path = tmp_path / "r.nc"
    ps, frame, calls, how = frames(10)
    ps.enable_cache(path)
    how["broken"] = {3: "bad frame 3", 7: "bad frame 7"}
    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(frame)
    assert open_plain(path)["frame_messages"].size == 2
    how["broken"] = {}
    ds = ps.sweep(frame)  # retries the two failed cells: no message is left
    assert (ds["frame_status"] == 1).all()
    f = open_plain(path)
    assert f["frame_messages"].size == 0 and (f["frame_status"] == 1).all()
    assert f["frame"].values[:, 0, 0, 0].tolist() == list(range(10))
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]


@pytest.mark.parametrize("cells", ["scalars", "images"])
def test_readers_see_progress_during_a_long_sweep(tmp_path, cells):
    path = tmp_path / "r.nc"
    ps, frame, calls, how = frames(12)
    ps.enable_cache(path, fsync_interval=0, snapshot_interval=0.2)
    seen = []

    def slow(i):
        time.sleep(0.05)
        if i == 11:
            seen.append(int((open_plain(path)[f"{name}_status"] == 1).sum()))
        return i

    if cells == "images":
        how["before"], fn, name = slow, frame, "frame"
    else:
        fn, name = slow, "slow"
    ds = ps.sweep(fn)
    assert seen and seen[0] >= 3  # published mid-sweep, not only at the end
    if cells == "images":
        assert ds["frame"].values[:, 0, 0, 0].tolist() == list(range(12))
        assert open_plain(path)["frame"].values[:, 0, 0, 0].tolist() == list(range(12))
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]


def test_two_image_functions_share_a_file_exactly(tmp_path):
    # The second sweep is staged in a file that already holds the first function's images.
    path = tmp_path / "r.nc"
    ps, frame, calls, how = frames(8)
    ps.enable_cache(path)
    ps.sweep(frame)

    def mask(i):
        return np.arange(300 * 400).reshape(300, 400) % (i + 2) == 0  # 120 kB bools ...

    def field(i):
        return np.full((300, 300), i / 3, dtype=np.float64)  # ... and 720 kB floats

    ps.sweep(field)
    ps.sweep(mask)
    ps.disable_cache()
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]
    f = open_plain(path)
    assert f["frame"].values[:, 0, 0, 0].tolist() == list(range(8))
    assert (f["frame"].values[:, 1:] == 255).all()
    np.testing.assert_array_equal(f["field"].values[:, 0, 0], np.arange(8) / 3)
    for i in (0, 7):
        np.testing.assert_array_equal(f["mask"].sel(i=i).values, mask(i))
    with netCDF4.Dataset(path) as nc:
        assert nc["frame"].chunking() == nc["field"].chunking() == "contiguous"
