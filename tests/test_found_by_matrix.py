"""Bugs the conformance matrix (tests/conformance/) found, each pinned by a test of its own.

- a CSV text column read by ``xs.command`` / ``xs.open_tree`` was refused (dtype object);
- ``merge_stores`` refused ragged outputs whose parts were padded to different extents;
- ``workers=2`` turned an unpicklable result into "A worker failed", not the ``OutputError``
  of a serial sweep, and wrote the file;
- ``job.stop()`` let cheap cells go on starting for up to 0.2 s.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings

import numpy as np
import pytest
import xarray as xr

import xsweep as xs

HANG = 60.0  # seconds: a guard against hangs, never a measure of speed
CSV = "count,label\n1.5,lo\n{a}.0,hé{x}\n"


# -- CSV text columns ----------------------------------------------------------------------
def _csv_runs(root):
    for a in (1, 2):
        (root / f"a={a}").mkdir(parents=True)
        (root / f"a={a}" / "out.csv").write_text(CSV.format(a=a, x="x" * a), encoding="utf-8")


def _check_csv(ds, prefix, text_kinds="U"):
    assert ds[f"{prefix}_count"].values.tolist() == [[1.5, 1.0], [1.5, 2.0]]
    assert ds[f"{prefix}_label"].dtype.kind in text_kinds
    assert ds[f"{prefix}_label"].values.tolist() == [["lo", "héx"], ["lo", "héxx"]]


def test_a_csv_text_column_read_by_open_tree_is_stored(tmp_path):
    _csv_runs(tmp_path)
    ds = xs.open_tree(f"{tmp_path}/a={{a}}/out.csv")
    _check_csv(ds, "out")


def test_a_csv_text_column_read_by_command_is_stored_in_the_file(tmp_path):
    _csv_runs(tmp_path / "src")
    prog = xs.command(
        ["cp", f"{tmp_path}/src/a={{a}}/out.csv", "{workdir}"],
        workdir=str(tmp_path / "runs" / "a={a}"),
        outputs={"t": "out.csv"},
    )
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    ps.enable_cache(tmp_path / "r.nc")
    _check_csv(ps.sweep(prog, progress=False), "t")
    with xr.open_dataset(tmp_path / "r.nc") as plain:
        _check_csv(plain, "t", text_kinds="O")  # xarray gives a char array's text as object


# -- merging ragged outputs of parts padded to different extents ----------------------------
RAGGED = {
    "float": lambda a: np.arange(float(a)),
    "int": lambda a: np.arange(a) + 1,
    "dataarray": lambda a: xr.DataArray(
        np.arange(float(a)), dims=["t"], coords={"t": np.arange(a) * 0.5}, attrs={"units": "m"}
    ),
}


@pytest.mark.parametrize("parts", [2, 4])
@pytest.mark.parametrize("kind", list(RAGGED))
def test_merge_pads_ragged_parts_to_the_larger_extent(tmp_path, kind, parts):
    """Each part is padded to its own extent (with 4 parts, each holds one cell: not even
    ragged); the merged file is padded to the largest, and every cell comes back exact."""
    a = xs.Parameter("a", values=[1, 2, 3, 4])
    ps = xs.ParameterSpace([a])
    calls = []

    def f(a):
        calls.append(a)
        return RAGGED[kind](a)

    paths = [tmp_path / f"part{k}.nc" for k in range(parts)]
    for k, path in enumerate(paths):
        ps.enable_cache(path)
        ps.sweep(f, part=(k, parts), progress=False)
    ps.disable_cache()
    out = xs.merge_stores(paths, tmp_path / "all.nc")
    padded = np.array([[i if i < n else np.nan for i in range(4)] for n in (1, 2, 3, 4)])
    if kind == "int":
        padded += 1
    with xr.open_dataset(out) as plain:  # padding is a hole, never a value
        np.testing.assert_array_equal(plain["f"].values, padded)
    calls.clear()
    ps.enable_cache(out)
    ds = ps.sweep(f, progress=False)
    np.testing.assert_array_equal(ds["f"].values, padded)
    for n in (1, 2, 3, 4):
        a.value = n
        got, want = ps.run_process(f), RAGGED[kind](n)
        assert type(got) is type(want)
        if kind == "dataarray":
            xr.testing.assert_identical(got.rename(None), want)  # named after f
        else:
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    assert calls == [], "the merged file did not answer every cell"


DTYPE = {"now": np.int32}  # a dict: the code fingerprint counts it by type only


def typed(a):
    return np.arange(a, dtype=DTYPE["now"])


def test_merge_still_refuses_ragged_outputs_of_another_dtype(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
    for k, dtype in enumerate([np.int32, np.float64]):
        DTYPE["now"] = dtype
        ps.enable_cache(tmp_path / f"part{k}.nc")
        ps.sweep(typed, part=(k, 2), progress=False)
    ps.disable_cache()
    with pytest.raises(xs.StoreMismatchError, match="cannot be merged"):
        xs.merge_stores([tmp_path / "part0.nc", tmp_path / "part1.nc"], tmp_path / "all.nc")
    assert not (tmp_path / "all.nc").exists()


# -- an unpicklable result on a process pool -------------------------------------------------
def generator(a):
    return (i for i in range(a))


def late_generator(a):
    if a == 3:  # late enough that the cells before it are back first, even on a busy machine
        time.sleep(2)
        return (i for i in range(a))
    return float(a)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.mark.parametrize("existing", [False, True])
def test_an_unpicklable_result_on_workers_is_the_serial_refusal(tmp_path, existing):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
    ps.enable_cache(path)
    if existing:
        ps.sweep(lambda a: a * 1.5, name="other", progress=False)
    before = _digest(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", xs.SweepFailuresWarning)
        with pytest.raises(
            xs.OutputError,
            match=r"(?s)of generator: the function returned "
            r"generator.*allowed.*Convert",
        ):
            ps.sweep(generator, workers=2, progress=False)
    assert _digest(path) == before, "the file was written although the result is refused"


def test_cells_before_an_unpicklable_one_are_kept(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
    ps.enable_cache(tmp_path / "r.nc")
    with pytest.raises(xs.OutputError, match=r"Cell a=3 of late_generator: .*generator"):
        ps.sweep(late_generator, workers=2, progress=False, chunksize=1)
    with xr.open_dataset(tmp_path / "r.nc") as plain:
        status = plain["late_generator_status"].values.tolist()
        values = plain["late_generator"].values.tolist()
    assert status[2] == 0, "the refused cell is not computed"
    assert [v for v, s in zip(values, status) if s == 1] == [
        float(a) for a, s in zip([1, 2, 3, 4], status) if s == 1
    ]
    assert 2 not in status, f"no cell is a failure: {status}"


# -- job.stop(): no new cell starts ----------------------------------------------------------
def test_stop_lets_no_new_cell_start():
    entered, release, calls = threading.Event(), threading.Event(), []

    def f(a):
        calls.append(a)
        if a == 3:
            entered.set()
            release.wait(HANG)
        return a

    ps = xs.ParameterSpace([xs.Parameter("a", values=range(10))])
    job = ps.sweep_async(f)
    assert entered.wait(HANG), "cell a=3 never started"
    job.stop(wait=False)
    release.set()
    job.stop(timeout=HANG)
    assert job.done() and job.stopped()
    assert calls == [0, 1, 2, 3]
    ds = job.result()
    assert ds["f"].values[:4].tolist() == [0, 1, 2, 3]
    assert np.isnan(ds["f"].values[4:]).all()


class Unpicklable(np.ndarray):
    """An array xsweep can store but pickle cannot send (as some array libraries' are)."""

    def __reduce__(self):
        raise TypeError("this array stays in its process")


def unpicklable_array(a):
    values = np.full(3, float(a))
    return values.view(Unpicklable) if a == 2 else values


def test_a_storable_result_that_cannot_be_sent_is_a_failed_cell_saying_why(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
    ps.enable_cache(tmp_path / "r.nc")
    with pytest.warns(xs.SweepFailuresWarning):
        ds = ps.sweep(unpicklable_array, workers=2, progress=False, chunksize=1)
    status = ds["unpicklable_array_status"].values.tolist()
    assert status == [1, 2, 1, 1], "only the cell whose result could not be sent failed"
    (message,) = ds.xsweep.failures()["error"].tolist()
    assert "cannot be sent back from the worker process" in message
    assert "this array stays in its process" in message
    assert ds["unpicklable_array"].values[[0, 2, 3]].tolist() == [[1.0] * 3, [3.0] * 3, [4.0] * 3]
