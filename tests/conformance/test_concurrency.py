"""Several background sweeps in one process, each into its own file (found by the matrix).

The netCDF library is not thread-safe; two ``sweep_async`` jobs publishing at once crash the
process (SIGSEGV, SIGBUS) or fail with "NetCDF: Not a valid ID ... check free disk space".
Each attempt runs in a child process, since a crash would take pytest down.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import os, sys, numpy as np, xsweep as xs
folder = sys.argv[1]
def f(a):
    return np.arange(3.0) * a
jobs = []
for i in range(8):
    ps = xs.ParameterSpace([xs.Parameter("a", values=list(range(50)))])
    ps.enable_cache(os.path.join(folder, f"{i}.nc"))
    jobs.append(ps.sweep_async(f, progress=False))
for job in jobs:
    assert job.result()["f"].sel(a=49).values.tolist() == [0.0, 49.0, 98.0]
print("ok")
"""


@pytest.mark.xfail(
    strict=True,
    reason="found by the matrix: concurrent background sweeps on different files crash the "
    "process (netCDF calls are not serialised across stores)",
)
def test_background_sweeps_into_different_files_at_once(tmp_path):
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=root)
    for attempt in range(4):  # today ~5 in 6 attempts crash: 4 clean ones mean it is fixed
        folder = tmp_path / str(attempt)
        folder.mkdir()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0 and "ok" in proc.stdout, (
            f"attempt {attempt}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        )
