"""docs/cluster.md, run as written: every ``# file: NAME`` block of the page is written to a
folder and run the way the page says (steps 1-2 here, steps 3-4 on the test SLURM cluster).

Only the sizes differ: the page's site settings (16 cores per job, partition ``compute``,
``--cpus-per-task=4``) do not fit a one-node, two-core test cluster, so the test overrides
those few keys of ``jobqueue.yaml`` and passes ``--cpus-per-task=1`` to ``sbatch``; every
other line is the page's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from .conftest import run, wait_gone

PAGE = Path(__file__).parents[2] / "docs" / "cluster.md"
BLOCK = re.compile(r"```(?:python|bash|yaml)\n# file: (\S+)[^\n]*\n(.*?)```", re.S)


def page_files() -> dict[str, str]:
    return {name: body for name, body in BLOCK.findall(PAGE.read_text())}


def project(folder: Path) -> Path:
    """A user's project folder: the page's files and the results folder it says to make."""
    folder.mkdir(exist_ok=True)
    for name, body in page_files().items():
        (folder / name).write_text(body)
    (folder / "results").mkdir()
    return folder


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The shell of a user whose virtual environment is active (python, xsweep on PATH)."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, **(extra or {}), "PATH": path, "MPLBACKEND": "Agg"}


def expected() -> dict[str, np.ndarray]:
    """The model's values over its grid, from the page's own model.py."""
    scope: dict = {}
    exec(page_files()["model.py"], scope)
    ps = scope["space"]()
    length, load = (np.asarray(p.values) for p in ps.parameters)
    cells = [[scope["beam"](a, b) for b in load] for a in length]
    return {k: np.array([[c[k] for c in row] for row in cells]) for k in cells[0][0]}


def check_results(path: Path) -> None:
    want = expected()
    with xr.open_dataset(path) as ds:
        assert (ds["beam_status"] == 1).all()
        for name, values in want.items():
            np.testing.assert_allclose(ds[name].transpose("length", "load").values, values)


def test_the_page_lists_every_file_it_runs():
    assert set(page_files()) == {
        "model.py", "sweep_here.py", "sweep_dask.py", "jobqueue.yaml", "sweep_slurm.py",
        "driver.sh", "sweep_part.py", "job.sh", "merge.sh",
    }


@pytest.mark.parametrize("script", ["sweep_here.py", "sweep_dask.py"])
def test_steps_1_and_2_run_on_this_machine(tmp_path, script):
    folder = project(tmp_path / "p")
    done = subprocess.run(
        [sys.executable, script], cwd=folder, env=environment(), capture_output=True,
        text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "<xarray.Dataset>" in done.stdout
    check_results(folder / "results" / "beam.nc")


def site_settings_for_the_test_cluster(folder: Path) -> Path:
    """The page's jobqueue.yaml with the keys a two-core, one-node cluster cannot honour."""
    import yaml

    config = yaml.safe_load((folder / "jobqueue.yaml").read_text())
    slurm = config["jobqueue"]["slurm"]
    slurm.update(
        cores=1, processes=1, memory="512MB", queue=None, account=None, interface="lo",
        python=sys.executable,
        # the scheduler's dashboard would want port 8787; any free port will do
        **{"scheduler-options": {"dashboard_address": ":0"},
           "job-extra-directives": ["--mem=400M"]},
    )
    settings = folder / "dask-config"
    settings.mkdir()
    (settings / "jobqueue.yaml").write_text(yaml.safe_dump(config))
    return settings


def sbatch(folder: Path, env: dict[str, str], *args: str) -> str:
    """Submit from the project folder, as a user in it would; the job id."""
    done = subprocess.run(["sbatch", "--parsable", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def logs(folder: Path) -> str:
    return "".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(folder.glob("*.out")))


def test_step_3_a_driver_job_sweeps_on_slurm_worker_jobs(slurm, tmp_path):
    folder = project(tmp_path / "p")
    env = environment({"SLURM_CONF": slurm["SLURM_CONF"],
                       "DASK_CONFIG": str(site_settings_for_the_test_cluster(folder))})
    job = sbatch(folder, env, "driver.sh")
    wait_gone(job, env, timeout=300)
    assert "<xarray.Dataset>" in logs(folder), logs(folder)
    check_results(folder / "results" / "beam.nc")
    # The driver's cluster closed: no worker job outlives it.
    assert "dask-worker" not in run(["squeue", "-h", "-o", "%j"], env)


def test_step_4_an_array_then_info_then_the_merge_job(slurm, tmp_path):
    folder = project(tmp_path / "p")
    env = environment({"SLURM_CONF": slurm["SLURM_CONF"]})

    array = sbatch(folder, env, "--cpus-per-task=1", "--mem=300M", "job.sh")
    merge = sbatch(folder, env, f"--dependency=afterok:{array}", "merge.sh")
    wait_gone(merge, env, timeout=300)
    assert (folder / "results" / "beam.nc").exists(), "the merge job made no file:\n" + logs(folder)
    check_results(folder / "results" / "beam.nc")
    assert len(list((folder / "results").glob("beam_part*.nc"))) == 10

    info = subprocess.run(
        ["bash", "-c", "xsweep info results/beam_part*.nc"], cwd=folder, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert info.returncode == 0, info.stderr
    assert "20 cells in 10 parts" in info.stdout, info.stdout
    assert info.stdout.count("complete, 2 cells") == 10, info.stdout
    assert "complete: every part's cells are computed" in info.stdout, info.stdout
