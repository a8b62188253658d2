"""Sweeping a program: what ``xs.command`` costs per cell above a bare ``subprocess.run``.

The program is a tiny C program (compiled with ``cc`` into a temporary folder) that sleeps for
a given number of milliseconds and writes its result to ``out.json``. Without a C compiler it
is ``/bin/sh -c 'sleep ...; echo ... > out.json'`` (printed; ``sleep`` then forks once more).

Measured in one run, interleaved so that a burst of load hits all sides alike:

a. The ~50 ms program over ``--cells`` cells (default 20):

   - **bare**: what you would write by hand, a loop that per cell makes the cell's folder,
     ``subprocess.run``\\ s the program there (``check=True``) and ``json.load``\\ s its output
     into a numpy array;
   - **xs.command**: ``ps.sweep(cmd)`` of the same program with ``outputs={"square":
     "out.json"}``, no cache (working folder, stale output removed, stdout and stderr to files,
     its own session, ``setpriv --pdeathsig``, JSON read, Dataset built);
   - **xs.command, cached**: the same with a cache file, ``force_recompute=True`` (every cell
     run again and written to the file, which is published at the end).

   Prints the median time per cell and the overhead above bare, in ms and in percent of the
   bare time. Target: under **5 %** for the 50 ms program (judged on the median of the
   per-repeat overheads of the uncached sweep).
b. The same for a ~0 ms program (the C program with no sleep), where only the overhead is
   left: printed in absolute ms per cell. Also ``/bin/true`` with no outputs (the exit status).
c. Where the overhead goes: a bare ``subprocess.run`` through ``setpriv --pdeathsig KILL``
   (the launcher xs.command uses when util-linux has it) against one without.

Run:  python benchmarks/bench_command.py [--quick] [--repeats N] [--cells N] [--keep] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import xsweep as xs

TARGET_PERCENT = 5.0
SLEEP_MS = 50
perf = time.perf_counter

C_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
/* sim N MS OUT: sleeps MS milliseconds, writes N*N to OUT as JSON. */
int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: sim N MS OUT\n"); return 2; }
    long n = atol(argv[1]), ms = atol(argv[2]);
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    if (ms > 0) nanosleep(&ts, NULL);
    FILE *f = fopen(argv[3], "w");
    if (!f) { perror(argv[3]); return 1; }
    fprintf(f, "%ld\n", n * n);
    return fclose(f) != 0;
}
"""


