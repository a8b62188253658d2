"""Opening an existing results file on its own, without a parameter space (cli, merge)."""

from __future__ import annotations

import os

from ..errors import StoreError
from .netcdf import NetCDFStore


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
