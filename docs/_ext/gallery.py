"""The gallery's images, made by a short sweep at the start of every documentation build.

docs/conf.py calls :func:`make_gallery` (through the xsweep_docs extension), which writes
``facets.png`` and ``montage.png`` into ``docs/_static/generated/`` (not committed);
gallery.md shows the code between the ``[...]`` markers. Run it by hand with
``python docs/_ext/gallery.py OUTDIR``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path


def _write_if_changed(path: Path, data: bytes) -> None:
    # Unchanged images keep their modification time, so Sphinx does not rebuild the pages.
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def make_gallery(outdir: str | Path) -> list[Path]:
    """Sweep two small examples and save a faceted plot and a montage as PNGs in ``outdir``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    # [facets]
    import matplotlib.pyplot as plt
    import numpy as np

    import xsweep as xs

    length = xs.Parameter(
        "length", values=np.linspace(1, 4, 7), units="m", description="beam length"
    )
    load = xs.Parameter(
        "load", values=[250.0, 500.0, 1000.0], units="N", description="point load at the tip"
    )
    material = xs.Parameter("material", values=["steel", "aluminium", "oak"])
    ps = xs.ParameterSpace([length, load, material])

    def tip_deflection(length, load, material):
        youngs = {"steel": 200e9, "aluminium": 69e9, "oak": 11e9}[material]  # Pa
        inertia = 0.05 * 0.1**3 / 12  # a 5 cm x 10 cm section, m^4
        return 1e3 * load * length**3 / (3 * youngs * inertia)  # mm

    ds = ps.sweep(tip_deflection)
    ds["tip_deflection"].attrs.update(long_name="tip deflection", units="mm")
    grid = ds["tip_deflection"].plot(
        x="length", hue="load", col="material", marker="o", size=2.6, sharey=False
    )
    grid.fig.savefig(buffer := io.BytesIO(), format="png", dpi=80)
    plt.close(grid.fig)
    # [facets-end]
    facets = outdir / "facets.png"
    _write_if_changed(facets, buffer.getvalue())

    # [montage]
    width = xs.Parameter("width", values=[1, 3, 5, 7], units="cm")
    position = xs.Parameter("position", values=[0.0, 0.25, 0.5, 0.75])
    graphs = xs.ParameterSpace([width, position])

    def create_graph(width, position):
        fig, ax = plt.subplots(figsize=(1.6, 1.2), dpi=50)
        x = np.linspace(0, 2, 60)
        ax.plot(x, width * np.sin(np.pi * (x + 2 * position)))
        ax.set(ylim=(-8, 8), xticks=[], yticks=[])
        return xs.figure_to_array(fig)

    images = graphs.sweep(create_graph)
    sheet = xs.montage(images["create_graph"], row="width", col="position")
    sheet.save(buffer := io.BytesIO(), format="png")
    # [montage-end]
    montage = outdir / "montage.png"
    _write_if_changed(montage, buffer.getvalue())
    return [facets, montage]


if __name__ == "__main__":
    print(*make_gallery(sys.argv[1] if len(sys.argv) > 1 else "."), sep="\n")
