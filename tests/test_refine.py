"""Adaptive refinement (``ps.refine``): continuous parameters, losses, goals, the cache file,
resuming after a SIGKILL, executors, background jobs and the live grid view."""

from __future__ import annotations

import copy
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xsweep as xs

HELPERS = Path(__file__).resolve().parent / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

import refine_child  # noqa: E402
from guards import hang_guard  # noqa: E402


def continuous(name="x", n=5, low=0.0, high=1.0, **more):
    return xs.Parameter(name, values=np.linspace(low, high, n), bounds=(low, high), **more)


def peak(x):
    """A narrow peak on a slope (adaptive's Learner1D example)."""
    return x + 0.01**2 / (0.01**2 + (x - 0.3) ** 2)


def interpolation_error(x, y, fn=peak):
    """Mean absolute error of linear interpolation of (x, y) against ``fn`` on a fine grid."""
    fine = np.linspace(0, 1, 20001)
    return float(np.mean(np.abs(np.interp(fine, x, y) - fn(fine))))


class Counter:
    """A function that counts its calls (thread-safe), by cell."""

    def __init__(self, fn, name):
        self.fn = fn
        self.calls = []
        self.lock = threading.Lock()
        self.__name__ = name

    def __call__(self, **kw):
        with self.lock:
            self.calls.append(tuple(kw.values()))
        return self.fn(**kw)


