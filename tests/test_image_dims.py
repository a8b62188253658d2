"""Output dims in a shared file: images of several sizes, parameters named x and y,
``output_dims`` for every output kind."""

import os
import signal
import subprocess
import sys
import time

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import PIL.Image  # noqa: E402

import xsweep as xs  # noqa: E402


def picture(size, a):
    fig = plt.figure(figsize=size, dpi=10)
    plt.plot([0, a], [0, 1])
    return xs.figure_to_array(fig)


def small(a):
    return picture((2, 1), a)


def wide(a):
    return picture((3, 2), a)


def test_figure_to_array_gives_pixels_pil_and_imshow_take():
    im = picture((2, 1), 1)
    assert isinstance(im, np.ndarray) and im.shape == (10, 20, 3) and im.dtype == np.uint8
    assert PIL.Image.fromarray(im).size == (20, 10)
    plt.imshow(im)
    plt.close("all")
    # arithmetic gives plain arrays; slices that are still images stay images
    assert type(im / 255) is np.ndarray and type(im[..., 0]) is np.ndarray
    assert isinstance(im[2:5], xs.ImageArray)


def test_two_image_sizes_share_one_file(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(tmp_path / "r.nc")
    first = ps.sweep(small)
    second = ps.sweep(wide)
    assert first["small"].dims == ("a", "y", "x", "rgb")
    assert second["wide"].dims == ("a", "y", "x", "rgb")
    assert second["wide"].shape == (2, 20, 30, 3)
    assert second["rgb"].values.tolist() == ["r", "g", "b"]
    np.testing.assert_array_equal(second["wide"].sel(a=2), wide(2))
    np.testing.assert_array_equal(ps.run_process(wide, a=2), wide(2))
    with xr.open_dataset(tmp_path / "r.nc") as f:  # a colleague's view: both, unambiguous
        assert f["small"].dims == ("a", "y", "x", "rgb")
        assert f["wide"].dims == ("a", "wide_y", "wide_x", "rgb")
        assert f["wide"].attrs["xsweep_dims"] == '["y", "x", "rgb"]'
        np.testing.assert_array_equal(f["wide"].sel(a=1), wide(1))
    ps.disable_cache()
    again = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    again.enable_cache(tmp_path / "r.nc")
    assert again.is_computed(wide, a=1) and again.is_computed(wide, a=2)
    ds = again.sweep(wide)  # from the file
    assert ds["wide"].dims == ("a", "y", "x", "rgb")
    np.testing.assert_array_equal(ds["wide"].values, second["wide"].values)
    np.testing.assert_array_equal(again.run_process(small, a=1), first["small"].sel(a=1))


def test_parameters_named_x_and_y_with_an_image_output(tmp_path):
    x = xs.Parameter("x", values=[1, 2, 3])
    y = xs.Parameter("y", values=[0.5, 1.0])
    ps = xs.ParameterSpace([x, y])
    ps.enable_cache(tmp_path / "xy.nc")

    def draw(x, y):
        return picture((2, 1), x * y)

    ds = ps.sweep(draw)
    assert ds["draw"].dims == ("x", "y", "draw_y", "draw_x", "rgb")
    assert ds["draw"].sel(x=2, y=1.0).shape == (10, 20, 3)
    np.testing.assert_array_equal(ds["draw"].sel(x=3, y=0.5), draw(3, 0.5))
    np.testing.assert_array_equal(ps.run_process(draw, x=2, y=0.5), draw(2, 0.5))
    with xr.open_dataset(tmp_path / "xy.nc") as f:
        assert f["draw"].dims == ("x", "y", "draw_y", "draw_x", "rgb")
        assert f["x"].values.tolist() == [1, 2, 3]


def test_output_dims_names_dataarray_and_dataset_dims(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(tmp_path / "d.nc")

    def series(a):
        return xr.DataArray(
            np.arange(3.0) * a, dims=("t",), coords={"t": [0, 10, 20]}, attrs={"units": "m"}
        )

    ds = ps.sweep(series, output_dims={"series": ("time",)})
    assert ds["series"].dims == ("a", "time")
    assert ds["time"].values.tolist() == [0, 10, 20]
    back = ps.run_process(series, a=2)  # from the file: as the function returned it
    assert back.dims == ("t",) and back["t"].values.tolist() == [0, 10, 20]
    assert back.attrs == {"units": "m"}
    np.testing.assert_array_equal(back.values, [0.0, 2.0, 4.0])
    assert ps.sweep(series, output_dims={"series": ("time",)})["series"].dims == ("a", "time")

    def both(a):
        return xr.Dataset({"u": ("t", np.arange(2.0) + a), "v": ("t", np.arange(2.0) - a)})

    ds = ps.sweep(both, output_dims={"u": ("tu",)})
    assert ds["u"].dims == ("a", "tu") and ds["v"].dims == ("a", "t")
    back = ps.run_process(both, a=1)
    assert back["u"].dims == ("t",) and back["v"].dims == ("t",)
    np.testing.assert_array_equal(back["u"].values, [1.0, 2.0])
    with pytest.raises(xs.OutputError, match="names 2 dims but the returned DataArray has 1"):
        ps.sweep(series, output_dims={"series": ("p", "q")}, force_recompute=True)


def test_output_dims_naming_a_scalar_output_is_refused():
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    with pytest.raises(xs.OutputError, match="holds one value per cell"):
        ps.sweep(lambda a: a * 2.0, output_dims={"lambda": ("t",)})


def test_a_clash_names_both_functions_and_its_way_out_works(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(tmp_path / "clash.nc")
    ps.sweep(lambda a: xr.DataArray(np.zeros(4), dims=("x",)), name="h")
    ps.sweep(lambda a: xr.DataArray(np.zeros(2), dims=("f_x",)), name="g")
    with pytest.raises(xs.StoreMismatchError, match=r"of f has dim 'x'.*of h .*output_dims=") as e:
        ps.sweep(lambda a: xr.DataArray(np.zeros(3), dims=("x",)), name="f")
    assert "'f_x' is taken too" in str(e.value)
    ds = ps.sweep(
        lambda a: xr.DataArray(np.zeros(3), dims=("x",)), name="f", output_dims={"f": ("z",)}
    )
    assert ds["f"].dims == ("a", "z")


def test_same_dims_with_other_coordinates_are_kept_apart(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(tmp_path / "c.nc")

    def early(a):
        return xr.DataArray(np.ones(2) * a, dims=("t",), coords={"t": [0, 1]})

    def late(a):
        return xr.DataArray(np.ones(2) * a, dims=("t",), coords={"t": [5, 6]})

    assert ps.sweep(early)["t"].values.tolist() == [0, 1]
    assert ps.sweep(late)["t"].values.tolist() == [5, 6]
    assert ps.run_process(late, a=1)["t"].values.tolist() == [5, 6]
    with xr.open_dataset(tmp_path / "c.nc") as f:
        assert f["t"].values.tolist() == [0, 1] and f["late_t"].values.tolist() == [5, 6]


def test_a_dict_of_images_of_several_sizes(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(tmp_path / "v.nc")

    def views(a):
        return {"front": picture((2, 1), a), "side": picture((1, 1), a)}

    ds = ps.sweep(views)
    assert ds["front"].dims == ("a", "y", "x", "rgb")
    assert ds["side"].dims == ("a", "y", "side_x", "rgb")  # its width differs from front's
    back = ps.run_process(views, a=2)
    np.testing.assert_array_equal(back["side"], picture((1, 1), 2))
    np.testing.assert_array_equal(back["front"], picture((2, 1), 2))


def test_an_output_that_grows_into_another_functions_dim(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    ps.enable_cache(tmp_path / "g.nc")
    ps.sweep(lambda a: np.zeros(3), name="f", output_dims={"f": ("t",)})

    def g(a):  # length 3 at first, as f's t; then longer
        return np.arange(3.0 if a == 1 else 5.0)

    ds = ps.sweep(g, output_dims={"g": ("t",)})
    assert ds["g"].dims == ("a", "t") and ds.sizes["t"] == 5
    np.testing.assert_array_equal(ps.run_process(g, a=1), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(ps.run_process(g, a=2), np.arange(5.0))
    ps.disable_cache()
    with xr.open_dataset(tmp_path / "g.nc") as f:
        assert f["f"].dims == ("a", "t") and f.sizes["t"] == 3
        assert f["g"].dims == ("a", "g_t") and f.sizes["g_t"] == 5


MODULE = """
import os, time
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import xsweep as xs

def picture(size, a):
    fig = plt.figure(figsize=size, dpi=10)
    plt.plot([0, a], [0, 1])
    return xs.figure_to_array(fig)

def small(a):
    return picture((2, 1), a)

def wide(a):
    if a > 3 and os.environ.get("KILL_ME_AT"):
        open(os.environ["KILL_ME_AT"], "w").close()  # three cells are in: kill me now
        time.sleep(60)
    return picture((3, 2), a)
"""
CHILD = """
import sys
import xsweep as xs
from images_child import small, wide

ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4, 5])])
ps.enable_cache(sys.argv[1])
ps.sweep(small, progress=False)
ps.sweep(wide, progress=False)
"""


def test_a_killed_sweep_of_the_second_image_size_resumes(tmp_path, monkeypatch):
    (tmp_path / "images_child.py").write_text(MODULE)
    script, path, ready = tmp_path / "child.py", tmp_path / "k.nc", tmp_path / "ready"
    script.write_text(CHILD)
    paths = [str(tmp_path), *sys.path]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "KILL_ME_AT": str(ready)}
    proc = subprocess.Popen([sys.executable, str(script), str(path)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline, "the child never reached its fourth cell"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    monkeypatch.syspath_prepend(str(tmp_path))
    from images_child import small, wide

    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4, 5])])
    ps.enable_cache(path)
    assert [ps.is_computed(wide, a=a) for a in range(1, 6)] == [True] * 3 + [False] * 2
    ds = ps.sweep(wide)  # resumes: the two missing cells
    assert ds["wide"].dims == ("a", "y", "x", "rgb")
    for a in range(1, 6):
        np.testing.assert_array_equal(ds["wide"].sel(a=a), wide(a))
    np.testing.assert_array_equal(ps.sweep(small)["small"].sel(a=5), small(5))
    ps.disable_cache()
    with xr.open_dataset(path) as f:
        assert f["wide"].dims == ("a", "wide_y", "wide_x", "rgb")
        assert (f["wide_status"] == 1).all()


def test_a_dim_named_like_the_functions_own_variable_can_be_renamed_with_output_dims():
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])

    def k(a):
        return xr.DataArray(np.ones(2), dims=["k_status"])

    with pytest.raises(xs.StoreMismatchError, match=r"output_dims=\{'k': \(\.\.\.\)\}"):
        ps.sweep(k)
    ds = ps.sweep(k, output_dims={"k": ("t",)})  # the way out the message gives
    assert ds["k"].dims == ("a", "t")
    assert ps.run_process(k, a=1).dims == ("k_status",)
