"""The caching chapter of TINC's Python tutorial runs as written on xsweep.

Each line of the chapter is here as TINC's tutorial has it, in a temporary folder with
Matplotlib's Agg backend. Only TINC's own names are translated: the import, how parameters
and the space are built (chapters 1-2), and the pixels recipe, which becomes
``xs.figure_to_array()`` (Matplotlib 3.10 removed ``tostring_rgb``). Lines marked
``# translated`` are those; everything else is the chapter's text.
"""

import io

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.pyplot import gcf, imshow  # noqa: E402  (TINC's notebooks: %pylab inline)

import xsweep as xs  # noqa: E402  translated: from tinc import *


@pytest.fixture
def tutorial(tmp_path, monkeypatch):
    """Chapters 1 and 2 of the tutorial: the parameters, the space and ``graph``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # translated: Parameter("length", "dimensions") with l.values = linspace(0, 10, 11), and
    # so on; fewer values keep the test quick, and include every value the chapter uses.
    l = xs.Parameter("length", values=[1, 3])  # noqa: E741  (the tutorial's name)
    w = xs.Parameter("width", values=[3, 7])
    pos = xs.Parameter("position", values=[0.3, 0.5])
    ps = xs.ParameterSpace([l, w, pos])  # translated: ps.register_parameters([l, w, pos])

    def graph(length, width, pos):
        plt.figure(figsize=(3.2, 2.4), dpi=50)  # chapter 2 draws into the current figure
        plt.axes()
        points = [[0, 0], [length, 0], [length, width], [0, width], [0, 0]]
        plt.gca().add_patch(plt.Polygon(points))
        diameter = min(length, width)  # chapter 2's max_circle(), from the arguments
        center = (
            diameter * 0.5 + (pos * (length - diameter)),
            diameter * 0.5 + (pos * (width - diameter)),
        )
        plt.gca().add_patch(plt.Circle(center, radius=diameter * 0.5, fc="y"))
        plt.axis("scaled")
        plt.xlim(0, 10)
        plt.ylim(0, 10)

    calls = {"create_graph": 0, "save_graph3": 0}

    def save_graph3(length, width, position):
        # The tutorial's third graph function, cached as pixels too: another image size.
        calls["save_graph3"] += 1
        graph(length, width, position)
        gcf().set_size_inches(2, 2)
        return xs.figure_to_array()

    return l, w, pos, ps, graph, save_graph3, calls


def test_caching_chapter_runs_as_written(tutorial, tmp_path, capsys):
    l, w, pos, ps, graph, save_graph3, calls = tutorial  # noqa: E741

    ps.enable_cache()

    from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas  # noqa: F401

    def create_graph(length, width, position):
        calls["create_graph"] += 1  # not the tutorial's: counts calls, stands in for Ctrl-C
        if calls["create_graph"] == calls.get("interrupt_at"):
            raise KeyboardInterrupt
        graph(length, width, position)
        return xs.figure_to_array()  # translated: the canvas.tostring_rgb() recipe

    im = create_graph(1, 3, 0.3)

    import IPython.display
    import PIL.Image

    IPython.display.display(PIL.Image.fromarray(im))
    assert PIL.Image.fromarray(im).size == (160, 120)
    assert plt.get_fignums() == []

    # "if you interrupt the sweep after enabling cache, the next time you start a sweep it
    # will continue where the previous sweep left off"
    calls["create_graph"], calls["interrupt_at"] = 0, 5
    with pytest.raises(KeyboardInterrupt):
        ps.sweep(create_graph)
    calls["create_graph"], calls["interrupt_at"] = 0, None
    ds = ps.sweep(create_graph)
    assert calls["create_graph"] == ps.size - 4
    assert ds["create_graph"].dims == ("length", "width", "position", "y", "x", "rgb")
    assert ds["create_graph"].dtype == np.uint8 and ds["rgb"].values.tolist() == ["r", "g", "b"]
    np.testing.assert_array_equal(ds["create_graph"].sel(length=1, width=3, position=0.3), im)

    l.value = 3
    w.value = 7
    pos.value = 0.5
    im = ps.run_process(save_graph3)
    plt.axis("off")
    imshow(im)
    assert calls["save_graph3"] == 1 and im.shape == (100, 100, 3)

    # "If cache is enabled, the first time the function is executed through run_process()
    # will produce cache": the second time, it comes from the file.
    again = ps.run_process(save_graph3)
    assert calls["save_graph3"] == 1
    np.testing.assert_array_equal(again, im)
    imshow(again)
    plt.close("all")
    buffer = io.BytesIO()
    PIL.Image.fromarray(again).save(buffer, format="png")

    # "you will need to add force_recompute=True when calling run_process()"
    fresh = ps.run_process(save_graph3, force_recompute=True)
    assert calls["save_graph3"] == 2
    np.testing.assert_array_equal(fresh, im)

    # Both image sizes share the one file; each keeps its own dims in what xsweep returns,
    # and in the file the second one's differ by the function's name.
    assert ps.sweep(save_graph3)["save_graph3"].dims[-3:] == ("y", "x", "rgb")
    with xr.open_dataset(ps.cache_path) as f:
        assert f["create_graph"].dims[-3:] == ("y", "x", "rgb")
        assert f["save_graph3"].dims[-3:] == ("save_graph3_y", "save_graph3_x", "rgb")
        assert f["save_graph3"].attrs["xsweep_dims"] == '["y", "x", "rgb"]'
        np.testing.assert_array_equal(f["save_graph3"].sel(length=3, width=7, position=0.5), im)

    ps.clear_cache()
    assert not ps.is_computed(create_graph) and not ps.is_computed(save_graph3)
    assert "Image" in capsys.readouterr().out  # what display() showed outside IPython