# ---------------------------------------------------------------------------------------------
# Continuous parameters
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, bounds, message",
    [
        (["a", "b"], (0, 1), "its values are strings"),
        ([True, False], (0, 1), "its values are bools"),
        ([0.0, 1.0], (1.0,), "must be a pair"),
        ([0.0, 1.0], "ab", "must be a pair"),
        ([0.0, 1.0], (0.0, np.inf), "two finite numbers"),
        ([0.0, 1.0], (0.0, True), "two finite numbers"),
        ([0.0, 1.0], (1.0, 0.0), "must have low < high"),
        ([0.5, 0.0, 1.0], (0.0, 1.0), "increasing order"),
        ([0.0, 1.5], (0.0, 1.0), "values [1.5] are outside its bounds"),
        ([1, 3], (0.5, 3), "bounds must be whole numbers"),
    ],
)
def test_bounds_are_checked_with_a_way_out(values, bounds, message):
    with pytest.raises(xs.ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        xs.Parameter("x", values=values, bounds=bounds)


def test_a_continuous_parameter_keeps_its_bounds_rounds_and_current_value():
    x = continuous(n=3)
    x.value = 1.0
    assert x.bounds == (0.0, 1.0) and "bounds=(0.0, 1.0)" in repr(x)
    assert x.refinement_rounds.tolist() == [0, 0, 0]
    x.insert_values([0.75, 0.25], refinement_round=2)
    assert x.values.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert x.refinement_rounds.tolist() == [0, 2, 0, 2, 0]
    assert x.value == 1.0 and x.position == 4  # the current value stays
    assert x.index(0.25) == 1 and not x.values.flags.writeable
    for copied in (copy.deepcopy(x), pickle.loads(pickle.dumps(x))):
        assert copied.bounds == (0.0, 1.0)
        assert copied.refinement_rounds.tolist() == [0, 2, 0, 2, 0]
        assert not copied.refinement_rounds.flags.writeable


@pytest.mark.parametrize(
    "added, message",
    [
        ([1.5], "outside its bounds"),
        ([0.5], "one of its values already"),
        ([0.5 + 1e-12], "one of its values already"),  # within index()'s tolerance
        ([0.3, 0.3], "one of its values already"),
        (["a"], "its values are floats"),
    ],
)
def test_inserting_values_refuses_what_would_break_the_grid(added, message):
    x = continuous(n=3)
    with pytest.raises(xs.ParameterError, match=message):
        x.insert_values(added, refinement_round=1)
    assert x.values.tolist() == [0.0, 0.5, 1.0]  # unchanged


def test_a_discrete_parameter_never_gains_values():
    n = xs.Parameter("n", values=[1, 2])
    assert n.bounds is None and n.refinement_rounds is None
    with pytest.raises(xs.ParameterError, match="discrete"):
        n.insert_values([3], refinement_round=1)
    with pytest.raises(xs.ParameterError, match="exactly ints"):
        xs.Parameter("n", values=[1, 9], bounds=(1, 9)).insert_values([2.5], refinement_round=1)


# ---------------------------------------------------------------------------------------------
# Refining
# ---------------------------------------------------------------------------------------------
def test_refinement_beats_a_uniform_grid_and_computes_each_cell_once():
    f = Counter(peak, "peak")
    ps = xs.ParameterSpace([continuous(n=5)])
    reports = []
    ds = ps.refine(f, max_cells=40, on_round=reports.append)
    x = ds["x"].values
    assert x.size == 40 and np.all(np.diff(x) > 0) and x[0] == 0.0 and x[-1] == 1.0
    assert sorted(f.calls) == sorted((v,) for v in x.tolist())  # each cell once
    assert ps["x"].values.tolist() == x.tolist()  # the parameter holds the refined values
    np.testing.assert_allclose(ds["peak"].values, peak(x))
    uniform = np.linspace(0, 1, 40)
    refined_error = interpolation_error(x, ds["peak"].values)
    assert refined_error * 4 < interpolation_error(uniform, peak(uniform))
    # The rounds: each report says what it added, and the coordinate says the same.
    assert reports[0].round == 0 and reports[0].added == {} and reports[0].cells == 5
    assert [r.round for r in reports] == list(range(len(reports)))
    assert reports[-1].stop == "max_cells" and reports[-1].cells == 40
    assert all(r.stop is None for r in reports[:-1])
    rounds = ds["x_refinement_round"]
    assert rounds.dims == ("x",) and "x_refinement_round" in ds.coords
    for r in reports[1:]:
        added = r.added["x"]
        assert rounds.sel(x=added).values.tolist() == [r.round] * len(added)
        assert r.computed == len(added)
    assert (rounds.sel(x=np.linspace(0, 1, 5)) == 0).all()


def test_max_cells_counts_whole_slabs_and_is_never_exceeded():
    ps = xs.ParameterSpace(
        [continuous("x", 4, -1, 1), continuous("y", 3, -1, 1), xs.Parameter("m", values=[1, 2])]
    )
    reports = []

    def front(x, y, m):
        return np.tanh((x - 0.4 * y) / 0.1) * m

    ds = ps.refine(front, max_cells=100, on_round=reports.append)
    sizes = [r.cells for r in reports]
    assert all(s <= 100 for s in sizes) and sizes == sorted(sizes)
    assert ds.sizes["m"] == 2  # discrete: never refined
    assert ds.sizes["x"] * ds.sizes["y"] * 2 == sizes[-1]
    assert reports[-1].stop == "max_cells"
    # No slab fits any more: one more value of either parameter would pass the budget.
    assert (ds.sizes["x"] + 1) * ds.sizes["y"] * 2 > 100
    assert ds.sizes["x"] * (ds.sizes["y"] + 1) * 2 > 100
    for r in reports[1:]:  # each round computed exactly its new slabs
        assert r.computed == r.cells - reports[r.round - 1].cells
    assert "m_refinement_round" not in ds.coords


def test_tolerance_stops_when_every_weighted_loss_is_below_it(tmp_path):
    ps = xs.ParameterSpace([continuous(n=3)])
    ps.enable_cache(tmp_path / "wave.nc")
    reports = []
    ds = ps.refine(
        lambda x: np.sin(6 * x), name="wave", loss="change", tolerance=1e-3, on_round=reports.append
    )
    assert reports[-1].stop == "tolerance" and reports[-1].worst <= 1e-3
    assert all(r.worst > 1e-3 for r in reports[:-1])
    x, y = ds["x"].values, ds["wave"].values
    weighted = np.abs(np.diff(y)) * np.diff(x)
    assert weighted.max() <= 1e-3 < (np.abs(np.diff(y[::2])) * np.diff(x[::2])).max()
    # The same goal again computes nothing and adds nothing: the cache has every cell.
    again = []
    ps.refine(
        lambda x: np.sin(6 * x), name="wave", loss="change", tolerance=1e-3, on_round=again.append
    )
    assert [(r.computed, r.stop) for r in again] == [(0, "tolerance")]
    ps.disable_cache()


def test_a_flat_function_converges_and_a_step_converges_by_its_width():
    ps = xs.ParameterSpace([continuous(n=5)])
    flat = []
    ps.refine(lambda x: 1.0, name="flat", tolerance=0.0, on_round=flat.append)
    assert [(r.round, r.stop) for r in flat] == [(0, "converged")]
    step = []
    ds = xs.ParameterSpace([continuous(n=5)]).refine(
        lambda x: float(x > 0.3), name="step", tolerance=1e-3, on_round=step.append
    )
    x = ds["x"].values
    assert step[-1].stop == "tolerance"
    around = x[(x > 0.29) & (x < 0.31)]
    assert around.size >= 2 and x.size < 30  # it homes in on the step, nowhere else


def test_max_seconds_stops_mid_round_and_the_next_refinement_completes_it(tmp_path):
    calls = []

    @xs.version("1")
    def slow(x):
        calls.append(x)
        time.sleep(0.05)
        return peak(x)

    ps = xs.ParameterSpace([continuous(n=5)])
    ps.enable_cache(tmp_path / "slow.nc")
    ps.refine(slow, max_cells=9)
    reports = []
    started = time.monotonic()
    ds = ps.refine(slow, max_cells=200, per_round=8, max_seconds=0.3, on_round=reports.append)
    assert time.monotonic() - started < 5
    first = reports[0].round  # the round the first call ended in
    assert [(r.round, r.stop) for r in reports] == [(first, None), (first + 1, "max_seconds")]
    status = ds["slow_status"].values
    assert ds.sizes["x"] == 17 and 0 < (status == 0).sum() < 8  # stopped mid-round
    missing = set(ds["x"].values[status == 0].tolist())
    calls.clear()
    again = []
    ps.refine(slow, max_cells=17, on_round=again.append)
    assert set(calls) == missing and again[0].computed == len(missing)
    assert again[0].round == first + 1 and again[-1].stop == "max_cells"
    ps.disable_cache()


def test_per_round_adds_that_many_values_and_a_goal_is_required():
    ps = xs.ParameterSpace([continuous(n=5)])
    reports = []
    ps.refine(peak, max_cells=20, per_round=3, on_round=reports.append)
    assert [sum(len(v) for v in r.added.values()) for r in reports[1:]] == [3, 3, 3, 3, 3]
    with pytest.raises(xs.SweepError, match="needs a goal"):
        ps.refine(peak)
    for bad, match in (
        ({"max_cells": 0}, "max_cells must be a whole number"),
        ({"max_cells": 2.5}, "max_cells must be a whole number"),
        ({"max_seconds": -1}, "max_seconds must be a number > 0"),
        ({"tolerance": float("nan")}, "tolerance must be a number >= 0"),
        ({"per_round": True, "max_cells": 9}, "per_round must be a whole number"),
        ({"loss": "steep", "max_cells": 9}, "loss='steep' is not one of"),
        ({"reduce": 3, "max_cells": 9}, "reduce must be a callable"),
        ({"max_cells": 9, "order": "random"}, "order='random' is not one of"),
        ({"max_cells": 9, "executor": ProcessPoolExecutor, "workers": 2}, "either executor="),
    ):
        with pytest.raises(xs.SweepError, match=match):
            ps.refine(peak, **bad)
    assert ps["x"].values.size == 20  # refused before anything ran
    assert ps.refine(peak, max_cells=21).sizes["x"] == 21  # and nothing was left locked


def test_along_names_the_parameters_to_refine():
    ps = xs.ParameterSpace(
        [continuous("x", 3), continuous("y", 3), xs.Parameter("mode", values=["a", "b"])]
    )

    def f(x, y, mode):
        return x * 10 + np.sin(5 * y)

    ds = ps.refine(f, along="y", max_cells=30)
    assert ds.sizes["x"] == 3 and ds.sizes["y"] == 5
    for along, match in (
        ("mode", "a discrete parameter: only continuous"),
        ("z", "'z', which is not a parameter"),
        ([], "along must be a parameter name"),
    ):
        with pytest.raises(xs.SweepError, match=match):
            ps.refine(f, along=along, max_cells=40)
    with pytest.raises(xs.SweepError, match="is not swept over it"):
        ps.refine(f, along="x", params=["y", "mode"], max_cells=40)
    discrete = xs.ParameterSpace([xs.Parameter("a", values=[1.0, 2.0])])
    with pytest.raises(xs.SweepError, match="no continuous parameter"):
        discrete.refine(lambda a: a, max_cells=9)


def test_held_parameters_stay_at_their_value():
    ps = xs.ParameterSpace([continuous("x", 3), continuous("y", 3)])
    ps["y"].value = 0.5
    ds = ps.refine(lambda x, y: np.sin(9 * x) + y, name="g", params=["x"], max_cells=12)
    assert ds["g"].dims == ("x",) and float(ds["y"]) == 0.5 and ds.sizes["x"] == 12
    assert ps["y"].values.size == 3


def test_int_parameters_are_refined_at_whole_numbers():
    n = xs.Parameter("n", values=[1, 50, 100], bounds=(1, 100))
    ps = xs.ParameterSpace([n])
    ds = ps.refine(lambda n: float(n > 37), name="jump", tolerance=0.0)
    values = ds["n"].values
    assert values.dtype.kind == "i" and np.all(np.diff(values) > 0)
    assert {37, 38} <= set(values.tolist())  # found the jump exactly: no midpoint is left
    assert len(values) < 20


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------
def test_curvature_leaves_straight_stretches_alone():
    def kinked(x):
        return np.abs(x - 0.6)  # straight on both sides of a kink

    ds = xs.ParameterSpace([continuous(n=6)]).refine(kinked, loss="curvature", max_cells=16)
    x = ds["x"].values
    new = x[ds["x_refinement_round"].values > 0]
    assert np.all(np.abs(new - 0.6) < 0.2), new  # only around the kink


def test_a_callable_loss_gets_lines_and_its_mistakes_are_named():
    seen = []

    def spread(x, y):
        seen.append((x.copy(), y.shape))
        return np.abs(np.diff(y, axis=-1))  # per line: the largest counts

    ps = xs.ParameterSpace([continuous("x", 3), continuous("y", 4)])

    def f(x, y):
        return x * y

    ps.refine(f, along="x", loss=spread, max_cells=16)
    assert seen[0][1] == (4, 3)  # one line per value of y, along x
    assert seen[0][0].dtype == np.float64

    for loss, match in (
        (lambda x, y: np.ones(5), r"returned ndarray of shape \(5,\)"),
        (lambda x, y: -np.ones(x.size - 1), "returned negative losses"),
        (lambda x, y: 1 / 0, "raised for parameter 'x': ZeroDivisionError"),
        (lambda x, y: "big", "returned str"),
    ):
        with pytest.raises(xs.SweepError, match=match):
            xs.ParameterSpace([continuous("x", 3)]).refine(
                lambda x: x, name="line", loss=loss, max_cells=9
            )
    nan_ok = xs.ParameterSpace([continuous("x", 3)])
    out = nan_ok.refine(
        lambda x: x, name="line", loss=lambda x, y: np.full(x.size - 1, np.nan), max_cells=9
    )
    assert out.sizes["x"] == 3  # NaN losses count as 0: nothing to split


def test_failed_cells_neither_stop_nor_derail_refinement():
    calls = []

    def fragile(x):
        calls.append(x)
        if 0.24 < x < 0.26:
            raise ValueError("no solution here")
        return peak(x)

    ps = xs.ParameterSpace([continuous(n=5)])
    with pytest.warns(xs.SweepFailuresWarning, match="1 cells of .*fragile failed during"):
        ds = ps.refine(fragile, max_cells=30)
    assert ds.sizes["x"] == 30 and len(calls) == 30  # the failed cell was not retried
    assert int((ds["fragile_status"] == 2).sum()) == 1
    assert np.isnan(ds["fragile"].sel(x=0.25))
    x = ds["x"].values
    # The peak next to the failed cell was still found: the loss skips the failure.
    assert int(((x > 0.27) & (x < 0.33)).sum()) >= 5
    assert len(ps.failures(fragile)) == 1


# ---------------------------------------------------------------------------------------------
# What drives it: outputs, reductions
# ---------------------------------------------------------------------------------------------
def test_array_outputs_refine_through_a_reduction_called_once_per_cell():
    reduced = []

    def image(x):
        return np.full((4, 5), peak(x))

    def mean(img):
        reduced.append(img.shape)
        return img.mean()

    ps = xs.ParameterSpace([continuous(n=5)])
    with pytest.raises(xs.SweepError, match="give a reduction|Give a reduction"):
        ps.refine(image, max_cells=20)
    ds = ps.refine(image, reduce=mean, max_cells=20, output_dims={"image": ("row", "col")})
    assert ds["image"].dims == ("x", "row", "col") and ds.sizes["x"] == 20
    assert len(reduced) == 20 and set(reduced) == {(4, 5)}  # once per cell, over all rounds
    with pytest.raises(xs.SweepError, match=r"reduce failed on the cell x=0.0 .*shape \(4, 5\)"):
        xs.ParameterSpace([continuous(n=5)]).refine(
            image, reduce=lambda img: img[9], max_cells=9
        )


def test_several_outputs_need_a_choice():
    def stats(x):
        return {"mean": peak(x), "label": f"{x:.3f}", "width": 1.0}

    ps = xs.ParameterSpace([continuous(n=5)])
    with pytest.raises(xs.SweepError, match=r"several outputs, \['mean', 'label', 'width'\]"):
        ps.refine(stats, max_cells=20)
    with pytest.raises(xs.SweepError, match="holds <U5 values; refinement needs numbers"):
        ps.refine(stats, output="label", max_cells=20)
    with pytest.raises(xs.SweepError, match="has no output 'median'"):
        ps.refine(stats, output="median", max_cells=20)
    flat = []
    ps.refine(stats, output="width", tolerance=0.0, on_round=flat.append)
    assert flat[-1].stop == "converged"
    ds = ps.refine(stats, output="mean", max_cells=20)
    assert ds.sizes["x"] == 20


# ---------------------------------------------------------------------------------------------
# The cache file
# ---------------------------------------------------------------------------------------------
def test_the_file_records_bounds_and_rounds_for_plain_xarray(tmp_path):
    path = tmp_path / "peak.nc"
    ps = xs.ParameterSpace([continuous(n=5, units="m"), xs.Parameter("k", values=[1, 2])])
    ps.enable_cache(path)

    @xs.version("1")
    def f(x, k):
        return peak(x) * k

    ds = ps.refine(f, max_cells=30)
    ps.disable_cache()
    with xr.open_dataset(path) as plain:
        plain.load()
    assert "x_refinement_round" in plain.coords and plain["x_refinement_round"].dims == ("x",)
    assert "k_refinement_round" not in plain.variables
    np.testing.assert_array_equal(plain["x"].values, ds["x"].values)  # sorted, as refined
    np.testing.assert_array_equal(plain["x_refinement_round"], ds["x_refinement_round"])
    assert plain["x"].attrs["xsweep_bounds"].tolist() == [0.0, 1.0]
    assert plain["x"].attrs["units"] == "m"
    assert plain["x_refinement_round"].attrs["long_name"].startswith("refinement round")
    assert int((plain["f_status"] == 1).sum()) == 30
    # A new space declared as at first gets the refined values back from the file.
    calls = []

    @xs.version("1")
    def f(x, k):  # noqa: F811 - the same function, counting its calls
        calls.append((x, k))
        return peak(x) * k

    again = xs.ParameterSpace([continuous(n=5, units="m"), xs.Parameter("k", values=[1, 2])])
    again.enable_cache(path)
    resumed = again.refine(f, max_cells=30)
    assert calls == [] and resumed.sizes["x"] == 15
    xr.testing.assert_identical(resumed, ds)
    assert again["x"].refinement_rounds.tolist() == ds["x_refinement_round"].values.tolist()
    assert again.run_process(f, x=float(ds["x"][3]), k=2) == pytest.approx(2 * peak(ds["x"][3]))
    assert calls == []
    again.disable_cache()


def test_merging_and_compacting_keep_the_rounds(tmp_path):
    parts = []
    for k, (low, high) in enumerate([(0.0, 0.5), (0.5, 1.0)]):
        ps = xs.ParameterSpace([continuous(n=3, low=low, high=high)])
        parts.append(tmp_path / f"part{k}.nc")
        ps.enable_cache(parts[-1])
        ps.refine(peak, max_cells=7)
        ps.disable_cache()
    merged = xs.merge_stores([str(p) for p in parts], str(tmp_path / "merged.nc"))
    with xr.open_dataset(merged) as m:
        m.load()
    assert m.sizes["x"] == 13 and np.all(np.diff(m["x"].values) > 0)
    for part in parts:
        with xr.open_dataset(part) as p:
            np.testing.assert_array_equal(
                m["x_refinement_round"].sel(x=p["x"].values), p["x_refinement_round"]
            )
    narrow = xs.ParameterSpace([xs.Parameter("x", values=[0.0, 0.25, 0.5], bounds=(0.0, 1.0))])
    narrow.enable_cache(merged)
    narrow.compact_cache()
    narrow.disable_cache()
    with xr.open_dataset(merged) as m:
        assert m["x"].values.tolist() == [0.0, 0.25, 0.5]
        assert m["x_refinement_round"].values.tolist() == [0, 0, 0]


def test_a_damaged_rounds_variable_is_refused(tmp_path):
    path = tmp_path / "r.nc"
    ps = xs.ParameterSpace([continuous(n=3)])
    ps.enable_cache(path)
    ps.refine(peak, max_cells=5)
    ps.disable_cache()
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        nc["x_refinement_round"][0] = -4
    with pytest.raises(xs.StoreError, match="x_refinement_round"):
        xs.ParameterSpace([continuous(n=3)]).enable_cache(path)


# ---------------------------------------------------------------------------------------------
# SIGKILL in the middle of a round, and resuming
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def child(tmp_path):
    started = []

    def start(**cfg) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HELPERS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        env.setdefault("MPLBACKEND", "Agg")
        cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()}
        proc = subprocess.Popen(
            [sys.executable, "-c", "import refine_child; refine_child.main()", json.dumps(cfg)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def reference_grid(tmp_path):
    """The grid an uninterrupted refinement reaches (in this process, its own file)."""
    ps = refine_child.make_space()
    ps.enable_cache(tmp_path / "reference.nc")
    ds = ps.refine(refine_child.bump, max_cells=refine_child.MAX_CELLS)
    ps.disable_cache()
    return ds


@pytest.mark.parametrize("when", ["inside-a-cell", "at-a-random-moment"])
def test_a_refinement_killed_mid_round_resumes_where_it_stopped(tmp_path, child, when):
    rng = random.Random(os.getpid())
    reference = reference_grid(tmp_path)
    refine_child.CALLS.clear()
    path, calls, rounds = tmp_path / "r.nc", tmp_path / "calls", tmp_path / "rounds"
    if when == "inside-a-cell":  # the 55th call SIGKILLs its process, in round 2
        proc = child(path=path, calls=calls, rounds=rounds, kill_at=55)
    else:
        proc = child(path=path, calls=calls, rounds=rounds, delay=0.004)
        deadline = time.monotonic() + 60
        while len(rounds.read_text().splitlines() if rounds.exists() else []) < 3:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the child never reached its third round"
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.1))
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    reported = rounds.read_text().splitlines()
    assert "done" not in reported and len(reported) >= 2, reported
    before = refine_child.read_calls(calls)

    # Resume in this process, with the space declared as at first.
    ps = refine_child.make_space()
    ps.enable_cache(path)
    resumed = ps.refine(refine_child.bump, max_cells=refine_child.MAX_CELLS)
    after = refine_child.CALLS
    # The same grid as without the kill, every cell computed and right.
    for name in ("x", "y", "x_refinement_round", "y_refinement_round"):
        np.testing.assert_array_equal(resumed[name].values, reference[name].values)
    assert (resumed["bump_status"] == 1).all()
    want = np.vectorize(refine_child.exact)(*np.meshgrid(resumed.x, resumed.y, indexing="ij"))
    np.testing.assert_array_equal(resumed["bump"].values, want)
    # No cell computed before the kill was computed again; only the one in flight may be.
    again = set(before) & set(after)
    assert again <= {before[-1]}, sorted(again)
    assert len(set(before) | set(after)) == resumed["bump"].size
    ps.disable_cache()
    with xr.open_dataset(path) as plain:
        np.testing.assert_array_equal(plain["x"].values, reference["x"].values)
        assert int((plain["bump_status"] == 1).sum()) == plain["bump_status"].size


