"""sweep() and run_process() without a cache: binding, outputs, errors."""

import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import xsweep as xs


def test_scalar_sweep_is_dataset_over_parameters(space):
    calls = []

    def area(a, b):
        calls.append((a, b))
        return a * b

    ds = space.sweep(area)
    assert isinstance(ds, xr.Dataset)
    assert ds["area"].dims == ("a", "b")
    assert len(calls) == 6
    assert float(ds["area"].sel(a=3, b=1.5)) == 4.5
    assert ds["a"].attrs["units"] == "m"
    assert (ds["area_status"] == 1).all()
    # The data variables are the outputs; the status rides along as a coordinate.
    assert list(ds.data_vars) == ["area"] and "area_status" in ds.coords
    assert (ds.xsweep.status == 1).all() and not ds.sizes.keys() - {"a", "b"}
    assert (space.seconds(area) >= 0).all()
    # Values passed are plain Python scalars, like the parameter's .value.
    assert all(type(a) is int and type(b) is float for a, b in calls)


def test_sweep_dims_follow_function_arguments(space):
    ds = space.sweep(lambda b: b * 2)
    assert ds["lambda"].dims == ("b",)

    def everything(**kwargs):
        return sum(kwargs.values())

    assert space.sweep(everything)["everything"].dims == ("a", "b")

    def with_default(a, scale=10):
        return a * scale

    assert space.sweep(with_default)["with_default"].values.tolist() == [10, 20, 30]


def test_sweep_params_holds_others_at_current_value(space):
    space["b"].value = 1.5
    calls = []

    def f(a, b):
        calls.append(b)
        return a + b

    ds = space.sweep(f, params=["a"])
    assert ds["f"].dims == ("a",)
    assert float(ds["b"]) == 1.5
    assert calls == [1.5, 1.5, 1.5]
    with pytest.raises(xs.SweepError, match=r"'c' is not a parameter.*\['a', 'b'\]"):
        space.sweep(f, params=["c"])
    with pytest.raises(
        xs.SweepError, match=r"'b' is named, but .* does not take it; it takes \['a'\]"
    ):
        space.sweep(lambda a: a, params=["b"])


def test_unknown_argument_lists_parameters(space):
    def f(a, speed):
        return a

    with pytest.raises(xs.SweepError, match=r"'speed'.*\['a', 'b'\]"):
        space.sweep(f)
    with pytest.raises(xs.SweepError, match="positional-only"):
        space.sweep(lambda a, /: a)


def test_array_dict_dataarray_dataset_outputs(space):
    def arr(a, b):
        return np.full((2, 4), a, dtype=np.int16)

    ds = space.sweep(arr)
    assert ds["arr"].dims == ("a", "b", "arr_dim_0", "arr_dim_1")
    assert ds["arr"].dtype == np.int16

    ds = space.sweep(arr, output_dims={"arr": ("y", "x")})
    assert ds["arr"].dims == ("a", "b", "y", "x")

    def several(a, b):
        return {"sum": a + b, "label": f"a{a}", "ok": a > 1, "vec": np.arange(3) * b}

    ds = space.sweep(several, output_dims={"vec": "t"})
    assert set(ds.data_vars) >= {"sum", "label", "ok", "vec"}
    assert ds["label"].sel(a=2, b=0.5).item() == "a2"
    assert ds["ok"].dtype == bool
    assert ds["vec"].dims == ("a", "b", "t")

    def spectrum(a, b):
        return xr.DataArray(
            np.array([a, b]),
            dims="freq",
            coords={"freq": [10.0, 20.0]},
            name="power",
            attrs={"units": "W"},
        )

    ds = space.sweep(spectrum)
    assert ds["power"].dims == ("a", "b", "freq")
    assert ds["power"].attrs["units"] == "W"
    assert ds["freq"].values.tolist() == [10.0, 20.0]
    assert float(ds["power"].sel(a=3, b=1.5, freq=20.0)) == 1.5

    def as_dataset(a, b):
        return xr.Dataset({"x": a * 1.0, "y": ("k", [a, b])})

    ds = space.sweep(as_dataset)
    assert ds["y"].dims == ("a", "b", "k")


