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
    from .store import file_attrs, open_store, parts_report

    store = open_store(path, outputs=False)  # a summary: a file of any size opens
    attrs = file_attrs(store.path)
    parts = {g.function: g for g in parts_report([store]).groups}
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
                "part": _own_parts(parts[f.key]) if f.key in parts else None,
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


def _own_parts(group: Any) -> dict[str, Any]:
    """The parts one file was asked to compute, and what each lacks (``describe``)."""
    return {
        "n": group.n,
        "parts": [
            {k: v for k, v in p.as_dict().items() if k != "files"} for p in group.parts if p.files
        ],
    }


def _part_lines(part: dict[str, Any]) -> list[str]:
    """``info``'s lines about the part(s) a file was asked to compute."""
    out = []
    n = part["n"]
    for p in part["parts"]:
        state = (
            f"complete, {p['cells']} cells"
            if p["complete"]
            else f"{p['not_computed']} of its {p['cells']} cells not computed"
        )
        if p["failed"]:
            state += f", {p['failed']} failed"
        out.append(f"    part {p['part']} of {n} (part=({p['part']}, {n})): {state}")
    return out


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
        for line in _part_lines(f["part"]) if f["part"] else ():
            print(line)
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


def parts_table(paths: Sequence[str]) -> dict[str, Any]:
    """What ``xsweep info`` shows about several part files, as plain data.

    ``parts``: per function and per ``n`` of ``sweep(part=(k, n))``, every part with the
    files holding it and the cells it lacks (see :func:`xsweep.check_parts`);
    ``complete``: whether a merge would hold every cell; ``resubmit``: per function and
    ``n``, the job array indices to run again (as ``sbatch --array`` takes them).

    Examples
    --------
    >>> import os, tempfile, xsweep as xs
    >>> from xsweep.cli import parts_table
    >>> folder = tempfile.mkdtemp()
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=range(6))])
    >>> ps.enable_cache(os.path.join(folder, "part0.nc"))
    >>> _ = ps.sweep(lambda a: a, name="same", part=(0, 2))
    >>> ps.disable_cache()
    >>> table = parts_table([os.path.join(folder, "part0.nc")])
    >>> table["complete"], table["resubmit"]
    (False, [{'function': 'same', 'n': 2, 'array': '1'}])
    """
    from .store import check_parts

    report = check_parts(paths)
    return {
        "files": [os.path.abspath(p) for p in paths],
        "complete": report.complete,
        "resubmit": [
            {"function": g.function, "n": g.n, "array": g.as_dict()["resubmit"]}
            for g in report.groups
            if g.resubmit
        ],
        "parts": report.as_dicts(),
        "text": report.text(),
    }


def _print_parts(table: dict[str, Any]) -> None:
    files = table["files"]
    print(f"{len(files)} files: {', '.join(os.path.basename(f) for f in files)}")
    print(table["text"])
    if table["parts"]:
        print(
            "complete: every part's cells are computed or failed"
            if table["complete"]
            else "incomplete: resubmit the parts named above, then merge"
        )


#: ``xsweep --help``'s epilog: examples, and what the exit codes mean.
EPILOG = """\
examples:
  xsweep demo --dir .                      sweep a small example into ./beam.nc
  xsweep info beam.nc                      what a results file holds
  xsweep info part*.nc                     which parts of a job array are missing
  xsweep merge -o all.nc part*.nc          combine the parts' files into one
  xsweep export beam.nc --zarr beam.zarr   copy a results file to a Zarr v3 store

exit codes:
  0  done
  1  error: a file cannot be read or written, or a merge was refused (parts missing or
     incomplete with --require-complete, cells that differ between files); the message
     on standard error says what to do, nothing was written
  2  usage: unknown command or option, missing argument

Run xsweep COMMAND --help for each command's options and examples.
"""

