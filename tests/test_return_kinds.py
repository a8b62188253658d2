"""Return values people write (issue 12): lists, images, pandas, times, complex numbers, JSON.

Each kind is stored natively in the NetCDF file (never pickled), read by plain
``xarray.open_dataset`` as a colleague expects, and given back by ``run_process`` from the
cache exactly as the function returned it.
"""

from __future__ import annotations

import functools
import json
import math
from concurrent.futures import ThreadPoolExecutor

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xsweep as xs
from xsweep.errors import OutputError

BOOKKEEPING = ("_status", "_seconds", "_error", "_messages")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def make_space() -> xs.ParameterSpace:
    return xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])


def counted(fn):
    """``fn`` (same name, so the same cache key) counting its calls in ``.calls``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return fn(*args, **kwargs)

    wrapper.calls = 0
    return wrapper


def open_plain(path) -> xr.Dataset:
    """The file as a colleague without xsweep reads it (decoding defaults)."""
    with xr.open_dataset(path) as ds:
        return ds.load()


def outputs(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without the bookkeeping variables (their timings differ from run to run)."""
    return ds.drop_vars([k for k in ds.data_vars if k.endswith(BOOKKEEPING)])


def roundtrip(tmp_path, fn, **sweep_kwargs):
    """Sweep ``fn`` into a cache; then, in a new space on the same file, ``run_process(a=2)``.

    Returns the swept Dataset, what ``run_process`` gave (``fn`` not called) and the file
    opened with plain xarray.
    """
    path = tmp_path / "r.nc"
    ps = make_space()
    ps.enable_cache(path)
    ds = ps.sweep(fn, progress=False, **sweep_kwargs)
    ps.disable_cache()
    ps2 = make_space()
    ps2.enable_cache(path)
    fn.calls = 0
    back = ps2.run_process(fn, a=2)
    assert fn.calls == 0, "run_process recomputed a cell the cache holds"
    ps2.disable_cache()
    return ds, back, open_plain(path)


def assert_no_pickles(path) -> None:
    """Every variable of the file is a number or a string: nothing opaque."""
    with netCDF4.Dataset(path) as nc:
        for var in nc.variables.values():
            # text: NC_STRING (coordinates) or a UTF-8 char array (outputs, messages)
            text = var.dtype is str or (var.dtype == "S1" and var.getncattr("_Encoding") == "utf-8")
            assert text or np.dtype(var.dtype).kind in "biuf", var.name


# ---------------------------------------------------------------------------------------------
# lists and tuples of numbers: arrays
# ---------------------------------------------------------------------------------------------
@counted
def profile(a):
    return [a / 2, a * 1.5, 3.0]


@counted
def lists(a):
    return {
        "pair": (a, 2 * a),
        "grid": [[a, 1], [2, 3]],
        "flags": [a > 1, True],
        "words": ["x", "y" * a],
        "rows": [np.arange(2.0) + a, np.zeros(2)],
    }


def test_a_list_of_numbers_is_an_array_and_comes_back_a_list(tmp_path):
    ds, back, plain = roundtrip(tmp_path, profile)
    assert ds["profile"].dims == ("a", "profile_dim_0")
    assert ds["profile"].dtype == np.float64
    assert ds["profile"].values.tolist() == [profile(a) for a in (1, 2, 3)]
    assert type(back) is list and back == profile(2)
    assert all(type(v) is float for v in back)
    assert plain["profile"].dtype == np.float64
    assert plain["profile"].values.tolist() == ds["profile"].values.tolist()
    assert_no_pickles(tmp_path / "r.nc")


