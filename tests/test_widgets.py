"""Widgets (headless), the ds.xsweep accessor, and montages: checked pixel by pixel."""

import io

import numpy as np
import pytest
import xarray as xr
from PIL import Image

import xsweep as xs

ipywidgets = pytest.importorskip("ipywidgets")


@pytest.mark.parametrize(
    "values, cls, new",
    [
        ([1, 2, 4], "SelectionSlider", 4),
        ([0.5, 1.5], "SelectionSlider", 1.5),
        (["steel", "oak"], "ToggleButtons", "oak"),
        (["a", "b", "c", "d", "e"], "Dropdown", "d"),
        ([False, True], "Checkbox", True),
    ],
)
def test_parameter_widget_for_every_kind(values, cls, new):
    p = xs.Parameter("p", values=values, units="m" if cls == "SelectionSlider" else None)
    fired = []
    p.register_callback(fired.append)
    w = p.widget()
    assert type(w).__name__ == cls
    w.value = new  # moving the control sets the parameter, callbacks fire
    assert p.value == new and type(p.value) is type(new)
    assert fired == [new]
    p.value = values[0]  # setting the parameter moves the control
    assert w.value == values[0]
    if cls == "SelectionSlider":
        assert w.description == "p [m]"
        assert all(type(v) is type(values[0]) for _, v in w.options)


def test_space_widgets_box():
    ps = xs.ParameterSpace(
        [xs.Parameter("n", values=[1, 2]), xs.Parameter("ok", values=[True, False])]
    )
    box = ps.widgets()
    assert [type(c).__name__ for c in box.children] == ["SelectionSlider", "Checkbox"]
    box.children[0].value = 2
    assert ps["n"].value == 2


def colour_image(level):
    return np.full((4, 6, 3), level, dtype=np.uint8)


def test_explore_shows_cached_cells_without_calling(tmp_path):
    calls = []

    def shade(level):
        calls.append(level)
        return colour_image(level)

    ps = xs.ParameterSpace([xs.Parameter("level", values=[0, 100, 255])])
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(shade, params=[])  # only the current value, level=0, is cached
    assert calls == [0]
    view = ps.explore(shade, background=False)
    assert calls == [0] and view.source == "from the cache"
    first = view.image.value
    view.controls["level"].value = 255
    assert calls == [0, 255] and view.source == "computed"
    assert view.image.value != first
    pixels = np.asarray(Image.open(io.BytesIO(view.image.value)))
    assert pixels.shape == (4, 6, 3) and (pixels == 255).all()
    view.controls["level"].value = 0
    assert calls == [0, 255] and view.source == "from the cache"
    view.controls["level"].value = 255  # written back by the first visit
    assert calls == [0, 255] and view.shown == 4


def test_explore_text_dict_and_figures():
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    view = ps.explore(lambda a: {"square": a * a, "name": f"n{a}"}, background=False)
    assert "<th>square</th><td>1</td>" in view.text.value
    view.controls["a"].value = 2
    assert "<td>4</td>" in view.text.value and "n2" in view.text.value

    import matplotlib.pyplot as plt

    def fig(a):
        f = plt.figure(figsize=(1, 1), dpi=10)
        plt.plot([0, a])
        return f

    view = ps.explore(fig, background=False)
    assert view.area.children == (view.image,)
    assert bytes(view.image.value).startswith(b"\x89PNG")


def test_explore_background_drops_stale_requests():
    import threading
    import time

    gate = threading.Event()
    seen = []

    def slow(a):
        seen.append(a)
        gate.wait(5)
        return a

    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(10)))])
    view = ps.explore(slow)  # background thread computes a=0 and blocks on the gate
    time.sleep(0.1)
    for v in range(1, 10):
        view.controls["a"].value = v  # nine moves while the first cell is still running
    gate.set()
    view.wait()
    assert seen == [0, 9]  # the stale positions 1..8 were never computed
    assert "9" in view.text.value


def test_explore_a_shared_file_without_the_function(tmp_path):
    ps = xs.ParameterSpace(
        [xs.Parameter("level", values=[10, 20]), xs.Parameter("k", values=["x", "y"])]
    )
    ps.enable_cache(tmp_path / "r.nc")

    def shade(level, k):
        return {"img": colour_image(level + (k == "y")), "mean": float(level)}

    ps.sweep(shade, output_dims={"img": ("y", "x", "rgb")})
    with xr.open_dataset(tmp_path / "r.nc") as ds:
        view = xs.explore(ds.load(), "img")
    assert set(view.controls) == {"variable", "level", "k"}
    assert "shade_status" not in view.variable.options and "mean" in view.variable.options
    view.controls["level"].value = 20
    view.controls["k"].value = "y"
    pixels = np.asarray(Image.open(io.BytesIO(view.image.value)))
    assert (pixels == 21).all()
    view.variable.value = "mean"
    assert view.text.value == "<pre>20</pre>"
    with pytest.raises(xs.XsweepError, match=r"No variable 'nope'.*\['img', 'mean'\]"):
        xs.explore(ds, "nope")