# ---------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------
def front(x, y):
    return float(np.tanh((x - 0.3 * y) / 0.1))


def test_a_process_pool_refines_as_a_serial_refinement_does(tmp_path):
    serial = xs.ParameterSpace([continuous("x", 4, -1, 1), continuous("y", 4, -1, 1)])
    expected = serial.refine(front, max_cells=120, per_round=2)
    ps = xs.ParameterSpace([continuous("x", 4, -1, 1), continuous("y", 4, -1, 1)])
    ps.enable_cache(tmp_path / "pool.nc")
    with ProcessPoolExecutor(2) as pool, hang_guard("a refinement on a process pool"):
        ds = ps.refine(front, max_cells=120, per_round=2, executor=pool, order="spread")
    xr.testing.assert_equal(ds, expected)
    with hang_guard("a refinement on workers=2"):
        owned = xs.ParameterSpace([continuous("x", 4, -1, 1), continuous("y", 4, -1, 1)])
        xr.testing.assert_equal(owned.refine(front, max_cells=120, per_round=2, workers=2), ds)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_a_dask_cluster_refines_into_the_cache(tmp_path, dask_client):
    expected = xs.ParameterSpace([continuous("x", 4, -1, 1), continuous("y", 4, -1, 1)]).refine(
        front, max_cells=100
    )
    ps = xs.ParameterSpace([continuous("x", 4, -1, 1), continuous("y", 4, -1, 1)])
    ps.enable_cache(tmp_path / "dask.nc")
    reports = []
    with hang_guard("a refinement on a dask cluster"):
        ds = ps.refine(front, max_cells=100, executor=dask_client, on_round=reports.append)
    # Without per_round each round fills both workers, so the grids may differ; both are
    # refined grids of the same budget, every cell right.
    assert ds["front"].size == reports[-1].cells <= 100 and len(reports) > 2
    want = np.vectorize(front)(*np.meshgrid(ds.x, ds.y, indexing="ij"))
    np.testing.assert_array_equal(ds["front"].values, want)
    assert expected["front"].size <= 100
    ps.disable_cache()
    with xr.open_dataset(tmp_path / "dask.nc") as plain:
        assert int((plain["front_status"] == 1).sum()) == ds["front"].size


