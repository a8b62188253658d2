"""Parts of a grid (``sweep(part=(k, n))``): which cells a part holds, how a file records the
part it was asked to compute, and what a set of part files lacks.

A job array's task ``k`` sweeps part ``k`` of ``n`` into its own file. When the sweep starts,
before any cell, the function's table records the part (:class:`PartRecord`: ``k``, ``n`` and
the cells dealt, kept in the file as attributes of ``<name>_status``), so that a task killed
at any moment still says what it owes. :func:`parts_report` reads the records of several
opened files and says, per function and per ``n``, which parts no file holds and how many
cells each held part lacks, counting a cell computed by *any* of the files as done: the
merged file will hold it, so nothing needs computing again.

The records are read from files someone may have edited: every value is checked against the
table it describes and bounded, and a record that does not fit is ignored (the file opens as
one without it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..file_format import (
    DONE,
    FAILED,
    PART_ATTR,
    PART_CELLS_ATTR,
    PART_SELECTION_ATTR,
)

if TYPE_CHECKING:  # annotations only: stores import this module
    from .netcdf import NetCDFStore

#: The most parts a record may name: more than any job array (SLURM's own limit is a few
#: million at most, and sites set ~1,000-10,000); a larger ``n`` in a file is not ours.
MAX_PARTS = 100_000

#: Cells mapped between grids at a time: the report's working memory stays bounded.
REPORT_BLOCK = 1 << 20


# ---------------------------------------------------------------------------------------------
# Which cells a part holds
# ---------------------------------------------------------------------------------------------
def part_positions(size: int, k: int, n: int) -> np.ndarray:
    """Which of ``size`` selected cells part ``k`` of ``n`` computes (``sweep(part=(k, n))``).

    The cells are dealt to the parts like cards, in grid order and back and forth (0, 1, ...,
    n-1, then n-1, ..., 0, ...): the parts are disjoint, cover every cell, differ in size by
    at most one cell, and each is spread over the whole grid, so that a cost that grows
    along a parameter (a longer beam, a finer mesh) is shared alike instead of landing on
    the last part (``benchmarks/bench_parts.py``). Positions come back in grid order.

    Examples
    --------
    >>> from xsweep.store.parts import part_positions
    >>> [part_positions(10, k, 3).tolist() for k in range(3)]
    [[0, 5, 6], [1, 4, 7], [2, 3, 8, 9]]
    """
    return np.flatnonzero(dealt_parts(0, size, n) == k)


def dealt_parts(start: int, stop: int, n: int) -> np.ndarray:
    """The part each of the selected cells ``start .. stop - 1`` is dealt to (see
    :func:`part_positions`).

    Examples
    --------
    >>> from xsweep.store.parts import dealt_parts
    >>> dealt_parts(0, 10, 3).tolist()
    [0, 1, 2, 2, 1, 0, 0, 1, 2, 2]
    """
    i = np.arange(start, stop, dtype=np.int64)
    forward = (i // n) % 2 == 0
    return np.where(forward, i % n, n - 1 - i % n)


def part_size(size: int, k: int, n: int) -> int:
    """How many of ``size`` selected cells part ``k`` of ``n`` holds, without dealing them.

    Examples
    --------
    >>> from xsweep.store.parts import part_size
    >>> [part_size(10, k, 3) for k in range(3)]
    [3, 3, 4]
    """
    rounds, rest = divmod(size, n)
    # The last, partial round goes forward (parts 0, 1, ...) after an even number of rounds.
    extra = k < rest if rounds % 2 == 0 else k >= n - rest
    return int(rounds + extra)


def compress_indices(ks: Sequence[int]) -> str:
    """Part indices as ``sbatch --array`` takes them: ``"2,5-7,9,10"`` (a range from three on).

    Examples
    --------
    >>> from xsweep.store.parts import compress_indices
    >>> compress_indices([7, 2, 5, 6, 10, 9])
    '2,5-7,9,10'
    """
    runs: list[list[int]] = []
    for k in sorted({int(k) for k in ks}):
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    shown = []
    for first, last in runs:
        if last - first >= 2:
            shown.append(f"{first}-{last}")
        else:
            shown += [str(k) for k in range(first, last + 1)]
    return ",".join(shown)


# ---------------------------------------------------------------------------------------------
# The record a table keeps of the parts it was asked to compute
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PartRecord:
    """The parts ``parts`` of ``n`` a function's table was asked to compute.

    ``selection`` holds, per dim of the table, the indices (in the table's grid) of the
    values the sweep selected, in the order the cells were dealt: the selected cells are
    their outer product in C order, dealt to the parts by :func:`dealt_parts`.
    """

    n: int
    parts: tuple[int, ...]
    selection: tuple[np.ndarray, ...]

    @classmethod
    def of_sweep(cls, k: int, n: int, selected: Sequence[np.ndarray]) -> PartRecord:
        """The record of a sweep of part ``k`` of ``n`` over the ``selected`` indices."""
        return cls(int(n), (int(k),), tuple(np.asarray(s, dtype=np.int64) for s in selected))

    @property
    def selected(self) -> int:
        """How many cells the parts share."""
        return int(np.prod([s.size for s in self.selection], dtype=np.int64))

    def cells(self, k: int) -> int:
        """How many cells part ``k`` holds."""
        return part_size(self.selected, k, self.n)

    def same_cells(self, other: PartRecord) -> bool:
        """Whether ``other`` deals the same cells into as many parts."""
        return (
            self.n == other.n
            and len(self.selection) == len(other.selection)
            and all(np.array_equal(a, b) for a, b in zip(self.selection, other.selection))
        )

    def including(self, k: int, n: int, selected: Sequence[np.ndarray]) -> PartRecord:
        """This record after a sweep of part ``k`` of ``n`` over ``selected``.

        A file asked for another part of the same cells holds both; another ``n`` or other
        cells replace the record (the file now owes that part).
        """
        new = PartRecord.of_sweep(k, n, selected)
        if not self.same_cells(new):
            return new
        return PartRecord(self.n, tuple(sorted({*self.parts, int(k)})), self.selection)

    def same(self, other: PartRecord | None) -> bool:
        """Whether ``other`` is this record."""
        return other is not None and self.parts == other.parts and self.same_cells(other)

    def moved(self, positions: Mapping[int, np.ndarray]) -> PartRecord:
        """The record after the table's cells moved: ``positions[axis][old] = new`` index."""
        selection = tuple(
            np.asarray(positions[axis], dtype=np.int64)[s] if axis in positions else s
            for axis, s in enumerate(self.selection)
        )
        return PartRecord(self.n, self.parts, selection)

    def kept(self, axis: int, keep: np.ndarray, length: int) -> PartRecord | None:
        """The record after only the indices ``keep`` of ``axis`` (of ``length``) were kept;
        None when some of its cells went with the others (it no longer says what it owes)."""
        new_index = np.full(length, -1, dtype=np.int64)
        new_index[np.asarray(keep, dtype=np.int64)] = np.arange(len(keep))
        moved = new_index[self.selection[axis]]
        if (moved < 0).any():
            return None
        return self.moved({axis: new_index})

    def flat(self, shape: tuple[int, ...], start: int, stop: int) -> np.ndarray:
        """Flat indices (over ``shape``) of the selected cells ``start .. stop - 1``, in the
        order they were dealt."""
        sizes = tuple(s.size for s in self.selection)
        where = np.unravel_index(np.arange(start, stop, dtype=np.int64), sizes)
        return np.ravel_multi_index(tuple(s[w] for s, w in zip(self.selection, where)), shape)

    def attrs(self, dims: Sequence[str], shape: Sequence[int]) -> dict[str, Any]:
        """The attributes of ``<name>_status`` that record it (see docs/file_format.md)."""
        selection = {
            d: "all" if np.array_equal(s, np.arange(size)) else s.tolist()
            for d, s, size in zip(dims, self.selection, shape)
        }
        return {
            PART_ATTR: ",".join(f"{k}/{self.n}" for k in self.parts),
            PART_CELLS_ATTR: np.array([self.cells(k) for k in self.parts], dtype=np.int64),
            PART_SELECTION_ATTR: json.dumps(selection, separators=(",", ":")),
        }


def read_part_record(
    attrs: Mapping[str, Any], dims: Sequence[str], shape: Sequence[int]
) -> PartRecord | None:
    """The part record in the attributes ``attrs`` of a table over ``dims`` of ``shape``.

    None when there is none, or when it does not fit the table (an edited or crafted file):
    a part file without a record reads as a file of cells, never as an error.

    Examples
    --------
    >>> from xsweep.store.parts import read_part_record
    >>> attrs = {"xsweep_part": "1/4", "xsweep_part_cells": 3,
    ...          "xsweep_part_selection": '{"a": "all"}'}
    >>> record = read_part_record(attrs, ("a",), (10,))
    >>> record.parts, record.n, record.cells(1)
    ((1,), 4, 3)
    >>> read_part_record({**attrs, "xsweep_part_cells": 2}, ("a",), (10,)) is None
    True
    """
    if PART_ATTR not in attrs:
        return None
    try:
        return _checked_record(attrs, tuple(dims), tuple(int(s) for s in shape))
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError, MemoryError):
        return None


