"""Sweeps on SLURM workers (dask-jobqueue) against a local process pool, per cell, in one run.

The same cached sweep of cheap cells (``a * b``) and of cells that sleep 50 ms, on a warm
``SLURMCluster`` of 2 worker jobs (1 core each) and on a warm 2-process pool, interleaved;
the best of ``--repeats`` runs each. Printed: microseconds per cell, and the SLURM/pool ratio.
Start-up is excluded and printed separately (submitting the jobs, the workers joining).

Needs the test cluster (``bash tests/cluster/slurm_up.sh``; root) and ``xsweep-nc[hpc]``.
Run:  SLURM_CONF=/tmp/xsweep-slurm/slurm.conf python benchmarks/bench_slurm.py [--repeats N]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import xsweep as xs


def cheap(a, b):
    return a * b


def sleepy(a, b):
    time.sleep(0.05)
    return a * b


def timed(executor, fn, side: int, folder: str) -> float:
    ps = xs.ParameterSpace(
        [xs.Parameter("a", values=list(range(side))), xs.Parameter("b", values=list(range(side)))]
    )
    path = os.path.join(folder, f"r{time.perf_counter_ns()}.nc")
    ps.enable_cache(path)
    start = time.perf_counter()
    ps.sweep(fn, executor=executor, progress=False)
    seconds = time.perf_counter() - start
    ps.disable_cache()
    return seconds / side**2 * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("SLURM_CONF") or not shutil.which("sbatch"):
        print("no SLURM cluster: run `bash tests/cluster/slurm_up.sh` and set SLURM_CONF")
        return 2
    handler = signal.getsignal(signal.SIGINT)
    from dask_jobqueue import SLURMCluster  # sets SIGINT to sys.exit: put it back
    from distributed import Client

    signal.signal(signal.SIGINT, handler)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    folder = tempfile.mkdtemp()
    start = time.perf_counter()
    cluster = SLURMCluster(
        cores=1, processes=1, memory="512MB", walltime="00:30:00",
        job_extra_directives=["--mem=400M"], interface="lo",
        scheduler_options={"dashboard_address": ":0"}, python=sys.executable,
        log_directory=os.path.join(folder, "logs"),
    )
    cluster.scale(jobs=2)
    client = Client(cluster)
    client.wait_for_workers(2, timeout=120)
    print(f"SLURM cluster of 2 worker jobs up in {time.perf_counter() - start:.1f} s")
    pool = ProcessPoolExecutor(2)
    list(pool.map(abs, range(4)))  # warm
    try:
        for name, fn, side in (("cheap a*b", cheap, 100), ("sleep 50 ms", sleepy, 8)):
            timed(client, fn, 4, folder)  # warm both: the function reaches the workers
            timed(pool, fn, 4, folder)
            on_slurm, on_pool = [], []
            for _ in range(args.repeats):
                on_slurm.append(timed(client, fn, side, folder))
                on_pool.append(timed(pool, fn, side, folder))
            best_slurm, best_pool = min(on_slurm), min(on_pool)
            print(
                f"SUMMARY slurm_{name.split()[0]}: {side * side} cells of {name}: SLURM workers "
                f"{best_slurm:.1f} us/cell, local pool {best_pool:.1f} us/cell, ratio "
                f"{best_slurm / best_pool:.2f}x (best of {args.repeats})"
            )
    finally:
        pool.shutdown()
        client.close()
        cluster.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
