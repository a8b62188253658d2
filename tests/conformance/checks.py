"""What "the user reads the truth, or a visibly missing value" means, for Datasets and values."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .kinds import COMPUTED, STATUS, Kind


@dataclass
class Read:
    """One Dataset a user reads on a path, and which cell of it is in which state."""

    label: str
    ds: xr.Dataset
    #: (``.sel`` indexers, state, the ``a`` whose value the cell holds when computed)
    cells: list[tuple[dict[str, Any], str, int]]
    #: the status variable (``<name>_status``), or None where the path has none
    status: str | None
    #: a file opened with plain xarray (no xsweep decoding)
    plain: bool = False


def _is_missing_element(v: Any) -> bool:
    if v is None or (isinstance(v, str) and v == ""):
        return True
    try:
        return (
            bool(np.isnat(v))
            if isinstance(v, (np.datetime64, np.timedelta64))
            else (isinstance(v, (float, np.floating)) and math.isnan(v))
        )
    except TypeError:
        return False


def assert_missing(got: xr.DataArray, where: str) -> None:
    """Every element reads missing: NaN, NaT, masked, or an empty string (text has no NaN)."""
    values = got.values
    kind = values.dtype.kind
    if kind in "fc":
        ok = np.isnan(values).all()
    elif kind in "mM":
        ok = np.isnat(values).all()
    elif kind in "USO":
        ok = all(_is_missing_element(v) for v in values.ravel().tolist())
    else:
        ok = False
    assert ok, (
        f"{where}: a cell without a value reads as data: {got.name} = "
        f"{values.ravel()[:6].tolist()} ({values.dtype})"
    )


def _as_text(values: np.ndarray) -> list:
    return [v.decode() if isinstance(v, bytes) else v for v in values.ravel().tolist()]


def assert_value(got: xr.DataArray, want: Any, where: str) -> None:
    """``got`` holds ``want`` (exactly; ragged padding must read missing)."""
    values = got.values
    if isinstance(want, str):  # JSON text
        assert json.loads(values.item()) == json.loads(want), f"{where}: {values.item()!r}"
        return
    want = np.asarray(want)
    if want.dtype.kind in "mM":
        assert values.dtype.kind == want.dtype.kind, f"{where}: dtype {values.dtype}"
        assert np.array_equal(
            values.astype("M8[ns]" if want.dtype.kind == "M" else "m8[ns]"),
            want.astype(values.dtype).astype("M8[ns]" if want.dtype.kind == "M" else "m8[ns]"),
        ), f"{where}: {values} != {want}"
        return
    if want.dtype.kind in "USO":
        assert _as_text(values) == want.ravel().tolist(), f"{where}: {values!r}"
        return
    if values.shape != want.shape and want.ndim == 1 and values.ndim == 1:
        # a ragged output's padded extent: the read may be narrower than our padding
        assert np.isnan(want[values.shape[0] :]).all(), f"{where}: shape {values.shape}"
        want = want[: values.shape[0]]
    assert values.shape == want.shape, f"{where}: shape {values.shape}, want {want.shape}"
    if values.dtype.kind in "iub" and want.dtype.kind == "f":
        raise AssertionError(f"{where}: padding reads as data: {values.tolist()}")
    if values.dtype.kind == "f" and want.dtype.kind in "iub":
        # a hole-widened int: must still be exact
        exact = np.array_equal(values, want.astype(np.float64))
        assert exact, f"{where}: {values.tolist()} != {want.tolist()} (precision lost)"
        return
    if values.dtype.kind in "iub":
        assert values.dtype == want.dtype, f"{where}: dtype {values.dtype}, want {want.dtype}"
    assert np.array_equal(values, want, equal_nan=values.dtype.kind in "fc"), (
        f"{where}: {values.tolist()} != {want.tolist()}"
    )


def raw_holes(read: Read, name: str) -> bool:
    """Whether a file's int output keeps raw values at its holes, as docs/file_format.md
    allows (no free value, or cells written in place): it says so (``xsweep_holes``) and
    names the status, the truth a plain reader then reads."""
    var = read.ds[name]
    return (
        var.dtype.kind in "iu"
        and "xsweep_holes" in var.attrs
        and var.attrs.get("ancillary_variables") == read.status
    )


def check_read(read: Read, kind: Kind, state: str) -> int:
    """Check every cell of ``read`` in ``state``; return how many cells were checked."""
    names = list(kind.expect(0))
    checked = 0
    for sel, cell_state, a in read.cells:
        if cell_state != state:
            continue
        checked += 1
        where = f"{read.label}, {kind.name} at {sel} ({state})"
        cell = read.ds.sel(sel)
        if read.status is not None:
            want = kind.status(a) if state == COMPUTED else STATUS[state]
            got = int(cell[read.status].values)
            assert got == want, f"{where}: status {got}, want {want}"
        expected = kind.expect(a) if state == COMPUTED else None
        for name in names:
            assert name in read.ds.variables, f"{where}: no variable {name!r}: {list(read.ds)}"
            got = cell[name]
            if expected is None:
                if read.plain and raw_holes(read, name):
                    continue  # the status, checked above, is the documented truth
                assert_missing(got, where)
            else:
                want = expected[name]
                extent = read.ds[name].attrs.get("xsweep_extent")
                if read.plain and raw_holes(read, name) and extent is not None:
                    # raw padding: the cell's extent says which part is the value
                    n = int(cell[extent].values.ravel()[0])
                    assert np.isnan(want[n:]).all(), f"{where}: extent {n}, want {want}"
                    got, want = got[:n], want[:n].astype(got.dtype)
                assert_value(got, want, where)
            for key, value in kind.attrs.get(name, {}).items():
                assert read.ds[name].attrs.get(key) == value, f"{where}: attrs {key!r} lost"
    return checked


_PYTHON = {np.float64: float, np.int64: int, np.uint64: int, np.complex128: complex, np.bool_: bool}


def same(got: Any, want: Any) -> None:
    """``run_process`` gave back what the function returned: same type, same value."""
    if want is None:
        assert got is None, f"{got!r} is not None"
        return
    if isinstance(want, (xr.DataArray, xr.Dataset)):
        assert type(got) is type(want), f"{type(got).__name__}, not {type(want).__name__}"
        xr.testing.assert_identical(got, want)
    elif isinstance(want, pd.Series):
        pd.testing.assert_series_equal(got, want, check_exact=True)
    elif isinstance(want, pd.DataFrame):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    elif type(want).__module__.startswith("PIL"):
        assert (got.mode, got.size, got.tobytes()) == (want.mode, want.size, want.tobytes())
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype, repr(got)
        assert np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"), repr(got)
    elif isinstance(want, (list, tuple, dict)):
        assert type(got) is type(want), f"{type(got).__name__}, not {type(want).__name__}"
        assert len(got) == len(want), f"{got!r} != {want!r}"
        pairs = zip(got.values(), want.values()) if isinstance(want, dict) else zip(got, want)
        if isinstance(want, dict):
            assert list(got) == list(want), f"keys {list(got)} != {list(want)}"
        for g, w in pairs:
            same(g, w)
    else:
        # documented (docs/outputs.md): a 64-bit numpy scalar comes back a Python number,
        # since the file cannot tell np.float64(1.5) from 1.5
        types = {type(want), _PYTHON.get(type(want), type(want))}
        assert type(got) in types, f"{got!r} ({type(got).__name__}), want {want!r}"
        if isinstance(want, (float, np.floating)) and math.isnan(want):
            assert math.isnan(got), repr(got)
        else:
            assert got == want, f"{got!r} != {want!r}"
            if isinstance(want, (float, np.floating)):
                assert math.copysign(1, got) == math.copysign(1, want), f"sign of {got!r}"