def test_lists_and_tuples_in_a_dict_keep_their_dtypes_and_containers(tmp_path):
    ds, back, plain = roundtrip(tmp_path, lists)
    assert ds["pair"].dtype == np.int64 and ds["pair"].shape == (3, 2)
    assert ds["grid"].dims == ("a", "grid_dim_0", "grid_dim_1")
    assert ds["flags"].dtype == bool and ds["flags"].values.tolist() == [
        [False, True],
        [True, True],
        [True, True],
    ]
    assert ds["words"].values.tolist() == [["x", "y"], ["x", "yy"], ["x", "yyy"]]
    assert ds["rows"].shape == (3, 2, 2)
    expected = lists(2)
    assert back.keys() == expected.keys()
    assert back["pair"] == (2, 4) and type(back["pair"]) is tuple
    assert back["grid"] == [[2, 1], [2, 3]] and type(back["grid"][0]) is list
    assert back["flags"] == [True, True] and type(back["flags"][0]) is bool
    assert back["words"] == ["x", "yy"]
    # a list of arrays comes back a list of arrays
    assert type(back["rows"]) is list and len(back["rows"]) == 2
    for got, want in zip(back["rows"], expected["rows"]):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert plain["pair"].dtype == np.int64 and plain["flags"].dtype == bool
    assert plain["words"].values.tolist() == ds["words"].values.tolist()


def test_a_list_of_another_length_in_a_later_cell_is_the_usual_shape_error():
    def grows(a):
        return [1.0] * a

    with pytest.raises(OutputError, match=r"shape \(2,\) where earlier cells gave shape \(1,\)"):
        make_space().sweep(grows, progress=False)


# ---------------------------------------------------------------------------------------------
# PIL images
# ---------------------------------------------------------------------------------------------
def _pixels(a, channels):
    shape = (4, 5, channels) if channels > 1 else (4, 5)
    return ((np.arange(np.prod(shape)).reshape(shape) * a) % 256).astype(np.uint8)


@counted
def photo(a):
    from PIL import Image

    return Image.fromarray(_pixels(a, 3))


@counted
def gray(a):
    from PIL import Image

    return {"gray": Image.fromarray(_pixels(a, 1)), "mean": float(a)}


def test_a_pil_image_is_a_uint8_array_with_named_dims_and_comes_back_an_image(tmp_path):
    pytest.importorskip("PIL")
    ds, back, plain = roundtrip(tmp_path, photo)
    assert ds["photo"].dims == ("a", "y", "x", "rgb")
    assert ds["photo"].dtype == np.uint8
    np.testing.assert_array_equal(ds["photo"].sel(a=3).values, _pixels(3, 3))
    want = photo(2)
    assert back.mode == "RGB" and back.size == want.size
    assert back.tobytes() == want.tobytes()
    assert plain["photo"].dims == ("a", "y", "x", "rgb") and plain["photo"].dtype == np.uint8
    np.testing.assert_array_equal(plain["photo"].values, ds["photo"].values)


def test_a_gray_image_in_a_dict_has_no_band_dim_and_output_dims_rename_it(tmp_path):
    pytest.importorskip("PIL")
    ds, back, plain = roundtrip(tmp_path, gray, output_dims={"gray": ("row", "col")})
    assert ds["gray"].dims == ("a", "row", "col") and ds["gray"].dtype == np.uint8
    assert back["gray"].mode == "L" and back["gray"].tobytes() == gray(2)["gray"].tobytes()
    assert back["mean"] == 2.0
    assert plain["gray"].dims == ("a", "row", "col")


def test_an_image_of_another_size_or_mode_in_a_later_cell_is_refused():
    image = pytest.importorskip("PIL.Image")

    def resized(a):
        return image.new("RGB", (4 + a, 3))

    def remoded(a):
        return image.new("RGB" if a == 1 else "L", (4, 3))

    with pytest.raises(OutputError, match="shape"):
        make_space().sweep(resized, progress=False)
    with pytest.raises(OutputError, match=r"mode 'L'.*convert\('RGB'\)"):
        make_space().sweep(remoded, progress=False)


# ---------------------------------------------------------------------------------------------
# pandas
# ---------------------------------------------------------------------------------------------
@counted
def spectrum(a):
    index = pd.Index([0.5, 1.0, 2.0], name="freq")
    return pd.Series([a, a / 2, a / 4], index=index, name="power")


