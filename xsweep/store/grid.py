"""The grid a store holds: each parameter's values and attributes, and where a space's sit.

A store's grid may hold more values than the space using it (a file shared by several
spaces, or values a space dropped): each axis says where each of the space's values sits in
the store's (``positions``), so the layers above address cells by the space's own indices.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from ..errors import StoreMismatchError
from ..file_format import refinement_round_attrs, refinement_round_name


class Axis(NamedTuple):
    """One parameter of a grid: its values (in the store's order) and their attributes."""

    values: np.ndarray
    attrs: dict[str, Any]


class Grid(Mapping[str, Axis]):
    """Parameters in dim order: name -> :class:`Axis`, plus the space's positions in them.

    ``rounds[name]``, for continuous parameters only: which refinement round added each
    value (0: declared), aligned with the values; a non-index coordinate in Datasets and
    files (``<name>_refinement_round``).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.store.grid import Grid
    >>> grid = Grid({"a": (np.array([1, 2, 3]), {"units": "m"}), "b": (np.array([0.5]), {})})
    >>> grid.shape(("a", "b")), grid.flat_index(("a", "b"), {"a": 2, "b": 0})
    ((3, 1), 2)
    """

    def __init__(self, axes: Mapping[str, tuple[np.ndarray, dict[str, Any]]] | None = None):
        self._axes = {name: Axis(*axis) for name, axis in (axes or {}).items()}
        #: Per parameter, the store index of each of the space's values (identity by default).
        self.positions = {name: np.arange(len(a.values)) for name, a in self._axes.items()}
        #: Per continuous parameter, the refinement round of each value (see the class).
        self.rounds: dict[str, np.ndarray] = {}

    # -- the Mapping interface ----------------------------------------------------------------
    def __getitem__(self, name: str) -> Axis:
        return self._axes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._axes)

    def __len__(self) -> int:
        return len(self._axes)

    def __repr__(self) -> str:
        return f"Grid({', '.join(f'{n}={short_values(a.values)}' for n, a in self._axes.items())})"

    def copy(self) -> Grid:
        grid = Grid(self._axes)
        grid.positions = dict(self.positions)
        grid.rounds = dict(self.rounds)
        return grid

    def set(
        self,
        name: str,
        values: np.ndarray,
        attrs: dict[str, Any],
        positions: Any = None,
        rounds: np.ndarray | None = None,
    ) -> None:
        """Set an axis; ``positions`` of the space's values in it default to all of them;
        ``rounds``: the refinement round of each value (continuous parameters only)."""
        self._axes[name] = Axis(values, attrs)
        self.positions[name] = (
            np.arange(len(values)) if positions is None else np.asarray(positions, np.int64)
        )
        if rounds is None:
            self.rounds.pop(name, None)
        else:
            self.rounds[name] = np.asarray(rounds, dtype=np.int32)

    # -- cells --------------------------------------------------------------------------------
    def shape(self, dims: Sequence[str]) -> tuple[int, ...]:
        return tuple(len(self._axes[d].values) for d in dims)

    def flat_index(self, dims: Sequence[str], indices: Mapping[str, int]) -> int:
        """The flat (C-order) store index over ``dims`` of the space's cell ``indices``."""
        flat = 0
        for d in dims:
            flat = flat * len(self._axes[d].values) + int(self.positions[d][indices[d]])
        return flat

    def label(self, dims: Sequence[str], cell: Sequence[int]) -> dict[str, Any]:
        """The parameter values of the store's cell ``cell`` (one store index per dim)."""
        return {d: self._axes[d].values[i].item() for d, i in zip(dims, cell)}

    def is_space(self, name: str) -> bool:
        """Whether the store's values of ``name`` are exactly the space's, in its order."""
        pos = self.positions[name]
        return len(pos) == len(self._axes[name].values) and bool(
            np.array_equal(pos, np.arange(len(pos)))
        )

    def variables(self, dims: Sequence[str]) -> dict[str, xr.Variable]:
        """Coordinate variables of ``dims`` for a Dataset (with their refinement rounds)."""
        out = {d: xr.Variable(d, self._axes[d].values, self._axes[d].attrs) for d in dims}
        for d in dims:
            if d in self.rounds:
                out[refinement_round_name(d)] = xr.Variable(
                    d, self.rounds[d].copy(), refinement_round_attrs(d)
                )
        return out

    # -- growing ------------------------------------------------------------------------------
    def with_space(self, space: Grid, path: str) -> tuple[Grid, dict[str, np.ndarray]]:
        """This (a file's) grid grown to hold ``space``'s values too, and what moved.

        Values the space adds get new places; values it lacks stay. Returns the new grid
        (positions: the space's values in it) and, per parameter whose values moved, the new
        place of each of this grid's values. Attributes only the file has are kept; where
        both say something, the space wins.
        """
        grid = Grid(self._axes)
        grid.rounds = dict(self.rounds)
        moved = {}
        for name, (values, attrs) in space.items():
            if name not in self._axes:
                grid.set(name, values, attrs, rounds=space.rounds.get(name))
                continue
            union, positions = union_values(path, name, self._axes[name].values, values)
            lookup = {v: i for i, v in enumerate(union.tolist())}
            grid.set(
                name,
                union,
                {**self._axes[name].attrs, **attrs},
                [lookup[v] for v in values.tolist()],
                merged_rounds(
                    union,
                    [
                        (self._axes[name].values, self.rounds.get(name)),
                        (values, space.rounds.get(name)),
                    ],
                ),
            )
            if positions is not None:
                moved[name] = positions
        return grid, moved


