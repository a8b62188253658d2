"""Where a staged cell lives on disk: marker scanning against h5py's ``get_offset``.

xsweep's staged file (xsweep/store/staging.py, ncfile.py) holds each big output (an image per
cell, say) in one CONTIGUOUS HDF5 dataset written without fill, and ``pwrite``s every finished
cell at ``data offset + cell * cell bytes``. Today the data offset is found by writing random
marker bytes through netCDF4 into the head of cell 0 (which is also what makes HDF5 allocate
the dataset) and scanning the file's data extents (SEEK_DATA / SEEK_HOLE) for them. The
alternative measured here asks HDF5 itself, through h5py:
``h5py.File(path, "r", locking=False)[name].id.get_offset()``.

For each case the file is laid out as xsweep does it (small float variables first, then the
big contiguous variables defined between ``set_fill_off`` / ``set_fill_on``; a write of the
head of cell 0 of each, ``sync``; the netCDF4 Dataset stays OPEN, as in ``create_stage``),
then, repeated, best / median in ms:

* scan:   xsweep's own ``_find_markers`` (SEEK_DATA / SEEK_HOLE, 8 MiB windows);
* noholes: the same scan on a file system that does not report holes (simulated: every byte
  up to the last marker is read), the worst case of the marker approach;
* h5py:   open read-only with ``locking=False`` + ``get_offset`` of every big variable + close,
  while netCDF4 still holds the file open for writing in the same process.

Both must give the same offsets, and a ``pwrite`` of random cells (first and last) at those
offsets must read back through the still-open netCDF4 Dataset and after reopening the file.

A second part runs child processes (a crash or an HDF5 error stays there) to check whether h5py
can open the file while netCDF4 holds it, under each locking setting, with either import order,
and whether importing both (two bundled copies of libhdf5) prints warnings. It also prints the
two HDF5 versions, the import time of h5py and its installed size.

h5py is optional: without it only the marker approach is measured.

Run:  python benchmarks/bench_places.py [--quick] [--repeats N] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from xsweep.store.staging import _find_markers  # imports neither netCDF4 nor h5py

# Imported by load(), in the order asked: the child processes check both orders.
netCDF4 = None
h5py = None

perf = time.perf_counter
IMAGE_SHAPE = (480, 640, 3)
HEAD = IMAGE_SHAPE[1] * IMAGE_SHAPE[2]  # xsweep's cell_head: one image row, 1920 bytes
CURVE = 512  # a small per-cell float variable, 4 KiB a cell

# (label, cells, big variables)
FULL_CASES = [
    ("1 cell", 1, 1),
    ("100 cells", 100, 1),
    ("1000 cells", 1000, 1),
    ("100 cells x 4 big", 100, 4),
]
QUICK_CASES = [("1 cell", 1, 1), ("100 cells", 100, 1), ("20 cells x 3 big", 20, 3)]


def load(order: str = "netCDF4 first") -> None:
    """Import netCDF4 and (if installed) h5py, in the given order."""
    global netCDF4, h5py
    names = ["netCDF4", "h5py"] if order == "netCDF4 first" else ["h5py", "netCDF4"]
    for name in names:
        try:
            globals()[name] = importlib.import_module(name)
        except ImportError:  # h5py is optional: only the marker approach is then measured
            if name == "netCDF4":
                raise


def best_median(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def fmt(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.3f}/{pair[1]:.3f}"


def create(path: str, ncells: int, nbig: int):
    """Write the file as ``write_file`` does for a staged table; return it open (synced).

    Returns ``(nc, markers, seconds)``: ``markers`` maps marker bytes to variable name.
    """
    t0 = perf()
    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    nc.createDimension("cell", ncells)
    nc.createDimension("curve", CURVE)
    for name, n in zip(("y", "x", "band"), IMAGE_SHAPE):
        nc.createDimension(name, n)
    later = []
    rng = np.random.default_rng(0)
    cell = nc.createVariable("cell", "i8", ("cell",), fill_value=False)
    later.append((cell, np.arange(ncells)))
    for name in ("loss", "score"):
        v = nc.createVariable(name, "f8", ("cell",), fill_value=np.nan)
        later.append((v, rng.random(ncells)))
    v = nc.createVariable("curve_data", "f8", ("cell", "curve"), fill_value=np.nan)
    later.append((v, rng.random((ncells, CURVE))))
    markers = {}
    for k in range(nbig):
        name = f"image{k}"
        nc.set_fill_off()  # as _define_big: contiguous, no fill
        v = nc.createVariable(name, "u1", ("cell", "y", "x", "band"), contiguous=True)
        nc.set_fill_on()
        marker = np.resize(np.frombuffer(os.urandom(32), dtype=np.uint8), HEAD)
        markers[marker.tobytes()] = name
        later.append((v, marker.reshape(IMAGE_SHAPE[1:]), (0, 0)))
    for v, data, *index in later:  # as write_file: every variable defined, then written
        if index:
            v[index[0]] = data
        else:
            v[:] = data
    nc.sync()
    return nc, markers, perf() - t0


def scan_noholes(path: str, markers: dict[bytes, str]) -> dict[str, int]:
    """``_find_markers`` where SEEK_DATA reports no holes: read from 0 until every marker."""
    found: dict[str, int] = {}
    overlap = max(len(m) for m in markers) - 1
    window = 8 << 20
    fd = os.open(path, os.O_RDONLY)
    try:
        size, at = os.fstat(fd).st_size, 0
        while at < size and len(found) < len(markers):
            chunk = os.pread(fd, min(window + overlap, size - at), at)
            for marker, name in markers.items():
                offset = chunk.find(marker)
                if offset >= 0 and name not in found:
                    found[name] = at + offset
            at += window
    finally:
        os.close(fd)
    return found


def h5py_offsets(path: str, names) -> dict[str, int | None]:
    with h5py.File(path, "r", locking=False) as f:
        return {name: f[name].id.get_offset() for name in names}


def roundtrip(nc, path: str, offsets: dict[str, int], ncells: int) -> bool:
    """pwrite random first and last cells at the offsets; read back through netCDF4."""
    nbytes = int(np.prod(IMAGE_SHAPE))
    rng = np.random.default_rng(1)
    written = {}
    fd = os.open(path, os.O_RDWR)
    try:
        for name, base in offsets.items():
            for c in {0, ncells - 1}:
                data = rng.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)
                os.pwrite(fd, data.tobytes(), base + c * nbytes)
                written[name, c] = data
    finally:
        os.close(fd)
    ok = all(np.array_equal(nc.variables[n][c], d) for (n, c), d in written.items())
    nc.close()
    with netCDF4.Dataset(path) as again:  # and after closing: HDF5 wrote nothing over them
        ok = ok and all(np.array_equal(again.variables[n][c], d) for (n, c), d in written.items())
    return ok


def bench_case(folder: str, label: str, ncells: int, nbig: int, repeats: int) -> dict:
    path = os.path.join(folder, f"places-{ncells}-{nbig}.nc")
    nc, markers, create_s = create(path, ncells, nbig)
    names = list(markers.values())
    try:
        scan, noholes, h5, first_h5 = [], [], [], None
        found = _find_markers(path, markers)
        found_noholes = scan_noholes(path, markers)
        got = None
        for _ in range(repeats):  # interleaved, so that a burst of load hits all alike
            t0 = perf()
            found = _find_markers(path, markers)
            scan.append((perf() - t0) * 1e3)
            t0 = perf()
            scan_noholes(path, markers)
            noholes.append((perf() - t0) * 1e3)
            if h5py is not None:
                t0 = perf()
                got = h5py_offsets(path, names)
                h5.append((perf() - t0) * 1e3)
                if first_h5 is None:
                    first_h5 = h5[0]
        st = os.stat(path)
        row = {
            "label": label,
            "create_ms": create_s * 1e3,
            "apparent_mb": st.st_size / 1e6,
            "allocated_mb": st.st_blocks * 512 / 1e6,
            "scan_ms": best_median(scan),
            "noholes_ms": best_median(noholes),
            "h5py_ms": best_median(h5) if h5 else None,
            "h5py_first_ms": first_h5,
            "found_all": len(found) == len(markers) and found == found_noholes,
            "same": got == found if got is not None else None,
        }
    except BaseException:
        nc.close()
        raise
    row["roundtrip"] = roundtrip(nc, path, found, ncells)  # closes nc
    os.unlink(path)
    return row


# --- child processes: locking settings, import order, warnings -----------------------------

CHILD_MODES = {
    "default": "h5py.File(p, 'r')",
    "locking=False": "h5py.File(p, 'r', locking=False)",
    "env after import": "HDF5_USE_FILE_LOCKING=FALSE set once both are imported and open",
    "env, lazy h5py": "HDF5_USE_FILE_LOCKING=FALSE set once netCDF4 opened, then import h5py",
    "env at start": "HDF5_USE_FILE_LOCKING=FALSE for the whole process (netCDF4 too)",
}


def child(mode: str, order: str, folder: str) -> None:
    """One check in a fresh process; prints one JSON line."""
    global h5py
    if mode == "env, lazy h5py":
        globals()["netCDF4"] = importlib.import_module("netCDF4")
    else:
        load(order)
    path = os.path.join(folder, f"child-{os.getpid()}.nc")
    nc, markers, _ = create(path, 2, 1)
    if mode.startswith("env, "):
        os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
        import h5py
    result = {"h5py_hdf5": h5py.version.hdf5_version, "netcdf_hdf5": netCDF4.__hdf5libversion__}
    try:
        if mode == "env after import":
            os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
        kw = {"locking": False} if mode == "locking=False" else {}
        with h5py.File(path, "r", **kw) as f:
            offset = f["image0"].id.get_offset()
        result["open"] = "ok"
        found = _find_markers(path, markers)
        result["same"] = offset == found["image0"]
        result["roundtrip"] = roundtrip(nc, path, {"image0": offset}, 2)
    except Exception as exc:
        result["open"] = f"{type(exc).__name__}: {str(exc)[:60]}"
        nc.close()
    os.unlink(path)
    print(json.dumps(result))


def run_children(folder: str) -> list[dict]:
    rows = []
    for mode in CHILD_MODES:
        for order in ("netCDF4 first", "h5py first"):
            if mode == "env, lazy h5py" and order == "h5py first":
                continue
            env = dict(os.environ)
            env.pop("HDF5_USE_FILE_LOCKING", None)
            if mode == "env at start":
                env["HDF5_USE_FILE_LOCKING"] = "FALSE"
            cmd = [sys.executable, __file__, "--child", mode, order, "--dir", folder]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
            row = {"mode": mode, "order": order, "rc": proc.returncode}
            lines = proc.stdout.strip().splitlines()
            if proc.returncode == 0 and lines:
                row.update(json.loads(lines[-1]))
            else:
                row["open"] = f"child failed, rc {proc.returncode}"
            row["stderr"] = proc.stderr.strip().splitlines()[:1]
            rows.append(row)
    return rows


def import_time(repeats: int) -> tuple[float, float]:
    """ms to import h5py in a fresh process that already imported numpy and netCDF4."""
    code = (
        "import time, numpy, netCDF4; t = time.perf_counter(); import h5py; "
        "print((time.perf_counter() - t) * 1e3)"
    )
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        times.append(float(out.stdout.strip()))
    return best_median(times)


def installed_mb(dist: str) -> float:
    from importlib.metadata import distribution

    files = distribution(dist).files or []
    return sum(f.size or 0 for f in files) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--repeats", type=int, default=None, help="timings per case")
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temp one)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "ORDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.dir)
        return 0
    load()
    repeats = args.repeats or (3 if args.quick else 7)
    cases = QUICK_CASES if args.quick else FULL_CASES
    folder = tempfile.mkdtemp(prefix="bench-places-", dir=args.dir)
    try:
        print(f"netCDF4 {netCDF4.__version__}, its HDF5 {netCDF4.__hdf5libversion__}")
        if h5py is None:
            print("h5py is not installed: only the marker approach is measured.")
        else:
            print(f"h5py {h5py.version.version}, its HDF5 {h5py.version.hdf5_version}")
        print(f"folder {folder}; cells of {IMAGE_SHAPE} uint8; {repeats} repeats, best/median")
        print()
        head = (
            f"{'case':<18} {'file MB':>8} {'on disk':>8} {'create':>8} {'scan ms':>13} "
            f"{'noholes ms':>15} {'h5py ms':>13} {'h5py 1st':>8} {'same':>5} {'pwrite':>6}"
        )
        print(head)
        print("-" * len(head))
        rows = []
        for label, ncells, nbig in cases:
            r = bench_case(folder, label, ncells, nbig, repeats)
            rows.append(r)
            h5 = fmt(r["h5py_ms"]) if r["h5py_ms"] else "-"
            first = f"{r['h5py_first_ms']:.3f}" if r["h5py_first_ms"] is not None else "-"
            same = {True: "yes", False: "NO", None: "-"}[r["same"]]
            print(
                f"{label:<18} {r['apparent_mb']:>8.1f} {r['allocated_mb']:>8.2f} "
                f"{r['create_ms']:>8.1f} {fmt(r['scan_ms']):>13} {fmt(r['noholes_ms']):>15} "
                f"{h5:>13} {first:>8} {same:>5} {'ok' if r['roundtrip'] else 'BAD':>6}"
            )
        print(
            "  create: define + write small variables + cell-0 heads + sync (paid by both);"
            " noholes: scan on a file system without SEEK_DATA (simulated)"
        )
        failed = [r["label"] for r in rows if not r["found_all"] or not r["roundtrip"]]
        failed += [r["label"] for r in rows if r["same"] is False]
        if h5py is None:
            print("\nSUMMARY places: h5py missing, marker approach only")
            return 1 if failed else 0

        print("\nh5py.File(path, 'r') while netCDF4 holds the file open (child processes):")
        children = run_children(folder)
        for c in children:
            extra = ""
            if c.get("open") == "ok":
                extra = f", same offset {c['same']}, pwrite read back {c['roundtrip']}"
            warn = f"; stderr: {c['stderr'][0][:60]}" if c["stderr"] else "; stderr empty"
            print(f"  {c['mode']:<16} {c['order']:<13} {c['open']}{extra}{warn}")
        imp = import_time(3 if args.quick else 5)
        size = installed_mb("h5py")
        print(f"\nimport h5py (numpy, netCDF4 already imported): {fmt(imp)} ms best/median")
        print(f"h5py installed size: {size:.1f} MB (netCDF4: {installed_mb('netCDF4'):.1f} MB)")
        worst = max(rows, key=lambda r: r["scan_ms"][0])
        print(
            f"\nSUMMARY places: scan <= {worst['scan_ms'][0]:.3f} ms best, h5py get_offset "
            f"<= {max(r['h5py_ms'][0] for r in rows):.3f} ms best; offsets identical: "
            f"{all(r['same'] for r in rows)}; pwrite read back: "
            f"{all(r['roundtrip'] for r in rows)}"
        )
        locked = [c for c in children if c["open"] != "ok"]
        print(
            "SUMMARY places_locking: opens while netCDF4 holds the file: "
            + ", ".join(sorted({c["mode"] for c in children if c["open"] == "ok"}) or ["none"])
            + "; refused: "
            + (", ".join(sorted({c["mode"] for c in locked})) or "none")
        )
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
