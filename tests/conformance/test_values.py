"""Generated values (hypothesis): NaN, +-inf, -0.0, each dtype's extremes, any Unicode text.

Each example sweeps one function whose cells return the generated values, into a fresh cache
file, and reads them back as users do: the returned Dataset, the file with plain xarray
(netCDF4 and h5netcdf engines) and ``run_process`` in a new space. Few examples by default;
``--slow`` (or ``XSWEEP_SLOW=1``) runs many more.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings

import numpy as np
import pytest
import xarray as xr

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import xsweep as xs  # noqa: E402

from .checks import same  # noqa: E402

#: plain xarray's engines: h5netcdf is in the test extra, checked when installed
ENGINES = ["netcdf4"] + (["h5netcdf"] if importlib.util.find_spec("h5netcdf") else [])
EXAMPLES = 200 if os.environ.get("XSWEEP_SLOW") == "1" else 8
_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,  # nothing written to the repository
)


def _read_back(values, fail_last=False):
    """Sweep ``i -> values[i]``; return (returned Dataset, plain reads, run_process values)."""
    n = len(values)
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "v.nc")
    ps = xs.ParameterSpace([xs.Parameter("i", values=list(range(n + fail_last)))])
    ps.enable_cache(path)

    def gen(i):
        if i == n:
            raise ValueError("the hole")
        return values[i]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xs.SweepFailuresWarning)
        ds = ps.sweep(gen, progress=False)
    ps.disable_cache()
    plain = {}
    for engine in ENGINES:
        with xr.open_dataset(path, engine=engine) as f:
            plain[engine] = f.load()
    fresh = xs.ParameterSpace([xs.Parameter("i", values=list(range(n + fail_last)))])
    fresh.enable_cache(path)
    back = [fresh.run_process(gen, i=i) for i in range(n)]
    return ds, plain, back


def _bits_equal(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal, NaN where NaN, and -0.0 where -0.0."""
    if want.dtype.kind in "fc":
        return bool(
            np.array_equal(got, want, equal_nan=True)
            and np.array_equal(np.signbit(got.real), np.signbit(want.real))
        )
    return bool(np.array_equal(got, want))


_FLOATS = st.sampled_from([np.float32, np.float64]).flatmap(
    lambda t: st.lists(
        hnp.from_dtype(np.dtype(t), allow_nan=True, allow_infinity=True, allow_subnormal=True),
        min_size=1,
        max_size=4,
    ).map(lambda xs_: [t(x) for x in xs_])
)


def _ints():
    """Lists of one int dtype, extremes included (and, for 64-bit ones, the edges of the
    ints float64 holds exactly, 2**53)."""

    def of(t: str):
        info = np.iinfo(t)
        low, high = int(info.min), int(info.max)
        edges = [low, high, 0]
        if info.bits == 64:
            edges += [v for v in (2**53, 2**53 + 1, -(2**53), -(2**53) - 1) if low <= v <= high]
        values = st.one_of(st.sampled_from(edges), st.integers(low, high))
        return st.lists(values, min_size=1, max_size=4).map(
            lambda xs_: [np.dtype(t).type(x) for x in xs_]
        )

    types = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    return st.sampled_from(types).flatmap(of)


_INTS = _ints()


@_settings
@given(values=_FLOATS)
def test_floats_come_back_bit_for_bit(values):
    ds, plain, back = _read_back(values)
    want = np.array(values)
    assert ds["gen"].dtype == want.dtype
    assert _bits_equal(ds["gen"].values, want)
    for engine, f in plain.items():
        assert f["gen"].dtype == want.dtype, engine
        assert _bits_equal(f["gen"].values, want), engine
    for got, value in zip(back, values):
        same(got, value)


@_settings
@given(values=_INTS)
def test_ints_of_every_width_keep_their_dtype_and_extremes(values):
    ds, plain, back = _read_back(values)
    want = np.array(values)
    assert ds["gen"].dtype == want.dtype and ds["gen"].values.tolist() == want.tolist()
    for engine, f in plain.items():
        assert f["gen"].dtype == want.dtype, engine
        assert f["gen"].values.tolist() == want.tolist(), engine
    for got, value in zip(back, values):
        same(got, value)


@_settings
@given(values=_INTS)
def test_an_int_hole_is_missing_whatever_values_surround_it(values):
    """Float with NaN at the hole; beyond 2**53 (float64 would round) exact Python ints in
    the Dataset and the raw values in the file, which says so (docs/outputs.md)."""
    ds, plain, _ = _read_back(values, fail_last=True)
    for label, read in [("sweep", ds), *plain.items()]:
        got = read["gen"].values
        exact = [int(v) for v in got[:-1]] == [int(v) for v in values]
        assert exact, f"{label}: {got[:-1].tolist()} != {values}"
        if label != "sweep" and "xsweep_holes" in read["gen"].attrs:
            assert read["gen_status"].values[-1] == 2, label  # the truth it names
            assert any(abs(int(v)) > 2**53 for v in values), f"{label}: a free fill exists"
            continue
        assert got.dtype.kind in "fO" and np.isnan(got[-1]), f"{label}: the hole reads {got[-1]}"
        assert got.dtype.kind == "f" or any(abs(int(v)) > 2**53 for v in values), label