@counted
def unnamed(a):
    return pd.Series([a, 2 * a, 3 * a])


@counted
def table(a):
    days = pd.date_range("2024-01-01", periods=3, freq="D", name="day")
    return pd.DataFrame(
        {
            "count": [a, 2 * a, 3],
            "mean": [a / 3, 0.5, 1.5],
            "label": ["lo", "mid", "hi"],
            "note": pd.Series(["p", "q", "r" * a], dtype=object, index=days),  # object, not str
        },
        index=days,
    )


def test_a_series_is_stored_over_its_index_and_comes_back_equal(tmp_path):
    ds, back, plain = roundtrip(tmp_path, spectrum)
    assert ds["power"].dims == ("a", "freq")
    assert ds["freq"].values.tolist() == [0.5, 1.0, 2.0]
    assert ds["power"].sel(a=3).values.tolist() == [3.0, 1.5, 0.75]
    assert isinstance(back, pd.Series)
    pd.testing.assert_series_equal(back, spectrum(2), check_exact=True)
    assert plain["power"].dims == ("a", "freq")
    assert plain["freq"].values.tolist() == [0.5, 1.0, 2.0]


def test_an_unnamed_series_is_named_after_the_function_over_an_index_dim(tmp_path):
    ds, back, plain = roundtrip(tmp_path, unnamed)
    assert ds["unnamed"].dims == ("a", "index") and ds["unnamed"].dtype == np.int64
    pd.testing.assert_series_equal(back, unnamed(2), check_exact=True)
    assert back.name is None and back.index.name is None
    assert isinstance(back.index, pd.RangeIndex)
    assert plain["unnamed"].values.tolist() == [[1, 2, 3], [2, 4, 6], [3, 6, 9]]


def test_a_dataframe_is_one_variable_per_column_and_comes_back_equal(tmp_path):
    ds, back, plain = roundtrip(tmp_path, table)
    names = [k for k in ds.data_vars if not k.endswith(BOOKKEEPING)]
    assert names == ["count", "mean", "label", "note"]
    assert ds["count"].dims == ("a", "day") and ds["count"].dtype == np.int64
    assert ds["label"].values.tolist()[0] == ["lo", "mid", "hi"]
    assert isinstance(back, pd.DataFrame)
    pd.testing.assert_frame_equal(back, table(2), check_exact=True)
    assert back.index.freqstr == "D"
    # a colleague sees the dates, decoded
    assert plain["day"].dtype.kind == "M"
    assert plain["day"].values.astype("M8[D]").astype(str).tolist() == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
    ]
    assert plain["label"].values.tolist() == ds["label"].values.tolist()


def test_a_series_with_another_index_in_a_later_cell_is_refused():
    def shifting(a):
        return pd.Series([1.0, 2.0], index=[a, a + 1])

    with pytest.raises(OutputError, match="same index"):
        make_space().sweep(shifting, progress=False)


# ---------------------------------------------------------------------------------------------
# datetime64 and timedelta64
# ---------------------------------------------------------------------------------------------
@counted
def timing(a):
    start = np.datetime64("2024-03-01T12:00:00", "s")
    return {
        "when": start + np.timedelta64(a, "h"),
        "took": np.timedelta64(250 * a, "ms"),
        "days": np.array(["2024-01-01", "2024-06-01"], dtype="M8[D]") + a,
    }


