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


class Axis(NamedTuple):
    """One parameter of a grid: its values (in the store's order) and their attributes."""

    values: np.ndarray
    attrs: dict[str, Any]


class Grid(Mapping[str, Axis]):
    """Parameters in dim order: name -> :class:`Axis`, plus the space's positions in them.

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
        return grid

    def set(
        self, name: str, values: np.ndarray, attrs: dict[str, Any], positions: Any = None
    ) -> None:
        """Set an axis; ``positions`` of the space's values in it default to all of them."""
        self._axes[name] = Axis(values, attrs)
        self.positions[name] = (
            np.arange(len(values)) if positions is None else np.asarray(positions, np.int64)
        )

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
        """Coordinate variables of ``dims`` for a Dataset."""
        return {d: xr.Variable(d, self._axes[d].values, self._axes[d].attrs) for d in dims}

    # -- growing ------------------------------------------------------------------------------
    def with_space(self, space: Grid, path: str) -> tuple[Grid, dict[str, np.ndarray]]:
        """This (a file's) grid grown to hold ``space``'s values too, and what moved.

        Values the space adds get new places; values it lacks stay. Returns the new grid
        (positions: the space's values in it) and, per parameter whose values moved, the new
        place of each of this grid's values. Attributes only the file has are kept; where
        both say something, the space wins.
        """
        grid = Grid(self._axes)
        moved = {}
        for name, (values, attrs) in space.items():
            if name not in self._axes:
                grid.set(name, values, attrs)
                continue
            union, positions = union_values(path, name, self._axes[name].values, values)
            lookup = {v: i for i, v in enumerate(union.tolist())}
            grid.set(
                name,
                union,
                {**self._axes[name].attrs, **attrs},
                [lookup[v] for v in values.tolist()],
            )
            if positions is not None:
                moved[name] = positions
        return grid, moved


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
