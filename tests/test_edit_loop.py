"""The edit-and-sweep-again loop of a notebook: every way out works, nothing is served stale.

Each test follows a user through the TINC tutorial's flow: sweep, edit the function (its
plot size, its output dims, what it returns), sweep again, and checks that the error they
meet names a way out and that following it works.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import matplotlib
import netCDF4
import numpy as np
import pytest
import xarray as xr

import xsweep as xs

matplotlib.use("Agg")


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_graph(size):
    """The tutorial's create_graph, drawing a figure of ``size`` inches at 10 dpi."""

    def create_graph(length, width):
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=size, dpi=10)
        plt.plot([0, length], [0, width])
        return xs.figure_to_array(fig)

    return create_graph


@pytest.fixture
def ps():
    return xs.ParameterSpace(
        [xs.Parameter("length", values=[1, 2]), xs.Parameter("width", values=[1, 2, 3])]
    )


# ---------------------------------------------------------------------------------------------
# 1. a new plot size: force_recompute, clear_cache(fn) and clear_cache() all get out
# ---------------------------------------------------------------------------------------------
def test_changing_the_plot_size_then_force_recompute_replaces_the_structure(ps, tmp_path):
    ps.enable_cache(tmp_path / "g.nc")
    small = ps.sweep(make_graph((2, 2)), progress=False)
    assert small["create_graph"].shape[2:] == (20, 20, 3)
    bigger = make_graph((3, 2))
    with pytest.raises(xs.FunctionChangedError):
        ps.sweep(bigger, progress=False)
    ds = ps.sweep(bigger, force_recompute=True, progress=False)
    assert ds["create_graph"].shape[2:] == (20, 30, 3)
    assert (ds["create_graph_status"] == 1).all()
    with xr.open_dataset(tmp_path / "g.nc") as f:
        assert f["create_graph"].shape[2:] == (20, 30, 3)


@pytest.mark.parametrize("how", ["clear_fn", "clear_all", "fresh_space"])
def test_clearing_forgets_the_fingerprint_and_the_structure(ps, tmp_path, how):
    path = tmp_path / "g.nc"
    ps.enable_cache(path)
    ps.sweep(make_graph((2, 2)), progress=False)
    bigger = make_graph((3, 2))
    if how == "clear_fn":
        ps.clear_cache(bigger)
    else:
        ps.clear_cache()
    if how == "fresh_space":
        ps.disable_cache()
        ps = xs.ParameterSpace(
            [xs.Parameter("length", values=[1, 2]), xs.Parameter("width", values=[1, 2, 3])]
        )
        ps.enable_cache(path)
    ds = ps.sweep(bigger, progress=False)
    assert ds["create_graph"].shape[2:] == (20, 30, 3)
    assert ps.run_process(bigger).shape == (20, 30, 3)


def test_the_advice_of_a_structure_error_works_when_followed(ps, tmp_path):
    """A cell whose shape differs from the stored cells: both suggested ways out work."""
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(lambda length, width: np.zeros(2), version="1", cells={"length": [2]}, progress=False)

    def grown(length, width):
        return np.zeros((2, 1))  # another number of dims: a new structure

    grown.__name__ = "lambda"
    with pytest.raises(xs.OutputError, match="force_recompute=True.*clear_cache") as info:
        ps.sweep(grown, cells={"length": [1]}, version="1", progress=False)
    assert "shape (2, 1)" in str(info.value)
    ds = ps.sweep(grown, force_recompute=True, version="1", progress=False)
    assert ds["lambda"].shape == (2, 3, 2, 1)
    text = xs.version("1")(lambda length, width: "text")
    with pytest.raises(xs.OutputError, match="force_recompute=True.*clear_cache"):
        ps.run_process(text, force_recompute=True, length=2, width=2)
    ps.clear_cache(grown)
    assert ps.sweep(lambda length, width: "text", version="1", progress=False)[
        "lambda"
    ].values.tolist() == [["text"] * 3] * 2


def test_a_partial_force_recompute_refuses_a_new_structure_with_the_ways_out(ps, tmp_path):
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(lambda length, width: np.zeros(2), version="v", progress=False)
    with pytest.raises(xs.OutputError, match="force_recompute=True"):
        ps.sweep(
            lambda length, width: np.zeros(2, dtype=complex),
            version="v",
            force_recompute=True,
            cells={"width": [1]},
            progress=False,
        )
    ds = ps.sweep(lambda length, width: np.zeros(2), version="v", progress=False)
    assert (ds["lambda_status"] == 1).all()  # nothing was lost