def test_times_are_cf_encoded_ints_that_plain_xarray_decodes_with_nat_for_missing(tmp_path):
    ds, back, plain = roundtrip(tmp_path, timing, cells={"a": [1, 2]})
    # the swept Dataset: numpy times, NaT where nothing was computed
    assert ds["when"].dtype.kind == "M" and ds["took"].dtype.kind == "m"
    assert ds["when"].values[0] == np.datetime64("2024-03-01T13:00:00")
    assert np.isnat(ds["took"].values[2])
    assert ds["days"].dims == ("a", "days_dim_0")
    # in the file: int64 counts with CF units
    with netCDF4.Dataset(tmp_path / "r.nc") as nc:
        assert nc["when"].dtype == np.int64
        assert nc["when"].units == "seconds since 1970-01-01"
        assert nc["took"].units == "milliseconds"
    # run_process: numpy times again, in the same unit
    want = timing(2)
    assert isinstance(back["when"], np.datetime64) and back["when"].dtype == want["when"].dtype
    assert back["when"] == want["when"]
    assert isinstance(back["took"], np.timedelta64) and back["took"].dtype == np.dtype("m8[ms]")
    assert back["took"] == want["took"]
    assert back["days"].dtype == np.dtype("M8[D]")
    np.testing.assert_array_equal(back["days"], want["days"])
    # a colleague: datetime64 and timedelta64, NaT where nothing was computed
    assert plain["when"].dtype.kind == "M" and plain["took"].dtype.kind == "m"
    assert plain["when"].values[1] == np.datetime64("2024-03-01T14:00:00")
    assert plain["took"].values[0] == np.timedelta64(250, "ms")
    assert np.isnat(plain["when"].values[2]) and np.isnat(plain["took"].values[2])
    assert np.isnat(plain["days"].values[2]).all() and not np.isnat(plain["days"].values[:2]).any()
    # other CF readers see the missing value too: netCDF4 masks it
    with netCDF4.Dataset(tmp_path / "r.nc") as nc:
        assert nc["when"].missing_value == np.iinfo(np.int64).min
        assert np.ma.getmaskarray(nc["when"][:]).tolist() == [False, False, True]


@counted
def stamped(a):
    times = np.array(["2024-01-01T00:00", "2024-01-02T00:00"], dtype="M8[ns]")
    return xr.Dataset(
        {"t": ("k", times + np.timedelta64(a, "m")), "v": ("k", [a, 2.0], {"units": "V"})},
        coords={"k": [10, 20]},
    )


def test_times_in_a_returned_dataset_come_back_identical(tmp_path):
    ds, back, plain = roundtrip(tmp_path, stamped)
    xr.testing.assert_identical(back, stamped(2))
    assert plain["t"].dtype == np.dtype("M8[ns]")


def test_a_time_in_another_unit_converts_when_safe_and_is_refused_otherwise():
    def finer(a):
        return np.datetime64("2024-01-01", "D") if a == 1 else np.datetime64("2024-01-01", "ns")

    def coarser(a):
        return np.datetime64("2024-01-01T00:00", "s") if a == 1 else np.datetime64(a, "D")

    with pytest.raises(OutputError, match=r"datetime64\[D\]"):
        make_space().sweep(finer, progress=False)
    ds = make_space().sweep(coarser, progress=False)
    assert xr.decode_cf(ds)["coarser"].values[2] == np.datetime64("1970-01-04")


# ---------------------------------------------------------------------------------------------
# complex numbers
# ---------------------------------------------------------------------------------------------
@counted
def impedance(a):
    return {
        "z": complex(a, -a),
        "modes": np.array([a, 1j * a, -a], dtype=np.complex64),
    }


@counted
def field(a):
    return xr.DataArray(
        np.array([1 + 2j, a - 1j]),
        dims=["k"],
        coords={"k": [0.1, 0.2]},
        attrs={"units": "V"},
        name="e",
    )


