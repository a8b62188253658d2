"""Hostile inputs to Parameter (issue 11).

One test per reported bug (float grids that matched the wrong value, text NetCDF cannot hold,
arguments not checked up front, a reassignable ``values``), then a generated suite of a few
hundred hostile inputs, then end-to-end checks through the public API and the cache file.
"""

import datetime
import decimal
import fractions
import math

import numpy as np
import pytest
import xarray as xr

import xsweep as xs
from xsweep.errors import ParameterError

SUPPORTED = "int, unsigned int, float, str, bool"


# -- bug 1: float grids gave silent wrong answers ---------------------------------------------
def test_bug1_float_lookup_is_relative_to_each_value():
    p = xs.Parameter("x", values=np.logspace(0, 18, 19))
    with pytest.raises(ParameterError, match=r"'x': 5\.0 is not one of its values.*1\.0, 10\.0"):
        p.index(5.0)
    assert p.index(1e18) == 18 and p.index(1.0) == 0
    assert xs.Parameter("y", values=[0.1, 0.2, 0.3]).index(0.1 + 0.2) == 2

    q = xs.Parameter("q", values=[-math.inf, -0.0, 1.0, math.inf])
    assert (q.index(math.inf), q.index(-math.inf), q.index(0.0), q.index(-0.0)) == (3, 0, 1, 1)
    for probe in (5.0, 1e308, -1e308, 1e-300, -1e-300, 5e-324):
        with pytest.raises(ParameterError, match="is not one of its values"):
            q.index(probe)
    with pytest.raises(ParameterError, match="NaN"):
        q.index(float("nan"))

    # Several grid values within tolerance: the nearest wins, not the first.
    close = xs.Parameter("c", values=[1.0, 1.0 + 6e-10])
    assert close.index(1.0 + 5e-10) == 1 and close.index(1.0 + 1e-10) == 0

    n = xs.Parameter("n", values=np.array([2**60, 2**60 + 1, 7]))
    assert (n.index(2**60 + 1), n.index(2**60), n.index(7.0), n.index(np.int64(7))) == (1, 0, 2, 2)
    for probe in (2**60 + 2, 2**60 - 1, 7.5, 7.000000001, math.inf):
        with pytest.raises(ParameterError, match="is not one of its values"):
            n.index(probe)

    with pytest.raises(ParameterError, match="bool"):
        xs.Parameter("m", values=[0, 1, 2]).index(True)
    with pytest.raises(ParameterError, match="bool"):
        xs.Parameter("m", values=[0.0, 1.0]).index(np.True_)
    with pytest.raises(ParameterError, match="True or False"):
        xs.Parameter("flag", values=[False, True]).index(1)

    f32 = xs.Parameter("f", values=np.float32([0.1, 0.2]))
    assert f32.index(0.1) == 0 and f32.index(0.2) == 1 and f32.index(np.float32(0.2)) == 1
    with pytest.raises(ParameterError):
        f32.index(0.15)


# -- bug 2: NUL characters and lone surrogates -----------------------------------------------
@pytest.mark.parametrize(
    "kwargs, shown",
    [
        (dict(values=["a\0b", "a\0c"]), r"'a\\x00b'"),
        (dict(values=["ok", "\ud800"]), r"'\\ud800'"),
        (dict(values=["ok"], units="m\0"), r"'m\\x00'"),
        (dict(values=["ok"], description="x\udcff"), r"'x\\udcff'"),
    ],
)
def test_bug2_text_netcdf_cannot_hold_is_refused(kwargs, shown):
    with pytest.raises(ParameterError, match=shown) as info:
        xs.Parameter("s", **kwargs)
    message = str(info.value)
    assert "'s'" in message and "UTF-8" in message and "NUL" in message
    assert "remove or replace" in message.lower()


def test_bug2_units_and_description_must_be_text():
    with pytest.raises(ParameterError, match=r"'s'.*units must be a str or None.*5 \(int\)"):
        xs.Parameter("s", values=[1], units=5)
    with pytest.raises(ParameterError, match=r"description must be a str or None"):
        xs.Parameter("s", values=[1], description=b"bytes")


# -- bug 3: arguments validated up front, naming them ------------------------------------------
@pytest.mark.parametrize("bad", [None, 7, 3.5, object()])
def test_bug3_values_not_a_sequence(bad):
    with pytest.raises(ParameterError, match=r"Parameter 'w': values must be a non-empty 1-D"):
        xs.Parameter("w", values=bad)