def _checked_record(
    attrs: Mapping[str, Any], dims: tuple[str, ...], shape: tuple[int, ...]
) -> PartRecord | None:
    text = attrs[PART_ATTR]
    if not isinstance(text, str) or len(text) > 16 * MAX_PARTS:
        return None
    pairs = [item.split("/") for item in text.split(",")]
    if not all(len(p) == 2 and all(x.isdigit() and len(x) <= 7 for x in p) for p in pairs):
        return None
    ks = [int(k) for k, _ in pairs]
    ns = {int(n) for _, n in pairs}
    if len(ns) != 1 or len(set(ks)) != len(ks):
        return None
    n = ns.pop()
    if not 1 <= n <= MAX_PARTS or not all(0 <= k < n for k in ks):
        return None
    selection = _checked_selection(attrs.get(PART_SELECTION_ATTR), dims, shape)
    if selection is None:
        return None
    record = PartRecord(n, tuple(sorted(ks)), selection)
    cells = np.asarray(attrs.get(PART_CELLS_ATTR)).reshape(-1)
    if cells.dtype.kind not in "iu" or cells.size != len(ks):
        return None
    # Redundant with the selection on purpose: a record whose counts disagree was edited.
    if [int(c) for c in cells] != [record.cells(k) for k in ks]:
        return None
    return record


