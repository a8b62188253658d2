"""The ds.xsweep accessor on both layouts: a swept Dataset (outputs only) and a shared file."""

import warnings

import numpy as np
import pytest
import xarray as xr

import xsweep as xs


def make(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2]), xs.Parameter("b", values=[1, 2])])
    ps.enable_cache(tmp_path / "r.nc")

    def ratio(a, b):
        if a == 0:
            raise ZeroDivisionError(f"a=0 with b={b}")
        return {"r": b / a, "picture": np.full((2, 2, 3), a, np.uint8)}

    def total(a, b):
        return a + b

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = ps.sweep(ratio, output_dims={"picture": ("y", "x", "rgb")})
    ps.sweep(total, cells={"a": [1]})
    return ps, ratio, total, ds


def test_a_swept_dataset_holds_only_outputs_and_its_status_follows_sel(tmp_path):
    ps, ratio, total, ds = make(tmp_path)
    assert sorted(ds.data_vars) == ["picture", "r"]
    assert "ratio_message" not in ds.sizes and "ratio_seconds" not in ds.variables
    assert ds.xsweep.status.values.tolist() == [[2, 2], [1, 1], [1, 1]]
    assert ds.sel(a=1).xsweep.status.values.tolist() == [1, 1]
    assert np.isnan(ds["r"].sel(a=0)).all()  # not computed / failed reads NaN
    failures = ds.xsweep.failures()
    assert failures.to_dict("records") == [
        {"function": "ratio", "a": 0, "b": 1, "error": "ZeroDivisionError: a=0 with b=1"},
        {"function": "ratio", "a": 0, "b": 2, "error": "ZeroDivisionError: a=0 with b=2"},
    ]
    assert ds.sel(a=[0]).xsweep.failures()["b"].tolist() == [1, 2]
    counts = ds.xsweep.counts()
    assert counts.loc["ratio"].to_dict() == {
        "not_computed": 0,
        "computed": 4,
        "failed": 2,
        "no_value": 0,
    }
    # No timings in it: the error names the way out, and the way out works.
    with pytest.raises(xs.XsweepError, match=r"ps\.seconds\(fn\)"):
        _ = ds.xsweep.seconds
    seconds = ps.seconds(ratio)
    assert seconds.dims == ("a", "b") and bool((seconds.sel(a=[1, 2]) >= 0).all())


def test_a_shared_file_reads_the_same_through_the_accessor(tmp_path):
    ps, ratio, total, ds = make(tmp_path)
    ps.disable_cache()
    with xr.open_dataset(tmp_path / "r.nc") as f:
        assert f.xsweep.functions() == ["ratio", "total"]
        with pytest.raises(xs.XsweepError, match=r"2 functions \['ratio', 'total'\].*status_of"):
            _ = f.xsweep.status
        assert (f.xsweep.status_of("ratio").values == ds.xsweep.status.values).all()
        assert f.xsweep.status_of("total").values.tolist() == [[0, 0], [1, 1], [0, 0]]
        assert f.xsweep.failures("ratio").equals(ds.xsweep.failures())
        assert (f.xsweep.seconds_of("ratio").values >= 0).sum() == 6
        with pytest.raises(xs.XsweepError, match=r"No results of 'nope'.*\['ratio', 'total'\]"):
            f.xsweep.status_of("nope")


def test_a_dataset_saved_by_the_user_keeps_its_failures(tmp_path):
    _, _, _, ds = make(tmp_path)
    ds.to_netcdf(tmp_path / "mine.nc")  # the messages attribute survives a round trip
    with xr.open_dataset(tmp_path / "mine.nc") as mine:
        assert mine.xsweep.failures()["error"].tolist() == [
            "ZeroDivisionError: a=0 with b=1",
            "ZeroDivisionError: a=0 with b=2",
        ]


def test_no_results_at_all_is_a_clear_error():
    ds = xr.Dataset({"v": ("a", [1.0])}, coords={"a": [1]})
    with pytest.raises(xs.XsweepError, match="no xsweep results"):
        _ = ds.xsweep.status
    assert ds.xsweep.functions() == []