# ---------------------------------------------------------------------------------------------
# 2. output_dims is applied or refused, never ignored
# ---------------------------------------------------------------------------------------------
def test_output_dims_differing_from_the_file_are_refused_then_applied(ps, tmp_path):
    ps.enable_cache(tmp_path / "r.nc")

    def trace(length, width):
        return np.arange(3.0) * length

    ps.sweep(trace, output_dims={"trace": ("t",)}, progress=False)
    ps.sweep(trace, output_dims={"trace": ("t",)}, progress=False)  # the same: fine
    with pytest.raises(xs.SweepError, match="stored with dims.*force_recompute=True"):
        ps.sweep(trace, output_dims={"trace": ("time",)}, progress=False)
    ds = ps.sweep(trace, output_dims={"trace": ("time",)}, force_recompute=True, progress=False)
    assert ds["trace"].dims == ("length", "width", "time")
    with xr.open_dataset(tmp_path / "r.nc") as f:
        assert f["trace"].dims == ("length", "width", "time")


# ---------------------------------------------------------------------------------------------
# 3. functions that read parameters instead of taking them (TINC's force_values)
# ---------------------------------------------------------------------------------------------
length = xs.Parameter("length", values=[1, 2, 3])
width = xs.Parameter("width", values=[10, 20])
space = xs.ParameterSpace([length, width])
SEEN: list = []


def save_graph():
    SEEN.append((length.value, width.value))
    return length.value * width.value


def area_reads_width(length):
    return length * width.value


@pytest.mark.parametrize("cached", [False, True])
def test_a_function_without_parameters_is_swept_over_the_whole_space(tmp_path, cached):
    if cached:
        space.enable_cache(tmp_path / "r.nc")
    SEEN.clear()
    length.value, width.value = 2, 20
    try:
        ds = space.sweep(save_graph, progress=False)
        assert ds["save_graph"].dims == ("length", "width")
        assert ds["save_graph"].values.tolist() == [[10, 20], [20, 40], [30, 60]]
        assert (length.value, width.value) == (2, 20)  # restored after the sweep
        assert space.run_process(save_graph) == 40
        if cached:
            assert len(SEEN) == 6  # from the cache
            length.value = 3
            assert space.run_process(save_graph) == 60
            assert len(SEEN) == 6
    finally:
        space.disable_cache()


def test_depends_on_makes_a_read_parameter_a_dim(tmp_path):
    space.enable_cache(tmp_path / "r.nc")
    try:
        ds = space.sweep(area_reads_width, depends_on=["width"], progress=False)
        assert ds["area_reads_width"].dims == ("length", "width")
        assert ds["area_reads_width"].sel(length=3, width=20).item() == 60
        width.value = 10
        assert space.run_process(area_reads_width, length=2) == 20
    finally:
        space.disable_cache()


def test_set_values_on_a_process_pool_sets_the_values_in_the_workers(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("length", values=[1, 2, 3, 4])])
    ps.enable_cache(tmp_path / "r.nc")
    import sys

    sys.path.insert(0, str(tmp_path))
    (tmp_path / "reads_mod.py").write_text(
        "import xsweep as xs\n"
        "length = xs.Parameter('length', values=[1, 2, 3, 4])\n"
        "def cube():\n"
        "    return length.value ** 3\n"
    )
    try:
        import reads_mod

        ps = xs.ParameterSpace([reads_mod.length])
        ps.enable_cache(tmp_path / "r.nc")
        ds = ps.sweep(reads_mod.cube, workers=2, progress=False)
        assert ds["cube"].values.tolist() == [1, 8, 27, 64]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("reads_mod", None)