def test_complex_values_are_float_pairs_along_a_real_imag_dim(tmp_path):
    ds, back, plain = roundtrip(tmp_path, impedance)
    assert ds["z"].dims == ("a", "z_complex") and ds["z"].dtype == np.float64
    assert ds["z"].values.tolist() == [[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]]
    assert ds["modes"].dims == ("a", "modes_dim_0", "modes_complex")
    assert ds["modes"].dtype == np.float32
    assert ds["z_complex"].values.tolist() == ["real", "imag"]
    assert "real" in ds["z"].attrs["comment"]
    want = impedance(2)
    assert type(back["z"]) is complex and back["z"] == want["z"]
    assert back["modes"].dtype == np.complex64
    np.testing.assert_array_equal(back["modes"], want["modes"])
    # a colleague: the float pairs, labelled
    assert plain["z"].dims == ("a", "z_complex")
    assert plain["z_complex"].values.tolist() == ["real", "imag"]
    assert plain["z"].sel(z_complex="imag").values.tolist() == [-1.0, -2.0, -3.0]
    assert "comment" in plain["z"].attrs


def test_a_complex_dataarray_comes_back_identical(tmp_path):
    ds, back, plain = roundtrip(tmp_path, field)
    assert ds["e"].dims == ("a", "k", "e_complex")
    xr.testing.assert_identical(back, field(2))
    assert plain["e"].attrs["units"] == "V"


def test_output_dims_of_a_complex_output_name_the_pair_dim_too(tmp_path):
    def modes(a):
        return np.array([a, 1j * a])

    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    with pytest.raises(OutputError, match=r"\(real, imag\) pair.*\('k', 'modes_complex'\)"):
        ps.sweep(modes, output_dims={"modes": ("k",)}, progress=False)
    for _ in range(2):  # the same call again finds the stored structure
        ds = ps.sweep(modes, output_dims={"modes": ("k", "part")}, progress=False)
        assert ds["modes"].dims == ("a", "k", "part")
        assert ds["part"].values.tolist() == ["real", "imag"]


# ---------------------------------------------------------------------------------------------
# nested JSON-like values
# ---------------------------------------------------------------------------------------------
@counted
def tinc(a):
    return [a, {"more_data": [1, 2, 3]}]  # what TINC's caching notebook returns


@counted
def report(a):
    info = {"name": f"run {a}", "ok": a != 3, "scores": [1.5, float("nan")], "none": None}
    return {"info": info, "tags": ("x", 1), "text": "nul \0, é and a lone \udcff"}


def test_a_nested_value_is_json_text_a_colleague_reads_as_strings(tmp_path):
    ds, back, plain = roundtrip(tmp_path, tinc)
    assert ds["tinc"].dims == ("a",)
    assert ds["tinc"].attrs["xsweep_encoding"] == "json"
    assert [json.loads(v) for v in ds["tinc"].values] == [tinc(a) for a in (1, 2, 3)]
    assert back == tinc(2)
    assert plain["tinc"].dtype.kind in "OU"
    assert json.loads(plain["tinc"].values[2]) == [3, {"more_data": [1, 2, 3]}]
    assert_no_pickles(tmp_path / "r.nc")


def test_a_dict_holding_a_dict_is_one_json_value_given_back_decoded(tmp_path):
    ds, back, _ = roundtrip(tmp_path, report)
    assert [k for k in ds.data_vars if not k.endswith(BOOKKEEPING)] == ["report"]
    want = report(2)
    assert back["info"]["scores"][0] == 1.5 and math.isnan(back["info"]["scores"][1])
    assert back["info"]["name"] == "run 2" and back["info"]["none"] is None
    assert back["tags"] == ["x", 1]  # a tuple in JSON comes back a list
    assert back["text"] == want["text"]  # NULs and lone surrogates: escaped, kept exactly


def test_a_json_cell_may_be_any_json_value():
    def varied(a):
        return [None, {"a": {"b": None}}, [a, "x"], "text"][a]

    ds = make_space().sweep(varied, progress=False)
    assert [json.loads(v) for v in ds["varied"].values] == [{"a": {"b": None}}, [2, "x"], "text"]


def test_a_dict_of_plain_values_keeps_one_variable_per_key():
    def flat(a):
        return {"x": float(a), "v": [a, 2 * a]}

    ds = make_space().sweep(flat, progress=False)
    assert ds["x"].dims == ("a",) and ds["v"].dims == ("a", "v_dim_0")


