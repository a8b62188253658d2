"""Matplotlib helpers: figures as image arrays a sweep can store."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr


def figure_to_array(fig: Any = None, *, close: bool = True) -> xr.DataArray:
    """Render a Matplotlib figure to an ``(y, x, rgb)`` uint8 image.

    This replaces the ``canvas.tostring_rgb()`` recipe of older tutorials (Matplotlib 3.10
    removed that method). The image is returned as a ``DataArray`` with dims
    ``("y", "x", "rgb")`` so that a sweep of a plotting function gets named image dims
    without ``output_dims``; use ``.values`` for a plain numpy array (for
    ``PIL.Image.fromarray``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure, optional
        The figure to render; the current pyplot figure by default.
    close : bool, default True
        Close the figure afterwards, so that sweeping a plotting function over many cells
        does not pile up open figures.

    Returns
    -------
    xarray.DataArray
        uint8 pixels, dims ``("y", "x", "rgb")``, with ``rgb`` labelled ``"r", "g", "b"``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xsweep as xs
    >>> fig = plt.figure(figsize=(2, 1), dpi=50)
    >>> _ = plt.plot([0, 1], [0, 1])
    >>> im = xs.figure_to_array()
    >>> im.dims, im.shape, im.dtype
    (('y', 'x', 'rgb'), (50, 100, 3), dtype('uint8'))
    """
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig is None:
        fig = plt.gcf()
    canvas = fig.canvas
    if not hasattr(canvas, "buffer_rgba"):
        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.array(np.asarray(canvas.buffer_rgba())[..., :3], dtype=np.uint8, copy=True)
    if close:
        plt.close(fig)
    return xr.DataArray(pixels, dims=("y", "x", "rgb"), coords={"rgb": ["r", "g", "b"]})