# ---------------------------------------------------------------------------------------------
# 5. identity: the function's name
# ---------------------------------------------------------------------------------------------
def test_the_same_code_moved_to_a_module_keeps_its_results(ps, tmp_path):
    import sys

    path = tmp_path / "r.nc"
    ps.enable_cache(path)
    ns: dict = {"__name__": "__main__"}
    exec("def model(length, width):\n    return length + width\n", ns)
    ps.sweep(ns["model"], progress=False)
    (tmp_path / "mymodel.py").write_text("def model(length, width):\n    return length + width\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import mymodel

        ds = ps.sweep(mymodel.model, progress=False)  # no FunctionChangedError, no recompute
        assert ds["model"].values.tolist() == [[2, 3, 4], [3, 4, 5]]
        with xr.open_dataset(path) as f:
            assert f["model_status"].attrs["xsweep_function"] == "model"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mymodel", None)


def test_two_lambdas_live_in_one_file_under_names_of_their_own(ps, tmp_path):
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(lambda length, width: length, progress=False)
    with pytest.raises(xs.FunctionChangedError, match="name="):
        ps.sweep(lambda length, width: width, progress=False)
    ds = ps.sweep(lambda length, width: width, name="w", progress=False)
    assert ds["w"].sel(length=1).values.tolist() == [1, 2, 3]
    with xr.open_dataset(tmp_path / "r.nc") as f:
        assert {"lambda", "w"} <= set(f.data_vars)


def test_a_partial_is_stored_under_its_functions_name_or_its_own(ps, tmp_path):
    import functools

    def scaled(length, width, factor):
        return factor * length * width

    ps.enable_cache(tmp_path / "r.nc")
    assert ps.sweep(functools.partial(scaled, factor=2), progress=False)["scaled"].max() == 12
    ds = ps.sweep(functools.partial(scaled, factor=3), name="scaled3", progress=False)
    assert ds["scaled3"].max() == 18
    assert ps.run_process(functools.partial(scaled, factor=2), length=2, width=3) == 12


def test_a_file_of_the_previous_release_opens_and_resumes(ps, tmp_path):
    """0.1 stored results under "module:qualname" keys; they are found by name now."""
    path = tmp_path / "old.nc"

    def product(length, width):
        return length * width

    ps.enable_cache(path)
    ps.sweep(product, cells={"length": [1]}, progress=False)
    ps.disable_cache()
    with netCDF4.Dataset(path, "a") as nc:  # as 0.1 wrote it
        nc.setncattr("xsweep_functions", json.dumps(["__main__:product"]))
        nc.variables["product_status"].setncattr("xsweep_function", "__main__:product")
        nc.variables["product"].setncattr("xsweep_function", "__main__:product")
    ps.enable_cache(path)
    ds = ps.sweep(product, progress=False)
    assert ds["product"].values.tolist() == [[1, 2, 3], [2, 4, 6]]


# ---------------------------------------------------------------------------------------------
# None: a computed cell without a value
# ---------------------------------------------------------------------------------------------
def sometimes(length, width):
    return None if width == 2 else float(length * width)


def test_none_is_a_computed_cell_without_a_value(ps, tmp_path):
    path = tmp_path / "r.nc"
    ps.enable_cache(path)
    ds = ps.sweep(sometimes, progress=False)
    assert np.isnan(ds["sometimes"].sel(width=2)).all()
    assert ds["sometimes"].sel(width=3).values.tolist() == [3.0, 6.0]
    assert ds["sometimes_status"].sel(width=2).values.tolist() == [3, 3]
    assert ps.run_process(sometimes, width=2) is None
    assert ps.is_computed(sometimes, width=2)
    ps.disable_cache()
    ps.enable_cache(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ps.sweep(sometimes, progress=False)  # nothing to compute, nothing failed
    assert again["sometimes_status"].values.tolist() == [[1, 3, 1], [1, 3, 1]]
    with xr.open_dataset(path) as f:
        assert "computed_no_value" in f["sometimes_status"].attrs["flag_meanings"]


def test_none_first_then_values_and_an_int_output(ps, tmp_path):
    ps.enable_cache(tmp_path / "r.nc")

    def late(length, width):
        return None if length == 1 else length * width

    ds = ps.sweep(late, progress=False)
    # The None cells hold no value: the int output reads NaN there (issue 21), as float
    assert ds["late"].dtype == np.float64 and np.isnan(ds["late"].sel(length=1)).all()
    assert ds["late"].sel(length=2).values.tolist() == [2, 4, 6]
    assert ds["late_status"].sel(length=1).values.tolist() == [3, 3, 3]
    assert ps.run_process(late, length=1, width=1) is None


def test_none_everywhere_and_in_the_journal_survives_a_reopen(ps, tmp_path):
    path = tmp_path / "r.nc"
    ps.enable_cache(path, fsync_interval=None)

    def nothing(length, width):
        return None

    ps.run_process(nothing, length=2, width=3)  # journaled only
    ps2 = xs.ParameterSpace(
        [xs.Parameter("length", values=[1, 2]), xs.Parameter("width", values=[1, 2, 3])]
    )
    ps2.enable_cache(path)
    assert ps2.is_computed(nothing, length=2, width=3)
    assert not ps2.is_computed(nothing, length=1, width=3)


# ---------------------------------------------------------------------------------------------
# 7 and 9. widgets follow the value; callbacks are replaced, not doubled
# ---------------------------------------------------------------------------------------------
def test_a_widget_follows_a_cache_hit_without_firing_callbacks(tmp_path):
    a = xs.Parameter("a", values=[1, 2, 3])
    ps = xs.ParameterSpace([a])
    ps.enable_cache(tmp_path / "r.nc")

    def double(a):
        return 2 * a

    ps.sweep(double, progress=False)
    control = a.widget()
    fired = []
    a.register_callback(fired.append)
    assert ps.run_process(double, a=3) == 6
    assert control.value == 3 and fired == []
    control.value = 1
    assert a.value == 1 and fired == [1]


def test_a_callback_registered_again_replaces_the_old_one():
    p = xs.Parameter("p", values=[1, 2, 3])
    log = []
    for _ in range(2):  # the notebook cell runs twice

        def on_change(v):
            log.append(v)

        p.register_callback(on_change)
    p.value = 2
    assert log == [2]
    p.register_callback(lambda v: log.append(-v))
    p.register_callback(lambda v: log.append(-v))
    p.value = 3
    assert log == [2, 3, -3, -3]  # lambdas are distinct callbacks


def test_bad_inputs_of_the_new_options_leave_the_file_byte_identical(ps, tmp_path):
    path = tmp_path / "r.nc"
    ps.enable_cache(path)
    ps.sweep(lambda length, width: 1, progress=False)
    ps.disable_cache()
    before = digest(path)
    ps.enable_cache(path)
    for kwargs in (
        {"name": "bad name"},
        {"name": "_x"},
        {"depends_on": ["nope"]},
        {"depends_on": 3},
        {"set_values": "yes"},
    ):
        with pytest.raises(xs.SweepError):
            ps.sweep(lambda length, width: 1, progress=False, **kwargs)
    ps.disable_cache()
    assert digest(path) == before


def slow_product():
    import time

    a = length.value
    time.sleep(0.002)  # another thread would move the values now, were it not for the lock
    return a * width.value


def test_set_values_on_threads_never_mixes_the_cells_values():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        ds = space.sweep(slow_product, executor=pool, chunksize=1, progress=False)
    assert ds["slow_product"].values.tolist() == [[10, 20], [20, 40], [30, 60]]


# ---------------------------------------------------------------------------------------------
# arrays whose shape varies between cells: padded, with a per-cell extent
# ---------------------------------------------------------------------------------------------
def series(length, width):
    """A time series that stops early: its length depends on the cell."""
    return np.arange(float(length * width))


def test_arrays_whose_length_varies_are_padded_and_come_back_exactly(ps, tmp_path):
    path = tmp_path / "r.nc"
    ps.enable_cache(path)
    ds = ps.sweep(series, progress=False)
    assert ds["series"].shape == (2, 3, 6)
    assert ds["series_extent"].sel(length=2, width=2).values.tolist() == [4]
    assert np.isnan(ds["series"].sel(length=1, width=1).values[1:]).all()
    ps2 = xs.ParameterSpace(
        [xs.Parameter("length", values=[1, 2]), xs.Parameter("width", values=[1, 2, 3])]
    )
    ps2.enable_cache(path)
    for length in (1, 2):
        for width in (1, 2, 3):
            got = ps2.run_process(series, length=length, width=width)
            np.testing.assert_array_equal(got, series(length, width))
    with xr.open_dataset(path) as f:
        assert f["series_extent"].attrs["long_name"].startswith("shape of each cell")


def test_ragged_growth_across_sweeps_and_in_run_process_keeps_earlier_cells(ps, tmp_path):
    ps.enable_cache(tmp_path / "r.nc")

    def grid(length, width):
        return np.ones((length, width), dtype=np.int64) * (10 * length + width)

    ds = ps.sweep(grid, cells={"length": [1], "width": [1, 2]}, progress=False)
    assert ds["grid"].shape[2:] == (1, 2)
    assert ps.run_process(grid, length=2, width=3).shape == (2, 3)  # grows in run_process
    ds = ps.sweep(grid, progress=False)
    assert ds["grid"].shape[2:] == (2, 3)
    for length in (1, 2):
        for width in (1, 2, 3):
            np.testing.assert_array_equal(
                ps.run_process(grid, length=length, width=width), grid(length, width)
            )
    # The padding is no value: NaN, so the ints read as float (issue 21; it read 0 before)
    assert ds["grid"].dtype == np.float64 and np.isnan(ds["grid"].sel(length=1, width=1)[1]).all()


def test_ragged_outputs_in_a_dict_and_on_a_process_pool(ps, tmp_path):
    ps.enable_cache(tmp_path / "r.nc")
    ds = ps.sweep(ragged_dict, workers=2, progress=False)
    assert ds["trace"].shape[2:] == (3,) and ds["total"].dims == ("length", "width")
    got = ps.run_process(ragged_dict, length=1, width=2)
    assert set(got) == {"trace", "total"}
    np.testing.assert_array_equal(got["trace"], ragged_dict(1, 2)["trace"])


def ragged_dict(length, width):
    return {"trace": np.linspace(0, 1, width), "total": float(length + width)}
