"""The job-array recipe of docs/parallel.md, run under a real SLURM (tests/cluster/conftest.py).

``sbatch --array`` of a script that sweeps ``part=(k, n)`` into its own file per task; one task
cancelled mid-run with ``scancel`` and resubmitted alone with the same index (it resumes its
own file, computing only its missing cells); a merge job submitted with
``--dependency=afterok:`` that makes one file; every value checked.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import xarray as xr

from .conftest import run, wait_gone

N_PARTS = 4

#: The task script, as docs/parallel.md writes it: n is the array's size, fixed in the script
#: (a task resubmitted alone, sbatch --array=2, sees SLURM_ARRAY_TASK_COUNT=1).
SCRIPT = textwrap.dedent(
    """
    import os, time
    import xsweep as xs

    N_PARTS = {n}
    folder = {folder!r}
    ps = xs.ParameterSpace([
        xs.Parameter("a", values=list(range(8))),
        xs.Parameter("b", values=list(range(5))),
    ])

    def score(a, b):
        with open(os.path.join(folder, "calls.txt"), "a") as calls:
            calls.write(f"{{a}} {{b}}\\n")
        # Part 2 is slow the first time: the test cancels it half-way. (Read from the
        # environment: a global that differs per task would differ in the code's fingerprint.)
        slow = os.environ.get("SLURM_ARRAY_TASK_ID") == os.environ.get("SLOW_PART")
        time.sleep(0.5 if slow else 0.02)
        return a * 10 + b

    k = int(os.environ["SLURM_ARRAY_TASK_ID"])
    ps.enable_cache(os.path.join(folder, f"part{{k}}.nc"))
    ps.sweep(score, part=(k, N_PARTS), progress=False)
    """
)


def calls(folder: Path) -> list[tuple[int, int]]:
    path = folder / "calls.txt"
    if not path.exists():
        return []
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines() if line]


def submit(env, folder: Path, *options: str, wrap: str) -> str:
    return run(
        ["sbatch", "--parsable", f"--chdir={folder}", f"--output={folder}/%x-%A_%a.out",
         *options, f"--wrap={wrap}"],
        env,
    ).split(";")[0]


def test_an_array_job_cancelled_resubmitted_and_merged_computes_every_cell_once(
    slurm, tmp_path
):
    script = tmp_path / "sweep_part.py"
    script.write_text(SCRIPT.format(n=N_PARTS, folder=str(tmp_path)))
    python = sys.executable
    env = {**slurm, "SLOW_PART": "2"}
    array = submit(env, tmp_path, f"--array=0-{N_PARTS - 1}", wrap=f"{python} {script}")

    # Cancel task 2 once it has computed a few of its cells.
    deadline = time.monotonic() + 120
    while sum(1 for a, b in calls(tmp_path) if (a * 5 + b) in part_cells(2)) < 3:
        assert time.monotonic() < deadline, "task 2 never got going"
        time.sleep(0.1)
    run(["scancel", f"{array}_2"], env)
    wait_gone(array, env)
    done_before = computed(tmp_path / "part2.nc")  # in its journal: the task was killed
    assert 0 < done_before < len(part_cells(2)), "the cancelled task should be half done"
    for k in (0, 1, 3):
        with xr.open_dataset(tmp_path / f"part{k}.nc") as part:  # finished: published
            assert int((part["score_status"] == 1).sum()) == len(part_cells(k))

    # `xsweep info` over the part files names what to resubmit, and how much it lacks.
    listed = subprocess.run(
        [sys.executable, "-m", "xsweep", "info", *sorted(map(str, tmp_path.glob("part*.nc")))],
        capture_output=True, text=True, timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    lacking = len(part_cells(2)) - done_before
    assert f"{lacking} of its {len(part_cells(2))} cells not computed" in listed.stdout, (
        listed.stdout
    )
    assert "sbatch --array=2 " in listed.stdout, listed.stdout

    # Resubmit task 2 alone, with the same index; the merge waits for it.
    before = len(calls(tmp_path))
    again = submit(slurm, tmp_path, "--array=2", wrap=f"{python} {script}")
    merged = tmp_path / "merged.nc"
    parts = " ".join(str(tmp_path / f"part{k}.nc") for k in range(N_PARTS))
    merge = submit(
        slurm, tmp_path, f"--dependency=afterok:{again}",
        wrap=f"{python} -m xsweep merge --require-complete -o {merged} {parts}",
    )
    wait_gone(merge, slurm)
    assert merged.exists(), "the merge job did not run: " + "".join(
        p.read_text() for p in tmp_path.glob("*.out")
    )
    redone = calls(tmp_path)[before:]
    assert len(redone) == len(part_cells(2)) - done_before  # only its missing cells

    with xr.open_dataset(merged) as ds:
        assert (ds["score_status"] == 1).all()
        want = np.arange(8)[:, None] * 10 + np.arange(5)[None, :]
        np.testing.assert_array_equal(ds["score"].transpose("a", "b").values, want)
    # Every cell was computed once, but for the one in flight when task 2 was cancelled.
    counts = {cell: calls(tmp_path).count(cell) for cell in set(calls(tmp_path))}
    assert len(counts) == 40 and sum(counts.values()) <= 41


def computed(path: Path) -> int:
    """Cells computed in a part's file and journal (what a resumed task would not redo)."""
    from xsweep.store import open_store

    store = open_store(str(path), outputs=False)
    try:
        return store.functions()[0].counts["computed"]
    finally:
        store.close()


def part_cells(k: int) -> set[int]:
    """The flat cells part k of N_PARTS sweeps, as ``ps.sweep(part=(k, n))`` chooses them."""
    from xsweep.running.cells import CellPlan, selected_flat

    plan = CellPlan(
        ("a", "b"), [np.arange(8), np.arange(5)], [np.arange(8), np.arange(5)], False,
        (k, N_PARTS),
    )
    return set(selected_flat(plan, (8, 5)).tolist())
