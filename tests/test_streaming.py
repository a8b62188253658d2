"""Results bigger than the memory budget: cells stream to the file, Datasets read lazily.

Every test uses a tiny ``memory_budget`` so that results many times bigger than it stream,
and checks exact values through the public API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import xarray as xr

import xsweep as xs
from xsweep.cli import main as cli_main

BUDGET = 64 * 1024  # bytes: every sweep below is many times bigger


def field(a, b):
    """A 32 x 32 float64 cell (8 KiB) whose every value says where it was computed."""
    return np.full((32, 32), a * 1000.0 + b) + np.arange(32)[None, :] / 100


def picture(a, b):
    """A uint8 image cell (3 KiB)."""
    return np.full((32, 32, 3), (a * 7 + b) % 256, dtype=np.uint8)


def make_space(na=6, nb=5):
    a = xs.Parameter("a", values=list(range(na)))
    b = xs.Parameter("b", values=list(range(nb)))
    return xs.ParameterSpace([a, b]), a, b


def check_all(ds, fn, var=None, cells=None):
    var = var or fn.__name__
    for a in ds["a"].values.tolist():
        for b in ds["b"].values.tolist():
            if cells is not None and (a, b) not in cells:
                continue
            got = ds[var].sel(a=a, b=b).values
            np.testing.assert_array_equal(got, fn(a, b))


def is_lazy(da: xr.DataArray) -> bool:
    return not isinstance(da.variable._data, np.ndarray)


# -- the sweep --------------------------------------------------------------------------------
def test_a_sweep_beyond_the_budget_returns_a_lazy_dataset_of_exact_values(tmp_path):
    ps, _, _ = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    ds = ps.sweep(field, progress=False)
    assert is_lazy(ds["field"])  # 240 KiB of results, budget 64 KiB: never all in memory
    import dask.array

    assert isinstance(ds["field"].data, dask.array.Array)
    # Chunks hold whole cells: no chunk splits a cell's (y, x) dims.
    assert ds["field"].data.chunks[2:] == ((32,), (32,))
    check_all(ds, field)
    assert ds["field"].sel(a=5, b=4).values[0, 1] == pytest.approx(5004.01)
    # The status and the scalar bookkeeping are in memory, as always.
    assert ds["field_status"].values.tolist() == np.ones((6, 5)).tolist()
    loaded = ds.load()
    np.testing.assert_array_equal(loaded["field"].values[2, 3], field(2, 3))
    # What a colleague opens without xsweep is the same.
    with xr.open_dataset(tmp_path / "r.nc") as shared:
        np.testing.assert_array_equal(shared["field"].values, loaded["field"].values)


def test_lazy_false_loads_and_lazy_true_reads_from_the_file(tmp_path):
    ps, _, _ = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    eager = ps.sweep(field, progress=False, lazy=False)
    assert isinstance(eager["field"].variable._data, np.ndarray)
    check_all(eager, field)
    small, _, _ = make_space(2, 2)
    small.enable_cache(tmp_path / "s.nc")  # default budget: these stay in memory
    assert not is_lazy(small.sweep(field, progress=False)["field"])
    lazy = small.sweep(field, progress=False, lazy=True)
    assert is_lazy(lazy["field"])
    check_all(lazy, field)


def test_lazy_without_a_cache_is_an_error_naming_enable_cache(tmp_path):
    ps, _, _ = make_space(2, 2)
    with pytest.raises(xs.SweepError, match=r"enable_cache"):
        ps.sweep(field, lazy=True)
    with pytest.raises(xs.SweepError, match="lazy must be"):
        ps.sweep(field, lazy="yes")
    ps.enable_cache(tmp_path / "r.nc")  # the way out
    check_all(ps.sweep(field, lazy=True, progress=False), field)


def test_bad_budgets_say_what_a_size_is(tmp_path):
    ps, _, _ = make_space(2, 2)
    for bad in ("a lot", -5, 0, True, "12 parsecs"):
        with pytest.raises(xs.SweepError, match="memory_budget"):
            ps.enable_cache(tmp_path / "r.nc", memory_budget=bad)
    ps.enable_cache(tmp_path / "r.nc", memory_budget="16KiB")  # 32 KiB of results
    assert is_lazy(ps.sweep(field, progress=False)["field"])


def test_uint8_images_and_several_outputs_stream(tmp_path):
    ps, _, _ = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)

    def both(a, b):
        return {"image": picture(a, b), "mean": float(a + b), "trace": np.arange(300.0) * a}

    ds = ps.sweep(both, progress=False, output_dims={"image": ("y", "x", "rgb")})
    assert ds["image"].dtype == np.uint8 and is_lazy(ds["image"])
    assert is_lazy(ds["trace"]) and not is_lazy(ds["mean"])  # scalars stay in memory
    check_all(ds, picture, var="image")
    assert ds["mean"].values.tolist() == (np.add.outer(range(6), range(5))).astype(float).tolist()
    np.testing.assert_array_equal(ds["trace"].sel(a=4, b=1).values, np.arange(300.0) * 4)


def test_cells_not_computed_read_as_nan_and_failed_cells_hold_no_bytes(tmp_path):
    ps, _, _ = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)

    def sometimes(a, b):
        if (a + b) % 4 == 0:
            raise ValueError("nope")
        return field(a, b)

    with pytest.warns(xs.SweepFailuresWarning):
        ds = ps.sweep(sometimes, progress=False, cells={"a": [0, 1, 2, 3]})
    values = ds["sometimes"].values
    for a in range(6):
        for b in range(5):
            if a > 3 or (a + b) % 4 == 0:
                assert np.isnan(values[a, b]).all()
            else:
                np.testing.assert_array_equal(values[a, b], field(a, b))

    def pictures_sometimes(a, b):
        if a == 1:
            raise ValueError("nope")
        return picture(a, b)

    with pytest.warns(xs.SweepFailuresWarning):
        ds = ps.sweep(pictures_sometimes, progress=False)
    with xr.open_dataset(tmp_path / "r.nc") as shared:
        assert (shared["pictures_sometimes"].sel(a=1).values == 0).all()
        assert shared["pictures_sometimes_status"].sel(a=1).values.tolist() == [2] * 5


# -- resume, run_process, growing ---------------------------------------------------------------
def test_an_interrupted_streamed_sweep_resumes_with_only_the_missing_cells(tmp_path):
    ps, _, _ = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    calls = []
    stop_at = [13]

    def flaky(a, b):
        calls.append((a, b))
        if len(calls) == stop_at[0]:
            raise KeyboardInterrupt
        return field(a, b)

    with pytest.raises(KeyboardInterrupt):
        ps.sweep(flaky, progress=False, name="field")
    assert len(calls) == 13
    calls.clear()
    stop_at[0] = None
    ds = ps.sweep(flaky, progress=False, name="field", on_change="keep")
    assert len(calls) == 30 - 12  # the interrupted cell and those after it
    check_all(ds, field)


ARMED = threading.Event()  # set: guarded() must not be called


def guarded(a, b):
    if ARMED.is_set():
        raise AssertionError("called although the cell is cached")
    return field(a, b)


def test_run_process_reads_a_streamed_cell_from_the_file_without_calling(tmp_path):
    ps, a, b = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    ps.sweep(guarded, progress=False)
    a.value, b.value = 4, 2
    ARMED.set()
    try:
        np.testing.assert_array_equal(ps.run_process(guarded), field(4, 2))
        assert ps.is_computed(guarded)
    finally:
        ARMED.clear()
    # Force a recompute of one cell: written back, and still exact after a reopen.
    np.testing.assert_array_equal(ps.run_process(guarded, force_recompute=True), field(4, 2))
    ps.disable_cache()
    fresh, a2, b2 = make_space()
    fresh.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    a2.value, b2.value = 1, 3
    ARMED.set()
    try:
        np.testing.assert_array_equal(fresh.run_process(guarded), field(1, 3))
        check_all(fresh.sweep(guarded, progress=False), field, var="guarded")
    finally:
        ARMED.clear()


def test_run_process_write_backs_reach_the_file(tmp_path):
    ps, a, b = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    ps.sweep(field, progress=False, cells={"a": [0]})
    for av, bv in [(3, 1), (5, 4), (2, 2)]:
        a.value, b.value = av, bv
        np.testing.assert_array_equal(ps.run_process(field), field(av, bv))
    ps.disable_cache()  # publishes what only the journal holds
    with xr.open_dataset(tmp_path / "r.nc") as shared:
        for av, bv in [(3, 1), (5, 4), (2, 2), (0, 3)]:
            np.testing.assert_array_equal(shared["field"].sel(a=av, b=bv).values, field(av, bv))
        assert int((shared["field_status"] == 1).sum()) == 8


def test_growing_and_regridding_a_streamed_store_keeps_every_cell(tmp_path):
    path = tmp_path / "r.nc"
    ps, _, _ = make_space(4, 3)
    ps.enable_cache(path, memory_budget=BUDGET)
    ps.sweep(field, progress=False)
    ps.disable_cache()
    # More values, in another order: old cells move, new ones are computed.
    a = xs.Parameter("a", values=[5, 3, 2, 1, 0, 4])
    b = xs.Parameter("b", values=[0, 1, 2, 3])
    grown = xs.ParameterSpace([a, b])
    grown.enable_cache(path, memory_budget=BUDGET)
    calls = []

    def counted(a, b):
        calls.append((a, b))
        return field(a, b)

    ds = grown.sweep(counted, progress=False, name="field", on_change="keep")
    assert len(calls) == 24 - 12
    check_all(ds, field)
    # A new parameter the old results were computed at.
    c = xs.Parameter("c", values=[0.0, 0.5])
    wider = xs.ParameterSpace([a, b, c])
    wider.enable_cache(path, memory_budget=BUDGET, computed_at={"c": 0.0})

    def with_c(a, b, c):
        return field(a, b) + c

    ds = wider.sweep(with_c, progress=False, name="field", on_change="keep")
    for av in [5, 0]:
        for cv in [0.0, 0.5]:
            np.testing.assert_array_equal(
                ds["field"].sel(a=av, b=1, c=cv).values, field(av, 1) + cv
            )


def test_ragged_outputs_grow_on_disk(tmp_path):
    ps, _, _ = make_space(4, 3)
    ps.enable_cache(tmp_path / "r.nc", memory_budget=2048)

    def ragged(a, b):
        return np.arange(200 + 50 * a, dtype=np.float64) + b

    ds = ps.sweep(ragged, progress=False)
    for a in range(4):
        for b in range(3):
            got = ds["ragged"].sel(a=a, b=b).values
            n = 200 + 50 * a
            np.testing.assert_array_equal(got[:n], np.arange(n, dtype=np.float64) + b)
            assert np.isnan(got[n:]).all()
    a_, b_ = ps["a"], ps["b"]
    a_.value, b_.value = 1, 2
    np.testing.assert_array_equal(ps.run_process(ragged), np.arange(250.0) + 2)


def test_compact_merge_and_info_on_streamed_stores(tmp_path, capsys):
    ps, a, b = make_space()
    for part in range(2):
        ps.enable_cache(tmp_path / f"part{part}.nc", memory_budget=BUDGET)
        ps.sweep(field, progress=False, part=(part, 2))
    ps.disable_cache()
    out = xs.merge_stores([tmp_path / "part0.nc", tmp_path / "part1.nc"], tmp_path / "all.nc")
    with xr.open_dataset(out) as merged:
        check_all(merged, field)
    assert (
        cli_main(
            [
                "merge",
                str(tmp_path / "part0.nc"),
                str(tmp_path / "part1.nc"),
                "-o",
                str(tmp_path / "cli.nc"),
            ]
        )
        == 0
    )
    with xr.open_dataset(tmp_path / "cli.nc") as merged:
        check_all(merged, field)
    assert cli_main(["info", str(tmp_path / "all.nc")]) == 0
    assert "30 computed" in capsys.readouterr().out
    narrow = xs.ParameterSpace(
        [xs.Parameter("a", values=[1, 4]), xs.Parameter("b", values=[0, 2, 3])]
    )
    narrow.enable_cache(tmp_path / "all.nc", memory_budget=BUDGET)
    assert narrow.compact_cache() == {"a": 4, "b": 2}
    narrow.disable_cache()
    with xr.open_dataset(tmp_path / "all.nc") as compacted:
        assert compacted["field"].shape == (2, 3, 32, 32)
        check_all(compacted, field)


def test_explore_montage_and_the_accessor_work_on_a_lazy_result(tmp_path):
    ps, _, _ = make_space(3, 2)
    ps.enable_cache(tmp_path / "r.nc", memory_budget=4096)
    ds = ps.sweep(picture, progress=False, output_dims={"picture": ("y", "x", "rgb")})
    assert is_lazy(ds["picture"])
    sheet = ds.xsweep.montage("picture", row="a", col="b", label=False, pad=0)
    pixels = np.asarray(sheet)
    assert pixels.shape == (96, 64, 3)
    assert pixels[32 * 2 + 1, 32 + 1].tolist() == picture(2, 1)[0, 0].tolist()
    view = ds.xsweep.explore("picture")
    view.controls["a"].value = 2
    assert view.controls["a"].value == 2
    assert ds.xsweep.failures().empty
    space_view = ps.explore(picture, background=False)
    assert space_view is not None


# -- memory, measured in child processes -------------------------------------------------------
MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import xsweep as xs

    def peak():
        # VmHWM, not ru_maxrss: that one keeps the parent's peak across fork and exec.
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024

    n, path, budget = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    cell = np.zeros((256, 256), dtype=np.float64)  # 512 KiB a cell

    def big(i):
        cell[0, 0] = i
        return cell

    # Warm up: imports and first uses (netCDF4, dask, xarray's indexes) are not per-cell costs.
    warm = xs.ParameterSpace([xs.Parameter("i", values=range(4))])
    if budget != "none":
        warm.enable_cache(path + ".warm.nc", memory_budget=1024)
    warm.sweep(big, progress=False)["big"].isel(i=1).values
    ps = xs.ParameterSpace([xs.Parameter("i", values=range(n))])
    if budget != "none":
        ps.enable_cache(path, memory_budget=int(budget))
    before = peak()
    ds = ps.sweep(big, progress=False)
    after = peak()
    ok = all(float(ds["big"].isel(i=i).values[0, 0]) == i for i in (0, n // 2, n - 1))
    print(json.dumps({"peak": after - before, "exact": ok}))
    """
)


