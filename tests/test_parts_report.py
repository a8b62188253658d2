"""Part files of a job array say which part they hold: ``xsweep info`` and ``xsweep merge``
over them name the parts that are missing or incomplete, how many cells each lacks, and the
``sbatch --array`` indices to resubmit.

Tasks run as real processes (one killed with SIGKILL mid-run); the command line runs as a
real process too.
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
import warnings

import netCDF4
import numpy as np
import pytest
import xarray as xr

import xsweep as xs
from xsweep.cli import main
from xsweep.store import open_store
from xsweep.store.parts import MAX_PARTS, part_size

N_PARTS = 4
#: A job array's task script: part k of N_PARTS into part<k>.nc. With STALL_AT=m, the m-th
#: call of the task writes ``ready`` and hangs, to be killed with cells 1..m-1 recorded.
TASK = textwrap.dedent(
    """
    import os, sys, time
    import xsweep as xs

    ps = xs.ParameterSpace([
        xs.Parameter("a", values=list(range(8))),
        xs.Parameter("b", values=list(range(5))),
    ])

    def score(a, b):
        stall = os.environ.get("STALL_AT")  # read here: a global would change the fingerprint
        if stall:
            calls = os.path.join(os.environ["FOLDER"], "calls")
            with open(calls, "a") as f:
                f.write(f"{a} {b}\\n")
            with open(calls) as f:
                made = len(f.readlines())
            if made == int(stall):
                open(os.path.join(os.environ["FOLDER"], "ready"), "w").close()
                time.sleep(3600)
        return a * 10 + b

    k = int(sys.argv[1])
    ps.enable_cache(os.path.join(os.environ["FOLDER"], f"part{k}.nc"))
    ps.sweep(score, part=(k, N_PARTS), progress=False)
    """
).replace("N_PARTS)", f"{N_PARTS})")


def env_for(folder, **more) -> dict[str, str]:
    here = os.path.dirname(os.path.dirname(os.path.abspath(xs.__file__)))
    path = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "FOLDER": str(folder), **more}


def run_task(folder, k: int) -> None:
    """Array task ``k``, run to its end."""
    done = subprocess.run(
        [sys.executable, str(folder / "task.py"), str(k)],
        env=env_for(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def kill_task(folder, k: int, stall_at: int) -> None:
    """Array task ``k``, killed (SIGKILL) during its ``stall_at``-th cell."""
    ready = folder / "ready"
    ready.unlink(missing_ok=True)
    (folder / "calls").unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(folder / "task.py"), str(k)],
        env=env_for(folder, STALL_AT=str(stall_at)),
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "the task ended before it was killed"
            assert time.monotonic() < deadline, "the task never reached its stalling cell"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def xsweep(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xsweep", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def cells_of(k: int) -> int:
    return part_size(40, k, N_PARTS)


def part_files(folder) -> list[str]:
    return sorted(str(p) for p in folder.glob("part*.nc"))  # what the shell's part*.nc gives


@pytest.fixture
def array(tmp_path):
    (tmp_path / "task.py").write_text(TASK)
    return tmp_path


# -- the job array: killed, missing, resubmitted ------------------------------------------------
def test_a_killed_and_a_missing_part_are_named_and_resubmitting_them_completes_the_merge(array):
    run_task(array, 0)
    run_task(array, 3)
    kill_task(array, 1, stall_at=4)  # cells 1..3 recorded, the 4th in flight: 3 computed
    # part 2 never ran: no file

    info = xsweep("info", *part_files(array), cwd=array)
    assert info.returncode == 0, info.stderr
    out = info.stdout
    assert "part 0 (part0.nc): complete" in out and "part 3 (part3.nc): complete" in out
    assert f"part 1 (part1.nc): {cells_of(1) - 3} of its {cells_of(1)} cells not computed" in out
    assert f"part 2: no file holds it; {cells_of(2)} of {cells_of(2)} cells not computed" in out
    assert "sbatch --array=1,2 " in out

    as_json = json.loads(xsweep("info", "--json", *part_files(array)).stdout)
    assert as_json["complete"] is False
    assert as_json["resubmit"] == [{"function": "score", "n": N_PARTS, "array": "1,2"}]
    (group,) = as_json["parts"]
    by_part = {p["part"]: p for p in group["parts"]}
    assert by_part[1]["not_computed"] == cells_of(1) - 3 and by_part[1]["files"]
    assert by_part[2]["files"] == [] and group["missing_parts"] == [2]

    # A merge job that requires every part refuses, writes nothing, and names the tasks.
    merged = array / "all.nc"
    refused = xsweep("merge", "--require-complete", "-o", merged, *part_files(array), cwd=array)
    assert refused.returncode == 1 and not merged.exists()
    assert "sbatch --array=1,2 " in refused.stderr and "Nothing was written" in refused.stderr
    assert "Traceback" not in refused.stderr

    # Without the flag: a partial merge, the report on standard error.
    partial = xsweep("merge", "-o", merged, *part_files(array), cwd=array)
    assert partial.returncode == 0, partial.stderr
    assert "warning" in partial.stderr and "sbatch --array=1,2 " in partial.stderr
    assert "part 1 (part1.nc)" in partial.stderr and "part 0 (part0.nc)" not in partial.stderr
    with xr.open_dataset(merged) as ds:
        status = ds["score_status"].transpose("a", "b").values
        assert int((status == 1).sum()) == 40 - (cells_of(1) - 3) - cells_of(2)
        assert np.isnan(ds["score"].transpose("a", "b").values[status == 0]).all()

    # The way out the report names: resubmit those indices, then merge.
    indices = re.search(r"sbatch --array=([0-9,-]+) ", refused.stderr).group(1)
    for k in map(int, indices.split(",")):
        run_task(array, k)
    again = xsweep("info", *part_files(array), cwd=array)
    assert "resubmit" not in again.stdout and "complete: every part" in again.stdout
    merged.unlink()
    ok = xsweep("merge", "--require-complete", "-o", merged, *part_files(array))
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    with xr.open_dataset(merged) as ds:
        assert (ds["score_status"] == 1).all()
        want = np.arange(8)[:, None] * 10 + np.arange(5)[None, :]
        np.testing.assert_array_equal(ds["score"].transpose("a", "b").values, want)
        assert "xsweep_part" not in ds["score_status"].attrs  # the union, not a part
    assert xs.check_parts([str(merged)]).groups == []


def test_a_part_killed_during_its_first_cell_still_says_what_it_owes(array):
    kill_task(array, 2, stall_at=1)  # nothing computed: the first cell was in flight
    path = array / "part2.nc"
    assert path.exists(), "the part's record is written when the sweep starts"
    with xr.open_dataset(path) as f:
        assert f["score_status"].attrs["xsweep_part"] == f"2/{N_PARTS}"
        assert int(f["score_status"].attrs["xsweep_part_cells"]) == cells_of(2)
    info = xsweep("info", path)
    assert info.returncode == 0, info.stderr
    n = cells_of(2)
    assert f"part 2 of {N_PARTS} (part=(2, {N_PARTS})): {n} of its {n} cells not computed" in (
        info.stdout
    )
    # Resubmitted, it resumes its own file.
    run_task(array, 2)
    info = xsweep("info", path)
    assert f"part 2 of {N_PARTS} (part=(2, {N_PARTS})): complete, {n} cells" in info.stdout


# -- the report, through the Python API ---------------------------------------------------------
def skips(a):
    """Leaves odd cells not computed, as a task that stopped would."""
    if a % 2:
        raise xs.SkipCell
    return a * 1.5


def space(n=12):
    return xs.ParameterSpace([xs.Parameter("a", values=list(range(n)))])


def sweep_into(path, fn, **options):
    ps = space()
    ps.enable_cache(str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", xs.SweepFailuresWarning)
            ps.sweep(fn, progress=False, **options)
    finally:
        ps.disable_cache()


def maybe(a):
    """Leaves odd cells not computed when SKIP_ODD is set, as a task that stopped would."""
    if a % 2 and os.environ.get("SKIP_ODD"):
        raise xs.SkipCell
    return a * 1.5


def test_cells_computed_by_another_file_count_as_done(tmp_path, monkeypatch):
    part, rest = tmp_path / "part0.nc", tmp_path / "rest.nc"
    monkeypatch.setenv("SKIP_ODD", "1")
    sweep_into(part, maybe, part=(0, 2))  # its cells 0, 3, 4, 7, 8, 11: 3, 7, 11 skipped
    (group,) = xs.check_parts([part]).groups
    assert [(p.k, p.cells, p.not_computed) for p in group.parts] == [(0, 6, 3), (1, 6, 6)]
    monkeypatch.delenv("SKIP_ODD")
    sweep_into(rest, maybe, cells={"a": [1, 3, 5, 7, 9, 11]})  # not a part file
    report = xs.check_parts([part, rest])
    # The odd cells are in rest.nc: part 0 lacks none. Part 1 (1, 2, 5, 6, 9, 10) has no
    # file, and lacks only its even cells: its odd ones are in rest.nc.
    (group,) = report.groups
    assert [(p.k, p.not_computed, p.files) for p in group.parts] == [
        (0, 0, (str(part),)),
        (1, 3, ()),
    ]
    assert "part 1: no file holds it; 3 of 6 cells not computed" in report.text()
    with pytest.warns(xs.PartsIncompleteWarning, match="sbatch --array=1 "):
        xs.merge_stores([part, rest], tmp_path / "all.nc")
    with xr.open_dataset(tmp_path / "all.nc") as ds:
        assert ds["maybe_status"].values.tolist() == [1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1]
    # With part 1's even cells in a third file, nothing needs computing: no task to resubmit.
    sweep_into(tmp_path / "evens.nc", maybe, cells={"a": [2, 6, 10]})
    report = xs.check_parts([part, rest, tmp_path / "evens.nc"])
    assert report.complete and report.groups[0].resubmit == []
    assert "part 1: no file holds it; all 6 of its cells are in other files" in report.text()


def test_failed_cells_are_counted_but_do_not_make_a_part_incomplete(tmp_path):
    def fails_at_3(a):
        if a == 3:
            raise ValueError("no")
        return a

    paths = [tmp_path / f"p{k}.nc" for k in range(2)]
    for k, path in enumerate(paths):
        sweep_into(path, fails_at_3, part=(k, 2))
    report = xs.check_parts(paths)
    assert report.complete
    assert [(p.k, p.failed) for p in report.groups[0].parts] == [(0, 1), (1, 0)]  # a=3: part 0
    assert "1 failed (xsweep failures" in report.text()
    out = tmp_path / "all.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete: no PartsIncompleteWarning
        xs.merge_stores(paths, out, require_complete=True)
    assert out.exists()


def test_merge_stores_warns_or_refuses_and_writes_nothing(tmp_path):
    paths = [tmp_path / "p0.nc", tmp_path / "p2.nc"]
    sweep_into(paths[0], skips, part=(0, 3))
    sweep_into(paths[1], skips, part=(2, 3))
    out = tmp_path / "all.nc"
    with pytest.raises(xs.PartsIncompleteError, match=r"sbatch --array=0-2 ") as refused:
        xs.merge_stores(paths, out, require_complete=True)
    assert "was not created" in str(refused.value) and not out.exists()
    with pytest.warns(xs.PartsIncompleteWarning, match=r"part 1: no file holds it"):
        xs.merge_stores(paths, out)
    with xr.open_dataset(out) as ds:
        assert int((ds["skips_status"] == 1).sum()) == 4  # the even cells of parts 0 and 2


def test_a_file_asked_for_two_parts_records_both(tmp_path):
    path = tmp_path / "p.nc"
    sweep_into(path, skips, part=(1, 4))
    sweep_into(path, skips, part=(3, 4))
    with xr.open_dataset(path) as f:
        assert f["skips_status"].attrs["xsweep_part"] == "1/4,3/4"
        assert f["skips_status"].attrs["xsweep_part_cells"].tolist() == [3, 3]
    (group,) = xs.check_parts([path]).groups
    assert [p.k for p in group.parts if p.files] == [1, 3]
    sweep_into(path, skips, part=(0, 2))  # another n: the file now owes that part
    with xr.open_dataset(path) as f:
        assert f["skips_status"].attrs["xsweep_part"] == "0/2"


def test_a_part_over_a_grown_grid_keeps_its_cells_by_value(tmp_path):
    path = tmp_path / "p.nc"
    sweep_into(path, skips, part=(0, 3))
    # Another function with more values grows the file's grid: the record moves with it.
    ps = xs.ParameterSpace([xs.Parameter("a", values=[-2, -1, *range(12)])])
    ps.enable_cache(str(path))
    ps.sweep(lambda a: a, name="other", progress=False)
    ps.disable_cache()
    (group,) = xs.check_parts([path]).groups
    assert group.cells == 12
    assert [(p.k, p.cells, p.not_computed) for p in group.parts if p.files] == [(0, 4, 2)]


# -- hostile attributes -------------------------------------------------------------------------
BAD = {
    "not text": {"xsweep_part": np.int64(3)},
    "k beyond n": {"xsweep_part": "5/4"},
    "n zero": {"xsweep_part": "0/0"},
    "n huge": {"xsweep_part": "0/99999999"},
    "not numbers": {"xsweep_part": "a/b"},
    "negative": {"xsweep_part": "-1/4"},
    "twice the same": {"xsweep_part": "1/4,1/4"},
    "two ns": {"xsweep_part": "1/4,1/5"},
    "huge text": {"xsweep_part": "1/4," * 500_000},
    "cells wrong": {"xsweep_part_cells": np.int64(2)},
    "cells float": {"xsweep_part_cells": 3.0},
    "cells text": {"xsweep_part_cells": "3"},
    "cells missing": {"xsweep_part_cells": None},
    "selection not json": {"xsweep_part_selection": "{"},
    "selection nested": {"xsweep_part_selection": "[" * 1300},  # under the size bound
    "selection very long": {"xsweep_part_selection": "[" * 100_000},
    "selection wrong dim": {"xsweep_part_selection": '{"b": "all"}'},
    "selection out of range": {"xsweep_part_selection": '{"a": [0, 1, 99]}'},
    "selection repeated": {"xsweep_part_selection": '{"a": [0, 0, 1]}'},
    "selection bools": {"xsweep_part_selection": '{"a": [true, false]}'},
    "selection huge": {"xsweep_part_selection": '{"a": [' + "1," * 1_000_000 + "1]}"},
    "selection missing": {"xsweep_part_selection": None},
}


@pytest.mark.parametrize("edit", BAD.values(), ids=BAD.keys())
def test_crafted_part_attributes_are_ignored_and_never_break_an_open(tmp_path, edit, capsys):
    path = tmp_path / "p.nc"
    sweep_into(path, skips, part=(1, 4))
    with netCDF4.Dataset(path, "a") as nc:
        var = nc.variables["skips_status"]
        for name, value in edit.items():
            if value is None:
                var.delncattr(name)
            else:
                var.setncattr(name, value)
    store = open_store(str(path), outputs=False)
    assert store.tables["skips"].part is None
    assert store.functions()[0].counts["computed"] == 1  # a=6, of 1, 6, 9: the cells are there
    assert xs.check_parts([path]).groups == []
    # The command line in this process (each of these cases in its own would take minutes).
    assert main(["info", str(path)]) == 0
    assert "part 1" not in capsys.readouterr().out
    assert main(["info", str(path), str(path)]) == 0
    assert "no part records" in capsys.readouterr().out
    # A resubmitted task writes a record of its own again.
    sweep_into(path, skips, part=(1, 4))
    assert open_store(str(path), outputs=False).tables["skips"].part.parts == (1,)


def test_a_valid_record_of_the_largest_n_is_reported_in_a_few_lines(tmp_path):
    path = tmp_path / "p.nc"
    sweep_into(path, skips, part=(0, 2))
    with netCDF4.Dataset(path, "a") as nc:
        var = nc.variables["skips_status"]
        var.setncattr("xsweep_part", f"0/{MAX_PARTS}")
        var.setncattr("xsweep_part_cells", np.int64(1))
    (group,) = xs.check_parts([path]).groups
    assert group.n == MAX_PARTS and len(group.missing) == MAX_PARTS - 1
    text = xs.check_parts([path]).text()
    assert f"parts 1-{MAX_PARTS - 1}: no file holds them" in text and len(text) < 2000


# -- the command line as a Unix tool ------------------------------------------------------------
@pytest.mark.parametrize("command", ["demo", "info", "failures", "publish", "merge"])
def test_every_command_has_help_with_an_example(command):
    out = xsweep(command, "--help")
    assert out.returncode == 0 and out.stderr == ""
    assert f"usage: xsweep {command}" in out.stdout
    assert re.search(rf"^examples?:\n  xsweep {command} ", out.stdout, re.M), out.stdout


def test_version_help_and_usage_errors_have_their_exit_codes(capsys):
    version = xsweep("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"xsweep {xs.__version__}"
    top = xsweep("--help")
    assert top.returncode == 0 and "exit codes:" in top.stdout and "2  usage" in top.stdout
    unknown = xsweep("frobnicate")
    assert unknown.returncode == 2 and "invalid choice: 'frobnicate'" in unknown.stderr
    # The same codes from main(), in this process.
    assert main([]) == 2  # no command: the help, and a usage error
    assert main(["info"]) == 2  # a FILE is needed
    assert main(["merge", "a.nc"]) == 2  # -o is needed
    assert "the following arguments are required: -o/--output" in capsys.readouterr().err
    assert main(["--help"]) == 0 and main(["merge", "--help"]) == 0


def test_a_named_part_file_that_does_not_exist_says_how_to_report_the_missing_part(tmp_path):
    path = tmp_path / "p0.nc"
    sweep_into(path, skips, part=(0, 2))
    for command in (["info"], ["merge", "-o", tmp_path / "all.nc"]):
        out = xsweep(*command, path, tmp_path / "p1.nc")
        assert out.returncode == 1 and "There is no file" in out.stderr
        assert "part*.nc" in out.stderr
    assert not (tmp_path / "all.nc").exists()
    # The way out: name the files that exist.
    assert "part 1: no file holds it" in xsweep("info", path, path).stdout


def test_info_and_failures_give_json_for_scripts(tmp_path):
    path = tmp_path / "p.nc"
    sweep_into(path, skips, part=(1, 2))
    info = json.loads(xsweep("info", "--json", path).stdout)
    (fn,) = info["functions"]
    assert fn["part"] == {
        "n": 2,
        "parts": [{"part": 1, "cells": 6, "not_computed": 3, "failed": 0, "complete": False}],
    }
    assert json.loads(xsweep("failures", "--json", path).stdout) == []


def test_check_parts_given_one_path_says_to_pass_a_list_and_the_list_works(tmp_path):
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(4)))])
    path = tmp_path / "part0.nc"
    ps.enable_cache(path)
    ps.sweep(lambda a: a, name="same", part=(0, 2), progress=False)
    ps.disable_cache()
    for one in (str(path), path):
        with pytest.raises(xs.StoreError, match=r"not one path .*check_parts\(\["):
            xs.check_parts(one)
    report = xs.check_parts([path])  # the way out the message gives
    assert not report.complete and report.groups[0].resubmit == [1]
