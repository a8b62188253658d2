"""The SIGKILL child of the conformance matrix: sweeps every kind at once, then kills itself.

Run as ``python -m conformance.child <folder> <kind> ...`` with ``tests/`` on ``sys.path``
(so that ``conformance.kinds`` is the module the test process imports, and cache keys
agree). Each kind is swept into ``<folder>/<kind>.nc`` in a background sweep over every
cell; the cell ``a=4`` blocks (see :func:`conformance.kinds._cell`), so cells 0-3 are in
each file's journal and not yet published when the process SIGKILLs itself. The sweeps
start one after the other: two threads publishing NetCDF files at once crash the process
(SIGSEGV in the netCDF library; reported with issue 21).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings

from . import kinds


def main(argv: list[str]) -> None:
    folder, names = argv[0], argv[1:]
    os.environ[kinds.BLOCK_ENV] = f"{folder}|4"
    warnings.simplefilter("ignore")
    for name in names:
        # one at a time: the previous sweep is blocked in its user function (no NetCDF
        # call), so no two threads of this process use the netCDF library at once
        ps = kinds.space()
        ps.enable_cache(os.path.join(folder, f"{name}.nc"))
        job = ps.sweep_async(kinds.FUNCTIONS[name], progress=False)
        marker = os.path.join(folder, f"{name}.blocked")
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and not job.done() and time.monotonic() < deadline:
            time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1:])
