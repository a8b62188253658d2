"""Memory of big sweeps, measured in child processes (peak resident memory, ``VmHWM``:
``ru_maxrss`` would keep the pytest parent's peak across fork and exec)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCALAR_CHILD = textwrap.dedent(
    """
    import json, os, sys
    import xsweep as xs

    def peak():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024

    def f(a, b):
        return a * b

    side, path = int(sys.argv[1]), sys.argv[2]
    # Warm up: imports and first uses (netCDF4, xarray's indexes) are not per-cell costs.
    warm = xs.ParameterSpace([xs.Parameter("a", values=[1, 2]), xs.Parameter("b", values=[3])])
    warm.enable_cache(path + ".warm.nc")
    warm.sweep(f, progress=False)
    ps = xs.ParameterSpace(
        [xs.Parameter("a", values=range(side)), xs.Parameter("b", values=range(side))]
    )
    ps.enable_cache(path)
    before = peak()
    ds = ps.sweep(f, progress=False)
    after = peak()
    exact = bool((ds["f"].values == ds["a"].values[:, None] * ds["b"].values[None, :]).all())
    print(json.dumps({"peak": after - before, "file": os.path.getsize(path), "exact": exact}))
    """
)


def test_a_scalar_sweep_needs_about_twice_the_bytes_its_file_holds(tmp_path):
    """A million cells: the loop makes Python arguments a batch at a time, never for the whole
    grid (which cost ~150 bytes per cell); what remains is the results in numpy buffers."""
    side = 1000
    out = subprocess.run(
        [sys.executable, "-c", SCALAR_CHILD, str(side), str(tmp_path / "s.nc")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["exact"]
    cells = side * side
    per_cell, in_file = r["peak"] / cells, r["file"] / cells
    assert per_cell <= 2.5 * in_file, f"{per_cell:.1f} bytes per cell for {in_file:.1f} in the file"