def test_uint8_image_keeps_dtype_and_255(space):
    def img(a, b):
        out = np.zeros((3, 4, 3), dtype=np.uint8)
        out[0, 0] = 255
        return out

    ds = space.sweep(img, output_dims={"img": ("y", "x", "rgb")})
    assert ds["img"].dtype == np.uint8
    assert int(ds["img"].max()) == 255


def test_ragged_shapes_are_padded_in_memory_too(space):
    def ragged(a, b):
        return np.arange(float(a))

    ds = space.sweep(ragged)
    assert ds["ragged"].shape == (3, 2, 3)
    assert ds["ragged_extent"].sel(b=0.5).values.tolist() == [[1], [2], [3]]
    assert np.isnan(ds["ragged"].sel(a=1).values[:, 1:]).all()


def test_a_change_in_the_number_of_dims_names_the_cell_and_both_shapes(space):
    def ragged(a, b):
        return np.zeros((a,) * a)

    with pytest.raises(
        xs.OutputError,
        match=r"Cell a=2, b=0\.5 of ragged: got shape \(2, 2\) where "
        r"earlier cells gave shape \(1,\)",
    ):
        space.sweep(ragged)


def test_type_changes_are_errors_not_truncation(space):
    def sometimes_float(a, b):
        return 1 if a == 1 else 0.5

    with pytest.raises(xs.OutputError, match=r"a=2, b=0\.5.*float 0\.5.*int"):
        space.sweep(sometimes_float)

    def dict_keys(a, b):
        return {"x": 1} if a == 1 else {"y": 1}

    with pytest.raises(xs.OutputError, match=r"dict keys \['y'\] where earlier cells gave \['x'\]"):
        space.sweep(dict_keys)


@pytest.mark.parametrize(
    "value, match",
    [
        (object(), "returned object"),
        ({1, 2}, "returned set"),
        ({"x": object()}, "'x' is object"),
        (np.array([1.0], dtype=np.float16), "float16"),
        ({}, "empty dict"),
    ],
)
def test_unsupported_outputs_say_what_is_allowed(space, value, match):
    with pytest.raises(xs.OutputError, match=match) as info:
        space.sweep(lambda a: value)
    assert "a=1" in str(info.value)


def test_output_dims_validation(space):
    with pytest.raises(xs.OutputError, match=r"names \['nope'\], which the function does not"):
        space.sweep(lambda a: np.zeros(2), output_dims={"nope": ("x",)})
    with pytest.raises(xs.OutputError, match="names 2 dims but the output has 1"):
        space.sweep(lambda a: np.zeros(2), output_dims={"lambda": ("x", "y")})
    with pytest.raises(xs.SweepError, match="must be a dict"):
        space.sweep(lambda a: 1, output_dims=["x"])


def test_output_dim_clashing_with_parameter(space):
    # A dim of one Dataset has one meaning: the output's 'a' gets the function's name.
    ds = space.sweep(lambda a, b: np.zeros(2), output_dims={"lambda": ("a",)})
    assert ds["lambda"].dims == ("a", "b", "lambda_a")


def test_failures_are_recorded_and_listed(space):
    def inverse(a, b):
        if a == 2:
            raise ZeroDivisionError("no")
        return 1 / a

    with pytest.warns(xs.SweepFailuresWarning, match=r"2 of 6 cells .* ps\.failures\(inverse\)"):
        ds = space.sweep(inverse)
    assert int((ds["inverse_status"] == 2).sum()) == 2
    assert np.isnan(ds["inverse"].sel(a=2)).all()
    failures = space.failures(inverse)
    assert failures["a"].tolist() == [2, 2]
    assert failures["error"].tolist() == ["ZeroDivisionError: no"] * 2
    codes = ds["inverse_error"].sel(a=2).values
    messages = ds["inverse_error"].attrs["xsweep_messages"]
    assert [messages[c - 1] for c in codes] == ["ZeroDivisionError: no"] * 2
    assert ds.xsweep.failures()["error"].tolist() == ["ZeroDivisionError: no"] * 2
    assert list(ds.data_vars) == ["inverse"]