def build_program(folder):
    """argv template (with {n}, {ms}, {out}) of the program, and a description of it."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc:
        source = os.path.join(folder, "sim.c")
        binary = os.path.join(folder, "sim")
        with open(source, "w") as f:
            f.write(C_SOURCE)
        proc = subprocess.run([cc, "-O2", "-o", binary, source], capture_output=True, text=True)
        if proc.returncode == 0:
            return [binary, "{n}", "{ms}", "{out}"], f"a C program compiled with {cc}"
        print(f"NOTICE: {cc} failed ({proc.stderr.strip()[:200]}); using /bin/sh instead")
    else:
        print("NOTICE: no C compiler found; using /bin/sh -c 'sleep ...' instead")
    # No braces in the script: the arguments are templates ({n}). "$2" is the sleep in seconds.
    script = 'if [ "$2" != 0 ]; then sleep "$2"; fi; echo $(($1 * $1)) > "$3"'
    return ["/bin/sh", "-c", script, "sh", "{n}", "{sec}", "{out}"], "/bin/sh -c 'sleep; echo'"


def fill(template, ms, **values):
    """The arguments with the values; the sleep as ``{ms}`` (milliseconds) or ``{sec}``."""
    return [a.format(ms=ms, sec=f"{ms / 1000:g}", **values) for a in template]


def bare_loop(template, ms, root, cells):
    """By hand: per cell, a folder, subprocess.run, json.load, into an array."""
    out = np.empty(cells, dtype=np.int64)
    for n in range(cells):
        folder = os.path.join(root, f"n={n}")
        os.makedirs(folder, exist_ok=True)
        subprocess.run(fill(template, ms, n=n, out="out.json"), cwd=folder, check=True)
        with open(os.path.join(folder, "out.json")) as f:
            out[n] = json.load(f)
    return out


def bare_true(cells):
    for _ in range(cells):
        subprocess.run(["/bin/true"], check=True)


def interleaved(fns, repeats):
    """Time the functions alternately, ``repeats`` rounds; seconds per round for each."""
    times = [[] for _ in fns]
    results = [None] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = perf()
            results[k] = fn()
            times[k].append(perf() - t0)
    return times, results


def per_cell_ms(times, cells):
    return min(times) / cells * 1e3, statistics.median(times) / cells * 1e3


def paired_overhead(bare, other, cells):
    """Median over rounds of (other - bare) per cell in ms, and in percent of bare."""
    ms = [(o - b) / cells * 1e3 for b, o in zip(bare, other)]
    pct = [(o - b) / b * 100 for b, o in zip(bare, other)]
    return statistics.median(ms), statistics.median(pct)


def row(label, pair, note=""):
    print(f"  {label:<24}: {pair[0]:8.3f} / {pair[1]:8.3f} ms per cell {note}".rstrip())


def bench_program(template, ms, root, cells, repeats):
    """Bare loop vs xs.command (no cache, cached) for the program sleeping ``ms``."""
    space = xs.ParameterSpace([xs.Parameter("n", values=range(cells))])
    cached = xs.ParameterSpace([xs.Parameter("n", values=range(cells))])
    cached.enable_cache(os.path.join(root, f"command_{ms}ms.nc"))
    argv = fill(template, ms, n="{n}", out="{workdir}/out.json")
    cmd = xs.command(
        argv,
        workdir=os.path.join(root, f"xs_{ms}", "n={n}"),
        outputs={"square": "out.json"},
        name="sim",
    )
    bare_root = os.path.join(root, f"bare_{ms}")
    expected = np.arange(cells) ** 2
    # Warm-up: first-use imports, the Dataset machinery, the file's layout.
    bare_loop(template, ms, bare_root, cells)
    space.sweep(cmd, progress=False)
    cached.sweep(cmd, progress=False)
    (bare, plain, stored), (b, ds, dc) = interleaved(
        [
            lambda: bare_loop(template, ms, bare_root, cells),
            lambda: space.sweep(cmd, progress=False),
            lambda: cached.sweep(cmd, progress=False, force_recompute=True),
        ],
        repeats,
    )
    for got in (b, ds["square"].values, dc["square"].values):
        assert np.array_equal(got, expected), f"wrong results: {got}"
    cached.disable_cache()
    return bare, plain, stored


def report(tag, title, cells, bare, plain, stored):
    print(f"[{tag}] {title} (best / median)")
    row("bare subprocess.run", per_cell_ms(bare, cells))
    row("xs.command", per_cell_ms(plain, cells))
    row("xs.command, cached", per_cell_ms(stored, cells))
    over = paired_overhead(bare, plain, cells)
    over_c = paired_overhead(bare, stored, cells)
    print(
        f"  {'overhead':<24}: {over[0]:8.3f} ms per cell = {over[1]:5.1f} % of bare (median "
        "of the rounds)"
    )
    print(f"  {'overhead, cached':<24}: {over_c[0]:8.3f} ms per cell = {over_c[1]:5.1f} % of bare")
    print(
        f"  {'bare noise':<24}: {per_cell_ms(bare, cells)[1] - per_cell_ms(bare, cells)[0]:8.3f}"
        " ms per cell (median - best of bare alone)"
    )
    return over, over_c


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run (< 15 s)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per measurement")
    parser.add_argument("--cells", type=int, default=None, help="cells per sweep (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (timings are noisy)"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    cells = args.cells or (6 if args.quick else 20)
    # xs.command is the function; its module (which holds the launcher it found) is here:
    launcher = sys.modules["xsweep.programs.command"]._SETPRIV
    print(f"xsweep {xs.__version__}, python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"launcher: {'setpriv --pdeathsig KILL (' + launcher + ')' if launcher else 'none'}")
    root = tempfile.mkdtemp(prefix="xsweep-bench-command-")
    try:
        template, what = build_program(root)
        print(f"program: {what}; {cells} cells per sweep, {repeats} interleaved rounds")

        bare, plain, stored = bench_program(template, SLEEP_MS, root, cells, repeats)
        over, over_c = report(
            "50ms",
            f"a program that sleeps {SLEEP_MS} ms and writes out.json",
            cells,
            bare,
            plain,
            stored,
        )
        ok = over[1] < TARGET_PERCENT
        print(
            f"SUMMARY command_50ms: bare {per_cell_ms(bare, cells)[1]:.2f} ms/cell, xs.command "
            f"{per_cell_ms(plain, cells)[1]:.2f} ms/cell (median): overhead {over[0]:.2f} ms "
            f"= {over[1]:.1f} % (cached: {over_c[0]:.2f} ms = {over_c[1]:.1f} %), target < "
            f"{TARGET_PERCENT:g} %: {'PASS' if ok else 'FAIL'}"
        )

        bare0, plain0, stored0 = bench_program(template, 0, root, cells, repeats)
        over0, over0_c = report(
            "0ms", "the same program without the sleep", cells, bare0, plain0, stored0
        )
        space = xs.ParameterSpace([xs.Parameter("n", values=range(cells))])
        true = xs.command(["/bin/true"], workdir=os.path.join(root, "true", "n={n}"))
        # /bin/true names no parameter: sweep it over n with depends_on.
        space.sweep(true, depends_on=["n"], progress=False)
        (bt, xt), _ = interleaved(
            [lambda: bare_true(cells), lambda: space.sweep(true, depends_on=["n"], progress=False)],
            repeats,
        )
        over_t = paired_overhead(bt, xt, cells)
        print("[true] /bin/true, no outputs (the exit status) (best / median)")
        row("bare subprocess.run", per_cell_ms(bt, cells))
        row("xs.command", per_cell_ms(xt, cells))
        print(f"  {'overhead':<24}: {over_t[0]:8.3f} ms per cell")
        print(
            f"SUMMARY command_0ms: overhead {over0[0]:.2f} ms/cell above a "
            f"{per_cell_ms(bare0, cells)[1]:.2f} ms bare run with out.json read (cached "
            f"{over0_c[0]:.2f} ms); /bin/true without outputs: {over_t[0]:.2f} ms/cell above "
            f"{per_cell_ms(bt, cells)[1]:.2f} ms"
        )

        # Where it goes: the setpriv launcher is one more exec per cell.
        if launcher:
            runs = max(20, cells * 2)

            def plain_runs():
                for _ in range(runs):
                    subprocess.run(["/bin/true"])

            def setpriv_runs():
                for _ in range(runs):
                    subprocess.run([launcher, "--pdeathsig", "KILL", "--", "/bin/true"])

            (tp, ts), _ = interleaved([plain_runs, setpriv_runs], repeats)
            extra = paired_overhead(tp, ts, runs)[0]
            print(f"[setpriv] subprocess.run of /bin/true, {runs} runs (best / median)")
            row("plain", per_cell_ms(tp, runs))
            row("through setpriv", per_cell_ms(ts, runs))
            print(
                f"SUMMARY command_setpriv: the setpriv launcher costs {extra:.2f} ms per run "
                f"(of the {over[0]:.2f} ms overhead per cell of the 50 ms program)"
            )
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