# ---------------------------------------------------------------------------------------------
# every kind: the same Dataset with a cache, without one, and in parallel
# ---------------------------------------------------------------------------------------------
KINDS = [profile, lists, spectrum, unnamed, table, timing, stamped, impedance, field, tinc, report]


@pytest.mark.parametrize("fn", KINDS + [photo, gray], ids=lambda fn: fn.__name__)
def test_memory_cached_and_parallel_sweeps_give_the_same_dataset(tmp_path, fn):
    if fn in (photo, gray):
        pytest.importorskip("PIL")
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    cached = outputs(ps.sweep(fn, progress=False))
    ps.disable_cache()
    memory = outputs(make_space().sweep(fn, progress=False))
    with ThreadPoolExecutor(2) as pool:
        parallel = outputs(make_space().sweep(fn, progress=False, executor=pool))
    xr.testing.assert_identical(memory, cached)
    xr.testing.assert_identical(parallel, cached)


# ---------------------------------------------------------------------------------------------
# what stays refused
# ---------------------------------------------------------------------------------------------
def _object(a):
    return object()


REFUSED = {
    "set": lambda a: {a, 2},
    "object": _object,
    "generator": lambda a: (i for i in range(a)),
    "bytes": lambda a: b"raw",
    # datetime.datetime and timedelta are stored (issue 21); a date alone is not
    "python-date": lambda a: __import__("datetime").date(2024, 1, a),
    "set-in-dict": lambda a: {"x": {a}},
}
REFUSED_JSON = {
    "set-in-json": lambda a: [a, {"s": {1, 2}}],
    "int-key-in-json": lambda a: {"x": {1: a}},
    "complex-in-json": lambda a: {"x": {"z": 1j}},
    "object-in-list": lambda a: [a, object()],
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_an_unsupported_value_is_refused_with_what_is_supported(tmp_path, kind):
    ps = make_space()
    ps.enable_cache(tmp_path / "r.nc")
    with pytest.raises(OutputError) as info:
        ps.sweep(REFUSED[kind], progress=False)
    text = str(info.value)
    for supported in ("numpy array", "list or tuple", "PIL image", "pandas Series", "JSON"):
        assert supported in text, text
    assert "np.asarray" in text or "np.datetime64" in text or "b.decode()" in text


@pytest.mark.parametrize("kind", sorted(REFUSED_JSON))
def test_a_value_json_cannot_hold_is_refused_naming_where_it_is(kind):
    with pytest.raises(OutputError) as info:
        make_space().sweep(REFUSED_JSON[kind], progress=False)
    text = str(info.value)
    assert "JSON" in text and ("[" in text or "top" in text)


def test_values_a_file_has_no_type_for_are_refused_with_how_to_convert():
    cases = {
        "float16 list": (lambda a: [np.float16(a)], r"float16.*astype\(np.float32\)"),
        "weeks": (lambda a: np.timedelta64(a, "W"), r"timedelta64\[W\].*astype"),
        "clongdouble": (lambda a: np.ones(2, np.clongdouble), r"astype\(np.complex128\)"),
        "nullable ints": (
            lambda a: pd.Series(pd.array([a, None], dtype="Int64")),
            r"Int64.*astype",
        ),
        "multiindex": (
            lambda a: pd.Series([1, 2], index=pd.MultiIndex.from_tuples([(1, 2), (3, 4)])),
            "to_xarray",
        ),
        "int columns": (lambda a: pd.DataFrame([[a, 2]]), r"astype\(str\)"),
    }
    for fn, match in cases.values():
        with pytest.raises(OutputError, match=match):
            make_space().sweep(fn, progress=False)


def test_a_palette_image_is_refused_with_how_to_convert():
    image = pytest.importorskip("PIL.Image")
    with pytest.raises(OutputError, match=r"palette.*convert\('RGB'\)"):
        make_space().sweep(lambda a: image.new("P", (2, 2)), progress=False)