# NUL is refused (NetCDF text ends there): see test_refused.py
_TEXT = st.lists(
    st.text(st.characters(exclude_characters="\x00"), max_size=300)
    | st.sampled_from(["", "é" * 2000, "漢字 ✓ 🎉"]),
    min_size=1,
    max_size=4,
)


@_settings
@given(values=_TEXT)
def test_any_unicode_text_comes_back(values):
    ds, plain, back = _read_back(values)
    assert ds["gen"].values.tolist() == values
    for engine, f in plain.items():
        assert [str(v) for v in f["gen"].values.tolist()] == values, engine
    assert back == values


_COMPLEX = st.lists(st.complex_numbers(allow_nan=True, allow_infinity=True), min_size=1, max_size=4)


@_settings
@given(values=_COMPLEX)
def test_complex_numbers_with_nan_and_inf_parts_come_back(values):
    ds, plain, back = _read_back(values)
    pairs = np.array([[v.real, v.imag] for v in values])
    assert _bits_equal(ds["gen"].values, pairs)
    for engine, f in plain.items():
        assert _bits_equal(f["gen"].values, pairs), engine
    for got, value in zip(back, values):
        same(got, value) if value == value else same(got.real, value.real)


_TIMES = st.lists(st.integers(-(2**33), 2**33), min_size=1, max_size=4)  # 1698..2242


@_settings
@given(seconds=_TIMES)
def test_datetimes_come_back(seconds):
    times = [np.datetime64(s, "s") for s in seconds]
    ds, plain, back = _read_back(times)
    want = np.array(times)
    assert ds["gen"].dtype.kind == "M"
    assert np.array_equal(ds["gen"].values.astype("M8[s]"), want)
    for engine, f in plain.items():
        assert f["gen"].dtype.kind == "M", engine
        assert np.array_equal(f["gen"].values.astype("M8[s]"), want), engine
    for got, value in zip(back, times):
        same(got, value)


@pytest.mark.parametrize("when", ["1500-01-01T00:00:00", "9999-12-31T00:00:00"])
def test_a_time_outside_the_ns_range_is_a_datetime64_in_the_returned_dataset(when):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # xarray's SerializationWarning
        ds, _, back = _read_back([np.datetime64(when, "s")])
        assert back == [np.datetime64(when, "s")]
        assert ds["gen"].dtype == np.dtype("M8[s]"), ds["gen"].values  # decoded lazily


def test_int64_beyond_2_53_with_a_hole_keeps_exact_values_and_a_missing_hole():
    """float64 would round them: the returned Dataset holds exact Python ints and NaN; the
    file keeps them raw, without a _FillValue a reader would mask them as float64 with,
    and says so (docs/file_format.md): its status is the truth."""
    values = [np.int64(2**63 - 1), np.int64(2**53 + 1)]
    ds, plain, back = _read_back(values, fail_last=True)
    got = ds["gen"]
    assert got.isnull().values.tolist() == [False, False, True]
    assert [int(v) for v in got.values[:2]] == [int(v) for v in values]
    for engine, f in plain.items():
        got = f["gen"]
        assert got.dtype == np.int64, engine
        assert got.values[:2].tolist() == [int(v) for v in values], engine
        assert "xsweep_holes" in got.attrs, engine
        assert f["gen_status"].values.tolist() == [1, 1, 2], engine
    assert back == [int(v) for v in values]


def test_int64_beyond_2_53_with_a_hole_read_lazily_is_refused_not_rounded(tmp_path):
    path = tmp_path / "v.nc"
    ps = xs.ParameterSpace([xs.Parameter("i", values=[0, 1, 2])])
    ps.enable_cache(path)

    def big(i):
        if i == 2:
            raise ValueError("the hole")
        return np.array([2**63 - 1, i], np.int64)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xs.SweepFailuresWarning)
        lazy = ps.sweep(big, lazy=True, progress=False)
        with pytest.raises(ValueError, match=r"2\*\*53.*open_dataset"):
            lazy["big"].load()
        # the ways out it names
        exact = ps.sweep(big, lazy=False, progress=False)["big"].values
    assert exact[:2, 0].tolist() == [2**63 - 1] * 2 and np.isnan(exact[2].astype(float)).all()
    with xr.open_dataset(path) as f:
        assert f["big"].values[:2].tolist() == [[2**63 - 1, 0], [2**63 - 1, 1]]


def test_int64_beyond_2_53_is_exact_in_a_complete_sweep():
    """A guard for the fix of issue 21.1: a complete int64 sweep stays int64 and exact."""
    values = [np.int64(2**63 - 1), np.int64(2**53 + 1), np.int64(-(2**63))]
    ds, plain, back = _read_back(values)
    assert ds["gen"].dtype == np.int64 and ds["gen"].values.tolist() == [int(v) for v in values]
    for engine, f in plain.items():
        assert f["gen"].values.tolist() == [int(v) for v in values], engine
    assert back == [int(v) for v in values]