def _checked_selection(
    text: Any, dims: tuple[str, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, ...] | None:
    """The selection of a record, or None unless it fits the table's dims and shape."""
    # Bounded before parsing: at most every index of every dim, ~20 characters each.
    if not isinstance(text, str) or len(text) > 1024 + sum(64 + 24 * n for n in shape):
        return None
    parsed = json.loads(text)
    if not isinstance(parsed, dict) or list(parsed) != list(dims):
        return None
    selection = []
    for d, size in zip(dims, shape):
        value = parsed[d]
        if value == "all":
            selection.append(np.arange(size, dtype=np.int64))
            continue
        if not isinstance(value, list) or not value or len(value) > size:
            return None
        if not all(type(i) is int and 0 <= i < size for i in value):
            return None
        indices = np.array(value, dtype=np.int64)
        if np.unique(indices).size != indices.size:
            return None
        selection.append(indices)
    return tuple(selection)


# ---------------------------------------------------------------------------------------------
# What a set of part files lacks
# ---------------------------------------------------------------------------------------------
@dataclass
class PartState:
    """One part of a :class:`PartsGroup`: its cells, the files holding it, what it lacks.

    ``not_computed``: its cells that no file computed and none failed; ``failed``: its cells
    that failed and no file computed. ``files`` is empty for a part no file holds.
    """

    k: int
    cells: int
    files: tuple[str, ...]
    not_computed: int
    failed: int

    @property
    def complete(self) -> bool:
        """Every cell computed or failed, in one file or another."""
        return self.not_computed == 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``xsweep info --json``)."""
        return {
            "part": self.k,
            "cells": self.cells,
            "files": list(self.files),
            "not_computed": self.not_computed,
            "failed": self.failed,
            "complete": self.complete,
        }


@dataclass
class PartsGroup:
    """The parts of ``n`` of one function (over one selection of cells), in a set of files."""

    function: str
    n: int
    cells: int  # the cells all parts share
    parts: list[PartState] = field(default_factory=list)  # every part, k = 0 .. n-1

    @property
    def missing(self) -> list[PartState]:
        """The parts no file holds."""
        return [p for p in self.parts if not p.files]

    @property
    def resubmit(self) -> list[int]:
        """The parts whose cells are not all computed (or failed): the tasks to run again."""
        return [p.k for p in self.parts if not p.complete]

    @property
    def complete(self) -> bool:
        return not self.resubmit

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``xsweep info --json``)."""
        return {
            "function": self.function,
            "n": self.n,
            "cells": self.cells,
            "complete": self.complete,
            "missing_parts": [p.k for p in self.missing],
            "resubmit": compress_indices(self.resubmit),
            "parts": [p.as_dict() for p in self.parts],
        }

    def lines(self, problems_only: bool = False) -> list[str]:
        """The group in words, a line per part (``problems_only``: those that lack cells or
        failed, and a line for the others)."""
        out = [
            f"{self.function}: {self.cells} cells in {self.n} {_plural('part', range(self.n))} "
            f"(part=(k, {self.n}))"
        ]
        missing = self.missing
        fine = [p.k for p in self.parts if p.complete and not p.failed and p.files]
        if problems_only and fine:
            out.append(f"  complete: {_plural('part', fine)} {compress_indices(fine)}")
        for p in self.parts:
            if not p.files or (problems_only and p.k in fine):
                continue
            where = ", ".join(_shown(f) for f in p.files)
            if p.complete:
                what = f"complete, {p.cells} cells"
            else:
                what = f"{p.not_computed} of its {p.cells} cells not computed"
            if p.failed:
                what += f", {p.failed} failed (xsweep failures {_shown(p.files[0])})"
            out.append(f"  part {p.k} ({where}): {what}")
        if missing:
            ks = [p.k for p in missing]
            lacking = sum(p.not_computed for p in missing)
            cells = sum(p.cells for p in missing)
            one = len(ks) == 1
            lacks = f"{lacking} of {cells} cells not computed"
            if not lacking:
                lacks = f"all {cells} of {'its' if one else 'their'} cells are in other files"
            out.append(
                f"  {_plural('part', ks)} {compress_indices(ks)}: no file holds "
                f"{'it' if one else 'them'}; {lacks}"
            )
        if self.resubmit:
            out.append(
                f"  resubmit: sbatch --array={compress_indices(self.resubmit)} <the array's "
                f"job script> (array task k sweeps part=(k, {self.n})), then merge again"
            )
        return out


