"""The return kinds of the conformance matrix (issue 21): what each returns, and what reads back.

Each kind is a swept function ``k_<kind>(a)`` over ``a`` = 0..4 that lays out every cell
state on one axis (:data:`STATES`): ``a=0`` and ``a=3`` are computed, ``a=1`` fails, ``a=2``
is skipped (:class:`xsweep.SkipCell`) and ``a=4`` is never computed (sweeps select
``a`` = 0..3). :attr:`Kind.expect` gives, for a computed cell, the variables a user reads in
a Dataset (the one ``sweep`` returns, or the file opened with plain xarray) and their values.

The functions live at module level so that process pools, dask and the SIGKILL child
(:mod:`.child`) reach them by name; the child imports this module under the same name as
pytest (``conformance.kinds``, with ``tests/`` on ``sys.path``), so their cache keys agree.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import xsweep as xs

#: Parameter values, one per cell state.
A_VALUES = [0, 1, 2, 3, 4]
#: The cells sweeps select: ``a=4`` stays never computed.
SWEPT = [0, 1, 2, 3]
COMPUTED, FAILED, SKIPPED, NEVER = "computed", "failed", "skipped", "never computed"
#: ``a`` -> its cell state.
STATES = {0: COMPUTED, 1: FAILED, 2: SKIPPED, 3: COMPUTED, 4: NEVER}
STATE_NAMES = [COMPUTED, FAILED, SKIPPED, NEVER]
#: ``<fn>_status`` codes (docs/file_format.md): 0 not computed, 1 computed, 2 failed,
#: 3 computed but returned None.
STATUS = {COMPUTED: 1, FAILED: 2, SKIPPED: 0, NEVER: 0}


@dataclass
class Kind:
    """One return kind: its value at a computed cell and what a user reads back."""

    name: str
    #: The value the swept function returns at a computed cell ``a``.
    make: Callable[[int], Any]
    #: ``a`` -> {variable: value a Dataset reader sees at that cell}; None: the cell reads
    #: missing (a function that returned None).
    expect: Callable[[int], dict[str, Any] | None]
    #: Attributes each variable must carry, e.g. a DataArray's ``units``.
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Short note for the docs table.
    note: str = ""
    #: ``(file name, writer(value, path))``: how a program writes it, for ``xs.command``
    #: and ``xs.open_tree``; None: it does not come from a file.
    file: tuple[str, str] | None = None

    @property
    def fname(self) -> str:
        return f"k_{self.name}"

    def status(self, a: int) -> int:
        state = STATES[a]
        if state == COMPUTED and self.expect(a) is None:
            return 3
        return STATUS[state]


def _scalar(name: str, value_at: Callable[[int], Any], **kw: Any) -> Kind:
    return Kind(name, value_at, lambda a: {f"k_{name}": np.asarray(value_at(a))}, **kw)


def _int_kind(dtype: str) -> Kind:
    info = np.iinfo(dtype)
    # the type's extremes, both exact in float64 (what a hole-widened read may hold)
    top = min(int(info.max), 2**53) if info.bits == 64 else int(info.max)
    values = {0: top, 3: int(info.min), 4: 7}
    return _scalar(dtype, lambda a: np.dtype(dtype).type(values[a]), note="extremes")


_PIXELS = np.array(
    [[[0, 255, 128], [255, 255, 255]], [[0, 0, 0], [1, 254, 7]], [[9, 8, 7], [6, 5, 4]]],
    dtype=np.uint8,
)
_T0 = np.datetime64("2024-03-01T12:00:00", "s")
_TEXT = {0: "héllo ✓ 漢字", 3: "x" * 300, 4: "z"}


#: Array kinds have cells of more than 1 kB, so that a tiny ``memory_budget`` streams them.
N = 150
_BIG = np.tile(_PIXELS, (8, 8, 1))  # (24, 16, 3): 1152 bytes
# every byte value: no value is free to mark a hole in the file (docs/file_format.md)
_BIG.reshape(-1)[:256] = np.arange(256)


def _image(a: int) -> np.ndarray:
    return _BIG if a == 0 else 255 - _BIG


def _ragged(a: int, dtype) -> np.ndarray:
    return (np.arange((a + 1) * N) * 3 + 1).astype(dtype)


def _padded(a: int, dtype) -> np.ndarray:
    out = np.full(5 * N, np.nan)
    out[: (a + 1) * N] = _ragged(a, dtype)
    return out


def _line(a: int) -> np.ndarray:
    return np.arange(N) * 0.5 + a + 0.25


def _pil(a: int):
    from PIL import Image

    return Image.fromarray(_image(a))


def _series(a: int) -> pd.Series:
    return pd.Series([a + 0.5, -a], index=pd.Index([1.0, 2.0], name="freq"), name="power")


def _frame(a: int) -> pd.DataFrame:
    return pd.DataFrame({"count": [a * 1.5, 2.0], "label": ["lo", "hé" * (a + 1)]})


def _dataarray(a: int) -> xr.DataArray:
    return xr.DataArray(
        _line(a),
        dims="k",
        coords={"k": np.arange(N) * 10},
        attrs={"units": "V", "long_name": "voltage"},
        name="da",
    )


def _dataset(a: int) -> xr.Dataset:
    return xr.Dataset(
        {"p": ("k2", _line(a), {"units": "m"}), "q": ((), a * 2.0)},
        coords={"k2": [f"s{i}" for i in range(N)]},
    )


def _json(a: int) -> Any:
    return {"n": a, "items": ["x", {"y": None, "z": [1.5, True]}], "t": _TEXT[a]}


KINDS: list[Kind] = [
    _scalar("float", lambda a: {0: 1.5, 3: -2.25, 4: 0.1}[a], file=("out.json", "json")),
    *[_int_kind(t) for t in ("int8", "int16", "int32", "int64")],
    *[_int_kind(t) for t in ("uint8", "uint16", "uint32", "uint64")],
    _scalar(
        "int", lambda a: {0: 2**53, 3: -7, 4: 1}[a], note="Python int", file=("out.json", "json")
    ),
    _scalar("bool", lambda a: a == 0, note="True and False"),
    Kind(
        "complex",
        lambda a: complex(a, -1.5),
        lambda a: {"k_complex": np.array([a, -1.5])},
        note="(real, imag) pairs",
    ),
    _scalar("str", lambda a: _TEXT[a], note="Unicode, long", file=("out.txt", "text")),
    Kind(
        "none",
        lambda a: None if a == 3 else a + 0.5,
        lambda a: None if a == 3 else {"k_none": np.asarray(a + 0.5)},
        note="None in some cells",
    ),
    Kind(
        "list",
        lambda a: [a + 0.5, a * 2.5],
        lambda a: {"k_list": np.array([a + 0.5, a * 2.5])},
        file=("out.json", "json"),
    ),
    Kind(
        "json",
        _json,
        lambda a: {"k_json": json.dumps(_json(a))},
        note="nested dicts and lists",
        file=("out.json", "json"),
    ),
    Kind(
        "ndarray",
        lambda a: _line(a) - 0.5,
        lambda a: {"k_ndarray": _line(a) - 0.5},
        file=("out.npy", "npy"),
    ),
    Kind(
        "ragged",
        lambda a: _ragged(a, float),
        lambda a: {"k_ragged": _padded(a, float)},
        note="float, padded",
        file=("out.npy", "npy"),
    ),
    Kind(
        "ragged_int",
        # int64: its first cell is over 1 kB too, so that a tiny memory_budget streams it
        lambda a: _ragged(a, np.int64),
        lambda a: {"k_ragged_int": _padded(a, np.int64)},
        note="int64, padded",
    ),
    Kind(
        "image",
        _image,
        lambda a: {"k_image": _image(a)},
        note="uint8 (y, x, rgb), every byte",
        file=("out.png", "png"),
    ),
    Kind(
        "dataarray",
        _dataarray,
        lambda a: {"da": _line(a)},
        attrs={"da": {"units": "V", "long_name": "voltage"}},
        note="coords and attrs",
        file=("out.nc", "nc"),
    ),
    Kind(
        "dataarray_str",
        lambda a: xr.DataArray([_TEXT[a], "b"], dims="w", name="words"),
        lambda a: {"words": np.array([_TEXT[a], "b"], dtype=object)},
        note="strings",
    ),
    Kind(
        "dataarray_str0",
        lambda a: xr.DataArray(_TEXT[a], name="word"),
        lambda a: {"word": np.array(_TEXT[a], dtype=object)},
        note="one string, 0-d",
    ),
    Kind(
        "dataset",
        _dataset,
        lambda a: {"p": _line(a), "q": np.asarray(a * 2.0)},
        attrs={"p": {"units": "m"}},
    ),
    Kind("series", _series, lambda a: {"power": np.array([a + 0.5, -a])}),
    Kind(
        "dataframe",
        _frame,
        lambda a: {
            "count": np.array([a * 1.5, 2.0]),
            "label": np.array(["lo", "hé" * (a + 1)], dtype=object),
        },
        note="float and str columns",
        file=("out.csv", "csv"),
    ),
    Kind("pil", _pil, lambda a: {"k_pil": _image(a)}, note="RGB"),
    _scalar("datetime64", lambda a: _T0 + np.timedelta64(a, "h")),
    _scalar("timedelta64", lambda a: np.timedelta64(250 * a + 1, "ms")),
    Kind(
        "datetime",
        lambda a: datetime.datetime(2024, 3, 1, 12) + datetime.timedelta(hours=a),
        lambda a: {"k_datetime": np.datetime64(_T0 + np.timedelta64(a, "h"))},
        note="datetime.datetime",
    ),
    Kind(
        "timedelta",
        lambda a: datetime.timedelta(milliseconds=250 * a + 1),
        lambda a: {"k_timedelta": np.timedelta64(250 * a + 1, "ms")},
        note="datetime.timedelta",
    ),
]
BY_NAME = {k.name: k for k in KINDS}


#: ``"<folder>|<a>"``: the call at that ``a`` marks ``<folder>/<kind>.blocked`` and waits for
#: ``<folder>/<kind>.release`` (the SIGKILL child and the stopped background sweep).
BLOCK_ENV = "XSWEEP_CONFORMANCE_BLOCK"
#: Every call of a swept function in this process, as ``(kind, a)``.
CALLS: list[tuple[str, int]] = []


def _block(kind: str, a: int) -> None:
    folder, _, at = os.environ[BLOCK_ENV].rpartition("|")
    if a != int(at):
        return
    # the cells before are recorded now (a cell is recorded before the next call starts)
    open(os.path.join(folder, f"{kind}.blocked"), "w").close()
    release = os.path.join(folder, f"{kind}.release")
    deadline = time.monotonic() + 600
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.005)


def _cell(kind: str, a: int) -> Any:
    """The swept functions' common body: every cell state by ``a``."""
    CALLS.append((kind, a))
    if os.environ.get(BLOCK_ENV):
        _block(kind, a)
    if a == 1:
        raise ValueError(f"boom at a={a}")
    if a == 2:
        raise xs.SkipCell("not this one")
    return BY_NAME[kind].make(a)


def _define(kind: Kind) -> Callable[[int], Any]:
    name = kind.name

    def fn(a):
        return _cell(name, a)

    fn.__name__ = fn.__qualname__ = kind.fname
    return fn


#: ``k_<kind>`` functions, also module globals so that pickle finds them by name.
FUNCTIONS: dict[str, Callable[[int], Any]] = {}
for _kind in KINDS:
    FUNCTIONS[_kind.name] = globals()[_kind.fname] = _define(_kind)


def space() -> xs.ParameterSpace:
    """The one-parameter space every path sweeps."""
    return xs.ParameterSpace([xs.Parameter("a", values=A_VALUES)])
