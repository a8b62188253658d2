"""A user's code, typed, against xsweep's public API: `mypy` checks it in CI (.ci/run).

mypy checks this file with the package (``files`` of ``[tool.mypy]`` in pyproject.toml):
each ``assert_type`` fails the check if xsweep's annotations stop giving a user the type
written there, and each ``# type: ignore[...]`` below marks a call the annotations must
refuse (``warn_unused_ignores`` fails the check if one is accepted). Nothing runs on
import; ``python tests/typecheck/check_public_api.py`` runs it all in a temporary folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import numpy as np
import pandas as pd
import PIL.Image
import xarray as xr

import xsweep as xs

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # mypy checks as 3.10 (python_version): typing_extensions comes with mypy
    from typing_extensions import assert_type


def beam(length: float, mode: str) -> dict[str, Any]:
    """A swept function with annotations of its own, as a typed user writes it."""
    return {"area": length * (2.0 if mode == "wide" else 1.0), "trace": np.arange(3) * length}


def picture(length: float) -> np.ndarray:
    return np.full((4, 4, 3), int(length * 50), np.uint8)


def typed_session(folder: str) -> None:
    length = xs.Parameter("length", values=[1.0, 2.0], units="m")
    mode = xs.Parameter("mode", values=["narrow", "wide"])
    assert_type(length.values, np.ndarray)
    ps = xs.ParameterSpace([length, mode])
    assert_type(ps.dims, tuple[str, ...])

    # the whole grid, cached in a file: a Dataset, whatever the function returns
    assert_type(ps.enable_cache(os.path.join(folder, "results.nc")), None)
    assert_type(ps.cache_path, str | None)
    output_dims = {"trace": ("t",)}  # built beforehand, as in a script
    ds = ps.sweep(beam, output_dims=output_dims)
    assert_type(ds, xr.Dataset)
    assert_type(ps.sweep(beam, params=["length"], workers=None), xr.Dataset)
    assert_type(ps.sweep(lambda length: length), xr.Dataset)  # an untyped function too
    assert_type(ps.status(beam), xr.DataArray)
    assert_type(ps.failures(beam), pd.DataFrame)
    assert_type(ps.is_computed(beam, length=2.0), bool)

    # one cell, as the function returns it (from the cache when it is there)
    one = ps.run_process(beam, length=2.0)
    assert_type(one, Any)
    assert_type(ps.cell(beam, length=1.0).cached, bool)

    # background sweeps
    job = ps.sweep_async(beam)
    assert_type(job.result(timeout=60), xr.Dataset)

    # parts of a grid computed apart (one file per cluster job), merged into one
    parts: list[str] = []
    for k in range(2):
        part = xs.ParameterSpace([xs.Parameter("length", values=[1.0, 2.0])])
        part.enable_cache(os.path.join(folder, f"part{k}.nc"))
        part.sweep(picture, part=(k, 2))
        parts.append(os.path.join(folder, f"part{k}.nc"))
    merged = xs.merge_stores(parts, os.path.join(folder, "merged.nc"))
    assert_type(merged, str)
    shared = xs.open_dataset(merged)
    assert_type(shared, xr.Dataset)
    with shared:
        sheet = xs.montage(shared["picture"], col="length", label=False)
        assert_type(sheet, PIL.Image.Image)


def refused(ps: xs.ParameterSpace, folder: str) -> None:
    """Calls the annotations refuse (never run: each would raise)."""
    ps.sweep(beam, workers="four")  # type: ignore[arg-type]
    xs.Parameter(3, values=[1, 2])  # type: ignore[arg-type]
    ps.enable_cache(folder, snapshot_interval="1 min")  # type: ignore[arg-type]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        typed_session(tmp)
    print("ok")
