"""Issue 21, parts 5 and 6: no stale value from a parameter a function reads without being
swept over it; run_process with a dict; what a Ctrl-C'd sweep says; SweepJob's state as
methods; open_tree's stray folders, unreadable files and repeated template fields.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import xarray as xr

import xsweep as xs

HELPERS = Path(__file__).resolve().parent / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

from guards import HANG, hang_guard  # noqa: E402
from interrupts import CHILD_CTRL_C  # noqa: E402

# Module-level parameters, read as globals by the functions below, as in a notebook.
LENGTH = xs.Parameter("length", values=[1, 2, 3])
WIDTH = xs.Parameter("width", values=[1, 2])
CALLS: list[int] = []


def g2(length):
    CALLS.append(length)
    return length * 10 + WIDTH.value


def width_now():
    return WIDTH.value


def through_helper(length):
    CALLS.append(length)
    return length * 10 + width_now()


def grid_size(length):
    return length * len(WIDTH.values)  # the grid, not the current value: nothing stale


@pytest.fixture
def space(tmp_path):
    LENGTH.value, WIDTH.value = 1, 1
    CALLS.clear()
    ps = xs.ParameterSpace([LENGTH, WIDTH])
    ps.enable_cache(tmp_path / "r.nc")
    yield ps
    ps.disable_cache()
    LENGTH.value, WIDTH.value = 1, 1


def _refused(excinfo) -> None:
    message = str(excinfo.value)
    assert "'width'" in message and "WIDTH.value" in message
    assert "depends_on=['width']" in message


# -- part 5: a parameter read but not swept over ---------------------------------------------
@pytest.mark.parametrize("set_values", [True, False])
def test_reading_a_parameter_outside_the_dims_is_refused_before_any_cell(space, set_values):
    with pytest.raises(xs.SweepError) as excinfo:
        space.sweep(g2, set_values=set_values, progress=False)
    _refused(excinfo)
    assert CALLS == []  # refused up front: nothing computed, nothing written
    assert not os.path.exists(space.cache_path)
    with pytest.raises(xs.SweepError) as excinfo:
        space.run_process(g2)
    _refused(excinfo)
    with pytest.raises(xs.SweepError) as excinfo:
        space.cell(g2, length=2)
    _refused(excinfo)
    with pytest.raises(xs.SweepError) as excinfo:  # at once, not from job.result()
        space.sweep_async(g2, set_values=set_values, progress=False)
    _refused(excinfo)
    with pytest.raises(xs.SweepError) as excinfo:  # through a helper of the user's code
        space.sweep(through_helper, progress=False)
    assert "'width'" in str(excinfo.value)
    assert CALLS == []
    # Reading the grid (WIDTH.values), not the current value, is not refused.
    assert space.sweep(grid_size, progress=False)["grid_size"].values.tolist() == [2, 4, 6]


def test_the_way_out_depends_on_sweeps_the_parameter_and_is_never_stale(space):
    ds = space.sweep(g2, set_values=True, depends_on=["width"], progress=False)
    assert ds["g2"].dims == ("length", "width")
    assert ds["g2"].values.tolist() == [[11, 12], [21, 22], [31, 32]]
    WIDTH.value = 2
    CALLS.clear()
    assert space.run_process(g2, length=1) == 12  # the cell at width=2, from the cache
    assert CALLS == []
    WIDTH.value = 1
    assert space.run_process(g2, length=3) == 31
    # Without set_values, and run_process taking depends_on= itself.
    other = xs.ParameterSpace([LENGTH, WIDTH])
    WIDTH.value = 2
    assert other.run_process(through_helper, depends_on=["width"], length=2) == 22
    assert other.parameters_of(through_helper) == ("length", "width")


def test_a_closure_over_a_parameter_is_refused_too(space):
    w = WIDTH

    def local(length):
        return length + w.value

    with pytest.raises(xs.SweepError, match=r"'width' \(as w.value\)"):
        space.sweep(local, progress=False)


def test_explore_refuses_up_front(space):
    pytest.importorskip("ipywidgets")
    with pytest.raises(xs.SweepError, match="depends_on"):
        space.explore(g2, background=False)
    space.run_process(g2, depends_on=["width"])  # declared: the view works
    view = space.explore(g2, background=False)
    assert set(view.controls) == {"length", "width"}
    view.close()


# -- part 6: run_process with a dict ---------------------------------------------------------
def test_run_process_takes_a_dict_of_values_as_tinc_does():
    a = xs.Parameter("a", values=[1, 2, 3])
    ps = xs.ParameterSpace([a])

    def triple(a):
        return 3 * a

    assert ps.run_process(triple, {"a": 2}) == 6
    assert a.value == 2
    assert ps.run_process(triple, {"a": 3}, a=3) == 9
    with pytest.raises(xs.SweepError, match=r"ps\.run_process takes one dict") as excinfo:
        ps.run_process(triple, 2)
    assert "CellMethods" not in str(excinfo.value)
    with pytest.raises(xs.SweepError, match=r"ps\.run_process takes one dict"):
        ps.run_process(triple, {"a": 1}, True)  # TINC's force_recompute, positionally
    with pytest.raises(xs.SweepError, match="give each parameter once"):
        ps.run_process(triple, {"a": 1}, a=2)
    assert ps.run_process(triple, a=1) == 3  # the way out the message gives


# -- part 6: Ctrl-C during a sweep -----------------------------------------------------------
CHILD = CHILD_CTRL_C + textwrap.dedent(
    """
    import os, sys, time
    import xsweep as xs
    path, log = sys.argv[1], sys.argv[2]
    ps = xs.ParameterSpace([xs.Parameter("a", values=range(20))])
    ps.enable_cache(path)
    calls = []

    def slow(a):
        calls.append(a)
        with open(log, "a") as f:
            f.write(f"{a}\\n")
        time.sleep(float(os.environ["CELL_SECONDS"]))
        if a == 1:
            raise ValueError("boom")
        return a * 2

    ps.sweep(slow, progress=False)
    print("calls", len(calls))
    """
)


def test_ctrl_c_says_how_many_cells_are_safe_and_that_the_next_sweep_resumes(tmp_path):
    script, path, log = tmp_path / "child.py", tmp_path / "r.nc", tmp_path / "log"
    script.write_text(CHILD)
    env = dict(os.environ, CELL_SECONDS="0.3", PYTHONWARNINGS="ignore")

    def run(env):
        return subprocess.Popen(
            [sys.executable, str(script), str(path), str(log)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    child = run(env)
    try:
        with hang_guard("the child never started 4 cells"):
            while not log.exists() or len(log.read_text().split()) < 4:
                assert child.poll() is None, child.communicate()
                time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=HANG)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in err
    found = re.search(r"(\d+) of its 20 cells are computed and safe in (\S+) \((\d+) failed", err)
    assert found, err
    safe, failed = int(found[1]), int(found[3])
    assert found[2] == str(path) and failed == 1
    assert "the next ps.sweep(slow) resumes" in err
    with xr.open_dataset(path) as ds:  # what the note says is what the file holds
        assert int((ds["slow_status"] == 1).sum()) == safe
    again = run(dict(env, CELL_SECONDS="0"))
    out, err = again.communicate(timeout=HANG)
    assert again.returncode == 0, err
    assert out.split() == ["calls", str(20 - safe)]  # the missing cells and the failed one


def test_a_sweep_without_cache_says_nothing_is_kept():
    ps = xs.ParameterSpace([xs.Parameter("a", values=range(5))])

    def stops(a):
        if a == 3:
            raise KeyboardInterrupt
        return a

    with pytest.raises(KeyboardInterrupt) as excinfo:
        ps.sweep(stops, progress=False)
    note = " ".join(getattr(excinfo.value, "__notes__", []))
    if sys.version_info >= (3, 11):  # exception notes (PEP 678): Python 3.11+
        assert "3 of its 5 cells" in note and "ps.enable_cache(" in note


# -- part 6: SweepJob's state ----------------------------------------------------------------
def test_sweep_job_state_is_read_with_calls_and_the_old_spelling_works():
    ps = xs.ParameterSpace([xs.Parameter("a", values=range(3))])
    job = ps.sweep_async(lambda a: a, name="same", progress=False)
    job.result(timeout=HANG)
    assert job.done() is True and job.stopped() is False
    assert job.counts() == {"cached": 0, "computed": 3, "failed": 0, "left": 0}
    assert type(job.counts()) is dict
    assert not job.stopped and job.counts["computed"] == 3  # as earlier releases wrote it
    job.stop()
    assert job.stopped() is True and job.stopped and repr(job.stopped) == "True"


# -- part 6: open_tree -----------------------------------------------------------------------
def _runs(root: Path, values, content="1") -> None:
    for t in values:
        (root / f"temp={t}").mkdir(parents=True)
        (root / f"temp={t}" / "out.json").write_text(content)


def test_a_stray_folder_is_left_out_with_a_warning_and_the_parameter_stays_numeric(tmp_path):
    _runs(tmp_path, ["10", "20", "30", "abc"])
    with pytest.warns(UserWarning, match=r"temp=abc: it is left out.*stays numeric") as caught:
        ds = xs.open_tree(str(tmp_path / "temp={temp}" / "out.json"))
    assert str(tmp_path / "temp=abc") in str(caught[0].message)
    assert ds["temp"].values.tolist() == [10, 20, 30]
    assert ds["out"].sel(temp=10).item() == 1


def test_a_file_that_cannot_be_read_is_named_in_the_failure(tmp_path):
    _runs(tmp_path, ["10", "20"])
    (tmp_path / "temp=20" / "out.json").write_text("{not json")
    with pytest.warns(xs.SweepFailuresWarning):
        ds = xs.open_tree(str(tmp_path / "temp={temp}" / "out.json"))
    error = ds.xsweep.failures()["error"].iloc[0]
    assert str(tmp_path / "temp=20" / "out.json") in error and "JSONDecodeError" in error


def test_a_template_naming_a_parameter_twice_says_so(tmp_path):
    folder = tmp_path / "a1" / "a2"
    folder.mkdir(parents=True)
    (folder / "o.json").write_text("5")
    with pytest.raises(xs.XsweepError, match=r"names \{a\} more than once") as excinfo:
        xs.open_tree(str(tmp_path / "a{a}" / "a{a}" / "o.json"))
    assert str(folder / "o.json") in str(excinfo.value)
    # The way out the message gives.
    ds = xs.open_tree(str(tmp_path / "a{a}" / "a{a_2}" / "o.json"))
    assert ds["o"].sel(a=1, a_2=2).item() == 5
    assert json.loads((folder / "o.json").read_text()) == 5