# ---------------------------------------------------------------------------------------------
# In the background, with the live grid view
# ---------------------------------------------------------------------------------------------
def slow_front(x, y):
    time.sleep(0.003)
    return front(x, y)


def test_refine_async_stops_and_the_next_refinement_goes_on(tmp_path):
    reference = xs.ParameterSpace([continuous("x", 4, -1, 1), continuous("y", 4, -1, 1)])
    expected = reference.refine(slow_front, max_cells=150)
    ps = xs.ParameterSpace([continuous("x", 4, -1, 1), continuous("y", 4, -1, 1)])
    ps.enable_cache(tmp_path / "bg.nc")
    reports = []
    job = ps.refine_async(slow_front, max_cells=150, on_round=reports.append)
    with hang_guard("a background refinement"):
        while len(reports) < 2:
            assert not job.done(), job.result()
            time.sleep(0.002)
        with pytest.raises(xs.SweepError, match="A refinement of this space is running"):
            ps.refine(slow_front, max_cells=150)
        job.stop()
        stopped = job.result()
    assert job.stopped() and reports[-1].stop == "stopped"
    assert stopped.sizes["x"] * stopped.sizes["y"] < 150
    ds = ps.refine(slow_front, max_cells=150)
    xr.testing.assert_equal(ds, expected)