def test_errors_raise_stops_with_the_original_exception(space):
    calls = []

    def f(a, b):
        calls.append(a)
        if a == 2:
            raise KeyError("boom")
        return a

    with pytest.raises(KeyError, match="boom") as info:
        space.sweep(f, errors="raise")
    assert calls == [1, 1, 2]
    assert space.failures(f).to_dict("records") == [{"a": 2, "b": 0.5, "error": "KeyError: 'boom'"}]
    if sys.version_info >= (3, 11):
        assert "f(a=2, b=0.5)" in " ".join(info.value.__notes__)
    with pytest.raises(xs.SweepError, match=r"errors='ignore' is not one of \['record', 'raise'\]"):
        space.sweep(f, errors="ignore")


def test_first_cells_failing_then_success(space):
    def late(a, b):
        if a == 1:
            raise ValueError("early")
        return float(a)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xs.SweepFailuresWarning)
        ds = space.sweep(late)
    assert np.isnan(ds["late"].sel(a=1)).all()
    assert float(ds["late"].sel(a=3, b=0.5)) == 3.0


def test_run_process_without_cache_calls_at_current_values(space):
    calls = []

    def f(a, b):
        calls.append((a, b))
        return np.array([a, b])

    space["a"].value = 3
    out = space.run_process(f)
    assert isinstance(out, np.ndarray) and out.tolist() == [3, 0.5]
    fired = []
    space["b"].register_callback(fired.append)
    out = space.run_process(f, b=1.5)
    assert fired == [1.5] and space["b"].value == 1.5
    assert calls == [(3, 0.5), (3, 1.5)]
    with pytest.raises(ValueError, match="Nearest valid values"):
        space.run_process(f, b=7.0)
    with pytest.raises(xs.SweepError, match=r"'c' is not a parameter; the space has \['a', 'b'\]"):
        space.run_process(f, c=1)


def test_sweep_does_not_touch_values_or_callbacks(space):
    fired = []
    space["a"].register_callback(fired.append)
    space.sweep(lambda a, b: a)
    assert fired == [] and space["a"].value == 1


def test_figure_to_array_current_and_explicit():
    fig = plt.figure(figsize=(2, 1), dpi=40)
    plt.plot([0, 1], [0, 1], color="red")
    im = xs.figure_to_array()
    assert isinstance(im, np.ndarray) and im.shape == (40, 80, 3) and im.dtype == np.uint8
    assert not plt.fignum_exists(fig.number)  # closed by default
    assert (im == 255).all(axis=-1).any()  # white background
    red = (im[..., 0] > 200) & (im[..., 1] < 80)
    assert red.any()  # the red line is drawn

    fig2 = plt.figure(figsize=(1, 1), dpi=20)
    im2 = xs.figure_to_array(fig2, close=False)
    assert im2.shape == (20, 20, 3)
    assert plt.fignum_exists(fig2.number)
    plt.close(fig2)


def test_sweep_of_image_function(space):
    def graph(a, b):
        fig = plt.figure(figsize=(1, 1), dpi=16)
        plt.plot([0, a], [0, b])
        return xs.figure_to_array(fig)

    ds = space.sweep(graph)
    assert ds["graph"].dims == ("a", "b", "y", "x", "rgb")
    assert ds["graph"].dtype == np.uint8
    assert ds["rgb"].values.tolist() == ["r", "g", "b"]
    assert plt.get_fignums() == []
