"""Matplotlib helpers: figures as image arrays a sweep can store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..file_format import DTYPE_ATTR
from ..outputs.images import ImageArray

if TYPE_CHECKING:  # imported when a montage is made
    import PIL.Image


def figure_to_array(fig: Any = None, *, close: bool = True) -> ImageArray:
    """Render a Matplotlib figure to an ``(y, x, rgb)`` uint8 image.

    This replaces the ``canvas.tostring_rgb()`` recipe of older tutorials (Matplotlib 3.10
    removed that method). The pixels are a numpy array (an :class:`~xsweep.ImageArray`), so
    ``PIL.Image.fromarray(im)`` and ``plt.imshow(im)`` take it as they are; a sweep of a
    plotting function stores them over the named dims ``y, x, rgb`` without ``output_dims``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure, optional
        The figure to render; the current pyplot figure by default.
    close : bool, default True
        Close the figure afterwards, so that sweeping a plotting function over many cells
        does not pile up open figures.

    Returns
    -------
    ImageArray
        uint8 pixels of shape ``(height, width, 3)``; in a sweep's results, dims
        ``("y", "x", "rgb")`` with ``rgb`` labelled ``"r", "g", "b"``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import PIL.Image
    >>> import xsweep as xs
    >>> fig = plt.figure(figsize=(2, 1), dpi=50)
    >>> _ = plt.plot([0, 1], [0, 1])
    >>> im = xs.figure_to_array()
    >>> im.shape, im.dtype, PIL.Image.fromarray(im).size
    ((50, 100, 3), dtype('uint8'), (100, 50))
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
    return ImageArray.of(pixels)


def montage(
    da: xr.DataArray,
    row: str | None = None,
    col: str | None = None,
    *,
    label: bool = True,
    pad: int = 4,
    background: int = 255,
) -> PIL.Image.Image:
    """Lay image cells out as one contact sheet, labelled with their parameter values.

    Parameters
    ----------
    da : xarray.DataArray
        Image cells: the ``row`` and ``col`` dims plus two image dims ``(y, x)`` or three
        ``(y, x, channel)``; select every other parameter first with ``.sel()``.
    row, col : str, optional
        The dims laid out down and across.
    label : bool, default True
        Write ``col=value`` above each column and ``row=value`` left of each row.
    pad : int, default 4
        Pixels between tiles and around the sheet.
    background : int, default 255
        Grey level of the padding (and of NaN pixels in float images).

    Returns
    -------
    PIL.Image.Image
        Save it with ``.save("montage.png")``; ``np.asarray(img)`` gives the pixels. Tile
        ``(i, j)`` has its top-left corner at ``(top + pad + i * (h + pad),
        left + pad + j * (w + pad))`` where ``top`` and ``left`` are the label bands (0 when
        ``label=False``).

    Examples
    --------
    >>> import numpy as np, xarray as xr, xsweep as xs
    >>> da = xr.DataArray(np.zeros((2, 3, 4, 5, 3), np.uint8),
    ...                   dims=("a", "b", "y", "x", "rgb"), coords={"a": [1, 2], "b": [7, 8, 9]})
    >>> sheet = xs.montage(da, row="a", col="b", label=False, pad=1)
    >>> sheet.size  # width, height
    (19, 11)
    """
    from PIL import Image, ImageDraw, ImageFont

    for name, dim in (("row", row), ("col", col)):
        if dim is not None and dim not in da.dims:
            raise ValueError(f"{name}={dim!r} is not a dim of the DataArray; it has {da.dims}.")
    grid = [d for d in (row, col) if d is not None]
    image_dims = [d for d in da.dims if d not in grid]
    if len(image_dims) not in (2, 3):
        extra = image_dims[:-2] if len(image_dims) > 3 else image_dims
        raise ValueError(
            f"montage needs image cells: besides row/col the DataArray must have 2 or 3 dims "
            f"(y, x[, channel]), but it has {image_dims}. Select the others first, e.g. "
            f"da.sel({extra[0]}=...), or lay them out with row=/col=."
        )
    da = da.transpose(*grid, *image_dims)
    nrow = da.sizes[row] if row else 1
    ncol = da.sizes[col] if col else 1
    h, w = da.shape[len(grid)], da.shape[len(grid) + 1]
    channels = da.shape[-1] if len(image_dims) == 3 else 1
    font = ImageFont.load_default()

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = font.getbbox(text)
        return int(right - left), int(bottom - top)

    col_labels = [f"{col}={_fmt(v)}" for v in da[col].values] if (label and col) else []
    row_labels = [f"{row}={_fmt(v)}" for v in da[row].values] if (label and row) else []
    top = max((text_size(t)[1] for t in col_labels), default=-pad) + pad if col_labels else 0
    left = max((text_size(t)[0] for t in row_labels), default=-pad) + pad if row_labels else 0
    height = top + pad + nrow * (h + pad)
    width = left + pad + ncol * (w + pad)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    if mode is None:
        raise ValueError(f"image cells need 1, 3 or 4 channels, not {channels}.")
    sheet = Image.new(
        mode, (width, height), (background,) * channels if channels > 1 else background
    )
    values = np.asarray(da.values)
    scale = 1.0
    if values.dtype.kind == "f" and not holds_pixels(da):
        scale = 255.0 if np.nanmax(values, initial=0) <= 1.0 else 1.0
    for i in range(nrow):
        for j in range(ncol):
            tile = values[(i, j) if row and col else (i,) if row else (j,) if col else ()]
            sheet.paste(
                Image.fromarray(_to_uint8(tile, background, scale), mode),
                (left + pad + j * (w + pad), top + pad + i * (h + pad)),
            )
    if label:
        draw = ImageDraw.Draw(sheet)
        ink = 0 if channels == 1 else (0,) * channels
        for j, text in enumerate(col_labels):
            draw.text((left + pad + j * (w + pad), 0), text, fill=ink, font=font)
        for i, text in enumerate(row_labels):
            draw.text((0, top + pad + i * (h + pad)), text, fill=ink, font=font)
    return sheet


def _fmt(value: Any) -> str:
    value = value.item() if hasattr(value, "item") else value
    return f"{value:g}" if isinstance(value, float) else str(value)


def holds_pixels(da: xr.DataArray) -> bool:
    """Whether a float DataArray holds integer pixel values (0-255, not 0-1).

    An int output with cells without a value comes back as float with NaN there, from a
    sweep (attribute ``xsweep_dtype``) or from ``xarray.open_dataset`` (``encoding``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xsweep.views.plotting import holds_pixels
    >>> holds_pixels(xr.DataArray([0.0, np.nan, 1.0], attrs={"xsweep_dtype": "uint8"}))
    True
    >>> holds_pixels(xr.DataArray([0.0, 0.5, 1.0]))
    False
    """
    dtype = da.attrs.get(DTYPE_ATTR) or da.encoding.get("dtype")
    try:
        return dtype is not None and np.dtype(dtype).kind in "iu"
    except TypeError:
        return False


def _to_uint8(tile: np.ndarray, background: int, scale: float = 1.0) -> np.ndarray:
    if tile.dtype == np.uint8:
        return tile
    tile = np.asarray(tile, dtype=float)
    out = np.where(np.isnan(tile), background, np.clip(tile * scale, 0, 255))
    return out.round().astype(np.uint8)