def test_bug3_generators_ranges_and_mixed_numbers_keep_working():
    assert xs.Parameter("g", values=(v * 2 for v in range(3))).values.tolist() == [0, 2, 4]
    assert xs.Parameter("r", values=range(2, 5)).values.tolist() == [2, 3, 4]
    mixed = xs.Parameter("m", values=[1, 2.5])
    assert mixed.values.dtype == np.float64 and mixed.index(1) == 0


@pytest.mark.parametrize(
    "values, match",
    [
        ([1 + 2j], SUPPORTED),
        ([None, 1], SUPPORTED),
        ([[1], [2, 3]], "1-D"),
        ([{"a": 1}], SUPPORTED),
        ([datetime.datetime(2020, 1, 1)], SUPPORTED),
        ([b"a", b"b"], "decode"),
        ([2**70], "64-bit"),
        ([-1, 2**63], "64-bit"),
        ([True, 2], "mix"),
    ],
)
def test_bug3_unsupported_values_name_the_kinds(values, match):
    with pytest.raises(ParameterError, match=match) as info:
        xs.Parameter("w", values=values)
    assert "'w'" in str(info.value)


def test_bug3_long_names_are_refused_up_front():
    with pytest.raises(ParameterError, match="NC_MAX_NAME"):
        xs.Parameter("a" * 300, values=[1])
    with pytest.raises(ParameterError, match="Nearest valid values: 1, 2"):
        xs.Parameter("x", values=[1, 2], default=5)


# -- bug 4: values is read-only -------------------------------------------------------------------
def test_bug4_values_cannot_be_reassigned():
    p = xs.Parameter("s", values=["a", "b"])
    with pytest.raises(ParameterError, match="new Parameter.*new ParameterSpace") as info:
        p.values = ["b", "a"]
    assert isinstance(info.value, AttributeError)
    with pytest.raises(AttributeError):
        del p.values
    assert p.values.tolist() == ["a", "b"] and p.index("b") == 1
    with pytest.raises(ValueError):
        p.values[0] = "z"  # the array itself is read-only too
    with pytest.raises(ParameterError, match=r"'c' is not one of its values.*'a', 'b'"):
        p.index("c")


def test_values_are_a_private_copy():
    mine = np.array([1.0, 2.0])
    p = xs.Parameter("x", values=mine)
    mine[0] = 5.0  # the caller's array stays theirs, and writable
    assert p.values.tolist() == [1.0, 2.0] and p.index(1.0) == 0 and mine.flags.writeable


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_copies_keep_values_read_only(how):
    import copy
    import pickle

    p = xs.Parameter("x", values=[0.5, 1.5], default=1.5)
    q = {"copy": copy.copy, "deepcopy": copy.deepcopy}.get(
        how, lambda p: pickle.loads(pickle.dumps(p))
    )(p)
    assert q.value == 1.5 and q.index(0.5 * (1 + 1e-12)) == 0 and not q.values.flags.writeable
    with pytest.raises(AttributeError):
        q.values = [1.0]