def run_memory_child(tmp_path, n, budget):
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(n), str(tmp_path / "m.nc"), str(budget)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peak_memory_stays_within_the_budget_not_the_results(tmp_path):
    """400 cells of 512 KiB: 200 MiB of results against a 4 MiB budget."""
    streamed = run_memory_child(tmp_path, 400, 4 << 20)
    assert streamed["exact"]
    assert streamed["peak"] < 40 << 20, streamed  # in memory it takes 200 MiB and more
    (tmp_path / "m.nc").unlink()
    in_memory = run_memory_child(tmp_path, 400, "none")
    assert in_memory["exact"]
    assert in_memory["peak"] > 190 << 20, in_memory  # the measure sees the difference


def test_an_in_memory_sweep_that_cannot_fit_fails_at_once_and_a_cache_is_the_way_out(tmp_path):
    """1 MiB cells over a million-cell grid: a TiB the machine does not have."""
    a = xs.Parameter("a", values=range(1000))
    b = xs.Parameter("b", values=range(1000))
    ps = xs.ParameterSpace([a, b])
    calls = []

    def huge(a, b):
        calls.append(1)
        return np.full((1024, 1024), (a + b) % 256, dtype=np.uint8)

    with pytest.raises(xs.ResultsTooLargeError, match=r"976\.6 GiB.*enable_cache") as info:
        ps.sweep(huge, progress=False)
    assert isinstance(info.value, MemoryError)
    assert len(calls) == 1  # the first cell tells the size; nothing more was computed
    ps.enable_cache(tmp_path / "huge.nc")  # the way out the message names
    ds = ps.sweep(huge, progress=False, cells={"a": [0, 999], "b": [1]})
    assert ds["huge"].sel(a=999, b=1).values[5, 5] == (999 + 1) % 256
    assert ds["huge"].sel(a=0, b=1).values.sum() == 1024 * 1024
    assert int(ds["huge_status"].sum()) == 2
    assert os.stat(tmp_path / "huge.nc").st_blocks * 512 < 100 << 20  # holes, not a TiB


