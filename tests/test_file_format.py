"""The file's layout is spelled once (xsweep.file_format), and messages take it from there."""

from __future__ import annotations

import netCDF4
import pytest

import xsweep as xs
from xsweep.errors import StoreError
from xsweep.file_format import FLAG_MEANINGS, FLAG_VALUES, describe_codes


def test_a_file_with_an_unknown_status_code_names_every_valid_code(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(path)
    ps.sweep(lambda a: a * 2, progress=False)
    ps.disable_cache()
    with netCDF4.Dataset(path, "a") as nc:
        nc.variables["lambda_status"][0] = 7
    with pytest.raises(StoreError) as info:
        xs.ParameterSpace([xs.Parameter("a", values=[1, 2])]).enable_cache(path)
    text = str(info.value)
    for code, meaning in zip(FLAG_VALUES.tolist(), FLAG_MEANINGS.split()):
        assert f"{code} ({meaning})" in text
    assert describe_codes() in text
