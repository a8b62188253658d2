"""The README's quickstart runs as written (in a temporary folder)."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quickstart_runs_and_does_what_it_says(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert blocks, "the README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102
    ds, im, ps = namespace["ds"], namespace["im"], namespace["ps"]
    assert ds["create_graph"].dims == ("length", "width", "position", "y", "x", "rgb")
    assert ds["create_graph"].dtype == np.uint8 and (ds["create_graph_status"] == 1).all()
    assert isinstance(im, np.ndarray) and im.shape[-1] == 3  # pixels, as PIL and imshow take
    np.testing.assert_array_equal(
        im, ds["create_graph"].sel(length=3, width=7, position=0.5).values
    )
    assert (tmp_path / "graphs.nc").exists()
    assert ps.is_computed(namespace["create_graph"]) is False  # cleared at the end
