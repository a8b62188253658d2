"""The ``xsweep`` command line: ``xsweep demo`` (more commands come with later releases)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence


def beam_deflection(length: float, load: float, material: str) -> dict[str, float]:
    """Tip deflection and root stress of a cantilever beam (the demo's swept function)."""
    youngs = {"steel": 200e9, "aluminium": 69e9, "oak": 11e9}[material]
    inertia = 0.05 * 0.1**3 / 12  # a 5 cm x 10 cm rectangular section, m^4
    return {
        "deflection": load * length**3 / (3 * youngs * inertia),
        "stress": load * length * 0.05 / inertia,
    }


def demo(folder: str | None = None) -> int:
    """Sweep :func:`beam_deflection` over a small grid with the cache on and print the result."""
    import xsweep as xs

    ps = xs.ParameterSpace(
        [
            xs.Parameter(
                "length", values=[1.0, 2.0, 3.0, 4.0], units="m", description="beam length"
            ),
            xs.Parameter(
                "load",
                values=[100.0, 500.0, 1000.0],
                units="N",
                description="point load at the tip",
            ),
            xs.Parameter(
                "material", values=["steel", "aluminium", "oak"], description="beam material"
            ),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(folder or tmp, "beam.nc")
        ps.enable_cache(path)
        ds = ps.sweep(beam_deflection)
        ps.disable_cache()
        print(ds)
        print(
            f"\nSwept {ps.size} cells into {path}"
            + ("" if folder else " (a temporary folder, removed on exit)")
            + "."
        )
        print(
            "Deflection of a 3 m oak beam under 500 N:",
            f"{float(ds['deflection'].sel(length=3.0, load=500.0, material='oak')):.4g} m",
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xsweep`` console script.

    Examples
    --------
    >>> from xsweep.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    xsweep ...
    0
    """
    from xsweep import __version__

    parser = argparse.ArgumentParser(prog="xsweep", description="Parameter sweeps in xarray.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    p_demo = sub.add_parser("demo", help="sweep a small example function and print the Dataset")
    p_demo.add_argument(
        "--dir",
        help="keep the results file in this folder (default: a "
        "temporary folder, removed afterwards)",
    )
    args = parser.parse_args(argv)
    if args.version:
        print(f"xsweep {__version__}")
        return 0
    if args.command == "demo":
        if args.dir and not os.path.isdir(args.dir):
            print(
                f"xsweep demo: error: --dir {args.dir} is not a folder; create it first.",
                file=sys.stderr,
            )
            return 2
        return demo(args.dir)
    parser.print_help()
    return 2
