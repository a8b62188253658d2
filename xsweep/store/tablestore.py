"""The table set both stores share: one function's results per table, over one grid.

:class:`TableStore` holds a :class:`~xsweep.store.table.FunctionTable` per function over a
:class:`~xsweep.store.grid.Grid` and every verb that works on them alone: creating and
conforming tables, output structures, the checks of names the file would hold, reading one
cell, summaries, failures and live looks. :class:`~xsweep.store.memory.MemoryStore` and
:class:`~xsweep.store.netcdf.NetCDFStore` derive from it side by side; the few things that
differ between them are the hooks it declares (see :class:`TableStore`).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import (
    FunctionChangedError,
    StoreError,
    StoreMismatchError,
)
from ..file_format import (
    DIMS_ATTR,
    DONE,
    NO_VALUE,
    Coords,
    failed_rows,
    function_dim,
    refinement_round_name,
    status_counts,
)
from ..outputs import OutputSpec, VariableSpec
from ..text import name_problem, text_problem
from .base import NOT_STORED, FunctionSummary, Peek, Store
from .grid import Grid, short_values
from .ondisk import is_on_disk
from .parts import PartRecord
from .table import FunctionTable, same_structure


# ---------------------------------------------------------------------------------------------
# The table set every store holds
# ---------------------------------------------------------------------------------------------
class TableStore(Store):
    """A store of one :class:`~xsweep.store.table.FunctionTable` per function over ``grid``.

    The verbs that only touch the tables live here; writing sessions, recorders, results
    and closing are each store's own (:class:`~xsweep.store.base.Store`). The table set
    calls back three hooks, which each store implements:

    * :meth:`layout_changed`: after any change of layout (a table, its dims, fingerprint or
      output structure);
    * :meth:`keeps_on_disk`: whether a table's array outputs stay on disk (streamed);
    * :meth:`reclaim`: before reading buffers that may have been lent to a caller;

    and one it may override, :meth:`journal_only_cells` (for summaries).

    Parameters
    ----------
    grid : Grid or dict
        The parameters (a :class:`~xsweep.store.grid.Grid`, or ``name -> (values, attrs)``).
    """

    path: str | None = None
    #: True: a summary store (``xsweep info``), without output values (see ``open_store``).
    summary_only = False

    def __init__(self, grid: Grid | Coords) -> None:
        self.grid = grid if isinstance(grid, Grid) else Grid(grid)
        self.tables: dict[str, FunctionTable] = {}
        #: Values at which cells stored before a parameter existed were computed.
        self.computed_at: dict[str, Any] = {}

    def table(
        self,
        key: str,
        name: str,
        dims: tuple[str, ...],
        fingerprint: str | None = None,
        on_change: str = "raise",
    ) -> FunctionTable:
        """The results of function ``key`` over ``dims``, created empty if new.

        ``fingerprint`` identifies the function's version; when the stored one differs,
        ``on_change`` decides: ``"raise"`` (an error with the ways out), ``"keep"`` (keep the
        old cells, noted in the file) or ``"recompute"`` (forget them).
        """
        table = self.tables.get(key)
        if table is None:
            self._check_new_name(key, name)
            table = FunctionTable(key, name, dims, self.grid.shape(dims))
            table.fingerprint = fingerprint
            self.tables[key] = table
            self.layout_changed()
            return table
        if table.dims != dims:
            self._conform(table, dims)
        if fingerprint is not None and table.fingerprint not in (None, fingerprint):
            self._function_changed(table, fingerprint, on_change)
        elif fingerprint is not None and table.fingerprint is None:
            table.fingerprint = fingerprint
            self.layout_changed()
        return table

    def _function_changed(
        self, table: FunctionTable, fingerprint: str | None, on_change: str
    ) -> None:
        if on_change == "raise":
            raise FunctionChangedError(
                f"{self._where()} holds results of {table.key} computed by a different version "
                f"of its code, or of another function named {table.name!r} (fingerprint "
                f"{table.fingerprint}, now {fingerprint}; the fingerprint covers the code, the "
                "globals it reads and the helpers it calls). Choose: recompute them (sweep "
                "with force_recompute=True, or ps.clear_cache(fn)); keep them as valid for the "
                "new code (sweep with on_change='keep', recorded in the file); declare "
                "versions yourself with @xs.version('...') so that only a version you change "
                "counts; or, for another function with the same name (two lambdas), give it "
                "its own: ps.sweep(fn, name='...')."
            )
        if on_change == "keep":
            assert table.fingerprint is not None  # it differs from the new one
            table.history.append(table.fingerprint)
        else:
            table.clear()
        table.fingerprint = fingerprint
        self.layout_changed()

    def _conform(self, table: FunctionTable, dims: tuple[str, ...]) -> None:
        """Bring a table stored over other dims to ``dims`` (reordered or with new params)."""
        old, new = set(table.dims), set(dims)
        added = [d for d in dims if d not in old]
        missing = [d for d in added if d not in self.computed_at]
        if not old <= new or missing:
            dropped = sorted(old - new)
            if dropped:
                why = (
                    f"it no longer takes {dropped}, and its stored cells differ along "
                    f"{'it' if len(dropped) == 1 else 'them'}"
                )
                fix = "Clear them with ps.clear_cache(fn) or use another cache path."
            else:
                example = ", ".join(f"{d!r}: <value>" for d in missing)
                why = f"the stored cells were computed before {missing} existed"
                fix = (
                    "If they were computed at one value of each new parameter (say its "
                    f"default), declare it: ps.enable_cache(path, computed_at={{{example}}}). "
                    "Otherwise clear them with ps.clear_cache(fn) or use another cache path."
                )
            raise StoreMismatchError(
                f"{self._where()} holds results of {table.key} over the parameters "
                f"{list(table.dims)}, but the function now takes {list(dims)}: {why}. {fix}"
            )
        fixed = {}
        for d in added:
            values = self.grid[d].values
            hits = np.flatnonzero(values == np.asarray(self.computed_at[d], dtype=values.dtype))
            if not hits.size:
                raise StoreMismatchError(
                    f"computed_at[{d!r}] = {self.computed_at[d]!r} is not one of the values of "
                    f"parameter {d!r}: {short_values(values)}."
                )
            fixed[d] = int(hits[0])
        table.regrid(dims, self.grid.shape(dims), {}, fixed)
        self.layout_changed()

    def set_spec(self, table: FunctionTable, spec: OutputSpec) -> None:
        """Fix the output structure of ``table`` (the first successful cell's).

        A table that has a structure already keeps it (and its cells) when ``spec`` is the
        same; a different one (a whole-grid recompute of an edited function) replaces it,
        and the old cells, which cannot hold the new structure, count as not computed.
        """
        if table.spec is not None and same_structure(table.spec, spec):
            return
        spec = self._check_spec(table, spec)
        if table.spec is not None:
            table.clear()
        table.set_spec(spec, stream=self.keeps_on_disk(table, spec))
        self.layout_changed()

    def grow_spec(self, table: FunctionTable, spec: OutputSpec) -> None:
        """Give ``table`` a structure whose ragged outputs grew; its cells keep their values."""
        spec = self._check_spec(table, spec, keep=table.spec)
        table.regrow(spec)
        self.layout_changed()

    def record_part(
        self, table: FunctionTable, part: tuple[int, int], selected: Sequence[np.ndarray]
    ) -> bool:
        """Note on ``table`` that it is asked for part ``part = (k, n)`` of ``selected``.

        A table asked for another part of the same cells before holds both; another ``n``
        or other cells replace the note. Returns whether it changed.
        """
        k, n = part
        old = table.part
        new = PartRecord.of_sweep(k, n, selected) if old is None else old.including(k, n, selected)
        if new.same(old):
            return False
        table.part = new
        self.layout_changed()
        return True

    def adopt(self, table: FunctionTable) -> None:
        """Take ``table`` (read from another file, over this grid) as a function's results."""
        self._check_new_name(table.key, table.name)
        if table.spec is not None:
            table.spec = self._check_spec(table, table.spec)
        self.tables[table.key] = table
        self.layout_changed()

    # -- reading ------------------------------------------------------------------------------
    def _stored_cell(
        self, key: str, dims: tuple[str, ...], indices: Mapping[str, int]
    ) -> tuple[FunctionTable, int] | None:
        """``(table, flat index)`` of a computed cell of ``key`` over ``dims``, else None."""
        self.reclaim()
        if self.summary_only:
            raise StoreError(f"{self.path} was opened for a summary only; it holds no values.")
        table = self.tables.get(key)
        if table is None or table.dims != dims:
            return None
        flat = self.grid.flat_index(dims, indices)
        return (table, flat) if table.status[flat] in DONE else None

    def readable(
        self, key: str, name: str, dims: tuple[str, ...], fingerprint: str | None
    ) -> FunctionTable | None:
        table = self.tables.get(key)
        if (
            table is None
            or table.name != name
            or table.dims != tuple(dims)
            or table.spec is None
            or table.fingerprint != fingerprint
        ):
            return None
        return table

    def contains(
        self, key: str, dims: tuple[str, ...], fingerprint: str | None, indices: Mapping[str, int]
    ) -> bool:
        found = self._stored_cell(key, dims, indices)
        return found is not None and found[0].fingerprint in (None, fingerprint)

    def lookup(
        self,
        key: str,
        dims: tuple[str, ...],
        fingerprint: str | None,
        indices: Mapping[str, int],
    ) -> Any:
        found = self._stored_cell(key, dims, indices)
        if found is None:
            return NOT_STORED
        table, flat = found
        if table.fingerprint not in (None, fingerprint):
            self._function_changed(table, fingerprint, "raise")
        if table.status[flat] == NO_VALUE:
            return None  # computed: the function returned None
        spec = table.spec
        assert spec is not None  # a computed cell has outputs
        if not spec.needs_dataset:  # no xarray object for the common kinds
            return spec.rebuild_values(
                {v.name: buf[flat] for v, buf in zip(spec.variables, table.buffers)}
            )
        # Python ints: xarray indexes a view with them (numpy ints take its copying path).
        cell = {d: int(i) for d, i in zip(dims, np.unravel_index(flat, table.shape))}
        return spec.rebuild(table.output_view(self.grid).isel(cell), dims)

    def functions(self) -> list[FunctionSummary]:
        out = []
        for table in self.tables.values():
            seconds = table.seconds[np.isin(table.status, DONE)]
            out.append(
                FunctionSummary(
                    key=table.key,
                    name=table.name,
                    dims=table.dims,
                    outputs=tuple(table.spec.names) if table.spec else (),
                    cells=int(table.size),
                    counts=status_counts(table.status),
                    total_seconds=float(seconds.sum(dtype=np.float64)),
                    mean_seconds=float(seconds.mean(dtype=np.float64)) if seconds.size else None,
                    fingerprint=table.fingerprint,
                    journal_only=self.journal_only_cells(table.key),
                )
            )
        return out

    def failures(self, key: str | None = None) -> list[dict[str, Any]]:
        rows = []
        for table in self._select(key):
            rows += failed_rows(
                table.dims,
                table.status.reshape(table.shape),
                lambda cell, t=table: self.grid.label(t.dims, cell),  # type: ignore[misc]  # mypy cannot type a lambda with a default
                lambda flat, cell, t=table: t.errors.get(flat, ""),  # type: ignore[misc]  # mypy cannot type a lambda with a default
                first={"function": table.name},
            )
        return rows

    def peek(
        self, key: str, dims: tuple[str, ...], fingerprint: str | None, output: str | None = None
    ) -> Peek | None:
        table = self.tables.get(key)
        if table is None or table.dims != tuple(dims):
            return None
        if table.fingerprint not in (None, fingerprint):
            return None  # cells of another version of the code count as not computed
        try:  # no lock: a sweep may be writing (or regridding) this table meanwhile
            status = table.status.reshape(table.shape).copy()
            numeric: dict[str, Any] = {}  # in-memory buffers
            if table.spec is not None:
                for var, buf in zip(table.spec.variables, table.buffers):
                    if var.scalar and var.dtype.kind in "biuf" and not is_on_disk(buf):
                        numeric[var.name] = buf
            values = None
            if output in numeric:
                values = numeric[output].reshape(table.shape).astype(float)
            seconds = table.seconds.reshape(table.shape).copy()
            return Peek(status, values, dict(table.errors), tuple(numeric), seconds)
        except (ValueError, RuntimeError):  # changed shape under us: the next look is fine
            return None

    def follow(self, space: Grid) -> bool:
        """Grow the grid to hold ``space``'s values when they changed (see ``Store.follow``).

        Examples
        --------
        >>> import numpy as np
        >>> from xsweep.store import Grid, MemoryStore
        >>> store = MemoryStore({"x": (np.array([0.0, 1.0]), {})})
        >>> store.follow(Grid({"x": (np.array([0.0, 0.5, 1.0]), {})}))
        True
        >>> store.grid["x"].values.tolist(), store.grid.positions["x"].tolist()
        ([0.0, 0.5, 1.0], [0, 1, 2])
        """
        if self.holds_space(space):
            return False
        self.grow_to(space)
        return True

    def holds_space(self, space: Grid) -> bool:
        """Whether the grid's positions are exactly ``space``'s values, parameter by parameter.

        Examples
        --------
        >>> import numpy as np
        >>> from xsweep.store import Grid, MemoryStore
        >>> store = MemoryStore({"x": (np.array([0.0, 1.0]), {})})
        >>> store.holds_space(Grid({"x": (np.array([0.0, 1.0]), {})}))
        True
        """
        for name, axis in space.items():
            if name not in self.grid:
                return False
            mine = self.grid[name].values
            positions = self.grid.positions[name]
            if axis.values is mine and positions.size == mine.size:
                continue  # the very array the space gave: nothing changed
            if positions.size != axis.values.size:
                return False
            if not np.array_equal(mine[positions], axis.values):
                return False
        return True

    def grow_to(self, space: Grid) -> None:
        """Make the grid the union of its values and ``space``'s; new cells not computed."""
        grid, moved = self.grid.with_space(space, self.path or "the results")
        for table in self.tables.values():
            positions = {d: moved[d] for d in table.dims if d in moved}
            if positions:
                table.regrid(table.dims, grid.shape(table.dims), positions, {})
        self.grid = grid
        if moved:
            self.layout_changed()

    def clear(self, key: str | None = None) -> None:
        """Forget functions' results, fingerprints and output structures entirely."""
        for table in self._select(key):
            del self.tables[table.key]
        self.layout_changed()

    # -- hooks: what each store does its own way ------------------------------------------
    @abc.abstractmethod
    def layout_changed(self) -> None:
        """Called after every change of layout: a new or cleared table, new dims, a new
        fingerprint or output structure.

        ``MemoryStore``: nothing to do. ``NetCDFStore``: the file must hold the new layout
        before any journal record refers to it, so the next record publishes first.
        """

    @abc.abstractmethod
    def keeps_on_disk(self, table: FunctionTable, spec: OutputSpec) -> bool:
        """Whether ``table``'s array outputs of structure ``spec`` stay on disk (streamed).

        Called by :meth:`set_spec`. ``MemoryStore``: never (it raises if they do not fit in
        memory); ``NetCDFStore``: when they need more than its memory budget.
        """

    @abc.abstractmethod
    def reclaim(self) -> None:
        """Make sure every table's buffers are the store's own, before reading them.

        Called before a cell is read. ``MemoryStore``: they always are. ``NetCDFStore``:
        tables lent to a caller (``result``) read their buffers back from the file.
        """

    def journal_only_cells(self, key: str) -> int:
        """Computed cells of ``key`` that only a journal holds so far (for summaries).

        ``NetCDFStore`` overrides it: cells not yet in the file a colleague would copy.
        """
        return 0

    # -- checks -------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"The cache file {self.path}" if self.path else "This sweep"

    def _select(self, key: str | None) -> list[FunctionTable]:
        if key is None:
            return list(self.tables.values())
        return [self.tables[key]] if key in self.tables else []

    def _taken_names(self, exclude: str) -> dict[str, str]:
        """Every variable and dim name in the file, mapped to what uses it.

        Variables and dims share one namespace in a NetCDF file (a dim may only share its
        name with its own coordinate variable), so both are listed.
        """
        taken = {name: f"parameter {name!r}" for name in self.grid}
        for name in self.grid.rounds:
            taken[refinement_round_name(name)] = f"the refinement rounds of parameter {name!r}"
        for table in self.tables.values():
            if table.key == exclude:
                continue
            for n in (*table.own_names, table.names.message_dim):
                taken[n] = f"function {table.key}"
            if table.spec is not None:
                for var in table.spec.variables:
                    for d in var.dims:
                        taken.setdefault(d, f"an output dim of {table.key}")
                    for c in var.coords:
                        taken.setdefault(c, f"an output coordinate of {table.key}")
        return taken

    def _check_new_name(self, key: str, name: str) -> None:
        for table in self.tables.values():
            if table.name == name:
                raise StoreMismatchError(
                    f"{self._where()} already holds results of function {table.key} under the "
                    f"name {name!r}; function {key} has the same name and would mix with them. "
                    "Rename one of the functions, or use another cache path."
                )
        taken = self._taken_names(key)
        probe = FunctionTable(key, name, (), ())
        for n in (*probe.own_names, probe.names.message_dim):
            problem = name_problem(n)
            if problem:
                raise StoreMismatchError(
                    f"The results of {key} would be stored as {n!r:.80}, which {problem}. "
                    "Give the function a shorter name."
                )
            if n in taken:
                raise StoreMismatchError(
                    f"The results of {key} need the name {n!r} in {self._where_short()}, but "
                    f"{taken[n]} uses it already. Rename the function or that "
                    f"{'parameter' if n in self.grid else 'function'}."
                )

    def _where_short(self) -> str:
        return "the cache file" if self.path else "the results"

    def _dim_clash(self, dim: str, n: int, coord: Any, taken: dict, others: dict) -> str | None:
        """What else in the file names ``dim`` otherwise (for the message), or None if free."""
        if dim in self.grid or (dim in taken and dim not in others):
            return taken.get(dim, f"parameter {dim!r}")
        if dim in others and not _same_dim(others[dim], n, coord):
            return f"an output dim of {others[dim][2]} of length {others[dim][0]}"
        return None

    def _check_spec(
        self, table: FunctionTable, spec: OutputSpec, keep: OutputSpec | None = None
    ) -> OutputSpec:
        """``spec`` checked against the file's other names, as ``table`` will store it.

        An output dim that a parameter or another function's variable or output dim (of
        another length or with other coordinates) already names in the file gets the
        function's name in front (``save_graph_x``): several functions of different image
        sizes share a file, and a parameter may be called ``x``. The output keeps its own
        dim names (the ``xsweep_dims`` attribute). ``keep``: a structure ``spec`` grew from,
        whose dims keep the names they have while nothing else uses them.
        """
        taken = self._taken_names(table.key)
        own = {
            table.names.status,
            table.names.seconds,
            table.names.error,
            table.names.messages,
            table.names.message_dim,
        }
        others = self._dim_layout(exclude=table.key)
        names = set(spec.names)
        before = _stored_names(keep) if keep is not None else {}
        placed: dict[str, str] = {}
        for var in spec.variables:
            owner = taken.get(var.name) or ("its own status variables" if var.name in own else None)
            if owner is not None:
                raise StoreMismatchError(
                    f"{table.key} returns an output named {var.name!r}, but that name is already "
                    f"used by {owner}. Two variables never share a "
                    "name: rename the output (return a dict with another key) or the function."
                )
            for dim, stored, n in zip(var.named_dims, var.dims, var.shape):
                if dim in own or dim in names:
                    user = f"output {dim!r}" if dim in names else "a status variable"
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has a dim named {dim!r}, but "
                        f"{user} uses that name. Name the output's dims differently with "
                        f"output_dims={{{var.name!r}: (...)}}."
                    )
                if dim in placed:
                    continue
                why = self._dim_clash(dim, n, var.coords.get(stored), taken, others)
                if why is None:
                    placed[dim] = before.get(dim, dim)  # a grown output keeps its names
                    continue
                scoped = function_dim(table.name, dim)
                if (
                    scoped in self.grid
                    or scoped in taken
                    or scoped in others
                    or {scoped} & (own | names)
                    or name_problem(scoped)
                ):
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has dim {dim!r} of length {n}, but "
                        f"{why} uses that name, and {scoped!r} is taken too (or too long). "
                        f"Name the output's dims with output_dims={{{var.name!r}: (...)}}."
                    )
                placed[dim] = scoped
        spec = _with_stored_names(spec, placed)
        for var in spec.variables:
            for cname in var.coords:
                if cname not in var.dims and (cname in taken or cname in own or cname in names):
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has a coordinate named {cname!r}, "
                        f"but {taken.get(cname, 'another variable')} uses that name. Rename "
                        "the coordinate."
                    )
            for attr, value in var.attrs.items():
                problem = name_problem(attr) if isinstance(attr, str) else "is not a string"
                if problem:
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has an attribute named "
                        f"{attr!r:.80}, which {problem}. Rename or drop the attribute."
                    )
                if isinstance(value, str) and text_problem(value):
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has attribute {attr!r}, whose text "
                        f"{text_problem(value)}. Remove or replace that character."
                    )
                if not isinstance(value, (str, int, float, np.number, np.ndarray, list, tuple)):
                    raise StoreMismatchError(
                        f"Output {var.name!r} of {table.key} has attribute {attr!r} of type "
                        f"{type(value).__name__}, which a NetCDF file cannot hold. Use strings, "
                        "numbers or lists of numbers as attribute values."
                    )

        return spec

    def _dim_layout(self, exclude: str) -> dict[str, tuple[int, xr.Variable | None, str]]:
        """Other functions' output dims in the file: length, coordinate and function."""
        dims: dict[str, tuple[int, xr.Variable | None, str]] = {}
        for table in self.tables.values():
            if table.key != exclude and table.spec is not None:
                for var in table.spec.variables:
                    for d, n in zip(var.dims, var.shape):
                        dims.setdefault(d, (n, var.coords.get(d), table.key))
        return dims