def _plural(word: str, items: Sequence[Any]) -> str:
    return word if len(items) == 1 else word + "s"


def _shown(path: str) -> str:
    """A file as a report names it: relative to here when below here, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


@dataclass
class PartsReport:
    """What a set of part files holds of each function's parts (see :func:`parts_report`)."""

    groups: list[PartsGroup]

    @property
    def complete(self) -> bool:
        """No part is missing or lacks cells (failed cells count as done: a task that runs
        them again fails them again, unless the function or its inputs changed)."""
        return all(g.complete for g in self.groups)

    def as_dicts(self) -> list[dict[str, Any]]:
        """Plain data (``xsweep info --json``)."""
        return [g.as_dict() for g in self.groups]

    def text(self, problems_only: bool = False) -> str:
        """The report in words, a line per part (``problems_only``: the parts that lack
        cells or failed some, and a line for the others)."""
        if not self.groups:
            return "no part records: these files were not swept with part=(k, n)"
        return "\n".join(line for g in self.groups for line in g.lines(problems_only))


def parts_report(stores: Sequence[NetCDFStore]) -> PartsReport:
    """Per function and per ``n``: the parts the opened files hold and what each lacks.

    A cell counts as done when *any* of the files computed it (a part resubmitted into
    another file, a file of the whole grid): the merged file will hold it. A cell that
    failed in one file and was computed in none counts as failed, not as lacking. Parts
    are matched by the parameter values of their cells, not by file names.

    Examples
    --------
    >>> import os, tempfile, xsweep as xs
    >>> from xsweep.store import open_store, parts_report
    >>> folder = tempfile.mkdtemp()
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=range(10))])
    >>> def square(a):
    ...     return a * a
    >>> for k in (0, 2):  # part 1 of 3 never ran
    ...     ps.enable_cache(os.path.join(folder, f"part{k}.nc"))
    ...     _ = ps.sweep(square, part=(k, 3))
    >>> ps.disable_cache()
    >>> stores = [open_store(os.path.join(folder, f"part{k}.nc"), outputs=False) for k in (0, 2)]
    >>> report = parts_report(stores)
    >>> report.complete, [g.resubmit for g in report.groups]
    (False, [[1]])
    >>> print(report.text(problems_only=True))  # doctest: +ELLIPSIS
    square: 10 cells in 3 parts (part=(k, 3))
      complete: parts 0,2
      part 1: no file holds it; 3 of 3 cells not computed
      resubmit: sbatch --array=1 <the array's job script> (array task k sweeps part=(k, 3)), ...
    """
    keys: list[str] = []
    for store in stores:
        keys += [key for key in store.tables if key not in keys]
    groups = []
    for key in keys:
        groups += _function_groups(key, stores)
    return PartsReport(groups)


