"""Every value a user reads is the function's value, or visibly missing (issue 21).

Integer, unsigned and bool outputs with cells without a value (failed, skipped, returned
None, not computed, ragged padding) read as NaN, in the Dataset a sweep returns and in the
file opened with plain xarray (netCDF4 and h5netcdf engines); text, ragged and time values
inside DataArray and Dataset outputs are stored and read back.
"""

from __future__ import annotations

import datetime
import json
import threading
import time

import netCDF4
import numpy as np
import pytest
import xarray as xr

import xsweep as xs

ENGINES = ["netcdf4"] + (["h5netcdf"] if __import__("importlib").util.find_spec("h5netcdf") else [])


def plain(path, engine="netcdf4") -> xr.Dataset:
    """The file as a colleague without xsweep reads it (decoding defaults)."""
    with xr.open_dataset(path, engine=engine) as ds:
        return ds.load()


def quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` without the warning about failed cells (expected here)."""
    with pytest.warns(xs.SweepFailuresWarning):
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Integer, unsigned and bool outputs: holes are NaN
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_a_failed_int_cell_is_nan_in_the_sweep_and_for_a_colleague(tmp_path, engine):
    path = tmp_path / "i.nc"
    a = xs.Parameter("a", values=[1, 2, 3, 4])
    ps = xs.ParameterSpace([a])
    ps.enable_cache(path)

    def f(a):
        if a == 3:
            raise ValueError("boom")
        return int(a * 10)

    ds = quiet(ps.sweep, f, progress=False)
    assert ds["f"].dtype == np.float64
    np.testing.assert_array_equal(ds["f"].values, [10, 20, np.nan, 40])
    assert ds["f"].mean().item() == pytest.approx(70 / 3)
    np.testing.assert_array_equal(plain(path, engine)["f"].values, [10, 20, np.nan, 40])
    a.value = 2
    assert ps.run_process(f) == 20 and type(ps.run_process(f)) is int


INT_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def every_kind(a):
    """Scalars of every int width, unsigned and bool, at their extremes; holes at a=2, 3, 4."""
    if a == 2:
        raise ValueError("failed")
    if a == 3:
        raise xs.SkipCell("skipped")
    if a == 4:
        return None
    out = {
        f"v_{np.dtype(t).name}": t(np.iinfo(t).min if a == 0 else np.iinfo(t).max)
        for t in INT_TYPES
    }
    out["flag"] = a == 1
    out["arr"] = np.array([a, -a, 7], dtype=np.int16)
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_failed_skipped_and_none_cells_of_every_int_kind_are_missing(tmp_path, engine):
    path = tmp_path / "k.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2, 3, 4])])
    ps.enable_cache(path)
    ds = quiet(ps.sweep, every_kind, progress=False)
    for source in (ds, plain(path, engine)):
        for t in INT_TYPES:
            info = np.iinfo(t)
            got = source[f"v_{np.dtype(t).name}"].values
            if np.dtype(t).itemsize == 8:
                # its maximum is beyond 2**53, which float64 would round: exact Python ints
                # and NaN in the Dataset, raw values in the file (docs/outputs.md)
                assert [int(v) for v in got[:2]] == [int(info.min), int(info.max)], (t, got)
                if source is ds:
                    assert got.dtype == object and np.isnan(got[2:].astype(float)).all()
                else:
                    assert got.dtype == t and "xsweep_holes" in source[f"v_{got.dtype}"].attrs
                continue
            assert got.dtype.kind == "f", (t, got.dtype)
            assert np.isnan(got[2:]).all(), (t, got)
            # the extremes are real values: the fill chosen for the file is another value
            assert got[0] == float(info.min) and got[1] == float(info.max), (t, got)
        np.testing.assert_array_equal(source["flag"].values, [0, 1, np.nan, np.nan, np.nan])
        arr = source["arr"].values
        np.testing.assert_array_equal(arr[:2], [[0, 0, 7], [1, -1, 7]])
        assert np.isnan(arr[2:]).all()
    assert ds["v_uint8"].dtype == np.float32 and ds["v_int32"].dtype == np.float64
    assert ds["v_uint8"].attrs["xsweep_dtype"] == "uint8"
    with netCDF4.Dataset(path) as nc:  # a fill no real value equals, and the status linked
        assert nc["v_int8"].getncattr("_FillValue") not in (-128, 127)
        assert nc["v_int8"].getncattr("ancillary_variables") == "every_kind_status"
    # xsweep itself reads its file back exactly
    ps2 = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2, 3, 4])])
    ps2.enable_cache(path)
    ps2["a"].value = 0
    back = ps2.run_process(every_kind)
    assert back["v_int64"] == np.iinfo(np.int64).min and back["flag"] is False
    ps2["a"].value = 1
    assert ps2.run_process(every_kind)["v_uint64"] == np.iinfo(np.uint64).max


def test_a_complete_sweep_keeps_its_int_dtypes_and_holes_go_when_filled(tmp_path):
    path = tmp_path / "c.nc"
    a = xs.Parameter("a", values=[1, 2, 3])
    b = xs.Parameter("b", values=[10, 20])
    ps = xs.ParameterSpace([a, b])
    ps.enable_cache(path)

    def g(a, b):
        return {"n": a * b, "img": np.full((4, 5, 3), a + b, np.uint8), "ok": a > 1}

    a.value = 2
    ps.sweep(g, params=["b"], progress=False)  # a partial sweep: a=2 only
    for engine in ENGINES:
        f = plain(path, engine)
        assert np.isnan(f["n"].sel(a=1)).all() and np.isnan(f["ok"].sel(a=3)).all()
        assert f["ok"].sel(a=2).values.tolist() == [1.0, 1.0]
        assert np.isnan(f["img"].sel(a=1)).all() and f["img"].sel(a=2, b=20).values.max() == 22
    ds = ps.sweep(g, progress=False)
    assert ds["n"].dtype == np.int64 and ds["img"].dtype == np.uint8 and ds["ok"].dtype == bool
    for engine in ENGINES:
        f = plain(path, engine)
        assert f["n"].dtype == np.int64 and f["img"].dtype == np.uint8 and f["ok"].dtype == bool


def test_a_stopped_background_sweep_leaves_its_cells_missing(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=range(40))])
    ps.enable_cache(tmp_path / "s.nc")
    started = threading.Event()
    release = threading.Event()

    def slow(a):
        if a == 3:
            started.set()
            release.wait(30)
        time.sleep(0.05)
        return a + 100

    job = ps.sweep_async(slow, progress=False)
    assert started.wait(30)
    stopper = threading.Thread(target=job.stop)
    stopper.start()
    release.set()
    stopper.join(60)
    ds = job.result(timeout=60)
    done = ds["slow_status"].values == 1
    assert 0 < done.sum() < 40
    values = ds["slow"].values
    assert (values[done] == np.arange(40)[done] + 100).all()
    assert np.isnan(values[~done]).all()
    np.testing.assert_array_equal(plain(tmp_path / "s.nc")["slow"].values, values)


def test_lazy_and_parallel_results_mask_holes_too(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=range(6))])
    ps.enable_cache(tmp_path / "p.nc")

    def h(a):
        if a % 3 == 0:
            raise ValueError("no")
        return np.arange(300, dtype=np.int32) + a  # 1.2 kB cells: may be kept on disk

    ds = quiet(ps.sweep, h, workers=2, progress=False)
    lazy = ps.sweep(h, lazy=True, progress=False)
    assert lazy["h"].dtype == np.float64
    for got in (ds["h"].values, lazy["h"].values, lazy["h"].isel(a=[0, 4]).values):
        assert got.dtype == np.float64
    np.testing.assert_array_equal(lazy["h"].isel(a=[0, 4]).values[1], np.arange(300) + 4)
    assert np.isnan(lazy["h"].isel(a=0)).all() and np.isnan(lazy["h"].values[3]).all()
    assert (ds["h"].values[1] == np.arange(300) + 1).all()
    streamed = xs.ParameterSpace([xs.Parameter("a", values=range(6))])
    streamed.enable_cache(tmp_path / "q.nc", memory_budget=4000)
    st = quiet(streamed.sweep, h, progress=False)
    assert np.isnan(st["h"].isel(a=3)).all() and st["h"].isel(a=2).values[0] == 2


def test_ragged_int_padding_reads_as_missing(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("n", values=[2, 4, 3])])
    ps.enable_cache(path)

    def trace(n):
        return np.arange(n, dtype=np.int64) * 10

    ds = ps.sweep(trace, progress=False)
    want = [[0, 10, np.nan, np.nan], [0, 10, 20, 30], [0, 10, 20, np.nan]]
    np.testing.assert_array_equal(ds["trace"].values, want)
    for engine in ENGINES:
        np.testing.assert_array_equal(plain(path, engine)["trace"].values, want)
    ps["n"].value = 3
    back = ps.run_process(trace)
    assert back.dtype == np.int64 and back.tolist() == [0, 10, 20]


def test_a_uint8_image_that_uses_every_byte_keeps_raw_bytes_and_the_status_says(tmp_path):
    path = tmp_path / "img.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2])])
    ps.enable_cache(path)

    def picture(a):
        if a == 1:
            raise ValueError("no picture")
        return (np.arange(256 * 3, dtype=np.uint16).reshape(16, 16, 3) + a).astype(np.uint8)

    ds = quiet(ps.sweep, picture, progress=False)
    assert ds["picture"].dtype == np.float32 and np.isnan(ds["picture"].sel(a=1)).all()
    f = plain(path)
    assert f["picture"].dtype == np.uint8  # no value is free: none is stolen (255 is white)
    assert "picture_status" in f["picture"].attrs["xsweep_holes"]
    assert f["picture"].attrs["ancillary_variables"] == "picture_status"
    np.testing.assert_array_equal(f["picture"].sel(a=2).values, picture(2))
    # xsweep's montage draws the float image as the 0-255 pixels it holds
    sheet = np.asarray(xs.montage(ds["picture"].sel(a=[0, 2]), col="a", label=False, pad=0))
    np.testing.assert_array_equal(sheet[:, :16], picture(0))
    np.testing.assert_array_equal(sheet[:, 16:], picture(2))


def test_a_dark_float_image_from_a_plain_reader_is_drawn_as_pixels(tmp_path):
    path = tmp_path / "dark.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1, 2])])
    ps.enable_cache(path)

    def dark(a):
        if a == 2:
            raise ValueError("no")
        return np.full((8, 8, 3), a, dtype=np.uint8)  # pixels 0 and 1: nearly black

    ds = quiet(ps.sweep, dark, progress=False)
    for source in (ds["dark"], plain(path)["dark"]):
        assert source.dtype == np.float32
        sheet = np.asarray(xs.montage(source.sel(a=[0, 1]), col="a", label=False, pad=0))
        assert sheet.max() == 1  # 1 is a pixel value, not 100% of a 0-1 range


def test_a_big_staged_image_sweep_masks_its_small_int_outputs(tmp_path):
    path = tmp_path / "big.nc"
    ps = xs.ParameterSpace([xs.Parameter("i", values=range(12))])
    ps.enable_cache(path)

    def frame(i):
        if i == 5:
            raise ValueError("bad frame")
        img = np.full((300, 400, 3), 200, dtype=np.uint8)  # 360 kB: a staged big cell
        img[0, 0, 0] = i
        return {"img": img, "count": i * 3, "odd": i % 2 == 1}

    ds = quiet(ps.sweep, frame, progress=False)
    assert np.isnan(ds["count"].values[5]) and ds["count"].values[4] == 12
    for engine in ENGINES:
        f = plain(path, engine)
        assert np.isnan(f["count"].values[5]) and f["count"].values[4] == 12
        assert np.isnan(f["odd"].values[5]) and f["odd"].values[3] == 1
        # written in place as cells arrived; a free value marks the hole when they are in
        assert f["img"].values[4, 0, 0, 0] == 4 and np.isnan(f["img"][5]).all()
        assert "xsweep_holes" not in f["img"].attrs


def test_open_tree_reads_a_missing_run_of_ints_as_missing(tmp_path):
    for length in (1, 2):
        for width in (1, 2):
            if (length, width) == (2, 2):
                continue  # never ran
            folder = tmp_path / f"length={length}" / f"width={width}"
            folder.mkdir(parents=True)
            (folder / "out.json").write_text(json.dumps({"steps": length * 10 + width}))
    ds = xs.open_tree(str(tmp_path / "length={length}" / "width={width}" / "out.json"))
    assert np.isnan(ds["out_steps"].sel(length=2, width=2).item())
    assert ds["out_steps"].sel(length=2, width=1).item() == 21


# ---------------------------------------------------------------------------------------------
# Text inside DataArray and Dataset outputs
# ---------------------------------------------------------------------------------------------
TEXTS = ["ab", "", "grüße, 東京 ✓", "a much longer piece of text " * 20]


@pytest.mark.parametrize("engine", ENGINES)
def test_text_inside_dataarray_and_dataset_outputs_is_stored(tmp_path, engine):
    path = tmp_path / "s.nc"
    m = xs.Parameter("m", values=list(range(len(TEXTS))))
    ps = xs.ParameterSpace([m])
    ps.enable_cache(path)

    def f1(m):
        return xr.DataArray(TEXTS[m])

    def f2(m):
        return xr.Dataset(
            {"words": ("k", np.array([TEXTS[m], TEXTS[-1 - m], "é"])), "n": len(TEXTS[m])}
        )

    first = ps.sweep(f1, progress=False)
    assert first["f1"].values.tolist() == TEXTS
    assert ps.sweep(f1, progress=False)["f1"].values.tolist() == TEXTS
    ds = ps.sweep(f2, progress=False)
    assert ds["words"].values[:, 0].tolist() == TEXTS
    assert plain(path, engine)["f1"].values.tolist() == TEXTS
    assert plain(path, engine)["words"].values[:, 1].tolist() == TEXTS[::-1]
    ps2 = xs.ParameterSpace([m])
    ps2.enable_cache(path)
    m.value = 2
    assert ps2.run_process(f1).item() == TEXTS[2]
    assert ps2.run_process(f2)["words"].values.tolist() == [TEXTS[2], TEXTS[1], "é"]


# ---------------------------------------------------------------------------------------------
# Ragged DataArray and Dataset outputs
# ---------------------------------------------------------------------------------------------
def series(n):
    t = np.arange(n) * 0.5
    return xr.DataArray(np.arange(n) * 2, dims="t", coords={"t": t}, attrs={"units": "m"})


def both(n):
    return xr.Dataset(
        {"x": ("s", np.arange(n) * 1.5), "k": ("s", np.arange(n, dtype=np.int32)), "count": n},
        coords={"s": np.arange(n) + 100},
    )


@pytest.mark.parametrize("cached", [False, True])
def test_ragged_dataarray_and_dataset_outputs_are_padded_like_arrays(tmp_path, cached):
    path = tmp_path / "r.nc"
    n = xs.Parameter("n", values=[2, 4, 3])
    ps = xs.ParameterSpace([n])
    if cached:
        ps.enable_cache(path)
    ds = ps.sweep(series, progress=False)
    np.testing.assert_array_equal(
        ds["series"].values, [[0, 2, np.nan, np.nan], [0, 2, 4, 6], [0, 2, 4, np.nan]]
    )
    assert ds["t"].values.tolist() == [0.0, 0.5, 1.0, 1.5]  # from the longest cell
    assert ds["series"].attrs["units"] == "m"
    ds2 = ps.sweep(both, progress=False)
    assert np.isnan(ds2["k"].values[0, 2:]).all() and ds2["k"].values[1].tolist() == [0, 1, 2, 3]
    assert ds2["x"].values[2].tolist()[:3] == [0.0, 1.5, 3.0] and np.isnan(ds2["x"].values[2, 3])
    n.value = 3
    got = ps.run_process(series)
    xr.testing.assert_identical(got.rename(None), series(3))
    got = ps.run_process(both)
    xr.testing.assert_identical(got, both(3))
    if cached:
        for engine in ENGINES:
            f = plain(path, engine)
            assert np.isnan(f["series"].values[0, 2:]).all() and f["series"].values[1, 3] == 6
        ps2 = xs.ParameterSpace([n])
        ps2.enable_cache(path)
        n.value = 2
        xr.testing.assert_identical(ps2.run_process(series).rename(None), series(2))
        xr.testing.assert_identical(ps2.run_process(both), both(2))


def test_a_program_whose_json_list_varies_in_length_is_swept(tmp_path):
    for run in (1, 2, 3):
        folder = tmp_path / f"run={run}"
        folder.mkdir()
        (folder / "out.json").write_text(json.dumps({"trace": list(range(run))}))
    ds = xs.open_tree(str(tmp_path / "run={run}" / "out.json"))
    values = ds["out_trace"].values
    assert values[2].tolist() == [0, 1, 2] and np.isnan(values[0, 1:]).all()


# ---------------------------------------------------------------------------------------------
# datetime.datetime and datetime.timedelta
# ---------------------------------------------------------------------------------------------
def when(n):
    if n == 2:
        raise ValueError("no time")
    return datetime.datetime(2024, 1, n, 12, 30, 0, 5)


def took(n):
    return {"took": datetime.timedelta(seconds=n * 1.5), "at": datetime.datetime(2021, 5, n)}


@pytest.mark.parametrize("cached", [False, True])
def test_datetime_and_timedelta_returns_are_stored_as_times(tmp_path, cached):
    path = tmp_path / "t.nc"
    n = xs.Parameter("n", values=[1, 2, 3])
    ps = xs.ParameterSpace([n])
    if cached:
        ps.enable_cache(path)
    ds = quiet(ps.sweep, when, progress=False)
    assert ds["when"].dtype.kind == "M"
    assert ds["when"].values[0] == np.datetime64("2024-01-01T12:30:00.000005")
    assert np.isnat(ds["when"].values[1])
    ds2 = ps.sweep(took, progress=False)
    assert ds2["took"].dtype.kind == "m" and ds2["took"].values[2] == np.timedelta64(4500, "ms")
    n.value = 3
    assert ps.run_process(when) == datetime.datetime(2024, 1, 3, 12, 30, 0, 5)
    assert ps.run_process(took) == {
        "took": datetime.timedelta(seconds=4.5),
        "at": datetime.datetime(2021, 5, 3),
    }
    if cached:
        for engine in ENGINES:
            f = plain(path, engine)
            assert f["when"].values[2] == np.datetime64("2024-01-03T12:30:00.000005")
            assert np.isnat(f["when"].values[1])
            assert f["took"].values[0] == np.timedelta64(1500, "ms")
        ps2 = xs.ParameterSpace([n])
        ps2.enable_cache(path)
        n.value = 1
        back = ps2.run_process(took)
        assert back["at"] == datetime.datetime(2021, 5, 1) and type(back["at"]) is datetime.datetime
        lazy = ps2.sweep(when, lazy=True, progress=False)
        assert lazy["when"].values[0] == np.datetime64("2024-01-01T12:30:00.000005")


def test_a_datetime_with_a_time_zone_is_refused_with_the_way_out():
    ps = xs.ParameterSpace([xs.Parameter("n", values=[1, 2])])
    tz = datetime.timezone(datetime.timedelta(hours=2))
    with pytest.raises(xs.OutputError, match=r"astimezone\(datetime.timezone.utc\)"):
        ps.sweep(lambda n: datetime.datetime(2024, 1, n, tzinfo=tz), name="zoned")
    # the way out works
    fixed = ps.sweep(
        lambda n: (
            datetime.datetime(2024, 1, n, tzinfo=tz)
            .astimezone(datetime.timezone.utc)
            .replace(tzinfo=None)
        ),
        name="zoned",
    )
    assert fixed["zoned"].values[0] == np.datetime64("2023-12-31T22:00")


# ---------------------------------------------------------------------------------------------
# After a real SIGKILL: the journal's cells come back, text and holes included
# ---------------------------------------------------------------------------------------------
CHILD = """
import os, signal, sys
import numpy as np
import xarray as xr
import xsweep as xs

TEXTS = ["", "grüße ✓", "abc" * 30, "x"]


def labelled(a):
    if os.environ.get("CALLS"):
        with open(os.environ["CALLS"], "a") as log:
            log.write(f"{a}\\n")
    if a == 5 and os.environ.get("KILL_AT_5"):
        os.kill(os.getpid(), signal.SIGKILL)
    if a == 2:
        raise ValueError("no label")
    return xr.Dataset({"label": xr.DataArray(TEXTS[a % 4]), "count": np.int16(a * 3)})


def space(path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=range(8))])
    ps.enable_cache(path, fsync_interval=None)
    return ps


if __name__ == "__main__":
    space(sys.argv[1]).sweep(labelled, progress=False)
"""


def test_text_and_int_holes_survive_a_sigkill_and_resume(tmp_path, monkeypatch):
    import subprocess
    import sys

    (tmp_path / "kid.py").write_text(CHILD)
    path = tmp_path / "k.nc"
    env = {**__import__("os").environ, "KILL_AT_5": "1"}
    child = subprocess.run(
        [sys.executable, str(tmp_path / "kid.py"), str(path)], env=env, capture_output=True
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    monkeypatch.syspath_prepend(str(tmp_path))
    kid = __import__("kid")
    ps = kid.space(path)
    monkeypatch.setenv("CALLS", str(tmp_path / "calls"))
    ds = quiet(ps.sweep, kid.labelled, progress=False)
    # cells 0-4 came back from the journal; the failed one is retried
    assert sorted(map(int, (tmp_path / "calls").read_text().split())) == [2, 5, 6, 7]
    texts = [kid.TEXTS[a % 4] if a != 2 else "" for a in range(8)]
    assert ds["label"].values.tolist() == texts
    counts = ds["count"].values
    assert counts.dtype == np.float32 and np.isnan(counts[2])
    assert counts[[0, 1, 3, 4, 5, 6, 7]].tolist() == [0, 3, 9, 12, 15, 18, 21]
    f = plain(path)
    assert f["label"].values.tolist() == texts and np.isnan(f["count"].values[2])
    ps["a"].value = 1
    assert ps.run_process(kid.labelled)["label"].item() == kid.TEXTS[1]
