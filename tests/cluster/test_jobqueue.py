"""Sweeps on SLURM workers through dask-jobqueue, one writer (tests/cluster/conftest.py).

Every dask worker is a SLURM job on the test cluster; the driver (this process) is the only
writer of the cache file. A worker job cancelled with ``scancel`` mid-sweep loses nothing: its
cells are computed elsewhere and the file is complete and right. Neither is anything lost when
the driver is killed (a new driver on a new cluster resumes from the file) or when the cluster
is scaled down to no worker at all and up again mid-sweep (the sweep waits, then finishes).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest
import xarray as xr

import xsweep as xs

from .conftest import run

# Importing dask_jobqueue sets SIGINT to sys.exit for the whole process (its runner module):
# Ctrl-C would then raise SystemExit, not KeyboardInterrupt. Put the handler back.
_sigint = signal.getsignal(signal.SIGINT)
pytest.importorskip("dask_jobqueue", reason="the hpc extra: pip install 'xsweep-nc[hpc]'")
signal.signal(signal.SIGINT, _sigint)


def new_cluster(logs):
    """Worker jobs of 1 core each on the test cluster; the scheduler on loopback.

    (The driver in DRIVER below, a separate process, makes the same cluster.)
    """
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        cores=1,
        processes=1,
        memory="512MB",
        walltime="00:10:00",
        job_extra_directives=["--mem=400M"],
        interface="lo",
        scheduler_options={"dashboard_address": ":0"},
        python=sys.executable,
        log_directory=str(logs),
    )


@pytest.fixture
def slurm_client(slurm, tmp_path, monkeypatch):
    """A dask client whose workers are two SLURM jobs (replaced if cancelled)."""
    from distributed import Client

    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])  # sbatch reads it from here
    cluster = new_cluster(tmp_path / "worker-logs")
    cluster.adapt(minimum_jobs=2, maximum_jobs=2)  # scale() would not replace a lost job
    client = Client(cluster)
    try:
        client.wait_for_workers(2, timeout=120)
        yield client, cluster, slurm
    finally:
        client.close()
        cluster.close()


def cell_taking(seconds: float):
    """A function of (a, b) that returns its value and the SLURM job that computed it.

    Made here, not at module level, so that it travels to the workers by value: they run
    outside the test tree and could not import this module.
    """

    def on_a_worker(a, b):
        time.sleep(seconds)
        return {"value": a * 10 + b, "job": int(os.environ.get("SLURM_JOB_ID", "-1"))}

    return on_a_worker


def space() -> xs.ParameterSpace:
    return xs.ParameterSpace([xs.Parameter("a", values=list(range(6))),
                              xs.Parameter("b", values=list(range(5)))])


def worker_jobs(env) -> set[int]:
    listed = run(["squeue", "-h", "-o", "%i %j"], env)
    return {int(line.split()[0]) for line in listed.splitlines() if "dask-worker" in line}


def test_a_cached_sweep_on_slurm_workers_is_right_and_ran_in_their_jobs(slurm_client, tmp_path):
    client, _, env = slurm_client
    jobs = worker_jobs(env)
    assert len(jobs) == 2
    ps = space()
    ps.enable_cache(tmp_path / "r.nc")
    ds = ps.sweep(cell_taking(0.05), executor=client, progress=False)
    want = np.arange(6)[:, None] * 10 + np.arange(5)[None, :]
    np.testing.assert_array_equal(ds["value"].values, want)
    assert set(ds["job"].values.ravel().tolist()) <= jobs  # computed in the worker jobs
    ps.disable_cache()
    with xr.open_dataset(tmp_path / "r.nc") as shared:
        np.testing.assert_array_equal(shared["value"].values, want)
        assert (shared["on_a_worker_status"] == 1).all()


def test_a_worker_job_cancelled_mid_sweep_loses_nothing(slurm_client, tmp_path):
    client, _, env = slurm_client
    ps = space()
    ps.enable_cache(tmp_path / "r.nc")
    job = ps.sweep_async(cell_taking(0.25), executor=client, progress=False)
    deadline = time.monotonic() + 60
    while job.counts()["computed"] < 4:
        assert time.monotonic() < deadline and not job.done(), "the sweep did not get going"
        time.sleep(0.05)
    victim = min(worker_jobs(env))
    run(["scancel", str(victim)], env)
    ds = job.result(timeout=180)
    want = np.arange(6)[:, None] * 10 + np.arange(5)[None, :]
    np.testing.assert_array_equal(ds["value"].values, want)
    assert (ds["on_a_worker_status"] == 1).all()
    ps.disable_cache()
    with xr.open_dataset(tmp_path / "r.nc") as shared:  # the file is complete and right
        np.testing.assert_array_equal(shared["value"].values, want)
    # The pool healed: a new job replaced the cancelled one.
    deadline = time.monotonic() + 60
    while not (len(worker_jobs(env)) == 2 and victim not in worker_jobs(env)):
        assert time.monotonic() < deadline, "the cancelled worker job was not replaced"
        time.sleep(0.5)


DRIVER = """
import os, sys, time
from dask_jobqueue import SLURMCluster
from distributed import Client
import xsweep as xs

