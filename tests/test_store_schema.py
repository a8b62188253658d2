"""The layout of a results file as a colleague without xsweep sees it: variable names made
from function names, and the status codes as CF flags, read back with plain ``xarray``."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

import xsweep as xs
from xsweep.store import (
    COMPUTED,
    DONE,
    FAILED,
    FLAG_MEANINGS,
    FLAG_VALUES,
    NO_VALUE,
    NOT_COMPUTED,
    variable_prefix,
)

BOOKKEEPING = ("_status", "_seconds", "_error", "_messages")


# ---------------------------------------------------------------------------------------------
# variable_prefix
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn_name, prefix",
    [
        ("area", "area"),
        ("<lambda>", "lambda"),
        ("<genexpr>", "genexpr"),
        ("Model.run", "Model_run"),  # a qualname-like name with dots
        ("a.b.c", "a_b_c"),
        ("f-g h", "f_g_h"),
        ("x..y", "x_y"),  # a run of separators is one underscore
        ("x__y", "x__y"),  # underscores inside a name are the name's own
        ("__init__", "init"),  # no leading or trailing underscore
        ("_private", "private"),
        ("débit", "débit"),  # letters of any script are kept as they are
        ("温度", "温度"),
        ("Ωmega_2", "Ωmega_2"),
        ("f’", "f"),  # punctuation of any script is not
        ("", "output"),  # nothing left: a fixed name
        ("<>", "output"),
        ("...", "output"),
    ],
)
def test_variable_prefix_of_odd_function_names(fn_name, prefix):
    assert variable_prefix(fn_name) == prefix


@pytest.mark.parametrize(
    "fn_name", ["<lambda>", "a.b", "__x__", "débit", "温度", "", "f" * 1000, "a" + "·" * 5]
)
def test_variable_prefix_is_a_fixed_point(fn_name):
    # A file's reader checks that each stored name is its own prefix: a prefix that changed
    # when taken again would make the file it was written to unreadable.
    prefix = variable_prefix(fn_name)
    assert variable_prefix(prefix) == prefix
    assert re.fullmatch(r"\w+", prefix) and not prefix.startswith("_") and not prefix.endswith("_")


def test_variable_prefix_never_cuts_a_long_name():
    # Cutting would give two long names that differ only at the end one set of variables.
    long = "model_" + "x" * 500
    assert variable_prefix(long) == long
    assert variable_prefix(long + "1") != variable_prefix(long + "2")


# ---------------------------------------------------------------------------------------------
# The names in a written file
# ---------------------------------------------------------------------------------------------
def swept_file(tmp_path, fn_name: str):
    """Sweep a function named ``fn_name`` into a cache file; the file and the function."""
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3])])
    ps.enable_cache(path)
    calls = []

    def fn(a):
        calls.append(a)
        return a * 1.5

    fn.__name__ = fn_name
    ps.sweep(fn, progress=False)
    ps.disable_cache()
    return path, ps, fn, calls


@pytest.mark.parametrize("fn_name", ["<lambda>", "Model.run", "débit", "温度", "__init__"])
def test_odd_function_names_name_the_variables_of_a_readable_file(tmp_path, fn_name):
    path, ps, fn, calls = swept_file(tmp_path, fn_name)
    prefix = variable_prefix(fn_name)
    with xr.open_dataset(path) as ds:
        assert set(ds.data_vars) == {prefix, *(prefix + s for s in BOOKKEEPING)}
        assert ds[prefix].values.tolist() == [1.5, 3.0, 4.5]
        assert ds[f"{prefix}_status"].attrs["xsweep_name"] == prefix
    # xsweep reads its own file back (the stored name passes the reader's checks): cached.
    ps.enable_cache(path)
    calls.clear()
    assert ps.sweep(fn, progress=False)[prefix].values.tolist() == [1.5, 3.0, 4.5]
    assert calls == []


def test_the_name_limit_counts_bytes_not_characters(tmp_path):
    # NetCDF names hold 255 bytes; the longest variable is "<prefix>_messages" (9 more).
    # 82 three-byte characters make 246 bytes: the longest prefix that fits.
    path, *_ = swept_file(tmp_path, "温" * 82)
    with xr.open_dataset(path) as ds:
        assert "温" * 82 + "_messages" in ds.variables
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1])])
    ps.enable_cache(tmp_path / "long.nc")
    calls = []

    def fn(a):
        calls.append(a)
        return a

    fn.__name__ = "温" * 83  # 249 bytes, but only 83 characters
    with pytest.raises(xs.StoreError, match="bytes"):
        ps.sweep(fn, progress=False)
    assert calls == [], "the name was refused only after computing a cell"


# ---------------------------------------------------------------------------------------------
# Status codes and CF flags
# ---------------------------------------------------------------------------------------------
def test_the_status_codes_and_their_flag_meanings_agree():
    assert (NOT_COMPUTED, COMPUTED, FAILED, NO_VALUE) == (0, 1, 2, 3)
    assert FLAG_VALUES.tolist() == [NOT_COMPUTED, COMPUTED, FAILED, NO_VALUE]
    assert FLAG_MEANINGS.split() == ["not_computed", "computed", "failed", "computed_no_value"]
    assert len(set(FLAG_VALUES.tolist())) == len(FLAG_VALUES)
    assert set(DONE) == {COMPUTED, NO_VALUE}
    # CF: flag_meanings is a blank-separated list of words, one per flag value.
    assert all(re.fullmatch(r"[A-Za-z0-9_.+\-@]+", word) for word in FLAG_MEANINGS.split())


def test_a_file_read_with_plain_xarray_says_each_cells_status_as_cf_flags(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace(
        [xs.Parameter("a", values=[0, 1, 2, 3]), xs.Parameter("b", values=[0.5, 1.5])]
    )
    ps.enable_cache(path)

    def model(a, b):
        if a == 1:
            raise ValueError(f"no {a} with ✓")
        if a == 2:
            return None
        return a * 10 + b

    ps["b"].value = 0.5
    with pytest.warns(xs.SweepFailuresWarning):
        ps.sweep(model, params=["a"], progress=False)  # b = 1.5 is left not computed
    ps.disable_cache()

    with xr.open_dataset(path) as ds:
        status = ds["model_status"]
        assert status.dims == ("a", "b")
        flag_values = status.attrs["flag_values"]
        meanings = status.attrs["flag_meanings"].split()
        # CF: flag_values has the variable's own type, one value per meaning.
        assert np.asarray(flag_values).dtype == status.dtype and status.dtype.kind == "i"
        assert list(flag_values) == FLAG_VALUES.tolist() and len(meanings) == len(flag_values)
        meaning = dict(zip(np.asarray(flag_values).tolist(), meanings))
        words = [[meaning[int(v)] for v in row] for row in status.values]
        assert words == [
            ["computed", "not_computed"],
            ["failed", "not_computed"],
            ["computed_no_value", "not_computed"],
            ["computed", "not_computed"],
        ]
        values = ds["model"].values
        assert values[0, 0] == 0.5 and values[3, 0] == 30.5
        assert np.isnan(values[1:3, 0]).all() and np.isnan(values[:, 1]).all()
        # A failed cell's message: error code k is message k of model_messages (1-based).
        codes = ds["model_error"].values
        messages = ds["model_messages"].values.tolist()
        assert codes[1, 0] >= 1 and messages[codes[1, 0] - 1] == "ValueError: no 1 with ✓"
        assert (np.delete(codes.ravel(), 2) == 0).all()  # only cell (1, 0) failed
        assert ds["model_messages"].dims == ("model_message",)
        assert ds["model_seconds"].attrs["units"] == "s"
        seconds = ds["model_seconds"].values
        assert (seconds[:, 0] >= 0).all() and np.isnan(seconds[:, 1]).all()