# -- parallel sweeps and real processes ----------------------------------------------------------
def test_a_process_pool_streams_with_bounded_results_in_flight(tmp_path):
    ps, _, _ = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    ds = ps.sweep(field, workers=2, progress=False)
    check_all(ds, field)


def test_a_dask_cluster_streams(tmp_path):
    distributed = pytest.importorskip("distributed")
    ps, _, _ = make_space(4, 3)
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    with distributed.Client(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as client:
        ds = ps.sweep(field, executor=client, progress=False)
        # The lazy result pickles: the cluster's workers read the cells from the file.
        total = ds["field"].sum(dim=("field_dim_0", "field_dim_1")).compute()
    expected = [[field(a, b).sum() for b in range(3)] for a in range(4)]
    np.testing.assert_allclose(total.values, expected)
    check_all(ds, field)


KILL_CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import xsweep as xs
    sys.path.insert(0, sys.argv[2])
    from test_streaming import field, make_space

    ps, _, _ = make_space()
    ps.enable_cache(sys.argv[1], memory_budget=64 * 1024, fsync_interval=None)
    log = open(sys.argv[1] + ".started", "a")

    def slow(a, b):
        log.write("x")
        log.flush()
        time.sleep(0.05)
        return field(a, b)

    ps.sweep(slow, progress=False, name="field")
    """
)


def test_sigkill_mid_stream_loses_nothing_finished_and_resumes_exactly(tmp_path):
    path = tmp_path / "r.nc"
    here = os.path.dirname(__file__)
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(path), here])
    deadline = time.monotonic() + 120
    started = tmp_path / "r.nc.started"
    # Kill once some cells are recorded (the staged file holds their bytes).
    while time.monotonic() < deadline and child.poll() is None:
        if started.exists() and started.stat().st_size >= 12:
            break
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    ps, _, _ = make_space()
    ps.enable_cache(path, memory_budget=BUDGET)
    calls = []

    def counted(a, b):
        calls.append(1)
        return field(a, b)

    ds = ps.sweep(counted, progress=False, name="field", on_change="keep")
    assert child.returncode == -signal.SIGKILL
    assert len(calls) <= 30 - 11, len(calls)  # cells finished before the kill were kept
    check_all(ds, field)
    with xr.open_dataset(path) as shared:
        check_all(shared, field)


def test_a_background_sweep_streams_and_stops_into_a_resumable_store(tmp_path):
    ps, _, _ = make_space()
    ps.enable_cache(tmp_path / "r.nc", memory_budget=BUDGET)
    gate = threading.Event()
    started = threading.Semaphore(0)

    def held(a, b):
        started.release()
        if a >= 2:
            gate.wait(30)
            time.sleep(0.1)  # the stop is seen within 0.2 s of work
        return field(a, b)

    job = ps.sweep_async(held, progress=False, name="field")
    for _ in range(11):  # cells (0, *) and (1, *) finish; (2, 0) is held
        assert started.acquire(timeout=30)
    job.stop(wait=False)
    gate.set()
    ds = job.result(timeout=60)
    assert job.stopped
    done = ds["field_status"].values == 1
    assert 11 <= done.sum() < 30
    computed = {
        (a, b) for a in range(6) for b in range(5) if ds["field_status"].sel(a=a, b=b).item() == 1
    }
    check_all(ds, field, cells=computed)
    assert np.isnan(ds["field"].values[~done]).all()
    again = ps.sweep(field, progress=False, name="field", on_change="keep")
    check_all(again, field)


def test_a_lazy_result_never_reads_a_file_that_replaced_its_own(tmp_path):
    """xarray may close a file (its cache of open files is full) and open the path again;
    a later publish may have replaced the file: reading says so instead of mixing files."""
    ps, a, b = make_space(3, 2)
    ps.enable_cache(tmp_path / "r.nc", memory_budget=16 * 1024)  # 48 KiB of results
    ds = ps.sweep(field, progress=False)
    assert is_lazy(ds["field"])
    np.testing.assert_array_equal(ds["field"].sel(a=1, b=1).values, field(1, 1))
    ps.sweep(picture, progress=False)  # another function: the file is replaced
    with xr.set_options(file_cache_maxsize=1):
        others = [xr.open_dataset(tmp_path / "r.nc") for _ in range(2)]  # push ours out
        with pytest.raises(xs.StoreError, match="replaced by a later publish.*Sweep again"):
            _ = ds["field"].sel(a=2, b=0).values
        for other in others:
            other.close()
    # The way out: sweep again (nothing is recomputed) for a Dataset of the new file.
    again = ps.sweep(field, progress=False)
    check_all(again, field)
