"""Text in a results file: UTF-8 char arrays, which a virtual Zarr store can read.

NetCDF-4 stores strings two ways: variable-length strings (``NC_STRING``), whose bytes live
in HDF5's global heap, and char arrays (``NC_CHAR``) with a trailing dim of string length,
whose bytes live in the variable's own storage. Only the second is made of byte ranges, which
is what VirtualiZarr and kerchunk describe a file with; a file with any ``NC_STRING``
variable cannot be opened by VirtualiZarr's HDF5 parser at all. So xsweep writes the text
of outputs and failure messages as char arrays, padded with NULs to the longest value and
marked ``_Encoding: utf-8`` (the convention of xarray and netCDF4, which both give them back
as strings). A text variable whose padding would be big is chunked and compressed (NULs
compress to almost nothing), so one long value among many short ones costs little disk.

Coordinates stay ``NC_STRING``: a char-array coordinate is a two-dimensional HDF5 dimension
scale, which VirtualiZarr misreads (see ``docs/sharing.md``). Files written before 0.2 hold
``NC_STRING`` everywhere; :func:`read_text` and :func:`own_dims` read both forms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..text import MAX_NAME_BYTES
from .cells import COPY_BYTES

if TYPE_CHECKING:  # only for annotations: importing netCDF4 starts HDF5 (see hdf5_locking)
    import netCDF4

#: The attribute that marks a char array as text, and its value.
ENCODING = ("_Encoding", "utf-8")
#: A text variable's trailing dim is named after it, with this suffix (and a number if taken).
CHAR_DIM_SUFFIX = "_strlen"
#: Text variables padded to more than this many bytes are chunked and compressed.
CONTIGUOUS_TEXT_BYTES = 1 << 20


def char_dim_name(name: str, taken: Iterable[str]) -> str:
    """A name for the string-length dim of text variable ``name`` that nothing else uses.

    Examples
    --------
    >>> from xsweep.store.chars import char_dim_name
    >>> char_dim_name("label", {"a"}), char_dim_name("label", {"label_strlen"})
    ('label_strlen', 'label_strlen2')
    """
    taken = set(taken)
    base = f"{name}{CHAR_DIM_SUFFIX}"
    if len(base.encode("utf-8")) > MAX_NAME_BYTES - 10:  # room for a number: NetCDF's limit
        base = CHAR_DIM_SUFFIX.lstrip("_")
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}{k}"
    return candidate


def text_width(strings: np.ndarray) -> int:
    """The bytes of the longest UTF-8 value of ``strings`` (at least 1: no dim has length 0).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.store.chars import text_width
    >>> text_width(np.array(["ab", "é"], dtype=object)), text_width(np.array([], dtype=object))
    (2, 1)
    """
    return max((len(str(s).encode("utf-8")) for s in strings.ravel()), default=0) or 1


def text_layout(shape: tuple[int, ...], width: int, unlimited: bool = False) -> dict[str, Any]:
    """The netCDF4 layout keywords of a text variable of ``shape`` strings of ``width`` bytes.

    Small: contiguous (chunked if over an ``unlimited`` dim, which cannot be contiguous).
    Big: chunks of about ``CONTIGUOUS_TEXT_BYTES``, compressed.

    Examples
    --------
    >>> from xsweep.store.chars import text_layout
    >>> text_layout((3, 4), 10)
    {'contiguous': True}
    >>> text_layout((0,), 1, unlimited=True)
    {'chunksizes': (1, 1)}
    >>> text_layout((3000, 4), 1000)
    {'chunksizes': (262, 4, 1000), 'zlib': True, 'complevel': 1}
    """
    size = int(np.prod(shape, dtype=np.int64)) * width
    if size <= CONTIGUOUS_TEXT_BYTES and not unlimited:
        return {"contiguous": True}
    room = max(1, CONTIGUOUS_TEXT_BYTES // width)  # values per chunk
    chunks = []
    for n in reversed(shape):
        take = max(1, min(n, room))
        chunks.append(take)
        room = room // n if take == n else 0
    layout: dict[str, Any] = {"chunksizes": (*reversed(chunks), width)}
    if size > CONTIGUOUS_TEXT_BYTES:
        layout.update(zlib=True, complevel=1)
    return layout


def create_text(
    nc: netCDF4.Dataset,
    name: str,
    dims: tuple[str, ...],
    strings: np.ndarray,
    taken: Iterable[str],
) -> tuple[netCDF4.Variable, int]:
    """Define text variable ``name`` over ``dims`` for ``strings``; returns it and its width.

    Its values are written by :func:`write_text`; ``taken``: the names the file uses.
    """
    width = text_width(strings)
    char_dim = char_dim_name(name, [*taken, *nc.dimensions, *nc.variables])
    nc.createDimension(char_dim, width)
    unlimited = any(nc.dimensions[d].isunlimited() for d in dims)
    layout = text_layout(strings.shape, width, unlimited)
    var = nc.createVariable(name, "S1", (*dims, char_dim), **layout)
    var.setncattr(*ENCODING)
    return var, width


def write_text(var: netCDF4.Variable, strings: np.ndarray, width: int) -> None:
    """Write ``strings`` into char variable ``var``, a block of about ``COPY_BYTES`` at a time."""
    var.set_auto_chartostring(False)
    if strings.ndim == 0:
        var[...] = _chars(strings, width)
        return
    rows = max(1, COPY_BYTES // max(1, width * int(np.prod(strings.shape[1:], dtype=np.int64))))
    for start in range(0, strings.shape[0], rows):
        block = strings[start : start + rows]
        if block.size:
            var[start : start + rows] = _chars(block, width)


def _chars(strings: np.ndarray, width: int) -> np.ndarray:
    """``strings`` as UTF-8 bytes padded with NULs, one char per element on a last dim."""
    encoded = np.array([str(s).encode("utf-8") for s in strings.ravel()], dtype=f"S{width}")
    return encoded.view("S1").reshape((*strings.shape, width))


def is_text(var: netCDF4.Variable) -> bool:
    """Whether netCDF4 variable ``var`` is text stored as a char array (:func:`create_text`)."""
    return var.dtype == np.dtype("S1") and ENCODING[0] in var.ncattrs()


def own_dims(var: netCDF4.Variable) -> tuple[str, ...]:
    """The dims of the values of netCDF4 variable ``var``: without a text's string length."""
    dims = tuple(var.dimensions)
    return dims[:-1] if is_text(var) else dims


def read_text(var: netCDF4.Variable) -> np.ndarray:
    """The strings of text variable ``var`` (a char array or ``NC_STRING``), as ``str``."""
    if not is_text(var):
        return np.asarray(var[...]).astype(str)
    var.set_auto_chartostring(False)
    raw = np.asarray(var[...])
    width = raw.shape[-1] if raw.ndim else 1
    joined = np.ascontiguousarray(raw).view(f"S{width}").reshape(raw.shape[:-1])
    out = np.empty(joined.shape, dtype=object)
    flat = out.reshape(-1)
    for i, value in enumerate(joined.reshape(-1).tolist()):
        flat[i] = value.decode("utf-8")
    return out.astype(str)