def _same_dim(other: tuple[int, xr.Variable | None, str], n: int, coord: Any) -> bool:
    """Whether a dim of length ``n`` with coordinate ``coord`` is ``other``'s dim."""
    if other[0] != n or (other[1] is None) != (coord is None):
        return False
    if coord is None:
        return True
    a, b = other[1], coord
    assert a is not None  # both have a coordinate
    if a.dims != b.dims or _text_or(a.dtype) != _text_or(b.dtype):
        return False
    return bool(np.array_equal(a.values, b.values))


def _text_or(dtype: np.dtype) -> str:
    """A dtype's kind, text of any storage (a file gives str coordinates back as objects)."""
    return "U" if dtype.kind in "OSU" else dtype.str


def _stored_names(spec: OutputSpec) -> dict[str, str]:
    """An output structure's dims: its own name -> the name the store gave it."""
    return {n: s for var in spec.variables for n, s in zip(var.named_dims, var.dims)}


def _with_stored_names(spec: OutputSpec, stored: dict[str, str]) -> OutputSpec:
    """``spec`` with its dims (and their coordinates) named ``stored[own name]``."""
    if all(stored.get(n, s) == s for n, s in _stored_names(spec).items()):
        return spec
    variables = []
    for var in spec.variables:
        rename = {s: stored.get(n, s) for n, s in zip(var.named_dims, var.dims)}
        coords = {}
        for k, c in var.coords.items():
            c = c.copy(deep=False)
            c.dims = tuple(rename.get(str(d), str(d)) for d in c.dims)  # an output's dims: str
            coords[rename.get(str(k), str(k))] = c
        attrs = {k: v for k, v in var.attrs.items() if k != DIMS_ATTR}
        dims = tuple(rename[d] for d in var.dims)
        if dims != var.named_dims:
            attrs[DIMS_ATTR] = json.dumps(list(var.named_dims))
        variables.append(
            VariableSpec(
                var.name, var.dtype, var.shape, dims, var.scalar, coords=coords, attrs=attrs
            )
        )
    return OutputSpec(spec.kind, tuple(variables))
