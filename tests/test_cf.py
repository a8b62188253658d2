"""The shared file passes the CF checker (IOOS compliance-checker, ``cf:1.10``)."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import xarray as xr

import xsweep as xs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the checker's own

checker = pytest.importorskip(
    "compliance_checker.runner",
    reason="the CF checker is in the test extra: pip install -e '.[test]'",
)


def findings(path, tmp_path) -> dict[str, list[str]]:
    """The checker's errors (high priority) and warnings (medium) for the file."""
    checker.CheckSuite.load_all_available_checkers()
    report = tmp_path / "report.json"
    checker.ComplianceChecker.run_checker(
        str(path), ["cf:1.10"], 0, "normal", output_filename=str(report), output_format="json"
    )
    result = json.loads(report.read_text())["cf:1.10"]
    return {
        level: [m for item in result[f"{level}_priorities"] for m in item["msgs"]]
        for level in ("high", "medium")
    }


def test_a_file_of_every_kind_of_output_has_no_cf_errors_or_warnings(tmp_path):
    path = tmp_path / "kinds.nc"
    ps = xs.ParameterSpace(
        [
            xs.Parameter("a", values=[1, 2, 3], units="m", description="a length"),
            xs.Parameter("mode", values=["x", "y"]),
        ]
    )
    ps.enable_cache(str(path))

    def scalar(a, mode):
        if a == 3 and mode == "y":
            raise ValueError("bad cell")
        return a * 1.5

    def image(a, mode):
        return np.full((4, 5, 3), a, np.uint8)

    def named(a, mode):
        return {"mean": float(a), "count": a, "label": f"{mode}{a}"}

    def profile(a, mode):
        return xr.DataArray(
            np.arange(3.0) * a, dims="t", coords={"t": [0.0, 0.5, 1.0]}, attrs={"units": "K"}
        )

    def ragged(a, mode):
        return np.arange(a)

    def when(a, mode):
        return np.datetime64("2024-01-01") + np.timedelta64(a, "D")

    def nested(a, mode):
        return {"config": {"a": a, "list": [1, 2]}}

    def sometimes(a, mode):
        return None if a == 2 else complex(a, -a)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xs.SweepFailuresWarning)
        for fn in (scalar, image, named, profile, ragged, when, nested, sometimes):
            dims = {"image": ("y", "x", "rgb")} if fn is image else None
            ps.sweep(fn, output_dims=dims, progress=False)
    ps.disable_cache()
    assert findings(path, tmp_path) == {"high": [], "medium": []}
    with xr.open_dataset(path) as ds:
        # What made the file: a line per sweep, newest first, after its creation.
        lines = ds.attrs["history"].splitlines()
        assert "swept sometimes: 6 cells computed, 0 failed" in lines[0]
        assert "swept scalar: 5 cells computed, 1 failed" in lines[-2]
        assert "created by xsweep" in lines[-1]
        assert ds["count"].attrs["long_name"] == "count, returned by named"
        assert ds["scalar"].attrs["long_name"] == "the value returned by scalar"


def test_a_long_name_of_the_users_own_is_kept_and_the_default_never_reaches_python(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(str(path))

    def temperature(a):
        return xr.DataArray(
            [a * 1.0], dims="t", coords={"t": [0.0]}, attrs={"long_name": "air temperature"}
        )

    def plain(a):
        return xr.DataArray([a * 2.0], dims="u", coords={"u": [5.0]})

    ps.sweep(temperature, progress=False)
    ps.sweep(plain, progress=False)
    ps.disable_cache()
    with xr.open_dataset(path) as ds:
        assert ds["temperature"].attrs["long_name"] == "air temperature"
        assert (
            ds["plain"].attrs["long_name"] == "plain, returned by plain"
            or ds["plain"].attrs["long_name"] == "the value returned by plain"
        )
    again = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    again.enable_cache(str(path))
    # run_process gives back what the function returned: no attribute the file added.
    assert again.run_process(plain, a=2).attrs == {}
    assert again.run_process(plain, a=2).coords["u"].attrs == {}
    assert again.run_process(temperature, a=1).attrs == {"long_name": "air temperature"}


def test_a_sweep_of_big_images_notes_itself_in_the_history_too(tmp_path):
    """Big cells go straight into a staged copy of the next file, made before the sweep's
    history line exists: the line must still reach the file."""
    path = tmp_path / "images.nc"
    ps = xs.ParameterSpace([xs.Parameter("i", values=range(4))])
    ps.enable_cache(str(path))

    def picture(i):
        return np.full((300, 300, 3), i, np.uint8)  # 270 kB: a big cell

    ps.sweep(picture, progress=False)
    ps.disable_cache()
    with xr.open_dataset(path) as ds:
        assert "swept picture: 4 cells computed" in ds.attrs["history"].splitlines()[0]
        assert int(ds["picture"].isel(i=3, picture_dim_0=0, picture_dim_1=0, picture_dim_2=0)) == 3
    assert not [p for p in os.listdir(tmp_path) if "xsweep" in p]  # the staged file became it
