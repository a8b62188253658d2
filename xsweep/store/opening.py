"""Opening an existing results file on its own, without a parameter space (cli, merge)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import StoreError
from .netcdf import NetCDFStore
from .parts import PartsReport, parts_report


def open_store(path: str, outputs: bool = True) -> NetCDFStore:
    """Open an existing results file over its own grid (no space needed), for reading.

    With ``outputs=False`` the output variables are not read (a summary: statuses, timings,
    failures), so that a file of any size opens. Raises ``StoreError`` if the file does not
    exist or is not an xsweep results file.

    Examples
    --------
    >>> from xsweep.store import open_store
    >>> open_store("no-such-file.nc")
    Traceback (most recent call last):
    ...
    xsweep.errors.StoreError: There is no file no-such-file.nc. Check the path.
    """
    if not os.path.exists(path):
        raise StoreError(f"There is no file {path}. Check the path.")
    kind = _what_file(path)
    if kind is not None:
        raise StoreError(
            f"{path} is {kind}, not a results file: give the path of a .nc file that xsweep "
            "wrote (ps.cache_path says where a space's cache is)."
        )
    return NetCDFStore(path, None, outputs=outputs)


def check_parts(paths: Sequence[str | os.PathLike[str]]) -> PartsReport:
    """What the part files ``paths`` of ``sweep(part=(k, n))`` hold: per function and per
    ``n``, the parts no file holds, and how many cells each held part lacks.

    Each file records, from the moment its sweep starts, which part it was asked to compute
    (see docs/file_format.md); a cell computed by any of the files counts as done, as in
    the merged file. ``report.complete`` says whether a merge would hold every cell (failed
    cells count as done); ``report.text()`` says it in words, with the job array indices to
    resubmit. The files are only read (a summary: their outputs are not loaded).

    Parameters
    ----------
    paths : list of str
        The part files, in any order (a missing part simply has no file).

    Returns
    -------
    PartsReport
        ``groups``: a :class:`~xsweep.store.parts.PartsGroup` per function and ``n``, each
        with a :class:`~xsweep.store.parts.PartState` per part; ``complete``; ``text()``;
        ``as_dicts()`` (plain data).

    Examples
    --------
    >>> import os, tempfile, xsweep as xs
    >>> folder = tempfile.mkdtemp()
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=range(12))])
    >>> def cube(a):
    ...     return a**3
    >>> for k in (0, 1, 3):  # part 2 of 4 never ran
    ...     ps.enable_cache(os.path.join(folder, f"part{k}.nc"))
    ...     _ = ps.sweep(cube, part=(k, 4))
    >>> ps.disable_cache()
    >>> report = xs.check_parts([os.path.join(folder, f"part{k}.nc") for k in (0, 1, 3)])
    >>> report.complete
    False
    >>> group = report.groups[0]
    >>> [(p.k, p.cells, p.not_computed) for p in group.parts]
    [(0, 3, 0), (1, 3, 0), (2, 3, 3), (3, 3, 0)]
    >>> group.resubmit
    [2]
    """
    if isinstance(paths, (str, bytes, os.PathLike)):  # a str is a Sequence: of its characters
        raise StoreError(
            f"check_parts takes a list of paths, not one path ({os.fsdecode(paths)!r:.200}). "
            f"Pass a list of paths, e.g. xs.check_parts([{os.fsdecode(paths)!r:.200}])."
        )
    stores = [open_store(os.fspath(p), outputs=False) for p in paths]
    try:
        return parts_report(stores)
    finally:
        for store in stores:
            store.close()


def _what_file(path: str) -> str | None:
    """What ``path`` is when it is plainly not a NetCDF file (None: it may be one)."""
    if os.path.isdir(path):
        return "a folder"
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        return f"a file that cannot be read ({exc.strerror})"
    if head.startswith((b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")):
        return None
    if not head:
        return "an empty file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file that is not NetCDF"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"a text file (it starts with {first!r})" if first else "a text file"
