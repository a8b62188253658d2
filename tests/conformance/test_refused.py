"""Combinations xsweep does not support fail before anything is written, with a clear error.

For every refused return value and every way to compute it (a new cache file, a file holding
another function's results, ``workers=2``, a dask cluster, ``run_process``): an
``OutputError`` that says what may be returned and how to convert, and the file absent or
byte for byte unchanged.
"""

from __future__ import annotations

import hashlib
import warnings

import pytest

import xsweep as xs

from .conftest import RESULTS
from .refused import KNOWN, MODES, REFUSED, refused_fn


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _params():
    for name in REFUSED:
        for mode in MODES:
            reason = KNOWN.get((name, mode))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, mode, marks=marks, id=f"{name}-{mode}")


@pytest.mark.parametrize("name, mode", list(_params()))
def test_refused_before_anything_is_written(name, mode, tmp_path, request):
    RESULTS[name, mode, "refused"] = "known bug" if (name, mode) in KNOWN else "wrong"
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(path)
    if mode == "existing file":
        ps.sweep(lambda a: a * 1.5, name="other", progress=False)
    before = _digest(path)
    fn = refused_fn(name)
    options = {"progress": False}
    if mode == "workers=2":
        options["workers"] = 2
    elif mode == "dask":
        options["executor"] = request.getfixturevalue("dask_client")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xs.SweepFailuresWarning)
        with pytest.raises(xs.OutputError, match=r"(?s)allowed|Convert|convert|return") as err:
            if mode == "run_process":
                ps.run_process(fn, a=1)
            else:
                ps.sweep(fn, **options)
    # the way out must work: recomputing gives the same value again
    assert "force_recompute" not in str(err.value), f"advice that cannot help: {err.value}"
    assert _digest(path) == before, f"{mode}: the file was written although {name} is refused"
    RESULTS[name, mode, "refused"] = "refused, nothing written"


def test_lazy_without_a_cache_is_refused_and_nothing_runs():
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    calls = []
    with pytest.raises(xs.SweepError, match=r"enable_cache"):
        ps.sweep(lambda a: calls.append(a), lazy=True, progress=False)
    assert calls == []