def test_the_grid_view_follows_the_grid_as_it_densifies():
    pytest.importorskip("ipywidgets")
    ps = xs.ParameterSpace([continuous("x", 3, -1, 1), continuous("y", 3, -1, 1)])
    view = ps.grid_view(slow_front, show="slow_front", interval=None)
    assert view.counts["not computed"] == 9
    sizes = []

    def look(report):
        view.update()
        sizes.append((len(view.pick["x"].options), len(view.pick["y"].options)))

    job = ps.refine_async(slow_front, max_cells=60, on_round=look)
    with hang_guard("a background refinement with a grid view"):
        while not job.done():
            view.update()
            time.sleep(0.01)
    ds = job.result()
    view.update()
    assert sizes[0] == (3, 3) and sizes == sorted(sizes) and min(sizes[-1]) > 3
    assert view.counts == {
        "not computed": 0,
        "computed": ds.sizes["x"] * ds.sizes["y"],
        "failed": 0,
        "no value": 0,
    }
    added = [v for v in ds["x"].values.tolist() if v not in (-1.0, 0.0, 1.0)][0]
    view.pick["x"].value = added
    assert view.message.startswith(f"x={added:g}") and "computed" in view.message
    view.close()


def test_spread_order_visits_a_new_slab_coarse_first():
    calls = []

    def f(x, y):
        calls.append((x, y))
        return float(x > 0.3)

    ps = xs.ParameterSpace([continuous("x", 3), xs.Parameter("y", values=list(range(9)))])
    reports = []
    ps.refine(f, along="x", per_round=1, max_cells=36, order="spread", on_round=reports.append)
    first_slab = [y for x, y in calls[27:36]]
    assert first_slab[:3] == [0, 8, 4]  # the ends, then the middle
    assert len(calls) == 36


# ---------------------------------------------------------------------------------------------
# Spaces sharing a parameter that gains values
# ---------------------------------------------------------------------------------------------
def test_a_space_sharing_a_refined_parameter_reads_the_right_cells(tmp_path):
    x = continuous(n=3)
    first = xs.ParameterSpace([x])
    other = xs.ParameterSpace([x])
    other.enable_cache(tmp_path / "other.nc")

    @xs.version("1")
    def double(x):
        return 2 * x

    other.sweep(double)  # its cache holds 0, 0.5, 1
    first.refine(peak, max_cells=9)  # x gains values
    calls = []

    @xs.version("1")
    def double(x):  # noqa: F811 - the same function, counting its calls
        calls.append(x)
        return 2 * x

    for value in x.values.tolist():
        assert other.run_process(double, x=value) == 2 * value
    assert sorted(calls) == sorted(v for v in x.values.tolist() if v not in (0.0, 0.5, 1.0))
    assert other.sweep(double).sizes["x"] == 9 and len(calls) == 6
    other.disable_cache()