path, logs = sys.argv[1], sys.argv[2]
cluster = SLURMCluster(
    cores=1, processes=1, memory="512MB", walltime="00:10:00",
    job_extra_directives=["--mem=400M"], interface="lo",
    scheduler_options={"dashboard_address": ":0"}, python=sys.executable, log_directory=logs,
)
cluster.scale(jobs=2)
client = Client(cluster)
client.wait_for_workers(2, timeout=120)
ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(6))),
                        xs.Parameter("b", values=list(range(5)))])
ps.enable_cache(path)

def on_a_worker(a, b):
    time.sleep(0.3)
    return {"value": a * 10 + b, "job": int(os.environ.get("SLURM_JOB_ID", "-1"))}

ps.sweep(on_a_worker, executor=client, progress=False, version="1")
"""


def test_a_killed_driver_resumes_from_the_file_on_a_new_cluster(slurm, tmp_path, monkeypatch):
    import subprocess

    from xsweep.store import open_store

    path = tmp_path / "r.nc"
    env = {**slurm}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(path), str(tmp_path / "logs")],
        env=env, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    done = 0
    while done < 6:  # cells reach the driver's journal as the workers return them
        assert driver.poll() is None, driver.stderr.read()
        assert time.monotonic() < deadline, "the driver's sweep did not get going"
        time.sleep(0.2)
        if path.exists():
            store = open_store(str(path), outputs=False)
            try:
                done = store.functions()[0].counts["computed"] if store.functions() else 0
            finally:
                store.close()
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    # Its worker jobs outlive it: cancel them, as a user would (squeue shows them).
    run(["scancel", "--name=dask-worker"], env)

    store = open_store(str(path), outputs=False)
    try:
        kept = store.functions()[0].counts["computed"]
    finally:
        store.close()
    assert 6 <= kept < 30

    # A new driver on a new cluster computes only the missing cells.
    from distributed import Client

    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    cluster = new_cluster(tmp_path / "logs2")
    cluster.scale(jobs=2)
    try:
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            ps = space()
            ps.enable_cache(path)
            # The same function (a version label, since this copy is made another way).
            report = ps.sweep(cell_taking(0.01), executor=client, progress=False, version="1")
            ps.disable_cache()
            new_jobs = worker_jobs(env)
    finally:
        cluster.close()
    want = np.arange(6)[:, None] * 10 + np.arange(5)[None, :]
    np.testing.assert_array_equal(report["value"].values, want)
    recomputed = int(np.isin(report["job"].values, list(new_jobs)).sum())
    assert recomputed == 30 - kept  # only the cells the killed driver had not kept
    with xr.open_dataset(path) as shared:
        np.testing.assert_array_equal(shared["value"].values, want)
        assert (shared["on_a_worker_status"] == 1).all()


def test_a_cluster_scaled_to_zero_and_back_mid_sweep_finishes_the_sweep(
    slurm, tmp_path, monkeypatch
):
    """Every worker job goes away mid-sweep (scale to 0) and comes back: nothing is lost."""
    from distributed import Client

    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    cluster = new_cluster(tmp_path / "logs")
    cluster.scale(jobs=2)
    try:
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            first_jobs = worker_jobs(slurm)
            ps = space()
            ps.enable_cache(tmp_path / "r.nc")
            job = ps.sweep_async(cell_taking(0.25), executor=client, progress=False)
            deadline = time.monotonic() + 60
            while job.counts()["computed"] < 4:
                assert time.monotonic() < deadline and not job.done(), "no start"
                time.sleep(0.05)

            cluster.scale(0)  # every worker job cancelled
            deadline = time.monotonic() + 90
            while worker_jobs(slurm) or client.scheduler_info()["workers"]:
                assert time.monotonic() < deadline, "the worker jobs did not go away"
                time.sleep(0.2)
            time.sleep(1)
            stalled = job.counts()["computed"]
            time.sleep(1.5)
            # No worker: the sweep waits (it neither fails nor finishes) and keeps what it has.
            assert not job.done() and job.counts()["computed"] == stalled < 30

            cluster.scale(jobs=2)  # new jobs pick the sweep up
            ds = job.result(timeout=180)
            second_jobs = worker_jobs(slurm)
            ps.disable_cache()
    finally:
        cluster.close()
    want = np.arange(6)[:, None] * 10 + np.arange(5)[None, :]
    np.testing.assert_array_equal(ds["value"].values, want)
    assert (ds["on_a_worker_status"] == 1).all()
    ran_in = set(ds["job"].values.ravel().tolist())
    assert ran_in & first_jobs and ran_in & second_jobs and not first_jobs & second_jobs
    with xr.open_dataset(tmp_path / "r.nc") as shared:
        np.testing.assert_array_equal(shared["value"].values, want)
        assert (shared["on_a_worker_status"] == 1).all()
