"""Parallel sweeps: what process pools and a dask cluster gain and cost, as ratios from one run.

Sections, each with its target:

a. 40 cells of ``time.sleep(0.05)``: serial sweep against ``workers=2`` (pool start-up
   INCLUDED: the sweep creates and shuts down its pool inside the timed call) and against a
   warm 2-process pool passed as ``executor=`` (start-up EXCLUDED). Speedup = serial time /
   parallel time; target >= 1.8x for ``workers=2``.
b. 10,000 cells of ``a * b`` (100 x 100) with the cache on, a new file per run: a warm
   2-process pool (start-up excluded) and ``workers=2`` (included), both with the default
   adaptive batching, against the serial cached sweep. Ratio = parallel time / serial time;
   target <= 3 (parallel not slower than 3x serial: batching must hide the per-task cost).
c. The same 10,000 cells, cache on, on a dask ``LocalCluster`` of 2 worker processes (one
   thread each) passed as ``executor=client``. The cluster is started once and warmed up
   before timing (start-up EXCLUDED; it is printed separately). Reported in us per cell: the
   wall time, and the overhead above the serial cached sweep. No target.
d. For reference, what batching saves: the round trip of one task, measured with
   ``chunksize=1`` over cheap cells, on the warm process pool and on the dask cluster.

Timings on a small shared machine are noisy: every measurement is repeated, serial and
parallel runs are interleaved, and the best run is compared (the median is printed too).

Run:  python benchmarks/bench_parallel.py [--quick] [--repeats N] [--strict]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import xsweep as xs

TARGETS = {
    "sleep_speedup": 1.8,  # a: serial / workers=2, start-up included
    "cheap_ratio": 3.0,  # b: parallel / serial, cached, 10,000 cells
}
SLEEP = 0.05
perf = time.perf_counter


# Module-level functions, the way a user's script defines them. Defined in __main__, they
# travel to the workers by value (cloudpickle), as a notebook's functions do.
def slow(i):
    time.sleep(SLEEP)
    return i


def product(a, b):
    return a * b


def identity(i):
    return i


def sleep_space(n):
    return xs.ParameterSpace([xs.Parameter("i", values=list(range(n)))])


def grid_space(side=100):
    return xs.ParameterSpace(
        [xs.Parameter("a", values=list(range(side))), xs.Parameter("b", values=list(range(side)))]
    )


def timed(fn, *args, **kwargs):
    t0 = perf()
    fn(*args, **kwargs)
    return perf() - t0


def best_median(times):
    return min(times), statistics.median(times)


def verdict(ok):
    return "MET" if ok else "MISSED"


def warm_pool(workers):
    """A process pool with its workers started and xsweep's per-worker set-up done."""
    pool = ProcessPoolExecutor(max_workers=workers)
    list(pool.map(abs, range(4 * workers)))  # start every worker process
    sleep_space(4 * workers).sweep(identity, executor=pool, progress=False)
    return pool


# ---------------------------------------------------------------------------------------------
def bench_sleep(pool, n, repeats):
    print(f"\na. {n} cells of time.sleep({SLEEP}), serial vs 2 worker processes, best of {repeats}")
    serial, fresh, warm = [], [], []
    for _ in range(repeats):
        serial.append(timed(sleep_space(n).sweep, slow, progress=False))
        fresh.append(timed(sleep_space(n).sweep, slow, workers=2, progress=False))
        warm.append(timed(sleep_space(n).sweep, slow, executor=pool, progress=False))
    s, s_med = best_median(serial)
    f, f_med = best_median(fresh)
    w, w_med = best_median(warm)
    ideal = n * SLEEP
    print(f"  serial                       : {s:.3f} s (median {s_med:.3f}; sleeping {ideal:.2f})")
    print(f"  workers=2 (start-up incl.)   : {f:.3f} s (median {f_med:.3f})")
    print(f"  warm pool (start-up excl.)   : {w:.3f} s (median {w_med:.3f}; ideal {ideal / 2:.2f})")
    speedup, speedup_warm = s / f, s / w
    ok = speedup >= TARGETS["sleep_speedup"]
    print(
        f"SUMMARY parallel_sleep: speedup {speedup:.2f}x with workers=2 (start-up included), "
        f"{speedup_warm:.2f}x on a warm pool (excluded); target >= "
        f"{TARGETS['sleep_speedup']}x: {verdict(ok)}"
    )
    return ok


