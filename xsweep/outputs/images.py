"""Image arrays: plain numpy pixels that a sweep stores with named image dims."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

#: The dims of an :class:`ImageArray` in a sweep's results, and its channel labels.
IMAGE_DIMS = ("y", "x", "rgb")
_CHANNELS = {3: ["r", "g", "b"], 4: ["r", "g", "b", "a"]}


class ImageArray(np.ndarray):
    """A ``(y, x, channel)`` numpy array of pixels, which a sweep stores over named dims.

    It is a numpy array in every other way (``PIL.Image.fromarray``, ``plt.imshow``,
    slicing, arithmetic), so code written for the pixels of a Matplotlib figure keeps
    working. Only a sweep looks at its type: a function returning one gets the image dims
    ``y, x, rgb`` (and ``rgb`` labelled ``"r", "g", "b"``) instead of ``<name>_dim_0, ...``;
    ``output_dims=`` names them otherwise. Arithmetic gives plain arrays (``im / 255`` is
    no longer pixels), as does anything that is not 3-dimensional. A cached cell comes back
    from ``run_process`` as a plain numpy array of the same pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep import ImageArray
    >>> im = ImageArray.of(np.zeros((2, 4, 3), np.uint8))
    >>> im.shape, type(im / 255).__name__
    ((2, 4, 3), 'ndarray')
    """

    @classmethod
    def of(cls, pixels: Any) -> ImageArray:
        """``pixels`` (an ``(y, x, channel)`` array) as an ``ImageArray``, without a copy.

        Parameters
        ----------
        pixels : array_like
            Three dims: rows, columns, channels (3 for RGB, 4 for RGBA).

        Returns
        -------
        ImageArray
            A view of the same pixels.

        Examples
        --------
        >>> import numpy as np
        >>> from xsweep import ImageArray
        >>> ImageArray.of(np.full((1, 2, 3), 255, np.uint8)).shape
        (1, 2, 3)
        """
        arr = np.asarray(pixels)
        if arr.ndim != 3:
            raise ValueError(
                f"an ImageArray holds (y, x, channel) pixels, 3 dims; this array has shape "
                f"{arr.shape}"
            )
        return arr.view(cls)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # Computed values are not pixels any more: plain arrays (and plain scalars).
        inputs = tuple(x.view(np.ndarray) if isinstance(x, ImageArray) else x for x in inputs)
        out = kwargs.get("out")
        if out:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, ImageArray) else o for o in out
            )
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out:  # in place (im += 1): the caller's own arrays
            return out[0] if len(out) == 1 else out
        return result

    def __getitem__(self, key: Any) -> Any:
        got = super().__getitem__(key)
        if isinstance(got, ImageArray) and got.ndim != 3:
            return got.view(np.ndarray)
        return got


def image_dims(value: np.ndarray) -> tuple[tuple[str, ...], dict[str, xr.Variable]] | None:
    """The dims and coordinates a sweep gives ``value``, if it is an :class:`ImageArray`."""
    if not isinstance(value, ImageArray) or value.ndim != 3:
        return None
    labels = _CHANNELS.get(value.shape[-1])
    coords = {}
    if labels is not None:
        coords[IMAGE_DIMS[-1]] = xr.Variable((IMAGE_DIMS[-1],), np.array(labels))
    return IMAGE_DIMS, coords
