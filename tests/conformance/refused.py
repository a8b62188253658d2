"""Return values xsweep refuses: each must fail before anything is written, saying what to do."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _palette():
    from PIL import Image

    return Image.new("P", (2, 2))


#: name -> (the value a function returns, what the docs table says of it)
REFUSED: dict[str, tuple[Any, str]] = {
    "set": (lambda a: {a, 2}, "a set: `sorted(s)` or `list(s)`"),
    "bytes": (lambda a: b"raw", "bytes: decode them, or `np.frombuffer`"),
    "float16": (lambda a: np.zeros(2, np.float16), "float16 arrays: `.astype(np.float32)`"),
    "object array": (lambda a: np.array([object()]), "object arrays: convert the elements"),
    "palette image": (lambda a: _palette(), "PIL mode `P`: `image.convert('RGB')`"),
    "MultiIndex": (
        lambda a: pd.Series([1.0], index=pd.MultiIndex.from_tuples([(1, 2)])),
        "a MultiIndex: `result.to_xarray()`",
    ),
    "Int64 with NA": (
        lambda a: pd.DataFrame({"c": pd.array([1, None], dtype="Int64")}),
        "pandas `Int64` with missing values: `.astype(float)`",
    ),
    "text with NUL": (
        lambda a: "a\x00b",
        "text holding NUL (where NetCDF text ends): remove or replace the character",
    ),
    "generator": (lambda a: (i for i in range(a)), "a generator: `list(g)`"),
}

#: the ways to compute them that the test tries
MODES = ["new file", "existing file", "workers=2", "dask", "run_process"]
#: known bugs of today's code: (name, mode) -> reason (strict xfail)
KNOWN: dict[tuple[str, str], str] = {}


def refused_fn(name: str):
    value_at = REFUSED[name][0]

    def refused(a):
        return value_at(a)

    return refused