def bench_cheap(pool, folder, side, repeats):
    cells = side * side
    print(
        f"\nb. {cells:,} cells of a * b, cache on (a new file per run), "
        f"default batching, best of {repeats}"
    )
    serial, warm, fresh = [], [], []
    for r in range(repeats):
        for label, times, kwargs in (
            ("serial", serial, {}),
            ("warm", warm, {"executor": pool}),
            ("fresh", fresh, {"workers": 2}),
        ):
            ps = grid_space(side)
            ps.enable_cache(os.path.join(folder, f"cheap-{label}-{r}.nc"))
            times.append(timed(ps.sweep, product, progress=False, **kwargs))
            ps.disable_cache()
    check = grid_space(side)
    check.enable_cache(os.path.join(folder, f"cheap-warm-{repeats - 1}.nc"))
    ds = check.sweep(product, progress=False)  # everything cached: just read it back
    assert int((ds["product_status"] == 1).sum()) == cells
    assert np.array_equal(ds["product"].values, np.outer(np.arange(side), np.arange(side)))
    s, s_med = best_median(serial)
    w, w_med = best_median(warm)
    f, f_med = best_median(fresh)
    us = 1e6 / cells
    print(f"  serial, cached               : {s:.3f} s (median {s_med:.3f}) = {s * us:.1f} us/cell")
    print(f"  warm pool (start-up excl.)   : {w:.3f} s (median {w_med:.3f}) = {w * us:.1f} us/cell")
    print(f"  workers=2 (start-up incl.)   : {f:.3f} s (median {f_med:.3f}) = {f * us:.1f} us/cell")
    ratio, ratio_fresh = w / s, f / s
    ok = ratio <= TARGETS["cheap_ratio"]
    print(
        f"SUMMARY parallel_cheap: parallel/serial {ratio:.2f} on a warm pool (start-up "
        f"excluded), {ratio_fresh:.2f} with workers=2 (included); target <= "
        f"{TARGETS['cheap_ratio']}: {verdict(ok)}"
    )
    return ok, s


def start_dask():
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return None, None, None
    t0 = perf()
    with warnings.catch_warnings():  # "Port 8787 is already in use": harmless, not ours
        warnings.simplefilter("ignore", UserWarning)
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    client.wait_for_workers(2)
    sleep_space(8).sweep(identity, executor=client, progress=False)  # warm up
    return cluster, client, perf() - t0


def bench_dask(client, startup, folder, side, repeats, serial_best):
    cells = side * side
    print(
        f"\nc. {cells:,} cells of a * b, cache on, dask LocalCluster (2 processes x 1 thread), "
        f"default batching, best of {repeats}"
    )
    times = []
    for r in range(repeats):
        ps = grid_space(side)
        ps.enable_cache(os.path.join(folder, f"dask-{r}.nc"))
        times.append(timed(ps.sweep, product, executor=client, progress=False))
        assert int((ps.sweep(product, progress=False)["product_status"] == 1).sum()) == cells
        ps.disable_cache()
    d, d_med = best_median(times)
    us = 1e6 / cells
    print(f"  cluster start-up (excluded)  : {startup:.2f} s")
    print(f"  sweep                        : {d:.3f} s (median {d_med:.3f})")
    print(
        f"SUMMARY parallel_dask: {d * us:.1f} us/cell wall (median {d_med * us:.1f}), "
        f"{(d - serial_best) * us:.1f} us/cell above the serial cached sweep "
        f"({serial_best * us:.1f} us/cell); cluster start-up excluded"
    )


def bench_task_cost(pool, client, n, repeats):
    print(f"\nd. round trip of one task: {n} cheap cells with chunksize=1, best of {repeats}")
    out = {}
    executors = [("process pool", pool)] + ([("dask", client)] if client is not None else [])
    for label, ex in executors:
        times = [
            timed(sleep_space(n).sweep, identity, executor=ex, chunksize=1, progress=False)
            for _ in range(repeats)
        ]
        out[label] = min(times) / n
        print(f"  {label:<29}: {out[label] * 1e3:.3f} ms/task")
    print(
        "SUMMARY parallel_task: "
        + ", ".join(f"{k} {v * 1e3:.3f} ms per task" for k, v in out.items())
        + " (2 workers, 2 tasks per worker in flight)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run (< 20 s)")
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per measurement")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (timings are noisy)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 5)
    folder = tempfile.mkdtemp(prefix="xsweep-bench-parallel-")
    print(
        f"xsweep {xs.__version__}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, folder {folder}"
    )
    results = []
    pool = warm_pool(2)
    cluster = client = None
    try:
        results.append(bench_sleep(pool, 40, repeats))
        ok, serial_best = bench_cheap(pool, folder, 100, repeats)
        results.append(ok)
        cluster, client, startup = start_dask()
        if client is None:
            print("\nc. skipped: dask.distributed is not installed (pip install 'xsweep-nc[dask]')")
        else:
            bench_dask(client, startup, folder, 100, repeats, serial_best)
        bench_task_cost(pool, client, 40 if quick else 200, 1 if quick else 3)
    finally:
        if client is not None:
            client.close()
            cluster.close()
        pool.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    if quick:
        print("\n(--quick: one run per measurement and fewer tasks in d; noisier than a full run)")
    print(f"SUMMARY parallel: {sum(results)} of {len(results)} targets met")
    return 1 if args.strict and not all(results) else 0


if __name__ == "__main__":
    sys.exit(main())
