"""A smoke test of xsweep as a user installs it, from the wheel.

``.ci/wheel`` runs it with the Python of a fresh environment that holds only the wheel and
its runtime dependencies, from a folder outside the source tree: a module missing from the
wheel, a file it forgot or a runtime dependency it does not declare fails here, where the
test suite (which runs from the checkout) would not notice.

Usage: ``python smoke_wheel.py DISTRIBUTION`` (the name pip installed, ``xsweep-nc``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

import xsweep as xs

#: Installed by the test, notebook and dask extras only: the environment must not have them,
#: or it would not show that the runtime dependencies are enough.
NOT_RUNTIME = ("pytest", "ipywidgets", "dask", "cloudpickle", "hypothesis", "h5netcdf")

CALLS: list[tuple[int, str]] = []


def beam(length: int, material: str) -> dict:
    """A scalar and an image per cell: numpy, matplotlib, pillow and the NetCDF store."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    CALLS.append((length, material))
    if material == "glass" and length == 3:
        raise ValueError("glass breaks at 3 m")
    fig = plt.figure(figsize=(1, 1), dpi=16)
    plt.plot([0, length], [0, 1])
    return {
        "stiffness": length * {"steel": 200.0, "oak": 11.0, "glass": 70.0}[material],
        "sketch": xs.figure_to_array(fig),
    }


def check(what: str, ok: bool, detail: object = "") -> None:
    if not ok:
        raise SystemExit(f"smoke test FAILED: {what} {detail}")
    print(f"ok  {what}")


def installed_from_the_environment(distribution: str) -> None:
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    where = Path(xs.__file__).resolve()
    check(f"xsweep is imported from {site}", site in where.parents, f"but from {where}")
    version = importlib.metadata.version(distribution)
    check(f"{distribution} {version} is xsweep {xs.__version__}", version == xs.__version__)
    present = [name for name in NOT_RUNTIME if importlib.util.find_spec(name) is not None]
    check("only the runtime dependencies are installed", not present, present)
    modules = [m.name for m in pkgutil.walk_packages(xs.__path__, "xsweep.")]
    for name in modules:
        if name != "xsweep.__main__":  # runs the command line
            importlib.import_module(name)
    check(f"all {len(modules)} modules of the wheel import", len(modules) > 20, modules)
    wheel_files = {str(f) for f in importlib.metadata.distribution(distribution).files or []}
    check(
        "every module is in the wheel's RECORD",
        all(
            m.replace(".", "/") + ".py" in wheel_files
            or m.replace(".", "/") + "/__init__.py" in wheel_files
            for m in modules
        ),
    )


def a_cached_sweep(folder: Path) -> None:
    ps = xs.ParameterSpace(
        [
            xs.Parameter("length", values=[1, 2, 3], units="m"),
            xs.Parameter("material", values=["steel", "oak", "glass"]),
        ]
    )
    path = folder / "beams.nc"
    ps.enable_cache(path)
    ps.sweep(beam, cells={"length": [1]}, progress=False)
    first = len(CALLS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ps.sweep(beam, progress=False)
    check("the second sweep computes only the missing cells", len(CALLS) - first == 6)
    check(
        "a failed cell is reported",
        any(issubclass(w.category, xs.SweepFailuresWarning) for w in caught),
    )
    status = ds["beam_status"].values
    check("8 cells computed, 1 failed", (status == 1).sum() == 8 and (status == 2).sum() == 1)
    check("the failed cell has no value", np.isnan(ds["stiffness"].sel(length=3, material="glass")))
    check("images keep their dims", ds["sketch"].dims == ("length", "material", "y", "x", "rgb"))
    before = len(CALLS)
    again = ps.run_process(beam, length=2, material="oak")
    check(
        "run_process reads a cached cell without calling",
        len(CALLS) == before and again["stiffness"] == 22.0,
    )
    ps.disable_cache()
    with xr.open_dataset(path) as plain:
        check(
            "plain xarray reads the same values",
            np.array_equal(plain["stiffness"].values, ds["stiffness"].values, equal_nan=True),
        )
    command = Path(sys.prefix) / "bin" / "xsweep"
    info = subprocess.run(
        [str(command), "info", "--json", str(path)], capture_output=True, text=True, check=False
    )
    check(
        "the xsweep command describes the file",
        info.returncode == 0 and isinstance(json.loads(info.stdout), dict),
        info.stderr[-1000:],
    )


def main() -> None:
    distribution = sys.argv[1]
    installed_from_the_environment(distribution)
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        a_cached_sweep(Path(folder))
    print(f"smoke test of {distribution} {xs.__version__}: every check passed")


if __name__ == "__main__":
    main()