#: Each command: (help line, epilog with examples).
COMMANDS = {
    "demo": (
        "sweep a small example function and print the Dataset",
        "example:\n  xsweep demo --dir .      keeps ./beam.nc; then: xsweep info beam.nc",
    ),
    "info": (
        "parameters, functions, progress and provenance; over several part files, which "
        "parts are missing",
        "examples:\n"
        "  xsweep info results.nc           parameters, functions, cells computed, provenance\n"
        "  xsweep info --json results.nc    the same as JSON, for scripts\n"
        "  xsweep info part*.nc             the parts of a job array (sweep(part=(k, n))):\n"
        "                                   which are missing or incomplete, how many cells\n"
        "                                   each lacks, and the sbatch --array indices to\n"
        "                                   resubmit",
    ),
    "failures": (
        "the failed cells and their messages",
        "examples:\n"
        "  xsweep failures results.nc           one line per failed cell: values and error\n"
        "  xsweep failures --json results.nc    a JSON list of rows, for scripts",
    ),
    "publish": (
        "write the cells only the journal holds into the file, to share it",
        "example:\n  xsweep publish results.nc    before copying a file a sweep is still writing",
    ),
    "export": (
        "copy a results file to a Zarr v3 store, for object storage",
        "examples:\n"
        "  xsweep export results.nc --zarr results.zarr\n"
        "  xsweep export results.nc --zarr s3://bucket/results.zarr   (needs s3fs)\n\n"
        "Copies every variable (outputs, status, error messages) and attribute, chunk by\n"
        "chunk; xarray.open_zarr reads back what xarray.open_dataset reads. Needs\n"
        "pip install 'xsweep-nc[cloud]'.",
    ),
    "merge": (
        "combine results files of parts of a grid",
        "examples:\n"
        "  xsweep merge -o all.nc part*.nc\n"
        "      one file of every computed cell; missing or incomplete parts are reported on\n"
        "      standard error (with the sbatch --array indices to resubmit), and their\n"
        "      cells are not computed in all.nc\n"
        "  xsweep merge --require-complete -o all.nc part*.nc\n"
        "      refuse (exit code 1, nothing written) unless every part is complete: for a\n"
        "      merge job submitted with sbatch --dependency=afterok:<array job id>",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``xsweep`` command line's parser: commands, options, help texts with examples."""
    from xsweep import __version__

    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="xsweep",
        description="Parameter sweeps in xarray: look into, publish and merge results files.",
        epilog=EPILOG,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"xsweep {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    made = {
        name: sub.add_parser(name, help=text, description=text, epilog=epilog, formatter_class=raw)
        for name, (text, epilog) in COMMANDS.items()
    }
    made["demo"].add_argument(
        "--dir",
        help="keep the results file in this folder (default: a "
        "temporary folder, removed afterwards)",
    )
    made["info"].add_argument("files", nargs="+", metavar="FILE", help="results file(s)")
    made["info"].add_argument("--json", action="store_true", help="print JSON")
    made["failures"].add_argument("file", metavar="FILE")
    made["failures"].add_argument("--json", action="store_true", help="print JSON")
    made["publish"].add_argument("file", metavar="FILE")
    export = made["export"]
    export.add_argument("file", metavar="FILE")
    export.add_argument(
        "--zarr", required=True, metavar="DEST", help="a folder or fsspec URL (must not exist)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace what DEST holds")
    merge = made["merge"]
    merge.add_argument("files", nargs="+", metavar="FILE", help="the files to merge")
    merge.add_argument("-o", "--output", required=True, help="the merged file (must not exist)")
    merge.add_argument(
        "--on-conflict",
        choices=["raise", "first", "last"],
        default="raise",
        help="a cell computed with different values in several files: "
        "an error (default), or the first or last file's value",
    )
    merge.add_argument(
        "--require-complete",
        action="store_true",
        help="refuse (exit code 1, nothing written) when a part of a sweep(part=(k, n)) is "
        "in none of the files or lacks cells",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xsweep`` console script; returns the exit code.

    0: done; 1: an error, said on standard error (a file cannot be read or written, a
    merge refused); 2: a usage error (argparse's).

    Examples
    --------
    >>> from xsweep.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    xsweep ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2): a code, not an exit
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return RUN[args.command](args)
    except BrokenPipeError:  # `xsweep info f.nc | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # no flush error at exit
        return 0
    except (XsweepError, OSError) as exc:
        print(f"xsweep {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _run_demo(args: argparse.Namespace) -> int:
    if args.dir and not os.path.isdir(args.dir):
        raise XsweepError(f"--dir {args.dir} is not a folder; create it first.")
    return demo(args.dir)


def _check_exist(files: Sequence[str]) -> None:
    """Refuse a named file that does not exist, saying how to report the missing part."""
    for path in files:
        if not os.path.exists(path):
            raise XsweepError(
                f"There is no file {path}. Check the path. To report on or merge the part "
                "files that exist, name only them (a shell pattern such as part*.nc does): "
                "a part that no file holds is then reported as missing. Nothing was written."
            )


def _run_info(args: argparse.Namespace) -> int:
    if len(args.files) > 1:
        _check_exist(args.files)
        table = parts_table(args.files)
        if args.json:
            print(json.dumps({k: v for k, v in table.items() if k != "text"}, indent=2))
        else:
            _print_parts(table)
        return 0
    info = describe(args.files[0])
    print(json.dumps(info, indent=2, default=str)) if args.json else _print_info(info)
    return 0


def _run_failures(args: argparse.Namespace) -> int:
    rows = failures(args.file)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        print("no failed cells")
    else:
        for row in rows:
            cell = ", ".join(f"{k}={v!r}" for k, v in row.items() if k not in ("function", "error"))
            print(f"{row['function']}({cell}): {row['error']}")
    return 0


def _run_publish(args: argparse.Namespace) -> int:
    print(publish(args.file))
    return 0


def _run_merge(args: argparse.Namespace) -> int:
    import warnings

    from .errors import PartsIncompleteWarning
    from .store import merge_stores

    _check_exist(args.files)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PartsIncompleteWarning)
        out = merge_stores(
            args.files,
            args.output,
            on_conflict=args.on_conflict,
            require_complete=args.require_complete,
        )
    incomplete = False
    for w in caught:
        if issubclass(w.category, PartsIncompleteWarning):
            incomplete = True
            print(f"xsweep merge: warning: {w.message}", file=sys.stderr)
        else:  # someone else's: shown as Python would have
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    note = " (incomplete: see the warning above)" if incomplete else ""
    print(f"merged {len(args.files)} files into {out}{note}")
    return 0


#: What each command runs.
def _run_export(args: argparse.Namespace) -> int:
    from .store.export import export_zarr

    try:
        export_zarr(args.file, args.zarr, overwrite=args.overwrite)
    except ImportError as exc:  # the cloud extra is not installed: say which
        raise XsweepError(str(exc)) from None
    print(f"exported {args.file} to {args.zarr}")
    return 0


RUN = {
    "demo": _run_demo,
    "info": _run_info,
    "failures": _run_failures,
    "publish": _run_publish,
    "merge": _run_merge,
    "export": _run_export,
}
