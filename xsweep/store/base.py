"""The interface every result store offers: the only way the layers above reach results.

:mod:`xsweep.space` and :mod:`xsweep.running.execution` talk to a store through these verbs only,
in the spirit of xarray's ``AbstractWritableDataStore``, zarr's ``abc.Store`` and joblib's
``StoreBackendBase``: nothing above knows a file name suffix, a buffer or how the grid is
laid out. A store holds, per function (its *key*: the name its results are stored under),
a :class:`~xsweep.store.table.FunctionTable`, which the execution layer treats as a handle:
it reads its ``status``, ``shape`` and ``spec`` and records cells through :meth:`recorder`.

Cells are addressed by the *space's* indices of each parameter's value (``{"a": 2}``); the
store's :class:`~xsweep.store.grid.Grid` maps them to its own (a file may hold more values).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import xarray as xr

from ..outputs import OutputSpec
from .grid import Grid
from .table import FunctionTable


class _NotStored:
    """The answer of :meth:`Store.lookup` when the cache cannot answer (a sentinel)."""

    _instance: _NotStored | None = None

    def __new__(cls) -> _NotStored:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_STORED"

    def __bool__(self) -> bool:
        return False


#: What :meth:`Store.lookup` returns for a cell it does not hold (``None`` is a stored value).
NOT_STORED = _NotStored()


class Recorder(NamedTuple):
    """The per-cell write verbs of a write session, bound to one function's table.

    ``record(flat, values, seconds)`` stores a computed cell (``values`` as the table's
    ``spec.extract`` gives them), ``record_failure(flat, message, seconds)`` a failed one and
    ``record_none(flat, seconds)`` one whose function returned ``None``. ``flat`` is the
    cell's flat index in the table. They are rebound after the structure changes.
    """

    record: Callable[[int, tuple, float], None]
    record_failure: Callable[[int, str, float], None]
    record_none: Callable[[int, float], None]


class FunctionSummary(NamedTuple):
    """What a store holds of one function (for ``xsweep info``)."""

    key: str
    name: str
    dims: tuple[str, ...]
    outputs: tuple[str, ...]
    cells: int
    counts: dict[str, int]  # see file_format.status_counts
    total_seconds: float
    mean_seconds: float | None
    fingerprint: str | None
    #: Computed cells only the journal holds so far, not the file a colleague would copy.
    journal_only: int = 0


class Peek(NamedTuple):
    """A live look at one function's cells over the store's grid (see ``Store.peek``)."""

    status: np.ndarray  # status codes over the function's dims (file_format.FLAG_VALUES)
    values: np.ndarray | None  # one numeric scalar output as floats, if asked for and held
    errors: dict[int, str]  # flat cell index (store grid) -> failure message
    outputs: tuple[str, ...]  # the numeric scalar outputs that ``values`` may show
    seconds: np.ndarray  # seconds each cell took (NaN: not computed)


class Store(abc.ABC):
    """A home for sweep results: the narrow interface the space and execution layers use.

    A store says what it is with three attributes: ``persistent`` (a capability flag:
    results outlive the process, in a file), ``path`` (the file, or None) and ``grid`` (its
    parameters, and where the space's values sit in them).

    Notes
    -----
    Writing: :meth:`writing` (a session), :meth:`table` (a function's results, created or
    checked against its dims and fingerprint), :meth:`set_spec` / :meth:`grow_spec` (its
    output structure), :meth:`record_part` (the part of a job array it computes),
    :meth:`recorder` (per-cell writes). Reading: :meth:`lookup` (one
    cell, after every validity check), :meth:`contains`, :meth:`result` (a Dataset the
    caller owns), :meth:`functions`, :meth:`failures`. Housekeeping: :meth:`clear`,
    :meth:`compact`, :meth:`close`; :meth:`follow` (the space's grid grew).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.store import MemoryStore, Store
    >>> store = MemoryStore({"a": (np.array([1, 2]), {})})
    >>> isinstance(store, Store), store.persistent
    (True, False)
    """

    persistent: ClassVar[bool] = False
    path: str | None = None
    grid: Grid

    # -- writing ------------------------------------------------------------------------------
    @abc.abstractmethod
    def writing(self, publish: bool = True) -> contextlib.AbstractContextManager[None]:
        """A write session: a sweep, or one ``run_process`` write (``publish=False``)."""

    @abc.abstractmethod
    def table(
        self,
        key: str,
        name: str,
        dims: tuple[str, ...],
        fingerprint: str | None = None,
        on_change: str = "raise",
    ) -> FunctionTable:
        """Function ``key``'s results over ``dims`` (created empty if new), in a session.

        ``on_change`` says what a stored fingerprint other than ``fingerprint`` does:
        ``"raise"``, ``"keep"`` the old cells, or ``"recompute"`` (forget them).
        """

    @abc.abstractmethod
    def set_spec(self, table: FunctionTable, spec: OutputSpec) -> None:
        """Fix ``table``'s output structure (from its first computed cell)."""

    @abc.abstractmethod
    def grow_spec(self, table: FunctionTable, spec: OutputSpec) -> None:
        """Widen ``table``'s ragged outputs; its cells keep their values."""

    @abc.abstractmethod
    def record_part(
        self, table: FunctionTable, part: tuple[int, int], selected: Sequence[np.ndarray]
    ) -> bool:
        """Note that ``table`` is asked for part ``k`` of ``n`` (``part``) of the cells
        ``selected`` (per dim, the store's indices, in the order the sweep deals them).

        Called when a ``sweep(part=(k, n))`` starts, before any cell: a file keeps the note
        at once, so that a task killed before its first cell still says what it owes.
        Returns whether the note changed.
        """

    @abc.abstractmethod
    def recorder(self, table: FunctionTable, expect: int = 0) -> Recorder:
        """Per-cell write verbs for ``table`` (``expect``: cells computed at the end)."""

    # -- reading ------------------------------------------------------------------------------
    @abc.abstractmethod
    def lookup(
        self,
        key: str,
        dims: tuple[str, ...],
        fingerprint: str | None,
        indices: Mapping[str, int],
    ) -> Any:
        """The stored value of one cell, or :data:`NOT_STORED`.

        Every check of a cached cell's validity is made here: the function is stored over
        ``dims``, the cell is computed, and it was computed by this version of the code
        (a stored cell of another fingerprint raises
        :class:`~xsweep.errors.FunctionChangedError`, as a sweep would). A cell whose
        function returned None gives None.
        """

    @abc.abstractmethod
    def contains(
        self, key: str, dims: tuple[str, ...], fingerprint: str | None, indices: Mapping[str, int]
    ) -> bool:
        """Whether :meth:`lookup` would answer from the store (it never raises)."""

    @abc.abstractmethod
    def readable(
        self, key: str, name: str, dims: tuple[str, ...], fingerprint: str | None
    ) -> FunctionTable | None:
        """``key``'s table when it can be read without a write session, else None.

        That is when the store holds it under ``name`` over ``dims``, with an output
        structure, computed by this version of the code (``fingerprint``), and no write
        session of this store runs in another thread. A sweep whose cells are all computed
        then reads it while another writer holds the file (see :mod:`xsweep.space.results`).
        """

    @abc.abstractmethod
    def result(self, table: FunctionTable, lazy: bool | None = None) -> xr.Dataset:
        """``table``'s results as a Dataset the caller owns (after the session).

        ``lazy``: outputs read from the store's file when indexed (None: when they are
        kept on disk, beyond the memory budget).
        """

    @abc.abstractmethod
    def functions(self) -> list[FunctionSummary]:
        """What the store holds, per function."""

    @abc.abstractmethod
    def failures(self, key: str | None = None) -> list[dict[str, Any]]:
        """One row per failed cell (``function``, parameter values, ``error``)."""

    @abc.abstractmethod
    def peek(
        self, key: str, dims: tuple[str, ...], fingerprint: str | None, output: str | None = None
    ) -> Peek | None:
        """A copy of ``key``'s statuses (and of one scalar ``output``) for live views.

        Takes no lock, so that a view reads while a sweep writes (a snapshot that may be a
        cell behind); None when the store holds no cells of this version of the function.
        """

    def publish(self) -> None:  # noqa: B027 - optional: nothing to publish in memory
        """Write what only side files hold into the shared file, now."""

    def add_history(self, line: str) -> None:  # noqa: B027 - optional: a no-op in memory
        """Note what was done in the file's provenance (CF ``history``); nothing in memory."""

    @abc.abstractmethod
    def follow(self, space: Grid) -> bool:
        """Hold the space's values as they are now; True if the grid had to grow.

        A continuous parameter gains values as a sweep is refined: its new values become
        new, not computed cells of every function over it, and the values the space no
        longer has stay. Nothing is written until the next write session. Called before
        every verb that turns the space's indices into cells.
        """

    # -- housekeeping -------------------------------------------------------------------------
    @abc.abstractmethod
    def clear(self, key: str | None = None) -> None:
        """Forget one function's results (or all), with their fingerprint and structure."""

    def compact(self) -> dict[str, int]:
        """Drop parameter values the space does not have; returns how many per parameter."""
        return {}

    @abc.abstractmethod
    def close(self) -> None:
        """Publish what only side files hold and release the store."""