# -- generated hostile inputs ---------------------------------------------------------------------
def _log_grid(seed):
    """Sorted grid of 2-40 floats over many decades, one sign, well apart (ratio > 1 + 2e-6)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    exps = np.sort(rng.uniform(-300, 300, n))
    exps = exps[np.concatenate([[True], np.diff(exps) > 1e-6])]
    sign = -1.0 if seed % 3 == 0 else 1.0
    return sign * 10.0**exps


@pytest.mark.parametrize("seed", range(120))
def test_random_float_grids(seed):
    grid = _log_grid(seed)
    p = xs.Parameter("x", values=grid)
    for i, g in enumerate(grid.tolist()):
        assert p.index(g) == i
        assert p.index(g * (1 + 1e-12)) == i
        assert p.index(g * (1 - 1e-12)) == i
        assert p.index(np.float64(g)) == i
    logs = np.log10(np.abs(grid))
    for a, b in zip(logs[:-1], logs[1:]):
        halfway = math.copysign(10.0 ** ((a + b) / 2), grid[0])
        with pytest.raises(ParameterError, match="Nearest valid values"):
            p.index(halfway)


@pytest.mark.parametrize("seed", range(20))
def test_random_float32_grids(seed):
    rng = np.random.default_rng(1000 + seed)
    grid = np.unique(rng.uniform(-1e6, 1e6, 30).astype(np.float32))
    p = xs.Parameter("x", values=grid)
    for i, g in enumerate(grid):
        assert p.index(g) == i
        assert p.index(float(g)) == i
        assert p.index(float(str(g))) == i  # the short decimal a user would type


@pytest.mark.parametrize("seed", range(30))
def test_random_int_grids_match_exactly(seed):
    rng = np.random.default_rng(2000 + seed)
    base = int(rng.integers(-(2**62), 2**62))
    steps = rng.integers(1, 4, 20)
    grid = base + np.cumsum(steps)
    p = xs.Parameter("n", values=grid)
    members = set(grid.tolist())
    for i, g in enumerate(grid.tolist()):
        assert p.index(g) == i
        if float(g) == g:
            assert p.index(float(g)) == i
        for near in (g - 1, g + 1):
            if near not in members:
                with pytest.raises(ParameterError, match="is not one of its values"):
                    p.index(near)
        half = g + 0.5  # a float: beyond 2**53 it rounds to an integral float
        if half % 1 == 0 and int(half) in members:
            assert p.values[p.index(half)] == int(half)  # exactly equal: found
        else:
            with pytest.raises(ParameterError, match="is not one of its values"):
                p.index(half)


SPECIAL = [
    -math.inf,
    -1e308,
    -1.0,
    -5e-324,
    0.0,
    5e-324,
    1e-310,
    2.2250738585072014e-308,
    1e-300,
    1.0,
    1.7976931348623157e308,
    math.inf,
]


@pytest.mark.parametrize("i", range(len(SPECIAL)))
def test_special_float_grid_values_find_themselves(i):
    p = xs.Parameter("x", values=SPECIAL)
    assert p.index(SPECIAL[i]) == i
    assert p.index(np.float64(SPECIAL[i])) == i
    if SPECIAL[i] == 0.0:
        assert p.index(-0.0) == i


@pytest.mark.parametrize(
    "probe",
    [
        1e-323,
        -1e-323,
        1e-320,
        1e-305,
        2e-300,
        1e300,
        -1e300,
        1e307,
        -1e307,
        2.0,
        10**400,
        -(10**400),
        float("nan"),
        np.float32(np.nan),
        np.float32(1e-45),
    ],
)
def test_special_float_grid_refuses_near_misses(probe):
    p = xs.Parameter("x", values=SPECIAL)
    with pytest.raises(ParameterError, match="is not one of its values"):
        p.index(probe)


@pytest.mark.parametrize(
    "grid", [[0, 1, 2], [0.0, 1.0], np.uint64([0, 1, 2**64 - 1]), np.int8([0, 1]), ["True", "1"]]
)
@pytest.mark.parametrize("probe", [True, False, np.True_, np.False_])
def test_bools_never_match_other_grids(grid, probe):
    with pytest.raises(ParameterError, match="is not one of its values"):
        xs.Parameter("x", values=grid).index(probe)


@pytest.mark.parametrize("probe", [0, 1, 0.0, 1.0, np.int64(1), np.float32(0), "True", None, [1]])
def test_bool_grids_want_bools(probe):
    with pytest.raises(ParameterError, match="is not one of its values"):
        xs.Parameter("flag", values=[False, True]).index(probe)


@pytest.mark.parametrize(
    "probe", ["1", None, [1.0], {"a": 1}, b"1", 1 + 0.5j, datetime.date(2020, 1, 1), object()]
)
@pytest.mark.parametrize("grid", [[1.0, 2.0], [1, 2], ["1", "2"]])
def test_foreign_lookups_raise_parameter_errors(grid, probe):
    p = xs.Parameter("x", values=grid)
    if probe == grid[0]:
        return
    with pytest.raises(ParameterError, match="'x'.*is not one of its values"):
        p.index(probe)


def test_uint64_and_int64_extremes():
    u = xs.Parameter("u", values=[2**64 - 1, 1])
    assert u.values.dtype == np.uint64 and u.index(2**64 - 1) == 0
    assert xs.Parameter("u", values=[2**63]).values.dtype == np.uint64
    i = xs.Parameter("i", values=[-(2**63), 2**63 - 1])
    assert i.values.dtype == np.int64 and i.index(2**63 - 1) == 1
    with pytest.raises(ParameterError):
        i.index(2**63)


BAD_VALUES = [
    None,
    7,
    3.5,
    True,
    object(),
    {1, 2},
    frozenset({"a"}),
    {"a": 1},
    b"ab",
    bytearray(b"ab"),
    [],
    (),
    np.array([]),
    [None],
    [1, None],
    [1.5, None],
    [1 + 2j],
    np.array([1 + 2j]),
    [[1], [2, 3]],
    [[1, 2], [3, 4]],
    np.zeros((2, 2)),
    [np.array([1, 2])],
    [(1, 2)],
    [{"a": 1}],
    [datetime.datetime(2020, 1, 1)],
    [datetime.date(2020, 1, 1)],
    [datetime.timedelta(1)],
    [np.datetime64("2020-01-01")],
    np.array(["2020-01-01"], dtype="datetime64[D]"),
    [decimal.Decimal("1.5")],
    [fractions.Fraction(1, 2)],
    [b"a", b"b"],
    np.array([b"a", b"b"]),
    [2**70],
    [-(2**70), 1],
    [-1, 2**63],
    [2**64],
    [True, 2],
    [1, True],
    [True, 1.5],
    [1, "a"],
    ["a", True],
    ["a", b"b"],
    [1.0, float("nan")],
    np.array([np.nan]),
    [float("nan")],
    np.float16([1, 2]),
    [np.float16(1.0)],
    [1.5, 2**60 + 1],
    [0.5, 10**400],
    [1, 2, 1],
    [0.0, -0.0],
    ["a", "a"],
    np.float64(5.0),
    np.array(5.0),
    range(0),
    "abc",
    [slice(1)],
    np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
]
if np.dtype(np.longdouble).itemsize > 8:
    BAD_VALUES.append(np.array([1.0, 2.0], dtype=np.longdouble))


@pytest.mark.parametrize("values", BAD_VALUES, ids=[f"bad{i}" for i in range(len(BAD_VALUES))])
def test_bad_values_are_refused_naming_the_parameter(values):
    with pytest.raises(ParameterError, match=r"Parameter 'w'") as info:
        xs.Parameter("w", values=values)
    assert "\n" not in str(info.value)


GOOD_VALUES = [
    ([1, 2, 3], np.int64),
    (range(5), np.int64),
    ((x for x in (1.5, 2.5)), np.float64),
    (iter(["a", "b"]), np.str_),
    (map(float, [1, 2]), np.float64),
    ({"a": 1, "b": 2}.keys(), np.str_),
    ((True, False), np.bool_),
    ([np.True_, False], np.bool_),
    ([1, 2.5], np.float64),
    ([np.int8(1), np.int8(2)], np.int8),
    (np.uint8([1, 2]), np.uint8),
    ([np.float32(0.5), np.float32(1.5)], np.float32),
    (np.array([1.0, 2.0], dtype=">f8"), np.float64),
    ([2**63], np.uint64),
    ([-(2**63)], np.int64),
    ([np.uint64(2**63), np.int64(-1)], None),
    (np.array([1, 2], dtype=object), np.int64),
    (np.array(["a", "b"], dtype=object), np.str_),
    ([np.str_("a"), "b"], np.str_),
    ([0.0, 5e-324, math.inf, -math.inf], np.float64),
    (xr.DataArray([1.0, 2.0]), np.float64),
    ([np.array(1.0), np.array(2.0)], np.float64),
]


@pytest.mark.parametrize(
    "values, dtype", GOOD_VALUES, ids=[f"good{i}" for i in range(len(GOOD_VALUES))]
)
def test_good_values_are_kept(values, dtype):
    if dtype is None:  # int64 and uint64 mixed: -1 and 2**63 fit no 64-bit type
        with pytest.raises(ParameterError, match="64-bit"):
            xs.Parameter("w", values=values)
        return
    p = xs.Parameter("w", values=values)
    want = np.dtype(dtype)
    assert p.values.dtype.kind == want.kind and not p.values.flags.writeable
    assert want.kind == "U" or p.values.dtype == want
    assert p.values.dtype.isnative
    for i, v in enumerate(p.values):
        assert p.index(v) == i and p.index(v.item()) == i


ACCEPTED_TEXT = [chr(c) for c in [*range(1, 32), 127, 0x85, 0xA0, 0x2028, 0xFEFF, 0x200B, 0x1F600]]
ACCEPTED_TEXT += ["", " ", "e\u0301", "\U0010ffff", "tab\there", "line\nbreak", "\\0", "\ufffd"]
REFUSED_TEXT = [
    "\0",
    "\0a",
    "a\0",
    "a\0b",
    "\0" * 3,
    "\ud800",
    "\udfff",
    "a\udc80b",
    "\ud83d",
    "ok\0\ud800",
]


@pytest.mark.parametrize("text", ACCEPTED_TEXT)
def test_text_netcdf_can_hold_is_accepted(text):
    p = xs.Parameter("s", values=[text, "other"], units=text, description=text)
    assert p.index(text) == 0 and p.values[0] == text and p.units == text


@pytest.mark.parametrize("where", ["values", "units", "description"])
@pytest.mark.parametrize("text", REFUSED_TEXT)
def test_text_netcdf_cannot_hold_is_refused(text, where):
    kwargs = {"values": ["plain"], where: [text] if where == "values" else text}
    with pytest.raises(ParameterError, match=rf"'s'.*{where if where != 'values' else ''}"):
        xs.Parameter("s", **kwargs)


@pytest.mark.parametrize("bad", [5, 1.5, b"m", ["m"], ("m",), True, object()])
@pytest.mark.parametrize("where", ["units", "description"])
def test_units_and_description_of_other_types(bad, where):
    with pytest.raises(ParameterError, match=rf"'s'.*{where} must be a str or None"):
        xs.Parameter("s", values=[1], **{where: bad})


@pytest.mark.parametrize("length", [1, 2, 64, 200, 254, 255, 256, 257, 300, 1000])
@pytest.mark.parametrize("char", ["a", "\u00e9", "\u4e2d"])
def test_name_lengths(length, char):
    name = "x" + char * (length - 1) if char != "a" else "a" * length
    size = len(name.encode("utf-8"))
    if size <= 255:
        assert xs.Parameter(name, values=[1]).name == name
    else:
        with pytest.raises(ParameterError, match=rf"{size} bytes.*NC_MAX_NAME"):
            xs.Parameter(name, values=[1])


@pytest.mark.parametrize("name", ["e\u0301", "\ufb01", "x\u2160", "\uff41"])
def test_names_python_would_normalize_are_refused(name):
    assert name.isidentifier()
    with pytest.raises(ParameterError, match=r"normal form \(NFKC\)"):
        xs.Parameter(name, values=[1])


@pytest.mark.parametrize(
    "name", [None, 5, "", "1x", "a b", "class", "_x", "a\0b", "\ud800", "a-b", b"x", "x\n"]
)
def test_bad_names(name):
    with pytest.raises(ParameterError):
        xs.Parameter(name, values=[1])


# -- end to end ------------------------------------------------------------------------------------
def test_run_process_and_sweep_refuse_a_value_not_on_the_grid(tmp_path):
    calls = []

    def f(x):
        calls.append(x)
        return x

    ps = xs.ParameterSpace([xs.Parameter("x", values=np.logspace(0, 18, 19))])
    ps.enable_cache(tmp_path / "r.nc")
    with pytest.raises(ParameterError, match=r"5\.0 is not one of its values.*1\.0, 10\.0"):
        ps.run_process(f, x=5.0)
    with pytest.raises(ParameterError, match=r"5\.0 is not one of its values"):
        ps.sweep(f, cells={"x": [5.0]})
    with pytest.raises(ParameterError, match="bool"):
        ps.run_process(f, x=True)
    assert calls == [] and ps["x"].value == 1.0
    assert ps.run_process(f, x=1e18 * (1 + 1e-12)) == 1e18 and calls == [1e18]
    ps.disable_cache()


def test_hostile_but_valid_text_and_long_names_survive_the_file(tmp_path):
    name = "n" * 255
    texts = ["", "tab\there", "\x01\x7f", "e\u0301", "\U0001f600", "\u2028"]
    ps = xs.ParameterSpace(
        [
            xs.Parameter("s", values=texts, units="\x01", description="\u00e9\U0001f600"),
            xs.Parameter(name, values=[-0.0, 5e-324, math.inf]),
        ]
    )
    ps.enable_cache(tmp_path / "r.nc")
    ps.sweep(lambda **kw: len(kw["s"]))
    ps.disable_cache()
    with xr.open_dataset(tmp_path / "r.nc") as f:
        assert f["s"].values.tolist() == texts
        assert f["s"].attrs["units"] == "\x01"
        assert f["s"].attrs["description"] == "\u00e9\U0001f600"
        assert f[name].values.tolist() == [-0.0, 5e-324, math.inf]