def merged_rounds(
    union: np.ndarray, parts: Sequence[tuple[np.ndarray, np.ndarray | None]]
) -> np.ndarray | None:
    """The refinement round of each value of ``union``, from grids ``(values, rounds)``.

    A value several grids hold counts from the earliest round any of them says (a value
    one space declares is declared, round 0); a value none says anything of is declared.
    None when no grid has rounds (a discrete parameter).

    Examples
    --------
    >>> import numpy as np
    >>> from xsweep.store.grid import merged_rounds
    >>> union = np.array([0.0, 0.25, 0.5, 1.0])
    >>> merged_rounds(union, [(np.array([0.0, 0.5, 1.0]), np.array([0, 2, 0])),
    ...                       (np.array([0.25, 0.5]), np.array([3, 1]))]).tolist()
    [0, 3, 1, 0]
    """
    if all(rounds is None for _, rounds in parts):
        return None
    lookup = {v: i for i, v in enumerate(union.tolist())}
    out = np.full(union.size, np.iinfo(np.int32).max, dtype=np.int64)
    for values, rounds in parts:
        if rounds is None:
            continue
        at = np.array([lookup[v] for v in values.tolist()], dtype=np.int64)
        out[at] = np.minimum(out[at], rounds)
    out[out == np.iinfo(np.int32).max] = 0
    return out.astype(np.int32)


def union_values(
    path: str, name: str, file_values: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """The union of a parameter's values in the file and in the space.

    Returns the union and, when it differs from the file's values, the new position of each
    of the file's values. Sorted grids stay sorted; otherwise new values go at the end.
    """
    if file_values.shape == values.shape and np.array_equal(file_values, values):
        return file_values, None
    kinds = {file_values.dtype.kind, values.dtype.kind}
    if not (kinds <= {"i", "u", "f"} or len(kinds) == 1):
        raise StoreMismatchError(
            f"The cache file {path} has parameter {name!r} with values "
            f"{short_values(file_values)}, of another kind than this space's "
            f"{short_values(values)}. Nothing was changed. Use another cache path, or rename the "
            "parameter."
        )
    known = set(file_values.tolist())
    new = [v for v in values.tolist() if v not in known]
    if not new:
        return file_values, None
    # Strings take the longer width of the two: a narrower one would cut the file's values.
    dtype = np.result_type(file_values, values)
    union = np.concatenate([file_values.astype(dtype), np.asarray(new, dtype=dtype)])
    if kinds <= {"i", "u", "f"} and _increasing(file_values) and _increasing(values):
        union = np.sort(union)
    lookup = {v: i for i, v in enumerate(union.tolist())}
    positions = np.array([lookup[v] for v in file_values.tolist()], dtype=np.int64)
    union.setflags(write=False)
    return union, positions


def _increasing(values: np.ndarray) -> bool:
    return values.size < 2 or bool(np.all(np.diff(values) > 0))


def short_values(values: np.ndarray) -> str:
    """A parameter's values for a message: all of a few, else the first and last."""
    items = values.tolist()
    return repr(items) if len(items) <= 8 else f"[{items[0]!r}, ..., {items[-1]!r}] ({len(items)})"
