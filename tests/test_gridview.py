"""The live grid view (headless): the map's pixels, its counts, the chosen cell, live updates."""

import io
import threading
import time
import warnings

import numpy as np
import pytest
from PIL import Image

import xsweep as xs
from xsweep.views.gridview import STATUS_COLORS

ipywidgets = pytest.importorskip("ipywidgets")


def space():
    return xs.ParameterSpace(
        [
            xs.Parameter("a", values=[0, 1, 2]),
            xs.Parameter("b", values=[0, 1, 2, 3]),
        ]
    )


def mostly(a, b):
    if (a, b) == (2, 1):
        raise ValueError("no solution at a=2, b=1")
    if (a, b) == (0, 3):
        return None
    return {"energy": float(10 * a + b), "picture": np.full((6, 6, 3), 40 * a, np.uint8)}


def pixels(view) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(view.map.value)).convert("RGB"))


def cell_colour(view, row: int, col: int, panel: int = 0) -> tuple:
    """The colour at the centre of a cell of the map (its layout: see gridview._panels)."""
    img = pixels(view)
    nf, ny, nx = 1, len(view.space[view.y].values), len(view.space[view.x].values)
    del nf
    px = int(max(3, min(40, (480 - 8) // nx, 320 // ny)))
    top, left = 8, 8
    return tuple(img[top + row * px + px // 2, left + col * px + px // 2].tolist())


def test_the_map_shows_each_cells_status_and_counts_them(tmp_path):
    ps = space()
    ps.enable_cache(tmp_path / "r.nc")
    view = ps.grid_view(mostly, interval=None)
    assert (view.x, view.y, view.facet) == ("b", "a", None)
    assert view.counts == {"not computed": 12, "computed": 0, "failed": 0, "no value": 0}
    assert cell_colour(view, 1, 2) == STATUS_COLORS[0]
    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(mostly, cells={"a": [0, 2]}, output_dims={"picture": ("y", "x", "rgb")})
    assert view.update() is True
    assert view.update() is False  # nothing changed: no redraw
    assert view.counts == {"not computed": 4, "computed": 6, "failed": 1, "no value": 1}
    assert cell_colour(view, 0, 0) == STATUS_COLORS[1]
    assert cell_colour(view, 2, 1) == STATUS_COLORS[2]
    assert cell_colour(view, 0, 3) == STATUS_COLORS[3]
    assert cell_colour(view, 1, 1) == STATUS_COLORS[0]
    assert "computed 6" in view.legend.value and "failed 1" in view.legend.value
    view.close()


def test_choosing_a_cell_shows_its_output_or_its_failure(tmp_path):
    ps = space()
    ps.enable_cache(tmp_path / "r.nc")
    calls = []

    def counted(a, b):
        calls.append((a, b))
        return mostly(a, b)

    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(counted, name="mostly", output_dims={"picture": ("y", "x", "rgb")})
    calls.clear()
    view = ps.grid_view(counted, interval=None)
    view.pick["a"].value, view.pick["b"].value = 2, 1
    assert view.message == "a=2, b=1: failed: ValueError: no solution at a=2, b=1"
    assert "no solution" in view.cell_text.value
    view.pick["b"].value = 2
    assert view.message.startswith("a=2, b=2: computed: energy=22, picture=array (6, 6, 3)")
    view.pick["b"].value = 3
    view.pick["a"].value = 0
    assert view.message == "a=0, b=3: no value: None"
    assert calls == []  # the view reads cached cells only: nothing is computed


def test_a_not_computed_cell_is_never_computed_by_the_view():
    ps = space()
    calls = []

    def f(a, b):
        calls.append(1)
        return a + b

    view = ps.grid_view(f, interval=None)
    view.pick["a"].value = 2
    assert view.message == "a=2, b=0: not computed yet"
    assert calls == []


def test_a_scalar_output_colours_the_map(tmp_path):
    ps = space()
    ps.enable_cache(tmp_path / "r.nc")
    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(mostly, output_dims={"picture": ("y", "x", "rgb")})
    view = ps.grid_view(mostly, show="energy", interval=None)
    low, high = cell_colour(view, 0, 0), cell_colour(view, 2, 3)
    import matplotlib

    viridis = matplotlib.colormaps["viridis"]
    assert low == tuple((np.array(viridis(0.0)[:3]) * 255).round().astype(int).tolist())
    assert high == tuple((np.array(viridis(1.0)[:3]) * 255).round().astype(int).tolist())
    assert cell_colour(view, 2, 1) == STATUS_COLORS[2]  # failed cells keep their colour
    assert "energy from 0 to 23" in view.legend.value
    with pytest.raises(xs.XsweepError, match=r"no numeric scalar output 'picture'.*'energy'"):
        ps.grid_view(mostly, show="picture", interval=None)


def test_panels_for_a_third_parameter_and_held_parameters(tmp_path):
    ps = xs.ParameterSpace(
        [
            xs.Parameter("a", values=[0, 1]),
            xs.Parameter("b", values=[0, 1, 2]),
            xs.Parameter("c", values=[5, 6]),
            xs.Parameter("d", values=["x", "y"]),
        ]
    )

    def f(a, b, c, d):
        return a + b + c

    ps.sweep(f, cells={"d": ["y"], "c": [6]})
    view = ps.grid_view(f, x="a", y="b", facet="c", interval=None)
    assert list(view.controls) == ["d"]  # the held parameter gets a control
    assert view.counts["computed"] == 0  # d is held at "x", not computed there
    ps["d"].value = "y"
    view.update()
    assert view.counts == {"not computed": 6, "computed": 6, "failed": 0, "no value": 0}
    assert "panels: c" in view.legend.value
    with pytest.raises(xs.XsweepError, match=r"x='e' is not a parameter.*\['a', 'b', 'c', 'd'\]"):
        ps.grid_view(f, x="e")
    with pytest.raises(xs.XsweepError, match="different parameters"):
        ps.grid_view(f, x="a", y="a")
    view.close()


def test_the_view_follows_a_background_sweep_as_it_fills(tmp_path):
    ps = space()
    ps.enable_cache(tmp_path / "r.nc")
    gate = threading.Semaphore(0)

    def stepped(a, b):
        gate.acquire(timeout=30)
        return float(a * b)

    view = ps.grid_view(stepped, interval=0.02)
    job = ps.sweep_async(stepped, progress=False)
    seen = set()
    for step in range(12):
        gate.release()  # one more cell may finish
        deadline = time.monotonic() + 30
        while view.counts["computed"] < step + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.add(view.counts["computed"])
    job.result(timeout=30)
    assert seen == set(range(1, 13))  # the map changed as each cell landed
    assert view.draws >= 13
    view.close()
    assert view.closed


def test_status_is_cheap_and_live(tmp_path):
    ps = space()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps.sweep(mostly, cells={"a": [2]}, output_dims={"picture": ("y", "x", "rgb")})
    status = ps.status(mostly)
    assert status.dims == ("a", "b")
    assert status.sel(a=2).values.tolist() == [1, 2, 1, 1]
    assert status.sel(a=0).values.tolist() == [0, 0, 0, 0]
    assert status.attrs["flag_meanings"].split()[2] == "failed"
