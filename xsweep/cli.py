"""The ``xsweep`` command line: ``demo``, ``info``, ``failures``, ``publish`` and ``merge``.

Errors on bad files are one line on standard error and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from .errors import StoreLockedError, XsweepError


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
        cached = sum(
            ps.is_computed(beam_deflection, length=a, load=b, material=c)
            for a in ps["length"].values.tolist()
            for b in ps["load"].values.tolist()
            for c in ps["material"].values.tolist()
        )
        ds = ps.sweep(beam_deflection)
        ps.disable_cache()
        print(ds)
        done = (
            f"computed {ps.size} cells"
            if not cached
            else f"found all {ps.size} cells cached"
            if cached == ps.size
            else f"found {cached} cells cached and computed {ps.size - cached}"
        )
        print(f"\nSwept beam_deflection: {done}, in {path}.")
        print(
            "Deflection of a 3 m oak beam under 500 N:",
            f"{float(ds['deflection'].sel(length=3.0, load=500.0, material='oak')):.4g} m",
        )
        if folder:
            print(f"Summarise the file with: xsweep info {path}")
        else:
            print("(A temporary folder, removed on exit: pass --dir DIR to keep the file.)")
    return 0


def describe(path: str) -> dict[str, Any]:
    """Everything ``xsweep info`` shows about a results file, as plain data.

    Examples
    --------
    >>> import os, tempfile, xsweep as xs
    >>> from xsweep.cli import describe
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2], units="m")])
    >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
    >>> _ = ps.sweep(lambda a: a / 2)
    >>> info = describe(ps.cache_path)
    >>> info["parameters"][0]["units"], info["functions"][0]["computed"]
    ('m', 2)
    """
    from .store import file_attrs, open_store

    store = open_store(path, outputs=False)  # a summary: a file of any size opens
    attrs = file_attrs(store.path)
    params = []
    for name, (values, pattrs) in store.grid.items():
        params.append(
            {
                "name": name,
                "size": int(len(values)),
                "values": values.tolist(),
                "units": pattrs.get("units"),
                "description": pattrs.get("description"),
            }
        )
    functions = []
    for f in store.functions():
        functions.append(
            {
                "function": f.key,
                "name": f.name,
                "parameters": list(f.dims),
                "outputs": list(f.outputs),
                "cells": f.cells,
                "computed": f.counts["computed"],
                "no_value": f.counts["no_value"],
                "failed": f.counts["failed"],
                "missing": f.counts["not_computed"],
                "total_seconds": f.total_seconds,
                "mean_seconds": f.mean_seconds,
                "fingerprint": f.fingerprint,
                "journal_only": f.journal_only,
            }
        )
    provenance = {
        k: str(v) for k, v in attrs.items() if k in ("created", "updated") or k.endswith("_version")
    }
    return {
        "path": store.path,
        "parameters": params,
        "functions": functions,
        "provenance": provenance,
    }


def _print_info(info: dict[str, Any]) -> None:
    print(info["path"])
    print("parameters:")
    for p in info["parameters"]:
        values = [repr(v) for v in p["values"]]
        shown = (
            "["
            + ", ".join(values if len(values) <= 8 else [*values[:3], "...", *values[-2:]])
            + "]"
        )
        units = f" [{p['units']}]" if p["units"] else ""
        print(f"  {p['name']}{units}: {p['size']} values {shown}")
    print("functions:")
    for f in info["functions"]:
        mean = f"{f['mean_seconds']:.3g} s" if f["mean_seconds"] is not None else "-"
        print(f"  {f['function']} -> {', '.join(f['outputs']) or '(no output yet)'}")
        print(
            f"    over {', '.join(f['parameters'])}: {f['computed']} computed, "
            f"{f['failed']} failed, {f['missing']} missing of {f['cells']} cells"
        )
        print(f"    time: {f['total_seconds']:.3g} s in all, {mean} per cell")
        if f["journal_only"]:
            print(
                f"    {f['journal_only']} computed cells are so far only in the journal, not in "
                f"the file a colleague would copy: xsweep publish {info['path']}"
            )
    print("provenance:")
    for k, v in info["provenance"].items():
        print(f"  {k}: {v}")


def failures(path: str) -> list[dict[str, Any]]:
    """The failed cells of every function in a results file, with their messages.

    Examples
    --------
    >>> import os, tempfile, warnings, xsweep as xs
    >>> from xsweep.cli import failures
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[0, 1])])
    >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
    >>> def inverse(a):
    ...     return 1 / a
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     _ = ps.sweep(inverse)
    >>> failures(ps.cache_path)
    [{'function': 'inverse', 'a': 0, 'error': 'ZeroDivisionError: division by zero'}]
    """
    from .store import open_store

    return open_store(path, outputs=False).failures()


def publish(path: str) -> str:
    """Make a results file current: write into it the cells only its journal holds.

    A sweep publishes its file at the end and at least every ``snapshot_interval`` seconds;
    ``run_process`` results reach it when the space's cache is disabled. Publishing on
    demand is for sharing a file now. Returns what was done, in words.

    Examples
    --------
    >>> import os, tempfile, xsweep as xs
    >>> from xsweep.cli import publish
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2])])
    >>> ps.enable_cache(os.path.join(tempfile.mkdtemp(), "r.nc"))
    >>> ps.run_process(lambda a: a * 3, a=2)  # journaled, not yet in the file
    6
    >>> publish(ps.cache_path).endswith("1 cell that only the journal held.")
    True
    """
    from .store import open_store

    store = open_store(path)
    waiting = sum(f.journal_only for f in store.functions())
    try:
        store.publish()
    except StoreLockedError as exc:
        raise StoreLockedError(
            f"{exc} A running sweep publishes the file itself at its end, and, unless its "
            "results are streamed to disk (beyond its memory budget), at least every "
            "snapshot_interval seconds (60 by default)."
        ) from None
    if not waiting:
        return f"{store.path} was current: nothing only the journal held."
    cells = "1 cell" if waiting == 1 else f"{waiting} cells"
    return f"published {store.path}: it now holds the {cells} that only the journal held."


# --- xsweep export: a results file to a Zarr v3 store (docs/sharing.md) -------------------------
_EXPORT_EXAMPLE = """example:
  xsweep export results.nc --zarr results.zarr
  xsweep export results.nc --zarr s3://bucket/results.zarr   (needs s3fs)

