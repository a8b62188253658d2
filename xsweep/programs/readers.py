"""Reading the files a program wrote: one reader per kind of file, chosen by its extension.

Used by :func:`xsweep.command` (the outputs of a program run per cell) and
:func:`xsweep.open_tree` (a folder tree of earlier runs). A reader is any callable that takes
a path and returns what a swept function may return (a number, an array, a DataArray, a
DataFrame, JSON-like data); pass your own for other formats. None of them runs code from
the file (``.npy`` files are read without pickles).

Examples
--------
>>> import json, os, tempfile
>>> from xsweep.programs.readers import read
>>> path = os.path.join(tempfile.mkdtemp(), "out.json")
>>> with open(path, "w") as f:
...     json.dump({"energy": 1.5}, f)
>>> read(path)
{'energy': 1.5}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import XsweepError

if TYPE_CHECKING:  # imported when a file is read
    import pandas as pd
    import xarray as xr

Reader = Callable[[str], Any]


def read_json(path: str) -> Any:
    """A JSON file: numbers, strings, lists and dicts as JSON gives them."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_csv(path: str) -> pd.DataFrame:
    """A CSV file with a header row, as a pandas DataFrame (a table per cell).

    Integer columns are read as floats: every cell then stores the same dtype, whichever
    values a run happened to write (``1`` in one run, ``1.5`` in the next).
    """
    import pandas as pd

    table = pd.read_csv(path)
    ints = [c for c in table.columns if table[c].dtype.kind in "iu"]
    return table.astype({c: "float64" for c in ints}) if ints else table


def read_npy(path: str) -> np.ndarray:
    """A numpy ``.npy`` array (never unpickles objects)."""
    return np.load(path, allow_pickle=False)


def read_netcdf(path: str) -> xr.DataArray:
    """A NetCDF file with one data variable, as a DataArray (loaded; the file is closed)."""
    from ..store.nclock import NC_LOCK, open_dataset

    # Loaded holding the lock: sweeps in other threads may be publishing (see nclock)
    with NC_LOCK, open_dataset(path) as ds:
        names = list(ds.data_vars)
        if len(names) != 1:
            raise XsweepError(
                f"{path} holds {len(names)} data variables {names[:8]}; the default NetCDF "
                "reader takes files of one. Give a reader that picks what you want, e.g. "
                f"outputs={{'t': ('{os.path.basename(path)}', lambda p: "
                "xr.open_dataset(p)['t'].load())}."
            )
        return ds[names[0]].load()


def read_image(path: str) -> np.ndarray:
    """An image (PNG, JPEG, TIFF, BMP, GIF) as a ``(y, x[, channel])`` uint8 array."""
    from PIL import Image

    with Image.open(path) as opened:
        image: Image.Image = opened
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGB")
        return np.asarray(image).copy()


def read_text(path: str) -> str:
    """A text file, as one string."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


#: The reader of each file extension (lower case).
READERS: dict[str, Reader] = {
    ".json": read_json,
    ".csv": read_csv,
    ".npy": read_npy,
    ".nc": read_netcdf,
    ".nc4": read_netcdf,
    ".png": read_image,
    ".jpg": read_image,
    ".jpeg": read_image,
    ".tif": read_image,
    ".tiff": read_image,
    ".bmp": read_image,
    ".gif": read_image,
    ".txt": read_text,
}


def reader_for(path: str) -> Reader:
    """The reader of ``path``'s extension; an error lists the known ones and the way out."""
    ext = os.path.splitext(path)[1].lower()
    try:
        return READERS[ext]
    except KeyError:
        raise XsweepError(
            f"No reader for {os.path.basename(path)!r}: xsweep reads {sorted(READERS)}. Give "
            f"one: a (file, reader) pair, e.g. ({os.path.basename(path)!r}, my_reader), where "
            "my_reader(path) returns the value."
        ) from None


def read(path: str) -> Any:
    """Read ``path`` with the reader of its extension."""
    return reader_for(path)(path)