def test_accessor_status_and_failures(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2])])
    ps.enable_cache(tmp_path / "r.nc")

    def inv(a):
        return 1 / a

    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(inv)
    with xr.open_dataset(tmp_path / "r.nc") as ds:
        status = ds.xsweep.counts()
        failures = ds.xsweep.failures()
    assert status.loc["inv"].tolist() == [0, 2, 1, 0]
    assert failures.to_dict("records") == [
        {"function": "inv", "a": 0, "error": "ZeroDivisionError: division by zero"}
    ]


def grid_of_tiles():
    """2 x 3 tiles of 4 x 5 pixels; tile (i, j) is filled with the value 10 * i + j + 1."""
    data = np.zeros((2, 3, 4, 5, 3), dtype=np.uint8)
    for i in range(2):
        for j in range(3):
            data[i, j] = 10 * i + j + 1
    return xr.DataArray(
        data, dims=("a", "b", "y", "x", "rgb"), coords={"a": [1, 2], "b": [0.5, 1.0, 1.5]}
    )


def test_montage_places_every_tile_exactly():
    da = grid_of_tiles()
    sheet = xs.montage(da, row="a", col="b", label=False, pad=2, background=255)
    px = np.asarray(sheet)
    assert px.shape == (2 + 2 * (4 + 2), 2 + 3 * (5 + 2), 3)
    for i in range(2):
        for j in range(3):
            y0, x0 = 2 + i * 6, 2 + j * 7
            assert (px[y0 : y0 + 4, x0 : x0 + 5] == 10 * i + j + 1).all()
    assert (px[:2] == 255).all() and (px[:, :2] == 255).all()  # padding


def test_montage_labels_and_png(tmp_path):
    da = grid_of_tiles()
    plain = np.asarray(xs.montage(da, row="a", col="b", label=False))
    labelled = xs.montage(da, row="a", col="b")
    px = np.asarray(labelled)
    assert px.shape[0] > plain.shape[0] and px.shape[1] > plain.shape[1]
    assert (px < 100).any(axis=-1)[: px.shape[0] - plain.shape[0]].any()  # text drawn on top
    labelled.save(tmp_path / "sheet.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "sheet.png")), px)
    ds = xr.Dataset({"img": da})
    assert np.array_equal(np.asarray(ds.xsweep.montage("img", row="a", col="b")), px)


def test_montage_float_and_errors():
    da = xr.DataArray(np.full((2, 3, 3), 0.5), dims=("b", "y", "x"), coords={"b": [1, 2]})
    da[1, 0, 0] = np.nan
    px = np.asarray(xs.montage(da, col="b", label=False, pad=1, background=7))
    assert px[1, 1] == 128 and px[1, 1 + 3 + 1] == 7  # NaN shows as the background
    with pytest.raises(ValueError, match="select the others first|Select the others first"):
        xs.montage(grid_of_tiles(), row="a")
    with pytest.raises(ValueError, match="row='c' is not a dim"):
        xs.montage(grid_of_tiles(), row="c")


def test_a_new_view_of_the_same_function_replaces_the_old_one():
    calls = []

    def f(n):
        calls.append(n)
        return n

    ps = xs.ParameterSpace([xs.Parameter("n", values=[1, 2, 3])])
    old = ps.explore(f, background=False)
    new = ps.explore(f, background=False)
    assert old.closed and not new.closed
    calls.clear()
    new.controls["n"].value = 3
    assert calls == [3]  # only the live view computes
    ps["n"].value = 2
    assert new.controls["n"].value == 2 and calls == [3, 2]
    new.close()
    ps["n"].value = 1  # closed views are detached from the parameters
    assert calls == [3, 2]


def test_background_view_computes_without_touching_parameters():
    fired = []
    ps = xs.ParameterSpace([xs.Parameter("n", values=[1, 2, 3])])
    ps["n"].register_callback(fired.append)
    view = ps.explore(lambda n: n * 100)
    view.wait()
    view.controls["n"].value = 3
    view.wait()
    assert fired == [3] and ps["n"].value == 3 and view.controls["n"].value == 3
    assert "n=3" in view.status.value and "300" in view.text.value


def test_single_valued_bool_is_shown_disabled():
    w = xs.Parameter("on", values=[True]).widget()
    assert w.disabled and w.value is True


def test_accessor_failures_empty_has_columns():
    ds = xs.ParameterSpace([xs.Parameter("a", values=[1])]).sweep(lambda a: a)
    assert list(ds.xsweep.failures().columns) == ["function", "error"]