Copies every variable (outputs, status, error messages) and attribute, chunk by chunk;
xarray.open_zarr reads back what xarray.open_dataset reads. Needs pip install 'xsweep[cloud]'."""


def _add_export(sub) -> None:
    p_export = sub.add_parser(
        "export",
        help="copy a results file to a Zarr v3 store, for object storage",
        epilog=_EXPORT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_export.add_argument("file")
    p_export.add_argument(
        "--zarr", required=True, metavar="DEST", help="a folder or fsspec URL (must not exist)"
    )
    p_export.add_argument("--overwrite", action="store_true", help="replace what DEST holds")


def _run_export(args) -> None:
    from .store.export import export_zarr

    try:
        export_zarr(args.file, args.zarr, overwrite=args.overwrite)
    except ImportError as exc:
        raise XsweepError(str(exc)) from None
    print(f"exported {args.file} to {args.zarr}")


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
    p_info = sub.add_parser("info", help="parameters, functions, progress and provenance")
    p_info.add_argument("file")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_fail = sub.add_parser("failures", help="the failed cells and their messages")
    p_fail.add_argument("file")
    p_fail.add_argument("--json", action="store_true", help="print JSON")
    p_pub = sub.add_parser(
        "publish", help="write the cells only the journal holds into the file, to share it"
    )
    p_pub.add_argument("file")
    p_merge = sub.add_parser("merge", help="combine results files of parts of a grid")
    p_merge.add_argument("files", nargs="+")
    p_merge.add_argument("-o", "--output", required=True, help="the merged file (must not exist)")
    p_merge.add_argument(
        "--on-conflict",
        choices=["raise", "first", "last"],
        default="raise",
        help="a cell computed with different values in several files: "
        "an error (default), or the first or last file's value",
    )
    _add_export(sub)
    args = parser.parse_args(argv)
    if args.version:
        print(f"xsweep {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            if args.dir and not os.path.isdir(args.dir):
                raise XsweepError(f"--dir {args.dir} is not a folder; create it first.")
            return demo(args.dir)
        if args.command == "info":
            info = describe(args.file)
            print(json.dumps(info, indent=2, default=str)) if args.json else _print_info(info)
        elif args.command == "failures":
            rows = failures(args.file)
            if args.json:
                print(json.dumps(rows, indent=2, default=str))
            elif not rows:
                print("no failed cells")
            else:
                for row in rows:
                    cell = ", ".join(
                        f"{k}={v!r}" for k, v in row.items() if k not in ("function", "error")
                    )
                    print(f"{row['function']}({cell}): {row['error']}")
        elif args.command == "publish":
            print(publish(args.file))
        elif args.command == "merge":
            from .store import merge_stores

            out = merge_stores(args.files, args.output, on_conflict=args.on_conflict)
            print(f"merged {len(args.files)} files into {out}")
        elif args.command == "export":
            _run_export(args)
    except BrokenPipeError:  # `xsweep info f.nc | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # no flush error at exit
        return 0
    except (XsweepError, OSError) as exc:
        print(f"xsweep {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0
