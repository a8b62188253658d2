"""Combining results files computed over parts of a grid (one per cluster job)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import (
    FunctionChangedError,
    PartsIncompleteError,
    PartsIncompleteWarning,
    StoreError,
    StoreMismatchError,
    warn_user,
)
from ..file_format import DONE, FAILED, NOT_COMPUTED
from ..outputs import OutputSpec, union_spec
from .cells import cells_per_copy
from .grid import Grid, merged_rounds, union_values
from .netcdf import NetCDFStore
from .opening import open_store
from .parts import PartsReport, parts_report
from .table import FunctionTable


def merge_stores(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    on_conflict: str = "raise",
    require_complete: bool = False,
) -> str:
    """Combine results files computed over parts of a grid (one per cluster job) into one.

    The output's grid is the union of the inputs' grids; every computed cell of every input
    is in it. A cell computed in several inputs must hold the same value in each, unless
    ``on_conflict`` picks one. Failed cells yield to computed ones. Arrays whose shape varies
    between cells (ragged outputs, each file padded to its own largest cell) are padded to
    the largest of all; every cell keeps its own shape (``<name>_extent``).

    Files of ``sweep(part=(k, n))`` record their part: when a part of ``n`` is in none of
    the files, or a part's cells are not all computed (its task was killed), a
    :class:`~xsweep.errors.PartsIncompleteWarning` names them and the array indices to
    resubmit (see :func:`check_parts`); the merge goes on, and those cells stay not computed.

    Parameters
    ----------
    paths : list of str
        The results files, in order.
    out : str
        The merged file to write; it must not exist yet.
    on_conflict : {"raise", "first", "last"}, default "raise"
        What a cell computed with different values in several inputs does: an error naming
        the cell, or the first or last input's value.
    require_complete : bool, default False
        Refuse to merge, with a :class:`~xsweep.errors.PartsIncompleteError` that names the
        missing parts, when any part is missing or lacks cells (failed cells count as
        done); nothing is written.

    Returns
    -------
    str
        The absolute path of the merged file.

    Examples
    --------
    >>> import os, tempfile, xsweep as xs
    >>> folder = tempfile.mkdtemp()
    >>> ps = xs.ParameterSpace([xs.Parameter("a", values=[1, 2, 3, 4])])
    >>> def square(a):
    ...     return a * a
    >>> for job in range(2):  # as two jobs of a job array would
    ...     ps.enable_cache(os.path.join(folder, f"part{job}.nc"))
    ...     _ = ps.sweep(square, part=(job, 2))
    >>> ps.disable_cache()
    >>> out = xs.merge_stores([os.path.join(folder, f"part{j}.nc") for j in range(2)],
    ...                       os.path.join(folder, "all.nc"))
    >>> import xarray as xr
    >>> with xr.open_dataset(out) as ds:
    ...     ds["square"].values.tolist()
    [1, 4, 9, 16]
    """
    if on_conflict not in ("raise", "first", "last"):
        raise StoreError(f"on_conflict={on_conflict!r} is not one of ['raise', 'first', 'last'].")
    if isinstance(paths, (str, bytes, os.PathLike)):  # a str is a Sequence: of its characters
        raise StoreError(
            f"merge_stores takes a list of paths, not one path ({os.fsdecode(paths)!r:.200}); "
            f"nothing was read or written. Pass a list of paths, e.g. [path]: "
            f"xs.merge_stores([{os.fsdecode(paths)!r:.200}], out)."
        )
    if len(paths) < 1:
        raise StoreError("merge_stores needs at least one input file.")
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(out):
        raise StoreError(
            f"The output file {out} already exists; merging never overwrites a file. Choose "
            "another output path or remove it first."
        )
    sources = [open_store(os.fspath(p)) for p in paths]
    report = parts_report(sources)  # before the tables move to the union grid
    if not report.complete:
        if require_complete:
            raise PartsIncompleteError(_incomplete_message(report, out))
        warn_user(
            "Merging parts that lack cells; those cells are not computed in "
            f"{out}:\n{report.text(problems_only=True)}",
            PartsIncompleteWarning,
        )
    grid = Grid()
    for src in sources:
        for name, (values, attrs) in src.grid.items():
            rounds = src.grid.rounds.get(name)
            if name in grid:
                attrs = grid[name].attrs
                before = (grid[name].values, grid.rounds.get(name))
                values, _ = union_values(src.path, name, grid[name].values, values)
                rounds = merged_rounds(values, [before, (src.grid[name].values, rounds)])
            grid.set(name, values, attrs, rounds=rounds)
    merged: dict[str, FunctionTable] = {}
    for src in sources:
        for key, table in src.tables.items():
            positions = {}
            for d in table.dims:
                lookup = {v: i for i, v in enumerate(grid[d].values.tolist())}
                positions[d] = np.array([lookup[v] for v in src.grid[d].values.tolist()])
            table.regrid(table.dims, grid.shape(table.dims), positions, {})
            if key not in merged:
                merged[key] = table
            else:
                _merge_table(merged[key], table, src.path, grid, on_conflict)
    target = NetCDFStore(out, grid)
    with target.writing():
        for table in merged.values():
            table.part = None  # the merged file holds the parts' union, not a part
            target.adopt(table)
    return target.path


def _incomplete_message(report: PartsReport, out: str) -> str:
    """Why ``require_complete`` refused, what is safe, and what to do."""
    return (
        f"Some parts are missing or lack cells, and a complete merge was required:\n"
        f"{report.text(problems_only=True)}\n"
        f"Nothing was written ({out} was not created) and the part files are unchanged. "
        "Resubmit the array tasks named above (each resumes its own file, computing only "
        "what it lacks) and merge again once they are done; or merge without "
        "require_complete=True (--require-complete) to get a file whose missing cells are "
        "not computed."
    )


def _merge_table(
    into: FunctionTable, src: FunctionTable, path: str, grid: Grid, on_conflict: str
) -> None:
    """Merge the cells of ``src`` (read from ``path``) into ``into``, both over ``grid``."""
    where = f"{src.key} in {path}"
    _check_same_function(into, src, where)
    if src.spec is not None:
        _merge_outputs(into, src, where)
        _check_conflicts(into, src, path, grid, on_conflict)
    _take_cells(into, src, on_conflict)
    into.fingerprint = into.fingerprint or src.fingerprint


def _check_same_function(into: FunctionTable, src: FunctionTable, where: str) -> None:
    """Refuse tables over other parameters, or computed by another version of the code."""
    if into.dims != src.dims:
        raise StoreMismatchError(
            f"{where} is stored over {list(src.dims)}, but over {list(into.dims)} in an earlier "
            "file; only results over the same parameters can be merged."
        )
    if into.fingerprint and src.fingerprint and into.fingerprint != src.fingerprint:
        raise FunctionChangedError(
            f"{where} was computed by another version of the function's code "
            f"({src.fingerprint}) than in an earlier file ({into.fingerprint}); merging them "
            "would mix versions. Recompute one of them, or declare a version with @xs.version."
        )


def _merge_outputs(into: FunctionTable, src: FunctionTable, where: str) -> None:
    """Give both tables the structure that holds the outputs of either (``src`` has one)."""
    assert src.spec is not None  # checked by the caller
    if into.spec is None:
        into.set_spec(src.spec)
    assert into.spec is not None  # set just above
    mine = [(v.name, v.dtype, v.shape) for v in into.spec.variables]
    theirs = [(v.name, v.dtype, v.shape) for v in src.spec.variables]
    # Ragged outputs of parts were padded to each part's own extent: pad both to the
    # larger; the extents keep every cell's own shape.
    both = union_spec(into.spec, src.spec)
    if both is None or _outputs(into.spec) != _outputs(src.spec):
        raise StoreMismatchError(
            f"{where} has outputs {theirs}, but {mine} in an earlier file; they cannot be merged."
        )
    for table in (into, src):
        assert table.spec is not None  # both have outputs now
        if _layout(table.spec) != _layout(both):
            table.regrow(both)


def _check_conflicts(
    into: FunctionTable, src: FunctionTable, path: str, grid: Grid, on_conflict: str
) -> None:
    """Compare the cells done in both; unless ``on_conflict`` picks one, differences raise."""
    both = np.flatnonzero(np.isin(into.status, DONE) & np.isin(src.status, DONE))
    if not both.size:
        return
    differ = np.zeros(both.size, dtype=bool)
    assert into.spec is not None  # merged by _merge_outputs
    for var, a, b in zip(into.spec.variables, into.buffers, src.buffers):
        # A block of cells at a time: outputs kept on disk are read, never all at once.
        per = cells_per_copy(var)
        for start in range(0, both.size, per):
            part = both[start : start + per]
            x, y = a.read(part), b.read(part)
            same = x == y
            if x.dtype.kind == "f":
                same |= np.isnan(x) & np.isnan(y)
            differ[start : start + per] |= ~same.reshape(part.size, -1).all(axis=1)
    differ |= into.status[both] != src.status[both]
    if differ.any() and on_conflict == "raise":
        cell = np.unravel_index(both[differ][0], into.shape)
        label = ", ".join(f"{d}={v!r}" for d, v in grid.label(into.dims, cell).items())
        raise StoreMismatchError(
            f"{int(differ.sum())} cells of {src.key} are computed in several files with "
            f"different values, first at {label} (in {path}). Pass on_conflict='first' or "
            "'last' to keep one file's value (merge --on-conflict on the command line)."
        )


def _take_cells(into: FunctionTable, src: FunctionTable, on_conflict: str) -> None:
    """Copy into ``into`` the cells of ``src`` that ``on_conflict`` and the statuses pick."""
    take = np.isin(src.status, DONE)
    if on_conflict == "first":
        take &= ~np.isin(into.status, DONE)
    # A failure fills a cell no file computed; of two failures, on_conflict picks the message.
    failed_before = NOT_COMPUTED if on_conflict != "last" else (NOT_COMPUTED, FAILED)
    take |= (src.status == FAILED) & np.isin(into.status, failed_before)
    index = np.flatnonzero(take)
    for a, b in zip(into.buffers, src.buffers):
        a.take_from(index, b)  # outputs kept on disk: the cells stay in their files
    into.status[index] = src.status[index]
    into.seconds[index] = src.seconds[index]
    for i in index.tolist():
        into.errors.pop(i, None)
        if i in src.errors:
            into.errors[i] = src.errors[i]


def _layout(spec: OutputSpec) -> list[tuple]:
    return [(v.name, v.dtype, v.shape) for v in spec.variables]


def _outputs(spec: OutputSpec) -> list[tuple]:
    """What a function returned, whatever the padding: names, dtypes, numbers of dims."""
    extents = {v.extent for v in spec.variables}
    return [(v.name, v.dtype, len(v.shape)) for v in spec.variables if v.name not in extents]