def _function_groups(key: str, stores: Sequence[NetCDFStore]) -> list[PartsGroup]:
    """The groups of function ``key``'s parts over the files ``stores``."""
    holders = [(store, store.tables[key]) for store in stores if key in store.tables]
    recorded = [(s, t) for s, t in holders if t.part is not None]
    if not recorded:
        return []
    dims = recorded[0][1].dims
    # Files over other parameters cannot be merged with these; they say nothing about them.
    holders = [(s, t) for s, t in holders if sorted(t.dims) == sorted(dims)]
    union = _UnionGrid(dims, [s for s, _ in holders])
    state = np.zeros(union.size, dtype=np.int8)  # 0 nothing, 1 failed, 2 done (in any file)
    for store, table in holders:
        for start in range(0, table.size, REPORT_BLOCK):
            status = table.status[start : start + REPORT_BLOCK]
            failed = union.flat(store, table, np.flatnonzero(status == FAILED) + start)
            state[failed] = np.maximum(state[failed], 1)
            state[union.flat(store, table, np.flatnonzero(np.isin(status, DONE)) + start)] = 2
    # Files that deal the same cells (by their values) into as many parts form a group.
    groups: dict[tuple, tuple[PartsGroup, dict[int, list[str]]]] = {}
    for store, table in recorded:
        if sorted(table.dims) != sorted(dims):
            continue
        record = table.part
        assert record is not None  # recorded: the tables with a part record
        cells = tuple(union.mapped(store, table, a).tobytes() for a in range(len(dims)))
        ident = (record.n, table.dims, cells)
        if ident not in groups:
            groups[ident] = (_group(key, record, union, store, table, state), {})
        for k in record.parts:
            groups[ident][1].setdefault(k, []).append(store.path)
    for group, files in groups.values():
        for part in group.parts:
            part.files = tuple(files.get(part.k, ()))
    return [group for group, _ in groups.values()]


def _group(
    key: str, record: PartRecord, union: _UnionGrid, store: Any, table: Any, state: np.ndarray
) -> PartsGroup:
    """The parts of ``record``'s cells (in ``table`` of ``store``), counted over ``state``."""
    n, size = record.n, record.selected
    not_computed = np.zeros(n, dtype=np.int64)
    failed = np.zeros(n, dtype=np.int64)
    for start in range(0, size, REPORT_BLOCK):
        stop = min(start + REPORT_BLOCK, size)
        cells = state[union.flat(store, table, record.flat(table.shape, start, stop))]
        dealt = dealt_parts(start, stop, n)
        not_computed += np.bincount(dealt[cells == 0], minlength=n)
        failed += np.bincount(dealt[cells == 1], minlength=n)
    parts = [
        PartState(k, part_size(size, k, n), (), int(not_computed[k]), int(failed[k]))
        for k in range(n)
    ]
    return PartsGroup(key, n, size, parts)


class _UnionGrid:
    """The union of several files' values of ``dims``: where each file's cells are in it."""

    def __init__(self, dims: tuple[str, ...], stores: Sequence[Any]):
        self.dims = dims
        ids: dict[str, dict[tuple, int]] = {d: {} for d in dims}
        self.positions: dict[tuple[int, str], np.ndarray] = {}
        for store in stores:
            for d in dims:
                # bools apart from ints (True == 1); ints and floats alike, as merging does
                known = ids[d]
                self.positions[(id(store), d)] = np.array(
                    [
                        known.setdefault((type(v) is bool, v), len(known))
                        for v in store.grid[d].values.tolist()
                    ],
                    dtype=np.int64,
                )
        self.shape = tuple(len(ids[d]) for d in dims)
        self.size = int(np.prod(self.shape, dtype=np.int64))

    def mapped(self, store: Any, table: Any, axis: int) -> np.ndarray:
        """The union indices of ``table``'s record's selection along its ``axis``."""
        return self.positions[(id(store), table.dims[axis])][table.part.selection[axis]]

    def flat(self, store: Any, table: Any, flat: np.ndarray) -> np.ndarray:
        """Flat indices in the union of ``table``'s cells ``flat``."""
        where = np.unravel_index(flat, table.shape)
        index = {d: self.positions[(id(store), d)][i] for d, i in zip(table.dims, where)}
        return np.ravel_multi_index(tuple(index[d] for d in self.dims), self.shape)
